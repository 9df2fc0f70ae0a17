"""Experiences as invitations: the dinner ($500), the video chat with the director ($750), the
audio commentary session ($1000), or any other reward the producers attach one to.

Producers describe an experience and propose times (stored in UTC). Each holder of the reward
(an active Entitlement) has one invitation: they see the times in their own time zone, answer
(accept one time, or decline), download a calendar file (RFC 5545), and get reminders from the
queue: one "please answer" after a few days without an answer, one the day before the chosen
time. Reminders belong to the `reminders` mail topic (one-click unsubscribe); each is claimed
before it is sent, so it goes out once.

The use cases here do not commit: the view or the queue task commits once (issue 16). The
mailings are the tasks' loops (mail_invitations, at the end of this module; the hourly reminders,
run_reminders in comms/tasks.py), which commit each claim before its mail goes out.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Iterable, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import sqlalchemy as sa
from flask import render_template
from flask_babel import lazy_gettext as _l
from flask_babel import gettext as _

from filmfund.i18n import donor_zone, for_donor, producers_version, producers_versions
from filmfund.auth.models import User
from filmfund.comms.models import Experience, ExperienceSlot, Invitation, RsvpStatus
from filmfund.comms.queueing import mail_task
from filmfund.db import on_commit, utcnow
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.mail import send_mail
from filmfund.rewards import holdings, mail_prefs
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.mail_prefs import absolute_url
from filmfund.rewards.models import Reward

log = logging.getLogger(__name__)

RSVP_REMINDER_AFTER = timedelta(days=3)
REMINDER_BEFORE = timedelta(hours=24)
TEXT_MAX = 5000


def _campaign():
    return current_campaign()


def time_zones() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/"))) + ["UTC"]


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return ZoneInfo("UTC")


def local(dt: datetime, tz_name: str) -> datetime:
    return dt.astimezone(zone(tz_name))


# --- producers ----------------------------------------------------------------------------

def experiences() -> list[Experience]:
    return list(db.session.scalars(sa.select(Experience).where(Experience.campaign_id == _campaign().id)
                                   .order_by(Experience.id)))


def get_experience(experience_id: int) -> Experience:
    exp = db.session.get(Experience, experience_id)
    if exp is None or exp.campaign_id != _campaign().id:
        raise NotFoundError(_("No such experience."))
    return exp


def _clean_texts(title, details, location) -> dict[str, str]:
    title = " ".join(title.split()) if isinstance(title, str) else ""
    if not title or len(title) > 200:
        raise ValidationError(_("title: give a title (up to 200 characters)."), code="invalid_title")
    details = (details or "").strip() if isinstance(details, str) else ""
    location = " ".join(location.split()) if isinstance(location, str) else ""
    if len(details) > TEXT_MAX or len(location) > 300:
        raise ValidationError(_("details: too long."), code="invalid_details")
    return {"title": title, "details": details, "location": location}


def _clean_translations(translations, main: dict[str, str]) -> dict[str, dict[str, str]]:
    """The experience's texts in the other languages ({"zh-Hans": {"title", "details", "location"}}),
    each as the main ones: a place or details without a title is refused, and so is a version
    without a part the main texts give (`main`: its details, its place; i18n.producers_versions)."""
    return producers_versions(translations, lambda text: _clean_texts(text.get("title"), text.get("details"),
                                                                      text.get("location")), main)


class ExperienceText(NamedTuple):
    title: str
    details: str
    location: str
    lang: str


def text(exp: Experience, lang: str | None = None) -> ExperienceText:
    """The experience as a reader in `lang` (the current language) reads it: the producers'
    version in that language, else its main texts (i18n.producers_version: a part its version
    lacks, such as the place, is the main text's). Its page, the invitations list, its mails and
    its calendar file ask it; none reads the experience's columns or translations itself."""
    main = {"title": exp.title, "details": exp.details or "", "location": exp.location or ""}
    texts, lang = producers_version(main, exp.translations, lang)
    return ExperienceText(texts["title"], texts["details"], texts["location"], lang)


def create_experience(*, reward_key, title, details="", location="", duration_minutes=60,
                      translations=None) -> Experience:
    """A new experience of a reward, without times yet, with its texts in the site's other
    languages if the producers wrote them. The caller commits."""
    campaign = _campaign()
    keys = set(db.session.scalars(sa.select(Reward.key).where(Reward.campaign_id == campaign.id)))
    if reward_key not in keys:
        raise ValidationError(_("reward: choose the reward this experience belongs to."), code="invalid_reward")
    texts = _clean_texts(title, details, location)
    try:
        minutes = int(duration_minutes)
    except (TypeError, ValueError):
        minutes = 0
    if not 5 <= minutes <= 24 * 60:
        raise ValidationError(_("duration: between 5 minutes and 24 hours."), code="invalid_duration")
    exp = Experience(campaign_id=campaign.id, reward_key=reward_key, **texts, duration_minutes=minutes,
                     translations=_clean_translations(translations, texts))
    db.session.add(exp)
    db.session.flush()  # its id, for the page the caller goes to
    return exp


def parse_local_time(value, tz_name) -> datetime:
    """`2026-12-12T19:30` in the given zone (the producers' own), as UTC."""
    if tz_name not in available_timezones() and tz_name != "UTC":
        raise ValidationError(_("time_zone: choose one from the list."), code="invalid_time_zone")
    try:
        naive = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(_("starts: give a date and time like 2026-12-12T19:30."), code="invalid_time") from None
    if naive.tzinfo is None:
        naive = naive.replace(tzinfo=ZoneInfo(tz_name))
    return naive.astimezone(timezone.utc)


def add_slot(experience_id: int, starts_at: datetime, capacity=None) -> ExperienceSlot:
    """A proposed time, with an optional number of places. The caller commits."""
    exp = get_experience(experience_id)
    if starts_at <= utcnow():
        raise ValidationError(_("starts: propose a time in the future."), code="invalid_time")
    cap = None
    if capacity not in (None, ""):
        try:
            cap = int(capacity)
        except (TypeError, ValueError):
            cap = 0
        if cap <= 0:
            raise ValidationError(_("capacity: a positive number of donors, or empty for no limit."),
                                  code="invalid_capacity")
    slot = ExperienceSlot(experience_id=exp.id, starts_at=starts_at, capacity=cap)
    db.session.add(slot)
    db.session.flush()  # its id
    db.session.expire(exp, ["slots"])  # read again, in order, by whoever asks next in this transaction
    return slot


def _held(exp: Experience | None = None):
    """SQL: the invitation's donor holds the experience's reward now (holdings' rule, its SQL
    form): of `exp`, or without it over Invitation joined to its Experience (correlated: one form
    for a list across experiences too). Whoever no longer holds it (a refund or lost dispute below
    its tier, the rewards opt-out) takes no place, is not counted and is not mailed; their
    invitation and answer stay, for the producers' guest list and for the day they hold it again."""
    if exp is None:
        return holdings.holds_sql(Invitation.user_id, Experience.reward_key, Experience.campaign_id)
    return holdings.holds_sql(Invitation.user_id, exp.reward_key, exp.campaign_id)


def send_invitations(experience_id: int) -> int:
    """Make an invitation for every holder who has none (each in her zone) and queue the
    invitation mails once the caller commits. Returns how many invitations are waiting to be mailed."""
    exp = get_experience(experience_id)
    if not exp.slots:
        raise ConflictError(_("Propose at least one time first."), code="no_times")
    return _invite_holders(exp)


def invite_new_holders(now: datetime | None = None) -> int:
    """Hourly: once the producers have sent an experience's invitations, a donor who reaches its
    tier later is invited too, while a proposed time is still ahead. The caller commits."""
    now = now or utcnow()
    sent_before = sa.exists().where(Invitation.experience_id == Experience.id, Invitation.invited_at.is_not(None))
    ahead = sa.exists().where(ExperienceSlot.experience_id == Experience.id, ExperienceSlot.starts_at > now)
    return sum(_invite_holders(exp) for exp in db.session.scalars(
        sa.select(Experience).where(Experience.campaign_id == _campaign().id, sent_before, ahead)))


def _invite_holders(exp: Experience) -> int:
    holders = holdings.holders_sql(exp.reward_key, exp.campaign_id).subquery()
    missing = db.session.scalars(sa.select(holders.c.user_id).where(
        ~sa.exists().where(Invitation.experience_id == exp.id, Invitation.user_id == holders.c.user_id))).all()
    now = utcnow()
    for user_id in missing:  # a few donors (an experience is a high tier's): each with her own zone
        _new_invitation(exp.id, user_id, status=RsvpStatus.INVITED, created_at=now)
    waiting = db.session.scalar(sa.select(sa.func.count(Invitation.id)).where(
        Invitation.experience_id == exp.id, Invitation.invited_at.is_(None), _held(exp)))
    if waiting:
        experience_id = exp.id
        on_commit(db.session, lambda: mail_invitations(experience_id))  # the worker must find them
    return waiting


def _zone_for(user_id: int) -> str:
    """The zone a new invitation of this donor gives its times in: the one of her other invitations
    (one zone for all of them: set_time_zone), else the one her pages use for her language
    (i18n.donor_zone: Beijing time for a Chinese reader), never UTC for everyone."""
    chosen = db.session.scalar(sa.select(Invitation.time_zone).where(Invitation.user_id == user_id)
                               .order_by(Invitation.id.desc()).limit(1))
    return chosen or donor_zone(user_id)


def _new_invitation(experience_id: int, user_id: int, **values) -> Invitation:
    """This donor's invitation to the experience, made now unless another request or worker made it
    at the same moment (then that one). The caller commits."""
    try:
        with db.session.begin_nested():
            inv = Invitation(experience_id=experience_id, user_id=user_id, time_zone=_zone_for(user_id), **values)
            db.session.add(inv)
        return inv
    except sa.exc.IntegrityError:
        return db.session.scalar(sa.select(Invitation).where(
            Invitation.experience_id == experience_id, Invitation.user_id == user_id))


# --- places: who holds one -----------------------------------------------------------------
# The rule's one home. A slot with a capacity seats its first `capacity` accepted answers of
# holders, in the order the answers began to count (then the invitation's id); one beyond holds
# no place ("displaced": still accepted, shown apart, told on her page, never reminded of it).
# An answer counts from when it was given, or from when its donor holds the reward again if that
# is later: a donor who lapsed (refund, lost dispute, opt-out) and gives again comes back behind
# whoever took the freed place meanwhile, so the slot never seats more than its capacity.
# `seats` is the Python form, `seated_sql` the SQL form (a window function); the tests check
# they agree. Every count and list of places asks them: rsvp_counts, guest_list, the donor's
# page (place_state), the calendar file, the reminders and rsvp's capacity check.

#: The status of a holder whose accepted time filled up while her reward was paused.
DISPLACED = "displaced"


def _counts_from():
    """SQL, over Invitation joined to its Experience: when the answer began to count, the later
    of the answer (responded_at; else the invitation's making, never NULL: NULLs sort first on
    SQLite and last on PostgreSQL) and the moment its donor last began to hold the reward
    (the entitlement's granted_at, set again when a revoked reward is granted again)."""
    since = holdings.held_since_sql(Invitation.user_id, Experience.reward_key,
                                    Experience.campaign_id).correlate(Invitation, Experience)
    answered = sa.func.coalesce(Invitation.responded_at, Invitation.created_at)
    return sa.case((since > answered, since), else_=answered)


def seats(answers: Iterable[tuple[datetime, int]], capacity: int | None) -> set[int]:
    """The rule's Python form: of one slot's accepted answers of holders, each (when it began to
    count, invitation id), the ids that hold a place: all of them without a capacity, else the
    first `capacity` in that order."""
    ordered = sorted(answers)
    return {inv_id for _when, inv_id in (ordered if capacity is None else ordered[:capacity])}


def seated_sql(experience_id: int | None = None):
    """The rule's SQL form: the ids of the invitations that hold a place (of one experience, or
    of all). row_number() over each slot's accepted answers of holders, in `seats`' order."""
    place = sa.func.row_number().over(partition_by=Invitation.slot_id, order_by=(_counts_from(), Invitation.id))
    places = (sa.select(Invitation.id.label("invitation_id"), Invitation.slot_id, place.label("place"))
              .join(Experience, Experience.id == Invitation.experience_id)
              .where(Invitation.status == RsvpStatus.ACCEPTED, Invitation.slot_id.is_not(None), _held()))
    if experience_id is not None:
        places = places.where(Invitation.experience_id == experience_id)
    places = places.subquery("places")
    return (sa.select(places.c.invitation_id).join(ExperienceSlot, ExperienceSlot.id == places.c.slot_id)
            .where(sa.or_(ExperienceSlot.capacity.is_(None), places.c.place <= ExperienceSlot.capacity)))


def _displaced_sql(experience_id: int):
    """SQL form of place_state's DISPLACED, over the experience's invitations: an accepted time
    without a place there (for a lapsed donor too: guest_list names those lapsed first)."""
    return sa.and_(Invitation.status == RsvpStatus.ACCEPTED, Invitation.slot_id.is_not(None),
                   Invitation.id.not_in(seated_sql(experience_id)))


def holds_place(inv: Invitation) -> bool:
    """Does this invitation hold a place at its chosen time now (the Python form, over its
    slot's answers)?"""
    if inv.status != RsvpStatus.ACCEPTED or inv.slot_id is None:
        return False
    answers = db.session.execute(
        sa.select(_counts_from(), Invitation.id).join(Experience, Experience.id == Invitation.experience_id)
        .where(Invitation.slot_id == inv.slot_id, Invitation.status == RsvpStatus.ACCEPTED, _held())).all()
    return inv.id in seats([tuple(a) for a in answers], inv.slot.capacity)


def place_state(inv: Invitation) -> str:
    """The donor's answer as her pages show it: "accepted" only with a place, DISPLACED for an
    accepted time that filled up while her reward was paused, else "invited" or "declined"."""
    if inv.status == RsvpStatus.ACCEPTED and inv.slot_id is not None and not holds_place(inv):
        return DISPLACED
    return inv.status.value


def rsvp_counts(experience_id: int) -> dict:
    """Among the donors who hold the reward now: per slot id, how many hold a place there, and
    totals by status ("accepted": with a place; DISPLACED: accepted, no place); plus `lapsed`,
    how many invited donors no longer hold it (counted nowhere else)."""
    exp = db.session.get(Experience, experience_id)
    held = _held(exp)
    per_slot = dict(db.session.execute(
        sa.select(Invitation.slot_id, sa.func.count())
        .where(Invitation.experience_id == experience_id, Invitation.id.in_(seated_sql(experience_id)))
        .group_by(Invitation.slot_id)).all())
    state = sa.case((_displaced_sql(experience_id), sa.literal(DISPLACED)),
                    else_=sa.type_coerce(Invitation.status, sa.String))
    by_status = {str(s): n for s, n in db.session.execute(
        sa.select(state, sa.func.count()).where(Invitation.experience_id == experience_id, held)
        .group_by(state)).all()}
    lapsed = db.session.scalar(sa.select(sa.func.count(Invitation.id)).where(
        Invitation.experience_id == experience_id, ~held))
    return {"slots": per_slot, "status": by_status, "lapsed": lapsed}


#: The guest list's status of an invited donor who no longer holds the reward (not an answer).
LAPSED = "lapsed"


def guest_list(experience_id: int) -> list[dict]:
    """The invited donors, those who hold the reward now first. One who no longer does has the
    status "lapsed" (`holds` False): no place, not counted; the page lists them apart, with the
    answer they had given (`answer`, as every guest's) and whether their invitation was mailed.
    A holder whose accepted time filled up while her reward was paused has the status
    DISPLACED (`displaced` True): no place there; the page lists her apart too."""
    exp = db.session.get(Experience, experience_id)
    holds = _held(exp)
    rows = db.session.execute(
        sa.select(Invitation, User.email, holds.label("holds"), _displaced_sql(experience_id).label("displaced"))
        .join(User, User.id == Invitation.user_id)
        .where(Invitation.experience_id == experience_id)
        .order_by(sa.case((holds, 0), else_=1), Invitation.status, User.email)).all()
    guests = []
    for inv, email, held, no_place in rows:
        displaced = bool(held) and bool(no_place)
        guests.append({"email": email, "status": LAPSED if not held else DISPLACED if displaced else inv.status.value,
                       "answer": inv.status.value, "holds": bool(held), "displaced": displaced,
                       "slot": inv.slot.starts_at if inv.slot else None, "time_zone": inv.time_zone,
                       "responded_at": inv.responded_at, "invited_at": inv.invited_at})
    return guests


# --- donors -------------------------------------------------------------------------------

def my_invitations(user: User) -> list[Invitation]:
    """The donor's invitations, one per experience of a reward they hold (made on first sight:
    the caller commits, a page that writes)."""
    held = set(db.session.scalars(_holders_keys(user.id)))
    exps = [e for e in experiences() if e.reward_key in held]
    have = {i.experience_id: i for i in db.session.scalars(
        sa.select(Invitation).where(Invitation.user_id == user.id))}
    for exp in exps:
        if exp.id not in have:
            have[exp.id] = _new_invitation(exp.id, user.id)
    return [have[e.id] for e in exps]


def _holders_keys(user_id: int):
    return holdings.held_keys_sql(user_id, _campaign().id)


def my_invitation(user: User, invitation_id: int) -> Invitation:
    """The donor's own invitation while they hold its reward; 404 otherwise."""
    inv = db.session.get(Invitation, invitation_id)
    if inv is None or inv.user_id != user.id:
        raise NotFoundError(_("No such invitation."))
    if inv.experience.reward_key not in set(db.session.scalars(_holders_keys(user.id))):
        raise NotFoundError(_("No such invitation."))
    return inv


def set_time_zone(user: User, invitation_id: int, tz_name) -> Invitation:
    """The donor's time zone, for all their invitations. The caller commits."""
    inv = my_invitation(user, invitation_id)
    if tz_name not in available_timezones() and tz_name != "UTC":
        raise ValidationError(_("time_zone: choose one from the list."), code="invalid_time_zone")
    # One zone for all of this donor's invitations: they live in one place.
    db.session.execute(sa.update(Invitation).where(Invitation.user_id == user.id).values(time_zone=tz_name))
    return inv


def rsvp(user: User, invitation_id: int, answer, slot_id=None) -> Invitation:
    """Accept one proposed time, or decline. A full time is refused; the slot row is locked
    while its places are counted, until the caller commits (or rolls back, refused)."""
    inv = my_invitation(user, invitation_id)
    if answer == "decline":
        inv.status, inv.slot_id = RsvpStatus.DECLINED, None
    elif answer == "accept":
        try:
            sid = int(slot_id)
        except (TypeError, ValueError):
            sid = None
        slot = db.session.scalar(sa.select(ExperienceSlot).where(
            ExperienceSlot.id == sid, ExperienceSlot.experience_id == inv.experience_id).with_for_update())
        if slot is None:
            raise ValidationError(_("time: choose one of the proposed times."), code="invalid_slot")
        if slot.starts_at <= utcnow():
            raise ValidationError(_("time: this time has passed; choose another."), code="invalid_slot")
        kept = inv.status == RsvpStatus.ACCEPTED and inv.slot_id == slot.id and holds_place(inv)
        if kept:
            # The same answer again: her place is kept, and so is when her answer began to count
            # (a new responded_at would put her behind a displaced donor on this time).
            return inv
        if slot.capacity is not None:
            # The places held (seated_sql), hers among them if she was displaced from this very
            # time: it is full for her too, whoever holds the places now.
            taken = db.session.scalar(sa.select(sa.func.count(Invitation.id)).where(
                Invitation.slot_id == slot.id, Invitation.id.in_(seated_sql(inv.experience_id))))
            if taken >= slot.capacity:
                raise ConflictError(_("That time is full; choose another."), code="slot_full")
        if inv.slot_id != slot.id:
            inv.reminded_at = None  # a new time gets its own reminder
        inv.status, inv.slot_id = RsvpStatus.ACCEPTED, slot.id
    else:
        raise ValidationError(_("answer: accept a time, or decline."), code="invalid_answer")
    inv.responded_at = utcnow()
    return inv


# --- the calendar file (RFC 5545) ---------------------------------------------------------

def _ics_text(value: str) -> str:
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def _fold(line: str) -> str:
    """Lines longer than 75 octets are folded (CRLF + one space), never inside a UTF-8 sequence."""
    out, current = [], b""
    for ch in line:
        b = ch.encode()
        if len(current) + len(b) > (75 if not out else 74):
            out.append(current)
            current = b""
        current += b
    out.append(current)
    return "\r\n ".join(part.decode() for part in out)


def _stamp(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def ics(inv: Invitation) -> str:
    """A VCALENDAR with the accepted time as one VEVENT (times in UTC)."""
    if inv.status != RsvpStatus.ACCEPTED or inv.slot is None:
        raise ConflictError(_("Accept a time first: the calendar file is for the time you chose."),
                            code="no_time_chosen")
    if not holds_place(inv):
        raise ConflictError(_("Your time filled up while your reward was paused: choose another time first."),
                            code="no_place")
    exp, start = inv.experience, inv.slot.starts_at
    words = text(exp)  # the donor's language: she downloads it from her page

    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//filmfund//experiences//EN", "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH", "BEGIN:VEVENT",
        f"UID:invitation-{inv.id}-slot-{inv.slot_id}@filmfund",
        f"DTSTAMP:{_stamp(utcnow())}",
        f"DTSTART:{_stamp(start)}",
        f"DTEND:{_stamp(start + timedelta(minutes=exp.duration_minutes))}",
        f"SUMMARY:{_ics_text(words.title)}",
    ]
    if words.location:
        lines.append(f"LOCATION:{_ics_text(words.location)}")
    description = (words.details + "\n\n" if words.details else "") + absolute_url("comms.my_invitation",
                                                                                 invitation_id=inv.id)
    lines += [f"DESCRIPTION:{_ics_text(description)}", "STATUS:CONFIRMED", "END:VEVENT", "END:VCALENDAR"]
    return "".join(_fold(line) + "\r\n" for line in lines)


# --- mail (invitations and reminders, from the queue) --------------------------------------
# One invitation or reminder at a time: the task claims it, commits the claim, then mails it (and
# gives the claim back if the mail failed), so a crash, a retry or a second worker never mails
# a donor twice (mail_invitations below; run_reminders in comms/tasks.py).

REMINDERS = {  # kind: (the column claimed, the mail's template, its subject)
    "rsvp": ("rsvp_reminded_at", "comms/mail/rsvp_reminder.txt", _l("Will you come? {title}")),
    "soon": ("reminded_at", "comms/mail/reminder.txt", _l("Reminder: {title}")),
}


def claim(inv_id: int, column: str) -> bool:
    """The invitation's mail named by `column` is this caller's to send (one UPDATE: of two
    workers, only one gets it). The caller commits the claim before the mail goes out."""
    col = getattr(Invitation, column)
    return db.session.execute(sa.update(Invitation).where(Invitation.id == inv_id, col.is_(None))
                              .values({column: utcnow()})).rowcount == 1


def release(inv_id: int, column: str) -> None:
    """Give a claim back (its mail failed), for the next try. The caller commits."""
    db.session.execute(sa.update(Invitation).where(Invitation.id == inv_id).values({column: None}))


def _mail(inv: Invitation, template: str, subject: str, *, optional: bool) -> None:
    user = inv.user
    tz = inv.time_zone or "UTC"
    ctx = {"inv": inv, "exp": inv.experience, "campaign": _campaign(), "tz": tz,
           "slots": [local(s.starts_at, tz) for s in inv.experience.slots if s.starts_at > utcnow()],
           "chosen": local(inv.slot.starts_at, tz) if inv.slot else None,
           "url": mail_prefs.absolute_url("comms.my_invitation", invitation_id=inv.id),
           "unsubscribe_url": mail_prefs.unsubscribe_url(user, mail_prefs.REMINDERS) if optional else None}
    headers = mail_prefs.list_unsubscribe_headers(user, mail_prefs.REMINDERS) if optional else None
    with for_donor(user.id):
        words = text(inv.experience)
        send_mail(user.email, str(subject).format(title=words.title),
                  render_template(template, **ctx, words=words), headers=headers)


def unmailed_invitations(experience_id: int) -> list[int]:
    """The experience's invitations not mailed yet (ids, in order); none if it is gone."""
    return list(db.session.scalars(sa.select(Invitation.id).join(Experience).where(
        Invitation.experience_id == experience_id, Invitation.invited_at.is_(None)).order_by(Invitation.id)))


def mail_invitation(inv_id: int) -> bool:
    """Mail a claimed invitation (the invitation is the reward itself: it has no opt-out); False
    if it is skipped because the donor no longer holds the reward (refunded or opted out since
    the invitations were sent: the mail names the place), logged with why. The caller gives the
    claim back, so the mail goes out if they hold it again."""
    inv = db.session.get(Invitation, inv_id)
    exp = inv.experience
    if not holdings.holds(inv.user_id, exp.reward_key, exp.campaign_id):
        log.info("invitation %s to user %s not mailed: no longer holds %s", inv_id, inv.user_id, exp.reward_key)
        return False
    _mail(inv, "comms/mail/invitation.txt", _l("You are invited: {title}"), optional=False)
    return True


def due_reminders(now: datetime) -> list[tuple[str, int]]:
    """(kind, invitation id) of the reminders due: "rsvp" to invitations left unanswered for
    RSVP_REMINDER_AFTER, "soon" to accepted ones holding a place at a time starting within
    REMINDER_BEFORE."""
    future = sa.exists().where(ExperienceSlot.experience_id == Invitation.experience_id,
                               ExperienceSlot.starts_at > now)
    rsvp_ids = list(db.session.scalars(sa.select(Invitation.id).where(
        Invitation.status == RsvpStatus.INVITED, Invitation.rsvp_reminded_at.is_(None),
        Invitation.created_at < now - RSVP_REMINDER_AFTER, future)))
    soon_ids = list(db.session.scalars(
        sa.select(Invitation.id).join(ExperienceSlot, ExperienceSlot.id == Invitation.slot_id).where(
            Invitation.status == RsvpStatus.ACCEPTED, Invitation.reminded_at.is_(None),
            Invitation.id.in_(seated_sql()),  # a displaced donor holds no place at that time
            ExperienceSlot.starts_at > now, ExperienceSlot.starts_at <= now + REMINDER_BEFORE)))
    return [("rsvp", i) for i in rsvp_ids] + [("soon", i) for i in soon_ids]


def remind(inv_id: int, kind: str) -> bool:
    """Mail a claimed reminder; False if it is skipped: the donor opted out of reminders, no
    longer holds the reward, or (the day before) holds no place at her time since it was found
    due (the claim stays, so they are not reminded later)."""
    inv = db.session.get(Invitation, inv_id)
    if (mail_prefs.REMINDERS in mail_prefs.opted_out(inv.user_id)
            or inv.experience.reward_key not in set(db.session.scalars(_holders_keys(inv.user_id)))
            or (kind == "soon" and not holds_place(inv))):
        return False
    _, template, subject = REMINDERS[kind]
    _mail(inv, template, subject, optional=True)
    return True


# Queued under its key from before it moved here, so jobs an older version queued still find it.
@mail_task(registered_as="filmfund.comms.tasks.mail_invitations")
def mail_invitations(experience_id: int) -> int:
    """Mail each not-yet-mailed invitation of an experience once (the queue's task, queued once
    the invitations are committed). A donor who no longer holds the reward is skipped (logged),
    their claim given back: not mailed, unless they hold it again. A failure gives its claim back
    and is raised, once the others are sent, for a retry. How many this run sent."""
    sent, error = 0, None
    for inv_id in unmailed_invitations(experience_id):
        claimed = claim(inv_id, "invited_at")
        db.session.commit()  # claimed before the mail goes out: a crash or a retry never mails it twice
        if not claimed:
            continue
        try:
            if mail_invitation(inv_id):
                sent += 1
            else:
                release(inv_id, "invited_at")
                db.session.commit()  # not mailed: invited_at says so, on the producers' guest list too
        except Exception as exc:
            release(inv_id, "invited_at")
            db.session.commit()  # given back, for the retry
            error = exc
    if error is not None:
        raise error
    return sent
