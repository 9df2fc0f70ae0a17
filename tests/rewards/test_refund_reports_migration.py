"""The migration that keeps Stripe's refund reports: what each donation had refunded becomes its
first report (so a refund that fails later is taken out of it), the ledger takes `refund_failed`
groups, and the way back turns them into the restores they were before."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from filmfund.db import UTCDateTime
from filmfund.extensions import db
from tests.test_migrations import empty_database, migration_app  # noqa: F401  (the fixture: both databases)

BEFORE, AFTER = "c3e8a1f07d52", "caa14fa3db27"
WHEN = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def _insert(conn, sql: str, **values) -> None:
    conn.execute(sa.text(sql).bindparams(sa.bindparam("w", type_=UTCDateTime())), {"w": WHEN, **values})


def insert_refunded_donations(conn, refunds: tuple[int, ...]) -> None:
    """A campaign, a donor, and one $100 Stripe gift of theirs per amount refunded (ids from 1), as
    the code before these migrations wrote them."""
    _insert(conn, "INSERT INTO campaigns (id, slug, title, tagline, description, currency, goal, partner_name, "
                  "share_bps, translations, time_zone, created_at, updated_at) VALUES (1, 'film', 'Film', '', "
                  "'', 'usd', 400000, 'Partner', 2000, '{}', 'UTC', :w, :w)")
    _insert(conn, "INSERT INTO users (id, public_id, email, session_version, created_at) "
                  "VALUES (1, 'p1', 'donor@example.org', 0, :w)")
    for donation_id, refunded in enumerate(refunds, start=1):
        _insert(conn, "INSERT INTO donations (id, campaign_id, user_id, source, amount, currency, livemode, "
                      "amount_refunded, anonymous, rewards_opt_out, flags, note, received_at, created_at) "
                      "VALUES (:d, 1, 1, 'stripe', 10000, 'usd', false, :r, false, false, '', '', :w, :w)",
                d=donation_id, r=refunded)


def test_refunds_so_far_become_reports_and_refund_failed_groups_come_and_go(empty_database, tmp_path,  # noqa: F811
                                                                             monkeypatch):
    app = migration_app(empty_database, tmp_path, monkeypatch)
    with app.app_context():
        upgrade(revision=BEFORE)
        with db.engine.begin() as conn:
            insert_refunded_donations(conn, (3000, 0))
            for _ in range(2):  # entries booked before the upgrade, ids from the table's sequence
                _insert(conn, "INSERT INTO ledger_entries (campaign_id, group_id, event_kind, entry_kind, amount, "
                              "currency, donation_id, livemode, created_at) VALUES (1, 'g0', 'donation', 'gift', "
                              "10000, 'usd', 2, false, :w)")
        upgrade(revision=AFTER)
        with db.engine.begin() as conn:
            reports = conn.execute(sa.text("SELECT donation_id, kind, amount FROM refund_reports")).all()
            assert [tuple(r) for r in reports] == [(1, "refunded", 3000)]
            assert conn.execute(sa.text("SELECT dispute_amount FROM donations WHERE id = 1")).scalar() is None
            _insert(conn, "INSERT INTO ledger_entries (campaign_id, group_id, event_kind, entry_kind, amount, "
                          "currency, donation_id, livemode, created_at) VALUES (1, 'g1', 'refund_failed', 'restore', "
                          "3000, 'usd', 1, false, :w)")
        downgrade(revision=BEFORE)
        with db.engine.connect() as conn:
            kinds = conn.execute(sa.text("SELECT event_kind, entry_kind, amount FROM ledger_entries "
                                         "WHERE group_id = 'g1'")).all()
            assert [tuple(k) for k in kinds] == [("dispute_won", "restore", 3000)]
            # the entries booked before, after and again: each its own id (the sequence went on)
            assert conn.execute(sa.text("SELECT count(DISTINCT id) FROM ledger_entries")).scalar() == 3
            assert "refund_reports" not in sa.inspect(conn).get_table_names()
        db.session.remove()
        db.engine.dispose()
