"""Receipts (exactly once, outbox and a real SMTP server) and the end credits."""
import email
import socket
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller

import sqlalchemy as sa

from filmfund import jobs
from filmfund.extensions import db
from filmfund.mail import outbox_messages
from filmfund.auth.services import find_user
from filmfund.rewards import donors, payments, receipts, webhooks
from filmfund.rewards.receipts import RECEIPT_CLAIM_STALE
from filmfund.rewards.models import Donation
from tests.helpers import credit_names

from .conftest import charge_obj, session_obj


class Sink:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    yield sink
    controller.stop()


def _body(raw: bytes) -> str:
    msg = email.message_from_bytes(raw)
    return msg.get_payload(decode=True).decode()


def test_receipt_over_smtp_exactly_once(campaign, stripe_events, pledge, smtp):
    other = pledge(9900, "other@example.org", credit_name="Other Person")
    stripe_events.send("checkout.session.completed", session_obj(other.id, 9900, email="other@example.org"))
    p = pledge(5000, "fan@example.org")
    event = session_obj(p.id, 5000, email="fan@example.org")
    stripe_events.send("checkout.session.completed", event)
    stripe_events.send("checkout.session.async_payment_succeeded", event)
    stripe_events.send("charge.refunded", charge_obj(f"pi_{p.id}", 5000, 100))
    # The worker's SMTP send returns once the server has accepted the message: nothing to wait for.
    # The receipts, then the refund's notice (refund_notices.py): each mailed once.
    assert [m.rcpt_tos for m in smtp.messages] == [["other@example.org"], ["fan@example.org"], ["fan@example.org"]]
    assert "$1.00 of your gift of $50.00" in _body(smtp.messages[2].content)
    text = _body(smtp.messages[1].content)
    assert "Amount: $50.00" in text
    assert "$10.00 goes to Xinxing Aid center (20% of all that is raised, rounded on the running total" in text
    assert "“Collector” tier" in text and "A DVD of the finished film" in text
    assert "Other Person" not in text and "other@example.org" not in text and "99.00" not in text
    assert outbox_messages() == []


def test_receipt_in_the_outbox(campaign, stripe_events, pledge):
    p = pledge(100, "fan@example.org", rewards_opt_out=True)
    stripe_events.send("checkout.session.completed", session_obj(p.id, 100, email="fan@example.org"))
    [path] = outbox_messages()
    msg = email.message_from_bytes(path.read_bytes())
    assert msg["To"] == "fan@example.org" and msg["Subject"].startswith("Your receipt")
    text = _body(path.read_bytes())
    assert "Amount: $1.00" in text and "You chose no rewards" in text and "$0.20 goes to" in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _donation(pledge_id):
    db.session.expire_all()
    return db.session.scalar(sa.select(Donation).where(Donation.pledge_id == pledge_id))


@pytest.fixture
def later(monkeypatch):
    """later(minutes): run the queue as the worker would, that many minutes further on (huey's
    clock moves; the retries due by then run, the others stay scheduled)."""
    real = jobs.huey._get_timestamp
    offset = timedelta()

    def run(minutes: float) -> int:
        nonlocal offset
        offset += timedelta(minutes=minutes)
        for lane in jobs.LANES:
            monkeypatch.setattr(lane, "_get_timestamp", lambda: real() + offset)
        return jobs.run_burst()

    return run


def test_a_mail_failure_does_not_fail_the_payment(app, campaign, stripe_events, pledge, later):
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{_free_port()}"  # nothing listens there
    p = pledge(100, "fan@example.org")
    stripe_events.send("checkout.session.completed", session_obj(p.id, 100, email="fan@example.org"))
    d = _donation(p.id)
    assert d is not None and d.receipt_sent_at is None  # left for a retry, the money is booked
    assert payments.partner_statement(campaign)["net"] == 100
    app.config["SMTP_URL"] = None  # mail works again: a later payment sends only its own receipt
    second = pledge(200, "later@example.org")
    stripe_events.send("checkout.session.completed", session_obj(second.id, 200, email="later@example.org"))
    assert [email.message_from_bytes(m.read_bytes())["To"] for m in outbox_messages()] == ["later@example.org"]
    assert receipts.sweep_receipts.call_local() == 1  # the hourly sweep sends the missed one
    assert sorted(email.message_from_bytes(m.read_bytes())["To"] for m in outbox_messages()) == [
        "fan@example.org", "later@example.org"]
    assert receipts.sweep_receipts.call_local() == 0
    assert later(5) == 1 and len(outbox_messages()) == 2  # its queued retry finds it sent
    db.session.expire_all()
    assert all(x.receipt_sent_at for x in db.session.scalars(sa.select(Donation)))


