"""Faults, each a test: what a launch day can break, and what must still hold.

- a webhook storm (30% duplicates, shuffled) while a web process of `filmfund run` is killed and
  restarted by its supervisor: the ledger is exact;
- the database unavailable during a webhook (cut mid-handler at every statement on PostgreSQL,
  locked on SQLite): Stripe gets a 5xx, nothing is half-written, the redelivery books once;
- Redis restarted (our own redis-server, never the machine's): queued jobs survive.
"""
from __future__ import annotations

import io
import json
import os
import random
import signal
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.rewards import payments
from filmfund.rewards.receipts import sweep_receipts
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.ledger_check import check_ledger
from filmfund.rewards.models import Donation, LedgerEntry, Pledge, WebhookEvent
from filmfund.rewards.webhooks import sign_payload
from tests.helpers import make_pledge
from tests.ops.conftest import free_port, process_alive
from tests.rewards.conftest import make_event, session_obj
from tests.waiting import wait_until
from tests.worker import run_worker


def _count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _paid_events(pledges: list[Pledge]) -> list[dict]:
    return [make_event("checkout.session.completed",
                       session_obj(p.id, p.amount, session_id=p.checkout_session_id, email=p.email))
            for p in pledges]


def _deliver(base: str, secret: str, event: dict, attempts: int = 60) -> int:
    """POST like Stripe: signed; a connection error or a 5xx is delivered again a moment later."""
    payload = json.dumps(event).encode()
    status = 0
    for _ in range(attempts):
        req = urllib.request.Request(base + "/webhooks/stripe", data=payload, method="POST", headers={
            "Content-Type": "application/json", "Stripe-Signature": sign_payload(payload, secret)})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status = resp.status
        except urllib.error.HTTPError as err:
            status = err.code
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            status = 0
        if 200 <= status < 300:
            return status
        assert status == 0 or status >= 500, f"Stripe would not retry a {status}"
        time.sleep(0.2)
    return status


def _children(pid: int) -> set[int]:
    out = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        out |= {int(c) for c in open(f"/proc/{pid}/task/{task}/children").read().split()}
    return out


def _wait_booked(n: int, timeout: float = 90) -> None:
    """Until n donations are booked and no event waits (the server's worker books them)."""

    def booked() -> bool:
        db.session.remove()
        return _count(Donation) >= n and _count(WebhookEvent, WebhookEvent.status == "received") == 0

    wait_until(booked, timeout=timeout, interval=0.1, message=f"{n} donations booked by the worker")


def test_a_webhook_storm_while_a_web_process_is_killed_keeps_the_ledger_exact(app, campaign, start_server,
                                                                             private_redis):
    server = start_server("--processes", "2", "--threads", "4", FILMFUND_RATELIMIT_STORAGE_URL=private_redis.url)
    pledges = [make_pledge(1000 + 37 * i, email=f"storm{i}@example.org") for i in range(40)]
    expected = {p.id: p.amount for p in pledges}
    events = _paid_events(pledges)
    rng = random.Random(9)
    deliveries = events + rng.sample(events, k=len(events) * 3 // 10)  # 30% delivered twice
    rng.shuffle(deliveries)
    db.session.remove()  # the test holds no transaction while the server writes

    secret = app.config["STRIPE_WEBHOOK_SECRET"]
    victim, done = server.web_pids[0], []
    killed = threading.Event()

    def send(event):
        status = _deliver(server.base, secret, event)
        done.append(status)
        if len(done) >= len(deliveries) // 3 and not killed.is_set():
            killed.set()
            os.kill(victim, signal.SIGKILL)  # mid-storm: its in-flight requests are lost
        return status

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(send, deliveries))
    assert statuses == [200] * len(deliveries)
    assert killed.is_set() and not process_alive(victim)
    # The supervisor starts another web process in its place (and the worker is still there). It
    # polls its children, so on a loaded machine the storm may end before it has noticed: wait.
    def replaced() -> bool:
        web_now = _children(server.proc.pid) - {server.worker_pid}
        return len(web_now) == 2 and victim not in web_now

    wait_until(replaced, timeout=15, interval=0.1, message="the supervisor replaced the killed web process")

    _wait_booked(len(pledges))
    assert _count(WebhookEvent) == len(events)
    donations = db.session.execute(sa.select(Donation.pledge_id, Donation.amount)).all()
    assert sorted(donations) == sorted(expected.items())  # one donation per pledge, to the cent
    assert payments.partner_statement(current_campaign())["net"] == sum(expected.values())
    assert check_ledger() == []
    assert server.stop() == 0


