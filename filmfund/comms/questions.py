"""Questions to the interview subjects (the $250 tier).

A donor holding the questions reward submits questions, up to a limit each (rejected ones
do not count). Producers moderate (approve or reject with a note), assign each approved one
to a subject, and record the answer: text and/or a clip from the footage library, in the
subject's language and in English, each text with its own status (missing, draft, final).
When what was recorded is final, the question is answered: the donor is mailed once (a
queued job, claimed) and reads the answer on their own page, which no one else can open.

The use cases here do not commit: the view, or the queue task, commits once (issue 16).
"""
from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.orm import selectinload
from flask import current_app, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from filmfund.i18n import for_donor
from filmfund.auth.models import User
from filmfund.comms.models import InterviewSubject, Question, QuestionState, TextStatus
from filmfund.comms.queueing import mail_task
from filmfund.db import on_commit, utcnow
from filmfund.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.mail import send_mail
from filmfund.media import library
from filmfund.media.models import Asset, AssetKind, AssetState, RenditionKind
from filmfund.rewards import holdings
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.mail_prefs import absolute_url
from filmfund.rewards.texts import tier_amount
from filmfund.rewards.models import Entitlement

log = logging.getLogger(__name__)

QUESTION_MAX = 1000
NOTE_MAX = 500
ANSWER_MAX = 20_000
DEFAULT_LIMIT = 3
DEFAULT_REWARD = "interview-questions"


def _campaign():
    return current_campaign()


def reward_key() -> str:
    return current_app.config.get("QUESTIONS_REWARD", DEFAULT_REWARD)


def limit_per_donor() -> int:
    return int(current_app.config.get("QUESTIONS_PER_DONOR", DEFAULT_LIMIT))


def _entitlement(user_id: int, *, lock: bool = False) -> Entitlement | None:
    return holdings.held_entitlement(user_id, reward_key(), _campaign().id, lock=lock)


def may_ask(user) -> bool:
    return user is not None and holdings.holds(user.id, reward_key(), _campaign().id)


def why_not_asking(user) -> str | None:
    """Why this donor may not ask (None: she may), as holdings.why_not_held says: DECLINED (she
    chose no rewards; her settings give them back) or NOT_REACHED (the tier)."""
    return holdings.why_not_held(user.id if user is not None else None, reward_key(), _campaign().id)


def refusal(why: str) -> str:
    """The sentence that tells a donor why she may not ask (why_not_asking's answer): her page
    and a refused submit say the same."""
    if why == holdings.DECLINED:
        return _("You chose no rewards, so you cannot ask the interview subjects questions for now. "
                 "Take your rewards back in your settings, and you can ask again.")
    return _("Questions to the interview subjects come with the %(tier)s tier.",
             tier=tier_amount(_campaign(), reward_key()))


def _counted(user_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count(Question.id)).where(
        Question.user_id == user_id, Question.campaign_id == _campaign().id,
        Question.state != QuestionState.REJECTED))


def remaining(user) -> int:
    return max(0, limit_per_donor() - _counted(user.id))


def my_questions(user) -> list[Question]:
    return list(db.session.scalars(sa.select(Question).where(
        Question.user_id == user.id, Question.campaign_id == _campaign().id).order_by(Question.id.desc())))


def submit_question(user: User, body) -> Question:
    """A donor's new question, within their limit. The entitlement row is locked while counting,
    until the caller commits, so two submits at once cannot both take the last place. Refused
    (the limit), the question is flushed already: the caller rolls back."""
    body = body.strip() if isinstance(body, str) else ""
    if not body or len(body) > QUESTION_MAX:
        raise ValidationError(_("body: write your question (up to %(n)s characters).", n=QUESTION_MAX),
                              code="invalid_question")
    if _entitlement(user.id, lock=True) is None:
        raise ForbiddenError(refusal(why_not_asking(user) or holdings.NOT_REACHED), code="not_entitled")
    question = Question(campaign_id=_campaign().id, user_id=user.id, body=body)
    db.session.add(question)
    db.session.flush()
    # Counted after the insert, in the same transaction: on PostgreSQL the locked entitlement row
    # makes a second submit wait for this one; on SQLite the insert holds the write lock.
    if _counted(user.id) > limit_per_donor():
        raise ConflictError(_("You have asked your %(n)s questions.", n=limit_per_donor()), code="question_limit")
    return question


# A question's state as its donor reads it: the badge of the list (/account/questions), also the
# state the readable export shows (rewards.donor_data, given at init_app); and the sentence of the
# question's own page.
STATE_WORDS = {
    QuestionState.SUBMITTED: _l("waiting for the producers"),
    QuestionState.APPROVED: _l("accepted"),
    QuestionState.REJECTED: _l("not asked"),
    QuestionState.ASSIGNED: _l("being answered"),
    QuestionState.ANSWERED: _l("answered"),
}


