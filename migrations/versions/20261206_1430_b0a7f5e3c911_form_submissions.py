"""Form submissions: a form sent twice (a double click, a browser's resend) or an API call repeated
with its Idempotency-Key is done once (filmfund/once.py)

Revision ID: b0a7f5e3c911
Revises: 5ca1e1d0c0de
Create Date: 2026-12-06 14:30:00

"""
from alembic import op
import sqlalchemy as sa

from filmfund.db import UTCDateTime

revision = 'b0a7f5e3c911'
down_revision = '5ca1e1d0c0de'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'form_submissions',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('purpose', sa.String(length=32), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('result_id', sa.BigInteger(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_form_submissions')),
    )


def downgrade():
    op.drop_table('form_submissions')
