"""Staff accounts (issue 7.3, 7.5): password and TOTP for producers and partners, never an
emailed link; no staff role without a password; CLI users/tokens; expiring tokens; a mailed
password reset that asks for the second factor; sign-in links through the queue, capped per
email without locking the owner out."""
from __future__ import annotations

import base64
import email
import hashlib
import hmac
import re
import struct
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from filmfund import jobs
from filmfund.audit import list_audit
from filmfund.auth import services, totp
from filmfund.auth.models import ApiToken, LoginLink, Role, UserRole
from filmfund.db import utcnow
from filmfund.errors import ValidationError
from filmfund.extensions import db
from tests.site.helpers import CSRF_RE

PASSWORD = "a-long-producer-password"
MAGIC_RE = re.compile(r"(/login/magic/[A-Za-z0-9_-]+)")
RESET_RE = re.compile(r"(/login/reset/[A-Za-z0-9_-]+)")


def rfc6238(secret_b32: str, when: float) -> str:
    """The code an authenticator app shows, computed here independently of filmfund.auth.totp."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(when // 30)), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return str((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1_000_000).zfill(6)


def _outbox(app) -> list[Path]:
    return sorted(Path(app.config["OUTBOX_DIR"]).glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)


def _bodies(app) -> list[str]:
    return [email.message_from_bytes(p.read_bytes()).get_payload() for p in _outbox(app)]


def _csrf(client, path="/login") -> str:
    return CSRF_RE.search(client.get(path).get_data(as_text=True)).group(1)


def _post(client, path, ip="10.0.0.1", **data):
    data["csrf_token"] = _csrf(client, path if client.get(path).status_code == 200 else "/login")
    return client.post(path, data=data, environ_base={"REMOTE_ADDR": ip})


def _password_step(client, user_email, password=PASSWORD, next_=None, ip="10.0.0.1"):
    url = "/login" + (f"?next={next_}" if next_ else "")
    return client.post(url, data={"csrf_token": _csrf(client), "email": user_email, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


def _enrol(client, user_email) -> str:
    resp = _password_step(client, user_email)
    assert resp.status_code == 302 and resp.headers["Location"] == "/login/2fa/setup"
    page = client.get("/login/2fa/setup").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    assert "otpauth://totp/" in page and f"secret={secret}" in page
    assert client.get("/admin/").status_code == 302  # the password alone signs nobody in
    resp = _post(client, "/login/2fa/setup", code=rfc6238(secret, time.time()))
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/"
    return secret


@pytest.fixture
def boss(make_user):
    return make_user("boss@filmfund.test", "producer", password=PASSWORD)


def _signed_out(app):
    return app.test_client()


# ---------------------------------------------------------------- TOTP


def qr_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules (row, column) of a QR code drawn by segno as SVG: its path is read back
    ("M x y.5" then runs of "h n" and relative moves "m dx dy"), quiet zone of 4 taken off."""
    path = re.search(r'class="qrline"[^>]* d="([^"]+)"', svg) or re.search(r' d="([^"]+)"[^>]*class="qrline"', svg)
    assert path, "no QR path in the SVG"
    dark, x, y = set(), 0.0, 0.0
    for op, args in re.findall(r"([MmHh])([-\d.\s]+)", path.group(1)):
        nums = [float(n) for n in args.split()]
        if op == "M":
            x, y = nums
        elif op == "m":
            x, y = x + nums[0], y + nums[1]
        else:
            dark.update((int(y - 0.5) - 4, int(x) + i - 4) for i in range(int(nums[0])))
            x += nums[0]
    return dark


def segno_modules(uri: str) -> set[tuple[int, int]]:
    import segno

    matrix = segno.make(uri, error="m").matrix
    return {(r, c) for r, row in enumerate(matrix) for c, v in enumerate(row) if v}


def test_the_setup_page_draws_the_otpauth_link_as_a_qr_code(app, client, boss):
    """The QR code is the otpauth:// link itself (read back module by module and compared with
    segno's own encoding of the link shown beside it), inline SVG, the key text kept."""
    import html as html_lib

    _password_step(client, boss.email)
    page = client.get("/login/2fa/setup").get_data(as_text=True)
    uri = html_lib.unescape(re.search(r'id="totp-uri" value="([^"]+)"', page).group(1))
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
    svg = re.search(r'<figure class="totp-qr" id="totp-qr">(<svg.*?</svg>)', page, re.S).group(1)
    assert qr_modules(svg) == segno_modules(uri)
    assert qr_modules(svg) != segno_modules(uri.replace(secret, "A" * len(secret)))


