"""Benchmark: the hot path against a bare Flask app, with the README's production settings.

filmfund is started as production starts it: `filmfund run --processes 2 --threads 8` (two
waitress processes and the worker), on PostgreSQL, with Redis as the queue and the rate-limit
storage (a private redis-server on a free port, never the machine's own), behind one trusted
proxy (`FILMFUND_TRUSTED_PROXIES=1`, so each simulated donor comes from its own address in
`X-Forwarded-For` and the pledge limit is counted for real, per donor). The bare app (no
database, the same JSON work) is served the same way, two processes of 8 threads. Both take
the same load in the same run, path by path, so each ratio compares like with like.

Three paths, each with its target (issue 16):
- `GET /api/v1/campaign` >= 0.5x,
- pledge (`POST /api/v1/pledges`, test mode) >= 0.3x,
- webhook accept (`POST /webhooks/stripe`, a signed `checkout.session.completed`) >= 0.25x.

Before the clock runs, one whole cycle (pledges, their webhooks, the worker's booking) is done
once, unmeasured. The worker books each round's events as they come in, as in production, and
the next round waits until it is done and idle (the tasks queued for events that another task's
batch booked have run too), so that no path is measured against the backlog of the path before
it. After the run the worker books every accepted event, and the money is checked: as many
donations as events, their sum exactly the pledged sum, the campaign's running total the same,
and `filmfund ledger check` clean.

    .venv/bin/python bench/hot_path.py [--requests 600] [--rounds 3] [--concurrency 8] [--cpu-split]
                                       [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

With --cpu-split it also prints where each path's CPU went, in milliseconds per request (median of
the rounds), read from /proc around each load: the app's web processes, filmfund's worker,
PostgreSQL (every process of that name: run it on a machine with nothing else), Redis, and the
load generator (this process). On two cores, the sum against the bare app's says how far a ratio
can go.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from web_bench import BARE_APP, ROOT, checkout_completed, free_port, run_load, sign, wait_up  # noqa: E402

PY = sys.executable
TARGETS = {"campaign": 0.5, "pledge": 0.3, "webhook": 0.25}
LABELS = {"campaign": "GET /api/v1/campaign", "pledge": "POST /api/v1/pledges (test mode)",
          "webhook": "POST /webhooks/stripe (signed, accepted)"}


def start_redis(folder: Path) -> tuple[subprocess.Popen, int]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is needed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    wait_up(port)
    return proc, port


def client_address(i: int) -> str:
    """A donor's own address (10.x.y.z), as the trusted proxy would report it."""
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=600, help="requests per path, app and round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; each ratio is the median of the rounds")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--cpu-split", action="store_true", help="print each path's CPU per request, by process")
    ap.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                    help="a PostgreSQL server's URL: a scratch database is created on it and dropped")
    args = ap.parse_args()

    import sqlalchemy as sa

    instance = Path(tempfile.mkdtemp(prefix="filmfund-hot-path-"))
    scratch = f"filmfund_hot_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{scratch}"'))
    database_url = args.database_url.rsplit("/", 1)[0] + "/" + scratch
    redis, redis_port = start_redis(instance)
    env = {k: v for k, v in os.environ.items()
           if k not in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "FILMFUND_SMTP_URL", "FILMFUND_TEST_PAYMENTS")}
    env.update({
        "PYTHONPATH": str(ROOT), "FILMFUND_INSTANCE_DIR": str(instance), "FILMFUND_DATABASE_URL": database_url,
        # The README's production settings (its Production section).
        "FILMFUND_QUEUE_URL": f"redis://127.0.0.1:{redis_port}/0",
        "FILMFUND_RATELIMIT_STORAGE_URL": f"redis://127.0.0.1:{redis_port}/1",
        "FILMFUND_TRUSTED_PROXIES": "1", "FILMFUND_PUBLIC_URL": "https://film.example.org",
        "FILMFUND_SECURE_COOKIES": "1",
    })
    procs: list[subprocess.Popen] = [redis]
    try:
        cli = [PY, "-m", "filmfund.cli"]
        subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=instance)
        subprocess.run([*cli, "campaign", "load"], env=env, check=True, capture_output=True, cwd=instance)
        secret = (instance / "stripe_webhook_secret").read_text().strip()
        ports = {"bare": free_port(), "filmfund": free_port()}
        procs.append(subprocess.Popen([PY, "-c", BARE_APP, str(ports["bare"]), "2"], env=env, cwd=ROOT))
        # The access log goes to stderr as in production; the bench does not read it.
        procs.append(subprocess.Popen([*cli, "run", "--processes", "2", "--threads", "8", "--port",
                                       str(ports["filmfund"])], env=env, cwd=instance,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in ports.values():
            wait_up(port)
        worker = worker_of(procs[-1].pid)
        supervisor = procs[-1].pid
        groups = {"bare": {"bare app": [procs[1].pid, *descendants(procs[1].pid)]},
                  "filmfund": {"web": [supervisor, *(p for p in descendants(supervisor) if p != worker)],
                               "worker": [worker]}}
        for g in groups.values():
            g.update({"PostgreSQL": "postgres", "Redis": [redis.pid], "load generator": [os.getpid()]})
        split: dict[tuple[str, str], list[dict[str, float]]] = {}

        def measured_load(key: str, name: str, load: list) -> tuple[float, list, list]:
            before = group_cpu(groups[name]) if args.cpu_split else {}
            wall, lat, resp = run_load(ports[name], load, args.concurrency)
            if args.cpu_split:
                after = group_cpu(groups[name])
                split.setdefault((key, name), []).append(
                    {g: 1000 * (after[g] - before[g]) / len(load) for g in after})
            return wall, lat, resp

        proxy = {"X-Forwarded-Proto": "https"}
        n = args.requests
        ratios: dict[str, list[float]] = {k: [] for k in TARGETS}
        rates: dict[str, list[tuple[float, float]]] = {k: [] for k in TARGETS}
        expected_total = booked = 0
        engine = sa.create_engine(database_url)

        def pledge_load(first: int, count: int) -> list:
            return [("/api/v1/pledges",
                     json.dumps({"amount": 1500 + first + i, "email": f"bench{first + i}@example.org",
                                 "credit_name": f"Bench {first + i}"}).encode(),
                     {**proxy, "X-Forwarded-For": client_address(first + i)}) for i in range(count)]

        def webhook_load(first: int, answers: list) -> list:
            events = []
            for i, (_status, data) in enumerate(answers):
                created = json.loads(data)
                body = checkout_completed(created["pledge_id"], created["checkout_session_id"], 1500 + first + i,
                                          first + i)
                events.append(("/webhooks/stripe", body, {**proxy, "Stripe-Signature": sign(secret, body)}))
            return events

        # Warm-up, not measured: each thread's first request opens its connections, and one whole
        # cycle (pledge, webhook, the worker's booking) runs once, so that no process is still
        # starting or compiling its first queries when the clock runs.
        warm = 4 * args.concurrency
        for name in ports:
            run_load(ports[name], [("/api/v1/campaign", None, proxy)] * warm, args.concurrency)
        first = args.rounds * n  # after every measured donor's number
        _w, _l, warm_pledges = run_load(ports["filmfund"], pledge_load(first, warm), args.concurrency)
        assert all(r[0] == 201 for r in warm_pledges), ("warm-up pledge", warm_pledges[:3])
        _w, _l, warm_hooks = run_load(ports["filmfund"], webhook_load(first, warm_pledges), args.concurrency)
        assert all(r[0] == 200 for r in warm_hooks), ("warm-up webhook", warm_hooks[:3])
        expected_total += sum(1500 + first + i for i in range(warm))
        booked += warm
        wait_booked(engine, booked)
        wait_idle(worker)

        for round_no in range(args.rounds):
            base = round_no * n
            campaign = [("/api/v1/campaign", None, {**proxy, "X-Forwarded-For": client_address(base + i)})
                        for i in range(n)]
            pledges = pledge_load(base, n)
            measured: dict[str, dict[str, float]] = {k: {} for k in TARGETS}
            answers = {}
            for key, load, status in (("campaign", campaign, 200), ("pledge", pledges, 201)):
                for name in ("bare", "filmfund"):
                    wall, lat, resp = measured_load(key, name, load)
                    bad = [r for r in resp if r[0] != status]
                    assert not bad, (key, name, bad[:3])
                    measured[key][name] = len(lat) / wall
                    answers[key, name] = resp
            events = webhook_load(base, answers["pledge", "filmfund"])
            expected_total += sum(1500 + base + i for i in range(len(events)))
            booked += len(events)
            for name in ("bare", "filmfund"):
                wall, lat, resp = measured_load("webhook", name, events)
                bad = [r for r in resp if r[0] != 200]
                assert not bad, ("webhook", name, bad[:3])
                measured["webhook"][name] = len(lat) / wall
            for key in TARGETS:
                rates[key].append((measured[key]["bare"], measured[key]["filmfund"]))
                ratios[key].append(measured[key]["filmfund"] / measured[key]["bare"])
            # The worker books this round's events while the webhooks come in (as in production),
            # but the next round does not start before it is done: each path is measured with the
            # same idle worker, not with the backlog of the path before it. Done means idle, not
            # only booked: the tasks queued for events that the worker's drain already booked
            # still run after the last booking (each finds nothing waiting).
            wait_booked(engine, booked)
            wait_idle(worker)
        engine.dispose()

        money = check_money(database_url, booked, expected_total, env, cli, instance)
        print(f"{args.rounds} round(s) of {n} requests per path and app, {args.concurrency} concurrent clients, "
              f"PostgreSQL, Redis queue and rate limits, `filmfund run --processes 2 --threads 8`, "
              f"{os.cpu_count()} cores\n")
        print("| path | bare req/s | filmfund req/s | filmfund ÷ bare (median of rounds) | rounds | target |")
        print("| --- | ---: | ---: | ---: | --- | --- |")
        met = True
        for key, target in TARGETS.items():
            ratio = statistics.median(ratios[key])
            bare = statistics.median(r[0] for r in rates[key])
            ours = statistics.median(r[1] for r in rates[key])
            ok = ratio >= target
            met &= ok
            print(f"| {LABELS[key]} | {bare:,.0f} | {ours:,.0f} | **{ratio:.2f}×** | "
                  f"{' '.join(f'{r:.2f}' for r in ratios[key])} | ≥ {target}× {'met' if ok else 'NOT met'} |")
        # Each round's two rates: a ratio that moves while filmfund's rate holds is the bare app's doing.
        print("\neach round's req/s, bare / filmfund:")
        for key in TARGETS:
            print(f"- {LABELS[key]}: " + ", ".join(f"{bare:,.0f} / {ours:,.0f}" for bare, ours in rates[key]))
        print(f"\nmoney: {money}")
        if args.cpu_split:
            print("\nCPU per request (ms, median of the rounds), by process:\n")
            names = ["bare app", "web", "worker", "PostgreSQL", "Redis", "load generator"]
            print("| path | app | " + " | ".join(names) + " | all |")
            print("| --- | --- |" + " ---: |" * (len(names) + 1))
            for (key, name), rounds in split.items():
                med = {g: statistics.median(r[g] for r in rounds) for g in rounds[0]}
                cells = [f"{med[g]:.2f}" if g in med else "" for g in names]
                print(f"| {LABELS[key]} | {name} | " + " | ".join(cells) + f" | {sum(med.values()):.2f} |")
        return 0 if met else 1
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        shutil.rmtree(instance, ignore_errors=True)


def wait_booked(engine, events: int, timeout: float = 600) -> None:
    """Until the worker has booked `events` donations (or `timeout` seconds have passed)."""
    import sqlalchemy as sa

    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while conn.execute(sa.text("SELECT count(*) FROM donations")).scalar() < events:
            if time.monotonic() > deadline:
                return  # check_money says what is missing
            conn.rollback()
            time.sleep(0.2)


def worker_of(supervisor: int, timeout: float = 30) -> int:
    """The pid of the worker `filmfund run` started (its child running `filmfund.cli worker`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split():
            try:
                if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                    return int(pid)
            except OSError:
                continue
        time.sleep(0.2)
    raise RuntimeError("filmfund run started no worker")


def descendants(pid: int) -> list[int]:
    """The processes `pid` started, and theirs."""
    found: list[int] = []
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return found
    for child in children:
        found += [child, *descendants(child)]
    return found


def group_cpu(groups: dict[str, list[int] | str]) -> dict[str, float]:
    """CPU seconds so far of each group: its processes, or (a name) every process of that name."""
    out: dict[str, float] = {}
    for group, members in groups.items():
        if isinstance(members, str):
            members = [int(p) for p in os.listdir("/proc") if p.isdigit() and _named(int(p), members)]
        out[group] = sum(_cpu_or_zero(p) for p in members)
    return out


def _named(pid: int, name: str) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().startswith(name)
    except OSError:
        return False


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:  # ended meanwhile
        return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, timeout: float = 600) -> None:
    """Until the worker has used under a tenth of a core for two half-seconds running: its queue
    is drained (an idle worker, waiting on Redis and running its once-a-second scheduler, uses
    about 5%)."""
    deadline, quiet = time.monotonic() + timeout, 0
    last = cpu_seconds(pid)
    while quiet < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        quiet = quiet + 1 if now - last < 0.05 else 0
        last = now


def check_money(database_url: str, events: int, expected: int, env: dict, cli: list[str], instance: Path) -> str:
    """Wait for the worker to book every accepted event, then check that the money is exact."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    wait_booked(engine, events)
    with engine.connect() as conn:
        count, total = conn.execute(sa.text("SELECT count(*), coalesce(sum(amount), 0) FROM donations")).one()
        net = conn.execute(sa.text("SELECT coalesce(sum(net), 0) FROM campaign_totals WHERE NOT livemode")).scalar()
        states = dict(conn.execute(sa.text("SELECT status, count(*) FROM webhook_events GROUP BY status")).all())
        problems = conn.execute(sa.text("SELECT error FROM webhook_events WHERE error IS NOT NULL LIMIT 3")).all()
    engine.dispose()
    assert count == events, f"{count} donations booked for {events} accepted events: {states} {problems}"
    assert total == expected, f"donations sum to {total}, the pledges to {expected}"
    assert net == expected, f"the campaign's running total is {net}, the pledges {expected}"
    check = subprocess.run([*cli, "ledger", "check"], env=env, capture_output=True, text=True, cwd=instance)
    assert check.returncode == 0, check.stdout + check.stderr
    return (f"{count} donations booked by the worker, {total:,} cents, exactly the pledged sum; the running total "
            f"agrees; `filmfund ledger check`: {check.stdout.strip()}")


if __name__ == "__main__":
    sys.exit(main())
