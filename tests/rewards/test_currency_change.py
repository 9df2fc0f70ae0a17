"""The campaign's currency while checkouts are open: a Checkout is paid in the currency its pledge
asked for, so the change is refused while a pledge's checkout may still be paid (a clear message),
and a payment is booked against what its pledge promised. A paid Checkout is never lost."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from filmfund.config import BUNDLED_CAMPAIGN
from filmfund.db import utcnow
from filmfund.errors import ValidationError
from filmfund.extensions import db
from filmfund.rewards import ledger_check
from filmfund.rewards.campaign import load_campaign
from filmfund.rewards.models import Campaign, Donation, Pledge, WebhookEvent
from filmfund.rewards.webhooks import book_pending
from tests.helpers import make_pledge

from .conftest import session_obj


@pytest.fixture
def in_eur(tmp_path):
    changed = tmp_path / "eur.toml"
    changed.write_text(BUNDLED_CAMPAIGN.read_text().replace('currency = "usd"', 'currency = "eur"'))
    return changed


def _donations() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Donation))


def test_the_currency_cannot_change_while_a_checkout_may_still_be_paid_and_its_payment_is_booked(
        stripe_events, campaign, in_eur):
    p = make_pledge(5000, email="open@example.org")
    with pytest.raises(ValidationError) as refused:
        load_campaign(in_eur)
    db.session.rollback()
    assert refused.value.code == "checkouts_open"
    assert "USD" in refused.value.message and "(1 now)" in refused.value.message
    assert db.session.scalar(sa.select(Campaign.currency)) == "usd"
    assert stripe_events.send("checkout.session.completed", session_obj(
        p.id, 5000, session_id=p.checkout_session_id, email=p.email, currency="usd")) == "processed"
    assert _donations() == 1
    assert db.session.get(Pledge, p.id).state.value == "paid"
    assert ledger_check.check_ledger() == []


def test_the_cli_says_why(runner, campaign, in_eur):
    make_pledge(5000, email="open-cli@example.org")
    result = runner.invoke(args=["campaign", "load", str(in_eur)])
    assert result.exit_code != 0 and "checkouts opened in USD may still be paid" in result.output


@pytest.mark.parametrize("how", ["expired", "failed", "a day old", "same currency"])
def test_the_change_is_allowed_once_no_checkout_can_be_paid_in_the_old_currency(stripe_events, campaign, in_eur,
                                                                               how):
    p = make_pledge(5000, email="closed@example.org")
    if how in ("expired", "failed"):
        event = "checkout.session.expired" if how == "expired" else "checkout.session.async_payment_failed"
        stripe_events.send(event, session_obj(p.id, 5000, session_id=p.checkout_session_id,
                                              payment_status="unpaid"))
    elif how == "a day old":
        db.session.execute(sa.update(Pledge).values(updated_at=utcnow() - timedelta(hours=25, minutes=1)))
    else:
        db.session.execute(sa.update(Pledge).values(currency="eur"))
    db.session.commit()
    assert load_campaign(in_eur).currency == "eur"
    db.session.commit()


def test_a_payment_under_way_blocks_the_change_however_old(stripe_events, campaign, in_eur):
    p = make_pledge(5000, email="bank-debit@example.org")
    stripe_events.send("checkout.session.completed", session_obj(p.id, 5000, session_id=p.checkout_session_id,
                                                                  payment_status="unpaid"))
    db.session.execute(sa.update(Pledge).values(updated_at=utcnow() - timedelta(days=5)))
    db.session.commit()
    assert db.session.get(Pledge, p.id).state.value == "processing"
    with pytest.raises(ValidationError):
        load_campaign(in_eur)
    db.session.rollback()


def test_a_payment_of_a_pledge_older_than_the_change_waits_and_is_booked_once_the_currency_is_back(
        stripe_events, campaign, in_eur):
    """Only a stale pledge (a local test checkout kept for days) can get here: its money waits, never lost."""
    p = make_pledge(5000, email="stale@example.org")
    db.session.execute(sa.update(Pledge).values(updated_at=utcnow() - timedelta(days=2)))
    db.session.commit()
    load_campaign(in_eur)
    db.session.commit()
    paid = session_obj(p.id, 5000, session_id=p.checkout_session_id, email=p.email, currency="usd")
    assert stripe_events.send("checkout.session.completed", paid) == "received"  # waiting, in the inbox
    error = db.session.scalar(sa.select(WebhookEvent.error))
    assert "CampaignCurrencyChanged" in error and _donations() == 0
    load_campaign(BUNDLED_CAMPAIGN)  # back in usd
    db.session.commit()
    assert book_pending() == 1 and _donations() == 1
    assert ledger_check.check_ledger() == []


def test_a_payment_in_another_currency_than_its_pledge_asked_is_kept_failed(stripe_events, campaign):
    p = make_pledge(5000, email="odd@example.org")
    assert stripe_events.send("checkout.session.completed", session_obj(
        p.id, 5000, session_id=p.checkout_session_id, email=p.email, currency="eur")) == "failed"
    assert "the pledge asked for usd" in db.session.scalar(sa.select(WebhookEvent.error))
    assert _donations() == 0


def test_the_currency_is_fixed_once_an_expense_is_recorded(campaign, in_eur, producer):
    """Each expense keeps the currency it was spent in, and the public page adds them up in the
    campaign's: $500 spent would show as 500 euros. Refused, as it is once a gift is recorded (no gift
    here), with a message that says why."""
    from filmfund.books import expenses

    expenses.record_expense(campaign, budget_line="hotels", amount=50000, spent_on=date(2026, 11, 20),
                            description="Hotel", user=producer)
    db.session.commit()
    with pytest.raises(ValidationError, match="currency: cannot change once expenses are recorded"):
        load_campaign(in_eur)
    db.session.rollback()
    assert db.session.scalar(sa.select(Campaign.currency)) == "usd"
