"""Mail preferences: which kinds of optional mail a donor does not want.

Topics:
- `news`: production updates whose audience is everyone or all donors;
- the key of each reward of kind `updates` (the $15 monthly updates, the director's personal
  updates): updates addressed to that reward's holders;
- `reminders`: address surveys, RSVPs, credit proofs and the like.

Receipts and sign-in links are transactional and have no opt-out. Every optional mail carries
a personal one-click unsubscribe link (RFC 8058) made by `unsubscribe_token`; the account page
shows a toggle per topic from `topics_for`.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, has_request_context, url_for
from itsdangerous import BadSignature, URLSafeSerializer
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from filmfund.auth.models import User
from filmfund.auth.services import public_base_url
from filmfund.errors import NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.rewards import holdings, privacy
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.models import MailOptOut, Reward, RewardKind
from filmfund.rewards.texts import localized

NEWS = "news"
REMINDERS = "reminders"
TOPIC_TITLES = {
    NEWS: _l("News from the production (updates for everyone and for all donors)"),
    REMINDERS: _l("Reminders (address surveys, RSVPs, credit proofs)"),
}
_SALT = "filmfund.mail.unsubscribe"


def _updates_rewards() -> dict[str, str]:
    """key -> title of the rewards that are mailings, in the current campaign."""
    rows = db.session.execute(sa.select(Reward.key, Reward.title).where(
        Reward.campaign_id == current_campaign().id, Reward.kind == RewardKind.UPDATES)).all()
    return dict(rows)


def topic_title(topic: str) -> str:
    if topic in TOPIC_TITLES:
        return str(TOPIC_TITLES[topic])
    rewards = _updates_rewards()
    if topic in rewards:
        return _reward_title(topic, rewards[topic])
    raise ValidationError(_("topic: unknown mail topic %(topic)s.", topic=repr(topic)), code="invalid_topic")


def _check_topic(topic: str) -> str:
    topic = (topic or "").strip()
    topic_title(topic)  # raises on an unknown topic
    return topic


def opted_out(user_id: int) -> set[str]:
    return set(db.session.scalars(sa.select(MailOptOut.topic).where(MailOptOut.user_id == user_id)))


def opt_out(user_id: int, topic: str, *, via: str = "account") -> bool:
    """Stop mail of `topic` to this user. Idempotent; True if it was newly stopped. The caller
    commits (the unsubscribe page, the account page, erasure)."""
    topic = _check_topic(topic)
    exists = db.session.scalar(sa.select(MailOptOut.id).where(
        MailOptOut.user_id == user_id, MailOptOut.topic == topic))
    if exists:
        return False
    try:
        with db.session.begin_nested():  # two clicks at once: the unique key keeps one row
            db.session.add(MailOptOut(user_id=user_id, topic=topic, via=via[:16]))
    except sa.exc.IntegrityError:
        return False
    return True


def rewards_declined(user_id: int) -> None:
    """A donor who declines rewards was promised "nothing is sent to you except your receipt"
    (the pledge form, the account page): the production's news stops too, as if she had
    unsubscribed; she can ask for it again on her account page. Called when her profile's
    rewards_opt_out turns on, whichever way (her first gift, a confirmed request, her settings)."""
    opt_out(user_id, NEWS, via="no_rewards")


def opt_in(user_id: int, topic: str) -> bool:
    """Send mail of `topic` to this user again. Idempotent; True if it was stopped before. The
    caller commits. An erased donor is never mailed again (the erasure stopped every topic): for
    them this changes nothing and answers False, whoever asks (a link, the account page, the API)."""
    topic = _check_topic(topic)
    if privacy.is_erased(privacy.profile_of(user_id)):
        return False
    deleted = db.session.execute(sa.delete(MailOptOut).where(
        MailOptOut.user_id == user_id, MailOptOut.topic == topic)).rowcount
    return bool(deleted)


def topics_for(user: User) -> list[tuple[str, str]]:
    """The topics this user can receive (news, the updates rewards they hold, reminders), as
    (topic, title) in the order an account page shows them."""
    campaign_id = current_campaign().id
    held = db.session.execute(
        sa.select(Reward.key, Reward.title)
        .where(Reward.campaign_id == campaign_id, Reward.kind == RewardKind.UPDATES,
               Reward.key.in_(holdings.held_keys_sql(user.id, campaign_id)))
        .order_by(Reward.id)).all()
    return [(NEWS, str(TOPIC_TITLES[NEWS])), *[(k, _reward_title(k, t)) for k, t in held],
            (REMINDERS, str(TOPIC_TITLES[REMINDERS]))]


def _reward_title(key: str, title: str) -> str:
    """A mailing reward's title in the reader's language (the campaign file gives it per language)."""
    return localized(current_campaign().translations, f"reward:{key}", title)


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def unsubscribe_token(user: User, topic: str) -> str:
    """A personal, unguessable token naming (user, topic): it does not expire, as an unsubscribe
    link in an old mail must still work; it can do nothing but stop that topic's mail."""
    return _serializer().dumps([user.public_id, topic])


def absolute_url(endpoint: str, **values) -> str:
    """An absolute link for mail, also from a queue worker (no request): built on
    FILMFUND_PUBLIC_URL (see filmfund.auth.services.public_base_url), never on a Host header."""
    base = public_base_url()
    if has_request_context():
        return base + url_for(endpoint, **values)
    with current_app.test_request_context("/"):
        return base + url_for(endpoint, **values)


def unsubscribe_url(user: User, topic: str) -> str:
    return absolute_url("comms.unsubscribe", token=unsubscribe_token(user, topic))


def read_unsubscribe_token(token: str) -> tuple[User, str]:
    """The (user, topic) of a token; 404 for a forged, altered or stale one, and for an erased
    donor's (the same 404: the page neither shows what is left of them nor says they were erased;
    they are unsubscribed from everything already)."""
    try:
        public_id, topic = _serializer().loads(token or "")
    except (BadSignature, ValueError, TypeError):
        raise NotFoundError(_("This unsubscribe link is not valid."), code="invalid_link") from None
    user = db.session.scalar(sa.select(User).where(User.public_id == public_id))
    if user is None or not isinstance(topic, str) or privacy.is_erased(privacy.profile_of(user.id)):
        raise NotFoundError(_("This unsubscribe link is not valid."), code="invalid_link")
    try:
        _check_topic(topic)
    except ValidationError:
        raise NotFoundError(_("This unsubscribe link is not valid."), code="invalid_link") from None
    return user, topic


def unsubscribe(token: str, *, via: str = "link") -> tuple[User, str]:
    """The one-click unsubscribe: stop the token's topic for its user (idempotent); the caller
    commits."""
    user, topic = read_unsubscribe_token(token)
    opt_out(user.id, topic, via=via)
    return user, topic


def list_unsubscribe_headers(user: User, topic: str) -> dict[str, str]:
    """RFC 8058 headers for an optional mail: a mail client POSTs `List-Unsubscribe=One-Click`
    to the URL, with no cookie and no other step."""
    return {"List-Unsubscribe": f"<{unsubscribe_url(user, topic)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
