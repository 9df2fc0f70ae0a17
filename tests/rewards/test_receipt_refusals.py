"""Receipts whose address the mail server refuses for good (550). The hourly sweep takes the
unsent receipts a batch at a time; it used to take them oldest first, so a batch of dead
addresses at the front was tried every hour and every receipt behind it waited for good. A
refusal is now a try of that receipt's (in the audit log), tried again after the others, and
after RECEIPT_MAX_REFUSALS the gift is flagged for the producers and left. Real SMTP servers
on loopback (aiosmtpd)."""
from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from filmfund.audit import AuditEntry
from filmfund.auth.services import find_user
from filmfund.extensions import db
from filmfund.rewards import receipts
from filmfund.rewards.models import Donation
from tests.comms.conftest import free_port
from tests.comms.test_update_outage import refusing_server
from tests.site.helpers import CSRF_RE, csrf_token, pay
from tests.worker import run_worker


def _donation(email: str) -> Donation:
    return db.session.scalar(sa.select(Donation).where(Donation.user_id == find_user(email).id))


def _an_hour_later() -> None:
    """Every claim an hour older: the next sweep runs as the hourly one would."""
    for d in db.session.scalars(sa.select(Donation).where(Donation.receipt_claimed_at.is_not(None))):
        d.receipt_claimed_at -= timedelta(hours=1)
    db.session.commit()


def _pay_while_the_mail_server_is_down(app, *emails: str, amount: int = 1000) -> None:
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"  # nobody listens: every receipt waits
    for email in emails:
        pay(amount, email)


def test_dead_addresses_at_the_front_of_the_sweep_do_not_starve_the_receipts_behind(app, campaign):
    dead = [f"dead{i}@example.org" for i in range(3)]
    _pay_while_the_mail_server_is_down(app, *dead, "alive@example.org")
    with refusing_server(app, refuse=dead) as sink:
        # A batch of 3 (the sweep's is RECEIPT_SWEEP_BATCH): the oldest three are the dead ones.
        assert receipts.send_unsent_receipts(limit=3) == 0
        _an_hour_later()  # their claims are stale: the sweep may take them again
        assert receipts.send_unsent_receipts(limit=3) == 1  # the never-tried one goes first
    assert [rcpt for e in sink.envelopes for rcpt in e.rcpt_tos] == ["alive@example.org"]
    assert _donation("alive@example.org").receipt_sent_at is not None


def test_a_receipt_refused_every_time_is_flagged_for_the_producers_and_left(app, campaign, client, login_as,
                                                                           producer):
    _pay_while_the_mail_server_is_down(app, "gone@example.org")
    with refusing_server(app, refuse={"gone@example.org"}):
        for _hour in range(receipts.RECEIPT_MAX_REFUSALS):
            receipts.send_unsent_receipts()
            # A retry minutes later leaves it (a 550 is not an outage that passes): no backoff storm.
            assert receipts.send_receipt_once(_donation("gone@example.org").id) == "skipped"
            _an_hour_later()
        receipts.send_unsent_receipts()  # flagged: not tried again
    gift = _donation("gone@example.org")
    assert gift.receipt_sent_at is None and receipts.RECEIPT_REFUSED_FLAG in gift.flags.split(",")
    refusals = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "receipt.refused",
                                                              AuditEntry.target == f"donation {gift.id}")).all()
    assert [r.details_dict["refusal"] for r in refusals] == list(range(1, receipts.RECEIPT_MAX_REFUSALS + 1))
    assert "550" in refusals[0].details_dict["error"] and "gone@example.org" not in refusals[0].details
    assert receipts.unsent_receipts() == []

    page = login_as(client, producer).get(f"/admin/donations/donors/{gift.user_id}").get_data(as_text=True)
    assert receipts.RECEIPT_REFUSED_FLAG in page  # the badge beside the gift


def _flag_after_every_refusal(app, email: str, amount: int = 1000) -> Donation:
    _pay_while_the_mail_server_is_down(app, email, amount=amount)
    with refusing_server(app, refuse={email}):
        for _hour in range(receipts.RECEIPT_MAX_REFUSALS):
            receipts.send_unsent_receipts()
            _an_hour_later()
    gift = _donation(email)
    assert receipts.RECEIPT_REFUSED_FLAG in gift.flags.split(",")
    return gift


def test_the_flag_goes_once_a_later_receipt_reaches_the_address(app, campaign, client, login_as, producer):
    """A mailbox full for a week refuses five times; the donor empties it and gives again. That
    receipt goes through: the address takes mail, so the first gift is no longer shown as refused
    and its receipt goes out with the next sweep (it used to stay flagged and unsent for good)."""
    gift = _flag_after_every_refusal(app, "full@example.org")
    with refusing_server(app) as sink:
        pay(2000, "full@example.org")  # its receipt is accepted
        db.session.expire_all()
        assert db.session.get(Donation, gift.id).flags == ""
        assert receipts.unsent_receipts() == [gift.id]  # first in line
        assert receipts.send_unsent_receipts() == 1
    assert [rcpt for e in sink.envelopes for rcpt in e.rcpt_tos] == ["full@example.org"] * 2
    db.session.expire_all()
    assert db.session.get(Donation, gift.id).receipt_sent_at is not None
    (lifted,) = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "receipt.unflagged")).all()
    assert lifted.target == f"donation {gift.id}" and "full@example.org" not in lifted.details
    login_as(client, producer)
    for path in (f"/admin/donations/donors/{gift.user_id}", "/admin/"):
        assert receipts.RECEIPT_REFUSED_FLAG not in client.get(path).get_data(as_text=True), path


