"""The address survey's mailed link after the donor's erasure: it answers as a stale link does
(the same 404, nothing said of the erasure) and writes nothing, GET and POST alike (issue 16)."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from filmfund.auth.services import find_user
from filmfund.errors import ConflictError
from filmfund.extensions import db
from filmfund.fulfil import fulfilment
from filmfund.fulfil.models import CreditProof, FulfilmentItem
from filmfund.rewards import donor_data
from filmfund.rewards.models import ShippingAddress
from tests.site.helpers import CSRF_RE, pay

ADDRESS = {"name": "Mei Chen", "line1": "12 Rue des Lilas", "line2": "", "city": "Lyon", "state": "",
           "postal_code": "69003", "country": "FR"}
NONCE_RE = re.compile(r'(nonce|csrf[-_]token|value)="[^"]*"')


def _path(url: str) -> str:
    return url[url.index("/rewards/survey/"):]


def _same_page(html: str, link: str) -> str:
    """A page without what differs on every request (nonces, tokens) nor its own address (the
    language links)."""
    return NONCE_RE.sub("", html.replace(link, "LINK"))


@pytest.fixture
def opened_survey(campaign, client):
    """A $100 donor (signed DVD, credit) with their survey open in the browser: its link and the
    form's CSRF token, taken before they are erased."""
    pay(10000, "mei@example.org", credit_name="Mei Chen")
    user = find_user("mei@example.org")
    link = _path(fulfilment.survey_link(user))
    page = client.get(link)
    assert page.status_code == 200 and 'id="address-form"' in page.get_data(as_text=True)
    return user, link, CSRF_RE.search(page.get_data(as_text=True)).group(1)


def test_an_erased_donors_survey_link_answers_as_a_stale_link(opened_survey, client):
    user, link, _token = opened_survey
    stale_link = link[:-3] + "xyz"  # forged or expired: the signature fails
    stale = client.get(stale_link)
    donor_data.erase_donor(user)
    db.session.commit()

    page = client.get(link)
    assert page.status_code == stale.status_code == 404
    html = page.get_data(as_text=True)
    assert _same_page(html, link) == _same_page(stale.get_data(as_text=True), stale_link)
    assert "erase" not in html.lower() and "address-form" not in html and "Mei" not in html
    assert page.headers.get("Content-Type") == stale.headers.get("Content-Type")


@pytest.mark.parametrize("form", [{"form": "address", **ADDRESS},
                                  {"form": "proof", "decision": "approve"},
                                  {"form": "proof", "decision": "changes", "note": "Spell it Mei C."}])
def test_an_erased_donors_survey_link_writes_nothing(opened_survey, client, form):
    user, link, token = opened_survey
    donor_data.erase_donor(user)
    db.session.commit()

    resp = client.post(link, data={"csrf_token": token, **form, "dedication": "For Lin"})
    assert resp.status_code == 404
    db.session.expire_all()
    assert db.session.get(ShippingAddress, user.id) is None
    assert db.session.get(CreditProof, user.id) is None
    assert all(item.dedication == "" for item in db.session.scalars(
        sa.select(FulfilmentItem).where(FulfilmentItem.user_id == user.id)))


def test_no_address_is_kept_for_an_erased_donor_whoever_asks(campaign):
    """A Checkout opened before the erasure and paid after it, or any later caller: refused."""
    pay(5000, "dvd@example.org")
    user = find_user("dvd@example.org")
    donor_data.erase_donor(user)
    db.session.commit()
    with pytest.raises(ConflictError):
        fulfilment.save_address(user, ADDRESS, source="checkout")
    db.session.rollback()
    assert db.session.get(ShippingAddress, user.id) is None


def test_the_survey_link_still_works_for_a_donor_not_erased(opened_survey, client):
    user, link, token = opened_survey
    other = find_user("mei@example.org")
    pay(100, "someone@example.org")
    donor_data.erase_donor(find_user("someone@example.org"))  # someone else's erasure
    db.session.commit()
    resp = client.post(link, data={"csrf_token": token, "form": "address", **ADDRESS})
    assert resp.status_code == 200 and 'id="survey-done"' in resp.get_data(as_text=True)
    assert db.session.get(ShippingAddress, other.id).city == "Lyon"


@pytest.mark.parametrize("lang, said", [("en", "This link is not valid (or has expired)"), ("zh-Hans", "这个链接无效或已过期")])
def test_a_stale_survey_link_says_so_in_the_readers_language(client, campaign, lang, said):
    page = client.get("/rewards/survey/not-a-real-token", headers={"Accept-Language": lang})
    assert page.status_code == 404 and said in page.get_data(as_text=True)


@pytest.mark.parametrize("lang, said", [("en", "Send one of the forms on the page."),
                                        ("zh-Hans", "请通过本页上的表单提交。")], ids=["en", "zh-Hans"])
def test_a_post_naming_no_form_is_refused_in_the_readers_language(opened_survey, client, lang, said):
    """The reader of a survey link is the donor it names: her language (her mail's), whatever the
    browser's Accept-Language says (i18n.mailed_link)."""
    from filmfund.rewards import donors

    user, link, token = opened_survey
    donors.profile_for(user.id).language = lang
    db.session.commit()
    browser = "zh-CN,zh;q=0.9" if lang == "en" else "en-US,en;q=0.9"
    resp = client.post(link, data={"csrf_token": token}, headers={"Accept-Language": browser})
    assert resp.status_code == 400 and said in resp.get_data(as_text=True)


def test_a_refunded_donors_old_survey_link_keeps_no_address(campaign, client, login_as):
    """Refunded in full, the donor holds nothing to post: the page shows no address form, and an
    address posted through the old link (a form kept open, a replay) is refused with the reason,
    not "your rewards have shipped" (nothing was), and nothing of where they live is kept. The
    same holds on the account page, and for whoever else asks (save_address)."""
    from filmfund.rewards import refunds
    from tests.site.helpers import csrf_token

    pay(5000, "gone@example.org")
    user = find_user("gone@example.org")
    link = _path(fulfilment.survey_link(user))
    token = CSRF_RE.search(client.get(link).get_data(as_text=True)).group(1)
    refunds.request_refund(_donation_of(user), 5000, "changed their mind")
    db.session.commit()

    page = client.get(link).get_data(as_text=True)
    assert 'id="address-form"' not in page
    resp = client.post(link, data={"csrf_token": token, "form": "address", **ADDRESS})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="address-error"' in html
    assert "no rewards for us to post" in html and "shipped" not in html
    db.session.expire_all()
    assert db.session.get(ShippingAddress, user.id) is None

    donor = login_as(client.application.test_client(), user)
    page = donor.get("/account/address").get_data(as_text=True)
    assert 'id="address-form"' not in page and "no rewards for us to post" in page and "shipped" not in page
    tok = csrf_token(donor, "/account/address")
    assert donor.post("/account/address", data={"csrf_token": tok, **ADDRESS}).status_code == 400
    with pytest.raises(ConflictError) as refused:
        fulfilment.save_address(user, ADDRESS, source="account")
    assert refused.value.code == "nothing_to_ship"
    db.session.rollback()
    assert db.session.get(ShippingAddress, user.id) is None


def _donation_of(user) -> int:
    from filmfund.rewards.models import Donation

    return db.session.scalar(sa.select(Donation.id).where(Donation.user_id == user.id))
