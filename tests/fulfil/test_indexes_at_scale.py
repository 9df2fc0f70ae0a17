"""The producers' queue pages and the partner's pages are served by indexes (PostgreSQL's plans,
seq scans disabled so that a small table still shows which index can serve), and the dashboard's
monthly givers cost a fixed few statements however many there are."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.fulfil import statement
from filmfund.rewards import statements as partner_statements
from tests.fulfil.test_items_at_scale import statements as counting
from tests.helpers import make_pledge
from tests.site.helpers import pay


def _plan(stmt) -> str:
    compiled = stmt.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
    for knob in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):  # a plan without them if one exists
        db.session.execute(sa.text(f"SET LOCAL {knob} = off"))
    return "\n".join(r[0] for r in db.session.execute(sa.text(f"EXPLAIN {compiled}")))


@pytest.fixture
def pg_only():
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's plans")


def test_a_rewards_page_of_holders_reads_its_index_in_order(campaign, pg_only):
    for n in range(3):
        pay(5000, f"d{n}@example.org")
    seen: list[str] = []
    with counting() as seen:
        statement.queue_page(campaign, "dvd", None, size=10)
    page_sql = next(s for s in seen if "ORDER BY entitlements.granted_at, entitlements.id" in s)
    # The statement as sent (its parameters bound again by SQLAlchemy, as the driver does).
    from filmfund.rewards.models import Reward
    dvd = db.session.scalar(sa.select(Reward).where(Reward.key == "dvd"))
    stmt = (statement._queue_from(campaign).with_only_columns(*statement._queue_from(campaign).selected_columns)
            .where(statement.Entitlement.reward_id == dvd.id)
            .order_by(statement.Entitlement.granted_at, statement.Entitlement.id).limit(11))
    plan = _plan(stmt)
    assert "ix_entitlements_held_reward_granted" in plan, plan
    assert "Sort" not in plan, plan
    assert "entitlements.status <> 'revoked'" in page_sql or "entitlements.status != 'revoked'" in page_sql, page_sql


def test_the_partners_pages_find_a_payout_and_a_month_by_index(campaign, pg_only):
    from filmfund.rewards.models import LedgerEntry, Payout

    plan = _plan(sa.select(Payout.id).join(LedgerEntry, LedgerEntry.payout_id == Payout.id)
                 .where(Payout.id == 1))
    assert "ix_ledger_entries_payout_id" in plan, plan
    plan = _plan(sa.select(sa.func.min(LedgerEntry.created_at)).where(LedgerEntry.campaign_id == campaign.id))
    assert "ix_ledger_entries_campaign_created" in plan, plan


def test_the_held_back_timeline_joins_no_donation(campaign):
    pay(5000, "d@example.org")
    with counting() as seen:
        partner_statements.timeline(campaign, partner_statements.partner_cutoff(campaign))
    assert not [s for s in seen if "JOIN donations" in s], seen


def _monthly_giver(i: int):
    from filmfund.rewards.webhooks import complete_test_checkout

    pledge = make_pledge(amount=500 + i, email=f"monthly-{i:03d}@example.org", interval="month")
    complete_test_checkout(pledge.id, "paid")
    db.session.commit()


def test_the_dashboards_monthly_givers_cost_a_fixed_few_statements(client, campaign, login_as, producer):
    for i in range(2):
        _monthly_giver(i)
    login_as(client, producer)
    client.get("/admin/")
    with counting() as few:
        client.get("/admin/")
    for i in range(2, 12):
        _monthly_giver(i)
    with counting() as many:
        page = client.get("/admin/").get_data(as_text=True)
    assert len(many) - len(few) <= 1, (len(few), len(many))
    assert "<strong>12</strong> giving every month" in page and "monthly-011@example.org" in page
