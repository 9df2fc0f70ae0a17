"""The migrations build the whole schema from empty, on SQLite and PostgreSQL, and match the models."""
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from filmfund import create_app, migrating
from filmfund.extensions import db
from tests.conftest import PG_ADMIN_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    name = f"filmfund_migrate_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def migration_app(url: str, tmp_path, monkeypatch):
    """An app on `url` (an empty_database) whose migrations a test runs itself: `upgrade(revision=...)`
    to the schema before a migration, rows written as the older code wrote them, then the migration."""
    monkeypatch.setenv("FILMFUND_INSTANCE_DIR", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    migrating.init_app(app)  # create_app binds Flask-Migrate only for `filmfund db …`
    return app


def test_upgrade_from_empty_matches_models(empty_database, tmp_path, monkeypatch):
    app = migration_app(empty_database, tmp_path, monkeypatch)
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()


def test_payout_reversals_upgrade_keeps_the_payouts_booked_before(empty_database, tmp_path, monkeypatch):
    """d4b1e7a9c2f0 alters the ledger's CHECKs (in place on PostgreSQL, by a rebuild on SQLite) so a
    `payout_reversal` entry can be booked: the payouts and entries booked before it stay as they
    were, the next entry takes an id of its own (the sequence goes on), a reversal is negative and
    names its payout, a payout has at most one, and going back is refused once one is booked."""
    from datetime import datetime, timezone

    from filmfund.db import UTCDateTime

    app = migration_app(empty_database, tmp_path, monkeypatch)
    when = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)

    def run(conn, sql: str, **values):
        return conn.execute(sa.text(sql).bindparams(sa.bindparam("w", type_=UTCDateTime())), {"w": when, **values})

    entry = ("INSERT INTO ledger_entries (campaign_id, group_id, event_kind, entry_kind, amount, currency, payout_id, "
             "livemode, created_at) VALUES (1, :g, :k, :k, :a, 'usd', 1, false, :w)")
    with app.app_context():
        upgrade(revision="b0a7f5e3c911")
        with db.engine.begin() as conn:
            run(conn, "INSERT INTO campaigns (id, slug, title, tagline, description, currency, goal, partner_name, "
                      "share_bps, translations, time_zone, created_at, updated_at) VALUES (1, 'film', 'Film', '', "
                      "'', 'usd', 400000, 'Partner', 2000, '{}', 'UTC', :w, :w)")
            run(conn, "INSERT INTO payouts (id, campaign_id, amount, currency, paid_on, reference, recorded_by, "
                      "created_at) VALUES (1, 1, 500000, 'usd', '2026-11-20', 'WIRE-1', 'p@example.org', :w)")
            run(conn, entry, g="g0", k="payout", a=500000)
        upgrade()
        with db.engine.begin() as conn:
            assert [tuple(r) for r in conn.execute(sa.text(
                "SELECT p.amount, p.reversed_at, e.entry_kind, e.amount FROM payouts p "
                "JOIN ledger_entries e ON e.payout_id = p.id"))] == [(500000, None, "payout", 500000)]
            run(conn, entry, g="g1", k="payout_reversal", a=-500000)
            assert conn.execute(sa.text("SELECT count(DISTINCT id) FROM ledger_entries")).scalar() == 2
        for group, amount in (("g2", -500000), ("g3", 500000)):  # a second reversal; a positive one
            with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
                run(conn, entry, g=group, k="payout_reversal", a=amount)
        with pytest.raises(SystemExit):  # Flask-Migrate logs the migration's refusal and exits
            downgrade(revision="b0a7f5e3c911")
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar() == 2
        with db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM ledger_entries WHERE entry_kind = 'payout_reversal'"))
        downgrade(revision="b0a7f5e3c911")
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT amount FROM ledger_entries")).scalar() == 500000
        db.session.remove()
        db.engine.dispose()
