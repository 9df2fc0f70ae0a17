"""Production updates: write (Markdown), preview, publish; the web archive per audience; the
mailing as background jobs, one delivery row per recipient, claimed before each mail.

Audience: `everyone` (the public archive; mailed to every donor), `donors` (anyone whose
lifetime net gift is above zero), or a reward key (the donors holding that reward right
now: an active Entitlement row). Recipients are selected in SQL when the update is published,
and written as `UpdateDelivery` rows in the same statement; the queue's workers send them.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from flask import current_app, render_template
from itsdangerous import BadSignature, URLSafeSerializer
from flask_babel import gettext as _

from filmfund.audit import record_audit
from filmfund.i18n import for_donor, producers_version, producers_versions
from filmfund.auth.models import User
from filmfund.comms import markdown
from filmfund.comms.models import DeliveryStatus, Update, UpdateDelivery, UpdateState
from filmfund.comms.queueing import mail_task
from filmfund.db import on_commit, utcnow
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.i18n import format_money
from filmfund.mail import send_mail, servers_fault, smtp_session
from filmfund.media import screening
from filmfund.media.models import Asset, AssetKind, AssetState, RenditionKind
from filmfund.rewards import holdings, mail_prefs, texts
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.models import (
    Campaign,
    MailOptOut,
    Reward,
    RewardKind,
    Tier,
)
from filmfund.typed import composed, one_line, printable

log = logging.getLogger(__name__)

EVERYONE, DONORS = "everyone", "donors"
TITLE_MAX, BODY_MAX = 200, 50_000
MAX_ATTEMPTS = 5          # tries per recipient before the delivery is marked failed
STALE_SENDING = timedelta(minutes=15)
BATCH = 200


def _campaign() -> Campaign:
    return current_campaign()


# --- audiences --------------------------------------------------------------------------

def audiences(campaign: Campaign | None = None) -> list[tuple[str, str]]:
    """(value, label) of every audience a producer may choose."""
    campaign = campaign or _campaign()
    rows = db.session.execute(
        sa.select(Reward.key, Reward.title, Tier.name, Tier.min_amount).join(Tier, Tier.id == Reward.tier_id)
        .where(Reward.campaign_id == campaign.id).order_by(Tier.min_amount, Reward.position)).all()
    out = [(EVERYONE, "Everyone (public, mailed to every donor)"), (DONORS, "All donors")]
    out += [(key, f"{title} ({name}, {format_money(amount, campaign.currency, whole=True)}+)")
            for key, title, name, amount in rows]
    return out


def _check_audience(campaign: Campaign, audience) -> str:
    audience = audience.strip() if isinstance(audience, str) else ""
    if audience not in {a for a, _ in audiences(campaign)}:
        raise ValidationError(_("audience: choose everyone, donors, or one of the campaign's reward keys."),
                              code="invalid_audience")
    return audience


def mail_topic(update: Update) -> str:
    """The mail-preference topic an update's mail belongs to (see filmfund.rewards.mail_prefs)."""
    if update.audience in (EVERYONE, DONORS):
        return mail_prefs.NEWS
    kind = db.session.scalar(sa.select(Reward.kind).where(Reward.campaign_id == update.campaign_id,
                                                          Reward.key == update.audience))
    return update.audience if kind == RewardKind.UPDATES else mail_prefs.NEWS


def _donor_ids(campaign_id: int):
    """SELECT of the users whose lifetime net gift to the campaign is above zero, in the
    installation's money mode (test donors never get a live installation's news)."""
    return holdings.donors_sql(campaign_id)


def _holder_ids(campaign_id: int, reward_key: str):
    return holdings.holders_sql(reward_key, campaign_id)


def _audience_ids(update: Update):
    if update.audience in (EVERYONE, DONORS):
        return _donor_ids(update.campaign_id)
    return _holder_ids(update.campaign_id, update.audience)


def _in_audience(update: Update, user_id: int) -> bool:
    sub = _audience_ids(update).subquery()
    return db.session.scalar(sa.select(sa.func.count()).select_from(sub).where(sub.c.user_id == user_id)) > 0


