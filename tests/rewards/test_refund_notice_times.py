"""The producers' page about a donor says, for each refunded gift, whether and when the donor was
told of its refund and for how much (Donation.refund_noticed_at, beside refund_noticed), in the
list of the mail the site sent them: a producer answering "did you tell me about my refund?" can
see it. The time is claimed with the amount and given back with it when the mail fails; a refund
told by the gift's receipt has no mail time of its own."""
from __future__ import annotations

import html
import re
from datetime import timedelta

import sqlalchemy as sa

from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.rewards import refund_notices, refunds
from filmfund.rewards.models import Donation
from tests.helpers import make_pledge, record_offline
from tests.worker import run_worker

from .conftest import charge_obj, session_obj
from .test_refund_notices import FAN, notices, unused_port  # noqa: F401  (the fixture)


def _gift(pi: str) -> Donation:
    donation = db.session.scalar(sa.select(Donation).where(Donation.payment_intent_id == pi))
    db.session.refresh(donation)  # as the worker left it
    return donation


def _mail_items(client, login_as, producer, user_id: int) -> list[str]:
    """The donor's "Mail sent" list on the producers' page, an item a string (tags out)."""
    page = login_as(client, producer).get(f"/admin/donations/donors/{user_id}")
    assert page.status_code == 200
    card = re.search(r'<section class="card" id="mail".*?</section>', page.get_data(as_text=True), re.S).group(0)
    return [html.unescape(re.sub(r"<[^>]+>", "", li)).strip() for li in re.findall(r"<li[^>]*>(.*?)</li>", card, re.S)]


def _refund_items(items: list[str]) -> list[str]:
    return [i for i in items if "Refund" in i]


def _when(at) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def test_a_mailed_notice_shows_when_and_for_how_much(stripe_events, campaign, client, login_as, producer):
    _, pi = stripe_events.pay(5000, FAN)
    user_id = _gift(pi).user_id
    assert _refund_items(_mail_items(client, login_as, producer, user_id)) == []  # nothing refunded, nothing to say
    before = utcnow()
    stripe_events.send("charge.refunded", charge_obj(pi, 5000, 2000))
    gift = _gift(pi)
    assert gift.refund_noticed == 2000 and before <= gift.refund_noticed_at <= utcnow()
    assert len(notices()) == 1
    first = gift.refund_noticed_at
    assert _refund_items(_mail_items(client, login_as, producer, user_id)) == [
        f"{_when(first)}: Refund notice: $20.00 of the gift of $50.00 refunded"]

    stripe_events.send("charge.refunded", charge_obj(pi, 5000, 5000))
    gift = _gift(pi)
    assert gift.refund_noticed == 5000 and gift.refund_noticed_at >= first and len(notices()) == 2
    # The last notice told (the column keeps one): the gift refunded in full, and when.
    assert _refund_items(_mail_items(client, login_as, producer, user_id)) == [
        f"{_when(gift.refund_noticed_at)}: Refund notice: the gift of $50.00 refunded in full"]


