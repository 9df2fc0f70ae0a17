"""Password sign-in: uniform errors, rate limits per IP and per account, session rotation,
server-side logout, and a `next` that cannot send people to another site."""
import re
from urllib.parse import urljoin, urlsplit

import pytest

PASSWORD = "a-long-producer-password"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')



@pytest.fixture
def app_overrides():
    """These tests are about the password step: the second factor is tested in test_auth_staff.py."""
    return {"STAFF_TOTP": False}


@pytest.fixture
def producer(make_user):
    return make_user("boss@filmfund.test", "producer", password=PASSWORD)


def _token(client) -> str:
    return CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)


def _login(client, email, password, next_=None, ip="10.0.0.1"):
    url = "/login" + (f"?next={next_}" if next_ is not None else "")
    return client.post(url, data={"csrf_token": _token(client), "email": email, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


def test_producer_signs_in_with_password(client, producer):
    resp = _login(client, producer.email, PASSWORD)
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_partner_lands_on_the_partner_page(client, make_user):
    make_user("p@xinxing.test", "partner", password=PASSWORD)
    assert _login(client, "p@xinxing.test", PASSWORD).headers["Location"] == "/admin/partner"


def test_wrong_password_and_unknown_email_get_the_same_answer(client, producer):
    wrong = _login(client, producer.email, "not-the-password")
    unknown = _login(client, "nobody@filmfund.test", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401

    def message(resp):
        return re.search(r'class="field-error"[^>]*>([^<]*)<', resp.get_data(as_text=True)).group(1)

    assert message(wrong) == message(unknown) == "That email and password do not match."
    assert client.get("/admin/").status_code == 302  # still signed out


def test_login_rotates_the_session(client, producer):
    with client.session_transaction() as sess:
        sess["planted_by_attacker"] = "fixation"
    before = client.get_cookie("session").value
    _login(client, producer.email, PASSWORD)
    after = client.get_cookie("session").value
    assert after != before
    with client.session_transaction() as sess:
        assert "planted_by_attacker" not in sess
        assert sess["_user_id"].startswith(producer.public_id)


def test_logout_invalidates_a_copied_cookie(app, client, producer):
    _login(client, producer.email, PASSWORD)
    stolen = client.get_cookie("session").value
    token = CSRF_RE.search(client.get("/admin/").get_data(as_text=True)).group(1)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    resp = thief.get("/admin/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_logout_needs_post_with_csrf(client, producer):
    _login(client, producer.email, PASSWORD)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/admin/").status_code == 200


def _ask_link(client, email, ip):
    """A sign-in POST without a password (a magic-link request): cheap, no argon2, same limits."""
    return client.post("/login", data={"csrf_token": _token(client), "email": email},
                       environ_base={"REMOTE_ADDR": ip})


def test_login_is_rate_limited_per_ip(client, producer):
    codes = [_ask_link(client, f"guess{i}@filmfund.test", "10.1.1.1").status_code for i in range(10)]
    assert codes == [302] * 10
    # the right password from the same address is refused too, until the window passes
    assert _login(client, producer.email, PASSWORD, ip="10.1.1.1").status_code == 429
    # a spoofed X-Forwarded-For does not make a new client
    resp = client.post("/login", data={"csrf_token": _token(client), "email": "x@filmfund.test", "password": "x"},
                       environ_base={"REMOTE_ADDR": "10.1.1.1"}, headers={"X-Forwarded-For": "203.0.113.9"})
    assert resp.status_code == 429
    # another address is unaffected
    assert _login(client, producer.email, PASSWORD, ip="10.1.1.2").status_code == 302


def test_failed_passwords_count_toward_the_limit(client, producer):
    codes = [_login(client, producer.email, "wrong-password", ip="10.4.4.4").status_code for _ in range(3)]
    codes += [_ask_link(client, f"g{i}@filmfund.test", "10.4.4.4").status_code for i in range(7)]
    assert codes == [401] * 3 + [302] * 7
    assert _login(client, producer.email, "wrong-password", ip="10.4.4.4").status_code == 429


def test_login_is_rate_limited_per_account_across_addresses(client, producer):
    codes = [_login(client, producer.email, "wrong-password", ip=f"10.2.0.{i + 1}").status_code for i in range(20)]
    assert codes == [401] * 20
    assert _login(client, producer.email, PASSWORD, ip="10.9.9.9").status_code == 429
    # other accounts still sign in from that address
    assert _login(client, "other@filmfund.test", "whatever-pass", ip="10.9.9.9").status_code == 401


OFFSITE = ["https://evil.example/", "//evil.example/", "/\\evil.example", "/%09/evil.example", "/\t/evil.example",
           "javascript:alert(1)", "http:/evil.example", "/\x00//evil.example", " //evil.example", "/\n/evil.example"]


def test_next_never_leaves_the_site(client, producer):
    for i, target in enumerate(OFFSITE):  # one app for all targets: each sign-in is an argon2 check
        resp = client.post("/login", query_string={"next": target}, environ_base={"REMOTE_ADDR": f"10.5.0.{i + 1}"},
                           data={"csrf_token": _token(client), "email": producer.email, "password": PASSWORD})
        if "\x00" in target:  # a NUL in the query string is refused outright (400), nowhere to go
            assert resp.status_code == 400, target
            continue
        location = resp.headers["Location"]
        # however a browser reads it (dropping tabs and newlines, backslash as slash), it stays here
        cleaned = re.sub(r"[\t\n\r]", "", location).replace("\\", "/")
        assert urlsplit(urljoin("https://filmfund.test/login", cleaned)).netloc == "filmfund.test", target
        assert not cleaned.startswith("//"), target


def test_next_keeps_a_local_path(client, producer):
    resp = client.post("/login", query_string={"next": "/admin/partner"},
                       data={"csrf_token": _token(client), "email": producer.email, "password": PASSWORD})
    assert resp.headers["Location"] == "/admin/partner"


def test_protected_page_sends_to_login_with_next(client):
    resp = client.get("/admin/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?next=")


def test_the_sign_in_request_is_in_the_readers_language(client):
    """Flask-Login's "Please sign in" is translated. NEEDS the catalogue entry proposed in
    /tmp/zh_auth.po (merged and compiled): until then it reads in English and this fails."""
    resp = client.get("/account?lang=zh-Hans")
    assert resp.status_code == 302
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "请先登录，再查看这个页面。" in page
    assert "Please sign in to see that page." not in page
