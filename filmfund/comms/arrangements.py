"""The $2000 tier's "anything else feasible, by arrangement": a private thread between one
donor and the producers. Only that donor (while they hold the reward) and producers read it;
the donor is mailed a link (never the text) when the producers answer. Once the reward is
revoked (a refund, a lost dispute, the rewards opt-out) the donor no longer reads the thread,
the producers keep it but can no longer add to it, and no reply notice is mailed."""
from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import current_app, render_template
from flask_babel import gettext as _

from filmfund.i18n import for_donor
from filmfund.auth.models import User
from filmfund.comms.models import RequestMessage
from filmfund.comms.queueing import mail_task
from filmfund.db import on_commit
from filmfund.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.mail import send_mail
from filmfund.rewards import holdings
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.mail_prefs import absolute_url
from filmfund.rewards.texts import tier_amount

log = logging.getLogger(__name__)

MESSAGE_MAX = 5000
DEFAULT_REWARD = "by-arrangement"


def _campaign():
    return current_campaign()


def reward_key() -> str:
    return current_app.config.get("ARRANGEMENT_REWARD", DEFAULT_REWARD)


def may_write(user) -> bool:
    return user is not None and holdings.holds(user.id, reward_key(), _campaign().id)


def refusal(user) -> str:
    """Why this donor may not write (asked of holdings.why_not_held): she chose no rewards (her
    settings give them back), or her total does not reach the tier."""
    if holdings.why_not_held(user.id if user is not None else None, reward_key(), _campaign().id) == holdings.DECLINED:
        return _("You chose no rewards, so this thread is closed for now. Take your rewards back in your "
                 "settings, and you can write again.")
    return _("This private thread with the producers comes with the %(tier)s tier.",
             tier=tier_amount(_campaign(), reward_key()))


def _body(body) -> str:
    body = body.strip() if isinstance(body, str) else ""
    if not body or len(body) > MESSAGE_MAX:
        raise ValidationError(_("body: write a message (up to %(n)s characters).", n=MESSAGE_MAX),
                              code="invalid_message")
    return body


def thread(donor_id: int) -> list[RequestMessage]:
    """Every message of a donor's thread, for the producers' page. The donor's own page asks
    my_thread: what the producers wrote there (addresses, times, door codes) is for a holder."""
    return list(db.session.scalars(sa.select(RequestMessage).where(
        RequestMessage.donor_id == donor_id, RequestMessage.campaign_id == _campaign().id)
        .order_by(RequestMessage.created_at, RequestMessage.id)))


def my_thread(user) -> list[RequestMessage]:
    """The thread as its donor reads it: all of it while they hold the reward, nothing after."""
    return thread(user.id) if may_write(user) else []


def post_as_donor(user: User, body) -> RequestMessage:
    """The donor's message in their thread ($2000 tier). The caller commits."""
    body = _body(body)
    if not may_write(user):
        raise ForbiddenError(refusal(user), code="not_entitled")
    msg = RequestMessage(campaign_id=_campaign().id, donor_id=user.id, author_id=user.id, body=body)
    db.session.add(msg)
    return msg


def erase_thread(user: User) -> None:
    """Receiver of rewards' `donor_erasing`: the private thread between the donor and the
    producers is about them alone (what they asked for, where, when): all of it goes, both sides."""
    db.session.execute(sa.delete(RequestMessage).where(RequestMessage.donor_id == user.id),
                       execution_options={"synchronize_session": False})


def donor_by_public_id(public_id: str) -> User:
    """The donor of a thread, for the producers: one who holds the reward, or who wrote in it
    before losing it (the producers keep the record of what was arranged)."""
    user = db.session.scalar(sa.select(User).where(User.public_id == public_id))
    if user is None or not (may_write(user) or thread(user.id)):
        raise NotFoundError(_("No such thread."))
    return user


def post_as_producer(producer: User, donor_public_id: str, body) -> RequestMessage:
    """A producer's reply; the donor is mailed once it is committed. The caller commits.
    Refused (409) once the donor no longer holds the reward: they could not read it, and a
    reply may hold what only a holder is to know (a place, a time, a door code)."""
    donor = donor_by_public_id(donor_public_id)
    if not may_write(donor):
        raise ConflictError(_("This donor no longer holds the %(tier)s tier: the thread is closed, "
                              "and they could not read a reply.", tier=tier_amount(_campaign(), reward_key())),
                            code="not_entitled")
    body = _body(body)
    msg = RequestMessage(campaign_id=_campaign().id, donor_id=donor.id, author_id=producer.id,
                         from_producers=True, body=body)
    db.session.add(msg)
    db.session.flush()
    message_id = msg.id
    on_commit(db.session, lambda: notify_reply(message_id))  # the worker must find the reply
    return msg


def threads() -> list[dict]:
    """Every thread (and every holder without one yet), the latest first, in two queries."""
    campaign_id = _campaign().id
    last = (sa.select(RequestMessage.donor_id, sa.func.max(RequestMessage.id).label("last_id"),
                      sa.func.count(RequestMessage.id).label("n"))
            .where(RequestMessage.campaign_id == campaign_id).group_by(RequestMessage.donor_id).subquery())
    rows = db.session.execute(
        sa.select(User, RequestMessage, last.c.n).join(last, last.c.donor_id == User.id)
        .join(RequestMessage, RequestMessage.id == last.c.last_id)
        .order_by(RequestMessage.id.desc())).all()
    out = [{"donor": u, "last": m, "count": n, "waiting": not m.from_producers} for u, m, n in rows]
    seen = {r["donor"].id for r in out}
    holders = db.session.scalars(
        sa.select(User).where(User.id.in_(holdings.holders_sql(reward_key(), campaign_id))).order_by(User.email))
    out += [{"donor": u, "last": None, "count": 0, "waiting": False} for u in holders if u.id not in seen]
    return out


# Queued under its key from before it moved here, so jobs an older version queued still find it.
@mail_task(registered_as="filmfund.comms.tasks.notify_reply")
def notify_reply(message_id: int) -> None:
    """Mail the donor a link to the producers' reply (the queue's task, queued by
    post_as_producer once the reply is committed); nothing if they no longer hold the reward
    (refunded since it was written): the link would show them nothing."""
    msg = db.session.get(RequestMessage, message_id)
    if msg is None or not msg.from_producers:
        return
    donor = db.session.get(User, msg.donor_id)
    if not may_write(donor):
        log.info("reply notice of message %s not mailed: its donor no longer holds %s", message_id, reward_key())
        return
    with for_donor(donor.id):
        send_mail(donor.email, _("The producers answered your request"),
                  render_template("comms/mail/reply.txt", campaign=_campaign(), url=absolute_url("comms.thread")))
