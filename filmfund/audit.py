"""The audit log: who did what to what, and when. Append-only, hash-chained, out of the app's reach.

What is recorded: every staff write (a specific entry from the use case, such as `donation.offline`,
or else one `write.<endpoint>` entry per successful POST/PUT/PATCH/DELETE by a producer or partner,
see `init_app`), every export (`export.*`), every sign-in and every failed one (`auth.sign_in_failed`).

`record_audit(...)` keeps the entry with the database session until that session commits: the
entry commits (or rolls back) together with the action it records, and is chained at the commit.

No email is ever written: people are `user:<id>` (the page shows their current email, and erasure
replaces that), and an address that matches no account, say a failed sign-in's, is `email#<keyed
hash>`: a reader of the log (or of a leaked copy) learns neither who tried nor a password typed into
the email field, while a producer who knows an address can still find its attempts (`email_ref`).

The chain: entry n carries `seq` = n, `prev_hash` = entry n-1's `entry_hash`, and
`entry_hash` = sha256(prev_hash + canonical JSON of the entry). Appends are serialised by a row
lock on `audit_chain_lock` (taken at the commit, after everything else is flushed), on SQLite and
PostgreSQL alike. `verify_chain()` recomputes the whole chain: an edit, a deletion inside the chain,
or one at its end older than the last check (whose head is kept outside the database, in
the instance folder) is found, whoever made it, a database superuser included. The hourly ledger
check runs it (filmfund.rewards.ledger_check) and the dashboard shows the result.

Who may write: on PostgreSQL the migration role owns the table and the runtime role gets SELECT and
INSERT only (filmfund.db_roles), so the application cannot update, delete, truncate, alter it or
disable its triggers. The triggers below stay as a second wall (and the only one on SQLite); the
one change they allow is the foreign key's own ON DELETE SET NULL of `actor_id`, which is outside
the chained fields.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from flask import current_app, g, has_app_context, has_request_context, request
from flask_login import current_user
from sqlalchemy.orm import Mapped, Session, mapped_column

from filmfund.db import dialect_insert, utcnow
from filmfund.extensions import db

ACTOR_MAX, ACTION_MAX, TARGET_MAX = 254, 64, 300
GENESIS = "0" * 64
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANCHOR_FILE = "audit-anchor.json"
_PENDING = "audit_pending"
_RECORDED = "filmfund.audit_recorded"
# Anything shaped like an email, wherever a caller put it: written as its keyed hash instead. Its
# domain as addresses are stored (auth/services.normalize_email): an internationalized top-level
# domain in its IDNA form (xn--fiqs8s is .中国) is the address's too.
_EMAIL = re.compile(r"[^\s@\"'<>(),;:\[\]]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:xn--[A-Za-z0-9-]{1,59}|[A-Za-z]{2,63})")


class AuditEntry(db.Model):
    """One recorded action. Never updated nor deleted (see the triggers and db_roles)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    actor: Mapped[str] = mapped_column(sa.String(ACTOR_MAX))
    action: Mapped[str] = mapped_column(sa.String(ACTION_MAX), index=True)
    target: Mapped[str] = mapped_column(sa.String(TARGET_MAX), default="")
    details: Mapped[str] = mapped_column(sa.Text, default="{}")
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    # The chain (nullable only for the migration that chains the rows written before it).
    seq: Mapped[int | None] = mapped_column(sa.BigInteger, index=True, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(sa.String(64))
    entry_hash: Mapped[str | None] = mapped_column(sa.String(64))

    @property
    def details_dict(self) -> dict[str, Any]:
        try:
            value = json.loads(self.details or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


class AuditChainLock(db.Model):
    """One row whose lock serialises appends to the chain (two writers never fork it). It holds
    nothing the check trusts: the chain is read from audit_log itself."""

    __tablename__ = "audit_chain_lock"

    id: Mapped[int] = mapped_column(primary_key=True)
    appends: Mapped[int] = mapped_column(sa.BigInteger, default=0)


# The same statements are in the migrations that create the table (migrations do not import this).
_COLUMNS = ("id", "created_at", "actor", "action", "target", "details", "ip", "seq", "prev_hash", "entry_hash")
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


# ---------------------------------------------------------------- who and what, without emails


def user_ref(user) -> str:
    """How the log names a person: by id, never by email (erasure must leave nothing behind)."""
    return f"user:{user.id}"


def email_ref(email: str) -> str:
    """How the log names an address that is no account's (or must not say whose it is): a keyed
    hash. Without the secret key it can be neither reversed nor tested against a list of emails."""
    key = ("audit-email:" + current_app.config["SECRET_KEY"]).encode()
    return "email#" + hmac.new(key, (email or "").strip().lower().encode(), hashlib.sha256).hexdigest()[:24]


def _no_emails(text: str) -> str:
    return _EMAIL.sub(lambda m: email_ref(m.group(0)), text) if "@" in text else text


def _staff_user():
    """The staff member acting in this request, if already known (never loads a user)."""
    user = g.get("api_user") or g.get("_login_user")
    if user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False):
        return user
    return None


def _current_actor() -> tuple[int | None, str]:
    if has_request_context():
        user = g.get("api_user")
        if user is None:
            if current_user and getattr(current_user, "is_authenticated", False):
                user = current_user._get_current_object()
        if user is not None:
            return user.id, user_ref(user)
        return None, "anonymous"
    if click.get_current_context(silent=True) is not None:
        return None, "cli"
    return None, "system"


def _client_ip() -> str | None:
    # remote_addr is the socket's peer, or the proxies' X-Forwarded-For only when they are trusted
    # (FILMFUND_TRUSTED_PROXIES installs ProxyFix).
    return (request.remote_addr or None) if has_request_context() else None


def record_audit(action: str, target: str = "", details: dict | None = None, actor=None) -> dict:
    """Keep an audit entry with the session; it is chained and written at the session's commit,
    with the action it records (a rollback drops it).

    `actor`: a User, a label (`cli`, `stripe`, `system`), or None for whoever is acting now (the
    API token's user, the signed-in user, else `cli` or `system`). An email anywhere in the entry
    is written as its keyed hash.
    """
    if actor is None:
        actor_id, label = _current_actor()
    elif isinstance(actor, str):
        actor_id, label = None, actor
    else:
        actor_id, label = actor.id, user_ref(actor)
    entry = {"actor_id": actor_id, "actor": _no_emails(label)[:ACTOR_MAX], "action": action[:ACTION_MAX],
             "target": _no_emails(str(target or ""))[:TARGET_MAX],
             "details": _no_emails(json.dumps(details or {}, sort_keys=True, default=str, ensure_ascii=False)),
             "ip": _client_ip(), "created_at": utcnow()}
    db.session.info.setdefault(_PENDING, []).append(entry)
    if has_request_context():
        request.environ[_RECORDED] = True  # this request's write is recorded: no generic entry
    return entry


def record_failed_sign_in(email: str, reason: str, user=None) -> dict:
    """A refused sign-in. The typed address is written as its keyed hash (it may be a donor's, or
    a password typed into the wrong field); a known `user` (a wrong second factor after the right
    password) by id. The caller commits, whatever else it rolls back."""
    target = user_ref(user) if user is not None else (email_ref(email) if (email or "").strip() else "")
    return record_audit("auth.sign_in_failed", target, {"reason": reason}, actor="anonymous")


# ---------------------------------------------------------------- the chain


def _when(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(seq: int, created_at: datetime, actor: str, action: str, target: str, details: str,
              ip: str | None) -> str:
    """The chained form of an entry: every field but the row id and `actor_id` (which a user's
    deletion sets to NULL; `actor` keeps the same person as `user:<id>`)."""
    return json.dumps([seq, _when(created_at), actor, action, target, details, ip], ensure_ascii=False,
                      separators=(",", ":"))


def chain_hash(prev_hash: str, canonical_entry: str) -> str:
    return hashlib.sha256((prev_hash + canonical_entry).encode("utf-8")).hexdigest()


_lock = AuditChainLock.__table__
_log = AuditEntry.__table__


def _take_chain_lock(conn) -> None:
    """Lock the chain until this transaction ends: PostgreSQL's row lock, SQLite's write lock."""
    bumped = conn.execute(sa.update(_lock).where(_lock.c.id == 1).values(appends=_lock.c.appends + 1)).rowcount
    if bumped:
        return
    conn.execute(dialect_insert(conn.dialect)(_lock).values(id=1, appends=0).on_conflict_do_nothing())
    conn.execute(sa.update(_lock).where(_lock.c.id == 1).values(appends=_lock.c.appends + 1))


def chain_head(conn) -> tuple[int, str]:
    row = conn.execute(sa.select(_log.c.seq, _log.c.entry_hash).where(_log.c.seq.is_not(None))
                       .order_by(_log.c.seq.desc()).limit(1)).first()
    return (row.seq, row.entry_hash) if row else (0, GENESIS)


@sa.event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        # A savepoint's release (a form's once-only claim, a race guard) is no commit: a generic
        # entry written there came before the use case's own (a duplicate) or outlived its refusal.
        return
    if has_request_context() and session is db.session() and _is_staff_write() and _writes_something(session):
        _generic_entry()
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    # Everything else first, so the chain's lock is the last one taken and is held only to the commit.
    session.flush()
    conn = session.connection()
    _take_chain_lock(conn)
    seq, prev = chain_head(conn)
    for entry in pending:
        seq += 1
        digest = chain_hash(prev, canonical(seq, entry["created_at"], entry["actor"], entry["action"],
                                            entry["target"], entry["details"], entry["ip"]))
        session.add(AuditEntry(**entry, seq=seq, prev_hash=prev, entry_hash=digest))
        prev = digest


@sa.event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_WROTE, None)


# Whether this transaction wrote: a commit that only ends a read (a refused form's page, drawn
# after its rollback) is no staff write, and gets no generic entry.
_WROTE = "filmfund.audit_wrote"


@sa.event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context) -> None:
    session.info[_WROTE] = True


