"""Questions to the interview subjects ($250), from payment to the answer read in private."""
from __future__ import annotations

import re

import sqlalchemy as sa

from filmfund import jobs
from filmfund.comms import questions
from filmfund.comms.models import Question
from filmfund.extensions import db
from filmfund.rewards.models import Entitlement, EntitlementStatus, Reward
from tests.comms.conftest import wait_for
from tests.site.helpers import csrf_token


def _ask(client, body):
    return client.post("/account/questions", data={"csrf_token": csrf_token(client, "/account/questions"),
                                                   "body": body})


def _post(client, path, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, "/admin/questions"), **data})


def _asked_and_assigned(app, asker, producer, login_as):
    """The asker's question, approved and assigned to Mrs. Li by a producer: (the asker's client,
    the producer's, the question)."""
    me = login_as(app.test_client(), asker)
    assert _ask(me, "Where did you look first?").status_code == 303
    q = db.session.scalar(sa.select(Question).where(Question.user_id == asker.id))
    staff = login_as(app.test_client(), producer)
    _post(staff, "/admin/questions/subjects", name="Mrs. Li", language="zh")
    _post(staff, f"/admin/questions/{q.id}/moderate", decision="approve")
    _post(staff, f"/admin/questions/{q.id}/assign", subject=questions.subjects()[0].id)
    return me, staff, q


def test_question_asked_moderated_answered_translated_and_read_privately(app, donor, producer, login_as, smtp,
                                                                         image_asset):
    asker = donor(25000, "asker@example.org")      # $250: questions
    other = donor(25000, "other@example.org")
    small = donor(10000, "small@example.org")      # $100: no questions
    smtp.envelopes.clear()  # the receipts
    me = login_as(app.test_client(), asker)
    assert "3</strong> left" in me.get("/account/questions").get_data(as_text=True)
    assert _ask(me, "Where did you look for your son first?").status_code == 303
    for extra in ("Second?", "Third?"):
        assert _ask(me, extra).status_code == 303
    resp = _ask(me, "A fourth one")
    assert resp.status_code == 409 and "asked your 3 questions" in resp.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Question.id))) == 3
    assert _ask(login_as(app.test_client(), small), "May I?").status_code == 403
    q = db.session.scalar(sa.select(Question).order_by(Question.id))

    staff = login_as(app.test_client(), producer)
    assert _post(staff, "/admin/questions/subjects", name="Mrs. Li", language="zh").status_code == 303
    subject = questions.subjects()[0]
    assert _post(staff, f"/admin/questions/{q.id}/assign", subject=subject.id).status_code == 409  # not yet approved
    rejected = db.session.scalars(sa.select(Question).order_by(Question.id)).all()[2]
    assert _post(staff, f"/admin/questions/{rejected.id}/moderate", decision="reject").status_code == 400  # why?
    assert _post(staff, f"/admin/questions/{rejected.id}/moderate", decision="reject",
                 note="Already covered in the film").status_code == 303
    assert "1</strong> left" in me.get("/account/questions").get_data(as_text=True)  # a rejected one is given back
    assert _post(staff, f"/admin/questions/{q.id}/moderate", decision="approve").status_code == 303
    assert _post(staff, f"/admin/questions/{q.id}/assign", subject=subject.id).status_code == 303
    clip = image_asset("Mrs. Li answers")
    # A draft translation: not delivered yet.
    resp = _post(staff, f"/admin/questions/{q.id}/answer", original="我先去了火车站。", original_status="final",
                 english="I went to the train station", english_status="draft", clip=clip.public_id)
    assert resp.status_code == 303
    db.session.expire_all()
    assert (q.state, q.original_status, q.english_status) == ("assigned", "final", "draft")
    assert "train station" not in me.get(f"/account/questions/{q.id}").get_data(as_text=True)
    jobs.run_burst()
    assert smtp.envelopes == []
    # The translation is final: the answer is delivered and the donor told, once.
    _post(staff, f"/admin/questions/{q.id}/answer", original="我先去了火车站。", original_status="final",
          english="I went to the train station first.", english_status="final", clip=clip.public_id)
    _post(staff, f"/admin/questions/{q.id}/answer", original="我先去了火车站。", original_status="final",
          english="I went to the train station first.", english_status="final", clip=clip.public_id)
    jobs.run_burst()
    wait_for(smtp, 1)
    [msg] = smtp.messages()
    assert msg["To"] == "asker@example.org" and msg["Subject"] == "Your question has been answered"
    body = msg.get_body(("plain",)).get_content()
    assert "train station" not in body  # the answer is read on the site, privately
    link = re.search(r"https?://\S+/account/questions/\d+", body).group(0)
    page = me.get("/" + link.split("://", 1)[1].split("/", 1)[1])
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "I went to the train station first." in html and "我先去了火车站。" in html and "Mrs. Li" in html
    assert me.get(f"/account/questions/{q.id}/clip").status_code == 200
    # Nobody else reads it, and the asker no longer does once the reward is revoked (a refund).
    other_client = login_as(app.test_client(), other)
    assert other_client.get(f"/account/questions/{q.id}").status_code == 404
    assert other_client.get(f"/account/questions/{q.id}/clip").status_code == 404
    ent = db.session.scalar(sa.select(Entitlement).join(Reward).where(
        Reward.key == "interview-questions", Entitlement.user_id == asker.id))
    ent.status = EntitlementStatus.REVOKED
    db.session.commit()
    assert me.get(f"/account/questions/{q.id}").status_code == 404
    assert _ask(me, "One more?").status_code == 403


