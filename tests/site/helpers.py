"""Helpers shared by the page tests (site, admin, auth)."""
from __future__ import annotations

import re

from filmfund.extensions import db
from tests.helpers import make_pledge

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/") -> str:
    """The CSRF token of a form on `path` (the session cookie that goes with it stays in the client)."""
    html = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


ONCE_RE = re.compile(r'name="once" value="([^"]+)"')


def form_tokens(client, path: str) -> dict[str, str]:
    """What a form on `path` carries besides what is typed, as a browser sends it: its CSRF token,
    and its one-time token where it has one (filmfund/once.py: a form sent without it is refused)."""
    html = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, f"no CSRF token on {path}"
    once = ONCE_RE.search(html)
    return {"csrf_token": match.group(1), **({"once": once.group(1)} if once else {})}


def pay(amount: int, email: str, *, credit_name: str | None = None, anonymous: bool = False,
        rewards_opt_out: bool = False, outcome: str = "paid"):
    """A pledge paid through the test-mode checkout (the same webhook path as real payments)."""
    from filmfund.rewards import pledges
    from filmfund.rewards.webhooks import complete_test_checkout

    pledge = make_pledge(amount=amount, email=email, credit_name=credit_name, anonymous=anonymous,
                                    rewards_opt_out=rewards_opt_out)
    complete_test_checkout(pledge.id, outcome)
    db.session.expire_all()
    return pledges.get_pledge(pledge.id)


def pledge_count() -> int:
    import sqlalchemy as sa

    from filmfund.rewards.models import Pledge

    return db.session.scalar(sa.select(sa.func.count(Pledge.id)))


def mails_to(address: str) -> list[str]:
    """The text of every mail in the outbox folder addressed to `address`."""
    import email

    from filmfund.mail import outbox_messages

    out = []
    for path in outbox_messages():
        msg = email.message_from_bytes(path.read_bytes())
        if address in msg["To"]:
            part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
            out.append(part.get_content() if hasattr(part, "get_content") else part.get_payload(decode=True).decode())
    return out


def tag_by_id(html: str, element_id: str) -> str:
    """The opening tag of the field or message with this id."""
    match = re.search(rf'<(?:input|textarea|select|p)\b[^>]*\bid="{re.escape(element_id)}"[^>]*>', html)
    assert match, f"no #{element_id}"
    return match.group(0)


def assert_tied(html: str, field_id: str, error_id: str) -> None:
    """A refusal as a screen reader meets it: the field marked invalid, described by the message
    and focused; the message an alert, not focused itself."""
    field = tag_by_id(html, field_id)
    assert 'aria-invalid="true"' in field and f'aria-describedby="{error_id}"' in field and " autofocus" in field, field
    error = tag_by_id(html, error_id)
    assert 'role="alert"' in error and "autofocus" not in error and "tabindex" not in error, error
