"""Benchmark: the producers' donations list (`GET /api/v1/donations`) at 1M donations, PostgreSQL.

A scratch PostgreSQL database is made, migrated, filled with `filmfund demo seed --donations N`
(test money, bulk; N/4 donors), every donor given a credit name (`Donor 0000123`, the seed makes
none) and a few donations refunded in the ledger's columns, then ANALYZEd. Each request is timed
through the app in this process (Flask's test client: no network), median of `--repeat`: the first
page, a page deep in the list (its cursor taken from the row at offset N/2), the source and state
filters, a search by a whole email, by an email prefix, by a name prefix, and a date range. The
scratch database is dropped afterwards.

    .venv/bin/python bench/donations_list.py [--donations 1000000] [--repeat 7]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Prints a Markdown table for the README.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from scratch import name_every_donor, seeded_run  # bench/scratch.py (bench/ is this script's folder)

ROOT = Path(__file__).resolve().parent.parent
FILMFUND = str(Path(sys.executable).parent / "filmfund")


def _median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _names_and_refunds(engine) -> None:
    with engine.begin() as conn:
        name_every_donor(conn)
        # One donation in 200 partly refunded (columns only: the list reads them, not the entries).
        conn.execute(sa.text("UPDATE donations SET amount_refunded = amount / 2 WHERE id % 200 = 0"))


def run(url: str, instance: Path, donations: int, repeat: int, seed: bool = True) -> list[tuple[str, float, int]]:
    env = {**os.environ, "FILMFUND_DATABASE_URL": url, "FILMFUND_INSTANCE_DIR": str(instance)}
    env.pop("STRIPE_SECRET_KEY", None)
    for argv in (["db", "upgrade"], ["campaign", "load"]):
        subprocess.run([FILMFUND, *argv], env=env, check=True, capture_output=True)
    engine = sa.create_engine(url)
    if seed:
        t0 = time.monotonic()
        subprocess.run([FILMFUND, "demo", "seed", "--donations", str(donations)], env=env, check=True,
                       capture_output=True)
        print(f"seeded {donations:,} donations in {time.monotonic() - t0:.0f} s", file=sys.stderr)
        _names_and_refunds(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
        deep = conn.execute(sa.text(
            "SELECT received_at, id FROM donations ORDER BY received_at DESC, id DESC OFFSET :n LIMIT 1"),
            {"n": donations // 2}).first()
        some = conn.execute(sa.text("SELECT email FROM users WHERE email LIKE 'donor-%' ORDER BY id "
                                    "OFFSET :n LIMIT 1"), {"n": donations // 8}).scalar()
    engine.dispose()

    os.environ.update(FILMFUND_DATABASE_URL=url, FILMFUND_INSTANCE_DIR=str(instance))
    from filmfund import create_app
    from filmfund.auth import services as auth, tokens as auth_tokens
    from filmfund.extensions import db
    from filmfund.rewards.donations import encode_cursor

    app = create_app({"RATELIMIT_ENABLED": False})
    with app.app_context():
        user = auth.ensure_user("bench-producer@example.org")
        auth.set_password(user, "a long bench password")
        auth.grant_role(user, "producer")
        db.session.commit()
        headers = {"Authorization": f"Bearer {auth_tokens.create_api_token(user.email)}"}
    client = app.test_client()
    deep_cursor = encode_cursor(deep[0], deep[1])
    today = time.strftime("%Y-%m-%d", time.gmtime())
    prefix = some[: len("donor-00012")]
    cases = [
        ("first page (50)", {}),
        (f"page at offset {donations // 2:,} (keyset cursor)", {"cursor": deep_cursor}),
        ("source=offline", {"source": "offline"}),
        ("state=partially_refunded", {"state": "partially_refunded"}),
        ("state=refunded (none: the whole partial index)", {"state": "refunded"}),
        ("from=to=today", {"from": today, "to": today}),
        ("q = a whole email", {"q": some}),
        (f"q = an email prefix ({prefix!r})", {"q": prefix}),
        ("q = a name prefix ('donor 00012')", {"q": "donor 00012"}),
        ("q = a name prefix matching nobody", {"q": "zzz"}),
    ]
    rows = []
    for label, params in cases:
        def call(params=params):
            r = client.get("/api/v1/donations", query_string=params, headers=headers)
            assert r.status_code == 200, r.get_data(as_text=True)
            return r
        n = len(call().get_json()["items"])
        rows.append((label, _median_ms(call, repeat), n))
    return rows


def main() -> None:
    args, rows = seeded_run(run, "filmfund_bench_list", 1_000_000, 7)
    print(f"\n`GET /api/v1/donations` at {args.donations:,} donations, PostgreSQL, median of {args.repeat}:\n")
    print("| request | ms | items |")
    print("| --- | ---: | ---: |")
    for label, ms, n in rows:
        print(f"| {label} | {ms:.1f} | {n} |")


if __name__ == "__main__":
    main()
