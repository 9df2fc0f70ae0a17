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
import sqlalchemy as sa

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


def _rekey(conn, table: str, key: str, source: str, pk: str) -> None:
    postgres = conn.dialect.name == 'postgresql'
    holds = ' OR '.join(f'{key} LIKE :l{i}' for i in range(len(LETTERS)))
    select = sa.text(f'SELECT {pk}, {source} FROM {table} WHERE {pk} > :last AND {source} IS NOT NULL '
                     f'AND ({key} IS NULL OR {holds}) ORDER BY {pk} LIMIT {BATCH}')
    letters = {f'l{i}': f'%{letter}%' for i, letter in enumerate(LETTERS)}
    if postgres:  # one statement a batch: the keys joined in as arrays
        update = sa.text(f'UPDATE {table} AS t SET {key} = v.k FROM unnest(CAST(:ids AS integer[]), '
                         f'CAST(:keys AS text[])) AS v(id, k) WHERE t.{pk} = v.id')
    else:
        update = sa.text(f'UPDATE {table} SET {key} = :k WHERE {pk} = :id')
    last = 0
    while True:
        rows = conn.execute(select, {'last': last, **letters}).all()
        if not rows:
            return
        keys = [(row[0], search_key(row[1])) for row in rows]
        if postgres:
            conn.execute(update, {'ids': [i for i, _ in keys], 'keys': [k for _, k in keys]})
        else:
            conn.execute(update, [{'id': i, 'k': k} for i, k in keys])
        last = rows[-1][0]


def upgrade():
    conn = op.get_bind()
    for table, key, source, pk in KEYS:
        _rekey(conn, table, key, source, pk)


def downgrade():
    # Nothing to take away (no column, no index). The keys stay as made here: the earlier code's
    # search, typed "søren", misses Søren again, and finds him typed "soren" (its rule folds the
    # search, not the store, and leaves ø as it is).
    pass
