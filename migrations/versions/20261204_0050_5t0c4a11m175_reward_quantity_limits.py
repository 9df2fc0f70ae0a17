"""reward quantity limits: a reward's limit and claimed count, the claims of unpaid pledges (issue 14.2)

Revision ID: 5t0c4a11m175
Revises: b0e7c4a9d2f1
Create Date: 2026-12-04 00:40:00

"""
from alembic import op
import sqlalchemy as sa

from filmfund.db import UTCDateTime


revision = '5t0c4a11m175'
down_revision = 'b0e7c4a9d2f1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('rewards') as batch:
        batch.add_column(sa.Column('quantity_limit', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('claimed', sa.Integer(), nullable=False, server_default='0'))
    op.create_table(
        'reward_claims',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('reward_id', sa.Integer(), nullable=False),
        sa.Column('pledge_id', sa.String(length=32), nullable=False),
        sa.Column('state', sa.Enum('held', 'used', 'released', name='claimstate', native_enum=False, length=16,
                                   create_constraint=True), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('decided_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['pledge_id'], ['pledges.id'], ondelete='CASCADE',
                                name=op.f('fk_reward_claims_pledge_id_pledges')),
        sa.ForeignKeyConstraint(['reward_id'], ['rewards.id'], ondelete='CASCADE',
                                name=op.f('fk_reward_claims_reward_id_rewards')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reward_claims')),
        sa.UniqueConstraint('pledge_id', 'reward_id', name='uq_reward_claims_pledge_reward'),
    )
    op.create_index('ix_reward_claims_state_expires', 'reward_claims', ['state', 'expires_at'])


def downgrade():
    op.drop_index('ix_reward_claims_state_expires', table_name='reward_claims')
    op.drop_table('reward_claims')
    with op.batch_alter_table('rewards') as batch:
        batch.drop_column('claimed')
        batch.drop_column('quantity_limit')
