"""staff accounts: TOTP second factor, expiring API tokens, password-reset links

Revision ID: 5ta7f2fa0001
Revises: 11628f6bd64a
Create Date: 2026-12-01 05:30:00

"""
from datetime import timedelta

from alembic import op
import sqlalchemy as sa
import filmfund.db


# revision identifiers, used by Alembic.
revision = '5ta7f2fa0001'
down_revision = '11628f6bd64a'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('totp_confirmed_at', filmfund.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', filmfund.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('login_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=16), server_default='sign_in', nullable=False))

    # Tokens made before expiry existed live 90 days from their creation (the default lifetime).
    tokens = sa.table('api_tokens', sa.column('id', sa.Integer()),
                      sa.column('created_at', filmfund.db.UTCDateTime(timezone=True)),
                      sa.column('expires_at', filmfund.db.UTCDateTime(timezone=True)))
    bind = op.get_bind()
    for token_id, created_at in bind.execute(sa.select(tokens.c.id, tokens.c.created_at)).all():
        bind.execute(tokens.update().where(tokens.c.id == token_id)
                     .values(expires_at=created_at + timedelta(days=90)))


def downgrade():
    with op.batch_alter_table('login_links', schema=None) as batch_op:
        batch_op.drop_column('purpose')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_confirmed_at')
        batch_op.drop_column('totp_secret')
