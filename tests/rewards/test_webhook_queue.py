"""Store-then-process: a verified event is stored and answered at once, a worker books it (the
queue path, which every webhook test takes), and malformed or foreign signed events are stored
with their reason and answered 200."""
import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from filmfund import jobs
from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.rewards import booking_listener, ledger_check, payments, pledges, webhooks
from filmfund.rewards.models import Donation, LedgerEntry, PledgeState, WebhookEvent
from filmfund.rewards.webhooks import sign_payload

from tests.waiting import wait_until
from tests.worker import run_worker

from .conftest import charge_obj, make_event, session_obj


@pytest.fixture
def queue(app):
    """This test's queue of webhook bookings (the app's mail-and-payments lane), empty."""
    jobs.flush()
    yield jobs.mail
    jobs.flush()


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_answered_at_once_then_booked_by_the_worker(app, stripe_events, pledge, campaign, queue):
    p = pledge(5000)
    pi = f"pi_{p.id}"
    paid = make_event("checkout.session.completed", session_obj(p.id, 5000, pi=pi))
    refund = make_event("charge.refunded", charge_obj(pi, 5000, 1000))
    assert stripe_events.post(paid, book=False).get_json() == {"received": True, "status": "received"}
    assert stripe_events.post(refund, book=False).get_json() == {"received": True, "status": "received"}
    assert stripe_events.post(paid, book=False).get_json() == {"received": True, "duplicate": True}
    # Stored, not booked: nothing counts yet, and the thank-you page still waits.
    assert count(WebhookEvent, WebhookEvent.status == "received") == 2
    assert count(LedgerEntry) == 0 and pledges.get_pledge(p.id).state == PledgeState.PENDING
    # A booking on its way for each answer not yet booked. On SQLite, a queued task each (the
    # redelivery's too). On PostgreSQL, a new event's row woke the listening workers as it
    # committed (booking_listener), and only the redelivery queues a task.
    tasks = 3 if db.engine.dialect.name == "sqlite" else 1
    assert len(queue) == tasks
    assert run_worker(app) == tasks + 1  # and the refund's notice to the donor, queued by its booking
    assert count(WebhookEvent, WebhookEvent.status == "processed") == 2
    assert payments.partner_statement(campaign)["net"] == 4000
    assert pledges.get_pledge(p.id).state == PledgeState.PAID
    assert ledger_check.check_ledger() == []


def test_a_lost_task_is_booked_by_the_sweep_once(stripe_events, pledge, campaign, queue):
    p = pledge(2500)
    event = make_event("checkout.session.completed", session_obj(p.id, 2500))
    stripe_events.post(event, book=False)
    queue.flush()  # the queue lost the task (Redis restarted, a worker killed mid-booking)
    assert webhooks.book_pending_older(0) == 1
    assert webhooks.book_pending_older(0) == 0
    assert webhooks.sweep_stripe_events.call_local() == 0  # nothing left
    assert count(Donation) == 1 and payments.partner_statement(campaign)["net"] == 2500
    # A redelivery after booking is a duplicate and queues nothing.
    assert stripe_events.post(event, book=False).get_json() == {"received": True, "duplicate": True}
    assert len(queue) == 0


def test_a_crash_mid_booking_leaves_the_event_received_and_booked_once(app, stripe_events, pledge, campaign, queue,
                                                                      crash_first_booking):
    p = pledge(5000)
    event = make_event("checkout.session.completed", session_obj(p.id, 5000))
    assert stripe_events.post(event, book=False).status_code == 200
    # The worker's first look at it raises: rolled back. (SQLite: its task, retried later; PostgreSQL:
    # the listener's drain, which logs it and books it at its next wake-up.)
    if db.engine.dialect.name == "sqlite":
        jobs.mail.execute(queue.dequeue())
    else:
        assert booking_listener.catch_up(app) == 0
    assert count(WebhookEvent, WebhookEvent.status == "received") == 1
    assert count(LedgerEntry) == 0 and count(Donation) == 0
    # Stripe redelivers: still unbooked, so it is queued again, and booked once.
    assert stripe_events.post(event, book=False).get_json() == {"received": True, "duplicate": True}
    run_worker(app)
    assert count(Donation) == 1 and payments.partner_statement(campaign)["gross"] == 5000
    assert ledger_check.check_ledger() == []


