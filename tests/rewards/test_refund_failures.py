"""A refund that fails after Stripe made it (a closed card, Alipay refusing it): Stripe says so of
that refund (`refund.failed`, `refund.updated` / `charge.refund.updated` with status failed or
canceled), the charge's amount_refunded goes back down, and the money is back in the balance. The
books take it back as a group of its own (`refund_failed`: a restore entry and the partner's share
again), the donor's net and tier follow, a producer's request for it is marked failed, and any
order of the events gives the same books. Against tests/rewards/money_model.py, which knows which
refunds each of the charge's reports holds (the implementation sees only totals and times)."""
from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from filmfund.auth.services import find_user
from filmfund.extensions import db
from filmfund.rewards import entitlements, ledger, ledger_check, rules, webhooks
from filmfund.rewards.models import Donation, LedgerEntry, RefundRequest, WebhookEvent, WebhookStatus
from filmfund.rewards.payments import partner_statement
from tests.helpers import make_pledge

from . import money_model
from .conftest import charge_obj, make_event, session_obj

T = 1_800_000_000  # Stripe's event times in these stories (unix seconds)


def refund_obj(pi: str, refund_id: str, amount: int, status: str, created: int | None = None, **extra) -> dict:
    """A Refund as Stripe writes it (stripe/fixtures3.json's shape)."""
    obj = {"id": refund_id, "object": "refund", "amount": amount, "charge": f"ch_{pi}", "currency": "usd",
           "payment_intent": pi, "status": status, "metadata": {}, "reason": None,
           "failure_reason": "expired_or_canceled_card" if status == "failed" else None}
    if created is not None:
        obj["created"] = created
    return {**obj, **extra}


def at(event: dict, created: int) -> dict:
    return dict(event, created=created)


def _post(stripe_events, event: dict) -> str:
    assert stripe_events.post(event).status_code == 200
    return db.session.scalar(sa.select(WebhookEvent.status).where(WebhookEvent.event_id == event["id"])).value


def test_a_refund_that_failed_at_stripe_gives_the_money_back_to_the_books(stripe_events, campaign):
    """The tester's probe: every event of one second, the failed refund's own time unknown."""
    p, pi = stripe_events.pay(10000, "refund-fails@example.org")
    donor = find_user(p.email)
    _post(stripe_events, make_event("charge.refunded", charge_obj(pi, 10000, 4000)))
    assert entitlements.donor_entitlements(donor, campaign)["tier"]["min_amount"] == 5000
    refund = refund_obj(pi, "re_1", 4000, "failed")
    assert _post(stripe_events, make_event("charge.refund.updated", refund)) == "processed"
    assert _post(stripe_events, make_event("refund.failed", refund)) == "processed"  # the same failure: once
    _post(stripe_events, make_event("charge.updated", charge_obj(pi, 10000, 0)))
    st_ = partner_statement(campaign)
    assert (st_["gross"], st_["refunded"], st_["net"], st_["share_due"]) == (10000, 0, 10000, 2000)
    assert ledger.donor_net(campaign.id, donor.id) == 10000
    held = entitlements.donor_entitlements(donor, campaign)
    assert held["tier"]["min_amount"] == 10000  # the $100 tier's rewards are the donor's again
    assert "dvd-signed" in {r["key"] for r in held["rewards"] if r["status"] != "revoked"}
    groups = db.session.execute(sa.select(LedgerEntry.event_kind, LedgerEntry.entry_kind, LedgerEntry.amount)
                                .order_by(LedgerEntry.id)).all()
    assert [(e.value, k.value, a) for e, k, a in groups][-2:] == [
        ("refund_failed", "restore", 4000), ("refund_failed", "partner_share", 800)]
    assert ledger_check.check_ledger() == []


def test_a_producers_refund_that_failed_is_marked_failed_and_frees_the_amount(
        client, stripe_events, fake_stripe, campaign, make_user, token_for):
    headers = token_for(make_user("boss@example.org", "producer"))
    p, pi = stripe_events.pay(10000, "closed-card@example.org")
    donation = db.session.scalar(sa.select(Donation))
    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 4000}, headers=headers)
    assert r.status_code == 202
    req = db.session.scalar(sa.select(RefundRequest))
    _post(stripe_events, at(make_event("charge.refunded", charge_obj(pi, 10000, 4000)), T))
    db.session.expire_all()
    assert db.session.get(RefundRequest, req.id).state.value == "succeeded"
    _post(stripe_events, at(make_event("refund.failed", refund_obj(pi, req.stripe_refund_id, 4000, "failed",
                                                                      created=T)), T + 86400))
    db.session.expire_all()
    req = db.session.get(RefundRequest, req.id)
    assert req.state.value == "failed" and "expired_or_canceled_card" in req.error
    assert partner_statement(campaign)["net"] == 10000
    # The whole gift can be refunded again: a new request, a new key.
    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={}, headers=headers)
    assert r.status_code == 202 and r.get_json()["requested"] == 10000
    assert ledger_check.check_ledger() == []


