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