# ------------------------------------------------------------------ issue 7.6: signed but not bookable

def _post_raw(app, client, doc) -> dict:
    payload = json.dumps(doc).encode()
    response = client.post("/webhooks/stripe", data=payload, content_type="application/json",
                           headers={"Stripe-Signature": sign_payload(payload, app.config["STRIPE_WEBHOOK_SECRET"])})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


@pytest.mark.parametrize("change, reason", [
    (lambda e: e["data"]["object"].update(amount_total=10**11), "amount_total"),
    (lambda e: e["data"]["object"].update(amount_total="5000"), "amount_total"),
    (lambda e: e["data"]["object"].update(metadata="pledge", client_reference_id=None), "metadata"),
    (lambda e: e["data"]["object"].update(id={"nested": 1}), "id is not a string"),
    (lambda e: e["data"]["object"].update(currency=840), "currency"),
    (lambda e: e["data"]["object"].update(customer_details="someone"), "customer_details"),
    (lambda e: e.update(id={"evt": 1}), "id is not a string"),
    (lambda e: e.update(type=7), "type is not a string"),
    (lambda e: e.update(data="x"), "data.object"),
])
def test_signed_events_that_cannot_be_booked_are_kept_failed(app, client, pledge, campaign, queue, change, reason):
    p = pledge(5000)
    event = make_event("checkout.session.completed", session_obj(p.id, 5000))
    change(event)
    first = _post_raw(app, client, event)
    run_worker(app)
    assert _post_raw(app, client, event) == {"received": True, "duplicate": True}
    [row] = db.session.scalars(sa.select(WebhookEvent)).all()
    assert row.status == "failed" and reason in row.error, (first, row.error)
    assert count(Donation) == 0 and count(LedgerEntry) == 0
    assert pledges.get_pledge(p.id).state == PledgeState.PENDING


def test_a_refund_with_a_huge_amount_is_kept_failed(app, client, stripe_events, pledge, campaign, queue):
    p = pledge(5000)
    stripe_events.post(make_event("checkout.session.completed", session_obj(p.id, 5000)))
    _post_raw(app, client, make_event("charge.refunded", charge_obj(f"pi_{p.id}", 5000, 10**11)))
    run_worker(app)
    [row] = webhooks.list_webhook_events("failed")
    assert "amount_refunded" in row.error
    assert payments.partner_statement(campaign)["net"] == 5000


def test_events_of_another_account_are_ignored(app, client, stripe_events, pledge, campaign, queue):
    p = pledge(5000)
    event = dict(make_event("checkout.session.completed", session_obj(p.id, 5000)), account="acct_someone_else")
    assert _post_raw(app, client, event) == {"received": True, "status": "ignored"}
    run_worker(app)
    [row] = webhooks.list_webhook_events("ignored")
    assert "another Stripe account" in row.error
    assert count(Donation) == 0 and pledges.get_pledge(p.id).state == PledgeState.PENDING


def _generic_plan(stmt, *args) -> str:
    """The plan PostgreSQL keeps for `stmt` once psycopg has prepared it (a statement run five
    times) and the server has settled on a generic plan, planned on this test's small table."""
    from sqlalchemy.dialects import postgresql

    sql = str(stmt.compile(dialect=postgresql.dialect(paramstyle="numeric_dollar")))
    conn = db.session.connection()
    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    conn.exec_driver_sql(f"PREPARE booking_lookup AS {sql}")
    try:
        values = ", ".join(repr(a) for a in args)
        return "\n".join(conn.exec_driver_sql(f"EXPLAIN EXECUTE booking_lookup({values})").scalars())
    finally:
        conn.exec_driver_sql("DEALLOCATE booking_lookup")
        db.session.rollback()


