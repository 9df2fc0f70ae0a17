"""donor profiles and settings requests: a donor's settings are the donor's (issue 7.1)

Existing donors get a profile from their history: the first gift's choices (the first credit
name given, the first gift's rewards opt-out), and anonymous if they ever asked for anonymity
(nobody who asked once is made public by this change).

Revision ID: 6a9e4d3199c5
Revises: d4b2e3f6a7c8
Create Date: 2026-12-01 04:47:03.040604

"""
from alembic import op
import sqlalchemy as sa
import filmfund.db


# revision identifiers, used by Alembic.
revision = '6a9e4d3199c5'
down_revision = 'd4b2e3f6a7c8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('donor_profiles',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('credit_name', sa.String(length=120), nullable=True),
    sa.Column('anonymous', sa.Boolean(), nullable=False),
    sa.Column('rewards_opt_out', sa.Boolean(), nullable=False),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('erased_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_donor_profiles_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_donor_profiles'))
    )
    op.create_table('donor_settings_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('donation_id', sa.Integer(), nullable=True),
    sa.Column('changes', sa.Text(), nullable=False),
    sa.Column('state', sa.Enum('pending', 'confirmed', 'superseded', name='settingsrequeststate', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('created_at', filmfund.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', filmfund.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['donation_id'], ['donations.id'], name=op.f('fk_donor_settings_requests_donation_id_donations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_donor_settings_requests_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_donor_settings_requests'))
    )
    with op.batch_alter_table('donor_settings_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_donor_settings_requests_donation_id'), ['donation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_donor_settings_requests_user_id'), ['user_id'], unique=False)
    _backfill_profiles()


def _backfill_profiles():
    """One profile per existing donor, from their donations in the order received."""
    conn = op.get_bind()
    donations = sa.table("donations", sa.column("id"), sa.column("user_id"), sa.column("credit_name"),
                         sa.column("anonymous", sa.Boolean), sa.column("rewards_opt_out", sa.Boolean),
                         sa.column("received_at", filmfund.db.UTCDateTime(timezone=True)))
    profiles = sa.table("donor_profiles", sa.column("user_id"), sa.column("credit_name"),
                        sa.column("anonymous", sa.Boolean), sa.column("rewards_opt_out", sa.Boolean),
                        sa.column("created_at", filmfund.db.UTCDateTime(timezone=True)),
                        sa.column("updated_at", filmfund.db.UTCDateTime(timezone=True)))
    rows: dict[int, dict] = {}
    for d in conn.execute(sa.select(donations).order_by(donations.c.received_at, donations.c.id)):
        row = rows.setdefault(d.user_id, {"user_id": d.user_id, "credit_name": None, "anonymous": False,
                                          "rewards_opt_out": bool(d.rewards_opt_out),
                                          "created_at": d.received_at, "updated_at": d.received_at})
        row["credit_name"] = row["credit_name"] or d.credit_name
        row["anonymous"] = row["anonymous"] or bool(d.anonymous)
    if rows:
        conn.execute(profiles.insert(), list(rows.values()))



def downgrade():
    with op.batch_alter_table('donor_settings_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_donor_settings_requests_user_id'))
        batch_op.drop_index(batch_op.f('ix_donor_settings_requests_donation_id'))

    op.drop_table('donor_settings_requests')
    op.drop_table('donor_profiles')
