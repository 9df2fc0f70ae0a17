"""Running totals of the ledger: one row per campaign and money mode, one per donor, one per day.

They are written in the SAME transaction as the ledger entries they sum (filmfund.rewards.ledger
is the only writer), so a page reads one row instead of summing the ledger. The UPDATE of the
campaign's row is the money lock: it serialises the money events of one campaign and mode, and
is held from that UPDATE to the booking's commit only. `filmfund ledger check` recomputes every
total from the entries and reports any difference (filmfund.rewards.ledger_check).

All amounts are BigInteger cents. `livemode` keeps test money and live money apart.
"""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from filmfund.db import dialect_insert, insert_on_conflict, utcnow
from filmfund.extensions import db

class CampaignTotal(db.Model):
    __tablename__ = "campaign_totals"

    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    livemode: Mapped[bool] = mapped_column(primary_key=True)
    gross: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    refunded: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    net: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    share_allocated: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    paid_out: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    donors: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")  # donors with net > 0
    donations: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DonorTotal(db.Model):
    __tablename__ = "donor_totals"
    __table_args__ = (
        # The dashboard's donors-per-tier count reads this index only.
        sa.Index("ix_donor_totals_campaign_livemode_net", "campaign_id", "livemode", "net"),
    )

    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    livemode: Mapped[bool] = mapped_column(primary_key=True)
    gross: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    refunded: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    net: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    donations: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    first_gift_at: Mapped[datetime | None]
    last_gift_at: Mapped[datetime | None]


class DailyTotal(db.Model):
    """Per UTC day: a gift counts on the day it was received (an offline donation may be recorded
    days later), a refund or restore on the day it was booked; `share` is the partner's share
    booked that day (its chart)."""

    __tablename__ = "daily_totals"

    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    livemode: Mapped[bool] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    net: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    gifts: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    share: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")


class CampaignDay(db.Model):
    """Per day of the campaign's own zone (its statements' days; the zone is fixed once gifts are
    recorded, rewards/campaign.py), what the partner's statements and chart read instead of the
    entries (rewards/statements.py):

    - `came_in`, `came_in_entries`: the money entries (gift, refund, restore) placed on the day the
      money came in: a gift on the day it was received, a refund or restore on the day it was
      booked (the producers' live chart), and how many;
    - `gross`, `refunded`, `money_entries`, `share`, `paid_out`: what the ledger booked that day:
      gifts, refunds less restores, how many money entries, the partner's share (allocations and
      reversals), payouts less their reversals (the partner's held-back figures and the months).
    """

    __tablename__ = "campaign_days"

    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    livemode: Mapped[bool] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    came_in: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    came_in_entries: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    gross: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    refunded: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    money_entries: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    share: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    paid_out: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")


DAY_FIGURES = ("came_in", "came_in_entries", "gross", "refunded", "money_entries", "share", "paid_out")


def zone(campaign) -> ZoneInfo:
    """The campaign's zone: its days and months are counted there."""
    return ZoneInfo(campaign.time_zone or "UTC")


def day_of(campaign, moment: datetime) -> date:
    """The campaign's day of a moment."""
    return moment.astimezone(zone(campaign)).date()


def ensure_campaign_rows(campaign_id: int) -> None:
    """Both money modes' rows exist (made at campaign load; a no-op afterwards)."""
    insert = dialect_insert(db.session.get_bind().dialect)
    stmt = insert(CampaignTotal).values([{"campaign_id": campaign_id, "livemode": mode, "updated_at": utcnow()}
                                         for mode in (False, True)])
    db.session.execute(stmt.on_conflict_do_nothing(index_elements=["campaign_id", "livemode"]))


def lock_campaign(campaign_id: int, livemode: bool) -> CampaignTotal | None:
    """Take the money lock (an UPDATE of the campaign's totals row) and return the row as it is
    now, or None if it does not exist yet."""
    row = db.session.execute(
        sa.update(CampaignTotal)
        .where(CampaignTotal.campaign_id == campaign_id, CampaignTotal.livemode == livemode)
        .values(updated_at=utcnow())
        .returning(CampaignTotal.net, CampaignTotal.share_allocated)).first()
    return row


