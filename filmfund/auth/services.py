"""Use cases of accounts: users and roles, passwords (argon2), the TOTP second factor.

API tokens are in `tokens.py`, mailed links (donor sign-in, staff password reset) in `links.py`;
their functions are re-exported here for the callers that know them by this module.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from urllib.parse import urlsplit

import idna
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_request_context, request, url_for
from flask_babel import gettext as _

from filmfund.audit import record_audit, user_ref
from filmfund.auth import totp
from filmfund.auth.models import STAFF_ROLES, LoginLink, Role, User, UserRole
from filmfund.db import utcnow
from filmfund.errors import NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.typed import half_width

_hasher = PasswordHasher()
# Used to spend the same time on an unknown email as on a wrong password. Made on the first
# sign-in, not at import: argon2 takes 64 MiB while it hashes, and every process (the worker
# too) would otherwise carry that peak from start-up.
_DUMMY_HASH: str | None = None
# The domain as DNS has it (ASCII; an internationalized one in its IDNA form, a Chinese top-level
# domain such as .中国 included: xn--fiqs8s): labels of letters, digits and hyphens, none empty
# ("qq..com"), none starting or ending with a hyphen, at most 63 long (RFC 1123, 2.1), which no
# mail server would take otherwise. The local part refuses the full-width forms of the characters
# it refuses: normalize_email reads them as those (typed.half_width).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# What prints nothing (typed.py's rule, the zero-width joiners too), and the rest of Unicode's
# default-ignorable code points (variation selectors, the Hangul fillers, the combining grapheme
# joiner, the tags): refused in an address, never taken out. "mei\u200b@qq.com" is another mailbox
# than mei@qq.com that reads the same, and "\u202emoc.liamg@x.cn" reads as "nc.x@gmail.com":
# taking the character out would count a stranger's gifts on the donor a reader sees. Written
# for Python's re and the schema's regex alike: \uXXXX in the BMP, the character itself beyond.
# Unassigned code points change with the Unicode version, so they are not listed: an address
# with one shows a box, not a look-alike, and the server refuses exactly what the API's schema does.
_INVISIBLE_RANGES = (
    (0x00, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x34F, 0x34F), (0x600, 0x605), (0x61C, 0x61C),
    (0x6DD, 0x6DD), (0x70F, 0x70F), (0x890, 0x891), (0x8E2, 0x8E2), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x206F),
    (0x3164, 0x3164), (0xE000, 0xF8FF), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF), (0xF0000, 0x10FFFF),
)


def _class_char(code: int) -> str:
    return f"\\u{code:04x}" if code < 0x10000 else chr(code)


_INVISIBLE = "".join(_class_char(a) if a == b else f"{_class_char(a)}-{_class_char(b)}" for a, b in _INVISIBLE_RANGES)
# Lone surrogates too, in Python's re only: the schema's regex cannot name them, and a JSON
# string that carries one is refused before it.
_SURROGATES = r"\ud800-\udfff"


def _address(also: str = "") -> str:
    return (rf"[^@\s<>\"',;{_INVISIBLE}{also}\uff02\uff07\uff0c\uff1b\uff1c\uff1e\uff20]{{1,64}}"
            rf"@(?:{_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]{{0,58}}[A-Za-z0-9])")


_EMAIL = _address()
EMAIL_RE = re.compile(f"^{_address(_SURROGATES)}$")
# Anywhere in an address as typed: the domain too, before IDNA's mapping drops a zero-width space.
_INVISIBLE_RE = re.compile(f"[{_INVISIBLE}{_SURROGATES}]")
EMAIL_MAX = 254  # a path's limit (RFC 5321), and the column's
# The same rule for an API's JSON Schema (ECMA-262 syntax), before normalize_email trims: ASCII
# spaces around (str.strip trims those, and more), so whatever the schema admits is accepted. A
# program sends the address as DNS has it; what a person types is read more widely (below).
EMAIL_PATTERN = rf"^[ \t\n\r\f\v]*{_EMAIL}[ \t\n\r\f\v]*$"
PASSWORD_MIN, PASSWORD_MAX = 10, 1024


def normalize_email(email: str | None) -> str:
    """The address as it is stored and compared: one form for one mailbox, however it was typed.

    A Chinese input method's full-width forms are read as ASCII (`typed.half_width`:
    "ｍｅｉ＠ｑｑ．ｃｏｍ"), and an internationalized domain is written as DNS has it (IDNA with
    UTS 46: "例子.中国" is xn--fsqu00a.xn--fiqs8s, and the ideographic full stop that such an input
    method types for "." is a dot). The browser sends an address typed into the form that way
    already; Stripe, the API and the command line may not, and they must find the same donor."""
    value = half_width(email or "").strip() if isinstance(email, str) or email is None else ""
    if _INVISIBLE_RE.search(value):  # refused, never stripped (above); the schema's pattern says the same
        raise ValidationError(_("Give a valid email address."), code="invalid_email")
    local, _at, domain = value.rpartition("@")
    if domain and not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError:
            domain = ""
    value = f"{local}@{domain}"
    if len(value) > EMAIL_MAX or not EMAIL_RE.match(value):  # an IDNA domain is longer than it was typed
        raise ValidationError(_("Give a valid email address."), code="invalid_email")
    return f"{local}@{domain.lower()}"


def email_search_form(typed: str) -> str:
    """The start of an address as a person types it into a search, in the form addresses are
    stored (normalize_email's), as far as it goes: full-width forms read as ASCII, and each label
    of a domain typed in its own letters in its DNS form ("mei@例子.中" finds mei@例子.中国 only
    once the label is whole: a label's DNS form is not built letter by letter). Lowercase."""
    text = half_width(typed).strip()
    local, at, domain = text.rpartition("@")
    if not at or domain.isascii():
        return text.lower()
    try:
        labels = [idna.alabel(label).decode("ascii") if label and not label.isascii() else label
                  for label in idna.uts46_remap(domain, std3_rules=False).split(".")]
    except (idna.IDNAError, UnicodeError):
        return text.lower()  # no label a domain can have: it finds nothing, as typed
    return f"{local}@{'.'.join(labels)}".lower()


def email_for_people(email: str | None) -> str:
    """A stored address as its owner wrote it, for a page to show: an internationalized domain in
    its own letters ("mei@例子.中国", stored as mei@xn--fsqu00a.xn--fiqs8s), anything else as
    stored. Never for a mail's header, a link or a file a program reads: those take the stored form.

    A label that mixes scripts stays in its DNS form, as browsers show such names: "qq.cοm" with a
    Greek omicron would otherwise read as qq.com on the crew's pages, beside the real one."""
    if not email or "xn--" not in email.lower():
        return email or ""
    local, _at, domain = email.rpartition("@")
    try:
        labels = idna.decode(domain).split(".")
    except idna.IDNAError:  # not an IDNA name after all: shown as it is
        return email
    if any(len(_scripts(label)) > 1 for label in labels):
        return email
    return f"{local}@{'.'.join(labels)}"


def _scripts(label: str) -> set[str]:
    """The scripts of a label's letters, as their Unicode names begin (LATIN, CYRILLIC, CJK...)."""
    return {unicodedata.name(c, "?").split(" ", 1)[0] for c in label if c.isalpha()}


def find_user(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == email.lower()))


def user_by_email(email: str) -> User:
    user = find_user(normalize_email(email))
    if user is None:
        raise NotFoundError(f"No user with email {email}.", code="unknown_user")
    return user


def ensure_user(email: str) -> User:
    """The user with that email, created (with no role) if need be."""
    email = normalize_email(email)
    user = find_user(email)
    return user if user is not None else new_user(email)


def new_user(email: str, role: Role | str | None = None) -> User:
    """A new account, for a caller that has just found none with that email (two callers racing
    to make it: the second one's flush fails on the unique email). Its roles start as a known
    empty list, so that granting the first one reads nothing back."""
    user = User(email=normalize_email(email), roles=[])
    db.session.add(user)
    if role is None:
        db.session.flush()
    else:
        grant_role(user, role)  # flushes the account and its role together
    return user


def grant_role(user: User, role: Role | str) -> None:
    """Give `role`. A staff role (producer, partner) needs a password first: staff never sign in
    by a mailed link, so a staff account without a password would be one without a door."""
    role = Role(role)
    if role.value in user.role_names:
        return
    if role.value in STAFF_ROLES and not user.password_hash:
        raise ValidationError(f"{user.email} has no password: a {role.value} signs in with a password, so set one "
                              f"first (filmfund users set-password {user.email}, or --password-stdin).",
                              code="password_required")
    user.roles.append(UserRole(role=role))
    if role.value in STAFF_ROLES and user.session_version is not None:  # None: not yet written, no session
        # A session passed the sign-in the account asked before the role: a partner's password alone
        # would otherwise carry a producer's pages without the second factor. It signs in again.
        end_sessions(user)
    if role != Role.DONOR:  # donors are made by their gifts; staff roles are staff actions
        record_audit("role.grant", user_ref(user), {"role": role.value})
    db.session.flush()


def get_or_create_user(email: str, role: Role | str = Role.DONOR) -> User:
    """The user with that email, created if need be, holding `role` (roles add up)."""
    user = ensure_user(email)
    grant_role(user, role)
    return user


def remove_role(user: User, role: Role | str) -> None:
    """Take `role` away; the user's sessions end (a copied cookie stops carrying the old role)."""
    role = Role(role)
    row = next((r for r in user.roles if r.role == role), None)
    if row is None:
        raise ValidationError(f"{user.email} does not have the role {role.value}.", code="no_such_role")
    user.roles.remove(row)
    user.session_version += 1
    record_audit("role.remove", user_ref(user), {"role": role.value})
    db.session.flush()


def list_users(role: Role | str | None = None) -> list[User]:
    query = sa.select(User).order_by(User.email)
    if role:
        query = query.where(User.roles.any(UserRole.role == Role(role)))
    return list(db.session.scalars(query))


def validate_password(password) -> None:
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        raise ValidationError(_("A password needs at least %(n)s characters.", n=PASSWORD_MIN), code="weak_password")
    if len(password) > PASSWORD_MAX:
        raise ValidationError(_("A password has at most %(n)s characters.", n=PASSWORD_MAX), code="weak_password")


def set_password(user: User, password: str) -> None:
    """Every password change passes here (the CLI, a mailed reset): the account's sessions end and
    its unused mailed links retire."""
    validate_password(password)
    had = bool(user.password_hash)
    user.password_hash = _hasher.hash(password)
    user.session_version += 1
    db.session.flush()
    expire_links(user)
    record_audit("password.change" if had else "password.set", user_ref(user))


def authenticate(email: str, password: str) -> User | None:
    """The user if the password matches (the first factor only; nothing recorded yet).
    The same work and answer whether or not the email exists. A hash made with older argon2
    parameters is made again (the caller commits)."""
    try:
        user = find_user(normalize_email(email))
    except ValidationError:
        user = None
    if not isinstance(password, str) or len(password) > PASSWORD_MAX:
        password = ""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher.hash("not-a-password")
    stored = user.password_hash if user and user.password_hash else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.password_hash:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


# ---------------------------------------------------------------- the second factor


def totp_required(user: User) -> bool:
    """Producers need a second factor (unless FILMFUND_STAFF_TOTP=0); anyone enrolled uses theirs."""
    if user.has_totp:
        return True
    return user.has_role(Role.PRODUCER.value) and current_app.config.get("STAFF_TOTP", True)


def enrolment_mark(secret: str) -> str:
    """What the enrolling browser keeps (in its session) of the secret its page showed."""
    return hashlib.sha256(("totp-enrolment:" + secret).encode()).hexdigest()[:32]


def start_totp_enrolment(user: User, mark: str | None = None) -> str:
    """The secret of this enrolment: a new one, replacing any unconfirmed one, unless `mark` says
    this very browser was shown the unconfirmed one (a reload of the page keeps what its app scanned).

    Never the secret another, unfinished enrolment showed: whoever saw that page once (over a
    shoulder, on a shared screen, with the password in an earlier session) would otherwise pass
    the second factor for good once the owner enrols with it. A confirmed factor is kept.
    The caller commits."""
    if user.has_totp:
        raise ValidationError(_("A second factor is already set up for this account."), code="totp_enrolled")
    if user.totp_secret and mark and hmac.compare_digest(mark, enrolment_mark(user.totp_secret)):
        return user.totp_secret
    user.totp_secret = totp.new_secret()
    user.totp_last_step = None
    return user.totp_secret


def totp_uri(user: User) -> str:
    issuer = current_app.config.get("TOTP_ISSUER") or "filmfund"
    return totp.otpauth_uri(user.totp_secret or "", user.email, issuer)


def check_totp(user: User, code: str) -> bool:
    """The code is right for this user, and its time step was not used before (then it is used
    up: the row stays locked until the caller commits, so a second request with the same code
    waits and then finds the step taken)."""
    if not user.totp_secret or not isinstance(code, str):
        return False
    step = totp.verify(user.totp_secret, code, last_step=user.totp_last_step)
    if step is None:
        return False
    # Claim the step atomically: two requests racing with the same code cannot both pass.
    claimed = db.session.execute(
        sa.update(User).where(User.id == user.id, sa.or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)).rowcount
    return claimed == 1


def confirm_totp(user: User, code: str) -> None:
    """The first right code confirms the enrolment (audited). The caller commits."""
    if user.has_totp:
        raise ValidationError(_("A second factor is already set up for this account."), code="totp_enrolled")
    if not check_totp(user, code):
        raise ValidationError(_("That code is not right: give the 6 digits your app shows now."), code="invalid_code")
    db.session.refresh(user)
    user.totp_confirmed_at = utcnow()
    record_audit("auth.totp_enrol", user_ref(user), actor=user)


def reset_totp(user: User) -> None:
    """Forget the second factor (a lost phone): the next sign-in enrols a new one. The caller commits."""
    user.totp_secret = None
    user.totp_confirmed_at = None
    user.totp_last_step = None
    user.session_version += 1
    # A reset link mailed while the factor stood would let its mailbox alone choose the password
    # now (and then enrol a factor of the taker's own); links.reset_password refuses it as well.
    expire_links(user)
    record_audit("auth.totp_reset", user_ref(user))


def complete_sign_in(user: User, method: str) -> None:
    """Both factors passed (or a donor's link): record it. The caller commits."""
    user.last_login_at = utcnow()
    if user.is_staff:
        record_audit("auth.sign_in", user_ref(user), {"method": method}, actor=user)


# ---------------------------------------------------------------- sessions and links


def load_user_from_session(session_id: str) -> User | None:
    public_id, _colon, version = (session_id or "").partition(":")
    user = db.session.scalar(sa.select(User).where(User.public_id == public_id))
    if user is None or str(user.session_version) != version:
        return None
    return user


def end_sessions(user: User) -> None:
    """Invalidate every session cookie of this user (logout is server-side, not just a cookie
    delete). The caller commits."""
    user.session_version += 1


def expire_links(user: User) -> None:
    """Retire every mailed link of the account not used yet (sign-in and reset alike): a link
    mailed before a password or a second factor changed must not outlive the change (one kept by
    whoever read the mailbox once would choose the password again). The caller commits."""
    now = utcnow()
    db.session.execute(sa.update(LoginLink).where(LoginLink.user_id == user.id, LoginLink.used_at.is_(None),
                                                  LoginLink.expires_at > now).values(expires_at=now))


LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def public_base_url() -> str:
    """The base of every absolute link we send out (mail, Stripe's return URLs).

    FILMFUND_PUBLIC_URL when set. Otherwise the request's own host only when it is a loopback
    name: a Host header is the client's to choose, and trusting it would let anyone have a
    victim mailed a working sign-in link that points at the attacker's host.
    """
    base = current_app.config.get("PUBLIC_URL")
    if base:
        return base.rstrip("/")
    if has_request_context() and urlsplit("//" + request.host).hostname in LOOPBACK_HOSTS:
        return request.host_url.rstrip("/")
    # FILMFUND_SERVED_URL: the address `filmfund run` serves on, which it hands to its web processes
    # and its embedded worker (a worker builds receipts and updates without any request).
    return current_app.config.get("FALLBACK_PUBLIC_URL") or "http://127.0.0.1:5000"


def external_url(endpoint: str, **values) -> str:
    """An absolute URL for mail and redirects off-site (see public_base_url)."""
    return public_base_url() + url_for(endpoint, **values)

