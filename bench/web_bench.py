"""Benchmark: pledge creation and webhook ingest on filmfund vs a bare Flask app, same server.

Both apps are served by waitress (8 threads) in their own process on 127.0.0.1; a client
pool of CONCURRENCY threads with keep-alive connections sends the requests. The bare app
parses the same JSON and answers the same status with no database, no Stripe logic: the
difference is what filmfund's validation, ledger and idempotency cost.

    .venv/bin/python bench/web_bench.py [--requests 400] [--concurrency 8] [--processes 1] [--database-url URL]

Prints a Markdown table for the README.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

# Both apps are served the way `filmfund run --processes N` serves: one listening socket,
# N forked waitress processes with 8 threads each (filmfund.serving).
SERVE = textwrap.dedent("""
    import os, signal, sys
    from filmfund import serving
    sock = serving.bind("127.0.0.1", int(sys.argv[1]))
    n = int(sys.argv[2])
    if n == 1:
        serving.serve_forever(app, sock, 8)
    else:
        kids = []
        for _ in range(n):
            pid = os.fork()
            if pid == 0:
                serving._die_with_parent()
                serving.serve_forever(app, sock, 8)
                os._exit(0)
            kids.append(pid)
        def stop(*_):
            for k in kids:
                os.kill(k, signal.SIGTERM)
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        for k in kids:
            os.waitpid(k, 0)
""")

BARE_APP = textwrap.dedent("""
    import json, uuid
    from flask import Flask, request, jsonify, render_template_string
    app = Flask(__name__)
    CAMPAIGN = {"slug": "film", "title": "A film", "currency": "usd", "goal": 1000000, "raised": 400000,
                "donors": 120, "partner": {"name": "A partner", "share_bps": 2000},
                "tiers": [{"min_amount": 100 * i, "name": f"Tier {i}", "rewards": []} for i in range(1, 11)]}

    @app.get("/api/v1/campaign")
    def campaign_api():
        return jsonify(CAMPAIGN)

    @app.get("/")
    def campaign_page():
        return render_template_string("<!doctype html><h1>{{ c.title }}</h1><p>{{ c.raised }} of {{ c.goal }}</p>"
                                      "{% for t in c.tiers %}<li>{{ t.name }}</li>{% endfor %}", c=CAMPAIGN)

    @app.post("/api/v1/pledges")
    def pledge():
        body = request.get_json()
        return jsonify({"pledge_id": uuid.uuid4().hex, "checkout_session_id": "cs", "checkout_url": "/"}), 201

    @app.post("/webhooks/stripe")
    def hook():
        json.loads(request.get_data())
        return jsonify({"received": True})
""") + SERVE

FILMFUND_APP = textwrap.dedent("""
    from filmfund import create_app
    app = create_app({"RATELIMIT_ENABLED": False})