@sa.event.listens_for(Session, "do_orm_execute")
def _executed(state) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


@sa.event.listens_for(Session, "after_commit")
def _wrote_nothing_yet(session: Session) -> None:
    if session.get_nested_transaction() is None:
        session.info.pop(_WROTE, None)


def _writes_something(session: Session) -> bool:
    return bool(session.info.get(_WROTE) or session.new or session.dirty or session.deleted)


@sa.event.listens_for(Session, "after_soft_rollback")
def _drop_pending_soft(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the outermost transaction: its entries go with it
        session.info.pop(_PENDING, None)


# ---------------------------------------------------------------- the check


def _anchor_path() -> Path | None:
    if not has_app_context() or not current_app.config.get("INSTANCE_DIR"):
        return None
    return Path(current_app.config["INSTANCE_DIR"]) / ANCHOR_FILE


def read_anchor() -> dict | None:
    path = _anchor_path()
    try:
        value = json.loads(path.read_text()) if path else None
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and isinstance(value.get("seq"), int) else None


def _write_anchor(seq: int, entry_hash: str) -> None:
    path = _anchor_path()
    if path is None:
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit-anchor.")
    with os.fdopen(fd, "w") as fh:
        json.dump({"seq": seq, "entry_hash": entry_hash, "checked_at": _when(utcnow())}, fh)
    os.replace(tmp, path)


def verify_chain(*, keep_anchor: bool = False, limit: int = 200) -> tuple[list[str], int]:
    """Recompute the chain from its first entry: (problems, entries). An entry changed, one
    removed from the middle, or the end cut back behind the head that the last passing check saw
    (kept outside the database, in the instance folder) is a problem. With `keep_anchor`, a passing
    check keeps today's head as that mark."""
    problems: list[str] = []

    def problem(text: str) -> None:
        if len(problems) < limit:
            problems.append(f"audit log: {text}")

    anchor = read_anchor()
    unchained = db.session.scalar(sa.select(sa.func.count()).select_from(_log).where(_log.c.seq.is_(None)))
    if unchained:
        problem(f"{unchained} entries are outside the chain (no sequence number)")
    expected, prev, count, anchor_seen = 1, GENESIS, 0, False
    rows = db.session.execute(
        sa.select(_log.c.seq, _log.c.created_at, _log.c.actor, _log.c.action, _log.c.target, _log.c.details,
                  _log.c.ip, _log.c.prev_hash, _log.c.entry_hash)
        .where(_log.c.seq.is_not(None)).order_by(_log.c.seq).execution_options(yield_per=2000))
    for row in rows:
        count += 1
        if row.seq != expected:
            problem(f"entries #{expected} to #{row.seq - 1} are missing (removed)" if row.seq > expected
                    else f"entry #{row.seq} appears twice")
        if row.prev_hash != prev:
            problem(f"entry #{row.seq} does not follow the entry before it (that one was changed or removed)")
        created_at = row.created_at
        if isinstance(created_at, str):  # a raw SQLite value, should the type not apply
            created_at = datetime.fromisoformat(created_at)
        digest = chain_hash(row.prev_hash or "", canonical(row.seq, created_at, row.actor, row.action, row.target,
                                                          row.details, row.ip))
        if digest != row.entry_hash:
            problem(f"entry #{row.seq} was changed after it was written")
        if anchor and row.seq == anchor["seq"]:
            anchor_seen = True
            if row.entry_hash != anchor.get("entry_hash"):
                problem(f"entry #{row.seq} is not the one the check of {anchor.get('checked_at')} saw "
                        "(the chain was rewritten up to it)")
        prev, expected = row.entry_hash, row.seq + 1
    if anchor and not anchor_seen and anchor["seq"] > 0:
        problem(f"the chain ends at #{expected - 1}, but the check of {anchor.get('checked_at')} saw it reach "
                f"#{anchor['seq']}: entries were removed from its end")
    if keep_anchor and not problems:
        _write_anchor(expected - 1, prev)
    return problems, count


# ---------------------------------------------------------------- the producers' page


ID_MAX = 2**31 - 1  # the id column is an integer: PostgreSQL refuses a larger number in a comparison


def list_audit(*, action: str | None = None, before_id: int | None = None, limit: int = 100,
               refs: list[str] | None = None) -> list[AuditEntry]:
    """The newest entries first; `action` filters by a dotted prefix (`token` or `token.revoke`),
    `refs` by a person's references, as actor or target (auth.audit_people.refs_for says which
    references an email, `user:<id>` or `email#…` stands for)."""
    query = sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 500)))
    if refs:
        query = query.where(sa.or_(AuditEntry.actor.in_(refs), AuditEntry.target.in_(refs)))
    if action:
        query = query.where(sa.or_(AuditEntry.action == action, AuditEntry.action.startswith(action + ".")))
    if before_id is not None and before_id <= ID_MAX:  # a larger number is before every entry: no filter
        query = query.where(AuditEntry.id < before_id)
    return list(db.session.scalars(query))


def audit_actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEntry.action).distinct().order_by(AuditEntry.action)))


# ---------------------------------------------------------------- every staff write


def _is_staff_write(response_status: int | None = None) -> bool:
    return (request.method in WRITE_METHODS and not request.environ.get(_RECORDED)
            and (response_status is None or response_status < 400) and _staff_user() is not None)


def _generic_entry() -> None:
    fields = sorted({k for k in request.form.keys() if k not in ("csrf_token", "password", "password2", "code")}
                    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data") else ())
    details = {"method": request.method, "args": request.view_args or {}}
    if fields:
        details["fields"] = fields[:30]  # which fields, never their values (they can hold a donor's data)
    record_audit(f"write.{request.endpoint or 'unknown'}", request.path, details, actor=_staff_user())


def init_app(app) -> None:
    """A staff member's write that no use case recorded specifically is recorded by its route:
    with the use case's commit when it commits (see _append_pending), else (a write that only
    queues a job, say) after its successful response."""

    @app.after_request
    def _staff_write_after(response):
        if _is_staff_write(response.status_code):
            _generic_entry()
            db.session.commit()
        return response
