"""Mail leaves through the outbox folder by default and through a real SMTP server when configured."""
import email
import socket
import threading
from email import policy

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


def _written():
    [path] = outbox_messages()
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


def test_header_injection_is_refused(app):
    with pytest.raises(ValueError):
        send_mail("donor@example.org\r\nBcc: victim@example.org", "Hi", "x")
    assert outbox_messages() == []
    # A subject is one line whatever it holds: the break is a space, and no header is added.
    send_mail("donor@example.org", "Hi\r\nBcc: victim@example.org", "x")
    msg = _written()
    assert msg["Subject"] == "Hi Bcc: victim@example.org" and msg["Bcc"] is None


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x0b", "\x0c", "\x85", "\n"])
def test_a_line_break_pasted_into_a_subject_never_stops_the_mail(app, sep):
    """A campaign's title goes into every receipt's subject: a line break pasted into it from a
    word processor must not make the mail library refuse every receipt (typed.one_line)."""
    send_mail("donor@example.org", f"Your receipt: Living with Dead Hearts:{sep}The Search", "x")
    assert _written()["Subject"] == "Your receipt: Living with Dead Hearts: The Search"


def test_the_date_is_utc_and_the_message_id_names_the_senders_domain(app):
    """-0000 says "the sender's zone is unknown" (RFC 5322, 3.3); a Message-ID on another domain
    than the sender's (filmfund.localhost) scores as spam with some receivers."""
    app.config["MAIL_FROM"] = "Living with Dead Hearts <crew@deadhearts.example>"
    send_mail("donor@example.org", "Hello", "x")
    msg = _written()
    assert str(msg["Date"]).endswith("+0000")
    assert str(msg["Message-ID"]).endswith("@deadhearts.example>")


def test_an_internationalized_senders_domain_names_message_ids_as_dns_has_it(app):
    from filmfund.mail import our_message_id, sender_domain

    app.config["MAIL_FROM"] = "心碎而活 <crew@例子.中国>"
    assert sender_domain() == "xn--fsqu00a.xn--fiqs8s"
    assert our_message_id("receipt.1") == "<receipt.1@xn--fsqu00a.xn--fiqs8s>"
    app.config["MAIL_FROM"] = "filmfund"  # no address at all: the former domain
    assert sender_domain() == "filmfund.localhost"


def test_nothing_is_mailed_to_an_erased_donors_placeholder(app, smtp_sink):
    """The one home of "nothing more is mailed, ever" (mail.send_mail): neither the outbox nor
    the relay gets a mail to the address an erasure put in the place of the donor's."""
    from filmfund.mail import ERASED_DOMAIN, mails_nobody

    placeholder = f"erased-0123abcd@{ERASED_DOMAIN}"
    assert mails_nobody(placeholder) and mails_nobody(placeholder.upper())
    assert not mails_nobody("erased@example.org") and not mails_nobody("mei@invalid.example.org")
    assert send_mail(placeholder, "Your receipt", "x") is None
    assert outbox_messages() == []
    controller, sink = smtp_sink
    app.config["SMTP_URL"] = f"smtp://{controller.hostname}:{controller.port}"
    assert send_mail(placeholder, "Your question has been answered", "x") is None
    send_mail("donor@example.org", "Receipt", "x")
    assert [env.rcpt_tos for env in sink.messages] == [["donor@example.org"]]