def test_a_receipt_that_failed_is_sent_by_the_retry_once_smtp_is_back(app, campaign, stripe_events, pledge, later):
    port = _free_port()
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{port}"  # the mail server is down
    p = pledge(5000, "fan@example.org")
    stripe_events.send("checkout.session.completed", session_obj(p.id, 5000, email="fan@example.org"))
    assert _donation(p.id).receipt_sent_at is None
    assert jobs.run_burst() == 0  # the retry waits a minute first
    assert later(1.5) == 1  # tried: still down, so the next try is two minutes later
    assert _donation(p.id).receipt_sent_at is None
    assert later(1.5) == 0  # backoff

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()  # the mail server is back
    try:
        assert later(4) == 1
        assert later(600) == 0 and receipts.sweep_receipts.call_local() == 0  # nothing left to send
    finally:
        controller.stop()
    assert [m.rcpt_tos for m in sink.messages] == [["fan@example.org"]]  # exactly once
    assert "Amount: $50.00" in _body(sink.messages[0].content)
    assert "“Collector” tier" in _body(sink.messages[0].content)
    assert _donation(p.id).receipt_sent_at is not None


def test_a_receipt_claimed_by_a_process_that_died_is_sent_by_the_sweep(app, campaign, stripe_events, pledge,
                                                                       monkeypatch):
    """The booking commits with the receipt claimed; if the process dies before mailing it, the
    claim goes stale and the sweep sends it: a receipt is never silently lost."""
    p = pledge(5000, "fan@example.org")
    with monkeypatch.context() as m:
        m.setattr(webhooks, "send_queued_receipts", lambda receipts: None)  # dies right after commit
        stripe_events.send("checkout.session.completed", session_obj(p.id, 5000, email="fan@example.org"))
    d = _donation(p.id)
    assert d.receipt_claimed_at is not None and d.receipt_sent_at is None and outbox_messages() == []
    assert receipts.sweep_receipts.call_local() == 0  # a fresh claim may still be in flight: leave it
    db.session.execute(sa.update(Donation).where(Donation.id == d.id).values(
        receipt_claimed_at=d.receipt_claimed_at - RECEIPT_CLAIM_STALE - timedelta(seconds=1)))
    db.session.commit()
    assert receipts.sweep_receipts.call_local() == 1
    assert [email.message_from_bytes(m.read_bytes())["To"] for m in outbox_messages()] == ["fan@example.org"]
    assert receipts.sweep_receipts.call_local() == 0
    assert _donation(p.id).receipt_sent_at is not None


def test_a_receipt_sent_but_not_marked_is_sent_again_as_the_same_message(app, campaign, stripe_events, pledge):
    """A worker killed between the send and its mark leaves the receipt claimed and unmarked: once
    the claim is stale the sweep sends it again, with the same Message-ID, so the outbox holds one
    copy (and a mail program shows one receipt)."""
    p = pledge(5000, "fan@example.org")
    stripe_events.send("checkout.session.completed", session_obj(p.id, 5000, email="fan@example.org"))
    [first] = outbox_messages()
    message_id = email.message_from_bytes(first.read_bytes())["Message-ID"]
    d = _donation(p.id)
    db.session.execute(sa.update(Donation).where(Donation.id == d.id).values(  # as the dead worker left it
        receipt_sent_at=None, receipt_claimed_at=d.receipt_sent_at - RECEIPT_CLAIM_STALE - timedelta(seconds=1)))
    db.session.commit()
    assert receipts.sweep_receipts.call_local() == 1
    [again] = outbox_messages()
    assert email.message_from_bytes(again.read_bytes())["Message-ID"] == message_id
    assert _donation(p.id).receipt_sent_at is not None
    other = pledge(700, "other@example.org")  # another donation's receipt is another message
    stripe_events.send("checkout.session.completed", session_obj(other.id, 700, email="other@example.org"))
    ids = {email.message_from_bytes(m.read_bytes())["Message-ID"] for m in outbox_messages()}
    assert len(ids) == 2 and message_id in ids


def test_credits_never_show_anonymous_donors(campaign, stripe_events, pledge, runner):
    def pay(amount, email, **kw):
        p = pledge(amount, email, **kw)
        stripe_events.send("checkout.session.completed", session_obj(p.id, amount, email=email))
        return p

    pay(500, "zoe@example.org", credit_name="Zoë Martin")
    pay(500, "eve@example.org", credit_name="=HYPERLINK(\"http://evil\")")
    pay(500, "hidden@example.org", credit_name="Hidden Person", anonymous=True)
    pay(500, "later@example.org", credit_name="Later Hidden")
    donors.update_donor_settings(find_user("later@example.org"), via="account", anonymous=True)  # at once
    db.session.commit()
    pay(500, "noname@example.org")
    optout = pay(500, "optout@example.org", credit_name="Opted Out", rewards_opt_out=True)
    refunded = pay(500, "gone@example.org", credit_name="Refunded Person")
    stripe_events.send("charge.refunded", charge_obj(f"pi_{refunded.id}", 500, 500))
    assert optout and credit_names(campaign) == ["=HYPERLINK(\"http://evil\")", "Zoë Martin"]
    txt = runner.invoke(args=["credits", "export"])
    assert txt.exit_code == 0
    assert txt.output.splitlines() == ["Supporters", "=HYPERLINK(\"http://evil\")", "Zoë Martin"]
    csv_out = runner.invoke(args=["credits", "export", "--format", "csv"])
    assert csv_out.exit_code == 0
    assert csv_out.output.splitlines() == ["section,name", "supporters,\"'=HYPERLINK(\"\"http://evil\"\")\"",
                                           "supporters,Zoë Martin"]
    assert "Hidden" not in txt.output + csv_out.output and "@" not in txt.output
