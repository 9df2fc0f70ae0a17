"""What the questions pages tell a donor: the true reason she may not ask, and the original
language of an answer by its name, never its code."""
from __future__ import annotations

from filmfund.comms import questions
from filmfund.extensions import db
from filmfund.rewards import holdings
from filmfund.rewards.campaign import current_campaign
from tests.site.helpers import csrf_token, pay

TIER_SENTENCE = "Questions to the interview subjects come with the $250 tier."


def _settings(client, **data):
    return client.post("/account/settings", data={"csrf_token": csrf_token(client, "/account"), **data})


def _ask(client, body):
    return client.post("/account/questions", data={"csrf_token": csrf_token(client, "/account/questions"),
                                                   "body": body})


def test_a_250_donor_who_declined_rewards_is_told_so_not_sent_to_the_tier(app, donor, login_as):
    asker = donor(25000, "asker@example.org")
    me = login_as(app.test_client(), asker)
    assert _settings(me, form="rewards", rewards="off", confirm="1").status_code in (200, 303)
    db.session.expire_all()
    assert holdings.why_not_held(asker.id, questions.reward_key(), current_campaign().id) == holdings.DECLINED

    html = me.get("/account/questions").get_data(as_text=True)
    assert TIER_SENTENCE not in html
    assert "You chose no rewards, so you cannot ask the interview subjects questions for now." in html
    assert 'href="/account#rewards-setting"' in html
    refused = _ask(me, "May I still ask?")
    assert refused.status_code == 403 and "You chose no rewards" in refused.get_data(as_text=True)
    assert "250 美元档" not in me.get("/account/questions?lang=zh-Hans").get_data(as_text=True)

    # Back in from her settings: she may ask again.
    _settings(me, form="rewards", rewards="on")
    db.session.expire_all()
    assert 'name="body"' in me.get("/account/questions?lang=en").get_data(as_text=True)
    assert _ask(me, "Where did you look first?").status_code == 303


def test_a_donor_below_the_tier_is_told_the_tier_whether_or_not_she_declined_rewards(app, donor, login_as):
    small = donor(10000, "small@example.org")
    html = login_as(app.test_client(), small).get("/account/questions").get_data(as_text=True)
    assert TIER_SENTENCE in html and "You chose no rewards" not in html
    pay(10000, "declined@example.org", rewards_opt_out=True)  # declined, but $100 never held questions
    from filmfund.auth.services import find_user

    declined = find_user("declined@example.org")
    assert holdings.why_not_held(declined.id, questions.reward_key(), current_campaign().id) == holdings.NOT_REACHED
    html = login_as(app.test_client(), declined).get("/account/questions").get_data(as_text=True)
    assert TIER_SENTENCE in html and "You chose no rewards" not in html


def test_the_answers_original_language_is_named_in_the_readers_language(app, donor, login_as):
    asker = donor(25000, "asker@example.org")
    q = questions.submit_question(asker, "Where did you look first?")
    questions.moderate(q.id, "approve")
    questions.assign(q.id, questions.add_subject("Mrs. Li", "zh-Hans").id)
    questions.record_answer(q.id, original="我先去了火车站。", original_status="final",
                            english="I went to the train station first.", english_status="final")
    db.session.commit()
    me = login_as(app.test_client(), asker)
    english = me.get(f"/account/questions/{q.id}?lang=en").get_data(as_text=True)
    assert "In the original (Chinese)" in english and "zh-Hans)" not in english
    chinese = me.get(f"/account/questions/{q.id}?lang=zh-Hans").get_data(as_text=True)
    assert "原文（中文）" in chinese and "（zh-Hans）" not in chinese
    assert 'lang="zh-Hans">我先去了火车站。' in chinese  # the text itself is still marked by its tag
