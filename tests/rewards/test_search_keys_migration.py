"""The migration that stores the donor search's keys (f0a1d5e3c2b9): every donor already written
gets the folded form of their address and credit name (typed.search_key), so the search finds
"Élodie" typed "elodie" from the moment it runs, on SQLite and PostgreSQL; an erased donor's
missing name stays without a key; the way back takes the columns away."""
from __future__ import annotations

import importlib.util
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from filmfund.db import UTCDateTime
from filmfund.extensions import db
from tests.test_migrations import empty_database, migration_app  # noqa: F401  (the fixture: both databases)

BEFORE, AFTER = "c4d9e2a7b613", "f0a1d5e3c2b9"
WHEN = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
DONORS = [(1, "Zoë.Martin@example.org", "Zoë Ångström"), (2, "wang@example.org", "王小明"),
          (3, "erased-x@erased.invalid", None), (4, "ELODIE@example.org", "ÉLODIE Dupré"),
          (5, "d5@example.org", "Ｊｅａｎ　Ｄｕ")]
KEYS = {1: ("zoe.martin@example.org", "zoe angstrom"), 2: ("wang@example.org", "王小明"),
        3: ("erased-x@erased.invalid", None), 4: ("elodie@example.org", "elodie dupre"),
        5: ("d5@example.org", "jean du")}


def _keys(conn) -> dict:
    return {i: (e, n) for i, e, n in conn.execute(sa.text(
        "SELECT u.id, u.email_key, p.credit_name_key FROM users u JOIN donor_profiles p ON p.user_id = u.id"))}


def test_the_keys_of_every_donor_written_before_are_filled_in(empty_database, tmp_path, monkeypatch):  # noqa: F811
    app = migration_app(empty_database, tmp_path, monkeypatch)
    with app.app_context():
        upgrade(revision=BEFORE)
        with db.engine.begin() as conn:
            for user_id, email, name in DONORS:
                params = {"i": user_id, "e": email, "n": name, "w": WHEN}
                stamp = sa.bindparam("w", type_=UTCDateTime())
                conn.execute(sa.text("INSERT INTO users (id, public_id, email, session_version, created_at) "
                                     "VALUES (:i, :e, :e, 1, :w)").bindparams(stamp), params)
                conn.execute(sa.text("INSERT INTO donor_profiles (user_id, credit_name, anonymous, rewards_opt_out, "
                                     "created_at, updated_at) VALUES (:i, :n, false, false, :w, :w)")
                             .bindparams(stamp), params)
        upgrade(revision=AFTER)
        with db.engine.begin() as conn:
            assert _keys(conn) == KEYS
            indexes = {ix["name"] for t in ("users", "donor_profiles") for ix in sa.inspect(conn).get_indexes(t)}
            assert {"ix_users_email_key", "ix_donor_profiles_credit_name_key"} <= indexes
            # In batches: one row a batch fills them all the same.
            conn.execute(sa.text("UPDATE users SET email_key = NULL"))
            conn.execute(sa.text("UPDATE donor_profiles SET credit_name_key = NULL"))
            versions = Path(__file__).resolve().parents[2] / "migrations" / "versions"
            path = next(versions.glob(f"*_{AFTER}_*.py"))
            spec = importlib.util.spec_from_file_location("search_keys_migration", path)
            migration = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(migration)
            migration.BATCH = 1
            for table, key, source, pk in migration.KEYS:
                migration._backfill(conn, table, key, source, pk)
            assert _keys(conn) == KEYS
        downgrade(revision=BEFORE)
        with db.engine.connect() as conn:
            assert "email_key" not in {c["name"] for c in sa.inspect(conn).get_columns("users")}
            assert "credit_name_key" not in {c["name"] for c in sa.inspect(conn).get_columns("donor_profiles")}
        db.session.remove()
        db.engine.dispose()


def test_the_keys_with_letters_apart_are_made_again(empty_database, tmp_path, monkeypatch):  # noqa: F811
    """b7e2f4c8d1a6: a key the earlier rule stored with ø, ł, æ... as they were ("søren") is made
    as a plain keyboard types it ("soren"), and a key left empty beside its value (a row written
    by older code after the keys came) is filled; a key without those letters is not touched."""
    app = migration_app(empty_database, tmp_path, monkeypatch)
    stored = [(1, "soren@example.org", "soren@example.org", "Søren Ærø", "søren ærø"),
              (2, "lodz@example.org", None, "ŁÓDŹ Film Club", "łodz film club"),
              (3, "zoe@example.org", "zoe@example.org", "Zoë", "zoe"),
              (4, "wang@example.org", "wang@example.org", "王小明", None)]
    with app.app_context():
        upgrade(revision=AFTER)
        with db.engine.begin() as conn:
            for user_id, email, email_key, name, name_key in stored:
                params = {"i": user_id, "e": email, "ek": email_key, "n": name, "nk": name_key, "w": WHEN}
                stamp = sa.bindparam("w", type_=UTCDateTime())
                conn.execute(sa.text("INSERT INTO users (id, public_id, email, email_key, session_version, "
                                     "created_at) VALUES (:i, :e, :e, :ek, 1, :w)").bindparams(stamp), params)
                conn.execute(sa.text("INSERT INTO donor_profiles (user_id, credit_name, credit_name_key, anonymous, "
                                     "rewards_opt_out, created_at, updated_at) VALUES (:i, :n, :nk, false, false, "
                                     ":w, :w)").bindparams(stamp), params)
        upgrade()
        with db.engine.begin() as conn:
            assert _keys(conn) == {1: ("soren@example.org", "soren aero"), 2: ("lodz@example.org", "lodz film club"),
                                   3: ("zoe@example.org", "zoe"), 4: ("wang@example.org", "王小明")}
        downgrade(revision=AFTER)
        db.session.remove()
        db.engine.dispose()
