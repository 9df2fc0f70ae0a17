"""The worker's wake-up for Stripe events on PostgreSQL: LISTEN on the channel that storing an
event notifies (`webhooks._insert_once`), and book every event waiting each time it is woken.

Why not a queued task per event, as on SQLite: the task cost the web process a Redis round trip
per accept (a fifth of its CPU there), and the worker a dequeue per event whose booking another
task's batch had usually done already. The notification is sent by PostgreSQL when the event's row
commits, so nothing is lost between the two either. What does not change: the booking is the
same drain (`webhooks.drain_waiting`, one per process at a time, its claims skipping other
workers' rows), a redelivery of an event still waiting is queued as before, and the minute sweep
(`webhooks.sweep_stripe_events`) still books whatever waits longer than it should (no worker
listening, a booking that failed).

Notifications are not stored: one sent while no worker listens is gone. So the listener books what
is waiting when it starts listening, and again each `IDLE_DRAIN` seconds without a wake-up (one
indexed read; it also finds a connection that died without a word). Each worker process listens
on one connection of its own, outside the pool."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask

from filmfund.extensions import db
from filmfund.rewards.webhooks import BOOKING_CHANNEL, drain_waiting, storing_wakes_workers

log = logging.getLogger(__name__)

IDLE_DRAIN = 30.0  # seconds without a wake-up before the listener looks for waiting events anyway
RECONNECT_AFTER = 2.0  # seconds between tries after the connection failed
STOP_CHECK = 1.0  # seconds a wait lasts before the listener looks whether the worker is stopping


def start(app: Flask) -> Callable[[], None] | None:
    """Start listening in a thread of this worker process, if the database is PostgreSQL; returns
    the function that stops it (None on SQLite, whose events are queued as tasks)."""
    with app.app_context():
        if not storing_wakes_workers(db.engine.dialect):
            return None
        conninfo = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    stop = threading.Event()
    thread = threading.Thread(target=listen, args=(app, conninfo, stop), name="stripe-event-listener", daemon=True)
    thread.start()

    def stop_listening() -> None:
        stop.set()
        thread.join(STOP_CHECK + 10)  # a drain under way finishes its booking (each its own transaction)

    return stop_listening


def listen(app: Flask, conninfo: str, stop: threading.Event) -> None:
    """Until `stop`: listen, and book what waits at each wake-up (and at the start, and when idle)."""
    import psycopg

    while not stop.is_set():
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=10,
                                 application_name="filmfund stripe-event listener") as conn:
                conn.execute(f"LISTEN {BOOKING_CHANNEL}")
                while not stop.is_set():
                    _book_logged(app)
                    booked_at = time.monotonic()
                    while not stop.is_set():
                        if list(conn.notifies(timeout=STOP_CHECK, stop_after=1)):
                            # What was notified while it waited or booked: one more drain books it all.
                            list(conn.notifies(timeout=0))
                            break
                        if time.monotonic() - booked_at >= IDLE_DRAIN:
                            conn.execute("SELECT 1")  # still connected (a dead one raises: reconnect)
                            break
        except Exception:  # noqa: BLE001 - the connection failed (the database restarting): again shortly
            log.exception("the Stripe event listener lost its connection; it listens again in %s s", RECONNECT_AFTER)
            stop.wait(RECONNECT_AFTER)


def _book_logged(app: Flask) -> int:
    try:
        return book_waiting(app)
    except Exception:  # noqa: BLE001 - the events stay waiting: the next wake-up, the idle drain, the sweep
        log.exception("booking the waiting Stripe events failed; they stay received")
        return 0


def catch_up(app: Flask) -> int:
    """What a listener does as it starts, for a worker that does not stay (`filmfund worker
    --burst`): book every event stored while no worker listened. Nothing on SQLite, where each
    event has its queued task. Returns how many were booked; a booking that fails is logged, and
    its event stays waiting, as under a listener."""
    with app.app_context():
        if not storing_wakes_workers(db.engine.dialect):
            return 0
    return _book_logged(app)


def book_waiting(app: Flask) -> int:
    """Book every event waiting, in the worker's app context (its own database session)."""
    with app.app_context():
        try:
            return drain_waiting()
        finally:
            db.session.remove()
