"""Benchmark: how request time grows with the data (1k, 100k, 1M donations), in-process, median.

For each size a scratch PostgreSQL database is made, migrated, filled with `filmfund demo seed
--donations N` (test money, bulk), then each request is timed through the app in this process
(Flask's test client: no network, no server threads): the campaign API and page, the partner
statement, the producer dashboard, and one paid webhook (a new pledge each time). The scratch
database is dropped afterwards.

    .venv/bin/python bench/scale_bench.py [--sizes 1000,100000,1000000] [--repeat 7]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Prints a Markdown table for the README (targets from issue 9: flat; statement < 200 ms at 1M;
dashboard < 1 s at 1M).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
FILMFUND = str(Path(sys.executable).parent / "filmfund")


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm: first-request caches, the connection pool
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


DASHBOARD_MAX = 100_000


def measure(url: str, instance: Path, donations: int, repeat: int, dashboard_max: int = DASHBOARD_MAX
            ) -> dict[str, float]:
    env = {**os.environ, "FILMFUND_DATABASE_URL": url, "FILMFUND_INSTANCE_DIR": str(instance)}
    env.pop("STRIPE_SECRET_KEY", None)
    for argv in (["db", "upgrade"], ["campaign", "load"]):
        subprocess.run([FILMFUND, *argv], env=env, check=True, capture_output=True)
    t0 = time.monotonic()
    subprocess.run([FILMFUND, "demo", "seed", "--donations", str(donations)], env=env, check=True,
                   capture_output=True)
    seeded = time.monotonic() - t0

    os.environ.update(FILMFUND_DATABASE_URL=url, FILMFUND_INSTANCE_DIR=str(instance))
    from filmfund import create_app
    from filmfund.auth import services as auth, tokens as auth_tokens
    from filmfund.extensions import db, limiter
    from filmfund.rewards import pledges
    from filmfund.rewards.webhooks import sign_payload

    app = create_app({"RATELIMIT_ENABLED": False})
    limiter.enabled = False
    out: dict[str, float] = {"seed (s)": seeded}
    with app.app_context():
        staff_users = []
        for email, role in (("bench-producer@example.org", "producer"), ("bench-partner@example.org", "partner")):
            user = auth.ensure_user(email)
            auth.set_password(user, uuid.uuid4().hex)  # staff roles need a password
            auth.grant_role(user, role)
            staff_users.append(user)
        producer, partner = staff_users
        db.session.commit()
        token = auth_tokens.create_api_token(partner.email)
        producer_id = producer.get_id()
        secret = app.config["STRIPE_WEBHOOK_SECRET"]
    client = app.test_client()
    staff = app.test_client()
    with staff.session_transaction() as sess:
        sess["_user_id"], sess["_fresh"] = producer_id, True

    def get(c, path, **kw):
        def run():
            r = c.get(path, **kw)
            assert r.status_code == 200, (path, r.status_code)
        return run

    out["GET /api/v1/campaign"] = _median_ms(get(client, "/api/v1/campaign"), repeat)
    out["GET / (campaign page)"] = _median_ms(get(client, "/"), repeat)
    out["GET /api/v1/partner/statement"] = _median_ms(
        get(client, "/api/v1/partner/statement", headers={"Authorization": f"Bearer {token}"}), repeat)
    if donations <= dashboard_max:
        out["GET /admin/ (dashboard)"] = _median_ms(get(staff, "/admin/"), max(3, repeat // 2))
    else:
        out["GET /admin/ (dashboard)"] = float("nan")  # not measured: see --dashboard-max

    def webhook():
        with app.app_context():
            p = pledges.create_pledge(2500, email=f"bench-{uuid.uuid4().hex[:8]}@example.org")
            db.session.commit()  # test mode: its local checkout is set already, nothing to open
            pid, sid = p.id, p.checkout_session_id
        obj = {"id": sid, "object": "checkout.session", "amount_total": 2500, "currency": "usd",
               "client_reference_id": pid, "customer_details": {"email": "b@example.org"},
               "customer_email": "b@example.org", "livemode": False, "metadata": {"pledge_id": pid},
               "mode": "payment", "payment_intent": f"pi_{pid}", "payment_status": "paid", "status": "complete"}
        event = {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "checkout.session.completed",
                 "created": int(time.time()), "livemode": False, "data": {"object": obj}}
        payload = json.dumps(event).encode()
        t0 = time.perf_counter()
        r = client.post("/webhooks/stripe", data=payload, headers={
            "Stripe-Signature": sign_payload(payload, secret), "Content-Type": "application/json"})
        elapsed = (time.perf_counter() - t0) * 1000
        assert r.status_code == 200, r.get_data(as_text=True)
        return elapsed

    webhook()
    out["POST /webhooks/stripe (paid)"] = statistics.median(webhook() for _ in range(repeat))
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--dashboard-max", type=int, default=DASHBOARD_MAX,
                    help="time the dashboard only up to this many donations (it grows with the ledger today)")
    ap.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    admin = sa.create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    results: dict[int, dict[str, float]] = {}
    for size in sizes:
        name = f"filmfund_scale_bench_{os.getpid()}_{size}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            with tempfile.TemporaryDirectory() as tmp:
                url = args.database_url.rsplit("/", 1)[0] + "/" + name
                results[size] = measure(url, Path(tmp), size, args.repeat, args.dashboard_max)
                print(f"  {size:,} donations: " + ", ".join(f"{k} {v:.1f}" for k, v in results[size].items()),
                      file=sys.stderr, flush=True)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    rows = list(next(iter(results.values())))
    print(f"Median of {args.repeat} requests in-process, PostgreSQL, {os.cpu_count()} cores "
          f"(load average {os.getloadavg()[0]:.1f} at the end)\n")
    print("| request (ms) | " + " | ".join(f"{s:,} donations" for s in sizes) + " |")
    print("| --- |" + " ---: |" * len(sizes))
    for row in rows:
        fmt = "{:.1f}" if row != "seed (s)" else "{:.0f}"
        print(f"| {row} | " + " | ".join("not measured" if results[s][row] != results[s][row]
                                         else fmt.format(results[s][row]) for s in sizes) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
