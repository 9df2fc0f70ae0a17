"""media: HLS streams of published video, the donors' viewings (address hashed) and the flags of
streams fetched from too many addresses (issue 15, items 2 and 4)

Revision ID: 9c4f2b7e1d11
Revises: b00c5e4a7d21
Create Date: 2026-12-04 00:30:00

"""
from alembic import op
import sqlalchemy as sa
import filmfund.db


revision = '9c4f2b7e1d11'
down_revision = 'b00c5e4a7d21'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('media_streams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('index', sa.JSON(), nullable=True),
    sa.Column('profile', sa.JSON(), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['media_assets.id'], name=op.f('fk_media_streams_asset_id_media_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_streams')),
    sa.UniqueConstraint('asset_id', name=op.f('uq_media_streams_asset_id'))
    )
    op.create_table('media_viewings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('address', sa.String(length=32), nullable=False),
    sa.Column('screening', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['media_assets.id'], name=op.f('fk_media_viewings_asset_id_media_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_media_viewings_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_viewings'))
    )
    with op.batch_alter_table('media_viewings', schema=None) as batch_op:
        batch_op.create_index('ix_media_viewings_user_at', ['user_id', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_media_viewings_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_media_viewings_at'), ['at'], unique=False)
    op.create_table('media_viewing_flags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('first_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('addresses', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['media_assets.id'], name=op.f('fk_media_viewing_flags_asset_id_media_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_media_viewing_flags_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_viewing_flags'))
    )
    with op.batch_alter_table('media_viewing_flags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_viewing_flags_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_media_viewing_flags_last_at'), ['last_at'], unique=False)


def downgrade():
    with op.batch_alter_table('media_viewing_flags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_viewing_flags_last_at'))
        batch_op.drop_index(batch_op.f('ix_media_viewing_flags_user_id'))
    op.drop_table('media_viewing_flags')
    with op.batch_alter_table('media_viewings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_viewings_at'))
        batch_op.drop_index(batch_op.f('ix_media_viewings_asset_id'))
        batch_op.drop_index('ix_media_viewings_user_at')
    op.drop_table('media_viewings')
    op.drop_table('media_streams')
