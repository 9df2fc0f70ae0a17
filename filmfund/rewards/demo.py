"""`filmfund demo seed`: synthetic test-mode donations booked through the ledger, in bulk.

For demos, screenshots and benchmarks. The donations are offline test-money donations from
donors `donor-NNNNNNN@demo.filmfund.invalid` (an undeliverable domain), booked by the ledger's
rules exactly as one booking after another would: a gift entry and the partner's running-difference
share per donation, the campaign, donor and day totals, the donors' entitlements. So
`filmfund ledger check` passes on the result. Rows go in with COPY on PostgreSQL (executemany on
SQLite), in chunks, each chunk one transaction under the money lock. Refused with a live key.
"""
from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from filmfund.auth.models import Role, User, UserRole
from filmfund.db import utcnow
from filmfund.errors import ConflictError, ValidationError
from filmfund.extensions import db
from filmfund.rewards import holdings, ledger, rules, totals
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.models import (
    Donation,
    DonationSource,
    Entitlement,
    EntitlementStatus,
    EntryKind,
    EventKind,
    LedgerEntry,
)

DEMO_DOMAIN = "demo.filmfund.invalid"
CHUNK = 50_000
MAX_DONATIONS = 10_000_000
# Gifts as a crowdfunding day sees them: mostly small, a long tail up the tiers (cents, weight).
AMOUNTS = [(500, 20), (1000, 20), (1500, 12), (2500, 14), (5000, 12), (7500, 4), (10000, 8), (25000, 5),
           (50000, 3), (100000, 1.5), (200000, 0.5)]
SPREAD_DAYS = 30


def demo_email(i: int) -> str:
    return f"donor-{i:07d}@{DEMO_DOMAIN}"


