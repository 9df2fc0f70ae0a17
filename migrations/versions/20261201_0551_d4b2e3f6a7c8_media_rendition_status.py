"""media: each rendition's own state (pending, running, ready, failed), so a failed poster is a
notice with a retry, not a failed asset

Revision ID: d4b2e3f6a7c8
Revises: c3a1d2e4f5a6
Create Date: 2026-12-01 05:20:00

"""
from alembic import op
import sqlalchemy as sa
import filmfund.db


revision = 'd4b2e3f6a7c8'
down_revision = 'c3a1d2e4f5a6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('media_rendition_status',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('proxy', 'web', 'poster', 'strip', 'rescue', 'image', name='renditionkind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('state', sa.Enum('pending', 'running', 'ready', 'failed', name='renditionstate', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['media_assets.id'], name=op.f('fk_media_rendition_status_asset_id_media_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_rendition_status')),
    sa.UniqueConstraint('asset_id', 'kind', name='uq_media_rendition_status_asset_kind')
    )
    with op.batch_alter_table('media_rendition_status', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_rendition_status_asset_id'), ['asset_id'], unique=False)


def downgrade():
    with op.batch_alter_table('media_rendition_status', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_rendition_status_asset_id'))
    op.drop_table('media_rendition_status')