def test_a_storm_is_booked_without_rereading_the_backlog(app, stripe_events, pledge, campaign, queue):
    """Each booking claims its event and looks for the next ones waiting. Both lookups must read
    what they return and no more, in the plan PostgreSQL keeps for them whatever the table held
    when it was made: a claim that also filtered on the status was planned on the status index
    and read every waiting event at each booking (10 ms of the database's CPU per booking in a
    storm of 2,000)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's plans of prepared statements")
    for _ in range(3):
        p = pledge(2500)
        stripe_events.post(make_event("checkout.session.completed", session_obj(p.id, 2500)), book=False)
    claim = _generic_plan(webhooks.claim_statement(1), 1)
    assert "Index Scan using pk_webhook_events" in claim, claim
    assert "status" not in claim, claim  # the status is read on the locked row, not searched for
    waiting = _generic_plan(webhooks.waiting_statement(100), "received", 100)
    assert "Index Scan using ix_webhook_events_status_received" in waiting, waiting
    assert "Seq Scan" not in waiting and "\n  ->  Sort" not in waiting, waiting  # no full read and sort
    # And the storm is booked, each event once.
    run_worker(app)
    assert count(Donation) == 3 and count(WebhookEvent, WebhookEvent.status == "received") == 0


def test_a_new_donors_booking_reads_nothing_twice(app, stripe_events, pledge, campaign, queue):
    """A booking's statements are most of what a worker spends on a payment (about half a
    millisecond of CPU each): the new donor's account is looked up once and made with its role,
    without looking again or reading its (empty) roles back; the campaign is checked once; the
    event's row is written once."""
    p = pledge(2500, email="first.gift@example.org")
    paid = session_obj(p.id, 2500, email="first.gift@example.org")
    stripe_events.post(make_event("checkout.session.completed", paid), book=False)
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        run_worker(app)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)

    def n(start: str) -> int:
        return sum(1 for s in seen if s.startswith(start))

    assert n("SELECT users.") == 1, seen
    assert n("SELECT user_roles.") == 0, seen
    assert n("INSERT INTO users ") == 1 and n("INSERT INTO user_roles ") == 1, seen
    assert n("SELECT campaigns.id, campaigns.updated_at ") == 1, seen
    # (SQLite's claim takes the write lock with an UPDATE that changes nothing: not a write of it)
    writes = [s for s in seen if s.startswith("UPDATE webhook_events ") and "AND webhook_events.status" not in s]
    assert len(writes) == 1, writes
    donation = db.session.scalars(sa.select(Donation)).one()
    assert donation.user.email == "first.gift@example.org" and donation.user.role_names == {"donor"}


# ------------------------------------------------------------------ draining the waiting events

