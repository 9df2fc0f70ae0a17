"""The migration that brings refund notices: the refunds booked before it were never told, and an
upgrade does not tell them now (every donor refunded since the campaign began would get a mail)."""
from __future__ import annotations

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from filmfund.extensions import db
from filmfund.rewards import refund_notices
from tests.rewards.test_refund_reports_migration import _insert
from tests.test_migrations import empty_database, migration_app  # noqa: F401  (the fixture: both databases)

BEFORE, AFTER = "b7e2f4c8d1a6", "d3f8a2c6e914"


def test_refunds_booked_before_the_upgrade_are_not_told_after_it(empty_database, tmp_path, monkeypatch):  # noqa: F811
    app = migration_app(empty_database, tmp_path, monkeypatch)
    with app.app_context():
        upgrade(revision=BEFORE)
        with db.engine.begin() as conn:
            _insert(conn, "INSERT INTO campaigns (id, slug, title, tagline, description, currency, goal, partner_name, "
                          "share_bps, translations, time_zone, created_at, updated_at) VALUES (1, 'film', 'Film', '', "
                          "'', 'usd', 400000, 'Partner', 2000, '{}', 'UTC', :w, :w)")
            _insert(conn, "INSERT INTO users (id, public_id, email, session_version, created_at) "
                          "VALUES (1, 'p1', 'donor@example.org', 0, :w)")
            for donation_id, refunded in ((1, 3000), (2, 0)):
                _insert(conn, "INSERT INTO donations (id, campaign_id, user_id, source, amount, currency, livemode, "
                              "amount_refunded, anonymous, rewards_opt_out, flags, note, received_at, created_at) "
                              "VALUES (:d, 1, 1, 'stripe', 10000, 'usd', false, :r, false, false, '', '', :w, :w)",
                        d=donation_id, r=refunded)
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
