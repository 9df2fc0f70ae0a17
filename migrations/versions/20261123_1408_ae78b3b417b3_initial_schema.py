"""initial schema: users and tokens, campaign and ledger, footage and jobs

Revision ID: ae78b3b417b3
Revises: 
Create Date: 2026-11-23 14:08:45.778892

"""
from alembic import op
import sqlalchemy as sa
import filmfund.db


# revision identifiers, used by Alembic.
revision = 'ae78b3b417b3'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('tagline', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('goal', sa.Integer(), nullable=False),
    sa.Column('partner_name', sa.String(length=200), nullable=False),
    sa.Column('share_bps', sa.Integer(), nullable=False),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('goal > 0', name=op.f('ck_campaigns_goal_positive')),
    sa.CheckConstraint('share_bps >= 0 AND share_bps <= 10000', name=op.f('ck_campaigns_share_bps_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns')),
    sa.UniqueConstraint('slug', name=op.f('uq_campaigns_slug'))
    )
    op.create_table('media_assets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('kind', sa.Enum('video', 'image', 'audio', name='assetkind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('state', sa.Enum('uploaded', 'verifying', 'verified', 'damaged', 'transcoding', 'ready', 'failed', name='assetstate', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('recorded_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('camera', sa.String(length=200), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('fps', sa.Float(), nullable=True),
    sa.Column('interlaced', sa.Boolean(), nullable=False),
    sa.Column('probe', sa.JSON(), nullable=True),
    sa.Column('problems', sa.JSON(), nullable=False),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state_changed_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('verified_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ready_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_fixity_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('fixity_ok', sa.Boolean(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_assets')),
    sa.UniqueConstraint('public_id', name=op.f('uq_media_assets_public_id')),
    sa.UniqueConstraint('sha256', name=op.f('uq_media_assets_sha256'))
    )
    with op.batch_alter_table('media_assets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_assets_camera'), ['camera'], unique=False)
        batch_op.create_index(batch_op.f('ix_media_assets_recorded_at'), ['recorded_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_media_assets_state'), ['state'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('session_version', sa.Integer(), nullable=False),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email')),
    sa.UniqueConstraint('public_id', name=op.f('uq_users_public_id'))
    )
    op.create_table('webhook_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('charge_id', sa.String(length=255), nullable=True),
    sa.Column('received_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('processed_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.Enum('processed', 'ignored', 'unmatched', 'failed', name='webhookstatus', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_webhook_events_event_id'))
    )
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_events_charge_id'), ['charge_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_events_payment_intent_id'), ['payment_intent_id'], unique=False)

    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('login_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_login_links_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_login_links_token_hash'))
    )
    with op.batch_alter_table('login_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_links_user_id'), ['user_id'], unique=False)

    op.create_table('media_asset_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('from_state', sa.Enum('uploaded', 'verifying', 'verified', 'damaged', 'transcoding', 'ready', 'failed', name='from_state', native_enum=False, create_constraint=True, length=16), nullable=True),
    sa.Column('to_state', sa.Enum('uploaded', 'verifying', 'verified', 'damaged', 'transcoding', 'ready', 'failed', name='to_state', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=False),
    sa.Column('at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['media_assets.id'], name=op.f('fk_media_asset_events_asset_id_media_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_asset_events'))
    )
    with op.batch_alter_table('media_asset_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_asset_events_asset_id'), ['asset_id'], unique=False)

    op.create_table('media_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('verify', 'transcode', name='jobkind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'succeeded', 'failed', name='jobstatus', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('next_run_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('step', sa.String(length=100), nullable=True),
    sa.Column('argv', sa.Text(), nullable=True),
    sa.Column('stderr_tail', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('ffmpeg_version', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['asset_id'], ['media_assets.id'], name=op.f('fk_media_jobs_asset_id_media_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_jobs'))
    )
    with op.batch_alter_table('media_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_jobs_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_media_jobs_status'), ['status'], unique=False)

    op.create_table('media_publications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('reward_key', sa.String(length=64), nullable=False),
    sa.Column('rendition', sa.Enum('proxy', 'web', 'poster', 'strip', 'rescue', 'image', name='renditionkind', native_enum=False, create_constraint=True, length=16), nullable=True),
    sa.Column('published_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['asset_id'], ['media_assets.id'], name=op.f('fk_media_publications_asset_id_media_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['published_by'], ['users.id'], name=op.f('fk_media_publications_published_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_publications')),
    sa.UniqueConstraint('asset_id', 'reward_key', name='uq_media_publications_asset_reward_key')
    )
    with op.batch_alter_table('media_publications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_publications_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_media_publications_reward_key'), ['reward_key'], unique=False)

    op.create_table('media_renditions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('proxy', 'web', 'poster', 'strip', 'rescue', 'image', name='renditionkind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('storage_key', sa.String(length=300), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('profile', sa.JSON(), nullable=True),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['media_assets.id'], name=op.f('fk_media_renditions_asset_id_media_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_renditions')),
    sa.UniqueConstraint('asset_id', 'kind', name='uq_media_renditions_asset_kind')
    )
    with op.batch_alter_table('media_renditions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_renditions_asset_id'), ['asset_id'], unique=False)

    op.create_table('media_sources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('original_name', sa.String(length=500), nullable=False),
    sa.Column('original_path', sa.String(length=2000), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('storage_key', sa.String(length=300), nullable=False),
    sa.Column('start_time', sa.Float(), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('probe', sa.JSON(), nullable=True),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_fixity_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('fixity_ok', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['asset_id'], ['media_assets.id'], name=op.f('fk_media_sources_asset_id_media_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_sources')),
    sa.UniqueConstraint('asset_id', 'position', name='uq_media_sources_asset_position')
    )
    with op.batch_alter_table('media_sources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_sources_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_media_sources_sha256'), ['sha256'], unique=False)

    op.create_table('payouts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('recorded_by', sa.String(length=254), nullable=False),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payouts_amount_positive')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_payouts_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payouts'))
    )
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payouts_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('pledges',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('credit_name', sa.String(length=120), nullable=True),
    sa.Column('anonymous', sa.Boolean(), nullable=False),
    sa.Column('rewards_opt_out', sa.Boolean(), nullable=False),
    sa.Column('state', sa.Enum('pending', 'processing', 'paid', 'failed', 'expired', name='pledgestate', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('checkout_session_id', sa.String(length=255), nullable=True),
    sa.Column('checkout_url', sa.String(length=2000), nullable=True),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_pledges_amount_positive')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_pledges_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pledges')),
    sa.UniqueConstraint('checkout_session_id', name=op.f('uq_pledges_checkout_session_id')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_pledges_idempotency_key'))
    )
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pledges_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pledges_payment_intent_id'), ['payment_intent_id'], unique=False)

    op.create_table('tiers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('min_amount', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.CheckConstraint('min_amount > 0', name=op.f('ck_tiers_min_amount_positive')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_tiers_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tiers')),
    sa.UniqueConstraint('campaign_id', 'min_amount', name='uq_tiers_campaign_min_amount')
    )
    with op.batch_alter_table('tiers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tiers_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('user_roles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('donor', 'producer', 'partner', name='role', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_roles_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_roles')),
    sa.UniqueConstraint('user_id', 'role', name='uq_user_roles_user_role')
    )
    with op.batch_alter_table('user_roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_roles_user_id'), ['user_id'], unique=False)

    op.create_table('donations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('pledge_id', sa.String(length=32), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.Enum('stripe', 'offline', name='donationsource', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_refunded', sa.Integer(), nullable=False),
    sa.Column('dispute_status', sa.Enum('open', 'won', 'lost', name='disputestatus', native_enum=False, create_constraint=True, length=16), nullable=True),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('charge_id', sa.String(length=255), nullable=True),
    sa.Column('checkout_session_id', sa.String(length=255), nullable=True),
    sa.Column('credit_name', sa.String(length=120), nullable=True),
    sa.Column('anonymous', sa.Boolean(), nullable=False),
    sa.Column('rewards_opt_out', sa.Boolean(), nullable=False),
    sa.Column('flags', sa.String(length=200), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('recorded_by', sa.String(length=254), nullable=True),
    sa.Column('received_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('receipt_claimed_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('receipt_sent_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_donations_amount_positive')),
    sa.CheckConstraint('amount_refunded >= 0 AND amount_refunded <= amount', name=op.f('ck_donations_refund_within_amount')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_donations_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['pledge_id'], ['pledges.id'], name=op.f('fk_donations_pledge_id_pledges')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_donations_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_donations')),
    sa.UniqueConstraint('charge_id', name=op.f('uq_donations_charge_id')),
    sa.UniqueConstraint('payment_intent_id', name=op.f('uq_donations_payment_intent_id')),
    sa.UniqueConstraint('pledge_id', name=op.f('uq_donations_pledge_id'))
    )
    with op.batch_alter_table('donations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_donations_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_donations_user_id'), ['user_id'], unique=False)

    op.create_table('rewards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('tier_id', sa.Integer(), nullable=True),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.Enum('credit', 'digital', 'updates', 'physical', 'service', 'custom', name='rewardkind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_rewards_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tier_id'], ['tiers.id'], name=op.f('fk_rewards_tier_id_tiers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rewards')),
    sa.UniqueConstraint('campaign_id', 'key', name='uq_rewards_campaign_key')
    )
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rewards_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_rewards_tier_id'), ['tier_id'], unique=False)

    op.create_table('entitlements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('reward_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('granted', 'fulfilled', 'revoked', name='entitlementstatus', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('granted_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('fulfilled_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['reward_id'], ['rewards.id'], name=op.f('fk_entitlements_reward_id_rewards')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_entitlements_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entitlements')),
    sa.UniqueConstraint('user_id', 'reward_id', name='uq_entitlements_user_reward')
    )
    with op.batch_alter_table('entitlements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entitlements_reward_id'), ['reward_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_entitlements_user_id'), ['user_id'], unique=False)

    op.create_table('ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.String(length=32), nullable=False),
    sa.Column('event_kind', sa.Enum('donation', 'offline_donation', 'refund', 'dispute_lost', 'dispute_won', 'payout', name='eventkind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('entry_kind', sa.Enum('gift', 'refund', 'restore', 'partner_share', 'partner_share_reversal', 'payout', name='entrykind', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('donation_id', sa.Integer(), nullable=True),
    sa.Column('payout_id', sa.Integer(), nullable=True),
    sa.Column('stripe_event_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(entry_kind = 'payout') = (payout_id IS NOT NULL)", name=op.f('ck_ledger_entries_payout_link')),
    sa.CheckConstraint("(entry_kind IN ('gift', 'restore', 'partner_share', 'payout') AND amount > 0) OR (entry_kind IN ('refund', 'partner_share_reversal') AND amount < 0)", name=op.f('ck_ledger_entries_sign_by_kind')),
    sa.CheckConstraint("entry_kind = 'payout' OR entry_kind LIKE 'partner_share%' OR donation_id IS NOT NULL", name=op.f('ck_ledger_entries_money_has_donation')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_ledger_entries_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['donation_id'], ['donations.id'], name=op.f('fk_ledger_entries_donation_id_donations')),
    sa.ForeignKeyConstraint(['payout_id'], ['payouts.id'], name=op.f('fk_ledger_entries_payout_id_payouts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_donation_id'), ['donation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_group_id'), ['group_id'], unique=False)



def downgrade():
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_group_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_donation_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_campaign_id'))

    op.drop_table('ledger_entries')
    with op.batch_alter_table('entitlements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entitlements_user_id'))
        batch_op.drop_index(batch_op.f('ix_entitlements_reward_id'))

    op.drop_table('entitlements')
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rewards_tier_id'))
        batch_op.drop_index(batch_op.f('ix_rewards_campaign_id'))

    op.drop_table('rewards')
    with op.batch_alter_table('donations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_donations_user_id'))
        batch_op.drop_index(batch_op.f('ix_donations_campaign_id'))

    op.drop_table('donations')
    with op.batch_alter_table('user_roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_roles_user_id'))

    op.drop_table('user_roles')
    with op.batch_alter_table('tiers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tiers_campaign_id'))

    op.drop_table('tiers')
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pledges_payment_intent_id'))
        batch_op.drop_index(batch_op.f('ix_pledges_campaign_id'))

    op.drop_table('pledges')
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payouts_campaign_id'))

    op.drop_table('payouts')
    with op.batch_alter_table('media_sources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_sources_sha256'))
        batch_op.drop_index(batch_op.f('ix_media_sources_asset_id'))

    op.drop_table('media_sources')
    with op.batch_alter_table('media_renditions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_renditions_asset_id'))

    op.drop_table('media_renditions')
    with op.batch_alter_table('media_publications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_publications_reward_key'))
        batch_op.drop_index(batch_op.f('ix_media_publications_asset_id'))

    op.drop_table('media_publications')
    with op.batch_alter_table('media_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_jobs_status'))
        batch_op.drop_index(batch_op.f('ix_media_jobs_asset_id'))

    op.drop_table('media_jobs')
    with op.batch_alter_table('media_asset_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_asset_events_asset_id'))

    op.drop_table('media_asset_events')
    with op.batch_alter_table('login_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_links_user_id'))

    op.drop_table('login_links')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_events_payment_intent_id'))
        batch_op.drop_index(batch_op.f('ix_webhook_events_charge_id'))

    op.drop_table('webhook_events')
    op.drop_table('users')
    with op.batch_alter_table('media_assets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_assets_state'))
        batch_op.drop_index(batch_op.f('ix_media_assets_recorded_at'))
        batch_op.drop_index(batch_op.f('ix_media_assets_camera'))

    op.drop_table('media_assets')
    op.drop_table('campaigns')
