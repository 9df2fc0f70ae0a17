"""updates.translations: an update in the site's other languages, as its producers wrote it

Revision ID: f2a9d3c1b6e4
Revises: b7d41e9c2a05
Create Date: 2026-12-05 23:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'f2a9d3c1b6e4'
down_revision = 'b7d41e9c2a05'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('updates') as batch:
        batch.add_column(sa.Column('translations', sa.JSON(), nullable=False, server_default='{}'))


def downgrade():
    with op.batch_alter_table('updates') as batch:
        batch.drop_column('translations')
