"""The ledger: append-only entries grouped per business event, and running totals kept with them.

Each money event (donation, refund, lost or won dispute, a refund that failed) books its money
entry and the partner's share as a running difference: share_due(net_after) - share_due(net_before).
The running net is the campaign's totals row (filmfund.rewards.totals), whose UPDATE is the money
lock: events of one campaign and money mode are serialised from that UPDATE to their commit, and
nothing sums the ledger while holding it. The same transaction adds to the donor's and the day's
totals (the UTC day's, and the campaign's own day's that the partner's statements read).

Test money and live money never mix: every entry, donation and total carries `livemode`, and
everything shown reads the installation's money mode only (`money_mode()`).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import date
from typing import NamedTuple

import sqlalchemy as sa
from flask import current_app

from filmfund.db import new_id, utcnow
from filmfund.extensions import db
from filmfund.rewards import rules, totals
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


def money_mode() -> bool:
    """The installation's money mode: True (live) iff STRIPE_SECRET_KEY is a live key."""
    key = current_app.config.get("STRIPE_SECRET_KEY") or ""
    return key.startswith(("sk_live_", "rk_live_"))


def lock_money(campaign_id: int | None = None, livemode: bool | None = None) -> None:
    """Serialise money events: the UPDATE of the campaign's totals row (of the installation's money
    mode; every campaign's when none is named). Held to the commit: take it as late as possible.

    On SQLite the UPDATE takes the single writer lock, which serialises the same way.
    """
    mode = money_mode() if livemode is None else livemode
    stmt = sa.update(totals.CampaignTotal).where(totals.CampaignTotal.livemode == mode).values(updated_at=utcnow())
    if campaign_id is not None:
        stmt = stmt.where(totals.CampaignTotal.campaign_id == campaign_id)
    db.session.execute(stmt)


_sqlite_writer = threading.Lock()


@contextmanager
def one_writer():
    """SQLite: the threads of this process take turns on a Python lock for the write transaction
    that follows (to its commit or rollback). SQLite admits one writer anyway, but its busy
    handler polls with sleeps of up to 100 ms, which under load gives waiters multi-second
    tails; a lock hands over at once. Other processes (the worker) still meet the busy timeout.
    PostgreSQL: nothing to do, its row locks queue fairly. (The dialect is read from the app's
    engine: the session's get_bind() would make the request's session for it, 10 µs with its
    close, on a webhook's accept that needs none.)"""
    if db.engine.dialect.name != "sqlite":
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


def _row(campaign_id: int, livemode: bool | None = None) -> totals.CampaignTotal | None:
    return totals.campaign_row(campaign_id, money_mode() if livemode is None else livemode)


def booked_refund(donation_id: int) -> int:
    """What the ledger already treats as refunded on this donation (its entries: a few rows)."""
    return -_sum(LedgerEntry.donation_id == donation_id,
                 LedgerEntry.entry_kind.in_((EntryKind.REFUND, EntryKind.RESTORE)))


class Booking(NamedTuple):
    """One booked money event: its group and the partner's share it allocated (the receipt says it)."""

    group_id: str
    share: int


def _lock_for_booking(campaign_id: int, livemode: bool) -> tuple[int, int]:
    row = totals.lock_campaign(campaign_id, livemode)
    if row is None:  # a campaign made before its totals rows: make them, then lock
        totals.ensure_campaign_rows(campaign_id)
        row = totals.lock_campaign(campaign_id, livemode)
    return int(row.net), int(row.share_allocated)


def _book_money(campaign: Campaign, donation: Donation, event: EventKind, kind: EntryKind, delta: int,
                stripe_event_id: str | None) -> Booking:
    mode = bool(donation.livemode)
    net_before, _ = _lock_for_booking(campaign.id, mode)
    share = rules.share_allocation(net_before, net_before + delta, campaign.share_bps)
    group, now = new_id(), utcnow()
    common = dict(campaign_id=campaign.id, group_id=group, event_kind=event, currency=campaign.currency,
                  donation_id=donation.id, stripe_event_id=stripe_event_id, livemode=mode, created_at=now)
    entries = [dict(entry_kind=kind, amount=delta, **common)]
    if share:
        entries.append(dict(entry_kind=EntryKind.PARTNER_SHARE if share > 0 else EntryKind.PARTNER_SHARE_REVERSAL,
                            amount=share, **common))
    db.session.execute(sa.insert(LedgerEntry), entries)
    gift = kind == EntryKind.GIFT
    before, after = totals.add_to_donor(
        campaign.id, donation.user_id, mode, gross=delta if gift else 0, refunded=0 if gift else -delta,
        donations=1 if gift else 0, gift_at=donation.received_at if gift else None)
    totals.add_to_campaign(campaign.id, mode, gross=delta if gift else 0, refunded=0 if gift else -delta,
                           net=delta, share_allocated=share, donations=1 if gift else 0,
                           donors=(after > 0) - (before > 0))
    came_in = came_in_at(kind, donation.received_at, now)
    money_day = came_in.date()
    if money_day == now.date():
        totals.add_to_day(campaign.id, mode, money_day, net=delta, gifts=int(gift), share=share)
    else:
        totals.add_to_day(campaign.id, mode, money_day, net=delta, gifts=int(gift))
        totals.add_to_day(campaign.id, mode, now.date(), share=share)
    # The same in the campaign's own days (the partner's statements and chart read these).
    booked = dict(gross=delta if gift else 0, refunded=0 if gift else -delta, money_entries=1, share=share)
    came_in_day, booked_day = totals.day_of(campaign, came_in), totals.day_of(campaign, now)
    if came_in_day == booked_day:
        totals.add_to_campaign_day(campaign.id, mode, booked_day, came_in=delta, came_in_entries=1, **booked)
    else:
        totals.add_to_campaign_day(campaign.id, mode, came_in_day, came_in=delta, came_in_entries=1)
        totals.add_to_campaign_day(campaign.id, mode, booked_day, **booked)
    return Booking(group, share)