def test_a_lifted_receipt_refused_again_has_its_tries_again(app, campaign):
    """The refusals are counted from the last lifting on: one more refusal after it is one try of
    five, not the sixth refusal flagging the gift at once."""
    gift = _flag_after_every_refusal(app, "flaky@example.org")
    receipts.lift_refused_receipts(gift.user_id, "test")
    db.session.commit()
    with refusing_server(app, refuse={"flaky@example.org"}):
        receipts.send_unsent_receipts()
    db.session.expire_all()
    assert db.session.get(Donation, gift.id).flags == ""
    last = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "receipt.refused")
                              .order_by(AuditEntry.id.desc())).first()
    assert last.details_dict["refusal"] == 1


def test_an_erased_donors_refused_receipt_is_no_longer_flagged(app, campaign, client, login_as, producer):
    """The address is no longer the donor's: nothing is chased, nothing is mailed (the sweep marks
    the receipt done to nobody), and the producers' lists stop showing the flag."""
    from filmfund.rewards import donor_data

    gift = _flag_after_every_refusal(app, "leaving@example.org")
    donor_data.erase_donor(find_user("leaving@example.org"))
    db.session.commit()
    with refusing_server(app) as sink:
        assert receipts.send_unsent_receipts() == 1
    assert sink.envelopes == []
    db.session.expire_all()
    gone = db.session.get(Donation, gift.id)
    assert gone.flags == "" and gone.receipt_sent_at is not None
    page = login_as(client, producer).get(f"/admin/donations/donors/{gift.user_id}").get_data(as_text=True)
    assert receipts.RECEIPT_REFUSED_FLAG not in page


# ---------------------------------------------------------------- what the producers see, and do

def _mail_card(html: str) -> str:
    return re.search(r'<section class="card" id="mail".*?</section>', html, re.S).group(0)


def test_a_refused_receipt_is_listed_where_producers_look_for_undelivered_mail(app, campaign, client, login_as,
                                                                             producer, partner):
    """The donor's "Mail sent" listed receipts that went out only: one the donor's mail server
    refused five times was nowhere in it (a badge beside the gift said `receipt_refused`, no more),
    and the dashboard's Mail card said "Mail is sent through the configured SMTP server". Both now
    list it, with what was refused and its tries; one refused once says it is tried again."""
    gift = _flag_after_every_refusal(app, "full@example.org")
    _pay_while_the_mail_server_is_down(app, "once@example.org")
    with refusing_server(app, refuse={"once@example.org"}):
        receipts.send_unsent_receipts()
    once = _donation("once@example.org")

    login_as(client, producer)
    card = _mail_card(client.get(f"/admin/donations/donors/{gift.user_id}").get_data(as_text=True))
    item = re.search(rf'<li id="refused-receipt-{gift.id}">.*?</li>', card, re.S).group(0)
    assert "Receipt for $10.00" in item and "refused: address" in item and "5 of 5 tries: not tried again" in item
    assert 'id="resend-receipts"' in card and "Send the refused receipt again" in card
    card = _mail_card(client.get(f"/admin/donations/donors/{once.user_id}").get_data(as_text=True))
    assert "1 of 5 tries: tried again each hour" in card and "<form" not in card  # the sweep still tries it

    dashboard = client.get("/admin/").get_data(as_text=True)
    table = re.search(r'<table[^>]*id="refused-receipts".*?</table>', dashboard, re.S).group(0)
    assert "full@example.org" in table and "once@example.org" in table and "refused: address" in table
    assert f'href="/admin/donations/donors/{gift.user_id}#mail"' in table

    login_as(client, partner)  # the partner reads aggregates only: no page of these, no address
    assert client.get(f"/admin/donations/donors/{gift.user_id}").status_code == 403
    assert "full@example.org" not in client.get("/admin/partner").get_data(as_text=True)


