"""`filmfund ledger check`: every invariant of the money rules, proven from the ledger's entries.

It replays the entries (aggregated per booking group in SQL, streamed in booking order) and
checks the groups, the partner's share at every step, each donation against its entries and its
refunds against Stripe's reports of them, the payouts and their reversals (paid out = payouts - reversals), the running totals (campaign, donor, UTC day, the campaign's own day) against the entries, and the donors'
entitlements against their net. Set-based queries and a stream: it scales to millions of
entries without loading them. A scheduled job runs it (filmfund.rewards.tasks) and keeps each
result as a `LedgerCheck` row, which the producers' dashboard shows. The same run verifies the audit log's
hash chain (filmfund.audit.verify_chain): its problems are breaches too.
"""
from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import date, datetime, timezone
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from filmfund.audit import verify_chain
from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.rewards import holdings, rules, stock, totals
from filmfund.rewards.ledger import money_mode
from filmfund.rewards.models import (
    Campaign,
    Donation,
    DonorProfile,
    Entitlement,
    EntitlementStatus,
    EntryKind,
    LedgerEntry,
    Payout,
    RefundReport,
    Reward,
)

MAX_REPORTED = 200  # breaches kept per run (the count is exact)
MONEY = tuple(k.value for k in (EntryKind.GIFT, EntryKind.REFUND, EntryKind.RESTORE))
SHARE = tuple(k.value for k in (EntryKind.PARTNER_SHARE, EntryKind.PARTNER_SHARE_REVERSAL))
BACK = tuple(k.value for k in (EntryKind.REFUND, EntryKind.RESTORE))
PAYOUT = (EntryKind.PAYOUT.value,)
PAYOUT_REVERSAL = (EntryKind.PAYOUT_REVERSAL.value,)


class LedgerCheck(db.Model):
    """The result of one run of the ledger check (the CLI's or the schedule's)."""

    __tablename__ = "ledger_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(sa.String(20))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime]
    ok: Mapped[bool]
    breach_count: Mapped[int]
    entries: Mapped[int] = mapped_column(sa.BigInteger)
    breaches: Mapped[str] = mapped_column(sa.Text, default="")
    # The audit chain's part of the run (filmfund.audit.verify_chain); NULL in runs made before it.
    audit_entries: Mapped[int | None] = mapped_column(sa.BigInteger)
    audit_ok: Mapped[bool | None]


def _when(kind_col, kinds, value, else_=0):
    return sa.case((kind_col.in_(kinds), value), else_=else_)


def _utc_day(col):
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("UTC", col), sa.Date)
    return sa.func.date(col)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _counted_refund():
    return Donation.counted_refunded_sql()


class _Report:
    def __init__(self):
        self.lines: list[str] = []
        self.count = 0

    def add(self, line: str) -> None:
        self.count += 1
        if len(self.lines) < MAX_REPORTED:
            self.lines.append(line)


