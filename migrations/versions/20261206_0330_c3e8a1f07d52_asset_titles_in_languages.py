"""media_assets.translations: a clip's or still's title in the site's other languages

Revision ID: c3e8a1f07d52
Revises: f2a9d3c1b6e4
Create Date: 2026-12-06 03:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c3e8a1f07d52'
down_revision = 'f2a9d3c1b6e4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('media_assets') as batch:
        batch.add_column(sa.Column('translations', sa.JSON(), nullable=False, server_default='{}'))


def downgrade():
    with op.batch_alter_table('media_assets') as batch:
        batch.drop_column('translations')
