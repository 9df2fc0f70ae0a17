"""A donor is told when their gift is refunded (rewards/refund_notices.py): once per refund, in their
language, with where the money goes and what their gifts bring now; never for a lost dispute; a mail
that failed is sent by the retry or the sweep, once; a refund that failed after it was made is told
again when it is made again."""
from __future__ import annotations

import email
import email.policy

import pytest
import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.mail import outbox_messages
from filmfund.rewards import refund_notices, refunds
from filmfund.rewards.donors import profile_for
from filmfund.rewards.models import Donation
from filmfund.rewards.payments import record_offline_donation
from tests.worker import run_worker

from .conftest import charge_obj, dispute_obj, make_event

FAN = "fan@example.org"


def mails_to(address: str) -> list[tuple[str, str]]:
    """(subject, text) of each mail written to the outbox for `address`, oldest first."""
    found = []
    for path in sorted(outbox_messages(), key=lambda p: p.stat().st_mtime_ns):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["To"] == address:
            found.append((str(msg["Subject"]), msg.get_content()))
    return found


def notices(address: str = FAN) -> list[tuple[str, str]]:
    return [m for m in mails_to(address) if "refunded" in m[0] or "退还" in m[0]]


def test_a_partial_then_a_full_refund_are_each_told_once(stripe_events, campaign):
    _, pi = stripe_events.pay(5000, FAN)  # $50: the DVD tier
    assert notices() == []
    charge = charge_obj(pi, 5000, 2000)
    stripe_events.send("charge.refunded", charge)
    stripe_events.send("charge.refunded", charge)  # Stripe delivers it again: nothing new to tell
    [(subject, text)] = notices()
    assert subject == ("Part of your gift has been refunded: Living with Dead Hearts: The Search for China's Kidnapped "
                       "Children (TEST PAYMENT: no money moved)")  # a test-mode gift's, as its receipt was
    assert "$20.00 of your gift of $50.00 of " in text and "has been refunded." in text
    assert "This is not a refund of a real payment." in text and "bank" not in text
    assert "Your gifts now total $30.00, which brings you the" in text  # $30: the stills tier
    stripe_events.send("charge.refunded", charge_obj(pi, 5000, 5000))
    assert len(notices()) == 2
    subject, text = notices()[1]
    assert subject.startswith("Your gift has been refunded: Living with Dead Hearts")
    assert "Your gift of $50.00 of " in text and "has been refunded in full." in text
    assert "Your gifts now total $0.00: that is below the first tier, so no rewards come with it." in text
    assert run_worker(stripe_events.app) == 0 and refund_notices.send_untold() == 0 and len(notices()) == 2


def test_a_lost_dispute_is_not_told_as_a_refund(stripe_events, campaign):
    _, pi = stripe_events.pay(5000, FAN)
    stripe_events.send("charge.dispute.created", dispute_obj(pi, 5000, "needs_response"))
    stripe_events.send("charge.dispute.closed", dispute_obj(pi, 5000, "lost"))
    donation = db.session.scalar(sa.select(Donation).where(Donation.payment_intent_id == pi))
    assert donation.net == 0 and notices() == []


def test_an_offline_refund_is_told_in_the_donors_language_without_a_bank(app, campaign):
    app.config["STRIPE_SECRET_KEY"] = "sk_live_not_called"  # live money: no test note to hide the rest
    donation = record_offline_donation("mei@example.org", 10000, note="cash at the screening")
    db.session.commit()
    profile_for(donation.user_id).language = "zh-Hans"
    db.session.commit()
    refunds.request_refund(donation.id, 2500, "asked by mail")
    db.session.commit()
    run_worker(app)
    [(subject, text)] = notices("mei@example.org")
    assert subject == "《心碎而活：寻找中国被拐的孩子》捐款已部分退还"
    assert "已有 US$25.00 退还给您" in text and "US$100.00" in text
    assert "银行" not in text and "bank" not in text  # cash given back by hand: no bank to wait for
    assert "您现在累计捐款 US$75.00，对应“" in text and "TEST" not in text and "测试" not in text


def test_a_notice_the_mail_server_refused_is_sent_later_once(app, stripe_events, campaign, unused_port):
    _, pi = stripe_events.pay(5000, FAN)
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{unused_port}"  # nothing listens: the send fails
    stripe_events.send("charge.refunded", charge_obj(pi, 5000, 1000))
    donation = db.session.scalar(sa.select(Donation).where(Donation.payment_intent_id == pi))
    assert donation.refund_noticed == 0  # the claim was given back, for the retry
    app.config["SMTP_URL"] = ""  # the relay is back (here: the outbox)
    assert refund_notices.send_untold() == 1
    assert refund_notices.send_untold() == 0
    [(_, text)] = notices()
    assert "$10.00 of your gift of $50.00" in text


def test_a_refund_that_failed_and_is_made_again_is_told_again(stripe_events, campaign):
    import time

    from filmfund.rewards import payments, rules

    _, pi = stripe_events.pay(5000, FAN)
    now = int(time.time())
    first = make_event("charge.refunded", charge_obj(pi, 5000, 2000))
    first["created"] = now - 100
    stripe_events.post(first)
    donation = db.session.scalar(sa.select(Donation).where(Donation.payment_intent_id == pi))
    # Stripe: that refund failed (an expired card), its money back in the balance.
    payments.apply_refund_failure(donation, rules.RefundFailure("re_1", 2000, now - 50, now - 100), None,
                                  "expired_or_canceled_card")
    db.session.commit()
    assert (donation.amount_refunded, donation.refund_noticed) == (0, 0)
    stripe_events.send("charge.refunded", charge_obj(pi, 5000, 2000))  # refunded again, another way
    assert [("$20.00 of your gift" in text) for _, text in notices()] == [True, True]
    ids = {email.message_from_bytes(p.read_bytes())["Message-ID"] for p in outbox_messages()}
    assert len(ids) == len(outbox_messages())  # a second notice is not taken for the first by a mail program


@pytest.fixture
def unused_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
