"""Links mailed to users: a donor's single-use sign-in link, a staff member's password reset.

Asking for a link does the same work in the same time whatever the email: the request only
checks the address's form and puts a task on the queue; the worker looks the email up and mails
(or not). So neither the answer nor its timing says whether an email is a donor's.

A per-email cap that never locks the owner out: at most LOGIN_LINKS_PER_EMAIL links are live at
once (a new one retires the oldest), and at most LOGIN_MAILS_PER_HOUR are mailed to one address
in an hour; beyond that a request still gets the same answer but mails nothing and retires
nothing, so the newest link already in the owner's inbox keeps working.
"""
from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from blinker import Namespace
from flask import current_app, url_for
from flask_babel import gettext as _

from filmfund import jobs
from filmfund.audit import record_audit, record_failed_sign_in, user_ref
from filmfund.auth.models import LoginLink, User
from filmfund.auth.services import (
    check_totp,
    find_user,
    normalize_email,
    public_base_url,
    set_password,
    totp_required,
    validate_password,
)
from filmfund.auth.tokens import digest
from filmfund.db import utcnow
from filmfund.errors import ValidationError
from filmfund.extensions import db
from filmfund.i18n import current_language, donor_language, in_language
from filmfund.jobs import app_task
from filmfund.mail import send_mail

log = logging.getLogger(__name__)

SIGN_IN, RESET = "sign_in", "reset"

#: A donor acted on a link mailed to their address (sender: the User; `why`: which link, for the
#: audit log), in that act's transaction: their mailbox takes our mail. Sent by the sign-in link
#: here and by the address survey's (fulfil). A settings confirmation's link comes in a receipt,
#: whose acceptance says as much already; an unsubscribe proves nothing of the kind (a mail
#: client may post it for the donor). auth sits below rewards (pyproject.toml's layers), so it
#: tells rather than asks: rewards connects at init_app (its receipts the address refused go out
#: again: receipts.on_mailbox_proven). Receivers are module-level functions (weak references).
mailbox_proven = Namespace().signal("mailbox-proven")


def _no_title() -> str | None:
    return None


#: What a donor's sign-in mail names (the film's title in the mail's language, as the donor knows
#: it, never this software's name): asked, not imported, since the campaign is rewards' (a higher
#: layer), which installs it at init_app (`name_sign_in_mail_by`); until then no title.
_film_title: Callable[[], str | None] = _no_title


def name_sign_in_mail_by(title: Callable[[], str | None]) -> None:
    global _film_title
    _film_title = title


def _path(endpoint: str, token: str) -> str:
    with current_app.test_request_context():
        return url_for(endpoint, token=token)


def request_login_link(email: str) -> None:
    """Queue a sign-in link for this email. Says nothing either way (no enumeration)."""
    _queue(email, SIGN_IN)


def request_password_reset(email: str) -> None:
    """Queue a password-reset link for this email (staff with a password only). Says nothing either way."""
    _queue(email, RESET)


def _queue(email: str, purpose: str) -> None:
    """ValidationError when `email` is no address at all: a typing mistake is said on the page
    (that says nothing about who has an account); any address gets the same answer."""
    email = normalize_email(email)
    # The base URL and the language are decided here, where the request is known (see public_base_url):
    # the link goes in the language of the page it was asked on.
    try:
        mail_link(email, purpose, public_base_url(), current_language())
    except jobs.QueueUnavailable:
        # Not sent inline instead: the same reply in the same time for every address is what keeps
        # donors' emails from being told apart (the worker makes the link). Said, so the person
        # asks again, rather than waiting for a link that never comes.
        log.error("a %s link was not queued: the work queue cannot be reached (FILMFUND_QUEUE_URL)", purpose)
        raise jobs.QueueUnavailable(_("We cannot send sign-in links right now. Please try again in a few minutes."),
                                    code="queue_unavailable") from None