def test_answer_input_is_checked(app, donor):
    asker = donor(25000, "asker@example.org")
    q = questions.submit_question(asker, "Why?")
    import pytest

    from filmfund.errors import ConflictError, ValidationError

    with pytest.raises(ConflictError):
        questions.record_answer(q.id, english="x", english_status="final")  # not assigned yet
    questions.moderate(q.id, "approve")
    subject = questions.add_subject("Mr. Wang", "zh")
    questions.assign(q.id, subject.id)
    with pytest.raises(ValidationError) as refused:
        questions.record_answer(q.id, english="", english_status="final")
    # the field first (the page ties the message to its box), then the text named in words
    assert refused.value.message == "english: the English translation is marked final, so it cannot be empty."
    with pytest.raises(ValidationError) as refused:
        questions.record_answer(q.id, original="字" * (questions.ANSWER_MAX + 1))
    assert refused.value.message == ("original: the answer in the original language can be up to "
                                     f"{questions.ANSWER_MAX} characters.")
    with pytest.raises(ValidationError):
        questions.record_answer(q.id, english="x", english_status="nonsense")
    with pytest.raises(ValidationError):
        questions.record_answer(q.id, english="x", english_status="final", clip="0" * 32)
    assert questions.record_answer(q.id, original="原文", english="Text", english_status="final").state == "assigned"
    # the original given without a status is a draft: not delivered until it is final
    done = questions.record_answer(q.id, original="原文", original_status="final", english="Text",
                                   english_status="final")
    assert done.state == "answered" and done.answer_language == "zh"


def test_account_page_shows_where_each_personal_reward_stands(app, donor, login_as):
    from datetime import timedelta

    from filmfund.comms import arrangements, invitations
    from filmfund.db import utcnow

    big = donor(200000, "big@example.org")   # every tier: questions, invitations, the thread
    me = login_as(app.test_client(), big)
    html = me.get("/account").get_data(as_text=True)
    assert 'href="/account/questions"' in html and 'href="/account/requests"' in html
    assert "Invitation to come" in html and "Answer the invitation" not in html  # no time proposed yet
    exp = invitations.create_experience(reward_key="dinner-invitation", title="Dinner with the crew")
    slot = invitations.add_slot(exp.id, utcnow() + timedelta(days=30))
    html = me.get("/account").get_data(as_text=True)
    assert 'href="/account/invitations"' in html and "Answer the invitation (RSVP)" in html
    [inv] = [i for i in invitations.my_invitations(big) if i.experience_id == exp.id]
    invitations.rsvp(big, inv.id, "accept", slot.id)
    questions.submit_question(big, "Why this film?")
    arrangements.post_as_donor(big, "Hello")
    db.session.commit()
    html = me.get("/account").get_data(as_text=True)
    assert "Answer the invitation" not in html and "Coming" in html
    assert "Ask your questions" not in html and "0 of 1 answered" in html