class CutProxy:
    """A TCP proxy to PostgreSQL that can cut every connection after the k-th message a client
    sends once armed (the database vanishing mid-transaction), and refuse new ones while down."""

    def __init__(self, target: tuple[str, int]):
        self.target, self.port = target, free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.lock = threading.Lock()
        self.conns: list[tuple[socket.socket, socket.socket]] = []
        self.armed_after: int | None = None
        self.sent = 0
        self.down = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.conns.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src, dst, from_client):
        try:
            while chunk := src.recv(65536):
                if from_client:
                    with self.lock:
                        if self.armed_after is not None:
                            self.sent += 1
                            if self.sent >= self.armed_after:
                                self.down = True
                    if self.down:
                        self.cut()
                        return
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for pair in conns:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def arm(self, k: int):
        self.sent, self.armed_after, self.down = 0, k, False

    def restore(self):
        self.armed_after, self.down = None, False

    def close(self):
        self.listener.close()
        self.cut()


def _state() -> tuple:
    db.session.remove()
    return (_count(WebhookEvent), _count(Donation), _count(LedgerEntry))


def test_the_database_lost_during_a_webhook_gives_stripe_a_5xx_and_writes_nothing(app, campaign, database_url):
    pledge = make_pledge(2500, email="outage@example.org")
    [event] = _paid_events([pledge])
    payload = json.dumps(event).encode()
    headers = {"Stripe-Signature": sign_payload(payload, app.config["STRIPE_WEBHOOK_SECRET"]),
               "Content-Type": "application/json"}
    client = app.test_client()
    before = _state()

    if database_url.startswith("sqlite"):
        # SQLite "unavailable": another process holds the file's exclusive lock for the request.
        # The app's connections wait 10 s for a lock (db.py's busy_timeout); these wait 0.3 s, the
        # outcome is the same and the test does not sit out the ten seconds.
        db.engine.dispose()
        sa.event.listen(db.engine, "connect", lambda conn, _record: conn.execute("PRAGMA busy_timeout=300"))
        holder = sqlite3.connect(urlparse(database_url).path, timeout=1)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            r = client.post("/webhooks/stripe", data=payload, headers=headers)
        finally:
            holder.rollback()
            holder.close()
        assert r.status_code >= 500 and r.get_json()["error"]["code"]
        assert _state() == before
    else:
        # PostgreSQL through a proxy that cuts the connection at the k-th statement, for every k
        # until the handler gets through: every failure is a 5xx and leaves nothing behind.
        url = sa.engine.make_url(database_url)
        proxy = CutProxy((url.host, url.port or 5432))
        engine = sa.create_engine(url.set(port=proxy.port, host="127.0.0.1"), pool_pre_ping=True)
        original = db.engines[None]
        db.engines[None] = engine  # this app's requests go through the proxy
        try:
            for k in range(1, 60):
                proxy.arm(k)
                r = client.post("/webhooks/stripe", data=payload, headers=headers)
                proxy.restore()
                if r.status_code == 200:
                    break
                assert r.status_code >= 500, (k, r.status_code, r.get_data(as_text=True))
                db.engines[None] = original
                # Nothing half-written: either nothing, or the stored event (a cut at its commit);
                # the request books nothing (a worker does), and every invariant holds.
                now = _state()
                assert now in (before, (before[0] + 1, *before[1:])), (k, before, now)
                assert check_ledger() == [], f"ledger breach after a cut at statement {k}"
                db.session.remove()
                db.engines[None] = engine
            else:
                pytest.fail("the webhook never got through")
            assert k > 1  # at least one cut really happened mid-handler
        finally:
            db.session.remove()
            db.engines[None] = original
            engine.dispose()
            proxy.close()
    # Stripe delivers again once the database is back: booked exactly once, by the worker.
    assert client.post("/webhooks/stripe", data=payload, headers=headers).status_code == 200
    assert client.post("/webhooks/stripe", data=payload, headers=headers).status_code == 200
    run_worker(app)
    assert _count(WebhookEvent) == before[0] + 1 and _count(Donation) == before[1] + 1
    assert check_ledger() == []


