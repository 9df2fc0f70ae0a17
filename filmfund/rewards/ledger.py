"""The ledger: append-only entries grouped per business event, and every total derived from them.

Each money event (donation, refund, lost or won dispute) books its money entry and the partner's
share as a running difference: share_due(net_after) - share_due(net_before). Events are
serialised by a lock on the campaign rows (SELECT ... FOR UPDATE on PostgreSQL; SQLite writes
are serial anyway), so the running net is exact even when webhooks arrive concurrently.
"""
from __future__ import annotations

import threading
from collections import defaultdict
from contextlib import contextmanager
from datetime import date
from typing import NamedTuple

import sqlalchemy as sa

from filmfund.db import new_id
from filmfund.extensions import db
from filmfund.rewards import rules
from filmfund.rewards.models import (
    Campaign,
    Donation,
    EntryKind,
    EventKind,
    LedgerEntry,
    Payout,
)

MONEY_KINDS = (EntryKind.GIFT, EntryKind.REFUND, EntryKind.RESTORE)
SHARE_KINDS = (EntryKind.PARTNER_SHARE, EntryKind.PARTNER_SHARE_REVERSAL)


def lock_money() -> None:
    """Serialise money events: every booking runs under a lock on the campaign rows.

    PostgreSQL: SELECT ... FOR UPDATE. SQLite has no row locks and pysqlite opens a transaction
    only at the first write, so reads would see a net that another thread is about to change:
    a no-op write takes SQLite's single writer lock first (other writers wait, busy timeout).
    """
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(sa.text("UPDATE campaigns SET id = id"))
    else:
        # FOR NO KEY UPDATE: serialises money events just the same, but does not wait for (nor
        # deadlock with) the key-share locks that inserting rows referencing a campaign takes.
        db.session.execute(sa.select(Campaign.id).order_by(Campaign.id).with_for_update(key_share=True)).all()


_sqlite_writer = threading.Lock()


@contextmanager
def one_writer():
    """SQLite: the threads of this process take turns on a Python lock for the write transaction
    that follows (to its commit or rollback). SQLite admits one writer anyway, but its busy
    handler polls with sleeps of up to 100 ms, which under load gives waiters multi-second
    tails; a lock hands over at once. Other processes (the worker) still meet the busy timeout.
    PostgreSQL: nothing to do, its row locks queue fairly."""
    if db.session.get_bind().dialect.name != "sqlite":
        yield
        return
    with _sqlite_writer:
        try:
            yield
        except BaseException:
            db.session.rollback()  # the write lock is released before the next thread goes
            raise


def _sum(*where) -> int:
    return int(db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)).where(*where)))


def campaign_net(campaign_id: int) -> int:
    return _sum(LedgerEntry.campaign_id == campaign_id, LedgerEntry.entry_kind.in_(MONEY_KINDS))


def booked_refund(donation_id: int) -> int:
    """What the ledger already treats as refunded on this donation."""
    return -_sum(LedgerEntry.donation_id == donation_id,
                 LedgerEntry.entry_kind.in_((EntryKind.REFUND, EntryKind.RESTORE)))


class Booking(NamedTuple):
    """One booked money event: its group and the partner's share it allocated (the receipt says it)."""

    group_id: str
    share: int


def _book_money(campaign: Campaign, donation: Donation, event: EventKind, kind: EntryKind, delta: int,
                stripe_event_id: str | None) -> Booking:
    net_before = campaign_net(campaign.id)
    group = new_id()
    common = dict(campaign_id=campaign.id, group_id=group, event_kind=event, currency=campaign.currency,
                  donation_id=donation.id, stripe_event_id=stripe_event_id)
    db.session.add(LedgerEntry(entry_kind=kind, amount=delta, **common))
    share = rules.share_allocation(net_before, net_before + delta, campaign.share_bps)
    if share:
        kind = EntryKind.PARTNER_SHARE if share > 0 else EntryKind.PARTNER_SHARE_REVERSAL
        db.session.add(LedgerEntry(entry_kind=kind, amount=share, **common))
    db.session.flush()
    return Booking(group, share)


def book_gift(campaign: Campaign, donation: Donation, stripe_event_id: str | None = None) -> Booking:
    event = EventKind.DONATION if donation.source == "stripe" else EventKind.OFFLINE_DONATION
    return _book_money(campaign, donation, event, EntryKind.GIFT, donation.amount, stripe_event_id)


def sync_refund(campaign: Campaign, donation: Donation, event: EventKind,
                stripe_event_id: str | None = None) -> Booking | None:
    """Book the difference between what now counts as refunded and what the ledger holds.

    Idempotent and order-free: a repeated or stale event finds nothing to book.
    """
    target, booked = donation.counted_refunded, booked_refund(donation.id)
    if target > booked:
        return _book_money(campaign, donation, event, EntryKind.REFUND, booked - target, stripe_event_id)
    if target < booked:  # a lost dispute overturned
        return _book_money(campaign, donation, EventKind.DISPUTE_WON, EntryKind.RESTORE, booked - target,
                           stripe_event_id)
    return None


def book_payout(campaign: Campaign, payout: Payout) -> str:
    group = new_id()
    db.session.add(LedgerEntry(campaign_id=campaign.id, group_id=group, event_kind=EventKind.PAYOUT,
                               entry_kind=EntryKind.PAYOUT, amount=payout.amount, currency=payout.currency,
                               payout_id=payout.id))
    db.session.flush()
    return group


