"""The donor's own account page and API (issue 7.2): credit name, anonymity (everywhere at once),
rewards on/off (an explicit, confirmed choice), mail, receipts, all data held, and erasure."""
import json

import pytest
import sqlalchemy as sa

from filmfund.auth.models import ApiToken
from filmfund.auth.services import find_user
from filmfund.extensions import db
from filmfund.mail import outbox_messages
from filmfund.rewards import donors, ledger_check, mail_prefs, payments
from filmfund.rewards.entitlements import donor_entitlements
from filmfund.rewards.models import Donation, LedgerEntry, Pledge, WebhookEvent
from filmfund.rewards.campaign import current_campaign
from tests.helpers import credit_names, make_pledge
from tests.site.helpers import CSRF_RE, pay

EMAIL = "self@example.org"


def page_csrf(client) -> str:
    return CSRF_RE.search(client.get("/account").get_data(as_text=True)).group(1)


def signed_in(app, login_as, email=EMAIL):
    return login_as(app.test_client(), find_user(email))


def rewards():
    return {r["key"]: r["status"] for r in donor_entitlements(find_user(EMAIL), current_campaign())["rewards"]}


def test_credit_name_and_anonymity_take_effect_everywhere_at_once(app, campaign, login_as, runner, producer):
    pay(5500, EMAIL, credit_name="Old Name")
    client = signed_in(app, login_as)
    page = client.get("/account").get_data(as_text=True)
    assert 'value="Old Name"' in page and "Only you change these" in page
    resp = client.post("/account/settings", data={"csrf_token": page_csrf(client), "form": "credits",
                                                  "credit_name": "New Name"})
    assert resp.status_code == 303
    assert "New Name" in runner.invoke(args=["credits", "export"]).output
    client.post("/account/settings", data={"csrf_token": page_csrf(client), "form": "credits",
                                           "credit_name": "New Name", "anonymous": "1"})
    db.session.expire_all()
    assert "New Name" not in runner.invoke(args=["credits", "export"]).output
    assert credit_names(campaign) == []
    admin = login_as(app.test_client(), producer)
    assert "New Name" not in admin.get("/admin/").get_data(as_text=True)
    assert "New Name" not in admin.get("/admin/credits.csv").get_data(as_text=True)
    client.post("/account/settings", data={"csrf_token": page_csrf(client), "form": "credits",
                                           "credit_name": "New Name"})
    db.session.expire_all()
    assert credit_names(campaign) == ["New Name"]
    bad = client.post("/account/settings", data={"csrf_token": page_csrf(client), "form": "credits",
                                                 "credit_name": "x" * 200})
    assert bad.status_code == 400 and "At most 80 characters" in bad.get_data(as_text=True)
    db.session.expire_all()
    assert credit_names(campaign) == ["New Name"]


def test_opting_out_of_rewards_is_an_explicit_confirmed_choice(app, campaign, login_as):
    pay(5500, EMAIL)
    client = signed_in(app, login_as)
    unconfirmed = client.post("/account/settings", data={"csrf_token": page_csrf(client), "form": "rewards",
                                                         "rewards": "off"})
    assert unconfirmed.status_code == 400 and "Tick the box" in unconfirmed.get_data(as_text=True)
    db.session.expire_all()
    assert rewards()["dvd"] == "granted"
    client.post("/account/settings", data={"csrf_token": page_csrf(client), "form": "rewards", "rewards": "off",
                                           "confirm": "1"})
    db.session.expire_all()
    assert set(rewards().values()) == {"revoked"}
    client.post("/account/settings", data={"csrf_token": page_csrf(client), "form": "rewards", "rewards": "on"})
    db.session.expire_all()
    assert rewards()["dvd"] == "granted"
    assert ledger_check.check_ledger() == []


def test_mail_toggles(app, campaign, login_as):
    pay(5500, EMAIL)
    client = signed_in(app, login_as)
    page = client.get("/account").get_data(as_text=True)
    topics = [t for t, _ in mail_prefs.topics_for(find_user(EMAIL))]
    assert "news" in topics and "reminders" in topics and len(topics) >= 3  # the $15 tier's monthly updates
    for t in topics:
        assert f'value="{t}"' in page
    keep = [t for t in topics if t != "news"]
    client.post("/account/mail", data={"csrf_token": page_csrf(client), "topic": keep})
    assert mail_prefs.opted_out(find_user(EMAIL).id) == {"news"}
    client.post("/account/mail", data={"csrf_token": page_csrf(client), "topic": topics})
    assert mail_prefs.opted_out(find_user(EMAIL).id) == set()
    assert client.post("/account/mail", data={"csrf_token": page_csrf(client), "topic": "bogus"}).status_code == 400


