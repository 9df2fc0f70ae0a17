"""Mail preferences: per-topic opt-outs and the one-click unsubscribe link (RFC 8058)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from filmfund.errors import NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.rewards import mail_prefs
from filmfund.rewards.models import MailOptOut
from tests.site.helpers import pay


def _user(email):
    from filmfund.auth.services import find_user

    return find_user(email)


def test_topics_follow_the_updates_rewards_held(app):
    pay(100, "one@example.org")
    pay(1500, "fifteen@example.org")
    pay(75000, "director@example.org")
    assert [t for t, _ in mail_prefs.topics_for(_user("one@example.org"))] == ["news", "reminders"]
    assert [t for t, _ in mail_prefs.topics_for(_user("fifteen@example.org"))] == [
        "news", "updates-monthly", "reminders"]
    assert [t for t, _ in mail_prefs.topics_for(_user("director@example.org"))] == [
        "news", "updates-monthly", "director-updates", "reminders"]
    assert dict(mail_prefs.topics_for(_user("fifteen@example.org")))["updates-monthly"] == \
        "Monthly production updates by email"


def test_opt_out_and_back_in_is_idempotent(app):
    pay(1500, "fifteen@example.org")
    user = _user("fifteen@example.org")
    assert mail_prefs.opt_out(user.id, "updates-monthly") is True
    assert mail_prefs.opt_out(user.id, "updates-monthly") is False
    assert mail_prefs.opt_out(user.id, "news") is True
    assert mail_prefs.opted_out(user.id) == {"updates-monthly", "news"}
    assert db.session.scalar(sa.select(sa.func.count(MailOptOut.id))) == 2
    assert mail_prefs.opt_in(user.id, "news") is True
    assert mail_prefs.opt_in(user.id, "news") is False
    assert mail_prefs.opted_out(user.id) == {"updates-monthly"}


@pytest.mark.parametrize("topic", ["", "receipts", "dvd", "stills", "x" * 100])
def test_unknown_or_transactional_topics_are_refused(app, topic):
    pay(100, "one@example.org")
    with pytest.raises(ValidationError):
        mail_prefs.opt_out(_user("one@example.org").id, topic)
    assert db.session.scalar(sa.select(sa.func.count(MailOptOut.id))) == 0


def test_one_click_post_unsubscribes_without_cookie_or_csrf(app, client):
    pay(1500, "fifteen@example.org")
    user = _user("fifteen@example.org")
    headers = mail_prefs.list_unsubscribe_headers(user, "updates-monthly")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"].strip("<>")
    path = url.split("://", 1)[1].split("/", 1)[1]
    # A link scanner's GET changes nothing; it shows a confirmation page.
    page = client.get("/" + path)
    assert page.status_code == 200 and "Stop sending" in page.get_data(as_text=True)
    assert mail_prefs.opted_out(user.id) == set()
    # What a mail client sends (RFC 8058 section 3.2): a bare POST with that one field.
    resp = client.post("/" + path, data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 200
    assert mail_prefs.opted_out(user.id) == {"updates-monthly"}
    assert client.post("/" + path, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # again: still fine
    assert db.session.scalar(sa.select(MailOptOut.via)) == "one-click"
    # Clicked by mistake: the page's button turns it back on.
    resp = client.post("/" + path, data={"resubscribe": "1"})
    assert resp.status_code == 200 and 'id="resubscribed"' in resp.get_data(as_text=True)
    assert mail_prefs.opted_out(user.id) == set()


def test_forged_or_altered_tokens_are_404(app, client):
    pay(1500, "fifteen@example.org")
    user = _user("fifteen@example.org")
    token = mail_prefs.unsubscribe_token(user, "news")
    for bad in (token[:-2] + "xx", "forged", token.replace(".", "")):
        assert client.post(f"/unsubscribe/{bad}", data={"List-Unsubscribe": "One-Click"}).status_code == 404
        assert client.get(f"/unsubscribe/{bad}").status_code == 404
    with pytest.raises(NotFoundError):
        mail_prefs.read_unsubscribe_token("nonsense")
    assert mail_prefs.opted_out(user.id) == set()


def test_tokens_are_per_user_and_topic(app):
    pay(1500, "a@example.org")
    pay(1500, "b@example.org")
    a, b = _user("a@example.org"), _user("b@example.org")
    assert mail_prefs.unsubscribe_token(a, "news") != mail_prefs.unsubscribe_token(b, "news")
    assert mail_prefs.unsubscribe_token(a, "news") != mail_prefs.unsubscribe_token(a, "reminders")
    mail_prefs.unsubscribe(mail_prefs.unsubscribe_token(a, "news"))
    assert mail_prefs.opted_out(a.id) == {"news"} and mail_prefs.opted_out(b.id) == set()
