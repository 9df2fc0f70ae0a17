"""An experience's Chinese version: a half-written one is refused on the producers' page, and a
Chinese guest is always told the place (a part a stored version lacks is read from the main text)."""
from __future__ import annotations

import pytest

from filmfund import jobs
from filmfund.comms import invitations
from filmfund.db import utcnow
from filmfund.errors import ValidationError
from filmfund.extensions import db
from tests.comms.conftest import wait_for
from tests.site.helpers import csrf_token

PLACE = "Jianguo Road 88, Shanghai"


def _post(client, path, page, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, page), **data})


def test_a_chinese_version_without_the_place_is_refused_on_the_page(app, producer, login_as):
    staff = login_as(app.test_client(), producer)
    resp = _post(staff, "/admin/experiences", "/admin/experiences", reward="dinner-invitation",
                 title="Dinner with the crew in Shanghai", details="Bring your questions.", location=PLACE,
                 duration_minutes="120", **{"title:zh-Hans": "与摄制组在上海共进晚餐",
                                            "details:zh-Hans": "带上您的问题。", "location:zh-Hans": ""})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert 'id="experience-error"' in html and "zh-Hans location: the main text gives one" in html
    assert "与摄制组在上海共进晚餐" in html  # what was typed is kept, to mend
    assert invitations.experiences() == []
    # Details too: a version gives every part the main texts give, or none.
    with pytest.raises(ValidationError, match="zh-Hans details"):
        invitations.create_experience(reward_key="dinner-invitation", title="Dinner", details="Bring your questions.",
                                      location=PLACE, translations={"zh-Hans": {"title": "晚餐", "location": "上海建国路88号"}})
    db.session.rollback()
    # A whole version is taken; so is a title alone when the main texts are a title alone.
    whole = invitations.create_experience(reward_key="dinner-invitation", title="Dinner", location=PLACE,
                                          translations={"zh-Hans": {"title": "晚餐", "location": "上海建国路88号"}})
    assert invitations.text(whole, "zh-Hans").location == "上海建国路88号"


def test_a_chinese_guest_of_a_version_stored_without_its_place_is_told_the_place(
        app, donor, producer, login_as, smtp):
    """A version kept before the check (title and details in Chinese, the place left blank): the
    Chinese guest's mail, page and calendar file give the main text's place, as the English
    guest's do; the rest of hers stays in Chinese."""
    from filmfund.rewards.donors import profile_for

    mei = donor(50000, "mei@example.org")
    donor(50000, "sam@example.org")
    profile_for(mei.id).language = "zh-Hans"
    exp = invitations.create_experience(reward_key="dinner-invitation", title="Dinner with the crew in Shanghai",
                                        details="Bring your questions.", location=PLACE, duration_minutes=120)
    exp.translations = {"zh-Hans": {"title": "与摄制组在上海共进晚餐", "details": "带上您的问题。", "location": ""}}
    invitations.add_slot(exp.id, utcnow().replace(year=utcnow().year + 1, month=3, day=14, hour=11, minute=30))
    db.session.commit()
    smtp.envelopes.clear()  # the receipts
    staff = login_as(app.test_client(), producer)
    page = f"/admin/experiences/{exp.id}"
    assert _post(staff, f"{page}/invite", page).status_code == 303
    jobs.run_burst()
    wait_for(smtp, 2)
    mails = {m["To"]: m.get_body(("plain",)).get_content() for m in smtp.messages()}
    assert "与摄制组在上海共进晚餐" in mails["mei@example.org"] and PLACE in mails["mei@example.org"]
    assert PLACE in mails["sam@example.org"]

    me = login_as(app.test_client(), mei)
    [inv] = invitations.my_invitations(mei)
    mine = me.get(f"/account/invitations/{inv.id}?lang=zh-Hans").get_data(as_text=True)
    assert "与摄制组在上海共进晚餐" in mine and PLACE in mine
    slot = invitations.get_experience(inv.experience_id).slots[0]
    _post(me, f"/account/invitations/{inv.id}/rsvp", f"/account/invitations/{inv.id}", answer="accept", slot=slot.id)
    ics = me.get(f"/account/invitations/{inv.id}/calendar.ics").get_data(as_text=True)
    assert "SUMMARY:与摄制组在上海共进晚餐" in ics and "LOCATION:Jianguo Road 88\\, Shanghai" in ics
    # One function answers every reader: the Chinese texts, the main place.
    words = invitations.text(invitations.get_experience(exp.id), "zh-Hans")
    assert (words.title, words.details, words.location, words.lang) == (
        "与摄制组在上海共进晚餐", "带上您的问题。", PLACE, "zh-Hans")