def test_a_producer_sends_a_refused_receipt_again_once(app, campaign, client, login_as, producer, partner):
    """The donor emptied their mailbox and wrote to the crew: the producer sends the receipt again
    from the donor's page (lifted as a later receipt lifts it, audited as theirs) and it goes out
    at once through the queue, once; a double click finds nothing left to send."""
    gift = _flag_after_every_refusal(app, "full@example.org")
    path = f"/admin/donations/donors/{gift.user_id}/receipts"
    login_as(client, partner)
    assert client.post(path, data={"csrf_token": csrf_token(client, "/admin/partner")}).status_code == 403
    login_as(client, producer)
    assert client.post(path, data={}).status_code == 400  # no CSRF token: nothing lifted
    token = csrf_token(client, f"/admin/donations/donors/{gift.user_id}")
    done = client.post(path, data={"csrf_token": token})
    assert done.status_code == 303
    assert "1 refused receipt is being sent again" in client.get(done.headers["Location"]).get_data(as_text=True)
    again = client.post(path, data={"csrf_token": token})
    assert "No refused receipt is left" in client.get(again.headers["Location"]).get_data(as_text=True)
    assert client.post("/admin/donations/donors/999999/receipts", data={"csrf_token": token}).status_code == 404
    with refusing_server(app) as sink:
        run_worker(app)  # the queued send, not the hourly sweep
    assert [rcpt for e in sink.envelopes for rcpt in e.rcpt_tos] == ["full@example.org"]
    db.session.expire_all()
    assert db.session.get(Donation, gift.id).receipt_sent_at is not None
    (lifted,) = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "receipt.unflagged")).all()
    assert lifted.actor_id == producer.id and lifted.details_dict["why"] == "a producer asked to send it again"
    card = _mail_card(client.get(f"/admin/donations/donors/{gift.user_id}").get_data(as_text=True))
    assert "Receipt for $10.00" in card and "refused" not in card
    assert 'id="refused-receipts"' not in client.get("/admin/").get_data(as_text=True)


def test_a_sign_in_by_a_mailed_link_sends_the_refused_receipt_again_once(app, campaign, client):
    """The donor's mailbox refused their receipt five times (full); emptied, it takes the sign-in
    link the donor asks for, and the donor opens it. That proves the address takes our mail, but
    the receipt stayed flagged and unsent. Now the sign-in lifts the flag (audited
    `receipt.unflagged`, as a later accepted receipt does) and the receipt goes out, once: the next
    sign-in finds nothing to lift."""
    gift = _flag_after_every_refusal(app, "back@example.org")

    def sign_in_by_link(sink) -> None:
        page = client.get("/login").get_data(as_text=True)
        client.post("/login", data={"csrf_token": CSRF_RE.search(page).group(1), "email": "back@example.org"})
        run_worker(app)  # the link's mail
        link = re.search(r"(/login/magic/[A-Za-z0-9_-]+)", sink.envelopes[-1].content.decode()).group(1)
        token = CSRF_RE.search(client.get(link).get_data(as_text=True)).group(1)
        assert client.post(link, data={"csrf_token": token}).headers["Location"] == "/account"

    with refusing_server(app) as sink:
        sign_in_by_link(sink)
        db.session.expire_all()
        assert db.session.get(Donation, gift.id).flags == ""
        run_worker(app)  # the receipt's send, queued by the sign-in's commit
        client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
        sign_in_by_link(sink)
        run_worker(app)
        assert receipts.send_unsent_receipts() == 0
    receipts_mailed = [e for e in sink.envelopes if b"Your receipt" in e.content]
    assert [e.rcpt_tos for e in receipts_mailed] == [["back@example.org"]]
    db.session.expire_all()
    assert db.session.get(Donation, gift.id).receipt_sent_at is not None
    (lifted,) = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "receipt.unflagged")).all()
    assert lifted.target == f"donation {gift.id}" and "mailed to the address" in lifted.details_dict["why"]
    assert "back@example.org" not in lifted.details


def test_an_address_given_by_the_mailed_survey_sends_the_refused_receipt_again(app, campaign, client):
    """A $100 donor's mailbox refused the receipt five times; later it takes the address survey,
    and the donor answers it through the link in it. The answer proves the address takes our mail,
    as a sign-in by link does: the flag goes, in the answer's own commit, and the receipt goes out.
    A refused answer (no city) keeps nothing, the lift neither."""
    from filmfund.fulfil import fulfilment
    from tests.fulfil.test_survey import ADDRESS

    gift = _flag_after_every_refusal(app, "survey@example.org", amount=10000)
    link = re.sub(r"^https?://[^/]+", "", fulfilment.survey_link(find_user("survey@example.org")))
    with refusing_server(app) as sink:
        token = CSRF_RE.search(client.get(link).get_data(as_text=True)).group(1)
        refused = client.post(link, data={"csrf_token": token, "form": "address", **ADDRESS, "city": ""})
        assert refused.status_code == 400
        db.session.expire_all()
        assert receipts.RECEIPT_REFUSED_FLAG in db.session.get(Donation, gift.id).flags.split(",")
        answered = client.post(link, data={"csrf_token": token, "form": "address", **ADDRESS})
        assert answered.status_code == 200 and 'id="survey-done"' in answered.get_data(as_text=True)
        db.session.expire_all()
        assert db.session.get(Donation, gift.id).flags == ""
        run_worker(app)  # the receipt's send, queued by the answer's commit
    assert [e.rcpt_tos for e in sink.envelopes if b"Your receipt" in e.content] == [["survey@example.org"]]
    (lifted,) = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "receipt.unflagged")).all()
    assert "survey" in lifted.details_dict["why"] and "survey@example.org" not in lifted.details
