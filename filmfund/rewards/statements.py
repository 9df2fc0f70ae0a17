"""The partner's statements: the live one, one per month, and the share-against-paid timeline.

Everything here is read from the ledger's entries (the allocations are the share's home: a
month's share due is the sum of the partner-share entries booked in it, so the months add up to
the live figure exactly, whatever the rounding). Months and days are the campaign's own
(`Campaign.time_zone`); an entry belongs to the month in which the ledger booked it, so a month
that is over never changes (an offline gift recorded late is in the month it was recorded).

**The hold-back.** What the partner sees stops at the start of today in the campaign's zone
(`partner_cutoff`): the live statement, the current month and the chart are the figures as they
stood at the end of yesterday, so a pledge booked now changes nothing the partner can see until
the day is over, and a before-and-after shows at most a whole day's money, never one gift.
Producers see everything live and exact. No donor's data is read here beyond a gift's received
time (to place its money on the day it came in, on the producers' live chart; the partner's
days are the ledger's, see `timeline`).
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import aliased

from filmfund.audit import record_audit, user_ref
from filmfund.db import utcnow
from filmfund.errors import NotFoundError
from filmfund.extensions import db
from filmfund.rewards import ledger, rules
from filmfund.rewards.models import Campaign, Donation, EntryKind, LedgerEntry, Payout

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
FIRST_YEAR = 2000


def zone(campaign: Campaign) -> ZoneInfo:
    return ZoneInfo(campaign.time_zone or "UTC")


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


def _sums(campaign: Campaign, livemode: bool, since: datetime | None, until: datetime | None) -> dict:
    stmt = (sa.select(LedgerEntry.entry_kind, sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0))
            .where(LedgerEntry.campaign_id == campaign.id, LedgerEntry.livemode == livemode)
            .group_by(LedgerEntry.entry_kind))
    if since is not None:
        stmt = stmt.where(LedgerEntry.created_at >= since)
    if until is not None:
        stmt = stmt.where(LedgerEntry.created_at < until)
    by_kind = {EntryKind(k): int(v) for k, v in db.session.execute(stmt).all()}
    gross = by_kind.get(EntryKind.GIFT, 0)
    refunded = -(by_kind.get(EntryKind.REFUND, 0) + by_kind.get(EntryKind.RESTORE, 0))
    return {"gross": gross, "refunded": refunded, "net": gross - refunded,
            "share_due": by_kind.get(EntryKind.PARTNER_SHARE, 0) + by_kind.get(EntryKind.PARTNER_SHARE_REVERSAL, 0),
            # Paid to the partner: payouts less the payouts taken back (their reversals are negative).
            "paid_out": by_kind.get(EntryKind.PAYOUT, 0) + by_kind.get(EntryKind.PAYOUT_REVERSAL, 0)}


def statement(campaign: Campaign, as_of: datetime | None = None) -> dict:
    """The live statement (`as_of` None: the running totals, exact) or as it stood at `as_of`."""
    mode = ledger.money_mode()
    if as_of is None:
        doc = ledger.statement(campaign, mode)
        return {**doc, "test_money": not mode, "as_of": None}
    s = _sums(campaign, mode, None, as_of)
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
    before = _sums(campaign, mode, None, min(start, stop))
    within = _sums(campaign, mode, start, stop) if stop > start else _sums(campaign, mode, start, start)
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
    day `share_due(net so far)` and payouts on their transfer dates. Live (`as_of` None: the
    producers'), money is placed on the day it came in: a gift on the day it was received, a
    refund on the day it was booked. Held back (the partner's: only what the ledger had booked
    before `as_of`), every entry is placed on the day it was booked, so a day once shown never
    changes: a gift recorded today but received days ago would otherwise move that old day by
    its share alone, a before-and-after of one gift."""
    mode, tz = ledger.money_mode(), zone(campaign)
    came_in = (LedgerEntry.created_at if as_of is not None else
               sa.case((LedgerEntry.entry_kind == EntryKind.GIFT, Donation.received_at), else_=LedgerEntry.created_at))
    # Summed in the database, per day in the zone (PostgreSQL) or per UTC hour (SQLite, no zone
    # data: each hour then falls on its day in Python), so the rows read are days, not gifts.
    if db.session.get_bind().dialect.name == "postgresql":
        bucket = sa.func.to_char(sa.func.timezone(campaign.time_zone or "UTC", came_in), "YYYY-MM-DD")
    else:
        bucket = sa.func.strftime("%Y-%m-%d %H", came_in)
    stmt = sa.select(bucket, sa.func.sum(LedgerEntry.amount)).select_from(LedgerEntry)
    if as_of is None:  # the received time of a gift: held back, the ledger's own time (no join)
        stmt = stmt.outerjoin(Donation, Donation.id == LedgerEntry.donation_id)
    stmt = (stmt.where(LedgerEntry.campaign_id == campaign.id, LedgerEntry.livemode == mode,
                   LedgerEntry.entry_kind.in_(ledger.MONEY_KINDS))
            .group_by(bucket))
    # A payout on its transfer date; a reversal on the day it was booked (it moved no money that day,
    # but from then on the books say so: a day once shown to the partner never changes).
    paid_stmt = (sa.select(Payout.paid_on, LedgerEntry.amount, LedgerEntry.entry_kind, LedgerEntry.created_at)
                 .join(LedgerEntry, LedgerEntry.payout_id == Payout.id)
                 .where(Payout.campaign_id == campaign.id, LedgerEntry.livemode == mode))
    if as_of is not None:
        stmt = stmt.where(LedgerEntry.created_at < as_of)
        paid_stmt = paid_stmt.where(LedgerEntry.created_at < as_of)
    net_by_day: dict[date, int] = {}
    for key, amount in db.session.execute(stmt):
        if len(key) == 10:
            day = date.fromisoformat(key)
        else:
            day = datetime.strptime(key, "%Y-%m-%d %H").replace(tzinfo=timezone.utc).astimezone(tz).date()
        net_by_day[day] = net_by_day.get(day, 0) + int(amount)
    paid_by_day: dict[date, int] = {}
    for paid_on, amount, kind, booked_at in db.session.execute(paid_stmt):
        day = booked_at.astimezone(tz).date() if kind == EntryKind.PAYOUT_REVERSAL else paid_on
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
    if payout.acknowledged_at is None:
        payout.acknowledged_at, payout.acknowledged_by = utcnow(), user.id
        record_audit("payout.acknowledge", f"payout {payout.id}",
                     {"payout_id": payout.id, "amount": payout.amount, "by": user_ref(user)})
        db.session.flush()
    return payout
