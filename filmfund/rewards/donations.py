"""The producers' donations list: search, filters and keyset pages, flat at a million donations.

Newest first by (received_at, id), one page at a time: the next page starts strictly after the
last row shown (an opaque cursor), so page 20,000 costs what page 1 does. Every filter has an
index (models.Donation): the campaign's money mode and time, its source, the few refunded or
disputed donations (a partial index), a donor's own gifts. A search finds the donors first, by
a prefix of their email or of their credit name, case and accents aside (typed.search_key, kept
in `users.email_key` and `donor_profiles.credit_name_key`, each indexed), then their gifts.

A donation's state: `paid`, `partially_refunded`, `refunded` (a lost dispute counts as refunded,
as the money rules say) or `disputed` (a dispute still open).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa
from flask_babel import gettext as _

from filmfund import keyset
from filmfund.auth.models import User
from filmfund.auth.services import email_search_form
from filmfund.errors import ValidationError
from filmfund.extensions import db
from filmfund.rewards import ledger, privacy
from filmfund.rewards.models import (
    Donation,
    DonationSource,
    DisputeStatus,
    DonorProfile,
    RefundRequest,
    RefundState,
)
from filmfund.typed import search_key

STATES = ("paid", "partially_refunded", "refunded", "disputed")
SOURCES = tuple(s.value for s in DonationSource)
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
Q_MAX = 254
_TOP = "\U0010ffff"  # above every character: a prefix's range ends at prefix + _TOP

# Repeated in every state but `paid`, so that PostgreSQL proves the partial index usable.
_TOUCHED = sa.or_(Donation.amount_refunded > 0, Donation.dispute_status.is_not(None))


def recurring_sql():
    """SQL: the donation is one month of a monthly gift (its subscription's invoice)."""
    return Donation.subscription_id.is_not(None)


def is_recurring(donation: Donation) -> bool:
    """Python form of recurring_sql."""
    return donation.recurring


def state_of(donation: Donation) -> str:
    if donation.dispute_status == DisputeStatus.OPEN:
        return "disputed"
    refunded = donation.counted_refunded
    if refunded >= donation.amount:
        return "refunded"
    return "partially_refunded" if refunded > 0 else "paid"


def _state_where(state: str):
    """SQL form of state_of."""
    open_ = Donation.dispute_status == DisputeStatus.OPEN
    not_open = sa.or_(Donation.dispute_status.is_(None), Donation.dispute_status != DisputeStatus.OPEN)
    counted = Donation.counted_refunded_sql()
    if state == "paid":
        return sa.and_(Donation.amount_refunded == 0,
                       sa.or_(Donation.dispute_status.is_(None), Donation.dispute_status == DisputeStatus.WON))
    if state == "disputed":
        return sa.and_(_TOUCHED, open_)
    if state == "refunded":
        return sa.and_(_TOUCHED, not_open, counted >= Donation.amount)
    return sa.and_(_TOUCHED, not_open, counted > 0, counted < Donation.amount)


# ---------------------------------------------------------------- the cursor

# The cursor's rule is filmfund/keyset.py's (a reward's page of holders pages by it too).
CURSOR_PATTERN = keyset.CURSOR_PATTERN
encode_cursor = keyset.encode
decode_cursor = keyset.decode


# ---------------------------------------------------------------- search

def _prefix(key_column, key: str):
    """`key_column` (a column of search keys, ordered by code point on both databases:
    db.code_point_string) starts with `key`: one range of its index, exact on SQLite and
    PostgreSQL alike."""
    return sa.and_(key_column >= key, key_column < key + _TOP)


def matching_donors(q: str):
    """SQL: the ids of the donors whose email, or credit name, starts with `q`, case and accents
    aside: both sides in typed.search_key's form ("ELODIE", "elodie" and "ｅｌｏｄｉｅ" find "Élodie",
    "zoe" finds "Zoë", "王小" finds "王小明"), the stored side kept in users.email_key and
    donor_profiles.credit_name_key. An address (with an @, or a full-width ＠) is looked up by email
    only. A name is found as the producers see it (privacy.own_name: an anonymous donor's too, never
    an erased donor's, whose name and address are gone)."""
    # The address as it is stored (full-width forms, a domain in its own letters); a name as typed.
    address = search_key(email_search_form(q))
    by_email = sa.select(User.id).where(_prefix(User.email_key, address))
    if "@" in address:
        return by_email
    name = search_key(q.strip())
    by_name = sa.select(DonorProfile.user_id).where(_prefix(DonorProfile.credit_name_key, name),
                                                     ~privacy.is_erased_sql())
    return sa.union(by_email, by_name)


# ---------------------------------------------------------------- the list

def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def list_donations(campaign, *, q: str | None = None, from_: date | None = None, to: date | None = None,
                   source: str | None = None, state: str | None = None, cursor: str | None = None,
                   limit: int = PAGE_SIZE) -> dict:
    """One page of the campaign's donations in the installation's money mode, newest first:
    `{"items": [...], "next": cursor or None}`. Dates are UTC days, `to` included."""
    if source is not None and source not in SOURCES:
        raise ValidationError(_("source: one of %(choices)s.", choices=", ".join(SOURCES)), code="invalid_source")
    if state is not None and state not in STATES:
        raise ValidationError(_("state: one of %(choices)s.", choices=", ".join(STATES)), code="invalid_state")
    if q is not None and len(q) > Q_MAX:
        raise ValidationError(_("q: at most %(n)s characters.", n=Q_MAX), code="invalid_query")
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    where = [Donation.campaign_id == campaign.id, Donation.livemode == ledger.money_mode()]
    if source:
        where.append(Donation.source == DonationSource(source))
    if state:
        where.append(_state_where(state))
    if from_:
        where.append(Donation.received_at >= _day_start(from_))
    if to and to < date.max:  # the calendar's last day (a date picker offers it) bounds nothing
        where.append(Donation.received_at < _day_start(to + timedelta(days=1)))
    if q and q.strip():
        where.append(Donation.user_id.in_(matching_donors(q)))
    if cursor:
        where.append(keyset.past(Donation.received_at, Donation.id, cursor, descending=True))
    rows = db.session.execute(
        sa.select(Donation, User.email, DonorProfile).join(User, User.id == Donation.user_id)
        .outerjoin(DonorProfile, DonorProfile.user_id == Donation.user_id)
        .where(*where).order_by(*keyset.order(Donation.received_at, Donation.id, descending=True))
        .limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    pending = pending_refunds([d.id for d, _e, _p in rows])
    items = [item(d, email, profile, pending.get(d.id, 0)) for d, email, profile in rows]
    last = rows[-1][0] if rows else None
    return {"items": items, "next": encode_cursor(last.received_at, last.id) if more and last else None}


def item(d: Donation, email: str, profile: DonorProfile | None, refund_pending: int = 0) -> dict:
    """One donation as the API and the list show it. The producers see the donor's own name
    (privacy.own_name) with their anonymity flag beside it; the flag is what the world gets."""
    return {"id": d.id, "email": email, "credit_name": privacy.own_name(profile),
            "anonymous": privacy.is_anonymous(profile), "amount": d.amount, "refunded": d.counted_refunded,
            "refund_pending": refund_pending, "currency": d.currency, "source": d.source.value,
            "state": state_of(d), "recurring": is_recurring(d), "created_at": d.received_at.isoformat(),
            "user_id": d.user_id}


def pending_refunds(donation_ids: list[int]) -> dict[int, int]:
    """What is asked of Stripe and not yet confirmed, per donation (a page's worth, one query)."""
    if not donation_ids:
        return {}
    return {i: int(s) for i, s in db.session.execute(
        sa.select(RefundRequest.donation_id, sa.func.sum(RefundRequest.amount))
        .where(RefundRequest.donation_id.in_(donation_ids), RefundRequest.state == RefundState.PENDING)
        .group_by(RefundRequest.donation_id)).all()}


def donor_donations(campaign, user_id: int) -> list[dict]:
    """Every gift of one donor, newest first (their page)."""
    rows = db.session.execute(
        sa.select(Donation, User.email, DonorProfile).join(User, User.id == Donation.user_id)
        .outerjoin(DonorProfile, DonorProfile.user_id == Donation.user_id)
        .where(Donation.user_id == user_id, Donation.campaign_id == campaign.id,
               Donation.livemode == ledger.money_mode())
        .order_by(Donation.received_at.desc(), Donation.id.desc())).all()
    pending = pending_refunds([d.id for d, _e, _p in rows])
    return [{**item(d, email, profile, pending.get(d.id, 0)), "note": d.note, "flags": d.flag_list,
             "received_at": d.received_at}
            for d, email, profile in rows]
