"""The partner's statements: the live one, one per month, and the share-against-paid timeline.

Everything here is the ledger's (the allocations are the share's home: a
month's share due is the sum of the partner-share entries booked in it, so the months add up to
the live figure exactly, whatever the rounding). Months and days are the campaign's own
(`Campaign.time_zone`); an entry belongs to the month in which the ledger booked it, so a month
that is over never changes (an offline gift recorded late is in the month it was recorded).

**The hold-back.** What the partner sees stops at the start of today in the campaign's zone
(`partner_cutoff`): the live statement, the current month and the chart are the figures as they
stood at the end of yesterday, so a pledge booked now changes nothing the partner can see until
the day is over, and a before-and-after shows at most a whole day's money, never one gift.
Producers see everything live and exact. No donor's data is read here: the ledger keeps the
money per day of the campaign's zone as it books it (totals.CampaignDay: a gift on the day it
was received for the producers' live chart, every entry on the day it was booked for the rest),
so these pages read days, not a million entries, and `filmfund ledger check` proves the days
against the entries.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timezone

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import aliased

from filmfund.audit import record_audit, user_ref
from filmfund.db import utcnow
from filmfund.errors import ConflictError, NotFoundError
from filmfund.extensions import db
from filmfund.rewards import ledger, rules, totals
from filmfund.rewards.models import Campaign, EntryKind, LedgerEntry, Payout

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
FIRST_YEAR = 2000


zone = totals.zone  # the campaign's zone: where its days and months are counted


def partner_cutoff(campaign: Campaign, now: datetime | None = None) -> datetime:
    """The moment the partner's figures stop: the start of today in the campaign's zone (UTC)."""
    local = (now or utcnow()).astimezone(zone(campaign))
    return datetime.combine(local.date(), time(0), tzinfo=zone(campaign)).astimezone(timezone.utc)


def sees_live(user) -> bool:
    """Producers see live, exact figures; anyone else (the partner) the held-back ones."""
    return bool(user is not None and user.has_role("producer"))


def as_of_for(campaign: Campaign, user, now: datetime | None = None) -> datetime | None:
    """None: live. Otherwise the moment the figures this user sees stop."""
    return None if sees_live(user) else partner_cutoff(campaign, now)


def day_starting(campaign: Campaign, moment: datetime) -> date:
    """The campaign's day that begins at `moment`. The figures are kept per day of the campaign's
    zone (totals.CampaignDay), so a statement stops at the start of a day: the partner's cut-off
    (`partner_cutoff`) and the months' bounds are."""
    local = moment.astimezone(zone(campaign))
    if local.timetz().replace(tzinfo=None) != time(0):
        raise ValueError(f"{moment.isoformat()} is not the start of a day in {campaign.time_zone}")
    return local.date()


def _sums(campaign: Campaign, livemode: bool, since: date | None, until: date | None) -> dict:
    """What the ledger booked on the campaign's days in [since, until) (None: unbounded), from the
    kept day totals: the same figures whatever the number of gifts."""
    s = totals.booked_between(campaign.id, livemode, since, until)
    gross, refunded = s["gross"], s["refunded"]
    return {"gross": gross, "refunded": refunded, "net": gross - refunded, "share_due": s["share"],
            # Paid to the partner: payouts less the payouts taken back (their reversals are negative).
            "paid_out": s["paid_out"]}


def statement(campaign: Campaign, as_of: datetime | None = None) -> dict:
    """The live statement (`as_of` None: the running totals, exact) or as it stood at `as_of`."""
    mode = ledger.money_mode()
    if as_of is None:
        doc = ledger.statement(campaign, mode)
        return {**doc, "test_money": not mode, "as_of": None}
    s = _sums(campaign, mode, None, day_starting(campaign, as_of))
    return {"currency": campaign.currency, "share_bps": campaign.share_bps, "gross": s["gross"],
            "refunded": s["refunded"], "net": s["net"], "share_due": s["share_due"], "paid_out": s["paid_out"],
            "balance": s["share_due"] - s["paid_out"], "test_money": not mode,
            "as_of": as_of.isoformat()}


def statement_for(campaign: Campaign, user, now: datetime | None = None) -> dict:
    return statement(campaign, as_of_for(campaign, user, now))