def test_a_receipt_for_each_donation(app, campaign, login_as):
    pay(5500, EMAIL)
    pay(700, EMAIL)
    pay(900, "other@example.org")
    client = signed_in(app, login_as)
    mine = db.session.scalars(sa.select(Donation).where(Donation.user_id == find_user(EMAIL).id)).all()
    page = client.get("/account").get_data(as_text=True)
    for d in mine:
        assert f"/account/receipts/{d.id}" in page
    view = client.get(f"/account/receipts/{mine[0].id}")
    assert view.status_code == 200 and view.mimetype == "text/plain"
    assert "Amount: $55.00" in view.get_data(as_text=True) or "Amount: $7.00" in view.get_data(as_text=True)
    download = client.get(f"/account/receipts/{mine[0].id}?download=1")
    assert download.headers["Content-Disposition"].startswith("attachment;")
    other = db.session.scalar(sa.select(Donation.id).where(Donation.user_id == find_user("other@example.org").id))
    assert client.get(f"/account/receipts/{other}").status_code == 404
    assert client.get("/account/receipts/999999").status_code == 404


def test_api_patch_me(app, campaign, client, token_for):
    pay(5500, EMAIL, credit_name="Api Name")
    headers = token_for(find_user(EMAIL))
    resp = client.patch("/api/v1/me", json={"anonymous": True, "credit_name": "Api Two"}, headers=headers)
    assert resp.status_code == 200
    assert resp.get_json() == {"credit_name": "Api Two", "anonymous": True, "rewards_opt_out": False}
    assert credit_names(campaign) == []
    for body, code in (({"anonymous": "yes"}, "invalid_field"), ({"email": "x@example.org"}, "unknown_field"),
                       ({}, "missing_field"), ({"credit_name": 5}, "invalid_credit_name")):
        bad = client.patch("/api/v1/me", json=body, headers=headers)
        assert bad.status_code == 400 and bad.get_json()["error"]["code"] == code, body
    assert client.patch("/api/v1/me", data="[1]", content_type="application/json",
                        headers=headers).status_code == 400
    assert client.patch("/api/v1/me", json={"anonymous": False}).status_code == 401
    assert donors.settings_doc(donors.profile_for(find_user(EMAIL).id))["anonymous"] is True
    doc = client.get("/api/v1/openapi.json").get_json()
    assert "patch" in doc["paths"]["/api/v1/me"] and "get" in doc["paths"]["/api/v1/me/data"]


def test_all_data_held(app, campaign, client, token_for, login_as):
    pay(5500, EMAIL, credit_name="Data Name")
    make_pledge(1200, email=EMAIL)  # never paid: still data held about them
    pay(900, "other@example.org", credit_name="Other Person")
    headers = token_for(find_user(EMAIL))
    doc = client.get("/api/v1/me/data", headers=headers).get_json()
    assert doc["account"]["email"] == EMAIL
    tables = doc["tables"]
    assert len(tables["donations"]) == 1 and tables["donations"][0]["amount"] == 5500
    assert len(tables["pledges"]) == 2
    assert tables["donor_profiles"][0]["credit_name"] == "Data Name"
    assert tables["entitlements"] and tables["api_tokens"]
    text = json.dumps(doc)
    assert "other@example.org" not in text and "Other Person" not in text
    assert "password_hash" not in text and "token_hash" not in text
    page = signed_in(app, login_as).get("/account/data")
    assert page.status_code == 200 and page.get_json()["account"]["email"] == EMAIL


