"""On PostgreSQL a stored Stripe event wakes the workers itself: its INSERT notifies a channel when
it commits (and not if it rolls back), and a listening worker books every event waiting at each
wake-up, at its start (what was stored while none listened), and after losing its connection."""
from __future__ import annotations

import json
import time

import psycopg
import pytest
import sqlalchemy as sa

from filmfund import jobs
from filmfund.extensions import db
from filmfund.rewards import booking_listener, webhooks
from filmfund.rewards.models import Donation, WebhookEvent

from tests.waiting import wait_until

from .conftest import make_event, session_obj


@pytest.fixture
def postgres(app):
    if not webhooks.storing_wakes_workers(db.engine.dialect):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; on SQLite each event queues its task")
    jobs.flush()
    yield db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    jobs.flush()


@pytest.fixture
def listening(postgres):
    """A connection listening on the booking channel, as a worker's listener does."""
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f"LISTEN {webhooks.BOOKING_CHANNEL}")
        yield conn


def heard(conn, within: float = 2.0) -> int:
    """How many notifications arrive within `within` seconds (stops at the first quiet half-second)."""
    got = list(conn.notifies(timeout=within, stop_after=1))
    return len(got) + len(list(conn.notifies(timeout=0.5))) if got else 0


def donations() -> int:
    db.session.rollback()  # read what the listener's own session committed
    return db.session.scalar(sa.select(sa.func.count()).select_from(Donation))


def paid_event(pledge, amount: int = 2500) -> dict:
    p = pledge(amount)
    return make_event("checkout.session.completed", session_obj(p.id, amount))


def test_a_new_event_wakes_the_listeners_once_and_queues_nothing(stripe_events, pledge, campaign, listening):
    event = paid_event(pledge)
    assert stripe_events.post(event, book=False).get_json() == {"received": True, "status": "received"}
    assert heard(listening) == 1
    assert len(jobs.mail) == 0  # no task: the notification is the wake-up
    # A redelivery stores nothing and wakes no one by its insert; as its event still waits, it
    # queues a task, as on SQLite (the listener may be the one that is gone).
    assert stripe_events.post(event, book=False).get_json() == {"received": True, "duplicate": True}
    assert heard(listening, within=0.5) == 0
    assert len(jobs.mail) == 1


def test_an_insert_rolled_back_wakes_no_one(app, pledge, campaign, listening):
    event = paid_event(pledge)
    payload = json.dumps(event).encode()
    db.session.execute(sa.text("SELECT 1"))  # the session's transaction: the insert runs in it
    assert webhooks._store_once(event, event["id"], payload, None) is not None
    db.session.rollback()
    assert heard(listening, within=0.5) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 0
    assert webhooks._store_once(event, event["id"], payload, None) is not None
    db.session.commit()
    assert heard(listening) == 1


def test_a_listening_worker_books_what_waited_and_each_new_event(app, stripe_events, pledge, campaign, postgres):
    stripe_events.post(paid_event(pledge), book=False)  # stored while no worker listened
    stop = booking_listener.start(app)
    try:
        wait_until(lambda: donations() == 1, message="the event stored before the listener started")
        for _ in range(3):
            stripe_events.post(paid_event(pledge), book=False)
        wait_until(lambda: donations() == 4, message="the events stored while it listened")
    finally:
        began = time.monotonic()
        stop()
        assert time.monotonic() - began < booking_listener.STOP_CHECK + 2  # a stopping worker is not held
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)
                             .where(WebhookEvent.status == "received")) == 0


def test_a_listener_whose_connection_is_cut_listens_again(app, stripe_events, pledge, campaign, postgres):
    stop = booking_listener.start(app)
    try:
        def cut() -> int:
            with psycopg.connect(postgres, autocommit=True) as admin:
                return len(admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = 'filmfund stripe-event listener'").fetchall())

        assert wait_until(cut, message="the listener's connection") == 1
        stripe_events.post(paid_event(pledge), book=False)  # notified while no one listened
        wait_until(lambda: donations() == 1, timeout=booking_listener.RECONNECT_AFTER + 10,
                   message="the event notified while the listener was cut off")
    finally:
        stop()


def test_a_burst_worker_books_the_waiting_events_first(app, stripe_events, pledge, campaign, postgres):
    """`filmfund worker --burst` (no listener stays) books what waits, as a listener does at its start."""
    from tests.worker import run_worker

    for _ in range(2):
        stripe_events.post(paid_event(pledge), book=False)
    assert len(jobs.mail) == 0
    assert run_worker(app) == 0  # no task ran: the events were booked before the queue
    assert donations() == 2
