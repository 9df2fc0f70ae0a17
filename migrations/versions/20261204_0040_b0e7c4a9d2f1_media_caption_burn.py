"""media: a donor copy with captions burned in, per caption (its state, file and error)

Revision ID: b0e7c4a9d2f1
Revises: 9c4f2b7e1d11
Create Date: 2026-12-04 00:40:00

"""
from alembic import op
import sqlalchemy as sa
import filmfund.db


revision = 'b0e7c4a9d2f1'
down_revision = '9c4f2b7e1d11'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('media_captions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('burn_state', sa.String(length=16), nullable=False, server_default='none'))
        batch_op.add_column(sa.Column('burn_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('burned_key', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('burned_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('burned_size', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('burned_at', filmfund.db.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('media_captions', schema=None) as batch_op:
        for name in ('burned_at', 'burned_size', 'burned_sha256', 'burned_key', 'burn_error', 'burn_state'):
            batch_op.drop_column(name)