# --- writing ------------------------------------------------------------------------------

def _clean(title, body) -> tuple[str, str]:
    """The title and body as the producer wrote them, minus what prints nothing a reader could
    check (filmfund/typed.py): a subject mailed to every donor that is invisible, or reads
    backwards after a bidi override, is refused as empty or kept without the override. The body's
    lines, indents and tabs stay (Markdown reads them)."""
    title = one_line(title) if isinstance(title, str) else ""
    body = _body_text(body) if isinstance(body, str) else ""
    if not title or len(title) > TITLE_MAX:
        raise ValidationError(_("title: give a title of 1 to %(n)s characters.", n=TITLE_MAX), code="invalid_title")
    if not body or len(body) > BODY_MAX:
        raise ValidationError(_("body: write the update (Markdown, up to %(n)s characters).", n=BODY_MAX),
                              code="invalid_body")
    return title, body


def _body_text(body: str) -> str:
    lines = ("\t".join(printable(part) for part in line.split("\t")) for line in composed(body).splitlines())
    return "\n".join(lines).strip()


def _clean_translations(translations) -> dict[str, dict[str, str]]:
    """The update in the other languages ({"zh-Hans": {"title", "body"}}), each as the main text."""
    return producers_versions(translations, lambda text: dict(zip(("title", "body"),
                                                                  _clean(text.get("title"), text.get("body")))))


class Version(NamedTuple):
    title: str
    body: str
    lang: str


def version(update: Update, lang: str | None = None) -> Version:
    """The update as a reader in `lang` (the current language, by default) reads it: its version
    in that language if its producers wrote one, otherwise its main text. The one home of that
    choice: the archive, the update's page, the API and each donor's mail ask it."""
    text, lang = producers_version({"title": update.title, "body": update.body}, update.translations, lang)
    return Version(text["title"], text["body"], lang)


def create_update(*, title, body, audience, translations=None, author: User | None = None) -> Update:
    """A draft for an audience, with its versions in other languages. The caller commits."""
    campaign = _campaign()
    title, body = _clean(title, body)
    update = Update(campaign_id=campaign.id, title=title, body=body, audience=_check_audience(campaign, audience),
                    translations=_clean_translations(translations), created_by=getattr(author, "id", None))
    db.session.add(update)
    db.session.flush()  # its id, for the page the caller goes to
    return update


def edit_update(update_id: int, *, title, body, audience, translations=None) -> Update:
    """A draft's new texts and audience. The caller commits.

    Written only while the row is still a draft, in the UPDATE itself: another producer may
    publish it between this read and this write, and the mails then go out with what was
    published; the text and audience read and mailed must stay what they were (409)."""
    update = get_update(update_id)
    if update.state != UpdateState.DRAFT:
        raise ConflictError(_("A published update cannot be changed: it has been mailed."), code="published")
    title, body = _clean(title, body)
    values = {"title": title, "body": body, "translations": _clean_translations(translations),
              "audience": _check_audience(_campaign(), audience), "updated_at": utcnow()}
    moved = db.session.execute(sa.update(Update).where(Update.id == update.id, Update.state == UpdateState.DRAFT)
                               .values(**values)).rowcount
    db.session.refresh(update)  # what the row holds now: the edit, or the update as it was published
    if not moved:
        raise ConflictError(_("A published update cannot be changed: it has been mailed."), code="published")
    return update


def set_versions(update_id: int, translations) -> Update:
    """An update's versions in the other languages, replaced as a whole, a published update's
    too: its main text and audience stay what was mailed, but a version written after it went out
    (a translator's work often comes later) shows at once in the archive, on its page and in the
    API, and goes out in any of its mails still waiting. No mail is sent again. The caller commits."""
    update = get_update(update_id)
    update.translations = _clean_translations(translations)
    return update


def get_update(update_id) -> Update:
    """For producers: any update, draft or published."""
    update = db.session.get(Update, update_id) if isinstance(update_id, int) else None
    if update is None or update.campaign_id != _campaign().id:
        raise NotFoundError(_("No such update."))
    return update


