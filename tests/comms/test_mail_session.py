"""A mailing keeps one SMTP connection (filmfund.mail.smtp_session); a dropped one fails one
message and the next message reconnects."""
from __future__ import annotations

import smtplib

import pytest
from aiosmtpd.controller import Controller

from filmfund.mail import send_mail, smtp_session
from tests.comms.conftest import free_port, wait_for


class PeerSink:
    def __init__(self):
        self.envelopes, self.peers = [], []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.peers.append(session.peer)
        return "250 OK"


def test_one_connection_for_a_mailing_and_a_fresh_one_after_a_drop(app):
    sink, port = PeerSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    try:
        with smtp_session():
            for i in range(3):
                send_mail(f"d{i}@example.org", "Update", "text")
            wait_for(sink, 3)
            assert len(set(sink.peers)) == 1  # one connection carried all three
            controller.stop()                 # the server goes away mid-mailing
            with pytest.raises((smtplib.SMTPException, OSError)):
                send_mail("lost@example.org", "Update", "text")
            controller = Controller(sink, hostname="127.0.0.1", port=port)
            controller.start()                # and comes back: the next message reconnects
            send_mail("d3@example.org", "Update", "text")
        wait_for(sink, 4)
        assert [e.rcpt_tos[0] for e in sink.envelopes] == [f"d{i}@example.org" for i in range(4)]
        assert len(set(sink.peers)) == 2
    finally:
        controller.stop()