def test_queued_jobs_survive_a_redis_restart(app, private_redis, make_user):
    from filmfund import jobs
    from filmfund.auth import links
    from filmfund.mail import outbox_messages

    make_user("queued@example.org", "donor")
    jobs.configure_queue(private_redis.url)
    try:
        for i in range(3):
            links.mail_link("queued@example.org", links.SIGN_IN, f"http://site{i}.example")
        assert jobs.pending_count() == 3
        private_redis.restart()  # appendonly + fsync always: what was acknowledged is on disk
        assert jobs.pending_count() == 3
        assert jobs.run_burst() == 3
        assert len([m for m in outbox_messages() if "queued@example.org" in m.read_text()]) == 3
    finally:
        jobs.configure_queue(app.config["QUEUE_URL"])


def test_the_queue_out_of_reach_is_said_in_one_line_and_loses_no_footage(app, client, private_redis, producer,
                                                                        login_as, make_user, tmp_path):
    """Probe (ops, F2): with the queue's Redis down, asking for a sign-in link was a bare 500 and
    no link ever came; a producer's publish said "nothing was saved" when it was; `media ingest`
    printed a traceback. Now: the person asking for a link is told to try again (503, the form
    kept); footage is stored with its job queued, marked for the recovery, which queues it once
    Redis is back."""
    import subprocess

    import sqlalchemy as sa

    from filmfund import jobs
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.jobs import LEFT_NOTE, recover_jobs
    from filmfund.media.models import AssetState, Job, JobStatus
    from tests.site.helpers import csrf_token

    make_user("waiting@example.org", "donor")
    still = tmp_path / "still.jpg"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1",
                    str(still)], check=True)
    jobs.configure_queue(private_redis.url)
    try:
        private_redis.stop()
        token = csrf_token(client, "/login")
        page = client.post("/login", data={"csrf_token": token, "email": "waiting@example.org"})
        assert page.status_code == 503
        assert "cannot send sign-in links right now" in page.get_data(as_text=True)

        [result] = services.ingest_paths([still])  # the crew's command: no traceback, nothing lost
        db.session.commit()
        job = db.session.scalar(sa.select(Job).where(Job.asset_id == result.asset.id))
        db.session.refresh(job)
        assert job.status == JobStatus.QUEUED and job.error == LEFT_NOTE

        private_redis.start()
        recover_jobs(at_start=False)  # the minute's recovery, once the queue is back
        assert jobs.pending_count() == 1
        jobs.run_burst()  # its check, then what the check queues
        db.session.expire_all()
        assert services.get_asset(result.asset.public_id).state == AssetState.READY
    finally:
        jobs.configure_queue(app.config["QUEUE_URL"])


# ------------------------------------------------------------------ a full disk on the local backend