def parse_month(text: str) -> tuple[int, int]:
    m = MONTH_RE.match(text or "")
    if not m or int(m[1]) < FIRST_YEAR:
        raise NotFoundError(_("No statement for that month: give it as YYYY-MM, such as 2026-11."),
                            code="not_found")
    return int(m[1]), int(m[2])


def month_bounds(campaign: Campaign, year: int, month: int) -> tuple[datetime, datetime]:
    tz = zone(campaign)
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def current_month(campaign: Campaign, now: datetime | None = None) -> str:
    return (now or utcnow()).astimezone(zone(campaign)).strftime("%Y-%m")


def month_statement(campaign: Campaign, month: str, as_of: datetime | None = None,
                    now: datetime | None = None) -> dict:
    """One month: opening balance, gifts (gross), refunds, net, share due, payouts, closing balance
    (closing = opening + share_due - paid_out), counted up to `as_of` (None: live)."""
    year, mon = parse_month(month)
    if month > current_month(campaign, now):
        raise NotFoundError(_("No statement for a month that has not begun."), code="not_found")
    start, end = month_bounds(campaign, year, mon)
    stop = end if as_of is None else min(end, as_of)
    mode = ledger.money_mode()
    first_day, stop_day = day_starting(campaign, start), day_starting(campaign, stop)
    before = _sums(campaign, mode, None, min(first_day, stop_day))
    within = _sums(campaign, mode, first_day, max(first_day, stop_day))
    opening = before["share_due"] - before["paid_out"]
    # The payouts and the reversals booked in the month, in booking order: a reversal is a line of
    # its own (its amount negative, dated the day it was booked), so the lines add up to `paid_out`.
    lines = list(db.session.execute(
        sa.select(Payout.id, Payout.paid_on, LedgerEntry.amount, Payout.reference, Payout.acknowledged_at,
                  LedgerEntry.entry_kind, LedgerEntry.created_at, Payout.reversal_reason)
        .join(LedgerEntry, LedgerEntry.payout_id == Payout.id)
        .where(Payout.campaign_id == campaign.id, LedgerEntry.livemode == mode,
               LedgerEntry.created_at >= start, LedgerEntry.created_at < stop)
        .order_by(LedgerEntry.created_at, LedgerEntry.id)).all()) if stop > start else []
    over = (now or utcnow()) >= end
    return {"month": f"{year:04d}-{mon:02d}", "currency": campaign.currency, "share_bps": campaign.share_bps,
            "opening_balance": opening, "gross": within["gross"], "refunded": within["refunded"],
            "net": within["net"], "share_due": within["share_due"], "paid_out": within["paid_out"],
            "closing_balance": opening + within["share_due"] - within["paid_out"],
            "test_money": not mode, "final": over and (as_of is None or as_of >= end),
            "as_of": (stop if as_of is not None else None) and stop.isoformat(),
            "period_start": start.isoformat(), "period_end": end.isoformat(), "time_zone": campaign.time_zone,
            "payouts": [_payout_line(p, campaign) for p in lines]}


def _payout_line(p, campaign: Campaign) -> dict:
    line = {"id": p.id, "paid_on": p.paid_on.isoformat(), "amount": int(p.amount), "reference": p.reference,
            "acknowledged": p.acknowledged_at is not None}
    if p.entry_kind == EntryKind.PAYOUT_REVERSAL:
        line.update(paid_on=p.created_at.astimezone(zone(campaign)).date().isoformat(), reversal=True,
                    reason=p.reversal_reason or "")
    return line


def months(campaign: Campaign, now: datetime | None = None) -> list[str]:
    """Every month from the first booked entry (or the campaign's start) to the current one, newest first."""
    first = db.session.scalar(sa.select(sa.func.min(LedgerEntry.created_at))
                              .where(LedgerEntry.campaign_id == campaign.id))
    tz = zone(campaign)
    start = min(filter(None, [first, campaign.created_at, now or utcnow()])).astimezone(tz)
    end = (now or utcnow()).astimezone(tz)
    out, y, m = [], start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out[::-1]


