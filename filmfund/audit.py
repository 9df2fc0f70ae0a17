"""The audit log: who did what to what, and when, for every staff action. Append-only.

`record_audit(...)` adds an `AuditEntry` to the current database session, so the entry commits
(or rolls back) together with the action it records: call it before the use case's commit.
The table refuses UPDATE and DELETE by a trigger on SQLite and PostgreSQL alike (and TRUNCATE on
PostgreSQL); the one change allowed is the foreign key's own ON DELETE SET NULL of `actor_id`
when a user row is deleted, which keeps the `actor` label.

Actions are dotted names (`auth.sign_in`, `role.grant`, `token.revoke`, `donation.offline`, ...);
`actor` is the acting user's email, or `cli`, `stripe`, `system`.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from filmfund.db import utcnow
from filmfund.extensions import db

ACTOR_MAX, ACTION_MAX, TARGET_MAX = 254, 64, 300


class AuditEntry(db.Model):
    """One staff action. Never updated nor deleted (see the triggers below)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    actor: Mapped[str] = mapped_column(sa.String(ACTOR_MAX))
    action: Mapped[str] = mapped_column(sa.String(ACTION_MAX), index=True)
    target: Mapped[str] = mapped_column(sa.String(TARGET_MAX), default="")
    details: Mapped[str] = mapped_column(sa.Text, default="{}")
    ip: Mapped[str | None] = mapped_column(sa.String(64))

    @property
    def details_dict(self) -> dict[str, Any]:
        try:
            value = json.loads(self.details or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


# The same statements are in the migration that creates the table (migrations do not import this).
_COLUMNS = ("id", "created_at", "actor", "action", "target", "details", "ip")
SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "WHEN NOT (NEW.actor_id IS NULL AND "
    + " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _COLUMNS)
    + ") BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
)
POSTGRES_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN "
    "IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL AND ("
    + ", ".join(f"NEW.{c}" for c in _COLUMNS) + ") IS NOT DISTINCT FROM ("
    + ", ".join(f"OLD.{c}" for c in _COLUMNS) + ") THEN RETURN NEW; END IF; "
    "RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege'; "
    "END $$",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)

for _sql in SQLITE_TRIGGERS:
    sa.event.listen(AuditEntry.__table__, "after_create", sa.DDL(_sql).execute_if(dialect="sqlite"))
for _sql in POSTGRES_TRIGGERS:
    sa.event.listen(AuditEntry.__table__, "after_create", sa.DDL(_sql).execute_if(dialect="postgresql"))
sa.event.listen(AuditEntry.__table__, "after_drop",
                sa.DDL("DROP FUNCTION IF EXISTS audit_log_append_only()").execute_if(dialect="postgresql"))


def _current_actor() -> tuple[int | None, str]:
    from flask import g, has_request_context

    if has_request_context():
        user = g.get("api_user")
        if user is None:
            from flask_login import current_user

            if current_user and getattr(current_user, "is_authenticated", False):
                user = current_user._get_current_object()
        if user is not None:
            return user.id, user.email
        return None, "anonymous"
    import click

    if click.get_current_context(silent=True) is not None:
        return None, "cli"
    return None, "system"


def _client_ip() -> str | None:
    from flask import has_request_context, request

    # remote_addr is the socket's peer, or the proxies' X-Forwarded-For only when they are trusted
    # (FILMFUND_TRUSTED_PROXIES installs ProxyFix).
    return (request.remote_addr or None) if has_request_context() else None


def record_audit(action: str, target: str = "", details: dict | None = None, actor=None) -> AuditEntry:
    """Add an audit entry to the current session; it commits with the action it records.

    `actor`: a User, a label (`cli`, `stripe`, `system`, an email), or None for whoever is
    acting now (the API token's user, the signed-in user, else `cli` or `system`).
    """
    if actor is None:
        actor_id, label = _current_actor()
    elif isinstance(actor, str):
        actor_id, label = None, actor
    else:
        actor_id, label = actor.id, actor.email
    entry = AuditEntry(actor_id=actor_id, actor=label[:ACTOR_MAX], action=action[:ACTION_MAX],
                       target=str(target or "")[:TARGET_MAX],
                       details=json.dumps(details or {}, sort_keys=True, default=str), ip=_client_ip(),
                       created_at=utcnow())
    db.session.add(entry)
    return entry


def list_audit(*, action: str | None = None, before_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
    """The newest entries first; `action` filters by a dotted prefix (`token` or `token.revoke`)."""
    query = sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 500)))
    if action:
        query = query.where(sa.or_(AuditEntry.action == action, AuditEntry.action.startswith(action + ".")))
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(db.session.scalars(query))


def audit_actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEntry.action).distinct().order_by(AuditEntry.action)))
