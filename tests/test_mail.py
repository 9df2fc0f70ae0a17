"""Mail leaves through the outbox folder by default and through a real SMTP server when configured."""
import email
import socket
import threading

import pytest
from aiosmtpd.controller import Controller

from filmfund.mail import outbox_messages, send_mail


class _Sink:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_sink():
    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, sink
    controller.stop()


def test_outbox_by_default(app):
    send_mail("donor@example.org", "Hello", "Body text")
    [path] = outbox_messages()
    msg = email.message_from_bytes(path.read_bytes())
    assert msg["To"] == "donor@example.org"
    assert msg["Subject"] == "Hello"
    assert "Body text" in msg.get_payload()


def test_smtp_when_configured(app, smtp_sink):
    controller, sink = smtp_sink
    app.config["SMTP_URL"] = f"smtp://{controller.hostname}:{controller.port}"
    send_mail("donor@example.org", "Receipt", "Thank you", html="<p>Thank you</p>")
    [env] = sink.messages  # send_mail returns once the server has accepted the message
    assert env.rcpt_tos == ["donor@example.org"]
    assert b"Receipt" in env.content
    assert outbox_messages() == []  # nothing left behind in the outbox


def test_header_injection_is_refused(app):
    with pytest.raises(ValueError):
        send_mail("donor@example.org", "Hi\r\nBcc: victim@example.org", "x")
    assert outbox_messages() == []
