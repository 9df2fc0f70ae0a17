"""audit chain: each entry hashed with the one before it; no email left in the log (issue 16.5)

The rows written before this migration are first rid of emails (a person becomes `user:<id>`, an
address that is no account's its keyed hash, as filmfund.audit writes them now), then chained in
the order they were written. Both need UPDATEs that the append-only triggers refuse: the
migration role, which owns the table, sets them aside for this one transaction.

Revision ID: 5eb1c4a1d17e
Revises: 7c1e5a9b2f40
Create Date: 2026-12-03 21:40:00

"""
import hashlib
import hmac
import re

from alembic import op
import sqlalchemy as sa
from flask import current_app

import filmfund.db
from filmfund.audit import GENESIS, canonical, chain_hash


# revision identifiers, used by Alembic.
revision = '5eb1c4a1d17e'
down_revision = '7c1e5a9b2f40'
branch_labels = None
depends_on = None

# Copies of filmfund/audit.py's trigger statements, before and after this migration.
_OLD_COLUMNS = ("id", "created_at", "actor", "action", "target", "details", "ip")
_NEW_COLUMNS = _OLD_COLUMNS + ("seq", "prev_hash", "entry_hash")


def _sqlite_update_trigger(columns):
    return ("CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "WHEN NOT (NEW.actor_id IS NULL AND " + " AND ".join(f"NEW.{c} IS OLD.{c}" for c in columns)
            + ") BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")


SQLITE_NO_DELETE = ("CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
                    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")


def _postgres_function(columns):
    return ("CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN "
            "IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL AND ("
            + ", ".join(f"NEW.{c}" for c in columns) + ") IS NOT DISTINCT FROM ("
            + ", ".join(f"OLD.{c}" for c in columns) + ") THEN RETURN NEW; END IF; "
            "RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege'; "
            "END $$")


_EMAIL = re.compile(r"[^\s@\"'<>(),;:\[\]]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}")

log = sa.table('audit_log', sa.column('id', sa.Integer), sa.column('created_at', filmfund.db.UTCDateTime()),
               sa.column('actor_id', sa.Integer), sa.column('actor', sa.String), sa.column('action', sa.String),
               sa.column('target', sa.String), sa.column('details', sa.Text), sa.column('ip', sa.String),
               sa.column('seq', sa.BigInteger), sa.column('prev_hash', sa.String),
               sa.column('entry_hash', sa.String))
users = sa.table('users', sa.column('id', sa.Integer), sa.column('email', sa.String))


def _set_aside_triggers(dialect, on):
    if dialect == "sqlite":
        if on:
            op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
            op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        else:
            op.execute(SQLITE_NO_DELETE)
            op.execute(_sqlite_update_trigger(_NEW_COLUMNS))
    elif dialect == "postgresql":
        op.execute(f"ALTER TABLE audit_log {'DISABLE' if on else 'ENABLE'} TRIGGER audit_log_append_only")


def upgrade():
    bind = op.get_bind()
    dialect = bind.dialect.name
    op.add_column('audit_log', sa.Column('seq', sa.BigInteger(), nullable=True))
    op.add_column('audit_log', sa.Column('prev_hash', sa.String(length=64), nullable=True))
    op.add_column('audit_log', sa.Column('entry_hash', sa.String(length=64), nullable=True))
    op.create_index(op.f('ix_audit_log_seq'), 'audit_log', ['seq'], unique=True)
    op.create_table('audit_chain_lock',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('appends', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_lock'))
    )
    op.add_column('ledger_checks', sa.Column('audit_entries', sa.BigInteger(), nullable=True))
    op.add_column('ledger_checks', sa.Column('audit_ok', sa.Boolean(), nullable=True))
    if dialect == "postgresql":
        op.execute(_postgres_function(_NEW_COLUMNS))

    _set_aside_triggers(dialect, True)
    key = ("audit-email:" + current_app.config["SECRET_KEY"]).encode()
    by_email = {email.lower(): uid for uid, email in bind.execute(sa.select(users.c.id, users.c.email))}

    def person(text):
        def one(match):
            uid = by_email.get(match.group(0).lower())
            if uid is not None:
                return f"user:{uid}"
            return "email#" + hmac.new(key, match.group(0).strip().lower().encode(), hashlib.sha256).hexdigest()[:24]
        return _EMAIL.sub(one, text) if text and "@" in text else text

    prev, seq = GENESIS, 0
    for row in bind.execute(sa.select(log).order_by(log.c.id)).all():
        seq += 1
        actor = f"user:{row.actor_id}" if row.actor_id is not None else person(row.actor)
        target, details = person(row.target or ""), person(row.details or "{}")
        digest = chain_hash(prev, canonical(seq, row.created_at, actor, row.action, target, details, row.ip))
        bind.execute(sa.update(log).where(log.c.id == row.id).values(
            actor=actor, target=target, details=details, seq=seq, prev_hash=prev, entry_hash=digest))
        prev = digest
    _set_aside_triggers(dialect, False)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    op.drop_column('ledger_checks', 'audit_ok')
    op.drop_column('ledger_checks', 'audit_entries')
    op.drop_table('audit_chain_lock')
    op.drop_index(op.f('ix_audit_log_seq'), table_name='audit_log')
    if dialect == "postgresql":
        op.execute(_postgres_function(_OLD_COLUMNS))
    op.drop_column('audit_log', 'entry_hash')
    op.drop_column('audit_log', 'prev_hash')
    op.drop_column('audit_log', 'seq')
    if dialect == "sqlite":
        op.execute(_sqlite_update_trigger(_OLD_COLUMNS))
