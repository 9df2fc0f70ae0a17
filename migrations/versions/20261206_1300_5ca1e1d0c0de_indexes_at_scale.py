"""Indexes at scale: a reward's held entitlements in the order they came (the producers' queue
pages), the ledger's payout entries and its entries by time (the partner's pages)

Revision ID: 5ca1e1d0c0de
Revises: caa14fa3db27
Create Date: 2026-12-06 13:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '5ca1e1d0c0de'
down_revision = 'caa14fa3db27'
branch_labels = None
depends_on = None

HELD = "status != 'revoked'"


def upgrade():
    op.create_index('ix_entitlements_held_reward_granted', 'entitlements', ['reward_id', 'granted_at', 'id'],
                    postgresql_where=sa.text(HELD), sqlite_where=sa.text(HELD))
    op.create_index('ix_ledger_entries_payout_id', 'ledger_entries', ['payout_id'])
    op.create_index('ix_ledger_entries_campaign_created', 'ledger_entries', ['campaign_id', 'created_at'])
    # its first column serves every lookup by campaign: the campaign's own index is one more to keep up
    op.drop_index('ix_ledger_entries_campaign_id', table_name='ledger_entries')


def downgrade():
    op.create_index('ix_ledger_entries_campaign_id', 'ledger_entries', ['campaign_id'])
    op.drop_index('ix_ledger_entries_campaign_created', table_name='ledger_entries')
    op.drop_index('ix_ledger_entries_payout_id', table_name='ledger_entries')
    op.drop_index('ix_entitlements_held_reward_granted', table_name='entitlements')
