"""Signed items and letters (producers' pages), a parcel returned and sent again, illegal moves."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from filmfund.audit import AuditEntry
from filmfund.errors import ConflictError, NotFoundError
from filmfund.extensions import db
from filmfund.fulfil import fulfilment
from filmfund.fulfil.models import FulfilmentItem, ItemState
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.models import Reward
from tests.site.helpers import csrf_token, pay


def _item(email, key):
    from filmfund.auth.services import find_user

    user = find_user(email)
    return next(r["item"] for r in fulfilment.donor_items(user, current_campaign())
                if r["reward"].key == key)


def test_signing_letter_and_a_returned_parcel(campaign, client, login_as, producer):
    pay(10000, "pat@example.org", credit_name="Pat Patron")
    for key in ("dvd-signed", "thank-you-letter"):
        reward = db.session.scalar(sa.select(Reward).where(Reward.key == key))
        fulfilment.mark_available(reward.id)
    db.session.commit()
    signed, letter = _item("pat@example.org", "dvd-signed"), _item("pat@example.org", "thank-you-letter")
    staff = login_as(client, producer)
    page = staff.get("/admin/rewards/dvd-signed").get_data(as_text=True)
    assert 'aria-label="Signer"' in page
    tok = csrf_token(staff, "/admin/rewards/dvd-signed")
    staff.post(f"/admin/rewards/items/{signed.id}", data={"csrf_token": tok, "action": "signing",
                                                          "signer": "The director", "dedication": "For Pat"})
    staff.post(f"/admin/rewards/items/{letter.id}", data={"csrf_token": tok, "action": "draft_letter"})
    db.session.expire_all()
    signed, letter = db.session.get(FulfilmentItem, signed.id), db.session.get(FulfilmentItem, letter.id)
    assert (signed.signer, signed.dedication) == ("The director", "For Pat")
    assert letter.letter.startswith("Dear Pat Patron,") and "Patron" in letter.letter
    assert "Living with Dead Hearts" in letter.letter
    staff.post(f"/admin/rewards/items/{letter.id}", data={"csrf_token": tok, "action": "letter",
                                                          "letter": "Dear Pat,\r\n\r\nThank you.\x07"})
    db.session.expire_all()
    assert db.session.get(FulfilmentItem, letter.id).letter == "Dear Pat,\n\nThank you."

    # No address: it cannot ship. Returned: it goes back into production, then ships again.
    fulfilment.move_item(signed.id, "in_production")
    db.session.commit()
    with pytest.raises(ConflictError, match="no address"):
        fulfilment.move_item(signed.id, "shipped", tracking="UPS 1")
    from filmfund.auth.services import find_user

    fulfilment.save_address(find_user("pat@example.org"), {"name": "Pat", "line1": "Old St 1", "city": "Rome",
                                                           "country": "IT"}, source="account")
    # Probe (tiers, finding 5): a signed item shipped with no signer recorded, and the signer
    # could not be set after. Who signed is needed before it ships.
    fulfilment.set_signing(signed.id, signer="")
    with pytest.raises(ConflictError, match="who signed it"):
        fulfilment.move_item(signed.id, "shipped", tracking="UPS 1")
    fulfilment.set_signing(signed.id, signer="The director")
    fulfilment.move_item(signed.id, "shipped", tracking="UPS 1")
    db.session.commit()
    with pytest.raises(ConflictError):
        fulfilment.set_signing(signed.id, signer="Someone else")  # shipped: too late
    fulfilment.move_item(signed.id, "returned")
    db.session.commit()
    fulfilment.save_address(find_user("pat@example.org"), {"name": "Pat", "line1": "New St 2", "city": "Rome",
                                                           "country": "IT"}, source="account")
    db.session.commit()
    fulfilment.move_item(signed.id, "in_production")
    db.session.commit()
    fulfilment.move_item(signed.id, "shipped", tracking="UPS 2")
    db.session.commit()
    item = db.session.get(FulfilmentItem, signed.id)
    assert item.state == ItemState.SHIPPED and "New St 2" in item.ship_to and item.tracking == "UPS 2"
    with pytest.raises(ConflictError):
        fulfilment.move_item(signed.id, "owed")
    with pytest.raises(NotFoundError):
        fulfilment.move_item(999999, "shipped")
    actions = list(db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.action.like("reward.%"))
                                      .order_by(AuditEntry.id)))
    assert actions.count("reward.item_shipped") == 2 and "reward.item_returned" in actions
    assert 'state-processing">Shipped' in login_as(client.application.test_client(),
                                                   find_user("pat@example.org")).get("/account").get_data(as_text=True)


def test_a_letter_is_drafted_in_the_donors_language(campaign, client, login_as, producer):
    """The letter is posted to the donor: "Draft it for me" writes it in their language (their
    profile's, as their mails), with the campaign's title and their tier in it, whatever language
    the producer's page is in. Only the partner's name stays as the campaign file gives it (the
    partner gives its Chinese name, never a guessed one)."""
    import re

    from filmfund.auth.services import find_user
    from filmfund.rewards import texts
    from filmfund.rewards.models import DonorProfile

    pay(10000, "mei@example.org", credit_name="陈美")
    db.session.get(DonorProfile, find_user("mei@example.org").id).language = "zh-Hans"
    db.session.commit()
    letter = _item("mei@example.org", "thank-you-letter")
    db.session.commit()
    staff = login_as(client, producer)
    tok = csrf_token(staff, "/admin/rewards/thank-you-letter")
    staff.post(f"/admin/rewards/items/{letter.id}", data={"csrf_token": tok, "action": "draft_letter"})
    db.session.expire_all()
    text = db.session.get(FulfilmentItem, letter.id).letter
    assert text.startswith("亲爱的陈美") and "《心碎而活：寻找中国被拐的孩子》" in text and "赞助人" in text
    with client.application.test_request_context("/?lang=zh-Hans"):
        partner = texts.partner_name(current_campaign())
    assert re.findall(r"[A-Za-z]{2,}", text.replace(partner, "")) == [], text


def test_a_refused_move_stays_on_its_rewards_page_with_what_was_typed(campaign, client, login_as, producer):
    """A parcel the donor has given no address for cannot ship: the producer stays on the signed
    DVD's page (not the list of every reward), the message names the item and its donor beside the
    row, and the tracking number typed is in its field again, ready to send once the address comes.
    A letter over the limit comes back whole in its (open) box."""
    import html as html_lib

    pay(12000, "parcel@example.org", credit_name="Parcel Person")
    for key in ("dvd-signed", "thank-you-letter"):
        fulfilment.mark_available(db.session.scalar(sa.select(Reward.id).where(Reward.key == key)))
    signed, letter = _item("parcel@example.org", "dvd-signed"), _item("parcel@example.org", "thank-you-letter")
    fulfilment.move_item(signed.id, "in_production")
    db.session.commit()
    staff = login_as(client, producer)
    tok = csrf_token(staff, "/admin/rewards/dvd-signed")

    resp = staff.post(f"/admin/rewards/items/{signed.id}", data={
        "csrf_token": tok, "action": "move", "to": "shipped", "tracking": "China Post EMS EE123456789CN",
        "state": "in_progress", "page": "1"})
    page = html_lib.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 409  # not a redirect to /admin/rewards
    assert "<h1>Signed DVD" in page or "dvd-signed" in page
    assert 'aria-current="page">in progress' in page  # the filter it was typed under
    assert f"Item #{signed.id} (parcel@example.org) was not changed: The donor has given no address yet." in page
    assert 'value="China Post EMS EE123456789CN"' in page
    assert '<option value="shipped" selected>' in page
    db.session.expire_all()
    assert db.session.get(FulfilmentItem, signed.id).state == ItemState.IN_PRODUCTION

    too_long = "Dear Parcel,\n" + "x" * fulfilment.LETTER_MAX
    resp = staff.post(f"/admin/rewards/items/{letter.id}", data={"csrf_token": tok, "action": "letter",
                                                                  "letter": too_long})
    page = html_lib.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 400 and f"Item #{letter.id} (parcel@example.org) was not changed" in page
    assert too_long in page and "<details open>" in page


def test_a_refusal_on_a_producers_page_is_in_the_chosen_language_and_marked_so(campaign, client, login_as,
                                                                               producer):
    """README: the producers' pages are English (their body marked lang="en"), their messages follow
    the chosen language. The refusal beside the row is Chinese for a producer reading in Chinese, so
    the element carries lang="zh-Hans": a screen reader must not read it with an English voice."""
    import re

    pay(12000, "parcel@example.org")
    fulfilment.mark_available(db.session.scalar(sa.select(Reward.id).where(Reward.key == "dvd-signed")))
    signed = _item("parcel@example.org", "dvd-signed")
    fulfilment.move_item(signed.id, "in_production")
    db.session.commit()
    staff = login_as(client, producer)
    staff.get("/admin/rewards/dvd-signed?lang=zh-Hans")
    tok = csrf_token(staff, "/admin/rewards/dvd-signed")
    page = staff.post(f"/admin/rewards/items/{signed.id}", data={
        "csrf_token": tok, "action": "move", "to": "shipped", "tracking": "EMS 1"}).get_data(as_text=True)
    refusal = re.search(r'<p class="flash error" role="alert" id="item-refused" lang="([^"]+)">([^<]+)</p>', page)
    assert refusal and refusal.group(1) == "zh-Hans", page
    assert re.search(r"[\u4e00-\u9fff]", refusal.group(2)) and "parcel@example.org" in refusal.group(2)
    assert '<div lang="en">' in page  # the page around it is still the crew's English


def test_an_illegal_move_is_refused_in_the_chosen_language(campaign, client, login_as, producer):
    """The refusal of a move the states do not allow (owed to received) was an English f-string
    on a Chinese page."""
    import re

    pay(12000, "parcel@example.org")
    signed = _item("parcel@example.org", "dvd-signed")
    staff = login_as(client, producer)
    staff.get("/admin/rewards/dvd-signed?lang=zh-Hans")
    tok = csrf_token(staff, "/admin/rewards/dvd-signed")
    page = staff.post(f"/admin/rewards/items/{signed.id}", data={
        "csrf_token": tok, "action": "move", "to": "received"}).get_data(as_text=True)
    refusal = re.search(r'<p class="flash error" role="alert" id="item-refused" lang="([^"]+)">([^<]+)</p>', page)
    assert refusal and refusal.group(1) == "zh-Hans", page
    assert re.search(r"[\u4e00-\u9fff]", refusal.group(2)) and "cannot become" not in refusal.group(2)
    assert db.session.get(FulfilmentItem, signed.id).state == ItemState.OWED


def test_the_address_survey_message_follows_the_chosen_language(campaign, client, login_as, producer):
    """The producers' success messages are in the language of their top bar (here Chinese), the
    count put into the sentence rather than an English plural made by hand."""
    staff = login_as(client, producer)
    staff.get("/admin/rewards?lang=zh-Hans")
    tok = csrf_token(staff, "/admin/rewards")
    page = staff.post("/admin/rewards/surveys", data={"csrf_token": tok}, follow_redirects=True).get_data(as_text=True)
    assert "地址调查" in page and "Address survey sent" not in page
