"""An address survey's or credits proof's mail that the donor's mail server refused is kept as
refused, with what was refused (mail.refusal_kind: address, message, unsendable), instead of
looking sent: fulfil_reminders.refused (NULL for a mail that went out, as every earlier row)

Revision ID: a7d2c4e6f813
Revises: e8c3a1f05b27
Create Date: 2026-12-06 19:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = 'a7d2c4e6f813'
down_revision = 'e8c3a1f05b27'
branch_labels = None
depends_on = None


def upgrade():
    # ADD COLUMN, nullable and without a default: no rebuild on SQLite, no rewrite on PostgreSQL.
    with op.batch_alter_table('fulfil_reminders') as batch:
        batch.add_column(sa.Column('refused', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('fulfil_reminders') as batch:
        batch.drop_column('refused')
