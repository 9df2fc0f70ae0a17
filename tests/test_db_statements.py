"""db.insert_on_conflict: an INSERT … ON CONFLICT built with the dialects' insert() is compiled once
into SQL text that SQLAlchemy caches (its own statement is never cached: inherit_cache = False),
and it does what the statement it was built from does, on SQLite and on PostgreSQL."""
from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa


def test_the_statement_is_cacheable_and_made_once(app):
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    from filmfund.extensions import db
    from filmfund.rewards import totals, webhooks
    from filmfund.rewards.totals import DailyTotal

    dialect = db.engine.dialect
    # What the change is for: the dialect's own statement has no cache key, the text has one.
    assert pg_insert(DailyTotal.__table__).values(net=1)._generate_cache_key() is None
    first = webhooks._insert_once(dialect)
    assert first is webhooks._insert_once(dialect)
    assert first._generate_cache_key() is not None
    from filmfund.db import insert_on_conflict

    made = insert_on_conflict("daily_total_add", dialect, totals._ADD_TO_DAY)
    assert made._generate_cache_key() is not None and "ON CONFLICT" in made.text


def test_it_does_what_the_upsert_says(app, campaign):
    from filmfund.extensions import db
    from filmfund.rewards import totals
    from filmfund.rewards.totals import DailyTotal

    day = date(2026, 12, 4)
    totals.add_to_day(campaign.id, False, day, net=1500, gifts=1, share=300)
    totals.add_to_day(campaign.id, False, day, net=-500, gifts=0, share=-100)
    db.session.commit()
    row = db.session.execute(sa.select(DailyTotal.net, DailyTotal.gifts, DailyTotal.share).where(
        DailyTotal.campaign_id == campaign.id, DailyTotal.day == day)).one()
    assert tuple(row) == (1000, 1, 200)


def _event_values(event_id: str, **changes) -> dict:
    from datetime import datetime, timedelta, timezone

    from filmfund.rewards.models import WebhookStatus

    values = dict(event_id=event_id, type="checkout.session.completed", livemode=False, payload="{}",
                  # Beijing time: the row must keep the instant, stored as UTC.
                  received_at=datetime(2026, 12, 5, 9, 30, tzinfo=timezone(timedelta(hours=8))),
                  status=WebhookStatus.RECEIVED, error=None, processed_at=None, payment_intent_id=None,
                  charge_id=None)
    values.update(changes)
    return values


def test_one_statement_value_writes_what_the_orm_reads_back(app):
    """The webhook's insert through one_statement_value (the driver itself on PostgreSQL): the id
    comes back, the enum and the zoned time are stored as their types store them, and the same
    event again inserts nothing (None)."""
    from datetime import datetime, timezone

    from filmfund.extensions import db, one_statement_value
    from filmfund.rewards import webhooks
    from filmfund.rewards.models import WebhookEvent, WebhookStatus

    statement = webhooks._insert_once(db.engine.dialect)
    row_id = one_statement_value(statement, _event_values("evt_one"))
    assert isinstance(row_id, int)
    assert one_statement_value(statement, _event_values("evt_one")) is None
    row = db.session.get(WebhookEvent, row_id)
    assert (row.event_id, row.status, row.received_at) == (
        "evt_one", WebhookStatus.RECEIVED, datetime(2026, 12, 5, 1, 30, tzinfo=timezone.utc))
    raw_status = db.session.execute(sa.text("SELECT status FROM webhook_events WHERE id = :id"),
                                    {"id": row_id}).scalar()
    assert raw_status == WebhookStatus.RECEIVED.value  # the enum's value, as the ORM writes it


def test_one_statement_value_reports_errors_as_sqlalchemy_does(app):
    from filmfund.extensions import db, one_statement_value
    from filmfund.rewards import webhooks

    statement = webhooks._insert_once(db.engine.dialect)
    with pytest.raises(sa.exc.StatementError):  # the enum's type refuses the name, before any SQL
        one_statement_value(statement, _event_values("evt_bad", status="no-such-status"))
    with pytest.raises(sa.exc.IntegrityError):  # the database refuses the row (type is NOT NULL)
        one_statement_value(statement, _event_values("evt_null", type=None))
    db.session.rollback()
    assert one_statement_value(statement, _event_values("evt_after")) is not None  # the pool still works
    assert db.session.scalar(sa.text("SELECT count(*) FROM webhook_events")) == 1


def test_one_statement_value_joins_the_callers_transaction(app):
    from filmfund.extensions import db, one_statement_value
    from filmfund.rewards import webhooks

    db.session.execute(sa.text("SELECT 1"))  # a unit of work has begun
    assert one_statement_value(webhooks._insert_once(db.engine.dialect), _event_values("evt_undone")) is not None
    db.session.rollback()
    assert db.session.scalar(sa.text("SELECT count(*) FROM webhook_events")) == 0


