"""Use cases of accounts: users and roles, passwords (argon2), API tokens, magic links."""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from urllib.parse import urlsplit

from flask import current_app, has_request_context, request, url_for

from filmfund.audit import record_audit
from filmfund.auth.models import ApiToken, LoginLink, Role, User, UserRole
from filmfund.db import utcnow
from filmfund.errors import ValidationError
from filmfund.extensions import db

_hasher = PasswordHasher()
# Used to spend the same time on an unknown email as on a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-password")
EMAIL_RE = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


def normalize_email(email: str | None) -> str:
    value = (email or "").strip()
    if not EMAIL_RE.match(value):
        raise ValidationError("Give a valid email address.", code="invalid_email")
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find_user(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == email.lower()))


def get_or_create_user(email: str, role: Role | str = Role.DONOR) -> User:
    """The user with that email, created if need be, holding `role` (roles add up)."""
    email = normalize_email(email)
    role = Role(role)
    user = find_user(email)
    if user is None:
        user = User(email=email)
        db.session.add(user)
    if role.value not in user.role_names:
        user.roles.append(UserRole(role=role))
        if role != Role.DONOR:  # donors are made by their gifts; staff roles are staff actions
            record_audit("role.grant", user.email, {"role": role.value})
    db.session.flush()
    return user


def set_password(user: User, password: str) -> None:
    if len(password) < 10:
        raise ValidationError("A password needs at least 10 characters.", code="weak_password")
    user.password_hash = _hasher.hash(password)
    user.session_version += 1


def authenticate(email: str, password: str) -> User | None:
    """The user if the password matches; the same work and answer whether or not the email exists."""
    try:
        user = find_user(normalize_email(email))
    except ValidationError:
        user = None
    stored = user.password_hash if user and user.password_hash else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.password_hash:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    record_audit("auth.sign_in", user.email, {"method": "password"}, actor=user)
    db.session.commit()
    return user


def create_api_token(email: str) -> str:
    user = find_user(normalize_email(email))
    if user is None:
        raise ValidationError(f"No user with email {email}.", code="unknown_user")
    token = "ff_" + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=_digest(token))
    db.session.add(row)
    db.session.flush()
    record_audit("token.create", user.email, {"token_id": row.id})
    db.session.commit()
    return token


def user_for_token(token: str) -> User | None:
    if not token or len(token) > 200:
        return None
    row = db.session.scalar(
        sa.select(ApiToken).where(ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None))
    )
    return row.user if row else None


def load_user_from_session(session_id: str) -> User | None:
    public_id, _, version = (session_id or "").partition(":")
    user = db.session.scalar(sa.select(User).where(User.public_id == public_id))
    if user is None or str(user.session_version) != version:
        return None
    return user


def end_sessions(user: User) -> None:
    """Invalidate every session cookie of this user (logout is server-side, not just a cookie delete)."""
    user.session_version += 1
    db.session.commit()


def request_login_link(email: str) -> None:
    """Mail a sign-in link if the email is a user's. Says nothing either way (no enumeration)."""
    from filmfund.mail import send_mail

    try:
        user = find_user(normalize_email(email))
    except ValidationError:
        return
    if user is None:
        return
    token = secrets.token_urlsafe(32)
    ttl = current_app.config["MAGIC_LINK_TTL"]
    db.session.add(LoginLink(user_id=user.id, token_hash=_digest(token),
                             expires_at=utcnow() + timedelta(seconds=ttl)))
    db.session.commit()
    link = external_url("auth.magic", token=token)
    send_mail(user.email, "Your filmfund sign-in link",
              f"Sign in to see your donations and rewards:\n\n{link}\n\n"
              f"The link works once, within {ttl // 60} minutes. If you did not ask for it, ignore this email.\n")


def consume_login_link(token: str) -> User | None:
    """The link's user, once: a used, expired or unknown link gives None."""
    link = db.session.scalar(sa.select(LoginLink).where(LoginLink.token_hash == _digest(token or "")))
    now = utcnow()
    if link is None or link.used_at is not None or link.expires_at <= now:
        return None
    # Claim it atomically so two clicks racing cannot both sign in.
    claimed = db.session.execute(
        sa.update(LoginLink).where(LoginLink.id == link.id, LoginLink.used_at.is_(None)).values(used_at=now)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        return None
    link.user.last_login_at = now
    db.session.commit()
    return link.user


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
    return current_app.config.get("FALLBACK_PUBLIC_URL", "http://127.0.0.1:5000")


def external_url(endpoint: str, **values) -> str:
    """An absolute URL for mail and redirects off-site (see public_base_url)."""
    return public_base_url() + url_for(endpoint, **values)
