"""A refund or dispute delivered before the payment it is about is kept unmatched and replayed in
the payment's booking transaction. The one receipt, mailed after that commit, says what the gift
does once all of it is booked: the refund, the partner's part of what is left, and the tier the
donor's net really brings (never the rewards a full refund took back)."""
from __future__ import annotations

import email
from email.header import decode_header, make_header

import pytest

from filmfund.auth.services import find_user
from filmfund.mail import outbox_messages
from filmfund.rewards import entitlements, ledger_check
from tests.helpers import make_pledge

from .conftest import charge_obj, dispute_obj, make_event, session_obj
from .test_monthly import OLD, T0, invoice_events, post, session_event


def _mails(addr: str) -> list[tuple[str, str]]:
    out = []
    for path in outbox_messages():
        m = email.message_from_bytes(path.read_bytes())
        if m["To"] and addr in m["To"]:
            part = next(p for p in m.walk() if p.get_content_type() == "text/plain") if m.is_multipart() else m
            out.append((str(make_header(decode_header(m["Subject"]))), part.get_payload(decode=True).decode()))
    return out


def test_receipt_after_an_early_full_refund_promises_no_rewards(stripe_events, campaign):
    p = make_pledge(10000, email="early-refund@example.org")
    pi = f"pi_{p.id}"
    assert stripe_events.send("charge.refunded", charge_obj(pi, 10000, 10000)) == "unmatched"
    assert stripe_events.send("checkout.session.completed", session_obj(
        p.id, 10000, session_id=p.checkout_session_id, pi=pi, email=p.email)) == "processed"
    held = entitlements.donor_entitlements(find_user(p.email), campaign)
    assert held["total"] == 0 and held["tier"] is None
    [(subject, body)] = _mails(p.email)
    assert "Amount: $100.00" in body and "Refunded: $100.00" in body
    assert "Of this, $0.00 goes to" in body  # the partner's share went back with the money
    assert "tier" not in body and "The DVD signed" not in body
    assert ledger_check.check_ledger() == []


@pytest.mark.parametrize("early", ["refund", "dispute"])
def test_receipt_after_an_early_partial_refund_or_lost_dispute_says_the_tier_of_the_net(stripe_events, campaign,
                                                                                       early):
    p = make_pledge(10000, email=f"early-{early}@example.org")
    pi = f"pi_{p.id}"
    first = (("charge.refunded", charge_obj(pi, 10000, 6000)) if early == "refund"
             else ("charge.dispute.closed", dispute_obj(pi, 6000, "lost")))
    assert stripe_events.send(*first) == "unmatched"
    stripe_events.send("checkout.session.completed", session_obj(
        p.id, 10000, session_id=p.checkout_session_id, pi=pi, email=p.email))
    [(_, body)] = _mails(p.email)
    assert "Refunded: $60.00" in body and "Of this, $8.00 goes to" in body
    assert "Your total of $40.00 brings you the" in body
    assert "The DVD signed" not in body  # the $100 tier's, which the donor no longer reaches


def test_a_months_receipt_after_its_early_refund(stripe_events, campaign):
    p = make_pledge(5000, email="month-early@example.org", interval="month")
    post(stripe_events, session_event(p))
    assert post(stripe_events, dict(make_event("charge.refunded", charge_obj(f"pi_{p.id}_1", 5000, 5000)),
                                    created=T0 + 2)) == "unmatched"
    for event in invoice_events(p, 1, OLD, T0 + 1):
        post(stripe_events, event)
    [(_, body)] = _mails(p.email)
    assert "Refunded: $50.00" in body and "brings you the" not in body
    assert ledger_check.check_ledger() == []


def test_a_receipt_with_nothing_replayed_is_unchanged(stripe_events, campaign):
    p = make_pledge(10000, email="plain@example.org")
    stripe_events.send("checkout.session.completed", session_obj(
        p.id, 10000, session_id=p.checkout_session_id, pi=f"pi_{p.id}", email=p.email))
    [(_, body)] = _mails(p.email)
    assert "Refunded" not in body and "Of this, $20.00 goes to" in body and "The DVD signed" in body
