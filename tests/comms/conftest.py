"""Fixtures of filmfund.comms: a real SMTP server on loopback, donors by tier, queued jobs."""
from __future__ import annotations

import email
import io
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller

from filmfund.auth.services import find_user
from tests.site.helpers import pay
from tests.waiting import wait_until


class Sink:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self):
        return [email.message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(app):
    """An aiosmtpd server on loopback that the app sends through."""
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{controller.port}"
    yield sink
    controller.stop()


def wait_for(sink: Sink, n: int, timeout: float = 5.0) -> None:
    """Until the mail server holds n messages (fails at the deadline, never returns short)."""
    wait_until(lambda: len(sink.envelopes) >= n, timeout=timeout, message=lambda: f"{n} mails, got {len(sink.envelopes)}")


@pytest.fixture
def donor(app):
    """donor(amount, email) -> User, paid through the test checkout (ledger, entitlements)."""

    def _make(amount: int, email_: str):
        pay(amount, email_)
        return find_user(email_)

    return _make


@pytest.fixture
def image_asset(app):
    """A ready image asset of the media library (made directly, no ffmpeg)."""
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import Asset, AssetKind, AssetState, Rendition, RenditionKind, Source

    def _make(title: str = "Shenzhen, day 12", payload: bytes = b"\x89PNG\r\n\x1a\n" + b"x" * 64):
        store = services.storage()
        src = store.put_stream(io.BytesIO(payload + b"source"), ".png")
        img = store.put_stream(io.BytesIO(payload), ".png")
        asset = Asset(title=title, sha256=src.sha256, size=src.size, kind=AssetKind.IMAGE, state=AssetState.READY)
        asset.sources.append(Source(position=0, original_name="still.png", sha256=src.sha256, size=src.size,
                                    storage_key=src.key))
        asset.renditions.append(Rendition(kind=RenditionKind.IMAGE, storage_key=img.key, sha256=img.sha256,
                                          size=img.size, content_type="image/png"))
        db.session.add(asset)
        db.session.commit()
        return asset

    return _make
