"""Fixtures of fulfilment: the rewards component's signed Stripe events and fake Stripe API."""
from __future__ import annotations

import pytest

from tests.rewards.conftest import FakeStripe, Stripe


@pytest.fixture
def stripe_events(app, client):
    return Stripe(app, client)


@pytest.fixture
def fake_stripe(app):
    with FakeStripe() as fake:
        app.config.update(STRIPE_SECRET_KEY="sk_test_fake", STRIPE_TEST_MODE=False, STRIPE_API_BASE=fake.url)
        yield fake


@pytest.fixture
def outbox(app):
    """The mails written so far (SMTP is not configured in tests), newest last, parsed."""
    from email import policy
    from email.parser import BytesParser
    from pathlib import Path

    def _read():
        folder = Path(app.config["OUTBOX_DIR"])
        paths = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
        return [BytesParser(policy=policy.default).parse(p.open("rb")) for p in paths]

    return _read
