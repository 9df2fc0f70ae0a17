"""Outgoing mail: an outbox folder by default (producers can read it), SMTP when configured.

The one home of "nothing more is mailed, ever" after a donor's erasure: the erasure puts an
address under ERASED_DOMAIN in the place of theirs (rewards/donor_data.erased_email), and
send_mail hands no such address to the outbox or to a relay, whichever use case asks (a receipt,
an update, an invitation, a notice, a link)."""
from __future__ import annotations

import logging
import os
import smtplib
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import unquote, urlparse

import idna
from flask import Flask, current_app

from filmfund.typed import one_line

log = logging.getLogger(__name__)

# Under the reserved .invalid (RFC 6761: no mail server ever takes it), so that even a copy of an
# erased donor's row read by another program mails nobody.
ERASED_DOMAIN = "erased.invalid"
# Message-IDs' domain when the sender's address gives none.
_FALLBACK_DOMAIN = "filmfund.localhost"


@dataclass(frozen=True)
class Letter:
    """A mail written and not yet sent (a notice composed in its use case's transaction, mailed
    after the commit): to whom, its subject, its text."""

    to: str
    subject: str
    text: str


def mails_nobody(address: str) -> bool:
    """True for the address an erased donor's was replaced with: nothing is mailed there, ever."""
    domain = parseaddr(address or "")[1].rpartition("@")[2].strip().rstrip(".").lower()
    return domain == ERASED_DOMAIN or domain.endswith("." + ERASED_DOMAIN)


def sender_domain() -> str:
    """The domain of FILMFUND_MAIL_FROM, as DNS has it: the right side of every Message-ID. A mail
    whose Message-ID names another domain than its sender's scores as spam with some receivers."""
    _local, at, domain = parseaddr(current_app.config["MAIL_FROM"] or "")[1].rpartition("@")
    domain = domain.strip().rstrip(".")
    if not at or not domain:
        return _FALLBACK_DOMAIN
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError:
            return _FALLBACK_DOMAIN
    return domain.lower()


def our_message_id(local_part: str) -> str:
    """A Message-ID of our own making (`<receipt.…@the sender's domain>`), for a mail that must
    keep one id however often it is sent."""
    return f"<{local_part}@{sender_domain()}>"


def build_message(to: str, subject: str, text: str, html: str | None = None,
                  headers: dict[str, str] | None = None, message_id: str | None = None) -> EmailMessage:
    """`message_id`: the same one for every sending of the same mail (a receipt sent again after
    a crash): the outbox keeps one copy, and mail programs show one message."""
    # EmailMessage refuses CR/LF in header values, so a crafted name or address cannot add headers.
    msg = EmailMessage()
    msg["From"] = current_app.config["MAIL_FROM"]
    msg["To"] = to
    # A subject is one line of text (typed.one_line): a line break pasted into a campaign's title
    # (U+2028, Word's U+000B) would make EmailMessage refuse the subject, and with it every receipt
    # that names the title, at every retry; a crafted subject adds no header either.
    msg["Subject"] = one_line(subject)
    # +0000: the time is UTC and known to be (RFC 5322's -0000 says the sender's zone is unknown).
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = message_id or make_msgid(domain=sender_domain())
    for name, value in (headers or {}).items():  # e.g. List-Unsubscribe (RFC 8058)
        msg[name] = value
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg


def send_mail(to: str, subject: str, text: str, html: str | None = None,
              headers: dict[str, str] | None = None, message_id: str | None = None) -> EmailMessage | None:
    """Send one mail (a relay, or the outbox folder); None, and nothing written anywhere, when `to`
    is an erased donor's placeholder (mails_nobody): the use case goes on as if it was sent."""
    if mails_nobody(to):
        log.info("a mail to an erased donor's placeholder was not sent")
        return None
    msg = build_message(to, subject, text, html, headers, message_id)
    url = current_app.config.get("SMTP_URL")
    if url:
        _send_smtp(url, msg)
    else:
        _write_outbox(msg)
    return msg


_session: ContextVar[dict | None] = ContextVar("filmfund_smtp_session", default=None)


@contextmanager
def smtp_session():
    """Within it, send_mail keeps one SMTP connection open for many messages (a mailing to many
    donors) instead of one connection per message. A dropped connection fails that message
    only; the next one reconnects."""
    state: dict = {"client": None}
    token = _session.set(state)
    try:
        yield
    finally:
        _session.reset(token)
        if state["client"] is not None:
            try:
                state["client"].quit()
            except (smtplib.SMTPException, OSError):
                pass