def test_a_pending_request_whose_refund_failed_is_found_by_its_metadata(
        app, client, stripe_events, fake_stripe, campaign, make_user, token_for):
    """Stripe did not answer the call (so no refund id is known), made the refund, and it failed."""
    app.config["STRIPE_MAX_RETRIES"] = 0
    headers = token_for(make_user("boss@example.org", "producer"))
    p, pi = stripe_events.pay(6000, "no-answer@example.org")
    donation = db.session.scalar(sa.select(Donation))
    fake_stripe.fail_next = [500]
    assert client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 6000},
                       headers=headers).status_code == 202
    req = db.session.scalar(sa.select(RefundRequest))
    assert req.stripe_refund_id is None
    failed = refund_obj(pi, "re_unseen", 6000, "failed", created=T, metadata={"refund_request": str(req.id)})
    _post(stripe_events, at(make_event("refund.failed", failed), T + 60))
    db.session.expire_all()
    assert db.session.get(RefundRequest, req.id).state.value == "failed"
    assert partner_statement(campaign)["net"] == 6000  # nothing was ever counted, nothing moves
    assert ledger_check.check_ledger() == []


def test_a_refund_still_going_through_changes_nothing(stripe_events, campaign):
    p, pi = stripe_events.pay(5000, "pending-refund@example.org")
    _post(stripe_events, at(make_event("charge.refunded", charge_obj(pi, 5000, 2000)), T))
    for status in ("pending", "succeeded"):
        assert _post(stripe_events, at(make_event("refund.updated", refund_obj(pi, "re_ok", 2000, status,
                                                                               created=T)), T + 1)) == "processed"
    assert partner_statement(campaign)["net"] == 3000
    # A stale, smaller total (delivered late) never undoes a larger one: only a failure does.
    _post(stripe_events, at(make_event("charge.updated", charge_obj(pi, 5000, 0)), T - 10))
    assert partner_statement(campaign)["net"] == 3000
    assert ledger_check.check_ledger() == []


# One charge of $120: A ($10) and B ($40) refunded, B fails, then C ($20) refunded. Truth: $30 refunded.
STORY = [
    ("charge.refunded", lambda pi: charge_obj(pi, 12000, 5000), T + 20),                 # holds A and B
    ("refund.failed", lambda pi: refund_obj(pi, "re_B", 4000, "failed", created=T + 20), T + 30),
    ("charge.refunded", lambda pi: charge_obj(pi, 12000, 3000), T + 40),                 # holds A and C
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(1 + len(STORY)))))
def test_every_order_of_a_failed_refund_and_a_later_one_gives_the_same_books(stripe_events, campaign, order):
    p = make_pledge(12000, email="story@example.org")
    pi = f"pi_{p.id}"
    events = [at(make_event("checkout.session.completed", session_obj(p.id, 12000, pi=pi, email=p.email)), T)]
    events += [at(make_event(type_, obj(pi)), created) for type_, obj, created in STORY]
    for i in order:
        _post(stripe_events, events[i])
    d = db.session.scalar(sa.select(Donation))
    assert (d.amount_refunded, d.net) == (3000, 9000)
    assert partner_statement(campaign)["share_due"] == money_model.share_due(9000)
    assert entitlements.donor_entitlements(d.user, campaign)["tier"]["min_amount"] == money_model.tier(9000)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent).where(
        WebhookEvent.status != WebhookStatus.PROCESSED)) == 0
    assert ledger_check.check_ledger() == []


def test_a_refund_made_and_failed_within_one_second_counts_nothing(stripe_events, campaign):
    """A refund refused at once (its creation and failure in the same second): the charge reported
    it with it and without it, in that second."""
    p, pi = stripe_events.pay(8000, "instant@example.org")
    _post(stripe_events, at(make_event("charge.refunded", charge_obj(pi, 8000, 1000)), T - 100))  # an earlier $10
    events = [at(make_event("charge.refunded", charge_obj(pi, 8000, 4000)), T),
              at(make_event("charge.updated", charge_obj(pi, 8000, 1000)), T),
              at(make_event("refund.failed", refund_obj(pi, "re_x", 3000, "failed", created=T)), T)]
    for event in reversed(events):
        _post(stripe_events, event)
    assert partner_statement(campaign)["net"] == 7000
    assert ledger_check.check_ledger() == []