def state_badge(question: Question) -> str:
    return str(STATE_WORDS[QuestionState(question.state)])


def state_sentence(question: Question) -> str:
    """Where the question is, in a sentence (its page; an answered one shows the answer instead)."""
    state = QuestionState(question.state)
    if state == QuestionState.SUBMITTED:
        return _("The producers will read it soon.")
    if state == QuestionState.APPROVED:
        return _("Accepted: it will be put to one of the people in the film.")
    if state == QuestionState.REJECTED:
        return _("The producers could not ask it: %(why)s", why=question.moderation_note)
    if state == QuestionState.ASSIGNED and question.subject is not None:
        return _("It is being answered by %(name)s; the translation follows.", name=question.subject.name)
    if state == QuestionState.ASSIGNED:
        return _("It is being answered; the translation follows.")
    return str(STATE_WORDS[state])


SUBJECTS_HAVE_IT = (QuestionState.ASSIGNED, QuestionState.ANSWERED)


def erase_questions(user: User) -> None:
    """Receiver of rewards' `donor_erasing`: the donor's own words go with the rest of their data.
    A question no subject was given yet is deleted (nothing of it is anyone else's); one given to a
    subject (assigned, answered) keeps its place and the subject's answer, which is the film's
    material, but loses the donor's question and the producers' note on it (the producers' pages
    say it was erased)."""
    mine = Question.user_id == user.id
    db.session.execute(sa.delete(Question).where(mine, Question.state.not_in(SUBJECTS_HAVE_IT)),
                       execution_options={"synchronize_session": False})
    db.session.execute(sa.update(Question).where(mine).values(body="", moderation_note=""),
                       execution_options={"synchronize_session": False})


def my_question(user, question_id: int) -> Question:
    """The donor's own question (404 for anyone else's, and once the reward is revoked)."""
    question = db.session.get(Question, question_id)
    if question is None or question.user_id != user.id or not may_ask(user):
        raise NotFoundError(_("No such question."))
    return question


# --- producers ----------------------------------------------------------------------------

def subjects() -> list[InterviewSubject]:
    return list(db.session.scalars(sa.select(InterviewSubject).where(
        InterviewSubject.campaign_id == _campaign().id).order_by(InterviewSubject.name)))


def _language(value) -> str:
    value = value.strip() if isinstance(value, str) else ""
    if not value or len(value) > 35 or not all(part.isalnum() for part in value.split("-")):
        raise ValidationError(_("language: give a language code such as zh, yue or en."), code="invalid_language")
    return value


def add_subject(name, language) -> InterviewSubject:
    """A new interview subject. The caller commits."""
    name = " ".join(name.split()) if isinstance(name, str) else ""
    if not name or len(name) > 200:
        raise ValidationError(_("name: give the subject's name (up to 200 characters)."), code="invalid_name")
    subject = InterviewSubject(campaign_id=_campaign().id, name=name, language=_language(language))
    db.session.add(subject)
    db.session.flush()  # its id, for the caller's form
    return subject


def queue(state: str | None = None) -> list[tuple[Question, str]]:
    """Questions with the asker's email, oldest first, optionally of one state."""
    q = (sa.select(Question, User.email).join(User, User.id == Question.user_id)
         .where(Question.campaign_id == _campaign().id).order_by(Question.id))
    if state:
        q = q.where(Question.state == QuestionState(state))
    return list(db.session.execute(q).all())


def counts() -> dict[str, int]:
    rows = db.session.execute(sa.select(Question.state, sa.func.count()).where(
        Question.campaign_id == _campaign().id).group_by(Question.state)).all()
    return {QuestionState(s).value: n for s, n in rows}


def get_question(question_id: int) -> Question:
    question = db.session.get(Question, question_id)
    if question is None or question.campaign_id != _campaign().id:
        raise NotFoundError(_("No such question."))
    return question


def moderate(question_id: int, decision, note="") -> Question:
    """Approve a question, or reject it with a note for the donor. The caller commits."""
    question = get_question(question_id)
    note = note.strip()[:NOTE_MAX] if isinstance(note, str) else ""
    if question.state not in (QuestionState.SUBMITTED, QuestionState.APPROVED, QuestionState.REJECTED):
        raise ConflictError(_("This question has been assigned already."), code="illegal_transition")
    if decision == "approve":
        question.state = QuestionState.APPROVED
    elif decision == "reject":
        if not note:
            raise ValidationError(_("note: tell the donor why the question cannot be asked."), code="invalid_note")
        question.state = QuestionState.REJECTED
    else:
        raise ValidationError(_("decision: approve or reject."), code="invalid_decision")
    question.moderation_note = note
    question.moderated_at = utcnow()
    return question


