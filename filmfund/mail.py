"""Outgoing mail: an outbox folder by default (producers can read it), SMTP when configured."""
from __future__ import annotations

import logging
import os
import smtplib
from contextlib import contextmanager
from contextvars import ContextVar
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import unquote, urlparse

from flask import Flask, current_app

log = logging.getLogger(__name__)


def build_message(to: str, subject: str, text: str, html: str | None = None,
                  headers: dict[str, str] | None = None, message_id: str | None = None) -> EmailMessage:
    """`message_id`: the same one for every sending of the same mail (a receipt sent again after
    a crash): the outbox keeps one copy, and mail programs show one message."""
    # EmailMessage refuses CR/LF in header values, so a crafted name or subject cannot add headers.
    msg = EmailMessage()
    msg["From"] = current_app.config["MAIL_FROM"]
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id or make_msgid(domain="filmfund.localhost")
    for name, value in (headers or {}).items():  # e.g. List-Unsubscribe (RFC 8058)
        msg[name] = value
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg


def send_mail(to: str, subject: str, text: str, html: str | None = None,
              headers: dict[str, str] | None = None, message_id: str | None = None) -> EmailMessage:
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