def _groups(report: _Report, campaign: Campaign, livemode: bool) -> dict:
    """Replay the booking groups in booking order; returns the sums the totals must equal."""
    e = LedgerEntry
    stmt = (sa.select(e.group_id, sa.func.min(e.id).label("first"),
                      sa.func.sum(_when(e.entry_kind, MONEY, e.amount)),
                      sa.func.sum(_when(e.entry_kind, SHARE, e.amount)),
                      sa.func.sum(_when(e.entry_kind, MONEY + PAYOUT + PAYOUT_REVERSAL, 1)),
                      sa.func.count(sa.distinct(e.event_kind)),
                      sa.func.count(sa.distinct(sa.func.coalesce(e.donation_id, -1))),
                      sa.func.sum(_when(e.entry_kind, (EntryKind.GIFT.value,), e.amount)),
                      sa.func.sum(_when(e.entry_kind, BACK, e.amount)),
                      sa.func.sum(_when(e.entry_kind, PAYOUT, e.amount)),
                      -sa.func.sum(_when(e.entry_kind, PAYOUT_REVERSAL, e.amount)),
                      sa.func.sum(_when(e.entry_kind, (EntryKind.GIFT.value,), 1)),
                      sa.func.count())
            .where(e.campaign_id == campaign.id, e.livemode == livemode)
            .group_by(e.group_id).order_by("first"))
    bps = campaign.share_bps
    net = share_total = gross = back = paid = reversed_ = gifts = entries = 0
    for group_id, _, money, share, n_money, n_events, n_donations, gift, refund, payout, reversal, n_gifts, n in \
            db.session.execute(stmt.execution_options(yield_per=20_000)):
        money, share = int(money or 0), int(share or 0)
        if n_events != 1 or n_donations != 1:
            report.add(f"group {group_id}: mixes events or donations")
        if n_money != 1:
            report.add(f"group {group_id}: must hold exactly one money or payout entry")
        expected = rules.share_due(max(net + money, 0), bps) - rules.share_due(max(net, 0), bps)
        if share != expected:
            report.add(f"group {group_id}: partner share {share} should be {expected}")
        net += money
        share_total += share
        if net < 0:
            report.add(f"group {group_id}: the campaign's net went negative ({net})")
        gross += int(gift or 0)
        back += int(refund or 0)
        paid += int(payout or 0)
        reversed_ += int(reversal or 0)
        gifts += int(n_gifts or 0)
        entries += n
    if share_total != rules.share_due(max(net, 0), bps):
        report.add(f"partner allocations sum to {share_total}, share_due(net={net}) is "
                   f"{rules.share_due(max(net, 0), bps)}")
    # What was paid to the partner: the payouts less the payouts taken back (each once, _payouts).
    return {"net": net, "share_allocated": share_total, "gross": gross, "refunded": -back, "paid_out": paid - reversed_,
            "donations": gifts, "entries": entries}


def _donations(report: _Report, campaign: Campaign) -> None:
    e = LedgerEntry
    per = (sa.select(e.donation_id.label("donation_id"),
                     sa.func.sum(_when(e.entry_kind, (EntryKind.GIFT.value,), 1)).label("n_gifts"),
                     sa.func.sum(_when(e.entry_kind, (EntryKind.GIFT.value,), e.amount)).label("gift"),
                     (-sa.func.sum(_when(e.entry_kind, BACK, e.amount))).label("refunded"),
                     sa.func.count(sa.distinct(e.livemode)).label("modes"),
                     sa.func.max(sa.case((e.livemode, 1), else_=0)).label("live"))
           .where(e.donation_id.is_not(None)).group_by(e.donation_id).subquery())
    n_gifts, gift, refunded = (sa.func.coalesce(per.c.n_gifts, 0), sa.func.coalesce(per.c.gift, 0),
                               sa.func.coalesce(per.c.refunded, 0))
    counted = _counted_refund()
    live = sa.case((Donation.livemode, 1), else_=0)
    rows = db.session.execute(
        sa.select(Donation.id, Donation.amount, counted, n_gifts, gift, refunded, per.c.modes, per.c.live, live)
        .outerjoin(per, per.c.donation_id == Donation.id)
        .where(Donation.campaign_id == campaign.id,
               sa.or_(n_gifts != 1, gift != Donation.amount, refunded != counted, refunded < 0,
                      refunded > Donation.amount, per.c.modes != 1, per.c.live != live))
        .order_by(Donation.id).limit(MAX_REPORTED))
    for d_id, amount, counted_refund, n, g, r, modes, entries_live, d_live in rows:
        if n != 1 or g != amount:
            report.add(f"donation {d_id}: gift entries ({n} of {g}) do not match its amount {amount}")
        if r != counted_refund:
            report.add(f"donation {d_id}: ledger refunds {r} != counted refund {counted_refund}")
        if not 0 <= r <= amount:
            report.add(f"donation {d_id}: refunded {r} beyond the donation {amount}")
        if modes is not None and (modes != 1 or entries_live != d_live):
            report.add(f"donation {d_id}: its entries mix test and live money or differ from the donation's")
    strays = db.session.scalars(
        sa.select(e.donation_id).distinct().outerjoin(Donation, Donation.id == e.donation_id)
        .where(e.campaign_id == campaign.id, e.donation_id.is_not(None),
               sa.or_(Donation.id.is_(None), Donation.campaign_id != campaign.id)).limit(MAX_REPORTED))
    for donation_id in strays:
        report.add(f"entries refer to donation {donation_id}, which is not this campaign's")