def _connect(url: str) -> smtplib.SMTP:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port
    if parsed.scheme == "smtps":
        client = smtplib.SMTP_SSL(host, port or 465, timeout=30)
    else:
        client = smtplib.SMTP(host, port or 25, timeout=30)
    try:
        if parsed.scheme == "smtp" and parsed.query == "starttls":
            client.starttls()
        if parsed.username:
            client.login(unquote(parsed.username), unquote(parsed.password or ""))
    except BaseException:
        client.close()
        raise
    return client


def _send_smtp(url: str, msg: EmailMessage) -> None:
    state = _session.get()
    if state is None:
        with _connect(url) as client:
            client.send_message(msg)
        return
    if state["client"] is None:
        state["client"] = _connect(url)
    try:
        state["client"].send_message(msg)
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException, OSError):
        client, state["client"] = state["client"], None  # start afresh with the next message
        try:
            client.close()
        except OSError:
            pass
        raise


def _write_outbox(msg: EmailMessage) -> Path:
    outbox = Path(current_app.config["OUTBOX_DIR"])
    outbox.mkdir(parents=True, exist_ok=True)
    name = msg["Message-ID"].strip("<>").replace("@", "_")
    path = outbox / f"{name}.eml"
    tmp = path.with_suffix(".tmp")
    # 0600: a mail may hold a live sign-in link (the folder is 0700 too)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(bytes(msg))
    tmp.replace(path)  # a reader never sees half a message
    return path


def outbox_messages() -> list[Path]:
    outbox = Path(current_app.config["OUTBOX_DIR"])
    return sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True)


def init_app(app: Flask) -> None:
    Path(app.config["OUTBOX_DIR"]).mkdir(parents=True, exist_ok=True)


# ---------------------------------------------------------------- whose fault a failed send is

def servers_fault(exc: BaseException) -> bool:
    """Did a send fail because of the mail server (down, refusing or dropping connections, timing
    out, "421 closing", a 4xx "try later", our login refused) rather than this message or this
    donor's address (a 5xx to this message, a refused recipient)? Only the second kind says
    anything about the donor, so only it may use up their tries (an update's MAX_ATTEMPTS, a survey's mails): a quarter of an hour of
    outage would otherwise fail the update for every donor at once, for good."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # smtplib raises it for a 421 to RCPT too (the server closing): that one is the server's
        return bool(exc.recipients) and all(code == 421 for code, _msg in exc.recipients.values())
    if isinstance(exc, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, smtplib.SMTPHeloError,
                        smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError)):
        return True
    if isinstance(exc, smtplib.SMTPSenderRefused) and exc.smtp_code != 552:
        # A refusal of our sender (FILMFUND_MAIL_FROM: "553 not owned by user") refuses every mail
        # alike: the installation's to mend, never a donor's try used up nor her address blamed.
        # (552 to MAIL FROM is this message's declared size.)
        return True
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code < 500  # 4xx (421 included): the server asks us to come back later
    # refused, reset, timed out, TLS failed, no login method in common; not a message we could not
    # even write (a bug, an address Python refuses): that one is this donor's
    return isinstance(exc, OSError)


REFUSAL_KINDS = ("address", "message", "unsendable")


def refusal_kind(exc: BaseException) -> str:
    """What a failed send that was not the server's fault (not servers_fault) was refused on, as a
    code the pages say in words (one of REFUSAL_KINDS): `address`, the server refused the recipient
    (no such mailbox, a full one, a blocked one: a 5xx to RCPT); `message`, it refused the message
    or its sender (a 5xx to MAIL or DATA: too large, taken for spam); `unsendable`, nothing reached
    a server (a message we could not write for this address)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "address"
    if isinstance(exc, smtplib.SMTPResponseException):
        return "message"
    return "unsendable"


def refused_for_good(exc: BaseException) -> bool:
    """The server answered this address or this message with a 5xx: sending it again later would
    be refused again. The donor's part of `servers_fault`'s rule, without a failure of ours (a
    message we could not even write), which no number of tries would mend either."""
    return isinstance(exc, (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException)) and not servers_fault(exc)
