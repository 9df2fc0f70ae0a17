"""The donor search's keys write ø, ł, đ, ð, ħ, ı, ŧ, æ, œ and þ as a plain keyboard types them
(typed.search_key's _LETTERS_APART): "soren" finds Søren. The keys already stored that hold one of
these letters are made again by the rule's one home, and so is any key left empty beside a value
(a row written by code older than f0a1d5e3c2b9 between that migration and a restart).

Only those rows are read and written, 10,000 at a time, in the migration's one transaction; a key
without these letters is what the new rule makes of it already.

Revision ID: b7e2f4c8d1a6
Revises: f0a1d5e3c2b9
Create Date: 2026-12-07 00:30:00

"""
from alembic import op

from filmfund.db import write_derived
from filmfund.typed import search_key

revision = 'b7e2f4c8d1a6'
down_revision = 'f0a1d5e3c2b9'
branch_labels = None
depends_on = None

BATCH = 10_000
# (table, its key column, the column it folds, the table's primary key)
KEYS = (('users', 'email_key', 'email', 'id'), ('donor_profiles', 'credit_name_key', 'credit_name', 'user_id'))
# The letters as the earlier rule stored them (case folded, kept otherwise).
LETTERS = ('ø', 'ł', 'đ', 'ð', 'ħ', 'ı', 'ŧ', 'æ', 'œ', 'þ')


def upgrade():
    conn = op.get_bind()
    letters = {f'l{i}': f'%{letter}%' for i, letter in enumerate(LETTERS)}
    for table, key, source, pk in KEYS:
        holds = ' OR '.join(f'{key} LIKE :{name}' for name in letters)
        write_derived(conn, table, key, source, pk, search_key, only=f'{key} IS NULL OR {holds}', params=letters,
                      batch=BATCH)


def downgrade():
    # Nothing to take away (no column, no index). The keys stay as made here: the earlier code's
    # search, typed "søren", misses Søren again, and finds him typed "soren" (its rule folds the
    # search, not the store, and leaves ø as it is).
    pass
