"""Receipts whose address the mail server refuses for good (550). The hourly sweep takes the
unsent receipts a batch at a time; it used to take them oldest first, so a batch of dead
addresses at the front was tried every hour and every receipt behind it waited for good. A
refusal is now a try of that receipt's (in the audit log), tried again after the others, and
after RECEIPT_MAX_REFUSALS the gift is flagged for the producers and left. Real SMTP servers
on loopback (aiosmtpd)."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from filmfund.audit import AuditEntry
from filmfund.auth.services import find_user
from filmfund.extensions import db
from filmfund.rewards import receipts
from filmfund.rewards.models import Donation
from tests.comms.conftest import free_port
from tests.comms.test_update_outage import refusing_server
from tests.site.helpers import pay


def _donation(email: str) -> Donation:
    return db.session.scalar(sa.select(Donation).where(Donation.user_id == find_user(email).id))


def _an_hour_later() -> None:
    """Every claim an hour older: the next sweep runs as the hourly one would."""
    for d in db.session.scalars(sa.select(Donation).where(Donation.receipt_claimed_at.is_not(None))):
        d.receipt_claimed_at -= timedelta(hours=1)
    db.session.commit()


def _pay_while_the_mail_server_is_down(app, *emails: str) -> None:
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"  # nobody listens: every receipt waits
    for email in emails:
        pay(1000, email)


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


def _flag_after_every_refusal(app, email: str) -> Donation:
    _pay_while_the_mail_server_is_down(app, email)
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
