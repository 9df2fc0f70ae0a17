"""monthly gifts: subscriptions, the pledge's interval, and each paid invoice's donation (issue 13.1)

Revision ID: 3b7d9e1a5c20
Revises: 1a18e2f0c0de
Create Date: 2026-12-04 00:10:00

"""
from alembic import op
import sqlalchemy as sa
import filmfund.db


revision = '3b7d9e1a5c20'
down_revision = '1a18e2f0c0de'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'subscriptions',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('pledge_id', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('stripe_subscription_id', sa.String(length=255), nullable=False),
        sa.Column('stripe_customer_id', sa.String(length=255), nullable=True),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('interval', sa.String(length=8), nullable=False),
        sa.Column('state', sa.Enum('active', 'past_due', 'canceled', name='subscriptionstate',
                                   native_enum=False, length=16, create_constraint=True), nullable=False),
        sa.Column('state_at', sa.BigInteger(), nullable=False),
        sa.Column('livemode', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('started_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('next_payment_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('canceled_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint('amount > 0', name=op.f('ck_subscriptions_amount_positive')),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_subscriptions_campaign_id_campaigns')),
        sa.ForeignKeyConstraint(['pledge_id'], ['pledges.id'], name=op.f('fk_subscriptions_pledge_id_pledges')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_subscriptions_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_subscriptions')),
        sa.UniqueConstraint('pledge_id', name=op.f('uq_subscriptions_pledge_id')),
        sa.UniqueConstraint('stripe_subscription_id', name=op.f('uq_subscriptions_stripe_subscription_id')),
    )
    op.create_index(op.f('ix_subscriptions_campaign_id'), 'subscriptions', ['campaign_id'])
    op.create_index(op.f('ix_subscriptions_user_id'), 'subscriptions', ['user_id'])
    with op.batch_alter_table('pledges') as batch:
        batch.add_column(sa.Column('interval', sa.String(length=8), nullable=True))
    with op.batch_alter_table('donations') as batch:
        batch.add_column(sa.Column('subscription_id', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('invoice_id', sa.String(length=255), nullable=True))
        batch.create_foreign_key(op.f('fk_donations_subscription_id_subscriptions'), 'subscriptions',
                                 ['subscription_id'], ['id'])
        batch.create_unique_constraint(op.f('uq_donations_invoice_id'), ['invoice_id'])
        batch.create_index(op.f('ix_donations_subscription_id'), ['subscription_id'])


def downgrade():
    with op.batch_alter_table('donations') as batch:
        batch.drop_index(op.f('ix_donations_subscription_id'))
        batch.drop_constraint(op.f('uq_donations_invoice_id'), type_='unique')
        batch.drop_constraint(op.f('fk_donations_subscription_id_subscriptions'), type_='foreignkey')
        batch.drop_column('invoice_id')
        batch.drop_column('subscription_id')
    with op.batch_alter_table('pledges') as batch:
        batch.drop_column('interval')
    op.drop_index(op.f('ix_subscriptions_user_id'), table_name='subscriptions')
    op.drop_index(op.f('ix_subscriptions_campaign_id'), table_name='subscriptions')
    op.drop_table('subscriptions')