# Tried again each minute for a quarter of an hour, a sign-in link's life: a mail server down for
# a few minutes must not lose the link the person was told is on its way.
@app_task(lane=jobs.mail, priority=jobs.URGENT, retries=14, retry_delay=60)
def mail_link(email: str, purpose: str, base_url: str, language: str | None = None) -> bool:
    """Worker side: make and mail the link if the email's account may have one. True if mailed.
    The link is committed before its mail goes out: a mail never names a link that is not there."""
    made = new_link(email, purpose)
    if made is None:
        return False
    db.session.commit()
    user, token, ttl = made
    try:
        mail_new_link(user, purpose, token, ttl, base_url, language)
    except Exception:
        # Never mailed: the link goes, so that it does not count against the hourly cap (a mail
        # server down for minutes would spend it, and the person's next request would mail
        # nothing). The task is tried again.
        db.session.rollback()
        db.session.execute(sa.delete(LoginLink).where(LoginLink.token_hash == digest(token)))
        db.session.commit()
        raise
    return True


def _wanted(user: User | None, purpose: str) -> bool:
    if user is None:
        return False
    if purpose == SIGN_IN:  # donors only: staff never sign in by a mailed link
        return not user.is_staff and not user.password_hash
    # A reset is for accounts that sign in with a password. A producer who must have a second
    # factor but has not set one up yet gets none: the mailbox alone would then be enough to take
    # the account (new password, then a second factor of the taker's own). Another producer sets
    # the password with `filmfund users set-password`.
    return bool(user.password_hash) and (user.has_totp or not totp_required(user))


def new_link(email: str, purpose: str) -> tuple[User, str, int] | None:
    """A new link for the email's account, if it may have one and has not had too many this
    hour: (user, token, seconds it lives); older live links beyond the newest few retire. The
    caller commits, then mails it (mail_new_link)."""
    user = find_user(email)
    if not _wanted(user, purpose):
        return None
    cfg = current_app.config
    now = utcnow()
    recent = db.session.scalar(sa.select(sa.func.count(LoginLink.id)).where(
        LoginLink.user_id == user.id, LoginLink.created_at > now - timedelta(hours=1)))
    if recent >= cfg.get("LOGIN_MAILS_PER_HOUR", 5):
        return None  # the inbox is not flooded; the links already mailed keep working
    live = list(db.session.scalars(sa.select(LoginLink).where(
        LoginLink.user_id == user.id, LoginLink.purpose == purpose, LoginLink.used_at.is_(None),
        LoginLink.expires_at > now).order_by(LoginLink.created_at.desc(), LoginLink.id.desc())))
    for old in live[max(cfg.get("LOGIN_LINKS_PER_EMAIL", 3) - 1, 0):]:
        old.expires_at = now  # retired: only the newest few work
    token = secrets.token_urlsafe(32)
    ttl = cfg["MAGIC_LINK_TTL"] if purpose == SIGN_IN else cfg.get("RESET_LINK_TTL", 30 * 60)
    db.session.add(LoginLink(user_id=user.id, purpose=purpose, token_hash=digest(token), created_at=now,
                             expires_at=now + timedelta(seconds=ttl)))
    return user, token, ttl