def test_two_submits_at_once_cannot_pass_the_limit(app, donor):
    import threading

    asker = donor(25000, "asker@example.org")
    app.config["QUESTIONS_PER_DONOR"] = 1
    barrier, outcomes = threading.Barrier(4), []

    def submit(n):
        with app.app_context():
            from filmfund.auth.services import find_user
            from filmfund.errors import ConflictError

            user = find_user("asker@example.org")
            barrier.wait()
            try:
                questions.submit_question(user, f"Question {n}")
                db.session.commit()  # the test is the caller
                outcomes.append("ok")
            except ConflictError:
                outcomes.append("limit")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["limit", "limit", "limit", "ok"]
    assert db.session.scalar(sa.select(sa.func.count(Question.id)).where(Question.user_id == asker.id)) == 1


def test_a_clip_without_a_donor_copy_is_refused(app, donor, image_asset):
    import pytest

    from filmfund.errors import ValidationError
    from filmfund.media.models import RenditionKind

    asker = donor(25000, "asker@example.org")
    q = questions.submit_question(asker, "Why?")
    questions.moderate(q.id, "approve")
    questions.assign(q.id, questions.add_subject("Mr. Wang", "zh").id)
    clip = image_asset("Raw answer")
    for r in list(clip.renditions):
        if r.kind == RenditionKind.IMAGE:
            clip.renditions.remove(r)
    db.session.commit()
    with pytest.raises(ValidationError, match="no donor copy"):
        questions.record_answer(q.id, english="x", english_status="final", clip=clip.public_id)


def test_the_answer_form_picks_a_clip_by_title_poster_and_date(app, producer, login_as, image_asset):
    """No typed 32-character id: the ready clips and stills are listed with their title, picture
    and date, and the saved one comes back chosen."""
    import re

    from filmfund.comms.models import Question

    first = image_asset("Mrs. Li answers")
    image_asset("Night market", payload=b"\x89PNG\r\n\x1a\n" + b"y" * 64)
    staff = login_as(app.test_client(), producer)
    from tests.site.helpers import pay
    from filmfund.auth.services import find_user

    pay(75000, "asker@example.org")
    donor_user = find_user("asker@example.org")
    questions.submit_question(donor_user, "Where did you go first?")
    db.session.commit()
    q = db.session.scalar(sa.select(Question).order_by(Question.id.desc()))
    assert _post(staff, "/admin/questions/subjects", name="Mrs. Li", language="zh").status_code == 303
    assert _post(staff, f"/admin/questions/{q.id}/moderate", decision="approve").status_code == 303
    assert _post(staff, f"/admin/questions/{q.id}/assign", subject=questions.subjects()[0].id).status_code == 303
    page = staff.get(f"/admin/questions/{q.id}").get_data(as_text=True)
    picker = re.search(r'<fieldset class="clip-picker".*?</fieldset>', page, re.S).group(0)
    assert 'name="clip" value=""' in picker and "No clip" in picker
    assert f'value="{first.public_id}"' in picker and "Mrs. Li answers" in picker and "Night market" in picker
    assert "added " in picker and "UTC" in picker and f"/footage/{first.public_id}/" in picker
    assert 'type="text" id="ans-clip"' not in page
    assert _post(staff, f"/admin/questions/{q.id}/answer", english="First the station.", english_status="draft",
                 clip=first.public_id).status_code == 303
    page = staff.get(f"/admin/questions/{q.id}").get_data(as_text=True)
    assert re.search(rf'value="{first.public_id}" checked', page)