def list_updates() -> list[Update]:
    """For producers: every update, newest first."""
    return list(db.session.scalars(sa.select(Update).where(Update.campaign_id == _campaign().id)
                                   .order_by(Update.created_at.desc(), Update.id.desc())))


# --- reading (the archive) ----------------------------------------------------------------

def _audiences_of(user) -> set[str] | None:
    """The audiences whose updates this user may read (None: all of them, for producers)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return {EVERYONE}
    if user.has_role("producer"):
        return None
    campaign_id = _campaign().id
    seen = {EVERYONE}
    sub = _donor_ids(campaign_id).subquery()
    if db.session.scalar(sa.select(sa.func.count()).select_from(sub).where(sub.c.user_id == user.id)):
        seen.add(DONORS)
    seen |= holdings.held_keys(user.id, campaign_id)
    return seen


def readable_updates(user, limit: int = 100) -> list[Update]:
    """The published updates this user may read, newest first (anonymous: the public ones)."""
    q = sa.select(Update).where(Update.campaign_id == _campaign().id, Update.state == UpdateState.PUBLISHED)
    seen = _audiences_of(user)
    if seen is not None:
        q = q.where(Update.audience.in_(seen))
    return list(db.session.scalars(q.order_by(Update.published_at.desc(), Update.id.desc()).limit(limit)))


def readable_update(user, update_id: int) -> Update:
    """One published update, if this user may read it; 404 otherwise (never "it exists")."""
    update = db.session.get(Update, update_id)
    if update is None or update.campaign_id != _campaign().id:
        raise NotFoundError(_("No such update."))
    seen = _audiences_of(user)
    if seen is None:
        return update
    if update.state != UpdateState.PUBLISHED or update.audience not in seen:
        raise NotFoundError(_("No such update."))
    return update


def audience_label(update: Update) -> str:
    """Who an update is for, as the producers' pages name it: the label of their audience menu."""
    return audience_labeller()(update)


def audience_labeller(campaign: Campaign | None = None):
    """audience_label for a list of updates: the audience menu read once, not once per update."""
    labels = dict(audiences(campaign))
    return lambda update: labels.get(update.audience, update.audience)


def readers_label(update: Update) -> str:
    """Who an update is for, as its readers' pages say it ("for ..."): in the page's language, a
    reward and its tier by their names in that language (rewards/texts.py), as the account page and
    the receipt call them. The producers' English menu labels (`audience_label`) are for them only.
    (The pages say nothing of the public updates' audience.)"""
    return readers_labeller()(update)


def readers_labeller():
    """readers_label for a list of updates: the campaign's rewards and tiers read once, not once
    per update."""
    campaign = _campaign()
    rewards = {reward.key: (reward, tier) for reward, tier in db.session.execute(
        sa.select(Reward, Tier).join(Tier, Tier.id == Reward.tier_id).where(Reward.campaign_id == campaign.id))}

    def label(update: Update) -> str:
        if update.audience == DONORS:
            return _("all donors")
        row = rewards.get(update.audience)
        if row is None:  # a reward since removed from the campaign: its key is all that is left of it
            return update.audience
        reward, tier = row
        return _("donors with “%(reward)s” (the %(tier)s tier, %(amount)s+)",
                 reward=texts.reward_title(campaign.translations, reward),
                 tier=texts.tier_name(campaign.translations, tier),
                 amount=format_money(tier.min_amount, campaign.currency, whole=True))

    return label


# --- images from the media library --------------------------------------------------------

def _image_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="filmfund.comms.update-image")


def image_token(update: Update, user: User) -> str:
    """In a mail, images load without a session: the link names the recipient, and each load
    re-checks that they may still read the update."""
    return _image_serializer().dumps([update.id, user.public_id])


def image_reader(update_id: int, token: str | None, session_user) -> User | None:
    """Who is asking for an update's image: the token's user, else the session's."""
    if token:
        try:
            uid, public_id = _image_serializer().loads(token)
        except (BadSignature, ValueError, TypeError):
            raise NotFoundError(_("No such image.")) from None
        if uid != update_id:
            raise NotFoundError(_("No such image."))
        user = db.session.scalar(sa.select(User).where(User.public_id == public_id))
        if screening.erased(user):  # the mailed link of an erased donor: as one that is not valid
            raise NotFoundError(_("No such image."))
        return user
    return session_user