def mail_new_link(user: User, purpose: str, token: str, ttl: int, base_url: str, language: str | None = None) -> None:
    """Mail a link new_link made, in the language asked (or the donor's own)."""
    with in_language(language or donor_language(user.id)):
        if purpose == SIGN_IN:
            link = base_url + _path("auth.magic", token)
            title = _film_title()
            subject = _("Your sign-in link: %(title)s", title=title) if title else _("Your sign-in link")
            text = (_("Sign in to see your donations and rewards:") + f"\n\n{link}\n\n"
                    + _("The link works once, within %(minutes)s minutes. If you did not ask for it, ignore this "
                        "email.", minutes=ttl // 60) + "\n")
        else:
            link = base_url + _path("auth.reset_password", token)
            subject = _("Reset your filmfund password")
            text = (_("Choose a new password here:") + f"\n\n{link}\n\n"
                    + _("The link works once, within %(minutes)s minutes, and asks for your second factor too. "
                        "If you did not ask for it, ignore this email: your password stays as it is.",
                        minutes=ttl // 60) + "\n")
    send_mail(user.email, subject, text)


def _live_link(token: str, purpose: str) -> LoginLink | None:
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    link = db.session.scalar(sa.select(LoginLink).where(LoginLink.token_hash == digest(token),
                                                        LoginLink.purpose == purpose))
    if link is None or link.used_at is not None or link.expires_at <= utcnow():
        return None
    return link


def _claim(link: LoginLink) -> bool:
    """Use the link up atomically, so two clicks racing cannot both pass."""
    claimed = db.session.execute(
        sa.update(LoginLink).where(LoginLink.id == link.id, LoginLink.used_at.is_(None)).values(used_at=utcnow())
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        return False
    return True


def link_owner(token: str) -> int | None:
    """Whose live link (sign-in or reset) this is, without using it up: the page it opens is in
    their language (i18n.mailed_link). None for a used, expired or unknown link."""
    link = _live_link(token, SIGN_IN) or _live_link(token, RESET)
    return link.user_id if link is not None else None


def consume_login_link(token: str) -> User | None:
    """The link's user, once: a used, expired or unknown link gives None, and so does a staff
    account's (its link is used up all the same: staff sign in with a password and second factor).
    A donor's is told to `mailbox_proven`'s receivers, in this transaction. The caller commits, the
    refusal as the sign-in."""
    link = _live_link(token, SIGN_IN)
    if link is None or not _claim(link):
        return None
    user = link.user
    if not _wanted(user, SIGN_IN):
        return None
    mailbox_proven.send(user, why="the donor signed in with a link mailed to the address")
    return user


def _live_reset_link(token: str) -> LoginLink | None:
    """A live reset link whose account would still be mailed one (`_wanted`, asked again at use): a
    producer whose second factor was reset, or a partner made producer since without one, would
    otherwise choose a password with the mailbox alone, then enrol a second factor of their own."""
    link = _live_link(token, RESET)
    return link if link is not None and _wanted(link.user, RESET) else None


def reset_link_user(token: str) -> User | None:
    """The user a live reset link belongs to (the link is not used up by looking)."""
    link = _live_reset_link(token)
    return link.user if link else None


def reset_password(token: str, password: str, code: str | None) -> User:
    """Set a new password through a mailed link; the second factor is asked if the account has one."""
    validate_password(password)
    link = _live_reset_link(token)
    if link is None:
        raise ValidationError(_("That reset link has expired or was already used. Ask for a new one."),
                              code="invalid_link")
    user = link.user
    if user.has_totp and not (code or "").strip():
        raise ValidationError(_("Give the 6 digits your app shows now."), code="invalid_code")
    if user.has_totp and not check_totp(user, code or ""):
        # One wrong code spends the link. Whoever holds a reset link holds the mailbox; the code
        # is then all that stands between them and the account, so the link buys one guess, not
        # one every few seconds for half an hour. The owner who mistyped asks for a new link
        # (up to LOGIN_MAILS_PER_HOUR an hour).
        if _claim(link):
            record_failed_sign_in("", "reset_code", user=user)
            db.session.commit()
        raise ValidationError(_("That code is not right, and this link is now used up: ask for a new one."),
                              code="invalid_code")
    # Used up first (the password is valid: checked above), so that set_password retires every
    # other unused link of the account and this one is recorded as used, not as retired.
    if not _claim(link):
        raise ValidationError(_("That reset link was already used."), code="invalid_link")
    set_password(user, password)
    record_audit("auth.password_reset", user_ref(user), actor=user)
    db.session.commit()
    return user
