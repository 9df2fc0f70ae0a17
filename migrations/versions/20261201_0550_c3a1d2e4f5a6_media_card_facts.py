"""media: the camera's timecode, each source's expected size from the card's clip info, and the
card structure files (playlists, clip info) kept with an asset

Revision ID: c3a1d2e4f5a6
Revises: b98f0bbff7fa
Create Date: 2026-12-01 05:05:00

"""
from alembic import op
import sqlalchemy as sa
import filmfund.db


revision = 'c3a1d2e4f5a6'
down_revision = 'b98f0bbff7fa'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('media_assets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timecode', sa.String(length=16), nullable=True))
    with op.batch_alter_table('media_sources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expected_size', sa.BigInteger(), nullable=True))
    op.create_table('media_sidecars',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('storage_key', sa.String(length=300), nullable=False),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['media_assets.id'], name=op.f('fk_media_sidecars_asset_id_media_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_sidecars')),
    sa.UniqueConstraint('asset_id', 'name', name='uq_media_sidecars_asset_name')
    )
    with op.batch_alter_table('media_sidecars', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_sidecars_asset_id'), ['asset_id'], unique=False)


def downgrade():
    with op.batch_alter_table('media_sidecars', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_sidecars_asset_id'))
    op.drop_table('media_sidecars')
    with op.batch_alter_table('media_sources', schema=None) as batch_op:
        batch_op.drop_column('expected_size')
    with op.batch_alter_table('media_assets', schema=None) as batch_op:
        batch_op.drop_column('timecode')