def test_no_answer_notice_for_a_donor_who_no_longer_holds_the_reward(app, donor, producer, login_as, smtp,
                                                                   image_asset):
    """Probe: the notice of an answer went to a donor whose questions reward was revoked since they
    asked; it names the interview subject, and its link answers "no such question"."""
    asker = donor(25000, "asker@example.org")
    smtp.envelopes.clear()  # the receipt
    me, staff, q = _asked_and_assigned(app, asker, producer, login_as)
    db.session.execute(sa.update(Entitlement).where(Entitlement.user_id == asker.id).values(
        status=EntitlementStatus.REVOKED))  # refunded below the tier since
    db.session.commit()
    _post(staff, f"/admin/questions/{q.id}/answer", original="我先去了火车站。", original_status="final",
          english="I went to the train station first.", english_status="final",
          clip=image_asset("Mrs. Li answers").public_id)
    assert jobs.run_burst() >= 1
    assert smtp.messages() == []
    db.session.expire_all()
    assert db.session.get(Question, q.id).notified_at is None  # the producers' page does not say "told"


def test_the_question_limit_is_said_in_the_donors_language(app, donor, login_as):
    asker = donor(25000, "asker@example.org")
    me = login_as(app.test_client(), asker)
    for n in range(3):
        assert _ask(me, f"Question {n}?").status_code == 303
    resp = me.post("/account/questions?lang=zh-Hans", data={
        "csrf_token": csrf_token(me, "/account/questions?lang=zh-Hans"), "body": "还有一个问题？"})
    assert resp.status_code == 409 and "您的 3 个提问名额已经用完了" in resp.get_data(as_text=True)


def _badges(html: str) -> list[str]:
    asked = html.split('id="asked-heading"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'<span class="badge [^"]*">([^<]*)</span>', asked)


def _status(html: str) -> str:
    return re.search(r'<p id="question-status">([^<]*)</p>', html).group(1)


def test_every_question_state_has_its_words_in_one_place(app):
    """The list's badge, the question's page and the readable export ask comms.questions for a
    state's words (the templates wrote English literals, in the Chinese page too)."""
    from filmfund.comms.models import QuestionState
    from filmfund.rewards import donor_data

    assert set(questions.STATE_WORDS) == set(QuestionState)
    assert donor_data._CODE_WORDS[("questions", "state")] is questions.STATE_WORDS


def test_a_questions_state_reads_in_the_donors_language(app, donor, login_as):
    asker = donor(25000, "asker@example.org")
    me = login_as(app.test_client(), asker)
    for body in ("您好，请问你们找到孩子了吗？", "您现在还在找吗？"):
        assert _ask(me, body).status_code == 303
    first, second = db.session.scalars(sa.select(Question).order_by(Question.id)).all()
    listing, page = "/account/questions?lang=zh-Hans", f"/account/questions/{first.id}"
    assert _badges(me.get(listing).get_data(as_text=True)) == ["等待制片方阅读", "等待制片方阅读"]
    assert _status(me.get(page).get_data(as_text=True)) == "制片方很快就会阅读您的问题。"

    questions.moderate(first.id, "approve")
    questions.moderate(second.id, "reject", "这个问题涉及他人隐私。")
    db.session.commit()
    assert _badges(me.get(listing).get_data(as_text=True)) == ["未能转达", "已采纳"]
    assert _status(me.get(page).get_data(as_text=True)) == "问题已采纳，会转给片中的一位受访者。"
    assert _status(me.get(f"/account/questions/{second.id}").get_data(as_text=True)) == \
        "制片方无法转达这个问题：这个问题涉及他人隐私。"

    subject = questions.add_subject("李女士", "zh")
    questions.assign(first.id, subject.id)
    db.session.commit()
    assert _badges(me.get(listing).get_data(as_text=True))[1] == "正在回答"
    assert _status(me.get(page).get_data(as_text=True)) == "李女士 正在回答，译文随后附上。"
    # the same words in English
    assert _badges(me.get("/account/questions?lang=en").get_data(as_text=True)) == ["not asked", "being answered"]
    assert _status(me.get(page).get_data(as_text=True)) == "It is being answered by 李女士; the translation follows."