def add_to_campaign(campaign_id: int, livemode: bool, **deltas: int) -> None:
    values = {k: getattr(CampaignTotal, k) + v for k, v in deltas.items() if v}
    if values:
        db.session.execute(sa.update(CampaignTotal).where(
            CampaignTotal.campaign_id == campaign_id, CampaignTotal.livemode == livemode).values(**values))


def add_to_donor(campaign_id: int, user_id: int, livemode: bool, *, gross: int = 0, refunded: int = 0,
                 donations: int = 0, gift_at: datetime | None = None) -> tuple[int, int]:
    """Add to the donor's row (made if need be); returns the donor's net (before, after)."""
    net = gross - refunded
    values = dict(campaign_id=campaign_id, user_id=user_id, livemode=livemode, gross=gross, refunded=refunded,
                  net=net, donations=donations, first_gift_at=gift_at, last_gift_at=gift_at)
    stmt = insert_on_conflict("donor_total_add", db.session.get_bind().dialect, _add_to_donor)
    after = int(db.session.execute(stmt, values).scalar_one())
    return after - net, after


def _add_to_donor(insert):
    """The donor's row plus the deltas; the first and last gift widen (a NULL gift time keeps them)."""
    table = DonorTotal.__table__
    stmt = insert(table).values({c: sa.bindparam(c, type_=table.c[c].type) for c in (
        "campaign_id", "user_id", "livemode", "gross", "refunded", "net", "donations", "first_gift_at",
        "last_gift_at")})
    excluded, c = stmt.excluded, table.c
    updates = {"gross": c.gross + excluded.gross, "refunded": c.refunded + excluded.refunded,
               "net": c.net + excluded.net, "donations": c.donations + excluded.donations,
               "first_gift_at": sa.func.coalesce(sa.case((c.first_gift_at < excluded.first_gift_at, c.first_gift_at),
                                                         else_=excluded.first_gift_at), c.first_gift_at),
               "last_gift_at": sa.func.coalesce(sa.case((c.last_gift_at > excluded.last_gift_at, c.last_gift_at),
                                                        else_=excluded.last_gift_at), c.last_gift_at)}
    return (stmt.on_conflict_do_update(index_elements=["campaign_id", "user_id", "livemode"], set_=updates)
            .returning(c.net))


def _day_adder(table: sa.Table, figures: tuple[str, ...]):
    """For db.insert_on_conflict: one INSERT of a day's row whose `figures`, on a row already
    there, are added to it."""
    def build(insert):
        stmt = insert(table).values({c: sa.bindparam(c, type_=table.c[c].type)
                                     for c in ("campaign_id", "livemode", "day", *figures)})
        excluded, c = stmt.excluded, table.c
        return stmt.on_conflict_do_update(index_elements=["campaign_id", "livemode", "day"],
                                          set_={k: c[k] + excluded[k] for k in figures})
    return build


_UTC_DAY_FIGURES = ("net", "gifts", "share")
_ADD_TO_DAY = _day_adder(DailyTotal.__table__, _UTC_DAY_FIGURES)
_ADD_TO_CAMPAIGN_DAY = _day_adder(CampaignDay.__table__, DAY_FIGURES)


def add_to_day(campaign_id: int, livemode: bool, day: date, *, net: int = 0, gifts: int = 0, share: int = 0) -> None:
    """Add to the UTC day (made if need be)."""
    _add_to_a_day("daily_total_add", _ADD_TO_DAY, _UTC_DAY_FIGURES, campaign_id, livemode, day,
                  {"net": net, "gifts": gifts, "share": share})


