"""A reward that takes the place of a lower tier's (rewards.replaces: the campaign file's `replaces`,
"the DVD signed" for "the DVD"), so that a donor who reaches both holds the one.

Nullable, no backfill: the next `filmfund campaign load` sets it from the file and brings every
donor's entitlements in line (a donor of $100 or more then holds the signed DVD alone; the plain
DVD's item, not shipped yet, leaves the queue).

Revision ID: a91c4e7b2d10
Revises: fe25c773f1b0
Create Date: 2026-12-07 20:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = 'a91c4e7b2d10'
down_revision = 'fe25c773f1b0'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('rewards') as batch:
        batch.add_column(sa.Column('replaces', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('rewards') as batch:
        batch.drop_column('replaces')