def _refund_reports(report: _Report, campaign: Campaign) -> None:
    """A donation's `amount_refunded` is what its refund reports say (rules.reported_refund, capped
    at the donation), and a donation with refunds has reports."""
    r = RefundReport
    rows = db.session.execute(
        sa.select(Donation.id, Donation.amount, Donation.amount_refunded, r.id, r.kind, r.amount, r.reported_at,
                  r.refund_id, r.refund_created)
        .join(r, r.donation_id == Donation.id).where(Donation.campaign_id == campaign.id)
        .order_by(Donation.id).execution_options(yield_per=20_000))
    for (d_id, amount, refunded), group in itertools.groupby(rows, key=lambda row: tuple(row[:3])):
        reports = [SimpleNamespace(id=g[3], kind=g[4], amount=g[5], reported_at=g[6], refund_id=g[7],
                                   refund_created=g[8]) for g in group]
        expected = min(amount, RefundReport.reported_refund(reports))
        if refunded != expected:
            report.add(f"donation {d_id}: refunded {refunded}, but its refund reports say {expected}")
    unreported = db.session.scalars(sa.select(Donation.id).where(
        Donation.campaign_id == campaign.id, Donation.amount_refunded > 0,
        ~sa.exists().where(r.donation_id == Donation.id)).order_by(Donation.id).limit(MAX_REPORTED))
    for d_id in unreported:
        report.add(f"donation {d_id}: refunded without a refund report")


def _payouts(report: _Report, campaign: Campaign) -> None:
    """Each payout has its one entry of its amount; each payout marked reversed has one reversal
    entry of minus its amount, in the payout's money mode, and no other payout has one."""
    e = LedgerEntry
    rows = db.session.execute(sa.select(Payout.id, Payout.amount, Payout.reversed_at.is_not(None))
                              .where(Payout.campaign_id == campaign.id)).all()
    payouts = {pid: amount for pid, amount, _ in rows}
    booked = dict(db.session.execute(sa.select(e.payout_id, e.amount).where(
        e.campaign_id == campaign.id, e.entry_kind == EntryKind.PAYOUT)).all())
    if payouts != booked:
        report.add(f"payouts {payouts} do not match their ledger entries {booked}")
    marked = {pid: -amount for pid, amount, is_reversed in rows if is_reversed}
    reversals = db.session.execute(
        sa.select(e.payout_id, sa.func.sum(e.amount), sa.func.count(), sa.func.min(sa.case((e.livemode, 1), else_=0)),
                  sa.func.max(sa.case((e.livemode, 1), else_=0)))
        .where(e.campaign_id == campaign.id, e.entry_kind == EntryKind.PAYOUT_REVERSAL).group_by(e.payout_id)).all()
    taken_back = {pid: int(amount) for pid, amount, _, _, _ in reversals}
    if marked != taken_back:
        report.add(f"payouts marked reversed {marked} do not match their reversal entries {taken_back}")
    modes = dict(db.session.execute(sa.select(e.payout_id, sa.case((e.livemode, 1), else_=0)).where(
        e.campaign_id == campaign.id, e.entry_kind == EntryKind.PAYOUT)).all())
    for pid, _, n, lo, hi in reversals:
        if n != 1:
            report.add(f"payout {pid}: reversed {n} times")
        if lo != hi or modes.get(pid) != lo:
            report.add(f"payout {pid}: its reversal is not in the payout's money mode")


def _donor_nets(campaign: Campaign, livemode: bool) -> dict[int, tuple[int, int, int, int]]:
    """Per donor, from the entries: (gross, refunded, net, donations)."""
    e = LedgerEntry
    rows = db.session.execute(
        sa.select(Donation.user_id, sa.func.sum(_when(e.entry_kind, (EntryKind.GIFT.value,), e.amount)),
                  -sa.func.sum(_when(e.entry_kind, BACK, e.amount)), sa.func.sum(e.amount),
                  sa.func.sum(_when(e.entry_kind, (EntryKind.GIFT.value,), 1)))
        .join(Donation, Donation.id == e.donation_id)
        .where(e.campaign_id == campaign.id, e.livemode == livemode, e.entry_kind.in_(MONEY))
        .group_by(Donation.user_id).execution_options(yield_per=20_000))
    return {uid: (int(g or 0), int(r or 0), int(n or 0), int(c or 0)) for uid, g, r, n, c in rows}


