"""The migration that brings refund notices: the refunds booked before it were never told, and an
upgrade does not tell them now (every donor refunded since the campaign began would get a mail)."""
from __future__ import annotations

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from filmfund.extensions import db
from filmfund.rewards import refund_notices
from tests.rewards.test_refund_reports_migration import insert_refunded_donations
from tests.test_migrations import empty_database, migration_app  # noqa: F401  (the fixture: both databases)

BEFORE, AFTER = "b7e2f4c8d1a6", "d3f8a2c6e914"


def test_refunds_booked_before_the_upgrade_are_not_told_after_it(empty_database, tmp_path, monkeypatch):  # noqa: F811
    app = migration_app(empty_database, tmp_path, monkeypatch)
    with app.app_context():
        upgrade(revision=BEFORE)
        with db.engine.begin() as conn:
            insert_refunded_donations(conn, (3000, 0))
        upgrade(revision=AFTER)
        with db.engine.connect() as conn:
            told = conn.execute(sa.text("SELECT id, refund_noticed FROM donations ORDER BY id")).all()
        assert [tuple(r) for r in told] == [(1, 3000), (2, 0)]
        assert refund_notices.send_untold() == 0
        db.session.remove()
        downgrade(revision=BEFORE)
        with db.engine.connect() as conn:
            assert "refund_noticed" not in {c["name"] for c in sa.inspect(conn).get_columns("donations")}
        db.engine.dispose()