def assign(question_id: int, subject_id) -> Question:
    """Give an approved question to an interview subject. The caller commits."""
    question = get_question(question_id)
    if question.state not in (QuestionState.APPROVED, QuestionState.ASSIGNED):
        raise ConflictError(_("Approve the question before assigning it."), code="illegal_transition")
    try:
        subject = db.session.get(InterviewSubject, int(subject_id))
    except (TypeError, ValueError):
        subject = None
    if subject is None or subject.campaign_id != question.campaign_id:
        raise ValidationError(_("subject: choose one of the interview subjects."), code="invalid_subject")
    question.subject_id = subject.id
    question.answer_language = question.answer_language or subject.language
    question.state = QuestionState.ASSIGNED
    return question


def _status(value) -> TextStatus:
    try:
        return TextStatus(value)
    except ValueError:
        raise ValidationError(_("status: missing, draft or final."), code="invalid_status") from None


def clip_choices(question: Question, limit: int = 500) -> list[dict]:
    """What a producer may attach to this question's answer (ready clips and stills), newest
    recording first, with what the picker shows: title, poster, when recorded (at the camera's
    offset when it has one), and why one may not go to this donor (`withheld`: the early-access
    film, a higher tier's clip; listed, not offered). One without a donor copy yet is listed too:
    saving says so (_clip_asset)."""
    withheld = library.withheld_from_each(db.session.get(User, question.user_id))
    assets = db.session.scalars(sa.select(Asset).where(Asset.state == AssetState.READY,
                                                       Asset.kind.in_([AssetKind.VIDEO, AssetKind.IMAGE]))
                                .options(selectinload(Asset.publications), selectinload(Asset.renditions))
                                .order_by(sa.func.coalesce(Asset.recorded_at, Asset.created_at).desc(), Asset.id.desc())
                                .limit(limit))
    return [{"id": a.public_id, "title": a.title, "recorded_at": a.recorded_at, "camera_zone": a.camera_zone,
             "created_at": a.created_at, "duration": a.duration,
             "withheld": WITHHELD.get(withheld(a)),
             "poster": (RenditionKind.POSTER if a.rendition(RenditionKind.POSTER) else
                        RenditionKind.IMAGE if a.rendition(RenditionKind.IMAGE) else None)} for a in assets]


# Why a clip may not be given to the asker (media.library.withheld_from), as the producer reads it.
WITHHELD = {
    "screening": _l("the early-access film: it is only streamed, in its window, never sent as a file"),
    "reward": _l("published to a reward this donor does not hold"),
}


def _clip_asset(asset_public_id, question: Question):
    if not asset_public_id:
        return None
    asset = db.session.scalar(sa.select(Asset).where(Asset.public_id == str(asset_public_id).strip()))
    if asset is None or asset.state != AssetState.READY:
        raise ValidationError(_("clip: give the id of a ready asset of the footage library."), code="invalid_clip")
    withheld = library.withheld_from(db.session.get(User, question.user_id), asset)
    if withheld:
        raise ValidationError(_("clip: “%(title)s” cannot go to this donor: %(why)s.", title=asset.title,
                                why=WITHHELD[withheld]), code="clip_withheld")
    if asset.rendition(RenditionKind.WEB) is None and asset.rendition(RenditionKind.IMAGE) is None:
        # Donors get only copies made for them (no camera metadata); a clip's web copy is made
        # when it is first published, or at ingest if the web profile says so.
        raise ValidationError(_("clip: this asset has no donor copy (web rendition) yet."), code="clip_not_ready")
    return asset


# The answer's two texts, as a refusal names them (the producers' form: "Answer in the original
# language", "English translation"); the message still starts with the field ("original: ..."),
# which ties it to its box on the page and names it to API clients.
ANSWER_TEXTS = {
    "original": _l("the answer in the original language"),
    "english": _l("the English translation"),
}


