"""Signed links mailed to donors (the address survey, the credits proof): the link itself is the
permission, for one donor and one purpose, for a limited time, and never outlives the donor's
erasure (filmfund.rewards.privacy): an erased donor's link answers as a stale one does."""
from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer

from filmfund.auth.models import User
from filmfund.errors import NotFoundError
from filmfund.extensions import db
from filmfund.rewards import privacy
from filmfund.rewards.mail_prefs import absolute_url

TOKEN_MAX_AGE = 60 * 24 * 3600  # 60 days: surveys and reminders span weeks


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"filmfund.fulfil.{purpose}")


def make_token(user_id: int, purpose: str) -> str:
    return _serializer(purpose).dumps({"u": user_id})


def _stale_link() -> NotFoundError:
    return NotFoundError(_("This link is not valid (or has expired). Sign in to your account instead."))


def read_token(token: str, purpose: str) -> int:
    """The user id the link was made for; an unknown, forged or expired link is a 404."""
    try:
        data = _serializer(purpose).loads(token or "", max_age=TOKEN_MAX_AGE)
    except BadSignature:
        raise _stale_link() from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        raise NotFoundError(_("This link is not valid."))
    return data["u"]


def link_user(token: str, purpose: str) -> User:
    """The donor a mailed link was made for, whom it lets act without signing in. A link of a
    donor since erased (or gone) is the same 404 as an expired one: it reads and writes nothing of
    theirs, and the page says nothing of the erasure."""
    user = db.session.get(User, read_token(token, purpose))
    if user is None or privacy.is_erased(privacy.profile_of(user.id)):
        raise _stale_link()
    return user



def mailed_link(endpoint: str, **values) -> str:
    """An absolute link for mail, also from the CLI or a worker (see mail_prefs.absolute_url)."""
    return absolute_url(endpoint, **values)