def _totals(report: _Report, campaign: Campaign, livemode: bool, sums: dict, donors: dict) -> None:
    mode = "live" if livemode else "test"
    row = totals.campaign_row(campaign.id, livemode)
    have = {k: int(getattr(row, k)) if row else 0
            for k in ("gross", "refunded", "net", "share_allocated", "paid_out", "donations", "donors")}
    want = {k: sums[k] for k in ("gross", "refunded", "net", "share_allocated", "paid_out", "donations")}
    want["donors"] = sum(1 for _, _, net, _ in donors.values() if net > 0)
    for key in want:
        if have[key] != want[key]:
            report.add(f"{mode} campaign total {key} is {have[key]}, the entries say {want[key]}")
    d = totals.DonorTotal
    stored = db.session.execute(sa.select(d.user_id, d.gross, d.refunded, d.net, d.donations).where(
        d.campaign_id == campaign.id, d.livemode == livemode).execution_options(yield_per=20_000))
    seen = set()
    for uid, gross, refunded, net, count in stored:
        seen.add(uid)
        expected = donors.get(uid, (0, 0, 0, 0))
        if (int(gross), int(refunded), int(net), int(count)) != expected:
            report.add(f"{mode} donor total of user {uid} is {(gross, refunded, net, count)} "
                       f"(gross, refunded, net, donations), the entries say {expected}")
    for uid in donors.keys() - seen:
        report.add(f"{mode} donor total of user {uid} is missing, the entries say {donors[uid]}")
    _days(report, campaign, livemode)
    _campaign_days(report, campaign, livemode)


def _days(report: _Report, campaign: Campaign, livemode: bool) -> None:
    e = LedgerEntry
    want: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    gift_day = _utc_day(Donation.received_at)
    for day, net, n in db.session.execute(
            sa.select(gift_day, sa.func.sum(e.amount), sa.func.count())
            .join(Donation, Donation.id == e.donation_id)
            .where(e.campaign_id == campaign.id, e.livemode == livemode, e.entry_kind == EntryKind.GIFT)
            .group_by(gift_day)):
        want[_as_date(day)][0] += int(net)
        want[_as_date(day)][1] += int(n)
    booked_day = _utc_day(e.created_at)
    for day, net, share in db.session.execute(
            sa.select(booked_day, sa.func.sum(_when(e.entry_kind, BACK, e.amount)),
                      sa.func.sum(_when(e.entry_kind, SHARE, e.amount)))
            .where(e.campaign_id == campaign.id, e.livemode == livemode,
                   e.entry_kind.in_(BACK + SHARE)).group_by(booked_day)):
        want[_as_date(day)][0] += int(net or 0)
        want[_as_date(day)][2] += int(share or 0)
    have = {d: [net, gifts, share] for d, net, gifts, share in totals.days(campaign.id, livemode)}
    for day in sorted(want.keys() | have.keys()):
        w, h = want.get(day, [0, 0, 0]), have.get(day, [0, 0, 0])
        if w != h:
            report.add(f"{'live' if livemode else 'test'} day {day}: totals (net, gifts, share) {tuple(h)}, "
                       f"the entries say {tuple(w)}")


