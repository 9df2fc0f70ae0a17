"""One stored form for one mailbox, however a person typed the address (auth/services.normalize_email):
a Chinese input method's full-width forms and ideographic full stop, and an internationalized
domain (a Chinese top-level domain included), in the form DNS has it."""
import re

import pytest
import sqlalchemy as sa

from filmfund.auth.models import User
from filmfund.auth.services import EMAIL_PATTERN, EMAIL_RE, email_for_people, normalize_email
from filmfund.errors import ValidationError
from filmfund.extensions import db
from tests.site.helpers import csrf_token

CHINESE_DOMAIN = "mei@xn--fsqu00a.xn--fiqs8s"  # mei@例子.中国, as DNS has it (RFC 3492 Punycode)


@pytest.mark.parametrize("typed,stored", [
    ("mei@qq.com", "mei@qq.com"),
    ("Mei@QQ.com", "Mei@qq.com"),  # the domain's case never matters; the local part's is the owner's
    ("ｍｅｉ＠ｑｑ．ｃｏｍ", "mei@qq.com"),  # full-width mode
    ("mei@qq。com", "mei@qq.com"),  # Chinese punctuation mode types 。 for .
    ("\u3000mei@qq.com\u3000", "mei@qq.com"),
    ("mei@例子.中国", CHINESE_DOMAIN),
    (CHINESE_DOMAIN, CHINESE_DOMAIN),
    ("mei@Bücher.de", "mei@xn--bcher-kva.de"),
    ("王小梅@example.org", "王小梅@example.org"),  # a UTF-8 local part is the owner's: kept
    ("mei@mail-1.example.org", "mei@mail-1.example.org"),
    ("mei@" + "a" * 63 + ".org", "mei@" + "a" * 63 + ".org"),
])
def test_one_mailbox_is_stored_in_one_form(typed, stored):
    assert normalize_email(typed) == stored
    assert EMAIL_RE.match(stored)


@pytest.mark.parametrize("typed", ["mei@exa mple.org", "mei@例子", "mei@qq。", "mei@例子..中国", "mei@-例子.中国",
                                   "mei@x_y.com", "mei＠", "ｍｅｉ", "mei@qq.c0m", "mei@qq.xn--", "mei@\u3000.中国",
                                   "m" * 60 + "@" + ".".join(["例子例子例子"] * 12) + ".中国",  # 147 typed, 275 as DNS has it
                                   # DNS labels (RFC 1123): none empty, none at a hyphen's either end, 63 at most
                                   "mei@qq..com", "mei@.qq.com", "mei@qq.com.", "mei@-qq.com", "mei@qq-.com",
                                   "mei@qq.-com", "mei@" + "a" * 64 + ".org", "mei@qq.xn--a-"])
def test_what_is_no_address_is_refused(typed):
    with pytest.raises(ValidationError):
        normalize_email(typed)
    # The API's schema says the same: a program is never told an address is fine that is then refused.
    assert not re.match(EMAIL_PATTERN, typed)


def test_gifts_typed_three_ways_count_on_one_donor(app, client, campaign):
    from filmfund.rewards.models import Donation
    from tests.site.helpers import pay

    pay(1500, "mei@例子.中国")
    pay(2500, CHINESE_DOMAIN)
    pay(3500, "ＭＥＩ＠例子．中国")  # full-width, and the local part in capitals: the same mailbox here
    [user] = db.session.scalars(sa.select(User).where(User.email.like("%xn--fiqs8s"))).all()
    assert user.email == CHINESE_DOMAIN
    assert db.session.scalar(sa.select(sa.func.sum(Donation.amount)).where(Donation.user_id == user.id)) == 7500


def test_the_form_takes_what_the_input_method_typed_and_the_api_what_dns_has(app, client, campaign):
    from filmfund.rewards.models import Pledge

    for typed in ("ｍｅｉ＠ｑｑ．ｃｏｍ", "mei@qq。com"):
        resp = client.post("/pledge?lang=zh-Hans", data={"csrf_token": csrf_token(client), "amount": "15",
                                                         "email": typed, "credit_name": "", "form_key": ""})
        assert resp.status_code == 303, typed
        assert db.session.get(Pledge, resp.headers["Location"].rsplit("/", 1)[1]).email == "mei@qq.com"
    # A program sends the address as DNS has it (the schema's pattern says so); anything else is
    # refused by its code, before any work.
    assert client.post("/api/v1/pledges", json={"amount": 1500, "email": CHINESE_DOMAIN}).status_code == 201
    refused = client.post("/api/v1/pledges", json={"amount": 1500, "email": "mei@例子.中国"})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_email"


