"""Two database roles on PostgreSQL: the migration role owns the tables, the runtime role uses them.

The application connects with FILMFUND_DATABASE_URL. When FILMFUND_MIGRATION_DATABASE_URL names
another role, `filmfund db upgrade` migrates as that role (the tables' owner) and then grants the
runtime role what the application needs and nothing more:
- every table: SELECT, INSERT, UPDATE, DELETE, and the sequences behind their ids;
- the audit log: SELECT and INSERT only. Not being its owner, the runtime role can neither UPDATE,
  DELETE nor TRUNCATE it, nor ALTER it, DISABLE its triggers or DROP it: a bug, an injected query
  or a stolen runtime password cannot rewrite history;
- the migrations' own table: SELECT only.
The grants are re-applied after every upgrade, so a table added later gets them too.
"""
from __future__ import annotations

import sqlalchemy as sa

APPEND_ONLY_TABLES = ("audit_log",)
READ_ONLY_TABLES = ("alembic_version",)


def role_of(url: str | sa.engine.URL | None) -> str | None:
    if not url:
        return None
    url = sa.engine.make_url(url)
    return url.username if url.get_backend_name() == "postgresql" else None


def separate_runtime_role(migration_url: str | None, runtime_url: str | None) -> str | None:
    """The runtime role to grant, when migrations run as another role on PostgreSQL."""
    owner, runtime = role_of(migration_url), role_of(runtime_url)
    return runtime if owner and runtime and owner != runtime else None


def grant_statements(conn, role: str) -> list[str]:
    schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
    q = conn.dialect.identifier_preparer.quote
    r, s = q(role), q(schema)
    tables = set(conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}).scalars())
    statements = [
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
    ]
    for table in APPEND_ONLY_TABLES:
        if table in tables:
            statements += [f"REVOKE ALL ON {s}.{q(table)} FROM {r}", f"GRANT SELECT, INSERT ON {s}.{q(table)} TO {r}"]
    for table in READ_ONLY_TABLES:
        if table in tables:
            statements += [f"REVOKE ALL ON {s}.{q(table)} FROM {r}", f"GRANT SELECT ON {s}.{q(table)} TO {r}"]
    return statements


def grant_runtime_role(conn, role: str) -> None:
    for statement in grant_statements(conn, role):
        conn.execute(sa.text(statement))
