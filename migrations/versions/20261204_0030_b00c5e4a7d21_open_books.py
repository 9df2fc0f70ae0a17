"""open books: expenses against budget lines, the partner's acknowledgement of a payout, the
campaign's time zone (issue 13 items 2 and 3)

Revision ID: b00c5e4a7d21
Revises: d0a7e1f5c0de
Create Date: 2026-12-04 00:00:00

"""
from alembic import op
import sqlalchemy as sa

import filmfund.db


revision = 'b00c5e4a7d21'
down_revision = 'd0a7e1f5c0de'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=False, server_default='UTC'))
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acknowledged_at', filmfund.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_by', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_payouts_acknowledged_by_users'), 'users', ['acknowledged_by'],
                                    ['id'], ondelete='SET NULL')
    op.create_table('expenses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('budget_line_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('spent_on', sa.Date(), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('receipt_key', sa.String(length=300), nullable=True),
    sa.Column('receipt_name', sa.String(length=200), nullable=True),
    sa.Column('receipt_type', sa.String(length=100), nullable=True),
    sa.Column('receipt_size', sa.BigInteger(), nullable=True),
    sa.Column('state', sa.Enum('recorded', 'void', name='expensestate', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('replaces_id', sa.Integer(), nullable=True),
    sa.Column('recorded_by', sa.Integer(), nullable=True),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('voided_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('voided_by', sa.Integer(), nullable=True),
    sa.Column('void_reason', sa.String(length=500), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_expenses_amount_positive')),
    sa.ForeignKeyConstraint(['budget_line_id'], ['budget_lines.id'], name=op.f('fk_expenses_budget_line_id_budget_lines')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_expenses_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recorded_by'], ['users.id'], name=op.f('fk_expenses_recorded_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['replaces_id'], ['expenses.id'], name=op.f('fk_expenses_replaces_id_expenses')),
    sa.ForeignKeyConstraint(['voided_by'], ['users.id'], name=op.f('fk_expenses_voided_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_expenses'))
    )
    with op.batch_alter_table('expenses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_expenses_budget_line_id'), ['budget_line_id'], unique=False)
        batch_op.create_index('ix_expenses_campaign_state_line', ['campaign_id', 'state', 'budget_line_id'], unique=False)


def downgrade():
    with op.batch_alter_table('expenses', schema=None) as batch_op:
        batch_op.drop_index('ix_expenses_campaign_state_line')
        batch_op.drop_index(batch_op.f('ix_expenses_budget_line_id'))
    op.drop_table('expenses')
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_payouts_acknowledged_by_users'), type_='foreignkey')
        batch_op.drop_column('acknowledged_by')
        batch_op.drop_column('acknowledged_at')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