def test_the_audit_log_names_every_stored_form_by_its_keyed_hash(app):
    from filmfund.audit import _no_emails, email_ref

    for typed in ("mei@例子.中国", "王小梅@example.org", "ｍｅｉ＠ｑｑ．ｃｏｍ", "mei@Bücher.de"):
        stored = normalize_email(typed)
        assert _no_emails(f"sent to {stored}, then") == f"sent to {email_ref(stored)}, then"


def test_pages_show_an_address_as_its_owner_wrote_it(app, client, campaign, login_as, producer):
    from tests.site.helpers import pay

    assert email_for_people(CHINESE_DOMAIN) == "mei@例子.中国"
    assert email_for_people("mei@xn--bcher-kva.de") == "mei@bücher.de"
    # a label mixing scripts (Latin p-ypal and a Cyrillic а) stays as DNS has it, as browsers show it
    for stored in ("mei@qq.com", "erased-3@erased.invalid", "xn--a@qq.com", "mei@xn--zz.com", "", None,
                   "mei@xn--pypal-4ve.com"):
        assert email_for_people(stored) == (stored or "")  # as stored: not an IDNA domain, or not a valid one
    pay(5000, "mei@例子.中国")
    user = db.session.scalar(sa.select(User).where(User.email == CHINESE_DOMAIN))
    own = login_as(app.test_client(), user).get("/account").get_data(as_text=True)
    crew = login_as(app.test_client(), producer).get(f"/admin/donations/donors/{user.id}").get_data(as_text=True)
    for html in (own, crew):
        assert "mei@例子.中国" in html and "xn--" not in html


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_the_sign_in_forms_read_what_the_input_method_typed(app, client, make_user):
    """The forms leave the address to the server (novalidate: Chrome refuses a full-width one
    with its own message, in the browser's language), which reads it as the pledge form does and
    says on the page when it is no address at all."""
    from pathlib import Path

    from filmfund import jobs

    make_user("mei@xn--fsqu00a.xn--fiqs8s", "donor")
    page = client.get("/login?lang=zh-Hans").get_data(as_text=True)
    assert re.search(r'<form method="post" action="/login[^"]*" novalidate>', page)
    resp = client.post("/login?lang=zh-Hans", data={"csrf_token": csrf_token(client, "/login"),
                                                     "email": "ｍｅｉ＠例子。中国"})
    assert resp.status_code == 302
    jobs.run_burst()
    [mail] = Path(app.config["OUTBOX_DIR"]).glob("*.eml")
    assert "To: mei@xn--fsqu00a.xn--fiqs8s" in mail.read_text()

    for path, form in (("/login", "auth/login.html"), ("/login/reset", "auth/reset_request.html")):
        resp = client.post(path + "?lang=zh-Hans", data={"csrf_token": csrf_token(client, path), "email": "mei@qq..com"})
        body = resp.get_data(as_text=True)
        assert resp.status_code == 400, path
        assert "请填写有效的邮箱地址。" in body and 'value="mei@qq..com"' in body, path
    assert len(list(Path(app.config["OUTBOX_DIR"]).glob("*.eml"))) == 1  # nothing queued for them


def test_one_account_has_one_password_allowance_however_it_is_typed(client, make_user):
    """The per-account limit (20 wrong passwords an hour) counts the account, not the spelling: an
    address with one letter in its full-width form, or in capitals, is the same account."""
    make_user("boss@filmfund.test", "producer", password="a-long-producer-password")
    typed = "boss@filmfund.test"
    spellings = [typed[:i] + _full_width(typed[i]) + typed[i + 1:] for i in range(len(typed))] + [
        typed.upper(), "boss@filmfund。test"]
    assert len(set(spellings)) == 20
    for n, spelling in enumerate(spellings):  # each from its own address: the per-address limit stays out of it
        resp = client.post("/login", data={"csrf_token": csrf_token(client, "/login"), "email": spelling,
                                           "password": "wrong-password"}, environ_base={"REMOTE_ADDR": f"10.7.0.{n + 1}"})
        assert resp.status_code == 401, spelling
    resp = client.post("/login", data={"csrf_token": csrf_token(client, "/login"), "email": typed,
                                       "password": "a-long-producer-password"}, environ_base={"REMOTE_ADDR": "10.7.1.1"})
    assert resp.status_code == 429