def test_the_export_a_person_reads_is_the_same_data_in_words(app, campaign, login_as):
    """The readable export: every part of the JSON export as a section in words (as many rows),
    money as money, times with their zone, rewards by title; no secret, nobody else; both languages."""
    import re

    from filmfund.rewards import donor_data

    pay(5550, EMAIL, credit_name="Data Name")
    make_pledge(1200, email=EMAIL)
    pay(900, "other@example.org", credit_name="Other Person")
    client = signed_in(app, login_as)
    account = client.get("/account").get_data(as_text=True)
    assert 'href="/account/data/readable"' in account
    with app.test_request_context():
        doc = donor_data.donor_data(find_user(EMAIL))  # as the page reads it (before its own audit entry)
    resp = client.get("/account/data/readable")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Everything we hold about you" in html
    for name, rows in doc["tables"].items():
        section = re.search(rf'id="data-{re.escape(name.replace(".", "-"))}".*?</section>', html, re.S)
        assert section, name
        assert section.group(0).count('<dl class="data-row">') == len(rows), name
    donations = re.search(r'id="data-donations".*?</section>', html, re.S).group(0)
    assert "<h2" in donations and "Your donations" in donations and "$55.50" in donations and "5550" not in donations
    assert re.search(r"<dd>\w+ \d+, \d{4}, \d+:\d\d.(AM|PM) UTC</dd>", donations)
    rewards = re.search(r'id="data-entitlements".*?</section>', html, re.S).group(0)
    assert "A DVD of the finished film" in rewards and "Your name in the end credits" in rewards
    assert "other@example.org" not in html and "Other Person" not in html
    for secret in ("password", "Token hash", "Totp secret", "Totp last step", "Session version"):
        assert secret not in html, secret
    saved = client.get("/account/data/readable?download=1")
    assert saved.headers["Content-Disposition"] == 'attachment; filename="my-filmfund-data.html"'
    zh = client.get("/account/data/readable?lang=zh-Hans").get_data(as_text=True)
    assert "我们保存的关于您的全部数据" in zh and "US$55.50" in zh and "北京时间" in zh
    assert "下载了您的数据" in zh and "export.donor_data" not in zh  # what the donor did, in words
    from filmfund.audit import list_audit

    assert sum("readable" in str(e.details) for e in list_audit(action="export.donor_data")) == 3


def test_erase_keeps_the_money_and_removes_the_person(app, campaign, login_as, token_for, runner):
    from filmfund.fulfil import fulfilment

    pay(5500, EMAIL, credit_name="Erase Me")
    make_pledge(1200, email=EMAIL, credit_name="Erase Me")
    pay(900, "other@example.org", credit_name="Other Person")
    user = find_user(EMAIL)
    fulfilment.save_address(user, {"name": "Erase Me", "line1": "1 Street", "city": "Town", "country": "US",
                                   "postal_code": "12345"}, source="account")
    db.session.commit()
    headers = token_for(user)
    statement = payments.partner_statement(campaign)
    entries = db.session.scalar(sa.select(sa.func.count(LedgerEntry.id)))
    client = signed_in(app, login_as)
    refused = client.post("/account/erase", data={"csrf_token": page_csrf(client), "confirm": "no"})
    assert refused.status_code == 400
    done = client.post("/account/erase", data={"csrf_token": page_csrf(client), "confirm": "erase"})
    assert done.status_code == 200 and "Your data is erased" in done.get_data(as_text=True)
    db.session.expire_all()
    assert find_user(EMAIL) is None
    user = db.session.get(type(user), user.id)
    assert user.email.endswith("@erased.invalid")
    profile = donors.profile_for(user.id)
    assert profile.credit_name is None and profile.erased_at is not None
    assert credit_names(campaign) == ["Other Person"]
    pledges = db.session.scalars(sa.select(Pledge).where(Pledge.email != "other@example.org")).all()
    assert len(pledges) == 2 and all(p.email == user.email and p.credit_name is None for p in pledges)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Donation)
                             .where(Donation.credit_name == "Erase Me")) == 0
    for event in db.session.scalars(sa.select(WebhookEvent)):
        assert EMAIL not in event.payload
    assert fulfilment.get_address(user.id) is None
    # the outbox kept the donor's receipts: they go too, the other donor's stay
    outbox = [m.read_bytes() for m in outbox_messages()]
    assert not any(EMAIL.encode() in m for m in outbox) and any(b"other@example.org" in m for m in outbox)
    # sessions and tokens end
    assert client.get("/account").status_code == 302
    assert app.test_client().get("/api/v1/me/data", headers=headers).status_code == 401
    assert all(t.revoked_at for t in db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user.id)))
    # the money is untouched
    assert payments.partner_statement(campaign) == statement
    assert db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))) == entries
    check = runner.invoke(args=["ledger", "check"])
    assert check.exit_code == 0, check.output
    # the old email can pledge again as a new donor, with none of the old data attached
    pay(300, EMAIL)
    assert donor_entitlements(find_user(EMAIL), current_campaign())["total"] == 300