def test_one_statement_value_survives_a_dropped_connection(app):
    """PostgreSQL ends the pooled connection (a restart, a failover): that call fails as SQLAlchemy's
    OperationalError and takes the connection out of the pool, and the next call works."""
    from filmfund.extensions import _autocommit_engine, db, one_statement_value
    from filmfund.rewards import webhooks

    if db.engine.dialect.name != "postgresql":
        pytest.skip("the driver's own path is PostgreSQL's")
    statement = webhooks._insert_once(db.engine.dialect)
    assert one_statement_value(statement, _event_values("evt_before")) is not None
    twin = _autocommit_engine(db.engine)
    assert twin.pool.checkedin() >= 1
    with db.engine.connect() as conn:
        ended = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'")).scalar()
    assert ended >= 1
    with pytest.raises(sa.exc.OperationalError) as caught:
        one_statement_value(statement, _event_values("evt_lost"))
    assert caught.value.connection_invalidated
    assert one_statement_value(statement, _event_values("evt_after")) is not None
    db.session.rollback()
    names = db.session.scalars(sa.text("SELECT event_id FROM webhook_events ORDER BY id")).all()
    assert names == ["evt_before", "evt_after"]


def test_threads_first_statements_at_once_share_one_autocommit_pool(app):
    """A freshly started web process takes its first requests on several threads at once: they all
    get the one autocommit pool, none makes another that is then left open."""
    import sys
    import threading

    from filmfund.extensions import _autocommit_engine, db

    if db.engine.dialect.name != "postgresql":
        pytest.skip("the driver's own path is PostgreSQL's")
    engine, found = db.engine, []
    start = threading.Barrier(8)

    def first_statement() -> None:
        with app.app_context():
            start.wait()
            found.append(_autocommit_engine(engine))

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the threads take turns as often as they can: a race, if any, is run
    try:
        for _ in range(5):  # each time a new process's first statements: the pool made afresh
            engine.dispose()
            found.clear()
            threads = [threading.Thread(target=first_statement) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(found) == 8 and len({id(e) for e in found}) == 1
            assert _autocommit_engine(engine) is found[0]
    finally:
        sys.setswitchinterval(switch)


def test_a_session_whose_connection_was_dropped_rolls_back_and_works_again(app):
    """The database ends a session's connection mid-transaction: the statement fails as
    OperationalError, the rollback that follows succeeds (an engine listener that read the lost
    connection's info used to raise PendingRollbackError from inside it, leaving the session
    broken), and the same session works again on a new connection."""
    from filmfund.extensions import db

    if db.engine.dialect.name != "postgresql":
        pytest.skip("a server connection ended from outside")
    db.session.execute(sa.text("INSERT INTO webhook_events (event_id, type, livemode, payload, received_at, status) "
                               "VALUES ('evt_lost_tx', 't', false, '{}', now(), 'received')"))
    pid = db.session.connection().connection.dbapi_connection.info.backend_pid
    with db.engine.connect() as admin:
        assert admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    with pytest.raises(sa.exc.OperationalError) as caught:
        db.session.execute(sa.text("SELECT 1"))
    assert caught.value.connection_invalidated
    db.session.rollback()
    assert db.session.scalar(sa.text("SELECT count(*) FROM webhook_events")) == 0  # nothing half-written
    assert db.session.connection().connection.dbapi_connection.info.backend_pid != pid


def test_one_statement_value_makes_no_session(app):
    """Outside a transaction the request's session is not made for it (PostgreSQL: the driver runs
    it; SQLite takes the session's own connection)."""
    from filmfund.extensions import db, one_statement_value
    from filmfund.rewards import webhooks

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writes through the session's connection")
    db.session.remove()
    one_statement_value(webhooks._insert_once(db.engine.dialect), _event_values("evt_alone"))
    assert not db.session.registry.has()


def test_a_test_mode_pledge_makes_no_session_on_postgresql(app, client, campaign):
    """The pledge's hot path on PostgreSQL is its one INSERT through the driver: no ORM session is
    made for the request (making one and closing it was 10 µs of each pledge's CPU)."""
    from filmfund.extensions import db
    from filmfund.rewards.models import Pledge

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writes through the session's connection")
    made: list[bool] = []

    @app.after_request
    def _look(response):
        made.append(db.session.registry.has())
        return response

    db.session.remove()  # the test's app context outlives requests: start this one without a session
    answer = client.post("/api/v1/pledges", json={"amount": 2500, "email": "ada@example.org"})
    assert answer.status_code == 201, answer.get_json()
    assert made == [False]
    pledge = db.session.get(Pledge, answer.get_json()["pledge_id"])
    assert (pledge.amount, pledge.email) == (2500, "ada@example.org")


def test_the_test_mode_pledge_given_back_is_the_row_stored(app, campaign):
    """The at-once pledge (one INSERT, its object filled as a loaded row's, db.as_written) holds
    every column exactly as stored; transient, it is never written a second time by a commit."""
    from filmfund.db import commit_keeping
    from filmfund.extensions import db
    from filmfund.rewards import pledges
    from filmfund.rewards.models import Pledge

    with app.test_request_context("/api/v1/pledges", method="POST"):
        given = pledges.create_pledge(2500, None, "Ada@Example.org", "Ada L.", True, False, ref="Weibo")
        assert sa.inspect(given).transient
        commit_keeping(db.session, given)
    db.session.expire_all()
    stored = db.session.get(Pledge, given.id)
    for column in Pledge.__table__.columns:
        assert getattr(given, column.key) == getattr(stored, column.key), column.key
    assert (stored.amount, stored.email, stored.credit_name, stored.anonymous, stored.ref) == (
        2500, "Ada@example.org", "Ada L.", True, "weibo")
    assert stored.checkout_session_id == f"cs_test_local_{stored.id}"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Pledge)) == 1
