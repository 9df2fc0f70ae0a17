"""campaign page parts, budget lines, share visits and the pledge's ref (issue 12 items 2 and 4)

Revision ID: 7c1e5a9b2f40
Revises: 6a9e4d3199c5
Create Date: 2026-12-03 21:00:00

"""
from alembic import op
import sqlalchemy as sa
import filmfund.db


revision = '7c1e5a9b2f40'
down_revision = '6a9e4d3199c5'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('campaign_page_parts',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('part', sa.String(length=32), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('edited_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('edited_by', sa.Integer(), nullable=True),
    sa.Column('updated_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_page_parts_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['edited_by'], ['users.id'], name=op.f('fk_campaign_page_parts_edited_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('campaign_id', 'part', name=op.f('pk_campaign_page_parts'))
    )
    op.create_table('budget_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('title', sa.JSON(), nullable=False),
    sa.Column('planned', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.CheckConstraint('planned >= 0', name=op.f('ck_budget_lines_planned_not_negative')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_budget_lines_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_lines')),
    sa.UniqueConstraint('campaign_id', 'key', name='uq_budget_lines_campaign_key')
    )
    with op.batch_alter_table('budget_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_budget_lines_campaign_id'), ['campaign_id'], unique=False)
    op.create_table('share_visits',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('visits', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_share_visits_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'source', 'day', name=op.f('pk_share_visits'))
    )
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ref', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_pledges_ref'), ['ref'], unique=False)


def downgrade():
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pledges_ref'))
        batch_op.drop_column('ref')
    op.drop_table('share_visits')
    with op.batch_alter_table('budget_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_budget_lines_campaign_id'))
    op.drop_table('budget_lines')
    op.drop_table('campaign_page_parts')
