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


def test_an_erased_donors_unsubscribe_link_is_an_unknown_one_and_changes_nothing(app, client):
    """Erasure stops every topic; a link mailed before it neither shows what is left of the donor
    nor turns any mail back on (issue 16)."""
    from filmfund.rewards import donor_data

    pay(1500, "fifteen@example.org")
    user = _user("fifteen@example.org")
    tokens = [mail_prefs.unsubscribe_token(user, topic) for topic in ("news", "updates-monthly", "reminders")]
    donor_data.erase_donor(user)
    db.session.commit()
    stopped = mail_prefs.opted_out(user.id)
    assert {"news", "updates-monthly", "reminders"} <= stopped

    for token in tokens:
        page = client.get(f"/unsubscribe/{token}")
        forged = client.get(f"/unsubscribe/{token[:-2]}xx")
        assert page.status_code == forged.status_code == 404
        # The same page as a forged link's (but for its own address): nothing says "erased".
        assert page.get_data(as_text=True).replace(token, "T") == \
            forged.get_data(as_text=True).replace(token[:-2] + "xx", "T")
        assert "erased" not in page.get_data(as_text=True)
        assert client.post(f"/unsubscribe/{token}", data={"resubscribe": "1"}).status_code == 404
        assert client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 404
        with pytest.raises(NotFoundError):
            mail_prefs.read_unsubscribe_token(token)
    db.session.expire_all()
    assert mail_prefs.opted_out(user.id) == stopped


def test_no_path_opts_an_erased_donor_in_again(app):
    from filmfund.rewards import donor_data

    pay(1500, "fifteen@example.org")
    user = _user("fifteen@example.org")
    donor_data.erase_donor(user)
    db.session.commit()
    stopped = mail_prefs.opted_out(user.id)
    assert {"news", "updates-monthly", "reminders"} <= stopped
    for topic in stopped:
        assert mail_prefs.opt_in(user.id, topic) is False  # what the account page and the API call
    db.session.commit()
    db.session.expire_all()
    assert mail_prefs.opted_out(user.id) == stopped


def test_declining_rewards_stops_the_news_whichever_way_it_is_declined(app):
    """The pledge form promises a donor who ticks "No rewards": nothing is sent to you except
    your receipt. The news stops when her rewards opt-out turns on: by her first gift, on her
    account page, or by confirming what a later gift asked. Opting in again does not send it
    back by itself (she asks for it on her account page)."""
    from filmfund.rewards import donors

    pay(1500, "first@example.org", rewards_opt_out=True)
    pay(1500, "settings@example.org")
    pay(1500, "later@example.org")
    assert mail_prefs.opted_out(_user("first@example.org").id) == {mail_prefs.NEWS}
    assert mail_prefs.opted_out(_user("settings@example.org").id) == set()

    donors.update_donor_settings(_user("settings@example.org"), via="account", rewards_opt_out=True)
    db.session.commit()
    assert mail_prefs.opted_out(_user("settings@example.org").id) == {mail_prefs.NEWS}
    via = db.session.scalar(sa.select(MailOptOut.via).where(MailOptOut.user_id == _user("settings@example.org").id))
    assert via == "no_rewards"

    later = pay(500, "later@example.org", rewards_opt_out=True)  # waits for the owner's confirmation
    assert mail_prefs.opted_out(_user("later@example.org").id) == set()
    from filmfund.rewards.models import Donation

    donation_id = db.session.scalar(sa.select(Donation.id).where(Donation.pledge_id == later.id))
    donors.confirm_settings_request(donors.confirmation_token(donors.pending_request_for(donation_id)))
    db.session.commit()
    assert mail_prefs.opted_out(_user("later@example.org").id) == {mail_prefs.NEWS}

    donors.update_donor_settings(_user("settings@example.org"), via="account", rewards_opt_out=False)
    db.session.commit()
    assert mail_prefs.opted_out(_user("settings@example.org").id) == {mail_prefs.NEWS}
