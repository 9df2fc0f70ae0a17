"""`filmfund demo seed`: bulk test-mode donations that the ledger check accepts, and a real booking after them."""
import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards import ledger_check, payments
from filmfund.rewards.campaign import campaign_summary
from filmfund.rewards.models import Donation, Entitlement, EntitlementStatus, LedgerEntry, Reward
from filmfund.rewards.totals import DonorTotal
from tests.helpers import record_offline

from . import money_model
from .conftest import session_obj


def test_seed_books_through_the_ledger_rules(campaign, runner, stripe_events, pledge):
    record_offline("real@example.org", 3333)  # money already there: the seed continues from it
    result = runner.invoke(args=["demo", "seed", "--donations", "400", "--donors", "60"])
    assert result.exit_code == 0, result.output
    assert "booked 400 test-mode donations from 60 donors" in result.output
    result = runner.invoke(args=["demo", "seed", "--donations", "150", "--donors", "90", "--seed", "7"])
    assert result.exit_code == 0, result.output
    gifts = db.session.scalars(sa.select(Donation.amount)).all()
    assert len(gifts) == 551
    net = sum(gifts)
    statement = payments.partner_statement(campaign)
    assert (statement["gross"], statement["net"]) == (net, net)
    shares = db.session.scalar(sa.select(sa.func.sum(LedgerEntry.amount)).where(LedgerEntry.entry_kind == "partner_share"))
    assert shares == statement["share_due"] == money_model.share_due(net, campaign.share_bps)
    donors = db.session.scalar(sa.select(sa.func.count(sa.distinct(Donation.user_id))))
    assert campaign_summary(campaign)["donors"] == donors
    # The donors' tiers: every reward their net reaches (tiers add up), the DVD once: signed from $100.
    top = db.session.scalars(sa.select(DonorTotal).order_by(DonorTotal.net.desc()).limit(1)).one()
    assert top.net >= 10000
    expected = {r.key for t in campaign.tiers if t.min_amount <= top.net for r in t.rewards} - {"dvd"}
    held = set(db.session.scalars(sa.select(Reward.key).join(Entitlement, Entitlement.reward_id == Reward.id).where(
        Entitlement.user_id == top.user_id, Entitlement.status != EntitlementStatus.REVOKED)))
    assert held == expected and "dvd-signed" in expected
    assert ledger_check.check_ledger() == []
    # A real payment books on top of the seeded totals, and everything still checks.
    p = pledge(5000)
    stripe_events.send("checkout.session.completed", session_obj(p.id, 5000))
    assert payments.partner_statement(campaign)["net"] == net + 5000
    assert ledger_check.check_ledger() == []
    assert runner.invoke(args=["ledger", "check"]).exit_code == 0


def test_seed_is_refused_with_a_live_key_and_bad_counts(app, campaign, runner):
    app.config.update(STRIPE_SECRET_KEY="sk_live_not_a_real_key", STRIPE_TEST_MODE=False)
    result = runner.invoke(args=["demo", "seed", "--donations", "10"])
    assert result.exit_code == 1 and "live Stripe key" in result.output
    app.config.update(STRIPE_SECRET_KEY=None, STRIPE_TEST_MODE=True)
    result = runner.invoke(args=["demo", "seed", "--donations", "10", "--donors", "11"])
    assert result.exit_code == 1 and "donors" in result.output
    assert runner.invoke(args=["demo", "seed", "--donations", "0"]).exit_code == 2
    assert db.session.scalar(sa.select(sa.func.count(Donation.id))) == 0
