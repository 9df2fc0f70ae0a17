"""The producers' credits and rewards pages at a million donations read a page, not every row:
the roll's font check reads only the names beyond ASCII, the credits list and a reward's page of
holders ask no subquery per donor (PostgreSQL's plan of the statement as sent), nor does the list of
parcels sent to a donor refunded since, and the dashboard counts the hand-delivered rewards alone. Measured at 1M: README, "The producers' pages at a million
donations"."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from filmfund.auth.services import find_user
from filmfund.extensions import db
from filmfund.fulfil import credits, fulfilment, statement
from filmfund.fulfil import roll as roll_video
from filmfund.fulfil.models import FulfilmentItem
from filmfund.rewards.models import Reward
from tests.fulfil.test_addresses import ADDRESS
from tests.helpers import make_pledge, record_offline
from tests.rewards.conftest import charge_obj, session_obj
from tests.site.helpers import pay


@contextmanager
def sent():
    seen: list[tuple[str, object]] = []

    def note(_conn, _cursor, stmt, params, *_a) -> None:
        seen.append((stmt, params))

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)


def _plan(stmt: str, params) -> str:
    conn = db.session.connection()
    return "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + stmt, params))


@pytest.fixture
def pg_only():
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's plans")


def test_the_credits_pages_font_check_reads_only_the_names_beyond_ascii(campaign, client, login_as, producer,
                                                                        monkeypatch):
    for i in range(12):
        record_offline(f"plain{i}@example.org", 2500, credit_name=f"Plain Name {i:02d}")
    for i, name in enumerate(["Zoë Ångström", "李小龙", "Émile"]):
        record_offline(f"wide{i}@example.org", 2500, credit_name=name)
    db.session.commit()
    read: list[str] = []
    real = roll_video.undrawable

    def spy(names):
        names = list(names)
        read.extend(names)
        return real(names)

    monkeypatch.setattr(roll_video, "undrawable", spy)
    login_as(client, producer)
    assert client.get("/admin/credits").status_code == 200
    assert read == [line.name for line in credits.live_lines(campaign) if not line.name.isascii()], read


def test_the_credits_list_asks_no_subquery_per_donor(campaign, pg_only):
    for i in range(3):
        record_offline(f"d{i}@example.org", 2500 + i * 50000, credit_name=f"Donor {i}")
    db.session.commit()
    with sent() as seen:
        page = credits.live_page(campaign, limit=2)
    assert len(page["lines"]) == 2
    stmt, params = next(s for s in seen if "ORDER BY" in s[0] and "credit_proofs" in s[0])
    plan = _plan(stmt, params)
    assert "SubPlan" not in plan, plan


def test_a_queue_page_reads_each_rows_address_by_its_key(campaign, pg_only):
    for n in range(3):
        pay(5000, f"q{n}@example.org")
    with sent() as seen:
        statement.queue_page(campaign, "dvd", None, size=2)
    stmt, params = next(s for s in seen if "ORDER BY entitlements.granted_at" in s[0])
    plan = _plan(stmt, params)
    assert "SubPlan" not in plan, plan


def test_the_dashboard_counts_the_hand_delivered_rewards_alone(campaign):
    from filmfund.admin.services import HAND_DELIVERED

    pay(10000, "a@example.org")
    pay(50000, "b@example.org")
    every = {q.reward.key: q.counts for q in statement.queues(campaign)}
    some = statement.queues(campaign, kinds=HAND_DELIVERED)
    assert {q.reward.kind for q in some} <= set(HAND_DELIVERED) and some
    assert {q.reward.key: q.counts for q in some} == {k: c for k, c in every.items()
                                                       if any(q.reward.key == k for q in some)}
    assert {q.reward.key for q in some} == {q.reward.key for q in statement.queues(campaign)
                                            if q.reward.kind in HAND_DELIVERED}


def test_the_parcels_of_refunded_donors_are_found_without_a_net_per_parcel(campaign, stripe_events, pg_only):
    """`/admin/rewards` lists the parcels sent to donors refunded since: asked of every shipped item,
    the donor's net was a subquery per parcel (2.5 to 4.4 s at a million, with none to show)."""
    paid = []
    for n in range(3):
        email = f"p{n}@example.org"
        paid.append(make_pledge(amount=5000, email=email))
        stripe_events.send("checkout.session.completed", session_obj(paid[-1].id, 5000, email=email))
        fulfilment.save_address(find_user(email), ADDRESS, source="account")
    dvd = db.session.scalar(sa.select(Reward.id).where(Reward.key == "dvd"))
    fulfilment.mark_available(dvd)
    db.session.commit()
    items = db.session.scalars(sa.select(FulfilmentItem).where(FulfilmentItem.reward_id == dvd)).all()
    for item in items:
        fulfilment.move_item(item.id, "in_production")
        fulfilment.move_item(item.id, "shipped", tracking=f"T{item.id}")
    db.session.commit()
    stripe_events.send("charge.refunded", charge_obj(f"pi_{paid[1].id}", 5000, 5000))
    with sent() as seen:
        flagged = fulfilment.refunded_after_shipping(campaign)
    assert len(items) == 3 and [f["email"] for f in flagged] == ["p1@example.org"]
    stmt, params = next(s for s in seen if "fulfilment_items" in s[0] and "ORDER BY" in s[0])
    plan = _plan(stmt, params)
    assert "SubPlan" not in plan, plan
