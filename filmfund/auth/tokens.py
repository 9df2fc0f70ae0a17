"""API tokens: created by the CLI for a user, shown once, stored as their SHA-256; they expire
(FILMFUND_TOKEN_TTL_DAYS, 90 days by default), record their last use, and can be listed and revoked."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from filmfund.audit import record_audit, user_ref
from filmfund.auth.models import ApiToken, User
from filmfund.auth.services import find_user, normalize_email, user_by_email
from filmfund.db import utcnow
from filmfund.errors import NotFoundError, ValidationError
from filmfund.extensions import db

# last_used_at is written at most once a minute per token: not a write on every API call.
LAST_USED_RESOLUTION = timedelta(seconds=60)
MAX_DAYS = 3650


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(email: str, days: int | None = None) -> str:
    """A new token for the user (printed once by the CLI), expiring after `days` (the setting by default)."""
    user = find_user(normalize_email(email))
    if user is None:
        raise ValidationError(f"No user with email {email}.", code="unknown_user")
    days = current_app.config.get("TOKEN_TTL_DAYS", 90) if days is None else days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"A token lives 1 to {MAX_DAYS} days.", code="invalid_days")
    token = "ff_" + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiToken(user_id=user.id, token_hash=digest(token), created_at=now, expires_at=now + timedelta(days=days))
    db.session.add(row)
    db.session.flush()
    record_audit("token.create", user_ref(user), {"token_id": row.id, "expires_at": row.expires_at.isoformat()})
    db.session.commit()
    return token


def list_api_tokens(email: str | None = None) -> list[ApiToken]:
    query = sa.select(ApiToken).join(User).order_by(User.email, ApiToken.id)
    if email:
        query = query.where(ApiToken.user_id == user_by_email(email).id)
    return list(db.session.scalars(query))


def token_state(row: ApiToken) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is None or row.expires_at <= utcnow():
        return "expired"
    return "active"


def revoke_api_token(token_id: int) -> ApiToken:
    row = db.session.get(ApiToken, token_id)
    if row is None:
        raise NotFoundError(f"No token with id {token_id}.", code="unknown_token")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        record_audit("token.revoke", user_ref(row.user), {"token_id": row.id})
    db.session.commit()
    return row


def user_for_token(token: str) -> User | None:
    """The token's user if it is known, not revoked and not expired; its last use is recorded."""
    if not token or not isinstance(token, str) or len(token) > 200:
        return None
    now = utcnow()
    row = db.session.scalar(
        sa.select(ApiToken).where(ApiToken.token_hash == digest(token), ApiToken.revoked_at.is_(None))
    )
    if row is None or row.expires_at is None or row.expires_at <= now:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        # Its own small write, committed now: the request's own work may still roll back.
        db.session.execute(sa.update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        db.session.commit()
    return row.user