def update_image(update: Update, asset_public_id: str):
    """The stored image an update shows: (storage key, content type). Only an asset named in
    the update's body (its main text or a version), and only its still (an image's resized copy,
    a video's poster)."""
    bodies = [update.body, *(text["body"] for text in (update.translations or {}).values())]
    if not any(asset_public_id in markdown.asset_ids(body) for body in bodies):
        raise NotFoundError(_("No such image."))
    asset = db.session.scalar(sa.select(Asset).where(Asset.public_id == asset_public_id))
    if asset is None or asset.state != AssetState.READY or asset.fixity_ok is False:
        raise NotFoundError(_("No such image."))  # (a fixity alert: nothing served until repaired)
    rendition = asset.rendition(RenditionKind.IMAGE if asset.kind == AssetKind.IMAGE else RenditionKind.POSTER)
    if rendition is None:
        raise NotFoundError(_("No such image."))
    return rendition.storage_key, rendition.content_type


def library_images(limit: int = 60) -> list[dict]:
    """Stills a producer may put in an update: ready images and videos' posters."""
    assets = db.session.scalars(sa.select(Asset).where(Asset.state == AssetState.READY)
                                .order_by(Asset.created_at.desc()).limit(limit))
    return [{"id": a.public_id, "title": a.title, "kind": a.kind.value,
             "markdown": f"![{a.title.replace(']', '')}](asset:{a.public_id})"} for a in assets]


def render_html(update: Update, image_url, lang: str | None = None, base_url: str | None = None) -> str:
    """`base_url`: a mail's (markdown.to_html): where its site links are made absolute."""
    return markdown.to_html(version(update, lang).body, image_url, base_url)


# --- publishing and mailing ---------------------------------------------------------------

def _recipients(update: Update):
    """Who publishing mails (the audience's rule, asked once) and each one's delivery status:
    queued, or unsubscribed for those who opted out of the update's topic."""
    recipients = _audience_ids(update).subquery()
    opted = sa.exists().where(MailOptOut.user_id == recipients.c.user_id, MailOptOut.topic == mail_topic(update))
    status = sa.case((opted, DeliveryStatus.UNSUBSCRIBED.value), else_=DeliveryStatus.QUEUED.value)
    return recipients, status


def reach(update: Update) -> dict[str, int]:
    """What publishing this draft would do now, counted as publishing writes it: how many donors
    it mails and how many of its audience opted out of its topic (the preview shows both)."""
    recipients, status = _recipients(update)
    rows = sa.select(recipients.c.user_id, status.label("status")).distinct().subquery()
    counts = dict(db.session.execute(sa.select(rows.c.status, sa.func.count()).group_by(rows.c.status)).all())
    return {"mailed": counts.get(DeliveryStatus.QUEUED.value, 0),
            "opted_out": counts.get(DeliveryStatus.UNSUBSCRIBED.value, 0)}


def publish_update(update_id: int, actor: User | None = None) -> tuple[Update, bool]:
    """Publish a draft: it shows in the archive to its audience, and one delivery row per
    recipient is written in SQL (queued, or `unsubscribed` for those who opted out of the
    topic). The mail goes out from the queue once the caller commits. Publishing twice does
    nothing the second time."""
    update = get_update(update_id)
    now = utcnow()
    moved = db.session.execute(
        sa.update(Update).where(Update.id == update.id, Update.state == UpdateState.DRAFT)
        .values(state=UpdateState.PUBLISHED, published_at=now, published_by=getattr(actor, "id", None),
                updated_at=now)).rowcount
    if not moved:  # published already (twice, or by another request)
        db.session.refresh(update)
        return update, False
    recipients, status = _recipients(update)
    db.session.execute(sa.insert(UpdateDelivery).from_select(
        ["update_id", "user_id", "status", "attempts", "created_at"],
        sa.select(sa.literal(update.id), recipients.c.user_id, status, sa.literal(0), sa.literal(now, UpdateDelivery.created_at.type))
        .distinct()))
    counts = delivery_counts([update.id]).get(update.id, {})
    _audit(update, counts, actor)
    db.session.refresh(update)  # the state and times the UPDATE above wrote
    on_commit(db.session, lambda: deliver_update(update_id))  # the worker must find its rows
    return update, True


