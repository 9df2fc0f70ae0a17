"""Issue 16.5: every producer write is in the audit log: moderation, answers, subjects,
experiences, update drafts (page and API). A refused write leaves no entry."""
from __future__ import annotations

import sqlalchemy as sa

from filmfund.audit import list_audit, verify_chain
from filmfund.comms import questions
from filmfund.comms.models import Question
from filmfund.extensions import db
from tests.site.helpers import csrf_token


def _post(client, path, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, "/admin/questions"), **data})


def _writes() -> list[tuple[str, str]]:
    db.session.expire_all()
    return [(e.action, e.target) for e in reversed(list_audit()) if e.action.startswith("write.")]


def test_producer_writes_are_recorded_by_the_route_they_took(app, donor, producer, login_as, token_for):
    asker = donor(25000, "asker@example.org")  # $250: questions
    questions.submit_question(asker, "Where did you look first?")
    db.session.commit()
    q = db.session.scalar(sa.select(Question))
    staff = login_as(app.test_client(), producer)
    before = len(list_audit(limit=500))

    assert _post(staff, f"/admin/questions/{q.id}/moderate", decision="reject").status_code == 400  # no note
    assert _writes() == []  # refused: nothing happened, nothing recorded
    assert _post(staff, f"/admin/questions/{q.id}/moderate", decision="approve",
                 note="internal: a good one").status_code == 303
    assert _post(staff, "/admin/questions/subjects", name="Mrs. Li", language="zh").status_code == 303
    subject = questions.subjects()[0]
    assert _post(staff, f"/admin/questions/{q.id}/assign", subject=subject.id).status_code == 303
    assert _post(staff, f"/admin/questions/{q.id}/answer", original="我先去了火车站。", original_status="final",
                 english="I went to the train station", english_status="draft").status_code == 303
    assert _post(staff, "/admin/experiences", reward="dinner-invitation", title="Dinner with the crew",
                 details="", location="Shenzhen", duration_minutes="120").status_code == 303
    assert _post(staff, "/admin/updates", title="Shoot day 12", body="We filmed.",
                 audience="everyone").status_code == 303
    api = app.test_client().post("/api/v1/updates", json={"title": "Day 13", "body": "More.", "audience": "donors"},
                                 headers=token_for(producer))
    assert api.status_code == 201, api.get_data(as_text=True)

    writes = _writes()
    assert [action for action, _ in writes] == [
        "write.comms.moderate_question", "write.comms.add_subject", "write.comms.assign_question",
        "write.comms.answer_question", "write.comms.create_experience", "write.comms.create_update",
        "write.comms_api.create_update"], writes
    assert writes[0][1] == f"/admin/questions/{q.id}/moderate"
    entries = [e for e in list_audit(limit=500) if e.action.startswith("write.")]
    assert all(e.actor == f"user:{producer.id}" for e in entries)
    moderation = next(e for e in entries if e.action == "write.comms.moderate_question")
    # which fields, never their values (a note, a donor's words)
    assert moderation.details_dict == {"method": "POST", "args": {"question_id": q.id}, "fields": ["decision", "note"]}
    assert "internal: a good one" not in " ".join(e.details for e in entries)
    assert len(list_audit(limit=500)) - before >= 7
    assert verify_chain()[0] == []


def test_a_donor_write_is_not_a_staff_action(app, donor, login_as):
    asker = donor(25000, "asker@example.org")
    me = login_as(app.test_client(), asker)
    resp = me.post("/account/questions", data={"csrf_token": csrf_token(me, "/account/questions"), "body": "Why?"})
    assert resp.status_code == 303
    assert _writes() == []


def test_a_refused_payout_leaves_no_write_and_a_recorded_one_one_entry(app, producer, login_as):
    """Probe (partner, F7): a payout over the balance, refused, left `write.admin.record_payout`
    (the page drawn after the rollback ends its read with a commit), and a recorded one had that
    entry beside its own `payout.record` (the form's once-only claim is a savepoint, whose release
    is no commit)."""
    from datetime import date

    from tests.site.helpers import pay

    pay(10000, "a@example.org")  # share due: $20.00
    staff = login_as(app.test_client(), producer)
    token = csrf_token(staff, "/admin/")
    before = {e.id for e in list_audit(limit=500)}

    def new_actions():
        db.session.expire_all()
        return [e.action for e in reversed(list_audit(limit=500)) if e.id not in before]

    refused = staff.post("/admin/payouts", data={"csrf_token": token, "amount": "300.00", "reference": "X-1",
                                                 "paid_on": date.today().isoformat(), "once": "form-1"})
    assert refused.status_code == 400
    assert new_actions() == []
    done = staff.post("/admin/payouts", data={"csrf_token": token, "amount": "10.00", "reference": "X-2",
                                              "paid_on": date.today().isoformat(), "once": "form-2"})
    assert done.status_code == 303
    assert new_actions() == ["payout.record"]