def seed(donations: int, donors: int | None = None, *, seed_value: int = 2026, chunk: int = CHUNK,
         progress=None) -> dict:
    """Book `donations` synthetic test-mode donations from `donors` donors (default: one donor per
    four donations). Returns what was booked."""
    if ledger.money_mode():
        raise ConflictError("demo seed books test money only: refused with a live Stripe key.", code="live_mode")
    if isinstance(donations, bool) or not isinstance(donations, int) or not 1 <= donations <= MAX_DONATIONS:
        raise ValidationError(f"donations: 1 to {MAX_DONATIONS}.", code="invalid_donations")
    donors = donors if donors is not None else max(1, donations // 4)
    if isinstance(donors, bool) or not isinstance(donors, int) or not 1 <= donors <= donations:
        raise ValidationError("donors: 1 to the number of donations.", code="invalid_donors")
    campaign = current_campaign()
    campaign_id, currency, bps, tz = campaign.id, campaign.currency, campaign.share_bps, totals.zone(campaign)
    tiers = campaign.tiers
    db.session.commit()
    user_ids = _donor_accounts(donors)
    rnd = random.Random(seed_value)
    values, weights = zip(*AMOUNTS)
    booked = gross = 0
    while booked < donations:
        n = min(chunk, donations - booked)
        picks = [rnd.randrange(donors) for _ in range(n)]
        amounts = rnd.choices(values, weights, k=n)
        offsets = sorted((rnd.random() for _ in range(n)), reverse=True)  # oldest first
        gross += _book_chunk(campaign_id, currency, bps, tiers, [user_ids[i] for i in picks], amounts, offsets, tz)
        booked += n
        if progress:
            progress(booked, donations)
    if db.session.get_bind().dialect.name == "postgresql":
        # Fresh statistics for the planner after a bulk load (autovacuum would catch up later): the
        # dashboard's indexed pages must not be planned for the tables as they were before. And
        # VACUUM sets the visibility map, so counts over the indexes read the indexes only.
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("donations", "ledger_entries", "donor_totals", "daily_totals", "campaign_days", "entitlements",
                          "users"):
                conn.execute(sa.text(f"VACUUM (ANALYZE) {table}"))
    return {"donations": booked, "donors": donors, "gross": gross}


# ---------------------------------------------------------------- accounts

def _donor_accounts(count: int) -> list[int]:
    """The demo donors' user ids, index i -> donor-i (made if need be), with the donor role."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    emails = [demo_email(i) for i in range(count)]
    known = {e: i for e, i in db.session.execute(sa.select(User.email, User.id).where(
        User.email.like(f"%@{DEMO_DOMAIN}")))}
    missing = [e for e in emails if e not in known]
    for start in range(0, len(missing), 10_000):
        batch = [{"email": e} for e in missing[start:start + 10_000]]
        db.session.execute(insert(User).on_conflict_do_nothing(index_elements=["email"]), batch)
    db.session.execute(insert(UserRole).from_select(
        ["user_id", "role"], sa.select(User.id, sa.literal(Role.DONOR.value)).where(User.email.like(f"%@{DEMO_DOMAIN}"))
    ).on_conflict_do_nothing(index_elements=["user_id", "role"]))
    db.session.commit()
    known = {e: i for e, i in db.session.execute(sa.select(User.email, User.id).where(
        User.email.like(f"%@{DEMO_DOMAIN}")))}
    return [known[e] for e in emails]


# ---------------------------------------------------------------- one chunk, one transaction

def _book_chunk(campaign_id: int, currency: str, bps: int, tiers, users: list[int],
                amounts: list[int], offsets: list[float], tz) -> int:
    n = len(users)
    now = utcnow()
    today = now.date()
    row = totals.lock_campaign(campaign_id, False)  # the money lock, to this chunk's commit
    if row is None:
        totals.ensure_campaign_rows(campaign_id)
        row = totals.lock_campaign(campaign_id, False)
    net, share_total = int(row.net), 0
    ids = _reserve_ids("donations", n)
    span = SPREAD_DAYS * 86400
    donation_rows, entry_rows = [], []
    per_donor: dict[int, list] = {}
    per_day: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    per_zone_day: dict[date, list[int]] = defaultdict(lambda: [0, 0])  # the campaign's days: came in
    gross = sum(amounts)
    for donation_id, user_id, amount, offset in zip(ids, users, amounts, offsets):
        received = now - timedelta(seconds=offset * span)
        donation_rows.append((donation_id, campaign_id, user_id, DonationSource.OFFLINE.value, amount, currency, 0,
                              False, False, "", "demo seed", "demo seed", received, now, False))
        share = rules.share_due(net + amount, bps) - rules.share_due(net, bps)
        net += amount
        share_total += share
        group = uuid.uuid4().hex
        entry_rows.append((campaign_id, group, EventKind.OFFLINE_DONATION.value, EntryKind.GIFT.value, amount,
                           currency, donation_id, False, now))
        if share:
            entry_rows.append((campaign_id, group, EventKind.OFFLINE_DONATION.value, EntryKind.PARTNER_SHARE.value,
                               share, currency, donation_id, False, now))
        d = per_donor.get(user_id)
        if d is None:
            per_donor[user_id] = [amount, 1, received, received]
        else:
            d[0] += amount
            d[1] += 1
            d[2] = min(d[2], received)
            d[3] = max(d[3], received)
        day = per_day[received.date()]
        day[0] += amount
        day[1] += 1
        day = per_zone_day[received.astimezone(tz).date()]
        day[0] += amount
        day[1] += 1
    _copy(Donation.__table__, ["id", "campaign_id", "user_id", "source", "amount", "currency", "amount_refunded",
                               "anonymous", "rewards_opt_out", "flags", "note", "recorded_by", "received_at",
                               "created_at", "livemode"], donation_rows)
    _copy(LedgerEntry.__table__, ["campaign_id", "group_id", "event_kind", "entry_kind", "amount", "currency",
                                  "donation_id", "livemode", "created_at"], entry_rows)
    new_donors, nets = _add_donor_totals(campaign_id, per_donor)
    totals.add_to_campaign(campaign_id, False, gross=gross, net=gross, share_allocated=share_total, donations=n,
                           donors=new_donors)
    for day, (day_net, gifts) in per_day.items():
        totals.add_to_day(campaign_id, False, day, net=day_net, gifts=gifts, share=share_total if day == today else 0)
    if today not in per_day:
        totals.add_to_day(campaign_id, False, today, share=share_total)
    # The campaign's own days (ledger._book_money's placement): each gift came in on the day it was
    # received, and the whole chunk was booked today.
    for day, (day_net, gifts) in per_zone_day.items():
        totals.add_to_campaign_day(campaign_id, False, day, came_in=day_net, came_in_entries=gifts)
    totals.add_to_campaign_day(campaign_id, False, now.astimezone(tz).date(), gross=gross, money_entries=n,
                               share=share_total)
    _grant(tiers, nets, now)
    db.session.commit()
    return gross


def _reserve_ids(table: str, n: int) -> list[int]:
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        return list(conn.execute(sa.text(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
                                         "FROM generate_series(1, :n)"), {"n": n}).scalars())
    # SQLite: this transaction holds the one write lock (taken by the money lock above).
    first = int(conn.execute(sa.text(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")).scalar_one())
    return list(range(first, first + n))


def _sqlite_cell(value):
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _copy(table: sa.Table, columns: list[str], rows: Iterable[tuple]) -> None:
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})",
                         [tuple(_sqlite_cell(v) for v in row) for row in rows])


def _add_donor_totals(campaign_id: int, per_donor: dict[int, list]) -> tuple[int, dict[int, int]]:
    """Add the chunk's gifts to the donors' rows; returns (donors who now count for the first
    time, every touched donor's net after)."""
    d = totals.DonorTotal
    user_ids = list(per_donor)
    before: dict[int, int] = {}
    for start in range(0, len(user_ids), 5_000):
        part = user_ids[start:start + 5_000]
        before.update(db.session.execute(sa.select(d.user_id, d.net).where(
            d.campaign_id == campaign_id, d.livemode.is_(False), d.user_id.in_(part))).all())
    fresh = [(campaign_id, uid, False, g, 0, g, c, first, last) for uid, (g, c, first, last) in per_donor.items()
             if uid not in before]
    _copy(d.__table__, ["campaign_id", "user_id", "livemode", "gross", "refunded", "net", "donations",
                        "first_gift_at", "last_gift_at"], fresh)
    known = [{"u": uid, "g": g, "c": c, "f": first, "l": last} for uid, (g, c, first, last) in per_donor.items()
             if uid in before]
    if known:
        t = d.__table__
        db.session.execute(
            sa.update(t).where(t.c.campaign_id == campaign_id, t.c.livemode.is_(False),
                               t.c.user_id == sa.bindparam("u"))
            .values(gross=t.c.gross + sa.bindparam("g"), net=t.c.net + sa.bindparam("g"),
                    donations=t.c.donations + sa.bindparam("c"),
                    first_gift_at=sa.case((t.c.first_gift_at < sa.bindparam("f"), t.c.first_gift_at),
                                          else_=sa.bindparam("f")),
                    last_gift_at=sa.case((t.c.last_gift_at > sa.bindparam("l"), t.c.last_gift_at),
                                         else_=sa.bindparam("l")))
            .execution_options(synchronize_session=False), known)
    nets = {uid: before.get(uid, 0) + g for uid, (g, _, _, _) in per_donor.items()}
    new = sum(1 for uid, net in nets.items() if net > 0 and before.get(uid, 0) <= 0)
    return new, nets


def _grant(tiers, nets: dict[int, int], now: datetime) -> None:
    """The rewards each donor's net now reaches (holdings.rewards_due, the one rule): nets only
    grew, so what ends is only a reward another now takes the place of (the DVD, once the signed
    DVD's tier is reached)."""
    held: set[tuple[int, int]] = set()
    user_ids = list(nets)
    for start in range(0, len(user_ids), 5_000):
        part = user_ids[start:start + 5_000]
        held.update(db.session.execute(sa.select(Entitlement.user_id, Entitlement.reward_id).where(
            Entitlement.user_id.in_(part), Entitlement.status != EntitlementStatus.REVOKED)).all())
    due_at: dict[int, tuple[set[int], set[int]]] = {}  # tier -> (due, reached but taken the place of)
    rows, ended = [], []
    for uid, net in nets.items():
        tier = holdings.tier_of(tiers, net)
        key = tier.min_amount if tier else 0
        if key not in due_at:
            due = holdings.rewards_due(tiers, net, opted_out=False)
            due_at[key] = (due, {r.id for t in holdings.tiers_reached(tiers, net) for r in t.rewards} - due)
        due, replaced = due_at[key]
        rows += [(uid, reward_id) for reward_id in sorted(due) if (uid, reward_id) not in held]
        ended += [{"u": uid, "r": reward_id} for reward_id in sorted(replaced) if (uid, reward_id) in held]
    if ended:
        t = Entitlement.__table__
        db.session.execute(sa.update(t).where(t.c.user_id == sa.bindparam("u"), t.c.reward_id == sa.bindparam("r"))
                           .values(status=EntitlementStatus.REVOKED.value, revoked_at=now, updated_at=now)
                           .execution_options(synchronize_session=False), ended)
    if not rows:
        return
    # A reward once revoked (the donor's net fell) is granted again, as refresh_entitlements does
    # (as delivered, if it was).
    revoked = set()
    for start in range(0, len(user_ids), 5_000):
        part = user_ids[start:start + 5_000]
        revoked.update(db.session.execute(sa.select(Entitlement.user_id, Entitlement.reward_id).where(
            Entitlement.user_id.in_(part), Entitlement.status == EntitlementStatus.REVOKED)).all())
    regrant = [{"u": u, "r": r} for u, r in rows if (u, r) in revoked]
    if regrant:
        t = Entitlement.__table__
        db.session.execute(sa.update(t).where(t.c.user_id == sa.bindparam("u"), t.c.reward_id == sa.bindparam("r"))
                           .values(status=sa.case((t.c.fulfilled_at.is_not(None), EntitlementStatus.FULFILLED.value),
                                                  else_=EntitlementStatus.GRANTED.value),
                                   granted_at=now, revoked_at=None,
                                   updated_at=now).execution_options(synchronize_session=False), regrant)
    _copy(Entitlement.__table__, ["user_id", "reward_id", "status", "granted_at", "updated_at"],
          [(u, r, EntitlementStatus.GRANTED.value, now, now) for u, r in rows if (u, r) not in revoked])
