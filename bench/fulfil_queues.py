"""Producers' reward queues with thousands of donors: the per-reward counts (one aggregate query)
and one page of a queue, timed on a scratch database.

    .venv/bin/python bench/fulfil_queues.py [--donors 5000] [--database-url postgresql+psycopg://...]

Donors, their entitlements (a spread of tiers), physical items in every state, addresses and
credit proofs are inserted in bulk (the queues read those tables; the ledger is not involved).
Prints a Markdown table: median of 5 runs of each query.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _scratch_pg(admin_url: str) -> tuple[str, callable]:
    import sqlalchemy as sa

    name = f"filmfund_bench_fulfil_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + "/" + name, drop


def seed(donors: int) -> None:
    import sqlalchemy as sa

    from filmfund.auth.models import User
    from filmfund.db import utcnow
    from filmfund.extensions import db
    from filmfund.fulfil import fulfilment
    from filmfund.fulfil.models import CreditProof, FulfilmentItem, ItemState, ProofState
    from filmfund.rewards.models import ShippingAddress
    from filmfund.rewards.campaign import current_campaign
    from filmfund.rewards.models import Entitlement, EntitlementStatus

    campaign = current_campaign()
    now = utcnow()
    rng = random.Random(7)
    amounts = [100, 1500, 3000, 5000, 10000, 25000, 50000, 100000]
    db.session.execute(sa.insert(User), [{"public_id": uuid.uuid4().hex, "email": f"d{i}@bench.test",
                                          "session_version": 1, "created_at": now} for i in range(donors)])
    users = list(db.session.scalars(sa.select(User.id).order_by(User.id)))
    tiers = sorted(campaign.tiers, key=lambda t: t.min_amount)
    rows = []
    for uid in users:
        total = rng.choice(amounts)
        for tier in tiers:
            if tier.min_amount <= total:
                rows += [{"user_id": uid, "reward_id": r.id, "status": EntitlementStatus.GRANTED.value,
                          "granted_at": now, "updated_at": now} for r in tier.rewards]
    db.session.execute(sa.insert(Entitlement), rows)
    db.session.execute(sa.insert(ShippingAddress), [
        {"user_id": uid, "name": "N", "line1": "L", "line2": "", "city": "C", "state": "", "postal_code": "",
         "country": "DE", "source": "survey", "created_at": now, "updated_at": now} for uid in users[::2]])
    db.session.execute(sa.insert(CreditProof), [
        {"user_id": uid, "state": ProofState.APPROVED.value, "section": "supporters", "line": "x",
         "credit_name": "x", "note": "", "updated_at": now} for uid in users[::3]])
    fulfilment.sync_items(campaign)
    states = [s.value for s in ItemState]
    ids = list(db.session.scalars(sa.select(FulfilmentItem.id)))
    for state in states:
        chunk = [i for i in ids if i % len(states) == states.index(state)]
        for start in range(0, len(chunk), 500):
            db.session.execute(sa.update(FulfilmentItem).where(FulfilmentItem.id.in_(chunk[start:start + 500]))
                               .values(state=state))
    db.session.commit()
    if db.engine.dialect.name == "postgresql":  # as autovacuum would after a bulk load
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))


def _median(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--donors", type=int, default=5000)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL admin URL (a scratch database is made)")
    args = parser.parse_args()
    drop = None
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FILMFUND_INSTANCE_DIR"] = tmp
        url = f"sqlite:///{tmp}/bench.db"
        if args.database_url:
            url, drop = _scratch_pg(args.database_url)
        try:
            from filmfund import create_app
            from filmfund.extensions import db
            from filmfund.fulfil import statement
            from filmfund.rewards.campaign import current_campaign

            app = create_app({"SQLALCHEMY_DATABASE_URI": url})
            with app.app_context(), app.test_request_context():
                db.create_all()
                t = time.perf_counter()
                seed(args.donors)
                seeded = time.perf_counter() - t
                campaign = current_campaign()
                from filmfund.fulfil.models import FulfilmentItem
                from filmfund.rewards.models import Entitlement

                ents = db.session.query(Entitlement).count()
                items = db.session.query(FulfilmentItem).count()
                q = _median(lambda: statement.queues(campaign))
                from filmfund.fulfil import fulfilment

                sync = _median(lambda: (fulfilment.sync_items(campaign), db.session.commit()))
                p1 = _median(lambda: statement.queue_page(campaign, "dvd", "owed"))
                deep = _deep_cursor(campaign, "credit-name", 49 * statement.PAGE_SIZE)
                p_last = _median(lambda: statement.queue_page(campaign, "credit-name", None, after=deep))
                late = _median(lambda: statement.queue_page(campaign, "dvd", "late"))
                db.session.remove()
                db.engine.dispose()
        finally:
            if drop:
                drop()
    print(f"{args.donors} donors, {ents} entitlements, {items} physical items, database "
          f"{url.split(':')[0]}, seeded in {seeded:.1f} s; median of 5 runs\n")
    print("| query | ms |\n| --- | ---: |")
    print(f"| counts of every reward's queue (`statement.queues`) | {q:.1f} |")
    print(f"| of which making missing items (`fulfilment.sync_items`, none missing) | {sync:.1f} |")
    print(f"| DVD queue, owed, page 1 | {p1:.1f} |")
    print(f"| DVD queue, late, page 1 | {late:.1f} |")
    print(f"| credit queue, everyone, page 50 | {p_last:.1f} |")
    return 0


def _deep_cursor(campaign, key: str, rows_before: int) -> str | None:
    """The cursor past the first `rows_before` holders of a reward (a keyset page that deep)."""
    import sqlalchemy as sa

    from filmfund import keyset
    from filmfund.extensions import db
    from filmfund.fulfil import statement
    from filmfund.rewards.models import Entitlement, Reward

    row = db.session.execute(
        sa.select(Entitlement.granted_at, Entitlement.id).join(Reward, Reward.id == Entitlement.reward_id)
        .where(Reward.campaign_id == campaign.id, Reward.key == key, statement.HELD)
        .order_by(Entitlement.granted_at, Entitlement.id).offset(rows_before - 1).limit(1)).first()
    return keyset.encode(*row) if row else None


if __name__ == "__main__":
    sys.exit(main())
