"""Issue 16.5: the runtime database role cannot alter the audit log (PostgreSQL, the machine's own).

The migration role owns the tables (FILMFUND_MIGRATION_DATABASE_URL); the application runs as
another role (FILMFUND_DATABASE_URL), which `filmfund db upgrade` grants SELECT and INSERT on the
audit log and nothing more. Everything the application does still works as that role.
"""
from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from filmfund import create_app, db_roles, migrating
from filmfund.audit import list_audit, record_audit, verify_chain
from filmfund.extensions import db
from tests.conftest import PG_ADMIN_URL
from tests.site.helpers import pay

REFUSED = [
    "UPDATE audit_log SET actor = 'nobody'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
    "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
    "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    "DROP TRIGGER audit_log_append_only ON audit_log",
    "DROP TABLE audit_log CASCADE",
    "ALTER TABLE audit_log OWNER TO CURRENT_USER",
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    "SET session_replication_role = replica",
    "UPDATE alembic_version SET version_num = 'x'",
]


@pytest.fixture
def two_roles():
    tag = uuid.uuid4().hex[:8]
    owner, runtime, name = f"ff_owner_{tag}", f"ff_app_{tag}", f"filmfund_roles_{tag}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{owner}" LOGIN'))
        conn.execute(sa.text(f'CREATE ROLE "{runtime}" LOGIN'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}" OWNER "{owner}"'))
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name)
    yield (url.set(username=owner).render_as_string(hide_password=False),
           url.set(username=runtime).render_as_string(hide_password=False))
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'DROP ROLE IF EXISTS "{runtime}"'))
        conn.execute(sa.text(f'DROP ROLE IF EXISTS "{owner}"'))
    admin.dispose()


def test_the_runtime_role_can_append_and_read_but_never_alter_the_log(two_roles, tmp_path, monkeypatch):
    owner_url, runtime_url = two_roles
    assert db_roles.separate_runtime_role(owner_url, runtime_url) == runtime_url.split("://")[1].split("@")[0]
    monkeypatch.setenv("FILMFUND_INSTANCE_DIR", str(tmp_path / "instance"))
    for var in ("STRIPE_SECRET_KEY", "FILMFUND_DATABASE_URL", "FILMFUND_QUEUE_URL", "FILMFUND_SMTP_URL"):
        monkeypatch.delenv(var, raising=False)
    app = create_app({"SQLALCHEMY_DATABASE_URI": runtime_url, "MIGRATION_DATABASE_URI": owner_url,
                      "TESTING": True})
    migrating.init_app(app)
    with app.app_context():
        upgrade()  # as the owner, then the grants to the runtime role
        with db.engine.connect() as conn:
            who, owns = conn.execute(sa.text(
                "SELECT current_user, tableowner FROM pg_tables WHERE tablename = 'audit_log'")).one()
        assert who != owns and owns == sa.engine.make_url(owner_url).username

        # The application's own work, as the runtime role: a gift (ledger, totals, receipts queue)
        # and audit entries, chained.
        pay(2500, "donor@example.org")
        record_audit("settings.change", "campaign", {"goal": 1}, actor="cli")
        db.session.commit()
        assert [e.action for e in list_audit(action="settings")] == ["settings.change"]

        with db.engine.begin() as conn:  # not the grantor: PostgreSQL grants nothing (a warning only)
            conn.execute(sa.text("GRANT UPDATE, DELETE, TRUNCATE ON audit_log TO CURRENT_USER"))
            rights = conn.execute(sa.text(
                "SELECT privilege_type FROM information_schema.role_table_grants "
                "WHERE table_name = 'audit_log' AND grantee = current_user ORDER BY 1")).scalars().all()
        assert rights == ["INSERT", "SELECT"]
        allowed = []
        for sql in REFUSED:
            try:
                with db.engine.begin() as conn:
                    conn.execute(sa.text(sql))
                allowed.append(sql)
            except sa.exc.DBAPIError as err:
                assert re.search("permission denied|must be owner", str(err.orig)), (sql, err)
        assert allowed == []
        assert verify_chain() == ([], len(list_audit()))
        db.session.remove()
        db.engine.dispose()