def record_answer(question_id: int, *, original="", original_status="missing", english="",
                  english_status="missing", language=None, clip=None) -> Question:
    """Record (or correct) the answer: text in the subject's language and in English, each
    `missing`, `draft` or `final` (a text given is at least a draft), and/or a library clip.
    Once the English is final and the original is not a draft, the question is answered and the
    donor is told (once), when the caller commits."""
    question = get_question(question_id)
    if question.state not in (QuestionState.ASSIGNED, QuestionState.ANSWERED):
        raise ConflictError(_("Assign the question to a subject first."), code="illegal_transition")
    texts = {}
    for name, value, status in (("original", original, original_status), ("english", english, english_status)):
        value = value.strip() if isinstance(value, str) else ""
        status = _status(status)
        if len(value) > ANSWER_MAX:
            raise ValidationError(_("%(field)s: %(text)s can be up to %(n)s characters.", field=name,
                                    text=ANSWER_TEXTS[name], n=ANSWER_MAX), code="invalid_answer")
        if status != TextStatus.MISSING and not value:
            raise ValidationError(_("%(field)s: %(text)s is marked %(status)s, so it cannot be empty.", field=name,
                                    text=ANSWER_TEXTS[name], status=status.value), code="invalid_answer")
        texts[name] = (value, TextStatus.MISSING if not value else
                       TextStatus.DRAFT if status == TextStatus.MISSING else status)
    asset = _clip_asset(clip, question)
    question.answer_original, question.original_status = texts["original"]
    question.answer_english, question.english_status = texts["english"]
    if language:
        question.answer_language = _language(language)
    question.answer_asset_id = asset.id if asset else None
    # Delivered in English: the answer is ready when the English text is final and the
    # original (if recorded) is not a draft still being transcribed.
    finished = question.english_status == TextStatus.FINAL and question.original_status != TextStatus.DRAFT
    newly = finished and question.state != QuestionState.ANSWERED
    if finished:
        question.state = QuestionState.ANSWERED
        question.answered_at = question.answered_at or utcnow()
    else:
        question.state = QuestionState.ASSIGNED
    if newly:
        question_id = question.id
        on_commit(db.session, lambda: notify_answer(question_id))  # the worker must find it answered
    return question


def claim_answer_notice(question_id: int) -> bool:
    """The answered question's notice is this caller's to send (one UPDATE: of two workers, only
    one gets it). The caller commits the claim before the mail goes out (notify_answer)."""
    return db.session.execute(sa.update(Question).where(
        Question.id == question_id, Question.state == QuestionState.ANSWERED, Question.notified_at.is_(None))
        .values(notified_at=utcnow())).rowcount == 1


def release_answer_notice(question_id: int) -> None:
    """Give a claimed notice back (its mail failed), for the retry. The caller commits."""
    db.session.execute(sa.update(Question).where(Question.id == question_id).values(notified_at=None))


def mail_answer_notice(question_id: int) -> bool:
    """Mail the donor that their answer is ready (a link, never the answer itself); False, and no
    mail, if they no longer hold the questions' reward (refunded or opted out since they asked):
    the mail names the interview subject, and its link would answer "no such question"."""
    question = db.session.get(Question, question_id)
    if not may_ask(question.user):
        log.info("answer notice of question %s not mailed: its donor no longer holds %s", question_id, reward_key())
        return False
    ctx = {"question": question, "campaign": _campaign(),
           "url": absolute_url("comms.my_question", question_id=question.id)}
    with for_donor(question.user_id):
        send_mail(question.user.email, _("Your question has been answered"),
                  render_template("comms/mail/answer.txt", **ctx))
    return True


# Queued under its key from before it moved here, so jobs an older version queued still find it.
@mail_task(registered_as="filmfund.comms.tasks.notify_answer")
def notify_answer(question_id: int) -> bool:
    """Mail the donor that their question is answered, once (the queue's task, queued by
    record_answer once its commit is done). True if this run sent it."""
    claimed = claim_answer_notice(question_id)
    db.session.commit()  # claimed before the mail goes out: a retry or a second worker never sends it again
    if not claimed:
        return False
    try:
        sent = mail_answer_notice(question_id)
    except Exception:
        release_answer_notice(question_id)
        db.session.commit()  # given back, for the retry huey schedules
        raise
    if not sent:
        release_answer_notice(question_id)
        db.session.commit()  # not told: the producers' page must not say the donor was
    return sent


def clip_of(question: Question):
    """(storage key, content type) of the answer's clip: its web rendition, else the image."""
    asset = db.session.get(Asset, question.answer_asset_id) if question.answer_asset_id else None
    if asset is None or asset.state != AssetState.READY or asset.fixity_ok is False:
        raise NotFoundError(_("No clip."))
    # Asked again at each fetch: the clip may have been published since to a reward the donor
    # does not hold (the early-access film), or the donor's holdings may have changed.
    if library.withheld_from(db.session.get(User, question.user_id), asset):
        raise NotFoundError(_("No clip."))
    rendition = asset.rendition(RenditionKind.WEB) or asset.rendition(RenditionKind.IMAGE)
    if rendition is None:
        raise NotFoundError(_("No clip."))
    return rendition.storage_key, rendition.content_type
