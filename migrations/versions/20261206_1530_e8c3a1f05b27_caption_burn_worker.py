"""Caption burns beat as footage jobs do: the worker running a burn and its heartbeat, so that a
burn whose worker died is marked failed by the jobs' reaper instead of staying `running` for ever

Revision ID: e8c3a1f05b27
Revises: d4b1e7a9c2f0
Create Date: 2026-12-06 15:30:00

"""
from alembic import op
import sqlalchemy as sa

from filmfund.db import UTCDateTime

revision = 'e8c3a1f05b27'
down_revision = 'd4b1e7a9c2f0'
branch_labels = None
depends_on = None


def upgrade():
    # ADD COLUMN: no rebuild of the table on SQLite (recreate 'auto'), in place on PostgreSQL.
    with op.batch_alter_table('media_captions') as batch:
        batch.add_column(sa.Column('burn_worker', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('burn_beat_at', UTCDateTime(), nullable=True))


def downgrade():
    for column in ('burn_beat_at', 'burn_worker'):
        op.drop_column('media_captions', column)
