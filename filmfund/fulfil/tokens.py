"""Signed links mailed to donors (the address survey, the credits proof): the link itself is the
permission, for one donor and one purpose, for a limited time."""
from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from filmfund.errors import NotFoundError
from filmfund.rewards.mail_prefs import absolute_url

TOKEN_MAX_AGE = 60 * 24 * 3600  # 60 days: surveys and reminders span weeks


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"filmfund.fulfil.{purpose}")


def make_token(user_id: int, purpose: str) -> str:
    return _serializer(purpose).dumps({"u": user_id})


def read_token(token: str, purpose: str) -> int:
    """The user id the link was made for; an unknown, forged or expired link is a 404."""
    try:
        data = _serializer(purpose).loads(token or "", max_age=TOKEN_MAX_AGE)
    except BadSignature:
        raise NotFoundError("This link is not valid (or has expired). Sign in to your account instead.") from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        raise NotFoundError("This link is not valid.")
    return data["u"]



def mailed_link(endpoint: str, **values) -> str:
    """An absolute link for mail, also from the CLI or a worker (see mail_prefs.absolute_url)."""
    return absolute_url(endpoint, **values)