def test_every_column_of_the_export_a_person_reads_has_its_label_in_words(app):
    """A column without a label was shown by its own name ("Checkout session id", "Ship to"), in
    English on the Chinese page too. Every column the export can hold (the account's, and every
    table that refers to the donor's account) has its label, so a column added later fails here
    until it has one; tests/test_i18n.py then asks for its Chinese."""
    from filmfund.rewards import donor_data

    tables = {table for table, column in donor_data._user_columns() if column.name not in donor_data._AUTHOR_COLUMNS}
    tables.add(db.metadata.tables["users"])
    columns = {column.name for table in tables for column in table.columns}
    unlabelled = columns - set(donor_data._LABELS) - donor_data._PLUMBING - set(donor_data._SECRET_COLUMNS)
    assert sorted(unlabelled) == []
    untitled = {table.name for table in tables} - set(donor_data._SECTION_TITLES) - {"users"}
    assert sorted(untitled) == []


def _erase_typing(app, login_as, typed: str, page_lang: str = "en"):
    pay(2000, EMAIL)
    client = signed_in(app, login_as)
    token = CSRF_RE.search(client.get(f"/account?lang={page_lang}").get_data(as_text=True)).group(1)
    return client.post("/account/erase", data={"csrf_token": token, "confirm": typed})


@pytest.mark.parametrize("typed", ["Erase", "ERASE", "ｅｒａｓｅ", "Ｅｒａｓｅ", "erase ", " erase", "erase\u3000"])
def test_the_erase_word_counts_as_a_phone_or_an_input_method_types_it(app, campaign, login_as, typed):
    """A phone capitalises the first letter, a Chinese input method in full-width mode types
    ｅｒａｓｅ, a keyboard's suggestion adds a space: each is the word asked for (typed.folded)."""
    resp = _erase_typing(app, login_as, typed)
    assert resp.status_code == 200 and "Your data is erased" in resp.get_data(as_text=True)
    assert find_user(EMAIL) is None


@pytest.mark.parametrize("typed", ["erased", "e rase", "", "delete", "删"])
def test_another_word_erases_nothing(app, campaign, login_as, typed):
    resp = _erase_typing(app, login_as, typed)
    assert resp.status_code == 400 and 'id="erase-error"' in resp.get_data(as_text=True)
    assert find_user(EMAIL) is not None


@pytest.mark.parametrize("page_lang, typed", [("zh-Hans", "删除"), ("zh-Hans", "erase"), ("en", "删除")])
def test_the_erase_word_of_either_language_erases(app, campaign, login_as, page_lang, typed):
    """The Chinese page asks for a Chinese word (needs the merged zh-Hans catalogue: "erase"); the
    word of the other language counts as well (a donor who read the page in it before)."""
    resp = _erase_typing(app, login_as, typed, page_lang)
    assert resp.status_code == 200
    assert find_user(EMAIL) is None


@pytest.mark.parametrize("typed", ["刪除", "刪除 "])
def test_the_chinese_erase_word_typed_in_traditional_characters_erases(app, campaign, login_as, typed):
    """The site's Chinese is Simplified, and so is the page a reader from Hong Kong or Taiwan gets
    (zh-HK, zh-TW); her keyboard types 刪除 for the 删除 it asks for. It is the same word, and was
    refused."""
    resp = _erase_typing(app, login_as, typed, "zh-Hans")
    assert resp.status_code == 200
    assert find_user(EMAIL) is None


def test_the_erase_box_asks_for_the_word_in_the_pages_language_and_never_capitalises(app, campaign, login_as):
    pay(2000, EMAIL)
    client = signed_in(app, login_as)
    for lang, word in (("en", "erase"), ("zh-Hans", "删除")):
        html = client.get(f"/account?lang={lang}").get_data(as_text=True)
        label = html[html.index('<label for="erase-confirm">'):html.index("</label>", html.index('<label for="erase-confirm">'))]
        assert f"<strong>{word}</strong>" in label, label
        box = html[html.index('id="erase-confirm"'):].split(">", 1)[0]
        assert 'autocapitalize="none"' in box and 'autocorrect="off"' in box and 'spellcheck="false"' in box
    refused = client.post("/account/erase", data={"csrf_token": page_csrf(client), "confirm": "no"})
    assert "删除" in refused.get_data(as_text=True)  # the page's (and the refusal's) language is kept
