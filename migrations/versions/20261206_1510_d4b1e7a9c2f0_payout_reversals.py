"""Payout reversals: a payout recorded by mistake is taken back by a new `payout_reversal` group in
the ledger (a negative entry linked to the payout), never by editing or deleting; the payout keeps
when, by whom and why it was reversed

Revision ID: d4b1e7a9c2f0
Revises: b0a7f5e3c911
Create Date: 2026-12-06 15:10:00

"""
from alembic import op
import sqlalchemy as sa

from filmfund.db import UTCDateTime

revision = 'd4b1e7a9c2f0'
down_revision = 'b0a7f5e3c911'
branch_labels = None
depends_on = None

EVENT_KINDS = ['donation', 'offline_donation', 'refund', 'dispute_lost', 'dispute_won', 'payout', 'refund_failed']
ENTRY_KINDS = ['gift', 'refund', 'restore', 'partner_share', 'partner_share_reversal', 'payout']
SIGN_RULE = ("(entry_kind IN ('gift', 'restore', 'partner_share', 'payout') AND amount > 0) OR "
             "(entry_kind IN ('refund', 'partner_share_reversal'{}) AND amount < 0)")
PAYOUT_KINDS = "entry_kind IN ('payout', 'payout_reversal')"


def _in(column, values):
    return f'{column} IN (' + ', '.join(f"'{v}'" for v in values) + ')'


def _checks(reversal: bool):
    extra = ['payout_reversal'] if reversal else []
    # recreate 'auto': SQLite rebuilds the table (it cannot alter a CHECK), PostgreSQL alters it in
    # place. Never 'always': rebuilt on PostgreSQL, the copy's id would take a new sequence starting
    # at 1 under the rows it copied, and the next entry booked would collide with the first.
    with op.batch_alter_table('ledger_entries', schema=None, recreate='auto') as batch_op:
        for name in ('eventkind', 'entrykind', 'sign_by_kind', 'payout_link', 'money_has_donation'):
            batch_op.drop_constraint(op.f(f'ck_ledger_entries_{name}'), type_='check')
        batch_op.create_check_constraint('eventkind', _in('event_kind', EVENT_KINDS + extra))
        batch_op.create_check_constraint('entrykind', _in('entry_kind', ENTRY_KINDS + extra))
        batch_op.create_check_constraint('sign_by_kind', SIGN_RULE.format(", 'payout_reversal'" if reversal else ''))
        payout = PAYOUT_KINDS if reversal else "entry_kind = 'payout'"
        batch_op.create_check_constraint('payout_link', f'({payout}) = (payout_id IS NOT NULL)')
        batch_op.create_check_constraint(
            'money_has_donation', f"{payout} OR entry_kind LIKE 'partner_share%' OR donation_id IS NOT NULL")


def upgrade():
    with op.batch_alter_table('payouts') as batch:
        batch.add_column(sa.Column('reversed_at', UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('reversed_by', sa.String(length=254), nullable=True))
        batch.add_column(sa.Column('reversal_reason', sa.String(length=500), nullable=True))
    _checks(reversal=True)
    op.create_index('uq_ledger_entries_payout_reversal', 'ledger_entries', ['payout_id'], unique=True,
                    postgresql_where=sa.text("entry_kind = 'payout_reversal'"),
                    sqlite_where=sa.text("entry_kind = 'payout_reversal'"))


def downgrade():
    # The ledger is append-only: a reversal booked cannot be unbooked, and the older schema cannot
    # hold it. Going back is refused rather than silently changing what was paid.
    if op.get_bind().execute(sa.text(
            "SELECT count(*) FROM ledger_entries WHERE entry_kind = 'payout_reversal'")).scalar():
        raise RuntimeError("payout reversals are booked: the schema before d4b1e7a9c2f0 cannot hold them")
    op.drop_index('uq_ledger_entries_payout_reversal', table_name='ledger_entries')
    _checks(reversal=False)
    # ALTER TABLE … DROP COLUMN (SQLite 3.35 and later too): no rebuild of payouts, which the
    # ledger's entries reference (a rebuild's DROP TABLE would break their foreign keys).
    for column in ('reversal_reason', 'reversed_by', 'reversed_at'):
        op.drop_column('payouts', column)
