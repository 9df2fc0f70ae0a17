"""The ledger's money per day of the campaign's own zone (campaign_days), kept as it books, so the
partner's statements, months and chart read days instead of summing every entry; computed here
from the entries of an existing ledger (`filmfund ledger check` verifies the result)

Per day: the money entries placed where the money came in (a gift on the day its donation was
received, a refund or restore on the day it was booked) and how many; what was booked that day
(gifts, refunds less restores, money entries, the partner's share, payouts less reversals).

Revision ID: c4d9e2a7b613
Revises: a7d2c4e6f813
Create Date: 2026-12-06 22:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = 'c4d9e2a7b613'
down_revision = 'a7d2c4e6f813'
branch_labels = None
depends_on = None

FIGURES = ('came_in', 'came_in_entries', 'gross', 'refunded', 'money_entries', 'share', 'paid_out')
MONEY = "('gift', 'refund', 'restore')"
BACK = "('refund', 'restore')"
PAID = "('payout', 'payout_reversal')"


def upgrade():
    op.create_table('campaign_days',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    *(sa.Column(name, sa.BigInteger(), server_default='0', nullable=False) for name in FIGURES),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_days_campaign_id_campaigns'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'livemode', 'day', name=op.f('pk_campaign_days'))
    )
    if op.get_bind().dialect.name == 'postgresql':
        _backfill_postgresql()
    else:
        _backfill_sqlite()


# Each entry's figures on the day it lands: (moment, came_in, came_in_entries, gross, refunded,
# money_entries, share, paid_out); a money entry lands twice (where it came in, where it was booked).
_PARTS = f"""
    SELECT e.campaign_id, e.livemode, CASE WHEN e.entry_kind = 'gift' THEN d.received_at ELSE e.created_at END AS at,
           e.amount AS came_in, 1 AS came_in_entries, 0 AS gross, 0 AS refunded, 0 AS money_entries, 0 AS share,
           0 AS paid_out
      FROM ledger_entries e JOIN donations d ON d.id = e.donation_id WHERE e.entry_kind IN {MONEY}
    UNION ALL
    SELECT e.campaign_id, e.livemode, e.created_at, 0, 0,
           CASE WHEN e.entry_kind = 'gift' THEN e.amount ELSE 0 END,
           CASE WHEN e.entry_kind IN {BACK} THEN -e.amount ELSE 0 END,
           CASE WHEN e.entry_kind IN {MONEY} THEN 1 ELSE 0 END,
           CASE WHEN e.entry_kind LIKE 'partner_share%' THEN e.amount ELSE 0 END,
           CASE WHEN e.entry_kind IN {PAID} THEN e.amount ELSE 0 END
      FROM ledger_entries e
"""


def _backfill_postgresql():
    sums = ', '.join(f'SUM({f})' for f in FIGURES)
    op.execute(
        f"INSERT INTO campaign_days (campaign_id, livemode, day, {', '.join(FIGURES)})"
        f" SELECT p.campaign_id, p.livemode, CAST(timezone(COALESCE(c.time_zone, 'UTC'), p.at) AS DATE), {sums}"
        f" FROM ({_PARTS}) p JOIN campaigns c ON c.id = p.campaign_id"
        " GROUP BY p.campaign_id, p.livemode, CAST(timezone(COALESCE(c.time_zone, 'UTC'), p.at) AS DATE)")


def _backfill_sqlite():
    """No zone data in SQLite: summed per UTC minute there, each minute put on its day here."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    bind = op.get_bind()
    zones = {cid: ZoneInfo(tz or 'UTC') for cid, tz in bind.execute(sa.text('SELECT id, time_zone FROM campaigns'))}
    sums = ', '.join(f'SUM({f})' for f in FIGURES)
    days: dict = {}
    for cid, mode, minute, *figures in bind.execute(sa.text(
            f"SELECT campaign_id, livemode, strftime('%Y-%m-%d %H:%M', at), {sums} FROM ({_PARTS})"
            " GROUP BY campaign_id, livemode, strftime('%Y-%m-%d %H:%M', at)")):
        moment = datetime.strptime(minute, '%Y-%m-%d %H:%M').replace(tzinfo=timezone.utc)
        row = days.setdefault((cid, bool(mode), moment.astimezone(zones[cid]).date()), [0] * len(FIGURES))
        for i, value in enumerate(figures):
            row[i] += int(value or 0)
    names = ', '.join(FIGURES)
    marks = ', '.join(f':{f}' for f in FIGURES)
    for (cid, mode, day), figures in days.items():
        bind.execute(sa.text(f"INSERT INTO campaign_days (campaign_id, livemode, day, {names})"
                             f" VALUES (:c, :m, :d, {marks})"),
                     {'c': cid, 'm': mode, 'd': day, **dict(zip(FIGURES, figures))})


def downgrade():
    op.drop_table('campaign_days')