""") + SERVE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def sign(secret: str, body: bytes) -> str:
    t = int(time.time())
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={sig}"


def checkout_completed(pledge_id: str, session_id: str, amount: int, n: int) -> bytes:
    return json.dumps({
        "id": f"evt_bench_{n}_{pledge_id[:8]}", "object": "event", "api_version": "2024-06-20",
        "created": int(time.time()), "livemode": False, "pending_webhooks": 1, "request": {"id": None},
        "type": "checkout.session.completed",
        "data": {"object": {
            "id": session_id, "object": "checkout.session", "client_reference_id": pledge_id,
            "amount_total": amount, "currency": "usd", "mode": "payment", "payment_status": "paid",
            "status": "complete", "payment_intent": f"pi_bench_{n}_{pledge_id[:8]}",
            "customer_details": {"email": f"bench{n}@example.org"}, "metadata": {"pledge_id": pledge_id},
        }},
    }).encode()


def run_load(port: int, bodies: list[tuple[str, bytes, dict]], concurrency: int):
    """POST every body; return (wall seconds, latencies in ms, responses)."""
    latencies: list[float] = []
    responses: list[tuple[int, bytes]] = [None] * len(bodies)  # type: ignore[list-item]
    lock = threading.Lock()
    index = iter(range(len(bodies)))

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                i = next(index, None)
            if i is None:
                break
            path, body, headers = bodies[i]
            t0 = time.perf_counter()
            if body is None:
                conn.request("GET", path, headers=headers)
            else:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
            resp = conn.getresponse()
            data = resp.read()
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                latencies.append(dt)
            responses[i] = (resp.status, data)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, latencies, responses


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def row(name: str, wall: float, lat: list[float]) -> str:
    return (f"| {name} | {len(lat) / wall:,.0f} | {statistics.median(lat):.1f} | {pct(lat, 95):.1f} "
            f"| {pct(lat, 99):.1f} |")  # the caller adds the ratio cell


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--processes", type=int, default=1, help="server processes for each app (as filmfund run)")
    ap.add_argument("--database-url", default=None,
                    help="default: SQLite in a temporary instance folder; a PostgreSQL URL names the server, "
                         "on which a scratch database is created and dropped")
    args = ap.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="filmfund-bench-"))
    env = {**os.environ, "FILMFUND_INSTANCE_DIR": str(instance)}
    for var in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "FILMFUND_SMTP_URL"):
        env.pop(var, None)
    scratch = None
    if args.database_url and args.database_url.startswith("postgresql"):
        import uuid

        import sqlalchemy as sa

        scratch = f"filmfund_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{scratch}"'))
        env["FILMFUND_DATABASE_URL"] = args.database_url.rsplit("/", 1)[0] + "/" + scratch
    elif args.database_url:
        env["FILMFUND_DATABASE_URL"] = args.database_url
    filmfund = str(Path(PY).with_name("filmfund"))
    procs = []
    try:
        subprocess.run([filmfund, "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([filmfund, "campaign", "load"], env=env, check=True, capture_output=True)
        secret = (instance / "stripe_webhook_secret").read_text().strip()
        ports = {}
        for name, code in (("bare", BARE_APP), ("filmfund", FILMFUND_APP)):
            port = free_port()
            procs.append(subprocess.Popen([PY, "-c", code, str(port), str(args.processes)], env=env, cwd=ROOT))
            ports[name] = port
        for port in ports.values():
            wait_up(port)

        n = args.requests
        pledges = [("/api/v1/pledges", json.dumps({"amount": 1500 + i, "email": f"bench{i}@example.org",
                                                    "credit_name": f"Bench {i}"}).encode(), {}) for i in range(n)]
        lines = [f"| endpoint (waitress, {args.processes} process(es) × 8 threads) | req/s | p50 ms | p95 ms | p99 ms "
                 "| filmfund ÷ bare |", "| --- | --- | --- | --- | --- | --- |"]
        results = {}
        rates: dict[str, float] = {}

        def add(label: str, name: str, wall: float, lat: list[float]) -> None:
            rates[name] = len(lat) / wall
            ratio = f"{rates['filmfund'] / rates['bare']:.3f}×" if name == "filmfund" and "bare" in rates else ""
            lines.append(row(label, wall, lat) + f" {ratio} |")

        # Warm both apps first (every thread's first request opens its database connection and
        # builds the process's campaign snapshot): the rows measure the steady state, not start-up.
        for name in ("bare", "filmfund"):
            for path in ("/api/v1/campaign", "/"):
                run_load(ports[name], [(path, None, {})] * (4 * args.concurrency), args.concurrency)
        for path, label in (("/api/v1/campaign", "GET /api/v1/campaign"), ("/", "GET / (campaign page)")):
            for name in ("bare", "filmfund"):
                wall, lat, resp = run_load(ports[name], [(path, None, {})] * n, args.concurrency)
                assert all(r[0] == 200 for r in resp), [r for r in resp if r[0] != 200][:3]
                add(f"{label}, {name}", name, wall, lat)
        for name in ("bare", "filmfund"):
            wall, lat, resp = run_load(ports[name], pledges, args.concurrency)
            assert all(r[0] == 201 for r in resp), [r for r in resp if r[0] != 201][:3]
            results[name] = resp
            add(f"POST /api/v1/pledges, {name}", name, wall, lat)
        events = []
        for i, (status, data) in enumerate(results["filmfund"]):
            created = json.loads(data)
            body = checkout_completed(created["pledge_id"], created["checkout_session_id"], 1500 + i, i)
            events.append(("/webhooks/stripe", body, {"Stripe-Signature": sign(secret, body)}))
        for name in ("bare", "filmfund"):
            wall, lat, resp = run_load(ports[name], events, args.concurrency)
            assert all(r[0] == 200 for r in resp), [r for r in resp if r[0] != 200][:3]
            add(f"POST /webhooks/stripe (paid), {name}", name, wall, lat)
        # Redelivery of the same events: the idempotent no-op path.
        wall, lat, resp = run_load(ports["filmfund"], events, args.concurrency)
        assert all(r[0] == 200 for r in resp)
        lines.append(row("POST /webhooks/stripe, duplicate delivery, filmfund", wall, lat) + " |")
        db = args.database_url.split(":")[0] if args.database_url else "sqlite"
        print(f"{n} requests per row, {args.concurrency} concurrent clients, database {db}, {os.cpu_count()} cores\n")
        print("\n".join(lines))
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        if scratch:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
