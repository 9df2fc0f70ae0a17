"""Benchmark: the producers' exports and rewards page at scale, PostgreSQL.

A scratch PostgreSQL database is made, migrated, filled with `filmfund demo seed --donations N`
(test money, bulk; N/4 donors), then given what a campaign of that size also holds, written in
SQL (the seed makes none of it): a credit name for every donor (1 in 10 anonymous: `scratch.name_every_donor`), every physical
reward's item (`fulfilment.sync_items`), a third of them in production and a third shipped, an
address for 7 donors in 10, and a few donors refunded in full since their parcels left (1 in 4,100:
their totals and entitlements, not the ledger's entries, so `ledger check` is not run on it). Each request goes through the app in this process (Flask's test
client: no network) as a signed-in producer:

- `GET /admin/donations/supporters.csv`, `GET /admin/rewards/packing-list.csv` and
  `GET /admin/credits.txt`: the whole body read, its first piece's time, its size and SHA-256
  (so two runs of different code can be compared byte for byte), and the peak Python memory
  (tracemalloc, in a run of its own: tracing slows Python several times);
- `GET /admin/rewards`: the counts of every reward and the parcels sent to a refunded donor.

Each request is made once before any is measured (a page may settle what the others read).

The scratch database is dropped afterwards (`--keep NAME` keeps it, and reuses it next time).

    .venv/bin/python bench/exports_at_scale.py [--donations 200000] [--repeat 2]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--keep NAME]

Prints a Markdown table for the README.
"""
from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import sqlalchemy as sa
from scratch import name_every_donor, seeded_run  # bench/scratch.py (bench/ is this script's folder)

ROOT = Path(__file__).resolve().parent.parent
FILMFUND = str(Path(sys.executable).parent / "filmfund")
DOWNLOADS = ("/admin/donations/supporters.csv", "/admin/rewards/packing-list.csv", "/admin/credits.txt")
PAGES = ("/admin/rewards",)


def _fill(engine) -> None:
    """What the seed leaves out and the exports read (see the module's docstring)."""
    with engine.begin() as conn:
        name_every_donor(conn, "Supporter")
        conn.execute(sa.text(
            "UPDATE fulfilment_items SET state = CASE id % 3 WHEN 0 THEN 'shipped' WHEN 1 THEN 'in_production' "
            "ELSE 'owed' END, shipped_at = CASE WHEN id % 3 = 0 THEN now() - (id % 1000) * interval '1 minute' END, "
            "tracking = CASE WHEN id % 3 = 0 THEN 'T' || id ELSE '' END"))
        conn.execute(sa.text(
            "INSERT INTO shipping_addresses (user_id, name, line1, line2, city, state, postal_code, country, source, "
            "created_at, updated_at) SELECT id, 'Supporter ' || id, id || ' Long Road', '', 'Lyon', '', '69001', "
            "'FR', 'account', now(), now() FROM users WHERE email LIKE 'donor-%' AND id % 10 < 7 "
            "ON CONFLICT DO NOTHING"))
        # A few donors refunded in full since their parcels left, as a refund leaves them: nothing
        # held any more (the app would otherwise set the entitlements right itself, between runs).
        conn.execute(sa.text("UPDATE donor_totals SET refunded = gross, net = 0 WHERE user_id % 4100 = 0"))
        conn.execute(sa.text("UPDATE entitlements SET status = 'revoked' WHERE user_id % 4100 = 0"))


def _read(client, path: str) -> tuple[float, float, int, str]:
    """(first piece ms, whole body ms, bytes, SHA-256) of one download."""
    t0 = time.perf_counter()
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    digest, size, first = hashlib.sha256(), 0, None
    for piece in response.response:
        if first is None:
            first = (time.perf_counter() - t0) * 1000
        data = piece if isinstance(piece, bytes) else piece.encode()
        digest.update(data)
        size += len(data)
    total = (time.perf_counter() - t0) * 1000
    response.close()
    return first or total, total, size, digest.hexdigest()[:12]


def run(url: str, instance: Path, donations: int, repeat: int, seed: bool = True) -> list[tuple]:
    env = {**os.environ, "FILMFUND_DATABASE_URL": url, "FILMFUND_INSTANCE_DIR": str(instance)}
    env.pop("STRIPE_SECRET_KEY", None)
    for argv in (["db", "upgrade"], ["campaign", "load"]):
        subprocess.run([FILMFUND, *argv], env=env, check=True, capture_output=True)
    os.environ.update(FILMFUND_DATABASE_URL=url, FILMFUND_INSTANCE_DIR=str(instance))
    from filmfund import create_app
    from filmfund.auth import services as auth
    from filmfund.extensions import db
    from filmfund.fulfil import fulfilment
    from filmfund.rewards.campaign import current_campaign

    app = create_app({"RATELIMIT_ENABLED": False})
    engine = sa.create_engine(url)
    if seed:
        t0 = time.monotonic()
        subprocess.run([FILMFUND, "demo", "seed", "--donations", str(donations)], env=env, check=True,
                       capture_output=True)
        with app.app_context():
            fulfilment.sync_items(current_campaign())
            db.session.commit()
        _fill(engine)
        print(f"seeded {donations:,} donations in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
        counts = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM donor_totals WHERE gross > 0), "
            "(SELECT count(*) FROM fulfilment_items WHERE state = 'in_production'), "
            "(SELECT count(*) FROM fulfilment_items WHERE state = 'shipped')")).one()
    engine.dispose()
    print(f"{counts[0]:,} supporters, {counts[1]:,} parcels in production, {counts[2]:,} shipped", file=sys.stderr)

    with app.app_context():
        user = auth.ensure_user("bench-producer@example.org")
        auth.set_password(user, "a long bench password")
        auth.grant_role(user, "producer")
        db.session.commit()
        user_id = user.get_id()
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"], session["_fresh"] = user_id, True

    # Each request once before any is measured: a page may settle what the others read (the rewards
    # pages make the reward items they show: fulfilment.sync_items), and the first of each warms caches.
    for path in DOWNLOADS + PAGES:
        _read(client, path)
    rows = []
    for path in DOWNLOADS:
        runs = [_read(client, path) for _ in range(repeat)]
        tracemalloc.start()
        _read(client, path)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rows.append((path, statistics.median(r[1] for r in runs), statistics.median(r[0] for r in runs),
                     runs[0][2], runs[0][3], peak))
    for path in PAGES:
        runs = [_read(client, path) for _ in range(repeat)]
        rows.append((path, statistics.median(r[1] for r in runs), None, runs[0][2], None, None))
    return rows


def main() -> None:
    args, rows = seeded_run(run, "filmfund_bench_exports", 200_000, 2)
    print(f"\nThe producers' exports and rewards page at {args.donations:,} donations, PostgreSQL, "
          f"median of {args.repeat}:\n")
    print("| request | whole, ms | first piece, ms | size | SHA-256 (first 12) | peak Python memory |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    for path, total, first, size, sha, peak in rows:
        print(f"| `{path}` | {total:,.0f} | {'' if first is None else f'{first:,.0f}'} | {size / 1e6:.2f} MB | "
              f"{sha or ''} | {'' if peak is None else f'{peak:.1f} MiB'} |")


if __name__ == "__main__":
    main()