@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MiB tmpfs mounted for this test (the machine's own disks are never filled)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def app_overrides(request):
    if "tiny_disk" in request.fixturenames:
        return {"STORAGE_URL": request.getfixturevalue("tiny_disk").as_uri()}
    return {}


def test_a_full_disk_is_a_clear_error_and_stores_nothing(app, client, producer, login_as, tiny_disk):
    from filmfund.media.models import Asset
    from tests.site.helpers import csrf_token

    login_as(client, producer)
    token = csrf_token(client, "/footage/")
    big = os.urandom(3 * 1024 * 1024)  # more than the disk holds: the write fails part-way
    r = client.post("/footage/upload", data={"csrf_token": token, "file": (io.BytesIO(big), "A001.MTS")},
                    content_type="multipart/form-data", headers={"Accept": "text/html"})
    assert r.status_code == 507
    page = r.get_data(as_text=True)
    assert "is full: nothing was stored" in page and "on our side" not in page  # not the 500 page
    assert _count(Asset) == 0
    leftovers = [p for p in tiny_disk.rglob("*") if p.is_file()]
    assert leftovers == []  # no partial object, no orphan upload
    # Once there is room the same upload goes through.
    small = big[: 512 * 1024]
    ok = client.post("/footage/upload", data={"csrf_token": token, "file": (io.BytesIO(small), "A001.MTS")},
                     content_type="multipart/form-data")
    assert ok.status_code == 303 and _count(Asset) == 1


# ------------------------------------------------------------------ a worker killed mid-mail-batch

def test_a_worker_killed_mid_mail_batch_resumes_and_sends_nothing_twice(app, run_env, tmp_path):
    import asyncio
    import subprocess
    import sys
    from datetime import timedelta

    from aiosmtpd.controller import Controller

    from filmfund.comms import updates
    from filmfund.comms.models import DeliveryStatus, UpdateDelivery
    from filmfund.rewards.webhooks import complete_test_checkout

    class SlowSink:  # a mail server that takes its time, so the kill lands mid-batch
        def __init__(self):
            self.rcpts: list[str] = []

        async def handle_DATA(self, server, session, envelope):
            await asyncio.sleep(0.05)
            self.rcpts.extend(envelope.rcpt_tos)
            return "250 OK"

    n = 40
    for i in range(n):
        pledge = make_pledge(1500 + i, email=f"reader{i}@example.org")
        complete_test_checkout(pledge.id, "paid")
    update = updates.create_update(title="From the edit", body="A first cut.", audience="everyone")
    updates.publish_update(update.id)  # n delivery rows queued, the job in the queue
    db.session.commit()
    db.session.remove()

    sink = SlowSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    env = {**run_env, "FILMFUND_SMTP_URL": f"smtp://127.0.0.1:{controller.port}"}
    worker = [sys.executable, "-m", "filmfund.cli", "worker"]
    try:
        proc = subprocess.Popen(worker, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: len(sink.rcpts) >= 8, timeout=60, interval=0.02, message="8 mails sent before the kill")
        proc.kill()  # SIGKILL mid-batch: no clean-up runs
        proc.wait(10)
        sent_before = len(sink.rcpts)
        assert 8 <= sent_before < n, "the kill did not land mid-batch"

        # A later worker run: the sweep closes the dead worker's claim (never re-sending it) and
        # re-queues the update, whose remaining deliveries then go out.
        with app.app_context():
            swept = updates.sweep_deliveries(now=updates.utcnow() + updates.STALE_SENDING + timedelta(minutes=1))
            db.session.commit()  # the test is the sweep's caller: the update's job is queued by the commit
            db.session.remove()
        assert swept["requeued_updates"] == 1
        done = subprocess.run([*worker, "--burst"], env=env, cwd=tmp_path, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        controller.stop()

    assert len(sink.rcpts) == len(set(sink.rcpts)), "a donor got the update twice"
    statuses = dict(db.session.execute(sa.select(UpdateDelivery.status, sa.func.count()).group_by(
        UpdateDelivery.status)).all())
    assert set(statuses) <= {DeliveryStatus.SENT, DeliveryStatus.FAILED}, statuses  # nothing stuck
    assert statuses.get(DeliveryStatus.FAILED, 0) <= 1  # at most the one mail in flight at the kill
    assert sum(statuses.values()) == n
    assert statuses[DeliveryStatus.SENT] <= len(sink.rcpts) <= n


# ------------------------------------------------------------------ storage failing mid-upload (S3)

@pytest.fixture
def s3_through_proxy(tmp_path):
    """moto's S3 server behind a CutProxy that can drop every connection mid-upload."""
    import boto3
    from moto.server import ThreadedMotoServer

    for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(var, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    proxy = CutProxy((host, port))
    bucket = f"footage-faults-{os.getpid()}-{random.randrange(10**9)}"  # moto keeps buckets per process
    boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1").create_bucket(Bucket=bucket)
    yield proxy, f"http://127.0.0.1:{proxy.port}", bucket
    proxy.close()
    server.stop()


def test_storage_failing_mid_upload_leaves_no_orphan_asset(app, s3_through_proxy):
    from filmfund.errors import DomainError
    from filmfund.media import services
    from filmfund.media.models import Asset

    proxy, endpoint, bucket = s3_through_proxy
    app.config.update(STORAGE_URL=f"s3://{bucket}/media", S3_ENDPOINT_URL=endpoint, MEDIA_S3_PART_SIZE=5 * 1024 * 1024)
    data = os.urandom(12 * 1024 * 1024)  # three multipart parts
    proxy.arm(120)  # S3 goes away part-way through the parts (after ~7 MB sent)
    with pytest.raises(DomainError) as err:
        services.ingest_upload(io.BytesIO(data), "A002.MTS")
    proxy.restore()
    assert err.value.status == 503 and "nothing was stored" in err.value.message
    db.session.rollback()
    assert _count(Asset) == 0  # nothing registered
    store = services.storage()
    # What the dead upload left in the incoming area is swept; no content object was made.
    store.sweep_incoming(older_than=0)
    assert [k for k in store.keys() if "incoming" not in k] == []
    # Once the storage is back the same upload goes through: one asset.
    result = services.ingest_upload(io.BytesIO(data), "A002.MTS")
    db.session.commit()
    assert result.created and _count(Asset) == 1


# ------------------------------------------------------------------ a worker killed mid-booking

def test_a_worker_killed_mid_booking_resumes_books_once_and_mails_once(app, client, campaign, run_env, tmp_path):
    import subprocess
    import sys

    from filmfund.mail import outbox_messages
    from filmfund.rewards import webhooks

    n = 60
    pledges = [make_pledge(2000 + 11 * i, email=f"booked{i}@example.org") for i in range(n)]
    expected = {p.id: p.amount for p in pledges}
    secret = app.config["STRIPE_WEBHOOK_SECRET"]
    for event in _paid_events(pledges):  # stored and answered at once; the bookings are queued
        payload = json.dumps(event).encode()
        r = client.post("/webhooks/stripe", data=payload, headers={
            "Stripe-Signature": sign_payload(payload, secret), "Content-Type": "application/json"})
        assert r.status_code == 200
    db.session.remove()
    assert _count(Donation) == 0

    worker = [sys.executable, "-m", "filmfund.cli", "worker"]
    proc = subprocess.Popen(worker, env=run_env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def some_booked() -> bool:
        db.session.remove()
        return _count(Donation) >= 5

    wait_until(some_booked, timeout=60, interval=0.01, message="the worker booked 5 donations")
    proc.kill()  # SIGKILL mid-booking: its open transaction is rolled back by the database
    proc.wait(10)
    db.session.remove()
    booked_at_kill = _count(Donation)
    assert 5 <= booked_at_kill < n, "the kill did not land mid-way"

    # The next worker picks up what is queued; the minute sweep books what a lost task left.
    done = subprocess.run([*worker, "--burst"], env=run_env, cwd=tmp_path, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    webhooks.book_pending(limit=1000)
    db.session.remove()

    assert _count(WebhookEvent, WebhookEvent.status == "received") == 0  # nothing stuck
    donations = db.session.execute(sa.select(Donation.pledge_id, Donation.amount)).all()
    assert sorted(donations) == sorted(expected.items())  # each booked exactly once
    assert check_ledger() == []
    # A receipt whose worker was killed after the booking's commit is still claimed by it: the
    # hourly sweep sends it once that claim is stale (15 minutes on: these claims are made so).
    # One killed between the send and its mark is sent again then, under the same Message-ID.
    stale = utcnow() - timedelta(minutes=16)
    db.session.execute(sa.update(Donation).where(Donation.receipt_sent_at.is_(None))
                       .values(receipt_claimed_at=stale))
    db.session.commit()
    sweep_receipts.call_local()
    db.session.remove()
    assert _count(Donation, Donation.receipt_sent_at.is_(None)) == 0
    receipts = [m.read_text() for m in outbox_messages()]
    mailed = {i: sum(f"booked{i}@example.org" in text for text in receipts) for i in range(n)}
    assert mailed == {i: 1 for i in range(n)}  # every donor: one receipt, never none, never two
