"""donations list and refunds: keyset indexes for the producers' list, name search, refund requests (issue 14.1)

Revision ID: d0a7e1f5c0de
Revises: c4p710e5a1b2
Create Date: 2026-12-04 00:00:00

"""
from alembic import op
import sqlalchemy as sa

from filmfund.db import UTCDateTime


revision = 'd0a7e1f5c0de'
down_revision = 'c4p710e5a1b2'
branch_labels = None
depends_on = None

TOUCHED = "amount_refunded > 0 OR dispute_status IS NOT NULL"


def upgrade():
    op.create_index('ix_donations_campaign_livemode_source_received', 'donations',
                    ['campaign_id', 'livemode', 'source', 'received_at', 'id'])
    op.create_index('ix_donations_campaign_livemode_touched_received', 'donations',
                    ['campaign_id', 'livemode', 'received_at', 'id'],
                    postgresql_where=sa.text(TOUCHED), sqlite_where=sa.text(TOUCHED))
    op.create_index('ix_donations_user_received', 'donations', ['user_id', 'received_at', 'id'])
    op.create_index('ix_donor_profiles_credit_name_lower', 'donor_profiles', [sa.text('lower(credit_name)')])
    op.create_table(
        'refund_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('donation_id', sa.Integer(), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('state', sa.Enum('pending', 'succeeded', 'failed', name='refundstate', native_enum=False,
                                   length=16, create_constraint=True), nullable=False),
        sa.Column('client_key', sa.String(length=128), nullable=True),
        sa.Column('stripe_refund_id', sa.String(length=255), nullable=True),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.Column('requested_by', sa.Integer(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('decided_at', UTCDateTime(), nullable=True),
        sa.CheckConstraint('amount > 0', name=op.f('ck_refund_requests_amount_positive')),
        sa.ForeignKeyConstraint(['donation_id'], ['donations.id'],
                                name=op.f('fk_refund_requests_donation_id_donations')),
        sa.ForeignKeyConstraint(['requested_by'], ['users.id'], ondelete='SET NULL',
                                name=op.f('fk_refund_requests_requested_by_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_requests')),
        sa.UniqueConstraint('client_key', name=op.f('uq_refund_requests_client_key')),
    )
    op.create_index(op.f('ix_refund_requests_donation_id'), 'refund_requests', ['donation_id'])


def downgrade():
    op.drop_index(op.f('ix_refund_requests_donation_id'), table_name='refund_requests')
    op.drop_table('refund_requests')
    op.drop_index('ix_donor_profiles_credit_name_lower', table_name='donor_profiles')
    op.drop_index('ix_donations_user_received', table_name='donations')
    op.drop_index('ix_donations_campaign_livemode_touched_received', table_name='donations')
    op.drop_index('ix_donations_campaign_livemode_source_received', table_name='donations')
