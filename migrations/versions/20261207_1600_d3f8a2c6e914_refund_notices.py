"""A donor is told when their gift is refunded (rewards/refund_notices.py): donations.refund_noticed,
the refunded amount they were last told of.

The refunds booked before this version were never told, and are not told now: an upgrade must not
mail every donor refunded since the campaign began. Their rows start as told (the UPDATE, only on
the refunded rows, which the partial index of refunded and disputed gifts finds).

Revision ID: d3f8a2c6e914
Revises: b7e2f4c8d1a6
Create Date: 2026-12-07 16:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = 'd3f8a2c6e914'
down_revision = 'b7e2f4c8d1a6'
branch_labels = None
depends_on = None


def upgrade():
    # NOT NULL with a constant default: no rebuild on SQLite, no table rewrite on PostgreSQL 11+.
    with op.batch_alter_table('donations') as batch:
        batch.add_column(sa.Column('refund_noticed', sa.Integer(), nullable=False, server_default='0'))
    op.execute("UPDATE donations SET refund_noticed = amount_refunded WHERE amount_refunded > 0")


def downgrade():
    with op.batch_alter_table('donations') as batch:
        batch.drop_column('refund_noticed')