def test_totp_module_matches_the_rfc_6238_vectors():
    secret = base64.b32encode(b"12345678901234567890").decode()
    for when, code in ((59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"),
                       (2000000000, "69279037")):
        assert totp.hotp(secret, int(when // 30), digits=8) == code
    assert totp.verify(secret, rfc6238(secret, 1234567890), when=1234567890) == 1234567890 // 30
    assert totp.verify(secret, rfc6238(secret, 1234567890), when=1234567890 + 95) is None  # too old
    assert totp.verify(secret, "12345x", when=0) is None and totp.verify(secret, "", when=0) is None


def test_producer_signs_in_with_password_and_a_real_totp_code(app, client, boss):
    secret = _enrol(client, boss.email)
    assert client.get("/admin/").status_code == 200
    db.session.refresh(boss)
    assert boss.has_totp
    # a second browser: the password leads to the code, the code (next step) signs in
    other = _signed_out(app)
    resp = _password_step(other, boss.email, next_="/admin/partner")
    assert resp.status_code == 302 and resp.headers["Location"] == "/login/2fa"
    assert other.get("/admin/").status_code == 302
    assert _post(other, "/login/2fa", code="000000" if rfc6238(secret, time.time()) != "000000" else "111111"
                 ).status_code == 401
    good = rfc6238(secret, time.time() + 30)
    resp = _post(other, "/login/2fa", code=good)
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/partner"  # `next` kept
    assert other.get("/admin/").status_code == 200
    # the same code cannot be used twice (replay)
    third = _signed_out(app)
    _password_step(third, boss.email)
    assert _post(third, "/login/2fa", code=good).status_code == 401
    assert third.get("/admin/").status_code == 302
    methods = [e.details_dict["method"] for e in list_audit(action="auth.sign_in")]
    assert methods == ["password+totp", "password+totp"]


def test_wrong_codes_send_back_to_the_password(app, client, boss):
    secret = _enrol(client, boss.email)
    other = _signed_out(app)
    _password_step(other, boss.email)
    for _ in range(5):
        resp = _post(other, "/login/2fa", code="99999" + str((int(rfc6238(secret, time.time())[-1]) + 1) % 10))
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    resp = _post(other, "/login/2fa", code=rfc6238(secret, time.time() + 30))
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    assert other.get("/admin/").status_code == 302


def test_code_guesses_are_limited_per_account_across_addresses(app, client, boss):
    secret = _enrol(client, boss.email)
    wrong = "12345" + str((int(rfc6238(secret, time.time())[-1]) + 1) % 10)
    codes = []
    for i in range(11):  # a fresh browser and address each time, as a botnet would
        other = _signed_out(app)
        _password_step(other, boss.email, ip=f"10.6.{i}.1")
        codes.append(_post(other, "/login/2fa", ip=f"10.6.{i}.1", code=wrong).status_code)
    assert codes == [401] * 10 + [429]


@pytest.mark.parametrize("app_overrides", [{"STAFF_TOTP": False}])
def test_a_setting_lets_producers_sign_in_without_totp(app, client, boss, app_overrides):
    resp = _password_step(client, boss.email)
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/"


def test_partner_without_totp_uses_the_password_and_may_enrol(app, client, make_user):
    partner = make_user("p@xinxing.test", "partner", password=PASSWORD)
    assert _password_step(client, partner.email).headers["Location"] == "/admin/partner"
    page = client.get("/login/2fa/setup").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    assert _post(client, "/login/2fa/setup", code=rfc6238(secret, time.time())).status_code == 302
    other = _signed_out(app)
    assert _password_step(other, partner.email).headers["Location"] == "/login/2fa"


def test_the_partners_set_up_page_gives_the_partners_reason(app, client, make_user, boss):
    """The partner is promised that no donor's data reaches it (its statement page says so), yet
    its set-up page said "staff accounts reach every donor's data". The partner reads a reason of
    its own; a producer, enrolling at its first sign-in, still reads that its account reaches
    every donor. In Chinese the page says 两步验证 and 身份验证器应用 (never 第二重验证, nor "App")."""
    partner = make_user("p@xinxing.test", "partner", password=PASSWORD)
    _password_step(client, partner.email)
    page = client.get("/login/2fa/setup?lang=en").get_data(as_text=True)
    assert "every donor" not in page and "confirmations of payouts" in page
    zh = client.get("/login/2fa/setup?lang=zh-Hans").get_data(as_text=True)
    assert "所有捐助者的数据" not in zh and "对账单" in zh
    assert "两步验证" in zh and "第二重" not in zh and "App" not in zh
    producer = _signed_out(app)
    _password_step(producer, boss.email)  # first sign-in: not signed in until the code is given
    assert "Staff accounts reach every donor's data" in producer.get("/login/2fa/setup?lang=en").get_data(as_text=True)


def _setup_secret(client) -> str:
    page = client.get("/login/2fa/setup").get_data(as_text=True)
    return re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)


def test_a_secret_shown_at_an_unfinished_enrolment_is_never_used_again(app, boss):
    """Issue 16.6: whoever saw the set-up page once (and knows the password) must not pass the
    second factor after the owner enrols."""
    onlooker = _signed_out(app)
    _password_step(onlooker, boss.email)
    seen = _setup_secret(onlooker)  # shown, never confirmed
    assert _setup_secret(onlooker) == seen  # a reload of the same page keeps what its app scanned

    owner = _signed_out(app)
    _password_step(owner, boss.email)
    mine = _setup_secret(owner)
    assert mine != seen
    # The onlooker's page is no longer the enrolment: its secret's code is refused, whatever it is.
    late = onlooker.post("/login/2fa/setup", data={"csrf_token": _csrf(onlooker), "code": rfc6238(seen, time.time())})
    assert late.status_code == 400 and "new key" in late.get_data(as_text=True)
    assert owner.post("/login/2fa/setup", data={"csrf_token": _csrf(owner),
                                                "code": rfc6238(mine, time.time())}).status_code == 302
    db.session.expire_all()
    assert boss.has_totp and boss.totp_secret == mine

    # Later: the onlooker signs in with the password and the old secret's code, and fails.
    intruder = _signed_out(app)
    assert _password_step(intruder, boss.email).headers["Location"] == "/login/2fa"
    for when in (time.time() - 30, time.time(), time.time() + 30):
        resp = _post(intruder, "/login/2fa", code=rfc6238(seen, when))
        assert resp.status_code in (401, 302) and resp.headers.get("Location") != "/admin/"
    assert intruder.get("/admin/").status_code == 302


def test_setup_page_refuses_donors_and_strangers(app, client, make_user, login_as):
    assert client.get("/login/2fa/setup").status_code == 302
    assert client.get("/login/2fa").status_code == 302
    login_as(client, make_user("d@example.org", "donor"))
    assert client.get("/login/2fa/setup").status_code == 403


# ---------------------------------------------------------------- never an emailed link


def _ask_link(client, address, ip="10.0.0.1"):
    resp = client.post("/login", data={"csrf_token": _csrf(client), "email": address},
                       environ_base={"REMOTE_ADDR": ip})
    assert resp.status_code == 302
    return resp


def test_a_donor_made_producer_gets_no_sign_in_link(app, client, runner, make_user):
    make_user("donor@example.org", "donor")
    _ask_link(client, "donor@example.org")
    jobs.run_burst()
    assert len(_outbox(app)) == 1
    old_link = MAGIC_RE.search(_bodies(app)[0]).group(1)
    # without a password the role is refused...
    assert runner.invoke(args=["users", "create", "donor@example.org", "--role", "producer"]).exit_code != 0
    # ...with one it is given, and from then on no link is mailed and the earlier link is dead
    result = runner.invoke(args=["users", "create", "donor@example.org", "--role", "producer", "--password-stdin"],
                           input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    _ask_link(client, "donor@example.org")
    jobs.run_burst()
    assert len(_outbox(app)) == 1
    page = client.get(old_link)
    resp = client.post(old_link, data={"csrf_token": CSRF_RE.search(page.get_data(as_text=True)).group(1)})
    assert resp.headers["Location"] == "/login"
    assert client.get("/admin/").status_code == 302


def test_a_staff_role_held_without_a_password_still_gets_no_link(app, client, make_user):
    user = make_user("legacy@filmfund.test", "donor")
    user.roles.append(UserRole(role=Role.PRODUCER))  # as an older version allowed
    db.session.commit()
    _ask_link(client, user.email)
    jobs.run_burst()
    assert _outbox(app) == []


def test_staff_role_needs_a_password(app, make_user):
    user = make_user("x@example.org", "donor")
    with pytest.raises(ValidationError, match="password"):
        services.grant_role(user, "partner")
    services.set_password(user, PASSWORD)
    services.grant_role(user, "partner")
    assert user.has_role("partner")


# ---------------------------------------------------------------- sign-in links: same work, cap


def test_known_and_unknown_emails_do_the_same_work_in_the_request(app, client, make_user):
    make_user("known@example.org", "donor")
    for address in ("known@example.org", "unknown@example.org"):
        before = len(jobs.mail)
        resp = _ask_link(client, address)
        assert (resp.status_code, resp.headers["Location"]) == (302, "/login")
        assert len(jobs.mail) == before + 1  # one queued task, whoever asks
        assert db.session.scalar(sa.select(sa.func.count(LoginLink.id))) == 0  # no write in the request
        assert _outbox(app) == []  # no mail in the request
    assert jobs.run_burst() == 2
    assert len(_outbox(app)) == 1


def test_a_flood_of_link_requests_never_locks_the_owner_out(app, client, make_user):
    donor = make_user("target@example.org", "donor")
    codes = [_ask_link(client, donor.email, ip=f"10.7.{i}.1").status_code for i in range(25)]
    assert codes == [302] * 25  # never refused: the owner's own request is answered as usual
    jobs.run_burst()
    bodies = _bodies(app)
    assert 1 <= len(bodies) <= app.config["LOGIN_MAILS_PER_HOUR"]  # the inbox is not flooded
    live = db.session.scalar(sa.select(sa.func.count(LoginLink.id)).where(
        LoginLink.user_id == donor.id, LoginLink.used_at.is_(None), LoginLink.expires_at > utcnow()))
    assert live <= app.config["LOGIN_LINKS_PER_EMAIL"]
    # the owner asks too, then uses the newest link in the inbox: it works
    _ask_link(client, donor.email, ip="10.8.0.1")
    jobs.run_burst()
    newest = MAGIC_RE.search(_bodies(app)[-1]).group(1)
    owner = app.test_client()
    page = owner.get(newest)
    resp = owner.post(newest, data={"csrf_token": CSRF_RE.search(page.get_data(as_text=True)).group(1)})
    assert resp.headers["Location"] == "/account"
    assert owner.get("/account").status_code == 200
    # the oldest link of the flood was retired
    oldest = MAGIC_RE.search(bodies[0]).group(1)
    if oldest != newest:
        other = app.test_client()
        page = other.get(oldest)
        resp = other.post(oldest, data={"csrf_token": CSRF_RE.search(page.get_data(as_text=True)).group(1)})
        assert resp.headers["Location"] == "/login"


# ---------------------------------------------------------------- password reset


def test_password_reset_by_mail_asks_for_the_second_factor(app, client, boss):
    secret = _enrol(client, boss.email)
    stranger = _signed_out(app)
    for address in (boss.email, "nobody@filmfund.test"):
        resp = _post(stranger, "/login/reset", email=address)
        assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    jobs.run_burst()
    resets = [b for b in _bodies(app) if RESET_RE.search(b)]
    assert len(resets) == 1
    link = RESET_RE.search(resets[0]).group(1)
    page = stranger.get(link).get_data(as_text=True)
    assert 'name="code"' in page
    new = "a-brand-new-password"
    no_code = stranger.post(link, data={"csrf_token": _csrf(stranger, link), "password": new, "password2": new})
    assert no_code.status_code == 400
    wrong = stranger.post(link, data={"csrf_token": _csrf(stranger, link), "password": new, "password2": new,
                                      "code": "12345" + str((int(rfc6238(secret, time.time())[-1]) + 1) % 10)})
    assert wrong.status_code == 400 and "used up" in wrong.get_data(as_text=True)
    assert services.authenticate(boss.email, PASSWORD) is not None  # unchanged so far
    # One wrong code spent the link: even the right code does nothing with it now.
    assert stranger.get(link).status_code == 302
    spent = stranger.post(link, data={"csrf_token": _csrf(stranger), "password": new, "password2": new,
                                      "code": rfc6238(secret, time.time())})
    assert spent.status_code == 302 and services.authenticate(boss.email, PASSWORD) is not None
    failed = list_audit(action="auth.sign_in_failed")
    assert [(e.target, e.details_dict["reason"]) for e in failed] == [(f"user:{boss.id}", "reset_code")]
    _post(stranger, "/login/reset", email=boss.email)  # the owner who mistyped asks again
    jobs.run_burst()
    (link,) = {RESET_RE.search(b).group(1) for b in _bodies(app) if RESET_RE.search(b)} - {link}
    done = stranger.post(link, data={"csrf_token": _csrf(stranger, link), "password": new, "password2": new,
                                     "code": rfc6238(secret, time.time() + 30)})
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    db.session.expire_all()
    assert services.authenticate(boss.email, PASSWORD) is None
    assert services.authenticate(boss.email, new) is not None
    assert client.get("/admin/").status_code == 302  # the sessions of the old password ended
    assert stranger.get(link).status_code == 302  # used up
    assert [e.target for e in list_audit(action="auth.password_reset")] == [f"user:{boss.id}"]


def test_a_producer_without_a_second_factor_yet_gets_no_reset_link(app, client, boss):
    _post(client, "/login/reset", email=boss.email)  # the mailbox alone must not be enough
    jobs.run_burst()
    assert _outbox(app) == []


def test_donors_get_no_reset_link(app, client, make_user):
    make_user("d@example.org", "donor")
    _post(client, "/login/reset", email="d@example.org")
    jobs.run_burst()
    assert _outbox(app) == []


# ---------------------------------------------------------------- CLI and tokens


def test_users_list_remove_role_and_set_password(app, runner, client, make_user, login_as):
    boss = make_user("boss@filmfund.test", "producer", password=PASSWORD)
    make_user("d@example.org", "donor")
    listed = runner.invoke(args=["users", "list"]).output.splitlines()
    assert listed[0].split("\t")[:4] == ["boss@filmfund.test", "producer", "password", "no-totp"]
    assert listed[1].split("\t")[:3] == ["d@example.org", "donor", "no-password"]
    assert runner.invoke(args=["users", "list", "--role", "producer"]).output.count("\n") == 1
    login_as(client, boss)
    assert client.get("/admin/").status_code == 200
    result = runner.invoke(args=["users", "remove-role", "boss@filmfund.test", "--role", "producer"])
    assert result.exit_code == 0, result.output
    assert client.get("/admin/").status_code == 302  # the session ended with the role
    assert runner.invoke(args=["users", "remove-role", "boss@filmfund.test", "--role", "producer"]).exit_code != 0
    assert runner.invoke(args=["users", "set-password", "boss@filmfund.test", "--password-stdin"],
                         input="short\n").exit_code != 0
    result = runner.invoke(args=["users", "set-password", "boss@filmfund.test", "--password-stdin"],
                           input="another-long-password\n")
    assert result.exit_code == 0 and "another-long-password" not in result.output
    db.session.expire_all()
    assert services.authenticate("boss@filmfund.test", "another-long-password") is not None
    assert runner.invoke(args=["users", "set-password", "ghost@example.org", "--password-stdin"],
                         input="another-long-password\n").exit_code != 0
    actions = {e.action for e in list_audit()}
    assert {"role.remove", "password.change"} <= actions


def test_tokens_expire_record_their_use_and_can_be_listed_and_revoked(app, runner, client, make_user):
    make_user("p@xinxing.test", "partner", password=PASSWORD)
    token = runner.invoke(args=["tokens", "create", "p@xinxing.test"]).output.strip()
    row = db.session.scalar(sa.select(ApiToken))
    assert timedelta(days=89) < row.expires_at - row.created_at <= timedelta(days=90)
    assert row.last_used_at is None
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/partner/statement", headers=headers).status_code == 200
    db.session.expire_all()
    assert db.session.get(ApiToken, row.id).last_used_at is not None
    listing = runner.invoke(args=["tokens", "list"]).output
    assert listing.split("\t")[:3] == [str(row.id), "p@xinxing.test", "active"]
    assert token not in listing and row.token_hash not in listing
    # expiry
    db.session.get(ApiToken, row.id).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert client.get("/api/v1/partner/statement", headers=headers).status_code == 401
    assert "\texpired\t" in runner.invoke(args=["tokens", "list", "p@xinxing.test"]).output
    # revocation
    second = runner.invoke(args=["tokens", "create", "p@xinxing.test", "--days", "7"]).output.strip()
    assert client.get("/api/v1/partner/statement", headers={"Authorization": f"Bearer {second}"}).status_code == 200
    second_id = max(r.id for r in db.session.scalars(sa.select(ApiToken)))
    assert runner.invoke(args=["tokens", "revoke", str(second_id)]).exit_code == 0
    assert client.get("/api/v1/partner/statement", headers={"Authorization": f"Bearer {second}"}).status_code == 401
    assert runner.invoke(args=["tokens", "revoke", "999999"]).exit_code != 0
    assert runner.invoke(args=["tokens", "create", "p@xinxing.test", "--days", "0"]).exit_code != 0
    assert [e.details_dict["token_id"] for e in list_audit(action="token.revoke")] == [second_id]


@pytest.mark.parametrize("app_overrides", [{"TOKEN_TTL_DAYS": 3}])
def test_token_lifetime_is_a_setting(app, runner, make_user, app_overrides):
    make_user("p@xinxing.test", "partner", password=PASSWORD)
    runner.invoke(args=["tokens", "create", "p@xinxing.test"])
    row = db.session.scalar(sa.select(ApiToken))
    assert row.expires_at - row.created_at == timedelta(days=3)


# ---------------------------------------------------------------- what a change ends


def _reset_form(client, link: str, password: str, code: str | None = None):
    """The reset form posted as a browser would (its CSRF token from the sign-in page: the link's
    own page may no longer open)."""
    data = {"csrf_token": _csrf(client), "password": password, "password2": password}
    if code is not None:
        data["code"] = code
    return client.post(link, data=data, environ_base={"REMOTE_ADDR": "10.0.0.9"})


def _new_reset_link(email_address: str) -> str:
    from filmfund.auth import links

    user, token, _ttl = links.new_link(email_address, links.RESET)
    db.session.commit()
    return f"/login/reset/{token}"


def test_a_staff_role_given_ends_the_accounts_sessions(app, client, runner, make_user, login_as):
    """A partner signed in with the password alone (partners need no second factor) is made a
    producer: that session must not carry the producers' pages, which ask for the code. Every
    session of the account ends, one that kept no record of its factors too."""
    partner = make_user("p@xinxing.test", "partner", password=PASSWORD)
    assert _password_step(client, partner.email).headers["Location"] == "/admin/partner"
    assert client.get("/admin/").status_code == 403
    unmarked = login_as(_signed_out(app), partner)
    assert unmarked.get("/admin/partner").status_code == 200
    result = runner.invoke(args=["users", "create", partner.email, "--role", "producer"])
    assert result.exit_code == 0, result.output
    resp = client.get("/admin/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
    assert client.get("/admin/partner").status_code == 302  # ended, not just narrowed
    assert unmarked.get("/admin/").status_code == 302 and unmarked.get("/admin/partner").status_code == 302
    # signing in again asks what a producer's sign-in asks: a second factor, set up first
    assert _password_step(client, partner.email).headers["Location"] == "/login/2fa/setup"
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("app_overrides", [{"STAFF_TOTP": False}])
def test_a_session_signed_in_with_one_factor_ends_when_the_account_asks_two(app, client, boss, app_overrides):
    """The session keeps how its sign-in went: once the account asks a second factor (the setting
    turned on; a factor added in another browser), a password-only session is no session."""
    assert _password_step(client, boss.email).headers["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    app.config["STAFF_TOTP"] = True
    resp = client.get("/admin/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")

    partner = services.find_user(boss.email)  # a partner now, with no factor: the password is enough
    services.remove_role(partner, "producer")
    services.set_password(partner, PASSWORD)
    services.grant_role(partner, "partner")
    db.session.commit()
    first, second = _signed_out(app), _signed_out(app)
    for browser in (first, second):
        assert _password_step(browser, partner.email).headers["Location"] == "/admin/partner"
    secret = _setup_secret(second)  # the partner adds a second factor in the second browser
    assert _post(second, "/login/2fa/setup", code=rfc6238(secret, time.time())).status_code == 302
    assert second.get("/admin/partner").status_code == 200  # it gave the code: still signed in
    assert first.get("/admin/partner").status_code == 302  # the password alone: signs in again


def test_full_width_digits_are_a_code_and_other_digits_a_wrong_one(app, client, boss):
    """A Chinese input method in full-width mode types ０-９: read as the digits. Arabic-Indic
    digits (str.isdigit takes them) are a wrong code, counted and audited, never a server error."""
    full_width = str.maketrans("0123456789", "０１２３４５６７８９")
    _password_step(client, boss.email)
    secret = _setup_secret(client)
    resp = _post(client, "/login/2fa/setup", code=rfc6238(secret, time.time()).translate(full_width))
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/"
    other = _signed_out(app)
    _password_step(other, boss.email)
    assert _post(other, "/login/2fa", code="\u0661\u0662\u0663\u0664\u0665\u0666").status_code == 401
    assert _post(other, "/login/2fa", code="\u00b9\u00b2\u00b3\u2074\u2075\u2076").status_code == 401
    failed = list_audit(action="auth.sign_in_failed")
    assert [(e.target, e.details_dict["reason"]) for e in failed] == [(f"user:{boss.id}", "second_factor")] * 2
    code = rfc6238(secret, time.time() + 30).translate(full_width)
    resp = _post(other, "/login/2fa", code=f"{code[:3]}\u3000{code[3:]}")  # the ideographic space too
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/"


def test_sign_in_answers_are_never_kept_by_a_cache(app, client, boss):
    """The half-signed-in steps load no user, yet the set-up page shows the key: every sign-in
    answer says no-store, whoever asks."""
    for path in ("/login", "/login/reset", "/login/magic/unknown", "/login/2fa"):
        assert "no-store" in _signed_out(app).get(path).headers.get("Cache-Control", ""), path
    _password_step(client, boss.email)
    setup = client.get("/login/2fa/setup")
    assert 'id="totp-secret"' in setup.get_data(as_text=True)
    assert "no-store" in setup.headers.get("Cache-Control", "")
    partner = services.find_user(boss.email)
    services.remove_role(partner, "producer")
    services.grant_role(partner, "partner")
    db.session.commit()
    form = _signed_out(app).get(_new_reset_link(partner.email))
    assert 'name="password2"' in form.get_data(as_text=True)
    assert "no-store" in form.headers.get("Cache-Control", "")


def test_a_reset_link_dies_when_the_account_would_no_longer_be_mailed_one(app, make_user):
    """A partner without a second factor may reset by mail. Made a producer, who must have one,
    the account gets no reset link by mail: one mailed before must not choose the password either."""
    partner = make_user("p@xinxing.test", "partner", password=PASSWORD)
    link = _new_reset_link(partner.email)
    services.grant_role(partner, "producer")
    db.session.commit()
    thief = _signed_out(app)
    assert thief.get(link).status_code == 302
    assert _reset_form(thief, link, "the-takers-password").status_code == 302
    db.session.expire_all()
    assert services.authenticate(partner.email, "the-takers-password") is None
    assert services.authenticate(partner.email, PASSWORD) is not None


def test_reset_totp_retires_the_accounts_reset_links(app, client, runner, boss):
    """A reset link mailed while the old phone stood dies with `users reset-totp`: once a new
    factor is set up, it would otherwise take that factor's code as if mailed for it."""
    _enrol(client, boss.email)
    link = _new_reset_link(boss.email)
    assert runner.invoke(args=["users", "reset-totp", boss.email]).exit_code == 0
    secret = _enrol(_signed_out(app), boss.email)  # the owner's new phone
    thief = _signed_out(app)
    assert thief.get(link).status_code == 302
    assert _reset_form(thief, link, "the-takers-password", rfc6238(secret, time.time() + 30)).status_code == 302
    db.session.expire_all()
    assert services.authenticate(boss.email, PASSWORD) is not None


def test_a_password_change_retires_the_other_reset_links(app, runner, make_user):
    """Two live links (one kept by whoever read the mailbox once): the owner resets with one, and
    the other dies; a password set by the CLI retires them as well."""
    partner = make_user("p@xinxing.test", "partner", password=PASSWORD)
    kept, used = _new_reset_link(partner.email), _new_reset_link(partner.email)
    owner = _signed_out(app)
    assert "password2" in owner.get(used).get_data(as_text=True)
    assert _reset_form(owner, used, "the-owners-password").headers["Location"] == "/login"
    thief = _signed_out(app)
    assert thief.get(kept).status_code == 302
    assert _reset_form(thief, kept, "the-takers-password").status_code == 302
    db.session.expire_all()
    assert services.authenticate(partner.email, "the-owners-password") is not None
    assert db.session.scalar(sa.select(sa.func.count(LoginLink.id)).where(LoginLink.used_at.is_not(None))) == 1

    later = _new_reset_link(partner.email)
    result = runner.invoke(args=["users", "set-password", partner.email, "--password-stdin"],
                           input="another-long-password\n")
    assert result.exit_code == 0, result.output
    assert thief.get(later).status_code == 302