def statement(campaign: Campaign) -> dict:
    sums = dict(db.session.execute(
        sa.select(LedgerEntry.entry_kind, sa.func.sum(LedgerEntry.amount))
        .where(LedgerEntry.campaign_id == campaign.id).group_by(LedgerEntry.entry_kind)).all())
    gross = int(sums.get(EntryKind.GIFT, 0))
    refunded = -int(sums.get(EntryKind.REFUND, 0)) - int(sums.get(EntryKind.RESTORE, 0))
    net = gross - refunded
    due = rules.share_due(net, campaign.share_bps)
    paid_out = int(sums.get(EntryKind.PAYOUT, 0))
    return {"currency": campaign.currency, "share_bps": campaign.share_bps, "gross": gross,
            "refunded": refunded, "net": net, "share_due": due, "paid_out": paid_out,
            "balance": due - paid_out}


def net_by_donor(campaign_id: int) -> dict[int, int]:
    rows = db.session.execute(
        sa.select(Donation.user_id, sa.func.sum(LedgerEntry.amount))
        .join(Donation, Donation.id == LedgerEntry.donation_id)
        .where(LedgerEntry.campaign_id == campaign_id, LedgerEntry.entry_kind.in_(MONEY_KINDS))
        .group_by(Donation.user_id)).all()
    return {user_id: int(total) for user_id, total in rows}


def donor_net(campaign_id: int, user_id: int) -> int:
    return int(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0))
        .join(Donation, Donation.id == LedgerEntry.donation_id)
        .where(LedgerEntry.campaign_id == campaign_id, Donation.user_id == user_id,
               LedgerEntry.entry_kind.in_(MONEY_KINDS))))


def donors_count(campaign_id: int) -> int:
    return sum(1 for total in net_by_donor(campaign_id).values() if total > 0)


def raised_by_day(campaign_id: int) -> list[tuple[date, int]]:
    """Net money per UTC day, for charts: a gift counts on the day it was received (an offline
    donation may be recorded days later), a refund on the day it was booked. Bucketed in Python."""
    days: dict[date, int] = defaultdict(int)
    rows = db.session.execute(
        sa.select(LedgerEntry.entry_kind, LedgerEntry.created_at, LedgerEntry.amount, Donation.received_at)
        .join(Donation, Donation.id == LedgerEntry.donation_id)
        .where(LedgerEntry.campaign_id == campaign_id, LedgerEntry.entry_kind.in_(MONEY_KINDS))).all()
    for kind, booked_at, amount, received_at in rows:
        days[(received_at if kind == EntryKind.GIFT else booked_at).date()] += amount
    return sorted(days.items())


def ledger_breaches(campaign: Campaign) -> list[str]:
    """Every invariant of the money rules, replayed from the entries in booking order."""
    breaches: list[str] = []
    entries = db.session.scalars(
        sa.select(LedgerEntry).where(LedgerEntry.campaign_id == campaign.id).order_by(LedgerEntry.id)).all()
    groups: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.group_id, []).append(entry)
        if entry.currency != campaign.currency:
            breaches.append(f"entry {entry.id}: currency {entry.currency} is not the campaign's {campaign.currency}")
    net = share_total = 0
    for group_id, rows in groups.items():  # dicts keep first-seen order = booking order
        money = sum(e.amount for e in rows if e.entry_kind in MONEY_KINDS)
        share = sum(e.amount for e in rows if e.entry_kind in SHARE_KINDS)
        if len({e.event_kind for e in rows}) != 1 or len({e.donation_id for e in rows}) != 1:
            breaches.append(f"group {group_id}: mixes events or donations")
        if sum(1 for e in rows if e.entry_kind in MONEY_KINDS + (EntryKind.PAYOUT,)) != 1:
            breaches.append(f"group {group_id}: must hold exactly one money or payout entry")
        expected = rules.share_due(max(net + money, 0), campaign.share_bps) - rules.share_due(net, campaign.share_bps)
        if share != expected:
            breaches.append(f"group {group_id}: partner share {share} should be {expected}")
        net += money
        share_total += share
        if net < 0:
            breaches.append(f"group {group_id}: the campaign's net went negative ({net})")
    if share_total != rules.share_due(max(net, 0), campaign.share_bps):
        breaches.append(f"partner allocations sum to {share_total}, share_due(net={net}) is "
                        f"{rules.share_due(max(net, 0), campaign.share_bps)}")

    by_donation: dict[int, list[LedgerEntry]] = defaultdict(list)
    for entry in entries:
        if entry.donation_id is not None:
            by_donation[entry.donation_id].append(entry)
    donations = db.session.scalars(sa.select(Donation).where(Donation.campaign_id == campaign.id)).all()
    for d in donations:
        rows = by_donation.pop(d.id, [])
        gifts = [e.amount for e in rows if e.entry_kind == EntryKind.GIFT]
        refunded = -sum(e.amount for e in rows if e.entry_kind in (EntryKind.REFUND, EntryKind.RESTORE))
        if gifts != [d.amount]:
            breaches.append(f"donation {d.id}: gift entries {gifts} do not match its amount {d.amount}")
        if refunded != d.counted_refunded:
            breaches.append(f"donation {d.id}: ledger refunds {refunded} != counted refund {d.counted_refunded}")
        if not 0 <= refunded <= d.amount:
            breaches.append(f"donation {d.id}: refunded {refunded} beyond the donation {d.amount}")
    for donation_id in by_donation:
        breaches.append(f"entries refer to donation {donation_id}, which is not this campaign's")
    payouts = {p.id: p.amount for p in db.session.scalars(sa.select(Payout).where(Payout.campaign_id == campaign.id))}
    booked = {e.payout_id: e.amount for e in entries if e.entry_kind == EntryKind.PAYOUT}
    if payouts != booked:
        breaches.append(f"payouts {payouts} do not match their ledger entries {booked}")
    return breaches
