"""refund_reports (what Stripe reported of a donation's refunds, failures included), a dispute's
amount on its donation, and the ledger's `refund_failed` event (a refund that failed gives its money back)

Revision ID: caa14fa3db27
Revises: c3e8a1f07d52
Create Date: 2026-12-06 12:00:00

"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

from filmfund.db import UTCDateTime


revision = 'caa14fa3db27'
down_revision = 'c3e8a1f07d52'
branch_labels = None
depends_on = None

EVENT_KINDS = ['donation', 'offline_donation', 'refund', 'dispute_lost', 'dispute_won', 'payout']


def _event_kinds(values):
    # recreate 'auto': SQLite rebuilds the table (it cannot alter a CHECK), PostgreSQL alters it in
    # place. Rebuilt on PostgreSQL, the copy's id would take a new sequence starting at 1 under the
    # rows it copied: the next entry booked would collide with the first.
    with op.batch_alter_table('ledger_entries', schema=None, recreate='auto') as batch_op:
        batch_op.drop_constraint(op.f('ck_ledger_entries_eventkind'), type_='check')
        batch_op.create_check_constraint(
            'eventkind', 'event_kind IN (' + ', '.join(f"'{v}'" for v in values) + ')')


def upgrade():
    op.create_table(
        'refund_reports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('donation_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.Enum('refunded', 'refund_failed', name='reportkind', native_enum=False, length=16,
                                  create_constraint=True), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('reported_at', sa.BigInteger(), nullable=False),
        sa.Column('refund_id', sa.String(length=255), nullable=True),
        sa.Column('refund_created', sa.BigInteger(), nullable=True),
        sa.Column('stripe_event_id', sa.String(length=255), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.CheckConstraint('amount >= 0', name=op.f('ck_refund_reports_amount_not_negative')),
        sa.ForeignKeyConstraint(['donation_id'], ['donations.id'], name=op.f('fk_refund_reports_donation_id_donations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_reports')),
    )
    op.create_index(op.f('ix_refund_reports_donation_id'), 'refund_reports', ['donation_id'])
    with op.batch_alter_table('donations') as batch:
        batch.add_column(sa.Column('dispute_amount', sa.Integer(), nullable=True))
    _event_kinds(EVENT_KINDS + ['refund_failed'])
    _sequences_past_their_rows()
    # What is refunded so far becomes each donation's first report, as of now: a refund Stripe
    # later says failed is taken out of it (it was made before now).
    bind = op.get_bind()
    now = datetime.now(timezone.utc)
    bind.execute(sa.text(
        "INSERT INTO refund_reports (donation_id, kind, amount, reported_at, created_at) "
        "SELECT id, 'refunded', amount_refunded, :at, :now FROM donations WHERE amount_refunded > 0"),
        {'at': int(now.timestamp()), 'now': now.replace(tzinfo=None) if bind.dialect.name == 'sqlite' else now})


def _sequences_past_their_rows():
    """PostgreSQL: b98f0bbff7fa rebuilt webhook_events (recreate 'always'), and with it its id's
    sequence, a new one at 1 under the rows it copied: an installation that had events then had
    its next ones refused until the sequence passed them. Each table's sequence is set past its
    rows (harmless where it is already)."""
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    for table in ('webhook_events', 'ledger_entries'):
        bind.execute(sa.text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), "
            f"(SELECT last_value FROM pg_sequences WHERE schemaname = current_schema() "
            f"AND sequencename = split_part(pg_get_serial_sequence('{table}', 'id'), '.', 2))::bigint, 1))"))


def downgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:  # dropping a column rebuilds the table, which others reference
        op.execute('PRAGMA foreign_keys=OFF')
    # A failed refund's restore entries keep their amounts, under the event kind a restore had before.
    op.execute("UPDATE ledger_entries SET event_kind = 'dispute_won' WHERE event_kind = 'refund_failed'")
    _event_kinds(EVENT_KINDS)
    op.drop_index(op.f('ix_refund_reports_donation_id'), table_name='refund_reports')
    op.drop_table('refund_reports')
    with op.batch_alter_table('donations') as batch:
        batch.drop_column('dispute_amount')
    if sqlite:
        op.execute('PRAGMA foreign_keys=ON')