def test_a_damaged_waiting_event_does_not_hold_back_the_ones_after_it(app, stripe_events, pledge, campaign,
                                                                      queue, caplog):
    """The oldest waiting row cannot be read (its stored payload was damaged): the sweep still
    books every event behind it, names the damaged one in the log, and leaves it waiting."""
    db.session.add(WebhookEvent(event_id="evt_damaged", type="checkout.session.completed", livemode=False,
                                payload='{"id": "evt_damaged", "data":', status="received",
                                received_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    for amount in (2500, 3000):
        p = pledge(amount)
        stripe_events.post(make_event("checkout.session.completed", session_obj(p.id, amount)), book=False)
    queue.flush()  # their tasks were lost: the sweep finds all three, the damaged one first
    assert webhooks.book_pending_older(0) == 2
    assert count(Donation) == 2 and payments.partner_statement(campaign)["gross"] == 5500
    damaged = db.session.scalars(sa.select(WebhookEvent).where(WebhookEvent.event_id == "evt_damaged")).one()
    assert damaged.status.value == "received"
    assert any(f"row {damaged.id} failed" in r.getMessage() for r in caplog.records)
    assert damaged.error.startswith("not booked yet: its last booking failed (JSONDecodeError;")  # the inbox shows it
    assert "Expecting" not in damaged.error  # the kind only: a message can quote a donor's email
    # Nothing else waits: with only the damaged one left, the error is raised (a task is retried).
    with pytest.raises(json.JSONDecodeError):
        webhooks.book_pending_older(0)
    # Several damaged rows at the head: each is named, none blocks, and with none booked the
    # error is raised.
    for i in range(4):
        db.session.add(WebhookEvent(event_id=f"evt_damaged_{i}", type="checkout.session.completed",
                                    livemode=False, payload="{", status="received"))
    db.session.commit()
    p = pledge(1000)
    stripe_events.post(make_event("checkout.session.completed", session_obj(p.id, 1000)), book=False)
    caplog.clear()
    assert webhooks.book_pending_older(0) == 1
    assert len([r for r in caplog.records if "failed; it stays received" in r.getMessage()]) == 5
    assert count(WebhookEvent, WebhookEvent.status == "received") == 5


def test_a_database_lost_mid_batch_ends_the_batch(app, stripe_events, pledge, campaign, queue, caplog):
    """The connection dies under the second booking: that is the database's error, not the
    event's, so the batch stops there (the task is retried) instead of failing every event left."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("a server connection ended from outside")
    for amount in (1000, 2000, 3000):
        p = pledge(amount)
        stripe_events.post(make_event("checkout.session.completed", session_obj(p.id, amount)), book=False)
    queue.flush()
    claims = []

    def end_the_second_claim(_conn, cursor, statement, *_args) -> None:
        if statement.lstrip().startswith("SELECT webhook_events.") and "FOR UPDATE" in statement:
            claims.append(statement)
            if len(claims) == 2:
                with db.engine.connect() as admin:
                    admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"),
                                  {"pid": cursor.connection.info.backend_pid})

    sa.event.listen(db.engine, "before_cursor_execute", end_the_second_claim)
    try:
        with pytest.raises(sa.exc.OperationalError):
            webhooks.book_pending_older(0)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", end_the_second_claim)
    assert len(claims) == 2  # the third event was not tried
    assert not [r for r in caplog.records if "failed; it stays received" in r.getMessage()]
    db.session.rollback()
    assert count(Donation) == 1 and count(WebhookEvent, WebhookEvent.status == "received") == 2
    assert webhooks.book_pending_older(0) == 2  # the next batch (the task's retry) books the rest


def test_a_booking_task_leaves_its_event_to_the_drain_running_in_its_worker(app, stripe_events, pledge, campaign,
                                                                            queue):
    """One drain books at a time per worker: a task that comes while it runs returns at once,
    and the running drain books its event too (it reads the waiting list until it books none)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("a booking held on a row lock")
    first, second = pledge(2500), pledge(3000)
    stripe_events.post(make_event("checkout.session.completed", session_obj(first.id, 2500)), book=False)
    queue.flush()
    drained: list[int] = []
    with db.engine.connect() as holder:
        holder.execute(sa.text("SELECT id FROM pledges WHERE id = :id FOR UPDATE"), {"id": first.id})

        def drain() -> None:
            with app.app_context():
                drained.append(webhooks.drain_waiting())

        thread = threading.Thread(target=drain)
        thread.start()
        with db.engine.connect() as watch:
            def drain_waits_on_the_row() -> int:
                watch.rollback()  # a fresh snapshot of pg_stat_activity at each look
                return watch.scalar(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                            "current_database() AND wait_event_type = 'Lock'"))

            wait_until(drain_waits_on_the_row, timeout=30, message="the drain never reached the locked pledge")
        event = make_event("checkout.session.completed", session_obj(second.id, 3000))
        stripe_events.post(event, book=False)
        row_id = db.session.scalar(sa.select(WebhookEvent.id).where(WebhookEvent.event_id == event["id"]))
        assert webhooks.book_stripe_event.call_local(row_id) == 0  # this worker's drain is running
        assert count(Donation) == 0
        holder.rollback()  # the first pledge's row is free: the drain goes on
    thread.join(30)
    assert drained == [2]
    db.session.expire_all()
    assert count(Donation) == 2 and count(WebhookEvent, WebhookEvent.status == "received") == 0
    assert payments.partner_statement(campaign)["gross"] == 5500