@pytest.mark.parametrize("typed", ["mei@例子.中国", "ｍｅｉ＠例子．中国", "MEI@例子", "mei@xn--fsqu00a", "ｍｅｉ＠"])
def test_a_producer_finds_a_donor_however_the_address_is_typed(app, client, campaign, login_as, producer, typed):
    from tests.site.helpers import pay

    pay(1500, "mei@例子.中国")
    pay(2500, "lan@qq.com")
    mei, lan = (db.session.scalar(sa.select(User.id).where(User.email == e)) for e in (CHINESE_DOMAIN, "lan@qq.com"))
    login_as(client, producer)
    body = client.get("/admin/donations/", query_string={"q": typed}).get_data(as_text=True)
    # The rows link to their donors' pages (the search box shows what was typed, found or not).
    assert f"/admin/donations/donors/{mei}" in body and f"/admin/donations/donors/{lan}" not in body, typed


# Characters that print nothing, or reorder what is around them (filmfund/typed.py's rule, and
# the rest of Unicode's default-ignorable code points): each makes an address that reads as
# another donor's, so it is refused, never taken out.
LOOK_ALIKES = ["mei\u200b@qq.com", "\u200bmei@qq.com", "me\u200ci@qq.com", "me\u200di@qq.com", "mei\u00ad@qq.com",
               "mei\u2060@qq.com", "mei\ufeff@qq.com", "\u202emoc.liamg@x.cn", "\u2067mei\u2069@qq.com",
               "mei\u061c@qq.com", "mei\u200e@qq.com", "mei\ufe0f@qq.com", "mei\u034f@qq.com", "mei\u3164@qq.com",
               "mei\U000e0041@qq.com", "mei\ue000@qq.com", "mei\U000f0000@qq.com",
               "mei\x85@qq.com", "mei\ud800@qq.com", "mei@q\u200bq.com", "mei@qq.co\u00adm", "mei@例\u200b子.中国"]


@pytest.mark.parametrize("typed", LOOK_ALIKES)
def test_an_address_with_an_invisible_character_is_refused_never_stripped(typed):
    with pytest.raises(ValidationError) as refused:
        normalize_email(typed)
    assert refused.value.code == "invalid_email"
    assert not EMAIL_RE.match(typed)
    # The schema says so too (a lone surrogate never reaches it: no JSON string carries one).
    assert "\ud800" in typed or not re.match(EMAIL_PATTERN, typed)


def test_an_unassigned_character_shows_and_is_judged_alike_by_the_schema_and_the_server():
    """The fuzzer's case: the schema admitted an address with a code point Unicode has not
    assigned, and the server refused it (a box shows where it stands: no look-alike)."""
    typed = "mei\u0378@qq.com"
    assert re.match(EMAIL_PATTERN, typed) and normalize_email(typed) == typed


@pytest.mark.parametrize("typed", ["王小梅@example.org", "mei\U00030000@qq.com",  # a rare ideograph of a name
                                   "mei\U0001f600@qq.com", "josé@qq.com"])
def test_a_visible_address_outside_ascii_is_kept(typed):
    assert normalize_email(typed) == typed and re.match(EMAIL_PATTERN, typed)


def test_a_look_alike_is_no_second_donor_and_gets_no_receipt(app, client, campaign):
    """The pledge form and the API refuse it with the address's error; the one donor stays one."""
    from pathlib import Path

    from filmfund import jobs
    from tests.site.helpers import pay

    pay(2500, "mei@qq.com")
    for typed in ("mei\u200b@qq.com", "\u202emoc.liamg@x.cn"):
        api = client.post("/api/v1/pledges", json={"amount": 1500, "email": typed})
        assert api.status_code == 400 and api.get_json()["error"]["code"] == "invalid_email", typed
        form = client.post("/pledge?lang=zh-Hans", data={"csrf_token": csrf_token(client), "amount": "15",
                                                         "email": typed, "credit_name": "", "form_key": ""})
        assert form.status_code == 400 and "请填写有效的邮箱地址" in form.get_data(as_text=True), typed
        with pytest.raises(ValidationError):
            pay(2500, typed)
    db.session.rollback()
    assert db.session.scalars(sa.select(User.email)).all() == ["mei@qq.com"]
    jobs.run_burst()
    assert all("To: mei@qq.com" in m.read_text() for m in Path(app.config["OUTBOX_DIR"]).glob("*.eml"))
