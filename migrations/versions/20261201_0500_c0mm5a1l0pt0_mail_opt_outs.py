"""mail preferences: mail_opt_outs (one row per donor and topic they stopped)

Revision ID: c0mm5a1l0pt0
Revises: ae78b3b417b3
Create Date: 2026-12-01 05:00:00

"""
from alembic import op
import sqlalchemy as sa
import filmfund.db


revision = 'c0mm5a1l0pt0'
down_revision = 'ae78b3b417b3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('mail_opt_outs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_mail_opt_outs_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_opt_outs')),
    sa.UniqueConstraint('user_id', 'topic', name='uq_mail_opt_outs_user_topic')
    )
    with op.batch_alter_table('mail_opt_outs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_opt_outs_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('mail_opt_outs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_opt_outs_user_id'))
    op.drop_table('mail_opt_outs')
