"""Reward items at scale: made with their entitlements (the booking), never by a page view, and
the catch-up for older data in batches whose INSERT never reads the table it fills (a vacuumed
empty `fulfilment_items` made the planner rescan it per row: quadratic)."""
from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.fulfil import fulfilment, tasks
from filmfund.fulfil.models import FulfilmentItem
from filmfund.rewards import demo
from filmfund.rewards.models import Entitlement, EntitlementStatus, Reward, RewardKind
from tests.site.helpers import pay


@contextmanager
def statements():
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)


def _count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _physical_held() -> int:
    return _count(Entitlement.__table__.join(Reward.__table__, Reward.id == Entitlement.reward_id),
                  Reward.kind == RewardKind.PHYSICAL, Entitlement.status != EntitlementStatus.REVOKED)


def test_a_booking_makes_its_items_in_its_own_transaction(campaign):
    pay(100000, "big@example.org", credit_name="Big Giver")  # the signed DVD (the DVD, signed) and the letter
    assert _count(FulfilmentItem) == _physical_held() == 2
    pay(100, "small@example.org")  # below the physical tiers: no item
    assert _count(FulfilmentItem) == 2


def test_the_dashboard_writes_no_items(campaign, client, login_as, producer):
    demo.seed(300, 100, seed_value=7)  # entitlements written by SQL: no item until the catch-up
    db.session.commit()
    login_as(client, producer)
    client.get("/admin/")
    with statements() as seen:
        assert client.get("/admin/").status_code == 200
    assert not [s for s in seen if s.startswith("INSERT INTO fulfilment_items")], seen
    assert _count(FulfilmentItem) == 0
    assert tasks.catch_up_items(campaign) == _physical_held() > 0
    assert tasks.catch_up_items(campaign) == 0


def test_the_catch_up_never_reads_the_table_its_insert_fills(campaign):
    demo.seed(1500, 500, seed_value=11)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":  # a DBA's `vacuumdb -z`: the empty table's stats say 0 rows
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE fulfilment_items"))
    with statements() as seen:
        made = fulfilment.sync_items(campaign, batch=100)
    db.session.commit()
    assert made == _physical_held() == _count(FulfilmentItem) > 100
    inserts = [s for s in seen if s.startswith("INSERT INTO fulfilment_items")]
    assert len(inserts) > 1, "a statement per batch"
    for s in inserts:
        assert "fulfilment_items" not in s.split("SELECT", 1)[1], s
    assert fulfilment.sync_items(campaign) == 0