def add_to_campaign_day(campaign_id: int, livemode: bool, day: date, **deltas: int) -> None:
    """Add to the campaign's day (made if need be); `deltas` are DAY_FIGURES."""
    _add_to_a_day("campaign_day_add", _ADD_TO_CAMPAIGN_DAY, DAY_FIGURES, campaign_id, livemode, day, deltas)


def _add_to_a_day(name: str, build, figures: tuple[str, ...], campaign_id: int, livemode: bool, day: date,
                  deltas: dict[str, int]) -> None:
    """The day's row plus `deltas` (the statement compiled once); nothing when every one is zero."""
    if not any(deltas.values()):
        return
    stmt = insert_on_conflict(name, db.session.get_bind().dialect, build)
    db.session.execute(stmt, {"campaign_id": campaign_id, "livemode": livemode, "day": day,
                              **{k: deltas.get(k, 0) for k in figures}})


# ---------------------------------------------------------------- reads (one row or one aggregate)

def campaign_row(campaign_id: int, livemode: bool) -> CampaignTotal | None:
    return db.session.get(CampaignTotal, (campaign_id, livemode))


_FIGURES = sa.select(CampaignTotal.__table__.c.net, CampaignTotal.__table__.c.donors).where(
    CampaignTotal.__table__.c.campaign_id == sa.bindparam("campaign_id"),
    CampaignTotal.__table__.c.livemode == sa.bindparam("livemode"))


def campaign_figures(campaign_id: int, livemode: bool) -> tuple[int, int]:
    """(net, donors) of the campaign in that money mode, (0, 0) before its totals row exists.
    A Core read of two columns (a statement built once, no ORM identity load): the public
    campaign document reads it on every request."""
    row = db.session.connection().execute(_FIGURES, {"campaign_id": campaign_id, "livemode": livemode}).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def donor_net(campaign_id: int, user_id: int, livemode: bool) -> int:
    return int(db.session.scalar(sa.select(DonorTotal.net).where(
        DonorTotal.campaign_id == campaign_id, DonorTotal.user_id == user_id,
        DonorTotal.livemode == livemode)) or 0)


def days(campaign_id: int, livemode: bool) -> list[tuple[date, int, int, int]]:
    """(day, net, gifts, share) per day, oldest first."""
    rows = db.session.execute(
        sa.select(DailyTotal.day, DailyTotal.net, DailyTotal.gifts, DailyTotal.share)
        .where(DailyTotal.campaign_id == campaign_id, DailyTotal.livemode == livemode)
        .order_by(DailyTotal.day)).all()
    return [(d, int(n), int(g), int(s)) for d, n, g, s in rows]


def campaign_days(campaign_id: int, livemode: bool, until: date | None = None) -> list[tuple]:
    """(day, *DAY_FIGURES) per day of the campaign's zone before `until` (None: all), oldest first."""
    c = CampaignDay.__table__.c
    stmt = (sa.select(c.day, *(c[k] for k in DAY_FIGURES))
            .where(c.campaign_id == campaign_id, c.livemode == livemode).order_by(c.day))
    if until is not None:
        stmt = stmt.where(c.day < until)
    return [(row[0], *(int(v) for v in row[1:])) for row in db.session.execute(stmt)]


def booked_between(campaign_id: int, livemode: bool, since: date | None, until: date | None) -> dict[str, int]:
    """What the ledger booked on the campaign's days in [since, until) (None: unbounded): gross,
    refunded, share, paid_out. One aggregate over days, not entries."""
    c = CampaignDay.__table__.c
    keys = ("gross", "refunded", "share", "paid_out")
    stmt = sa.select(*(sa.func.coalesce(sa.func.sum(c[k]), 0) for k in keys)).where(
        c.campaign_id == campaign_id, c.livemode == livemode)
    if since is not None:
        stmt = stmt.where(c.day >= since)
    if until is not None:
        stmt = stmt.where(c.day < until)
    return dict(zip(keys, (int(v) for v in db.session.execute(stmt).one())))