def came_in_at(kind: EntryKind, received_at, booked_at):
    """When a money entry's money came in, the day the producers' charts place it on: a gift when it
    was received (an offline gift may be recorded days later), a refund or restore when it was booked."""
    return received_at if kind == EntryKind.GIFT else booked_at


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
    if target < booked:  # a lost dispute overturned, or a refund that failed: the money is back
        restored = event if event in (EventKind.DISPUTE_WON, EventKind.REFUND_FAILED) else EventKind.DISPUTE_WON
        return _book_money(campaign, donation, restored, EntryKind.RESTORE, booked - target, stripe_event_id)
    return None


def book_payout(campaign: Campaign, payout: Payout) -> str:
    """The caller holds the money lock (it checked the balance under it)."""
    group, mode, now = new_id(), money_mode(), utcnow()
    db.session.add(LedgerEntry(campaign_id=campaign.id, group_id=group, event_kind=EventKind.PAYOUT,
                               entry_kind=EntryKind.PAYOUT, amount=payout.amount, currency=payout.currency,
                               payout_id=payout.id, livemode=mode, created_at=now))
    _lock_for_booking(campaign.id, mode)
    totals.add_to_campaign(campaign.id, mode, paid_out=payout.amount)
    totals.add_to_campaign_day(campaign.id, mode, totals.day_of(campaign, now), paid_out=payout.amount)
    db.session.flush()
    return group


def book_payout_reversal(campaign: Campaign, payout: Payout, livemode: bool) -> str:
    """Take back a payout recorded by mistake: a new group, its one `payout_reversal` entry the
    payout's amount negated (linked to it), in the payout's money mode; `paid_out` goes down by it.
    The payout's own entry is never touched. The caller holds that mode's money lock (it made sure,
    under it, that the payout was not taken back already)."""
    group, now = new_id(), utcnow()
    db.session.add(LedgerEntry(campaign_id=campaign.id, group_id=group, event_kind=EventKind.PAYOUT_REVERSAL,
                               entry_kind=EntryKind.PAYOUT_REVERSAL, amount=-payout.amount, currency=payout.currency,
                               payout_id=payout.id, livemode=livemode, created_at=now))
    _lock_for_booking(campaign.id, livemode)
    totals.add_to_campaign(campaign.id, livemode, paid_out=-payout.amount)
    totals.add_to_campaign_day(campaign.id, livemode, totals.day_of(campaign, now), paid_out=-payout.amount)
    db.session.flush()
    return group


def payout_mode(payout_id: int) -> bool | None:
    """The money mode of a payout (its ledger entry's), None if it has no entry."""
    return db.session.scalar(sa.select(LedgerEntry.livemode).where(
        LedgerEntry.payout_id == payout_id, LedgerEntry.entry_kind == EntryKind.PAYOUT))


def payout_reversed(payout_id: int) -> bool:
    """Whether the ledger holds a reversal of this payout (the partial unique index answers)."""
    return bool(db.session.scalar(sa.select(sa.exists().where(
        LedgerEntry.payout_id == payout_id, LedgerEntry.entry_kind == EntryKind.PAYOUT_REVERSAL))))


def statement(campaign: Campaign, livemode: bool | None = None) -> dict:
    """The partner's statement in the installation's money mode, from the totals row."""
    row = _row(campaign.id, livemode)
    gross, refunded, net, paid_out = ((int(row.gross), int(row.refunded), int(row.net), int(row.paid_out))
                                      if row else (0, 0, 0, 0))
    due = rules.share_due(max(net, 0), campaign.share_bps)
    return {"currency": campaign.currency, "share_bps": campaign.share_bps, "gross": gross,
            "refunded": refunded, "net": net, "share_due": due, "paid_out": paid_out,
            "balance": due - paid_out}


def donor_net(campaign_id: int, user_id: int, livemode: bool | None = None) -> int:
    return totals.donor_net(campaign_id, user_id, money_mode() if livemode is None else livemode)


def raised_by_day(campaign_id: int, livemode: bool | None = None) -> list[tuple[date, int]]:
    """Net money per UTC day, for charts: a gift counts on the day it was received (an offline
    donation may be recorded days later), a refund on the day it was booked."""
    return [(d, net) for d, net, gifts, _ in totals.days(campaign_id, money_mode() if livemode is None else livemode)
            if gifts or net]


def share_by_day(campaign_id: int, livemode: bool | None = None) -> list[tuple[date, int]]:
    """The partner's share booked per UTC day (allocations and reversals): no donor in it."""
    return [(d, share) for d, _, _, share in totals.days(campaign_id, money_mode() if livemode is None else livemode)
            if share]