def test_a_notice_not_mailed_yet_says_so_and_a_failed_send_gives_its_time_back(
        app, stripe_events, campaign, client, login_as, producer, unused_port):  # noqa: F811
    _, pi = stripe_events.pay(5000, FAN)
    user_id = _gift(pi).user_id
    down, up = f"smtp://127.0.0.1:{unused_port}", ""  # nothing listens there; "": the outbox
    app.config["SMTP_URL"] = down
    stripe_events.send("charge.refunded", charge_obj(pi, 5000, 1000))
    gift = _gift(pi)
    assert (gift.refund_noticed, gift.refund_noticed_at) == (0, None)  # the claim and its time given back
    [item] = _refund_items(_mail_items(client, login_as, producer, user_id))
    assert item == "Refund notice: $10.00 of the gift of $50.00 refunded not mailed yet tried until the mail server takes it"

    app.config["SMTP_URL"] = up
    assert refund_notices.send_untold() == 1
    gift = _gift(pi)
    assert gift.refund_noticed == 1000 and gift.refund_noticed_at is not None
    # An older notice: its time is told apart from the next one's.
    told_at = gift.refund_noticed_at - timedelta(days=2)
    db.session.execute(sa.update(Donation).where(Donation.id == gift.id).values(refund_noticed_at=told_at))
    db.session.commit()

    app.config["SMTP_URL"] = down
    stripe_events.send("charge.refunded", charge_obj(pi, 5000, 2500))
    gift = _gift(pi)
    assert (gift.refund_noticed, gift.refund_noticed_at) == (1000, told_at)  # what was told, and when, kept
    assert _refund_items(_mail_items(client, login_as, producer, user_id)) == [
        "Refund notice: $25.00 of the gift of $50.00 refunded not mailed yet tried until the mail server takes it",
        f"{_when(told_at)}: Refund notice: $10.00 of the gift of $50.00 refunded"]

    app.config["SMTP_URL"] = up
    assert refund_notices.send_untold() == 1 and refund_notices.send_untold() == 0
    gift = _gift(pi)
    assert gift.refund_noticed == 2500 and gift.refund_noticed_at > told_at + timedelta(days=1)
    assert _refund_items(_mail_items(client, login_as, producer, user_id)) == [
        f"{_when(gift.refund_noticed_at)}: Refund notice: $25.00 of the gift of $50.00 refunded"]
    assert [("$25.00 of your gift" in text) for _, text in notices()] == [False, True]


def test_a_refund_told_by_the_receipt_has_no_mail_time_of_its_own(stripe_events, campaign, client, login_as,
                                                                 producer):
    p = make_pledge(10000, email="early@example.org")
    pi = f"pi_{p.id}"
    assert stripe_events.send("charge.refunded", charge_obj(pi, 10000, 6000)) == "unmatched"
    stripe_events.send("checkout.session.completed", session_obj(
        p.id, 10000, session_id=p.checkout_session_id, pi=pi, email=p.email))
    gift = _gift(pi)
    assert (gift.refund_noticed, gift.refund_noticed_at) == (6000, None) and gift.receipt_sent_at is not None
    assert notices(p.email) == []  # one mail: the receipt, which says "Refunded"
    assert _refund_items(_mail_items(client, login_as, producer, gift.user_id)) == [
        f"{_when(gift.receipt_sent_at)}: Refund told on the gift's receipt: $60.00 of the gift of $100.00 refunded "
        "no notice of its own"]


def test_a_notice_told_before_its_time_was_kept(app, campaign, client, login_as, producer):
    donation = record_offline("old@example.org", 10000, note="cash at the screening")
    refunds.request_refund(donation.id, 2500, "asked by mail")
    db.session.commit()
    run_worker(app)
    # As the rows told before the column came: the amount, no time.
    db.session.execute(sa.update(Donation).where(Donation.id == donation.id).values(refund_noticed_at=None))
    db.session.commit()
    [item] = _refund_items(_mail_items(client, login_as, producer, donation.user_id))
    assert item.startswith("Refund notice: $25.00 of the gift of $100.00 refunded time not recorded told before")
    assert "UTC" not in item


def test_a_refund_that_failed_takes_its_notice_time_with_it(stripe_events, campaign):
    import time

    from filmfund.rewards import payments, rules

    from .conftest import make_event

    _, pi = stripe_events.pay(5000, FAN)
    now = int(time.time())
    stripe_events.post(dict(make_event("charge.refunded", charge_obj(pi, 5000, 2000)), created=now - 100))
    gift = _gift(pi)
    assert gift.refund_noticed == 2000 and gift.refund_noticed_at is not None
    payments.apply_refund_failure(gift, rules.RefundFailure("re_1", 2000, now - 50, now - 100), None,
                                  "expired_or_canceled_card")
    db.session.commit()
    gift = _gift(pi)
    assert (gift.amount_refunded, gift.refund_noticed, gift.refund_noticed_at) == (0, 0, None)
