"""An update's mailing when the mail server is down or refuses: an outage is the server's, and
must not use up the donors' tries (a quarter of an hour of it used to fail every donor's copy for
good); only a refusal of the donor's address or message counts. Real SMTP servers on loopback:
a port nobody listens on, and aiosmtpd answering 421 or 550."""
from __future__ import annotations

import smtplib
import socket
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from filmfund import mail
from filmfund.comms import updates
from filmfund.comms.models import DeliveryStatus, UpdateDelivery
from filmfund.db import utcnow
from filmfund.extensions import db
from tests.comms.conftest import free_port, wait_for
from tests.worker import run_worker


class RefusingSink:
    """Refuses some addresses at RCPT (550: no such user) and answers the first `closing`
    messages with "421 closing" (the server going down for maintenance); accepts the rest."""

    def __init__(self, refuse=(), closing: int = 0):
        self.refuse, self.closing = set(refuse), closing
        self.envelopes, self.tried = [], 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.tried += 1
        if self.tried <= self.closing:
            return "421 4.3.2 Service shutting down, try later"
        self.envelopes.append(envelope)
        return "250 OK"


@contextmanager
def refusing_server(app, refuse=(), closing: int = 0):
    sink = RefusingSink(refuse, closing)
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{controller.port}"
    try:
        yield sink
    finally:
        controller.stop()


def _rows():
    return [(r.status, r.attempts) for r in db.session.scalars(sa.select(UpdateDelivery).order_by(UpdateDelivery.id))]


def _publish(audience: str = "updates-monthly"):
    update = updates.create_update(title="Edit begins", body="Soon.", audience=audience)
    updates.publish_update(update.id)
    db.session.commit()  # its job is queued here
    return update


def test_an_outage_longer_than_every_try_loses_the_update_for_nobody(app, smtp, donor):
    donor(1500, "a@example.org")
    donor(1500, "b@example.org")
    smtp.envelopes.clear()  # the receipts
    working = app.config["SMTP_URL"]
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"  # the mail server is down
    update = _publish()

    run_worker(app)  # the publication's job: refused, so it asks huey for its next try
    for _ in range(updates.MAX_ATTEMPTS + 1):  # more tries than a donor has, all while it is down
        with pytest.raises(updates.DeliveryIncomplete):
            updates.deliver_update.call_local(update.id)
    assert _rows() == [(DeliveryStatus.QUEUED, 0)] * 2  # nothing counted: nothing was the donors'
    assert smtp.envelopes == []

    # The task's tries ran out during the outage; the server is back: the hourly sweep sees no
    # live job and queues the update again, and each donor gets it once.
    app.config["SMTP_URL"] = working
    assert updates.sweep_deliveries(now=utcnow() + timedelta(hours=1))["requeued_updates"] == 1
    db.session.commit()  # the new job is queued by the sweep's commit
    run_worker(app)
    wait_for(smtp, 2)
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["a@example.org", "b@example.org"]
    assert _rows() == [(DeliveryStatus.SENT, 1)] * 2
    run_worker(app)  # a late retry of the first job finds nothing to send
    assert len(smtp.envelopes) == 2


def test_a_421_stops_the_mailing_without_using_up_a_try(app, donor, monkeypatch):
    monkeypatch.setattr("filmfund.comms.updates.deliver_update", lambda update_id: None)  # tries by hand
    for i in range(3):
        donor(1500, f"d{i}@example.org")
    update = _publish()
    with refusing_server(app, closing=2) as sink:
        for _ in range(2):  # "421 closing" twice: each run stops at its first mail, counted for nobody
            assert updates.deliver_queued(update.id) == {"sent": 0, "retry": 0, "failed": 0, "skipped": 0,
                                                         "deferred": 1}
        assert sink.tried == 2 and _rows() == [(DeliveryStatus.QUEUED, 0)] * 3
        assert "421" in db.session.scalars(sa.select(UpdateDelivery.error).order_by(UpdateDelivery.id)).first()
        assert updates.deliver_queued(update.id)["sent"] == 3  # back in service
        wait_for(sink, 3)
    assert sorted(e.rcpt_tos[0] for e in sink.envelopes) == [f"d{i}@example.org" for i in range(3)]
    assert _rows() == [(DeliveryStatus.SENT, 1)] * 3


def test_a_refused_address_uses_up_its_own_tries_and_the_others_still_go(app, donor, monkeypatch):
    monkeypatch.setattr("filmfund.comms.updates.deliver_update", lambda update_id: None)
    donor(1500, "gone@example.org")
    donor(1500, "here@example.org")
    update = _publish()
    with refusing_server(app, refuse={"gone@example.org"}) as sink:
        first = updates.deliver_queued(update.id)
        assert (first["sent"], first["retry"], first["deferred"]) == (1, 1, 0)  # the mailing went on
        for _ in range(updates.MAX_ATTEMPTS - 1):
            updates.deliver_queued(update.id)
        wait_for(sink, 1)
    assert _rows() == [(DeliveryStatus.FAILED, updates.MAX_ATTEMPTS), (DeliveryStatus.SENT, 1)]
    assert [e.rcpt_tos for e in sink.envelopes] == [["here@example.org"]]


@pytest.mark.parametrize("exc, servers", [
    (ConnectionRefusedError(111, "Connection refused"), True),
    (socket.timeout("timed out"), True),
    (smtplib.SMTPConnectError(554, b"no service"), True),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), True),
    (smtplib.SMTPAuthenticationError(535, b"bad credentials"), True),  # a rotated password
    (smtplib.SMTPDataError(421, b"closing"), True),
    (smtplib.SMTPSenderRefused(451, b"try later", "crew@example.org"), True),
    (smtplib.SMTPRecipientsRefused({"a@example.org": (421, b"closing")}), True),
    (smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"no such user")}), False),
    (smtplib.SMTPDataError(554, b"message refused"), False),
    (smtplib.SMTPSenderRefused(552, b"message too big", "crew@example.org"), False),
    # Our sender refused (the default FILMFUND_MAIL_FROM on a real relay; probe ops, F3): every
    # mail alike, the installation's to mend, not this donor's.
    (smtplib.SMTPSenderRefused(553, b"5.7.1 Sender address rejected: not owned by user",
                               "noreply@filmfund.localhost"), True),
    (ValueError("a header Python refuses to write"), False),
])
def test_which_failures_are_the_servers(exc, servers):
    assert mail.servers_fault(exc) is servers