def timeline(campaign: Campaign, as_of: datetime | None = None) -> list[tuple[date, int, int]]:
    """(day, share due so far, paid so far) per day in the campaign's zone, the share due on each
    day `share_due(net so far)` and what was paid out. Live (`as_of` None: the
    producers'), money is placed on the day it came in (ledger.came_in_at: a gift on the day it was
    received, a refund on the day it was booked). Held back (the partner's: only what the ledger
    had booked before `as_of`, the start of a day), every entry is placed on the day it was booked,
    so a day once shown never changes: a gift recorded today but received days ago would otherwise
    move that old day by its share alone, a before-and-after of one gift.

    Read from the kept day totals (totals.CampaignDay) and the payouts: its cost is the number of
    days and payouts, not of gifts. A day is on the chart when money moved on it (an entry), even if
    it nets to nothing, as when the entries were summed."""
    mode = ledger.money_mode()
    if as_of is None:
        net_by_day = {row[0]: row[1] for row in totals.campaign_days(campaign.id, mode) if row[2]}
    else:
        until = day_starting(campaign, as_of)
        net_by_day = {row[0]: row[3] - row[4] for row in totals.campaign_days(campaign.id, mode, until) if row[5]}
    # Live, a payout on its transfer date, and a reversal (a payout recorded by mistake: no money
    # moved) on that same date, so the producers' chart never shows it paid. Held back, both on
    # the day they were booked, as the share is: a payout recorded today with last month's date,
    # or taken back today, changes no day the partner has seen (and a payout recorded and taken
    # back on one day never shows at all).
    paid_stmt = (sa.select(Payout.paid_on, LedgerEntry.amount, LedgerEntry.created_at)
                 .join(LedgerEntry, LedgerEntry.payout_id == Payout.id)
                 .where(Payout.campaign_id == campaign.id, LedgerEntry.livemode == mode))
    if as_of is not None:
        paid_stmt = paid_stmt.where(LedgerEntry.created_at < as_of)
    paid_by_day: dict[date, int] = {}
    for paid_on, amount, booked_at in db.session.execute(paid_stmt):
        day = paid_on if as_of is None else totals.day_of(campaign, booked_at)
        paid_by_day[day] = paid_by_day.get(day, 0) + int(amount)
    out, net, paid = [], 0, 0
    for day in sorted(set(net_by_day) | set(paid_by_day)):
        net += net_by_day.get(day, 0)
        paid += paid_by_day.get(day, 0)
        out.append((day, rules.share_due(max(net, 0), campaign.share_bps), paid))
    return out


def payouts_seen(campaign: Campaign, as_of: datetime | None = None, *, reversed_too: bool = False) -> list[Payout]:
    """Payouts of the installation's money mode booked before `as_of` (None: all), newest first.
    The partner's page lists every payout at once (a payout is no gift: it says nothing of a donor,
    and the partner acknowledges it), while its figures stay held back.

    A payout reversed before `as_of` is left out (the figures no longer count it, so a list of
    what was paid adds up to `paid_out`), unless `reversed_too`: the partner's own list shows it,
    marked reversed."""
    stmt = (sa.select(Payout).join(LedgerEntry, LedgerEntry.payout_id == Payout.id)
            .where(Payout.campaign_id == campaign.id, LedgerEntry.livemode == ledger.money_mode(),
                   LedgerEntry.entry_kind == EntryKind.PAYOUT)
            .order_by(Payout.paid_on.desc(), Payout.id.desc()))
    if as_of is not None:
        stmt = stmt.where(LedgerEntry.created_at < as_of)
    if not reversed_too:
        taken_back = aliased(LedgerEntry)  # not the payout's own entry, which the query joins
        reversal = sa.exists().where(taken_back.payout_id == Payout.id,
                                     taken_back.entry_kind == EntryKind.PAYOUT_REVERSAL)
        if as_of is not None:
            reversal = reversal.where(taken_back.created_at < as_of)
        stmt = stmt.where(~reversal)
    return list(db.session.scalars(stmt))


def acknowledge_payout(campaign: Campaign, payout_id: int, user) -> Payout:
    """The partner says a payout arrived: recorded once, with the time and who (audited)."""
    payout = db.session.get(Payout, payout_id)
    if payout is None or payout.campaign_id != campaign.id:
        raise NotFoundError(_("No such payout."), code="not_found")
    if payout.reversed_at is not None:
        raise ConflictError(_("This payout was reversed: it was recorded by mistake and never made, so there is "
                              "nothing to confirm."), code="payout_reversed")
    if payout.acknowledged_at is None:
        payout.acknowledged_at, payout.acknowledged_by = utcnow(), user.id
        record_audit("payout.acknowledge", f"payout {payout.id}",
                     {"payout_id": payout.id, "amount": payout.amount, "by": user_ref(user)})
        db.session.flush()
    return payout
