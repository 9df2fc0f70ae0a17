"""media: captions per asset and language (sanitised WebVTT), each with its status (draft, final)

Revision ID: c4p710e5a1b2
Revises: 3b7d9e1a5c20
Create Date: 2026-12-04 00:05:00

"""
from alembic import op
import sqlalchemy as sa
import filmfund.db


revision = 'c4p710e5a1b2'
down_revision = '3b7d9e1a5c20'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('media_captions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('lang', sa.String(length=35), nullable=False),
    sa.Column('status', sa.Enum('draft', 'final', name='captionstatus', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('vtt', sa.Text(), nullable=False),
    sa.Column('cues', sa.Integer(), nullable=False),
    sa.Column('source_format', sa.String(length=8), nullable=False),
    sa.Column('translated_from', sa.String(length=35), nullable=True),
    sa.Column('updated_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['asset_id'], ['media_assets.id'], name=op.f('fk_media_captions_asset_id_media_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], name=op.f('fk_media_captions_updated_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_captions')),
    sa.UniqueConstraint('asset_id', 'lang', name='uq_media_captions_asset_lang')
    )
    with op.batch_alter_table('media_captions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_captions_asset_id'), ['asset_id'], unique=False)


def downgrade():
    with op.batch_alter_table('media_captions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_captions_asset_id'))
    op.drop_table('media_captions')
