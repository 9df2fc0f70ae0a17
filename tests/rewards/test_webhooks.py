"""Stripe webhooks: signatures, duplicates, every order, early refunds, odd events, concurrency."""
import itertools
import json
import random
import threading
import time

import pytest
import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards import entitlements, ledger, ledger_check, webhooks
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.payments import partner_statement
from filmfund.rewards.pledges import get_pledge, pledge_status
from filmfund.rewards.models import (
    Donation,
    LedgerEntry,
    PledgeState,
    WebhookEvent,
    WebhookStatus,
)
from filmfund.rewards.webhooks import complete_test_checkout, sign_payload

from tests.worker import run_workers

from . import money_model
from .conftest import charge_obj, dispute_obj, make_event, session_obj


def deliver_at_once(app, events: list[dict], workers: int = 4) -> list[int]:
    """POST every event (signed like Stripe) from its own thread, all released together by a
    barrier, then let `workers` workers book them at once; the status codes, in completion order."""
    secret = app.config["STRIPE_WEBHOOK_SECRET"]
    barrier, codes = threading.Barrier(len(events)), []

    def deliver(event):
        payload = json.dumps(event).encode()
        client = app.test_client()
        barrier.wait()
        codes.append(client.post("/webhooks/stripe", data=payload, content_type="application/json",
                                 headers={"Stripe-Signature": sign_payload(payload, secret)}).status_code)

    threads = [threading.Thread(target=deliver, args=(e,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db.session.remove()
    run_workers(app, workers)
    return codes


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def donation_for(pledge_id):
    return db.session.scalar(sa.select(Donation).where(Donation.pledge_id == pledge_id))


# ------------------------------------------------------------------ the test-mode checkout

def test_test_checkout_paid(pledge, campaign):
    p = pledge(5000)
    assert complete_test_checkout(p.id, "paid") == {"received": True, "status": "processed"}
    assert get_pledge(p.id).state == PledgeState.PAID
    assert partner_statement(campaign)["net"] == 5000
    assert [e.type for e in webhooks.list_webhook_events()] == ["checkout.session.completed"]


def test_test_checkout_processing_then_succeeded_or_failed(pledge, campaign):
    slow, bad = pledge(3000), pledge(4000)
    for p in (slow, bad):
        complete_test_checkout(p.id, "processing")
        assert get_pledge(p.id).state == PledgeState.PROCESSING
    assert partner_statement(campaign)["net"] == 0  # nothing counts while processing
    complete_test_checkout(slow.id, "succeeded")
    complete_test_checkout(bad.id, "failed")
    assert get_pledge(slow.id).state == PledgeState.PAID
    assert get_pledge(bad.id).state == PledgeState.FAILED
    assert partner_statement(campaign)["net"] == 3000
    assert pledge_status(get_pledge(bad.id))["message"].startswith("The payment did not go through")


def test_test_checkout_expired_and_late_failure_never_undoes_payment(pledge, campaign):
    gone, paid = pledge(3000), pledge(4000)
    complete_test_checkout(gone.id, "expired")
    assert get_pledge(gone.id).state == PledgeState.EXPIRED
    complete_test_checkout(paid.id, "paid")
    complete_test_checkout(paid.id, "failed")
    complete_test_checkout(paid.id, "expired")
    assert get_pledge(paid.id).state == PledgeState.PAID
    assert partner_statement(campaign)["net"] == 4000
    assert ledger_check.check_ledger() == []


# ------------------------------------------------------------------ signatures: 400 and nothing stored

def _assert_nothing_stored():
    assert count(WebhookEvent) == 0 and count(LedgerEntry) == 0 and count(Donation) == 0


@pytest.mark.parametrize("case", ["forged", "wrong_secret", "missing", "garbage", "stale", "future", "modified",
                                  "reserialised", "no_v1"])
def test_bad_signatures_are_refused(app, client, stripe_events, pledge, case, caplog):
    caplog.set_level("INFO")
    p = pledge(5000)
    event = make_event("checkout.session.completed", session_obj(p.id, 5000))
    payload = json.dumps(event).encode()
    secret = app.config["STRIPE_WEBHOOK_SECRET"]
    now = int(time.time())
    header = {
        "forged": f"t={now},v1={'0' * 64}",
        "wrong_secret": sign_payload(payload, "whsec_not_ours"),
        "missing": "",
        "garbage": "not a header",
        "stale": sign_payload(payload, secret, now - 301),
        "future": sign_payload(payload, secret, now + 330),  # margin: a loaded machine may take seconds to get here
        "modified": sign_payload(payload, secret),
        "reserialised": sign_payload(payload, secret),
        "no_v1": f"t={now}",
    }[case]
    if case == "modified":
        payload = payload.replace(b'"amount_total": 5000', b'"amount_total": 9000')
    if case == "reserialised":
        payload = json.dumps(event, indent=2).encode()
    response = stripe_events.post(payload, header=header)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_signature"
    _assert_nothing_stored()
    assert get_pledge(p.id).state == PledgeState.PENDING
    assert "rejected a Stripe webhook" in caplog.text
    assert secret not in caplog.text and "whsec_" not in caplog.text and "donor@example.org" not in caplog.text


def test_within_tolerance_is_accepted(app, stripe_events, pledge):
    p = pledge(5000)
    event = make_event("checkout.session.completed", session_obj(p.id, 5000))
    for skew in (-290, 290):
        response = stripe_events.post(dict(event, id=f"evt_skew_{skew}"), t=int(time.time()) + skew)
        assert response.status_code == 200
    assert count(WebhookEvent) == 2 and count(Donation) == 1


# ------------------------------------------------------------------ duplicates and replays

def test_duplicate_delivery_has_one_effect(stripe_events, pledge, campaign):
    p = pledge(5000)
    event = make_event("checkout.session.completed", session_obj(p.id, 5000))
    assert stripe_events.post(event).get_json() == {"received": True, "status": "received"}
    assert webhooks.list_webhook_events()[0].status == "processed"  # booked by the worker
    for _ in range(3):
        assert stripe_events.post(event).get_json() == {"received": True, "duplicate": True}
    # A second, distinct event about the same payment (Stripe resends as a new event) counts nothing either.
    stripe_events.send("checkout.session.async_payment_succeeded", session_obj(p.id, 5000))
    assert count(WebhookEvent) == 2 and count(Donation) == 1
    assert partner_statement(campaign)["gross"] == 5000
    assert ledger_check.check_ledger() == []


# ------------------------------------------------------------------ every order gives the same ledger

def _snapshot(pledge_id):
    d = donation_for(pledge_id)
    if d is None:
        return None
    ents = entitlements.donor_entitlements(d.user, current_campaign())
    entries = db.session.execute(sa.select(LedgerEntry.entry_kind, sa.func.sum(LedgerEntry.amount))
                                 .where(LedgerEntry.donation_id == d.id).group_by(LedgerEntry.entry_kind)).all()
    money = sum(a for k, a in entries if k in ("gift", "refund", "restore"))
    return (d.amount, d.amount_refunded, d.dispute_status, money, ents["total"],
            ents["tier"], sorted((r["key"], r["status"]) for r in ents["rewards"]))


SCENARIOS = {
    "partial refunds then lost dispute": lambda pi: [
        ("charge.refunded", charge_obj(pi, 12000, 1000)),
        ("charge.refunded", charge_obj(pi, 12000, 2500)),
        ("charge.dispute.closed", dispute_obj(pi, 9500, "lost")),
    ],
    "won dispute and a refund": lambda pi: [
        ("charge.dispute.created", dispute_obj(pi, 12000, "needs_response")),
        ("charge.dispute.closed", dispute_obj(pi, 12000, "won")),
        ("charge.refunded", charge_obj(pi, 12000, 7000)),
    ],
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_permutation_gives_the_same_result(stripe_events, pledge, campaign, scenario):
    results, pledges = set(), []
    for n, order in enumerate(itertools.permutations(range(1 + len(SCENARIOS[scenario]("x"))))):
        p = pledge(12000, email=f"donor{n}@example.org")
        pi = f"pi_{p.id}"
        events = [("checkout.session.completed", session_obj(p.id, 12000, pi=pi, email=p.email))]
        events += SCENARIOS[scenario](pi)
        for i in order:
            stripe_events.send(*events[i])
        snap = _snapshot(p.id)
        # What the donor holds is the same whatever the order. The revoked rows are the way there:
        # an order that takes the donor below the signed DVD's tier before the dispute grants the
        # plain DVD on the way (holdings.rewards_due: one DVD, signed above that tier), then ends it.
        results.add((snap[1:4], snap[4], repr(snap[5]), tuple(r for r in snap[6] if r[1] != "revoked")))
        pledges.append(p)
    assert len(results) == 1, results
    assert ledger_check.check_ledger() == []
    statement = partner_statement(campaign)
    net, share = {"partial refunds then lost dispute": (0, 0), "won dispute and a refund": (5000, 1000)}[scenario]
    assert statement["net"] == net * len(pledges)
    assert statement["share_due"] == share * len(pledges)
    assert count(WebhookEvent) == len(pledges) * len(SCENARIOS[scenario]("x")) + len(pledges)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)
                             .where(WebhookEvent.status != WebhookStatus.PROCESSED)) == 0


def test_random_redelivery_of_many_payments_matches_the_oracle(stripe_events, pledge, campaign):
    """Several donors, each event delivered 1-3 times, all shuffled together: the campaign's and
    each donor's net (the donor total production reads) are what the oracle computed."""
    from filmfund.auth.services import find_user

    rnd = random.Random(20261123)
    events, expected_by_donor = [], {}
    for n in range(12):
        amount = rnd.randint(100, 300000)
        p = pledge(amount, email=f"d{n % 5}@example.org")
        pi = f"pi_{p.id}"
        mine = [make_event("checkout.session.completed", session_obj(p.id, amount, pi=pi, email=p.email))]
        refunds = sorted(rnd.randint(0, amount) for _ in range(rnd.randint(0, 3)))
        mine += [make_event("charge.refunded", charge_obj(pi, amount, r)) for r in refunds]
        lost = rnd.random() < 0.25
        if lost:
            mine.append(make_event("charge.dispute.closed", dispute_obj(pi, amount, "lost")))
        net = 0 if lost else amount - (refunds[-1] if refunds else 0)
        expected_by_donor[p.email] = expected_by_donor.get(p.email, 0) + net
        events += [e for e in mine for _ in range(rnd.randint(1, 3))]
    rnd.shuffle(events)
    for event in events:
        assert stripe_events.post(event).status_code == 200
    expected_net = sum(expected_by_donor.values())
    statement = partner_statement(campaign)
    assert statement["net"] == expected_net
    assert statement["share_due"] == money_model.share_due(expected_net)
    assert ledger_check.check_ledger() == []
    assert {email: ledger.donor_net(campaign.id, find_user(email).id) for email in expected_by_donor} \
        == expected_by_donor


# ------------------------------------------------------------------ early, late, odd events

def test_refund_before_payment_is_kept_then_applied(stripe_events, pledge, campaign):
    p = pledge(10000)
    pi = f"pi_{p.id}"
    assert stripe_events.send("charge.refunded", charge_obj(pi, 10000, 4000)) == "unmatched"
    assert webhooks.list_webhook_events("unmatched")[0].payment_intent_id == pi
    assert count(LedgerEntry) == 0
    stripe_events.send("checkout.session.completed", session_obj(p.id, 10000, pi=pi))
    assert webhooks.list_webhook_events("unmatched") == []
    assert partner_statement(campaign) | {} == {
        "currency": "usd", "share_bps": 2000, "gross": 10000, "refunded": 4000, "net": 6000,
        "share_due": 1200, "paid_out": 0, "balance": 1200, "test_money": True}


def test_a_late_smaller_refund_never_undoes_a_larger_one(stripe_events, pledge, campaign):
    p = pledge(10000)
    pi = f"pi_{p.id}"
    stripe_events.send("checkout.session.completed", session_obj(p.id, 10000, pi=pi))
    stripe_events.send("charge.refunded", charge_obj(pi, 10000, 6000))
    stripe_events.send("charge.refunded", charge_obj(pi, 10000, 2000))
    assert donation_for(p.id).amount_refunded == 6000
    assert partner_statement(campaign)["net"] == 4000
    refunds = db.session.scalars(sa.select(LedgerEntry.amount).where(LedgerEntry.entry_kind == "refund")).all()
    assert refunds == [-6000]  # only the increase is booked, once


def test_session_matched_by_client_reference_id(stripe_events, pledge, campaign):
    p = pledge(2000)  # test-mode pledge: its own session id is cs_test_local_...
    stripe_events.send("checkout.session.completed", session_obj(p.id, 2000, session_id="cs_other"))
    d = donation_for(p.id)
    assert d is not None and d.flags == "session_mismatch"


def test_unknown_session_and_payment_are_unmatched(stripe_events, campaign):
    assert stripe_events.send("checkout.session.completed", session_obj("f" * 32, 2000)) == "unmatched"
    assert stripe_events.send("charge.dispute.closed", dispute_obj("pi_nobody", 2000, "lost")) == "unmatched"
    assert count(LedgerEntry) == 0
    assert len(webhooks.list_webhook_events("unmatched")) == 2


def test_unknown_types_and_livemode_mismatch_are_ignored(stripe_events, pledge, campaign):
    p = pledge(2000)
    assert stripe_events.send("plan.created", {"id": "price_1", "object": "plan"}) == "ignored"
    assert stripe_events.send("checkout.session.completed", session_obj(p.id, 2000),
                              livemode=True) == "ignored"
    [live, _] = webhooks.list_webhook_events("ignored")
    assert "livemode" in live.error
    assert count(LedgerEntry) == 0 and get_pledge(p.id).state == PledgeState.PENDING


def test_paid_amount_differs_from_pledge(stripe_events, pledge, campaign):
    p = pledge(5000)
    stripe_events.send("checkout.session.completed", session_obj(p.id, 1500))
    d = donation_for(p.id)
    assert d.amount == 1500 and "amount_mismatch" in d.flags
    assert entitlements.donor_entitlements(d.user, current_campaign())["tier"]["min_amount"] == 1500  # entitled by what was paid


def test_wrong_currency_is_kept_as_failed(stripe_events, pledge, campaign):
    p = pledge(5000)
    assert stripe_events.send("checkout.session.completed",
                              session_obj(p.id, 5000, currency="eur")) == "failed"
    [row] = webhooks.list_webhook_events("failed")
    assert "eur" in row.error
    assert count(Donation) == 0 and count(LedgerEntry) == 0


def test_not_an_event_is_refused(app, stripe_events):
    payload = b'["not", "an", "event"]'
    response = stripe_events.post(payload, header=sign_payload(payload, app.config["STRIPE_WEBHOOK_SECRET"]))
    assert response.status_code == 400 and count(WebhookEvent) == 0


# ------------------------------------------------------------------ concurrency (PostgreSQL)

@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_same_event_eight_times_in_parallel_has_one_effect(app, pledge, campaign):
    payments = [pledge(5000 + n, email=f"c{n}@example.org") for n in range(4)]
    events = []
    for p in payments:
        pi = f"pi_{p.id}"
        events.append(make_event("checkout.session.completed", session_obj(p.id, p.amount, pi=pi, email=p.email)))
        events.append(make_event("charge.refunded", charge_obj(pi, p.amount, 1000)))
    codes = []
    for event in events:
        codes += deliver_at_once(app, [event] * 8)
    assert codes == [200] * 8 * len(events)
    assert count(WebhookEvent) == len(events) and count(Donation) == len(payments)
    statement = partner_statement(current_campaign())
    assert statement["gross"] == sum(5000 + n for n in range(4))
    assert statement["refunded"] == 1000 * len(payments)
    assert ledger_check.check_ledger() == []


def test_different_events_in_parallel_keep_the_share_exact(app, pledge, campaign):
    payments = [pledge(333 + 7 * n, email=f"p{n}@example.org") for n in range(16)]
    events = [make_event("checkout.session.completed", session_obj(p.id, p.amount, email=p.email)) for p in payments]
    events += [make_event("charge.refunded", charge_obj(f"pi_{p.id}", p.amount, 111)) for p in payments]
    random.Random(7).shuffle(events)
    assert deliver_at_once(app, events) == [200] * len(events)
    net = sum(333 + 7 * n - 111 for n in range(16))
    statement = partner_statement(current_campaign())
    assert statement["net"] == net and statement["share_due"] == money_model.share_due(net)
    assert ledger_check.check_ledger() == []


def test_a_crash_mid_handler_rolls_back_and_redelivery_applies_once(stripe_events, pledge, campaign,
                                                                     crash_first_booking):
    p = pledge(5000)
    event = make_event("checkout.session.completed", session_obj(p.id, 5000))
    # Stored and answered; the worker's booking crashes and rolls back the booking only.
    assert stripe_events.post(event).get_json() == {"received": True, "status": "received"}
    assert webhooks.list_webhook_events()[0].status == "received"
    assert count(WebhookEvent) == 1 and count(LedgerEntry) == 0 and count(Donation) == 0
    # Stripe's redelivery finds it unbooked and books it, once.
    assert stripe_events.post(event).get_json() == {"received": True, "duplicate": True}
    assert webhooks.list_webhook_events()[0].status == "processed"
    assert stripe_events.post(event).get_json() == {"received": True, "duplicate": True}
    assert partner_statement(campaign)["gross"] == 5000
    assert ledger_check.check_ledger() == []


def test_an_oversized_body_is_refused_unread(client, campaign):
    response = client.post("/webhooks/stripe", data=b"x" * (512 * 1024 + 1), content_type="application/json",
                           headers={"Stripe-Signature": "t=1,v1=0"})
    assert response.status_code == 413 and count(WebhookEvent) == 0


def test_the_donor_is_made_from_the_payment_email(stripe_events, pledge, campaign):
    from filmfund.auth.services import find_user

    p = pledge(2000, "typed@example.org")
    stripe_events.send("checkout.session.completed", session_obj(p.id, 2000, email="Paid@Example.org"))
    assert donation_for(p.id).user.email == "Paid@example.org" and find_user("paid@example.org").has_role("donor")
    q = pledge(2000, "typed@example.org")
    stripe_events.send("checkout.session.completed", session_obj(q.id, 2000, email="weird address"))
    assert donation_for(q.id).user.email == "typed@example.org"  # money is never lost to a bad address


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_dispute_naming_only_the_charge(stripe_events, pledge, campaign, order):
    """The fixtures' dispute shape has payment_intent null: it is matched through the charge id,
    which a charge event teaches us, whatever the order."""
    p = pledge(8000)
    pi, charge = f"pi_{p.id}", f"ch_{p.id}"
    succeeded = {"id": charge, "object": "charge", "amount": 8000, "amount_refunded": 0, "currency": "usd",
                 "livemode": False, "payment_intent": pi, "paid": True, "status": "succeeded"}
    lost = dict(dispute_obj(pi, 8000, "lost"), payment_intent=None, charge=charge)
    events = [("checkout.session.completed", session_obj(p.id, 8000, pi=pi)),
              ("charge.succeeded", succeeded), ("charge.dispute.closed", lost)]
    for i in order:
        stripe_events.send(*events[i])
    d = donation_for(p.id)
    assert (d.charge_id, d.dispute_status, d.net) == (charge, "lost", 0)
    assert partner_statement(campaign)["net"] == 0
    assert webhooks.list_webhook_events("unmatched") == []
    assert ledger_check.check_ledger() == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_one_new_donor_paying_several_pledges_at_once(app, pledge, campaign):
    """Payments no longer wait for the money lock before their pledge and donor are found or made:
    one new address paying six pledges at once (one of them also expiring, one also refunded, and
    one event delivered twice) still gives one account, exact money, its tier and one receipt each."""
    amounts = [1000, 2500, 5000, 700, 12000, 300]
    payments = [pledge(a, email="Same.New@example.org") for a in amounts]
    events = [make_event("checkout.session.completed", session_obj(p.id, p.amount, email=p.email)) for p in payments]
    events += [events[0],
               make_event("checkout.session.expired", dict(session_obj(payments[1].id, 2500, email=payments[1].email),
                                                           payment_status="unpaid", status="expired")),
               make_event("charge.refunded", charge_obj(f"pi_{payments[2].id}", 5000, 5000))]
    codes = deliver_at_once(app, events)
    assert codes == [200] * len(events)
    from filmfund.auth.models import User
    from filmfund.mail import outbox_messages

    assert count(User) == 1 and count(Donation) == len(amounts)
    # Expired after the payment: stays paid. Expired first: the payment is recorded and flagged.
    state, flags = get_pledge(payments[1].id).state, donation_for(payments[1].id).flags
    assert (state, "paid_after_expired" in flags) in ((PledgeState.PAID, False), (PledgeState.EXPIRED, True))
    net = sum(amounts) - 5000
    campaign = current_campaign()
    statement = partner_statement(campaign)
    assert statement["net"] == net and statement["share_due"] == money_model.share_due(net)
    assert ledger_check.check_ledger() == []
    [user] = db.session.scalars(sa.select(User))
    assert entitlements.donor_entitlements(user, campaign)["total"] == net
    mails = {path.name.split(".")[0]: [] for path in outbox_messages()}
    for path in outbox_messages():
        mails[path.name.split(".")[0]].append(path.read_text())
    assert len(mails["receipt"]) == len(amounts)
    # The refund is told once: by the gift's receipt if it came first and was replayed in the
    # payment's booking ("Refunded: $50.00"), else by a notice of its own.
    told_by_receipt = sum("Refunded: $50.00" in text for text in mails["receipt"])
    assert told_by_receipt + len(mails.get("refund", [])) == 1
