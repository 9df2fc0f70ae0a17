"""The producers' donor search folds case and accents alike on SQLite and PostgreSQL: each
donor's search keys (filmfund.typed.search_key) are stored beside what they fold and indexed,
users.email_key and donor_profiles.credit_name_key (ordered by code point: "C" on PostgreSQL), and
filled here for every row already written, in batches; the lower(credit_name) index served only
the search and goes.

The keys are computed in Python, by the rule's one home (PostgreSQL's unaccent extension needs a
superuser to install, and would be a second rule beside it). Rows are read and written 10,000 at a
time in the migration's one transaction: memory stays flat, and a migration that fails leaves
nothing half done.

Revision ID: f0a1d5e3c2b9
Revises: c4d9e2a7b613
Create Date: 2026-12-06 22:10:00

"""
from alembic import op
import sqlalchemy as sa

from filmfund.db import write_derived
from filmfund.typed import SEARCH_KEY_MAX, search_key

revision = 'f0a1d5e3c2b9'
down_revision = 'c4d9e2a7b613'
branch_labels = None
depends_on = None

BATCH = 10_000
_KEY = sa.String(length=SEARCH_KEY_MAX).with_variant(sa.String(length=SEARCH_KEY_MAX, collation='C'), 'postgresql')
# (table, its key column, the column it folds, the table's primary key)
KEYS = (('users', 'email_key', 'email', 'id'), ('donor_profiles', 'credit_name_key', 'credit_name', 'user_id'))


def _backfill(conn, table: str, key: str, source: str, pk: str) -> None:
    write_derived(conn, table, key, source, pk, search_key, batch=BATCH)


def upgrade():
    # ADD COLUMN, nullable and without a default: no rebuild on SQLite, no rewrite on PostgreSQL.
    for table, key, _source, _pk in KEYS:  # no batch: SQLite's rebuild would lose lower(email)'s index
        op.add_column(table, sa.Column(key, _KEY, nullable=True))
    conn = op.get_bind()
    for table, key, source, pk in KEYS:
        _backfill(conn, table, key, source, pk)
    # Built once filled: one sort, rather than an index kept up row by row.
    op.create_index('ix_users_email_key', 'users', ['email_key'])
    op.create_index('ix_donor_profiles_credit_name_key', 'donor_profiles', ['credit_name_key'])
    op.drop_index('ix_donor_profiles_credit_name_lower', table_name='donor_profiles')


def downgrade():
    op.create_index('ix_donor_profiles_credit_name_lower', 'donor_profiles', [sa.text('lower(credit_name)')])
    op.drop_index('ix_donor_profiles_credit_name_key', table_name='donor_profiles')
    op.drop_index('ix_users_email_key', table_name='users')
    for table, key, _source, _pk in KEYS:
        op.drop_column(table, key)
