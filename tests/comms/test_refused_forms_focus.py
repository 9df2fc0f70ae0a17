"""Refused donor questions, requests and RSVPs, and refused producers' steps on a question or a
thread, come back with the focus where the person mends them (a11y probe F3): the field the
refusal names marked invalid, described by the message (its id) and focused; a refusal about no
field focuses the message itself."""
from __future__ import annotations

import re

import sqlalchemy as sa

from filmfund.comms.models import Question
from filmfund.extensions import db
from tests.comms.test_invitations import _guest_and_invitation
from tests.site.helpers import assert_tied, csrf_token, tag_by_id


def _tied(html: str, field_id: str, error_id: str) -> None:
    """The field tied to its message (assert_tied), and nothing else focused."""
    assert_tied(html, field_id, error_id)
    assert html.count(" autofocus") == 1


def _focused_itself(html: str, element_id: str) -> None:
    tag = tag_by_id(html, element_id)
    assert 'tabindex="-1"' in tag and " autofocus" in tag, tag
    assert html.count(" autofocus") == 1 and 'aria-invalid="true"' not in html


def test_a_refused_question_ties_its_message_to_the_box(app, donor, login_as):
    me = login_as(app.test_client(), donor(25000, "asker@example.org"))
    resp = me.post("/account/questions", data={"csrf_token": csrf_token(me, "/account/questions"), "body": "   "})
    assert resp.status_code == 400
    _tied(resp.get_data(as_text=True), "question-body", "question-error")
    app.config["QUESTIONS_PER_DONOR"] = 0  # the limit reached: about no field, the box gone
    resp = me.post("/account/questions", data={"csrf_token": csrf_token(me, "/account/questions"), "body": "Why?"})
    assert resp.status_code == 409
    _focused_itself(resp.get_data(as_text=True), "question-error")


def test_a_question_from_a_donor_without_the_reward_focuses_the_refusal(app, donor, login_as):
    me = login_as(app.test_client(), donor(10000, "small@example.org"))
    resp = me.post("/account/questions", data={"csrf_token": csrf_token(me, "/account/questions"), "body": "May I?"})
    assert resp.status_code == 403
    _focused_itself(resp.get_data(as_text=True), "questions-refusal")


def test_a_refused_request_ties_its_message_to_the_box(app, donor, login_as):
    me = login_as(app.test_client(), donor(200000, "big@example.org"))
    resp = me.post("/account/requests", data={"csrf_token": csrf_token(me, "/account/requests"), "body": " "})
    assert resp.status_code == 400
    _tied(resp.get_data(as_text=True), "request-body", "request-error")
    other = login_as(app.test_client(), donor(100000, "premiere@example.org"))  # no thread at $1000
    resp = other.post("/account/requests", data={"csrf_token": csrf_token(other, "/account/requests"), "body": "Hi"})
    assert resp.status_code == 403
    _focused_itself(resp.get_data(as_text=True), "request-refusal")


def test_a_refused_reply_ties_its_message_to_the_box(app, donor, producer, login_as):
    big = donor(200000, "big@example.org")
    staff = login_as(app.test_client(), producer)
    thread = f"/admin/requests/{big.public_id}"
    resp = staff.post(thread, data={"csrf_token": csrf_token(staff, thread), "body": "  "})
    assert resp.status_code == 400
    _tied(resp.get_data(as_text=True), "reply-body", "reply-error")


def test_a_refused_rsvp_marks_the_field_at_fault(app, donor, login_as):
    me, inv, slot = _guest_and_invitation(app, donor, login_as)
    page = f"/account/invitations/{inv.id}"
    resp = me.post(f"{page}/rsvp", data={"csrf_token": csrf_token(me, page), "answer": "accept"})  # no time
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    radio = re.search(rf'<input type="radio" name="slot" value="{slot.id}"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in radio and 'aria-describedby="rsvp-error"' in radio and " autofocus" in radio
    assert "autofocus" not in tag_by_id(html, "rsvp-error") and html.count(" autofocus") == 1

    resp = me.post(f"{page}/time-zone", data={"csrf_token": csrf_token(me, page), "time_zone": "Mars/Olympus"})
    assert resp.status_code == 400
    _tied(resp.get_data(as_text=True), "tz", "rsvp-error")

    resp = me.post(f"{page}/rsvp", data={"csrf_token": csrf_token(me, page), "answer": "maybe"})
    assert resp.status_code == 400
    _focused_itself(resp.get_data(as_text=True), "rsvp-error")


def test_a_refused_step_on_a_question_marks_its_field(app, donor, producer, login_as):
    asker = donor(25000, "asker@example.org")
    me = login_as(app.test_client(), asker)
    assert me.post("/account/questions", data={"csrf_token": csrf_token(me, "/account/questions"),
                                               "body": "Where did you look first?"}).status_code == 303
    q = db.session.scalar(sa.select(Question).where(Question.user_id == asker.id))
    staff = login_as(app.test_client(), producer)
    page = f"/admin/questions/{q.id}"
    resp = staff.post(f"{page}/moderate", data={"csrf_token": csrf_token(staff, page), "decision": "reject"})
    assert resp.status_code == 400  # a rejection says why
    _tied(resp.get_data(as_text=True), "mod-note", "question-error")
    resp = staff.post(f"{page}/assign", data={"csrf_token": csrf_token(staff, page), "subject": "1"})
    assert resp.status_code == 409  # not approved yet: about no field
    _focused_itself(resp.get_data(as_text=True), "question-error")