def test_erasure_takes_the_donors_questions_and_thread_and_keeps_the_subjects_answer(app, donor, producer, login_as):
    """The erase page promises the donor's data is gone: their questions (which can name a lost
    child, a town, a telephone number) and their private thread with the producers go too; an
    answered (or assigned) question keeps the subject's answer (the film's material) without the
    donor's words."""
    from filmfund.comms import arrangements
    from filmfund.comms.models import QuestionState, RequestMessage
    from filmfund.rewards import donor_data

    asker = donor(200000, "asker@example.org")  # $2000: questions and the request thread
    other = donor(25000, "other@example.org")
    me = login_as(app.test_client(), asker)
    _ask(me, "My son Xiao Ming, Chengdu, phone 138-0000-0000: have you seen him?")
    _ask(me, "Where did you look first?")
    _ask(login_as(app.test_client(), other), "A question of someone else")
    first, second, kept = db.session.scalars(sa.select(Question).order_by(Question.id)).all()
    first.state, first.answer_english, first.moderation_note = QuestionState.ANSWERED, "At the station.", "ok"
    arrangements.post_as_donor(asker, "Dinner in Chengdu, my address is 5 Road")
    arrangements.post_as_producer(producer, asker.public_id, "Yes, on the 5th")
    db.session.commit()

    donor_data.erase_donor(asker)
    db.session.commit()
    db.session.expire_all()
    left = db.session.scalars(sa.select(Question).order_by(Question.id)).all()
    assert [q.id for q in left] == [first.id, kept.id]  # the one no subject was given is gone
    assert (left[0].body, left[0].moderation_note, left[0].answer_english) == ("", "", "At the station.")
    assert left[1].body == "A question of someone else"
    assert db.session.scalar(sa.select(sa.func.count(RequestMessage.id))) == 0

    staff = login_as(app.test_client(), producer)
    for page in ("/admin/questions", f"/admin/questions/{first.id}"):
        html = staff.get(page).get_data(as_text=True)
        assert "Xiao Ming" not in html and "erased at the donor" in html, page


def test_an_answer_never_hands_out_the_early_access_film_or_a_higher_tier(app, donor, producer, login_as,
                                                                         image_asset):
    """Probe (tiers, finding 1): the answer's clip list offered every asset; the early-access
    film, picked there, went to a $250 donor as a plain file, and stayed one after the screening
    closed. The library's rule (media.library.withheld_from) now decides what a donor may be
    handed: the picker lists such an asset without offering it, saving refuses it, and a clip
    published since to a reward the donor does not hold is no longer served."""
    import re

    from filmfund.media import library, publishing

    asker = donor(25000, "asker@example.org")      # $250: stills and clips, not early access
    small = donor(100, "small@example.org")       # $1: wallpapers only
    film = image_asset("The finished film")
    clips = image_asset("Mrs. Li answers", payload=b"\x89PNG\r\n\x1a\n" + b"y" * 64)
    publishing.publish(film, "early-access")
    publishing.publish(clips, "video-clips")
    db.session.commit()
    assert library.withheld_from(asker, film) == "screening"
    assert library.withheld_from(asker, clips) is None
    assert library.withheld_from(small, clips) == "reward"

    me, staff, q = _asked_and_assigned(app, asker, producer, login_as)
    picker = re.search(r'<fieldset class="clip-picker".*?</fieldset>',
                       staff.get(f"/admin/questions/{q.id}").get_data(as_text=True), re.S).group(0)
    assert re.search(rf'value="{film.public_id}" *disabled', picker)
    assert "Not for this donor: the early-access film" in picker
    assert not re.search(rf'value="{clips.public_id}" *disabled', picker)

    resp = _post(staff, f"/admin/questions/{q.id}/answer", english="At the station.", english_status="final",
                 clip=film.public_id)
    assert resp.status_code == 400 and "cannot go to this donor" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Question, q.id).answer_asset_id is None  # nothing half-written
    assert _post(staff, f"/admin/questions/{q.id}/answer", english="At the station.", english_status="final",
                 clip=clips.public_id).status_code == 303
    assert me.get(f"/account/questions/{q.id}/clip").status_code == 200

    # The same clip is moved to the early-access reward later: it is no longer served.
    publishing.unpublish(clips, "video-clips")
    publishing.publish(clips, "early-access")
    db.session.commit()
    assert me.get(f"/account/questions/{q.id}/clip").status_code == 404