def _audit(update: Update, counts: dict, actor) -> None:
    record_audit("update.send", target=f"update:{update.id}",
                 details={"title": update.title, "audience": update.audience, "deliveries": counts}, actor=actor)


def delivery_counts(update_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per update, how many deliveries are in each status (one GROUP BY)."""
    out: dict[int, dict[str, int]] = {}
    if not update_ids:
        return out
    for uid, status, n in db.session.execute(
            sa.select(UpdateDelivery.update_id, UpdateDelivery.status, sa.func.count())
            .where(UpdateDelivery.update_id.in_(update_ids))
            .group_by(UpdateDelivery.update_id, UpdateDelivery.status)):
        out.setdefault(uid, {})[DeliveryStatus(status).value] = n
    return out


def retry_failed(update_id: int, actor: User | None = None) -> int:
    """The producers' "send again" for a published update's failed deliveries (a mailbox that was
    full, an address mended since, a worker killed mid-send): back to the queue with fresh tries,
    mailed once the caller commits, to donors still in the audience and still subscribed (the
    send checks again). A delivery the sweep failed because its worker died may have gone out:
    sending it again is the producers' choice, and the page says so. Returns how many."""
    update = get_update(update_id)
    if update.state != UpdateState.PUBLISHED:
        raise ConflictError(_("Only a published update has deliveries to send again."), code="not_published")
    # claimed_at now: the sweep sees a live mailing and queues no second job beside this one
    again = db.session.execute(
        sa.update(UpdateDelivery).where(UpdateDelivery.update_id == update_id,
                                        UpdateDelivery.status == DeliveryStatus.FAILED)
        .values(status=DeliveryStatus.QUEUED, attempts=0, error=None, claimed_at=utcnow())).rowcount
    if again:
        record_audit("update.retry_failed", target=f"update:{update.id}", details={"deliveries": again}, actor=actor)
        on_commit(db.session, lambda: deliver_update(update_id))
    return again


def delivery_rows(update_id: int, limit: int = 500) -> list[dict]:
    """For the producer: the recipients with a problem first (failed, then the rest)."""
    order = sa.case((UpdateDelivery.status == DeliveryStatus.FAILED, 0),
                    (UpdateDelivery.status == DeliveryStatus.QUEUED, 1), else_=2)
    rows = db.session.execute(
        sa.select(UpdateDelivery, User.email).join(User, User.id == UpdateDelivery.user_id)
        .where(UpdateDelivery.update_id == update_id).order_by(order, User.email).limit(limit)).all()
    return [{"email": email, "status": d.status.value, "attempts": d.attempts, "sent_at": d.sent_at,
             "error": d.error} for d, email in rows]


def claim_delivery(delivery_id: int) -> bool:
    """queued -> sending, in one UPDATE: of two workers, only one gets the row. The caller
    commits the claim before the mail goes out (deliver_queued)."""
    return db.session.execute(
        sa.update(UpdateDelivery).where(UpdateDelivery.id == delivery_id,
                                        UpdateDelivery.status == DeliveryStatus.QUEUED)
        .values(status=DeliveryStatus.SENDING, claimed_at=utcnow(), attempts=UpdateDelivery.attempts + 1)
    ).rowcount == 1


def compose_mail(update: Update, user: User, topic: str) -> dict:
    with for_donor(user.id):  # the frame around the producers' text is in the donor's language
        return _compose_mail(update, user, topic, current_campaign())


def _compose_mail(update: Update, user: User, topic: str, campaign) -> dict:
    token = image_token(update, user)
    text = version(update)  # the donor's language (compose_mail writes in it)
    # A mail is read from no page: the producers' links to the site (/account) are made absolute on
    # the update's own page, on the public URL (a bare /account is dead in a mail program).
    web_url = mail_prefs.absolute_url("comms.update_page", update_id=update.id)
    html_body = render_html(update, lambda asset_id: mail_prefs.absolute_url(
        "comms.update_image", update_id=update.id, asset_id=asset_id, t=token), base_url=web_url)
    ctx = {"update": update, "text": text, "campaign": campaign, "body_html": html_body,
           "body_text": markdown.to_text(text.body, base_url=web_url),
           "web_url": web_url,
           "unsubscribe_url": mail_prefs.unsubscribe_url(user, topic),
           "topic_title": mail_prefs.topic_title(topic)}
    return {"to": user.email, "subject": text.title,
            "text": render_template("comms/mail/update.txt", **ctx),
            "html": render_template("comms/mail/update.html", **ctx),
            "headers": mail_prefs.list_unsubscribe_headers(user, topic)}


def deliverable(update_id: int) -> Update | None:
    """The update, if it is published (its deliveries may be sent); None otherwise."""
    update = db.session.get(Update, update_id)
    return update if update is not None and update.state == UpdateState.PUBLISHED else None


def queued_deliveries(update_id: int):
    """The ids of the update's queued deliveries, in order, read a batch at a time (the caller
    commits between them: each batch is read afresh)."""
    last = 0
    while True:
        ids = list(db.session.scalars(
            sa.select(UpdateDelivery.id).where(UpdateDelivery.update_id == update_id, UpdateDelivery.id > last,
                                               UpdateDelivery.status == DeliveryStatus.QUEUED)
            .order_by(UpdateDelivery.id).limit(BATCH)))
        if not ids:
            return
        last = ids[-1]
        yield from ids


def send_delivery(update: Update, delivery_id: int, topic: str) -> str:
    """Send one claimed delivery and set what became of it; the caller commits. Which count it
    goes to: `sent`; `skipped` (the donor unsubscribed or was refunded since it was published);
    `retry` (this message or address was refused: back to the queue) or `failed` (the last of
    MAX_ATTEMPTS); `deferred` (the mail server could not be reached or is out of service: the
    claim is given back, the try not counted, and the caller stops the mailing)."""
    delivery = db.session.get(UpdateDelivery, delivery_id)
    user = delivery.user
    # Between publishing and now, the donor may have unsubscribed or been refunded.
    if topic in mail_prefs.opted_out(user.id):
        _finish(delivery, DeliveryStatus.UNSUBSCRIBED)
        return "skipped"
    if not _in_audience(update, user.id):
        _finish(delivery, DeliveryStatus.CANCELLED, "no longer in the audience")
        return "skipped"
    try:
        send_mail(**compose_mail(update, user, topic))
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
        if servers_fault(exc):
            log.warning("update %s: the mail server is unavailable (%s); the mailing waits", update.id, exc)
            _give_back(delivery, error)
            return "deferred"
        log.warning("update %s to user %s: attempt %s failed: %s", update.id, user.id, delivery.attempts, exc)
        final = delivery.attempts >= MAX_ATTEMPTS
        _finish(delivery, DeliveryStatus.FAILED if final else DeliveryStatus.QUEUED, error)
        return "failed" if final else "retry"
    delivery.sent_at = utcnow()
    _finish(delivery, DeliveryStatus.SENT)
    return "sent"


def _finish(delivery: UpdateDelivery, status: DeliveryStatus, error: str | None = None) -> None:
    delivery.status = status
    delivery.error = error


def _give_back(delivery: UpdateDelivery, error: str) -> None:
    """Back to the queue, the claim's try not counted (the donor's tries are for what is theirs).
    claimed_at stays: to the sweep it is the sign of a mailing whose task will try again soon."""
    delivery.status = DeliveryStatus.QUEUED
    delivery.attempts = max(0, delivery.attempts - 1)
    delivery.error = error


# --- the mailing (the queue's task) ------------------------------------------------------
# `deliver_update` sends an update's queued deliveries; if some could not go (a refused address,
# or the mail server down) it raises, and huey runs it again after 1, 2, 4 ... minutes
# (retry_delay, retry_backoff), kept in the queue's storage so a restart loses nothing. Each
# delivery row is claimed before its mail goes out, so retries and parallel workers never send one
# donor the same update twice. The hourly sweep (comms/tasks.py) re-queues updates whose job was
# lost or gave up (a long outage outlasts its tries) and closes claims of dead workers.

class DeliveryIncomplete(Exception):
    """Raised so that huey schedules the next try."""


def deliver_queued(update_id: int) -> dict[str, int]:
    """Send the queued deliveries of an update (deliver_update's body), one transaction each: a
    row is claimed and the claim committed before its mail goes out, then what became of it is
    committed before the next, so a retry or a second worker never sends it again, and a worker
    killed mid-batch leaves at most the one in flight (closed by the sweep, not re-sent). A
    refused message or address goes back to the queue until MAX_ATTEMPTS, then is marked failed.
    When the mail server itself cannot be reached the mailing stops at once, its claim given back
    uncounted: trying the next donors would only fail them too. Returns counts; `retry` or
    `deferred` > 0 tells the job to run again later."""
    done = {"sent": 0, "retry": 0, "failed": 0, "skipped": 0, "deferred": 0}
    update = deliverable(update_id)
    if update is None:
        return done
    topic = mail_topic(update)
    with smtp_session():  # one SMTP connection for the whole mailing (2.6x faster than one per mail)
        for delivery_id in queued_deliveries(update_id):
            claimed = claim_delivery(delivery_id)
            db.session.commit()  # claimed before the mail goes out
            if not claimed:
                continue  # another worker has it
            outcome = send_delivery(update, delivery_id, topic)
            done[outcome] += 1
            db.session.commit()  # sent (or not) is kept before the next donor's mail
            if outcome == "deferred":
                break  # the server is down: the task's next try (or the sweep) goes on from here
    return done


# Queued under its key from before it moved here, so jobs an older version queued still find it.
@mail_task(registered_as="filmfund.comms.tasks.deliver_update")
def deliver_update(update_id: int) -> dict:
    done = deliver_queued(update_id)
    if done["retry"] or done["deferred"]:
        raise DeliveryIncomplete(f"update {update_id}: {done['retry']} mail(s) to try again"
                                 + (", the mail server unavailable" if done["deferred"] else ""))
    return done


def sweep_deliveries(now: datetime | None = None) -> dict[str, int]:
    """Deliveries left `sending` by a worker that died are marked failed, never re-sent (the
    mail may have gone out: a donor must not get it twice); updates with queued deliveries and
    no sign of a live job get a new job once the caller commits: its queue was lost, or its task
    used up its tries during a mail server outage (those deliveries stayed queued, their tries
    uncounted, so the new job sends them once the server is back).

    A live job is one that claimed a delivery, or whose update was published, within
    STALE_SENDING: its mailing is running or waiting in the queue. A second job beside it would
    send nothing twice (claims are atomic), but a worker killed while both run leaves two mails
    in flight, each marked failed and never re-sent, where one job leaves one."""
    now = now or utcnow()
    recent = now - STALE_SENDING
    stale = db.session.execute(
        sa.update(UpdateDelivery).where(UpdateDelivery.status == DeliveryStatus.SENDING,
                                        UpdateDelivery.claimed_at < recent)
        .values(status=DeliveryStatus.FAILED, error="interrupted while sending; not re-sent, to never send twice")
    ).rowcount
    claimed_lately = sa.select(UpdateDelivery.update_id).where(UpdateDelivery.claimed_at >= recent)
    published_lately = sa.select(Update.id).where(Update.published_at >= recent)
    pending = list(db.session.scalars(sa.select(UpdateDelivery.update_id).where(
        UpdateDelivery.status == DeliveryStatus.QUEUED,
        UpdateDelivery.update_id.not_in(claimed_lately),
        UpdateDelivery.update_id.not_in(published_lately)).distinct()))

    def requeue() -> None:
        for update_id in pending:
            deliver_update(update_id)

    on_commit(db.session, requeue)  # queued with the sweep's commit, not before it
    return {"stale": stale, "requeued_updates": len(pending)}
