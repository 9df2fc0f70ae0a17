"""task_progress: the progress of long tasks that are not footage jobs (the credits roll), by name (issue 14.3)

Revision ID: b7d41e9c2a05
Revises: 5t0c4a11m175
Create Date: 2026-12-04 00:50:00

"""
from alembic import op
import sqlalchemy as sa

import filmfund.db


revision = 'b7d41e9c2a05'
down_revision = '5t0c4a11m175'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'task_progress',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('progress', sa.Float(), nullable=False),
        sa.Column('step', sa.String(length=200), nullable=True),
        sa.Column('error', sa.String(length=1000), nullable=True),
        sa.Column('queued_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('started_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('updated_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('finished_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade():
    op.drop_table('task_progress')
