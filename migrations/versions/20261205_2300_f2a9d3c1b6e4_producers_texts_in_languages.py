"""updates.translations, experiences.translations: the producers' texts in the site's other languages

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
    for table in ('updates', 'experiences'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('translations', sa.JSON(), nullable=False, server_default='{}'))


def downgrade():
    for table in ('experiences', 'updates'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('translations')