def _zone_day(campaign: Campaign, col):
    """(expression, to_date): the campaign's day of a time column, summed per day in the zone by
    PostgreSQL, per UTC minute by SQLite (no zone data there; each minute falls on its day here)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.timezone(campaign.time_zone or "UTC", col), sa.Date), _as_date
    tz = totals.zone(campaign)
    return sa.func.strftime("%Y-%m-%d %H:%M", col), lambda minute: (
        datetime.strptime(minute, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc).astimezone(tz).date())


def _campaign_days(report: _Report, campaign: Campaign, livemode: bool) -> None:
    """The kept days of the campaign's zone (totals.CampaignDay) are the entries summed per day:
    money where it came in (a gift by its donation's received time, a refund or restore by its
    booking), and what was booked each day (gifts, refunds less restores, money entries, the
    partner's share, payouts less reversals)."""
    e = LedgerEntry
    figures = totals.DAY_FIGURES
    want: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(figures, 0))
    came_in = sa.case((e.entry_kind == EntryKind.GIFT, Donation.received_at), else_=e.created_at)
    day, to_date = _zone_day(campaign, came_in)
    for key, amount, n in db.session.execute(
            sa.select(day, sa.func.sum(e.amount), sa.func.count())
            .join(Donation, Donation.id == e.donation_id)
            .where(e.campaign_id == campaign.id, e.livemode == livemode, e.entry_kind.in_(MONEY))
            .group_by(day)):
        row = want[to_date(key)]
        row["came_in"] += int(amount)
        row["came_in_entries"] += int(n)
    day, to_date = _zone_day(campaign, e.created_at)
    for key, gross, back, n, share, paid in db.session.execute(
            sa.select(day, sa.func.sum(_when(e.entry_kind, (EntryKind.GIFT.value,), e.amount)),
                      sa.func.sum(_when(e.entry_kind, BACK, e.amount)),
                      sa.func.sum(_when(e.entry_kind, MONEY, 1)),
                      sa.func.sum(_when(e.entry_kind, SHARE, e.amount)),
                      sa.func.sum(_when(e.entry_kind, PAYOUT + PAYOUT_REVERSAL, e.amount)))
            .where(e.campaign_id == campaign.id, e.livemode == livemode).group_by(day)):
        row = want[to_date(key)]
        row["gross"] += int(gross or 0)
        row["refunded"] -= int(back or 0)
        row["money_entries"] += int(n or 0)
        row["share"] += int(share or 0)
        row["paid_out"] += int(paid or 0)
    have = {d: dict(zip(figures, rest)) for d, *rest in totals.campaign_days(campaign.id, livemode)}
    zero = dict.fromkeys(figures, 0)
    for d in sorted(want.keys() | have.keys()):
        w, h = want.get(d, zero), have.get(d, zero)
        if w != h:
            wrong = ", ".join(f"{k} {h[k]} (entries: {w[k]})" for k in figures if h[k] != w[k])
            report.add(f"{'live' if livemode else 'test'} campaign day {d}: {wrong}")


def opted_out_donors(campaign: Campaign, livemode: bool) -> set[int]:
    """Donors of this campaign whose own settings (their DonorProfile, see donors.py) say no
    rewards. A later gift never decides it."""
    return set(db.session.scalars(sa.select(DonorProfile.user_id).where(
        DonorProfile.rewards_opt_out.is_(True),
        DonorProfile.user_id.in_(sa.select(Donation.user_id).where(Donation.campaign_id == campaign.id)))))


def _entitlements(report: _Report, campaign: Campaign, nets: dict[int, int], livemode: bool) -> None:
    """Entitlements follow the donors' net in the installation's money mode."""
    opted_out = opted_out_donors(campaign, livemode)
    tiers = campaign.tiers
    wanted_for: dict[tuple[int, frozenset[int]], frozenset[int]] = {}

    def wanted(uid: int, sold_out: frozenset[int]) -> frozenset[int]:
        net = nets.get(uid, 0)
        if uid in opted_out:
            return frozenset()
        tier = holdings.tier_of(tiers, net)
        key = (tier.min_amount if tier else 0, sold_out)
        if key not in wanted_for:
            wanted_for[key] = frozenset(holdings.rewards_due(tiers, net, opted_out=False, unavailable=sold_out))
        return wanted_for[key]

    held: dict[int, tuple[set[int], set[int]]] = defaultdict(lambda: (set(), set()))
    for uid, reward_id, status in db.session.execute(
            sa.select(Entitlement.user_id, Entitlement.reward_id, Entitlement.status).join(Reward)
            .where(Reward.campaign_id == campaign.id, Entitlement.status != EntitlementStatus.REVOKED)
            .execution_options(yield_per=20_000)):
        held[uid][0 if status == EntitlementStatus.GRANTED else 1].add(reward_id)
    donors = set(db.session.scalars(sa.select(Donation.user_id).where(Donation.campaign_id == campaign.id).distinct()))
    # A limited reward may be sold out: due, yet rightly not granted (its stock is checked apart).
    limited = set(db.session.scalars(sa.select(Reward.id).where(Reward.campaign_id == campaign.id,
                                                                 Reward.quantity_limit.is_not(None))))
    for uid in sorted(donors | held.keys()):
        active, fulfilled = held[uid] if uid in held else (set(), set())
        # A limited reward not held is taken as sold out for this donor: what it replaces is due then.
        want = wanted(uid, frozenset(limited - active - fulfilled))
        if want - active - fulfilled - limited:
            report.add(f"user {uid}: rewards {sorted(want - active - fulfilled)} due but not granted")
        if (active | fulfilled) - want:  # an ended reward is revoked, even one delivered
            report.add(f"user {uid}: rewards {sorted((active | fulfilled) - want)} held beyond the donor's tier")
    _stock(report, campaign)