def test_a_failed_refund_gives_a_limited_reward_back_only_if_an_item_is_left(stripe_events, campaign):
    """What the refund ended comes back as the rules say: the tier is the net's, and a limited
    reward takes an item again, if one is left (here the last went to another donor meanwhile)."""
    from filmfund.rewards import stock
    from filmfund.rewards.models import Entitlement, Reward

    reward = db.session.scalar(sa.select(Reward).where(Reward.key == "dvd-signed"))
    stock.set_reward_limit(reward.id, 1)
    db.session.commit()
    p, pi = stripe_events.pay(10000, "first@example.org")
    _post(stripe_events, at(make_event("charge.refunded", charge_obj(pi, 10000, 10000)), T))
    stripe_events.pay(10000, "second@example.org")  # takes the signed DVD given back
    _post(stripe_events, at(make_event("refund.failed", refund_obj(pi, "re_all", 10000, "failed", created=T)),
                            T + 3600))
    first = find_user("first@example.org")
    held = entitlements.donor_entitlements(first, campaign)
    assert held["total"] == 10000 and held["tier"]["min_amount"] == 10000
    status = db.session.scalar(sa.select(Entitlement.status).where(Entitlement.user_id == first.id,
                                                                   Entitlement.reward_id == reward.id))
    assert status.value == "revoked"  # sold out: not granted again, and no item promised twice
    assert stock.stock(campaign.id)["dvd-signed"]["left"] == 0
    assert ledger_check.check_ledger() == []


def test_a_charge_that_lists_its_refunds_names_the_failed_one(stripe_events, campaign):
    """API versions before 2022-11-15 write a charge's refunds in it: charge.updated alone says which failed."""
    p, pi = stripe_events.pay(5000, "old-api@example.org")
    _post(stripe_events, at(make_event("charge.refunded", charge_obj(pi, 5000, 2500)), T))
    listed = dict(charge_obj(pi, 5000, 0), refunds={"object": "list", "data": [
        refund_obj(pi, "re_old", 2500, "failed", created=T)]})
    _post(stripe_events, at(make_event("charge.updated", listed), T + 3600))
    assert partner_statement(campaign)["net"] == 5000
    assert ledger_check.check_ledger() == []


def test_the_ledger_check_proves_the_refunds_from_their_reports(stripe_events, campaign, runner):
    p, pi = stripe_events.pay(5000, "tamper@example.org")
    _post(stripe_events, at(make_event("charge.refunded", charge_obj(pi, 5000, 2500)), T))
    _post(stripe_events, at(make_event("refund.failed", refund_obj(pi, "re_t", 2500, "failed", created=T)), T + 9))
    assert runner.invoke(args=["ledger", "check"]).exit_code == 0
    db.session.execute(sa.text("DELETE FROM refund_reports WHERE kind = 'refund_failed'"))
    db.session.commit()
    result = runner.invoke(args=["ledger", "check"])
    assert result.exit_code == 1 and "its refund reports say 2500" in result.output


def test_the_new_event_types_are_booked():
    for type_ in ("refund.failed", "refund.updated", "charge.refund.updated", "charge.updated"):
        assert type_ in webhooks.HANDLERS and type_ in webhooks.PAYMENT_EVENTS  # replayed once the payment is known


# ------------------------------------------------------------------ the rule against the model, at every moment

@st.composite
def charge_histories(draw):
    """A charge's life at Stripe, each step in a second of its own: refunds made (each reported by
    the charge at once), some failing later (the charge reported again a second later, its money
    back), reports at other moments. Then every report and every failure delivered once, in a
    random order. Each report carries the refunds it holds, for the model; the implementation is
    given only its total and time. (Within one second Stripe's times cannot tell before from after:
    the stories above and below hold those.)"""
    amount = draw(st.integers(100, 10**7))
    refunds, live, reports, failures, left = {}, set(), [], [], amount
    steps = draw(st.lists(st.sampled_from(["make", "fail", "report"]), max_size=12))
    for now, step in zip(range(T, T + 2 * len(steps), 2), steps):
        if step == "make" and left:
            rid, size = f"re_{len(refunds)}", draw(st.integers(1, left))
            refunds[rid], left = (size, now), left - size
            live.add(rid)
        elif step == "fail" and live:
            rid = draw(st.sampled_from(sorted(live)))
            live.discard(rid)
            left += refunds[rid][0]
            failures.append((rid, refunds[rid][0], now, refunds[rid][1]))
            now += 1
        elif step != "report":
            continue
        reports.append((now, {rid: refunds[rid][0] for rid in live}))
    deliveries = [("report", r) for r in reports] + [("failure", f) for f in failures]
    return amount, draw(st.permutations(deliveries))


@settings(max_examples=500, deadline=None)
@given(charge_histories())
def test_the_reported_refund_is_the_models_at_every_moment(history):
    amount, deliveries = history
    model = money_model.Ledger()
    model.apply("charge", "paid", amount)
    totals, failures = [], []
    for kind, fact in deliveries:
        if kind == "report":
            when, holds = fact
            totals.append((when, sum(holds.values())))
            model.apply("charge", "refunded", holds)
        else:
            rid, size, when, made = fact
            failures.append(rules.RefundFailure(rid, size, when, made))
            model.apply("charge", "refund_failed", rid)
        assert rules.reported_refund(totals, failures) == model.payments["charge"].reported_refund
