"""The migration that chains the audit log: rows written before it lose their emails (a person
becomes user:<id>, any other address its keyed hash) and are chained in the order written."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from flask_migrate import upgrade

from filmfund.audit import email_ref, verify_chain
from filmfund.db import UTCDateTime
from filmfund.extensions import db
from tests.test_migrations import empty_database, migration_app  # noqa: F401  (the fixture: both databases)

BEFORE = "7c1e5a9b2f40"


def test_old_entries_are_scrubbed_and_chained(empty_database, tmp_path, monkeypatch):  # noqa: F811
    app = migration_app(empty_database, tmp_path, monkeypatch)
    with app.app_context():
        upgrade(revision=BEFORE)
        when = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO users (id, public_id, email, session_version, created_at) "
                                 "VALUES (1, 'p1', 'Boss@FilmFund.test', 0, :w), (2, 'p2', 'donor@example.org', 0, :w)")
                         .bindparams(sa.bindparam("w", type_=UTCDateTime())), {"w": when})
            rows = [(1, "Boss@FilmFund.test", "role.grant", "donor@example.org", '{"role": "partner"}'),
                    (None, "cli", "token.create", "gone@example.org", '{"note": "for gone@example.org"}'),
                    (None, "stripe", "donation.refund", "donation 7", '{"amount_refunded": 500}')]
            for actor_id, actor, action, target, details in rows:
                conn.execute(sa.text("INSERT INTO audit_log (created_at, actor_id, actor, action, target, details) "
                                     "VALUES (:w, :a, :actor, :action, :target, :details)")
                             .bindparams(sa.bindparam("w", type_=UTCDateTime())),
                             {"w": when, "a": actor_id, "actor": actor, "action": action, "target": target,
                              "details": details})
        upgrade()
        with db.engine.connect() as conn:
            got = conn.execute(sa.text("SELECT seq, actor, target, details FROM audit_log ORDER BY id")).all()
        gone = email_ref("gone@example.org")
        assert [tuple(r) for r in got] == [
            (1, "user:1", "user:2", '{"role": "partner"}'),
            (2, "cli", gone, '{"note": "for ' + gone + '"}'),
            (3, "stripe", "donation 7", '{"amount_refunded": 500}')]
        assert verify_chain() == ([], 3)
        db.session.remove()
        db.engine.dispose()
