"""languages: the donor's and the pledge's language, the campaign's texts in every language (issue 12.1)

Revision ID: 1a18e2f0c0de
Revises: 5eb1c4a1d17e
Create Date: 2026-12-03 20:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '1a18e2f0c0de'
down_revision = '5eb1c4a1d17e'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('donor_profiles') as batch:
        batch.add_column(sa.Column('language', sa.String(length=16), nullable=True))
    with op.batch_alter_table('pledges') as batch:
        batch.add_column(sa.Column('language', sa.String(length=16), nullable=True))
    with op.batch_alter_table('campaigns') as batch:
        # Existing campaigns have their texts in one language only until the file is loaded again.
        batch.add_column(sa.Column('translations', sa.JSON(), nullable=False, server_default='{}'))


def downgrade():
    with op.batch_alter_table('campaigns') as batch:
        batch.drop_column('translations')
    with op.batch_alter_table('pledges') as batch:
        batch.drop_column('language')
    with op.batch_alter_table('donor_profiles') as batch:
        batch.drop_column('language')
