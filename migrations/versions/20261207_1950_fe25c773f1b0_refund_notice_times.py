"""When a donor was mailed the notice of their gift's refund (rewards/refund_notices.py), so that the
producers' page about the donor can say so: donations.refund_noticed_at, set with refund_noticed
when the notice is claimed for its mail.

No backfill: the time of the notices told before this version was never kept, and the refunds booked
before refund notices began were marked told without a mail (d3f8a2c6e914). Their rows keep NULL,
which the page says as "time not recorded".

Revision ID: fe25c773f1b0
Revises: d3f8a2c6e914
Create Date: 2026-12-07 19:50:00

"""
from alembic import op
import sqlalchemy as sa

from filmfund.db import UTCDateTime

revision = 'fe25c773f1b0'
down_revision = 'd3f8a2c6e914'
branch_labels = None
depends_on = None


def upgrade():
    # ADD COLUMN, nullable and without a default: no rebuild on SQLite, no rewrite on PostgreSQL.
    with op.batch_alter_table('donations') as batch:
        batch.add_column(sa.Column('refund_noticed_at', UTCDateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('donations') as batch:
        batch.drop_column('refund_noticed_at')