def _stock(report: _Report, campaign: Campaign) -> None:
    """A limited reward's `claimed` is what rewards/stock.py says is spoken for: its holders, its
    held claims, and its items posted to donors whose reward ended afterwards."""
    holders, claims, sent = (stock.holders_sql(Reward.id), stock.held_claims_sql(Reward.id),
                             stock.sent_after_end_sql(Reward.id))
    for key, claimed, n_holders, n_claims, n_sent in db.session.execute(
            sa.select(Reward.key, Reward.claimed, holders, claims, sent).where(
                Reward.campaign_id == campaign.id, Reward.quantity_limit.is_not(None))):
        if claimed != n_holders + n_claims + n_sent:
            report.add(f"reward {key}: {claimed} claimed, but {n_holders} holders, {n_claims} held claims and "
                       f"{n_sent} posted to donors whose reward ended")


def campaign_breaches(campaign: Campaign, entitlement_mode: bool) -> tuple[list[str], int, int]:
    """(breaches reported, breach count, entries checked) of one campaign."""
    report = _Report()
    wrong = db.session.scalars(sa.select(LedgerEntry.id).where(
        LedgerEntry.campaign_id == campaign.id, LedgerEntry.currency != campaign.currency).limit(20))
    for entry_id in wrong:
        report.add(f"entry {entry_id}: currency is not the campaign's {campaign.currency}")
    entries = 0
    nets: dict[int, int] = {}
    for livemode in (False, True):
        sums = _groups(report, campaign, livemode)
        entries += sums["entries"]
        donors = _donor_nets(campaign, livemode)
        _totals(report, campaign, livemode, sums, donors)
        if livemode == entitlement_mode:
            nets = {uid: net for uid, (_, _, net, _) in donors.items()}
    _donations(report, campaign)
    _refund_reports(report, campaign)
    _payouts(report, campaign)
    _entitlements(report, campaign, nets, entitlement_mode)
    return report.lines, report.count, entries


def check_ledger(record: str | None = None) -> list[str]:
    """Every breach, over every campaign; empty when all is well. With `record` (the trigger:
    "cli", "schedule"), the result is kept as a LedgerCheck row."""
    started = utcnow()
    lines: list[str] = []
    count = entries = 0
    mode = money_mode()
    for campaign in db.session.scalars(sa.select(Campaign).order_by(Campaign.id)).all():
        found, n, checked = campaign_breaches(campaign, mode)
        lines += [f"{campaign.slug}: {b}" for b in found]
        count += n
        entries += checked
    # The audit log's hash chain, in the same run: one hourly check, one place that shows it.
    audit_problems, audit_entries = verify_chain(keep_anchor=bool(record), limit=MAX_REPORTED)
    lines += audit_problems
    count += len(audit_problems)
    if record:
        db.session.rollback()  # the check only read: start the write afresh
        db.session.add(LedgerCheck(trigger=record[:20], started_at=started, finished_at=utcnow(), ok=count == 0,
                                   breach_count=count, entries=entries, audit_entries=audit_entries,
                                   audit_ok=not audit_problems, breaches="\n".join(lines[:MAX_REPORTED])))
        db.session.commit()
    return lines


def last_check() -> LedgerCheck | None:
    return db.session.scalar(sa.select(LedgerCheck).order_by(LedgerCheck.id.desc()).limit(1))
