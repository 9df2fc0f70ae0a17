"""The donor is told when their gift is refunded: how much of it, where the money goes, and what
their gifts bring them now.

A refund is booked when Stripe confirms it (`charge.refunded`, whether the producers asked for it
or Stripe's dashboard did), or when the producers record one by hand (an offline gift, a test
gift). Before, the donor heard nothing: a partial refund asked for by mail could not be told from
one never made, and a donor whose tier fell with it learnt so only when an update stopped coming.

`Donation.refund_noticed` is the refunded amount the donor was last told of, and
`refund_noticed_at` when the notice that told it was mailed (the producers' page about the donor
lists it with their other mail). The notice is queued once the booking commits
(payments.settle_refunds); the task claims it (one UPDATE from the amount it read, stamping the
time: of two workers, or a retry and the sweep, one mails), commits the claim, then mails, and
gives the claim back if the mail failed (the amount and the time told before), for huey's retry.
An hourly sweep mails what a lost queue left. A lost dispute is not a refund (the donor's own
bank took the money back) and is not told; a refund that failed after it was made lowers what was
told, so the next one is told again. A refund Stripe reported before the payment, replayed in the
payment's booking, is told by the gift's receipt ("Refunded: …"), not by a second mail: told, with
no mail time of its own.
"""
from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _
from huey import crontab

from filmfund import jobs
from filmfund.auth.services import public_base_url
from filmfund.db import on_commit, utcnow
from filmfund.extensions import db
from filmfund.i18n import for_donor, format_money, format_when
from filmfund.mail import Letter, our_message_id, send_mail
from filmfund.rewards import receipts, texts
from filmfund.rewards.entitlements import donor_entitlements
from filmfund.rewards.models import Campaign, Donation, DonationSource, RefundReport

log = logging.getLogger(__name__)

RETRIES = 8
RETRY_DELAY = 60  # seconds before the first retry; doubled after each
SWEEP_BATCH = 50


def after_refund_change(donation: Donation) -> None:
    """Called by the booking that changed what is refunded (the caller commits): more refunded is
    told once the commit is done; less (a refund that failed after it was made) lowers what was
    told, so that a later refund up to the same amount is told again."""
    if donation.amount_refunded > donation.refund_noticed and receipts.receipt_queued(donation.id):
        # A refund Stripe sent before the payment, replayed in the payment's booking: the gift's
        # receipt, written after it, says "Refunded" (one mail, not a receipt and a notice). No
        # notice was mailed: no time (the page says the receipt told it).
        donation.refund_noticed, donation.refund_noticed_at = donation.amount_refunded, None
    elif donation.amount_refunded > donation.refund_noticed:
        donation_id = donation.id
        on_commit(db.session, lambda: notify_refund(donation_id))
    elif donation.amount_refunded < donation.refund_noticed:
        # What is still refunded was told by the same mail (its time stays); nothing refunded, nothing told.
        donation.refund_noticed = donation.amount_refunded
        if not donation.amount_refunded:
            donation.refund_noticed_at = None


def _claim(donation_id: int) -> tuple[int, datetime | None] | None:
    """Take the notice of what is refunded now but not yet told, stamped with the time of its
    mail; what was told before and when (to give it back), or None if there is nothing to tell or
    another worker took it. The caller commits."""
    before = db.session.execute(sa.select(Donation.refund_noticed, Donation.refund_noticed_at).where(
        Donation.id == donation_id, Donation.amount_refunded > Donation.refund_noticed)).first()
    if before is None:
        return None
    told, told_at = before
    taken = db.session.execute(sa.update(Donation).where(Donation.id == donation_id, Donation.refund_noticed == told)
                               .values(refund_noticed=Donation.amount_refunded, refund_noticed_at=utcnow())
                               ).rowcount == 1
    return (told, told_at) if taken else None


def _give_back(donation_id: int, told: int, told_at: datetime | None) -> None:
    """The mail failed: what was told before, and when, as it was (none: not mailed yet)."""
    db.session.execute(sa.update(Donation).where(Donation.id == donation_id)
                       .values(refund_noticed=told, refund_noticed_at=told_at))


def compose_notice(donation: Donation) -> Letter:
    """The notice of what is refunded of `donation` now, in the donor's language."""
    campaign = db.session.get(Campaign, donation.campaign_id)
    with for_donor(donation.user_id):
        return _notice_text(campaign, donation, donor_entitlements(donation.user, campaign))


def _notice_text(campaign: Campaign, donation: Donation, standing: dict) -> Letter:
    test, cur, title = not donation.livemode, donation.currency, texts.campaign_title(campaign)
    whole = donation.amount_refunded >= donation.amount
    lines = [str(receipts.TEST_RECEIPT_NOTE), ""] if test else []
    if whole:
        lines.append(_("Your gift of %(amount)s of %(date)s to “%(title)s” has been refunded in full.",
                       amount=format_money(donation.amount, cur), date=format_when(donation.received_at), title=title))
    else:
        lines.append(_("%(refunded)s of your gift of %(amount)s of %(date)s to “%(title)s” has been refunded.",
                       refunded=format_money(donation.amount_refunded, cur), amount=format_money(donation.amount, cur),
                       date=format_when(donation.received_at), title=title))
    if test:
        lines.append(_("This is not a refund of a real payment."))
    elif donation.source == DonationSource.STRIPE:
        lines.append(_("The money goes back to the card or account you paid with; your bank may take 5 to 10 "
                       "working days to show it."))
    lines.append("")
    if standing["rewards_opt_out"]:
        pass  # no rewards were asked for: nothing changes for them
    elif standing["tier"]:
        tier = texts.standing_tier_name(campaign.translations, standing["tier"])
        lines.append(_("Your gifts now total %(total)s, which brings you the “%(tier)s” tier.",
                       total=format_money(standing["total"], cur), tier=tier))
    else:
        lines.append(_("Your gifts now total %(total)s: that is below the first tier, so no rewards come with it.",
                       total=format_money(standing["total"], cur)))
    lines.append(_("Your gifts and what they bring are on your account page: %(url)s", url=public_base_url() + "/account"))
    if whole:
        subject = _("Your gift has been refunded: %(title)s", title=title)
    else:
        subject = _("Part of your gift has been refunded: %(title)s", title=title)
    if test:
        subject = _("%(subject)s (TEST PAYMENT: no money moved)", subject=subject)
    return Letter(donation.user.email, subject, "\n".join(lines) + "\n")


def send_notice_once(donation_id: int) -> str:
    """Claim, commit, mail, and give the claim back if the mail failed (this loop commits):
    `sent`, `failed` or `skipped` (nothing to tell, or another worker tells it)."""
    before = _claim(donation_id)
    db.session.commit()  # claimed before the mail goes out: a retry or a second worker never sends it again
    if before is None:
        return "skipped"
    donation = db.session.get(Donation, donation_id)
    notice = compose_notice(donation)
    # One Message-ID per state told (the refund's reports so far, the amount): a retry after a
    # reply lost on the way is shown once by the donor's mail program, and a refund made again
    # after one failed is a new mail, not taken for the first (both say the same amount).
    reports = db.session.scalar(sa.select(sa.func.count()).select_from(RefundReport)
                                .where(RefundReport.donation_id == donation_id))
    try:
        send_mail(notice.to, notice.subject, notice.text,
                  message_id=our_message_id(f"refund.{donation_id}.{reports}.{donation.refund_noticed}"))
    except Exception:
        log.exception("the refund notice of donation %s could not be sent; it will be tried again", donation_id)
        _give_back(donation_id, *before)
        db.session.commit()
        return "failed"
    return "sent"


class NoticeNotSent(Exception):
    """Raised so that huey schedules the next try."""


@jobs.app_task(lane=jobs.mail, retries=RETRIES, retry_delay=RETRY_DELAY, retry_backoff=2)
def notify_refund(donation_id: int) -> None:
    """Mail the donor what is refunded of their gift now, once (queued by after_refund_change)."""
    if send_notice_once(donation_id) == "failed":
        raise NoticeNotSent(f"refund notice of donation {donation_id}: the mail server refused or is down")


def send_untold(limit: int = SWEEP_BATCH) -> int:
    """The sweep's body: the refunds not yet told (their task's retries ran out, or its queue was
    lost), each claimed and committed as by the task. How many were sent."""
    # (amount_refunded > 0: read from the partial index of refunded and disputed gifts.)
    untold = list(db.session.scalars(sa.select(Donation.id).where(
        Donation.amount_refunded > 0, Donation.amount_refunded > Donation.refund_noticed).order_by(Donation.id).limit(limit)))
    db.session.commit()  # no transaction held while mailing
    return sum(send_notice_once(donation_id) == "sent" for donation_id in untold)


@jobs.mail.periodic_task(crontab(minute="43"), name="filmfund.rewards.sweep_refund_notices")
def sweep_refund_notices() -> int:
    """Hourly: tell the refunds not told yet."""
    return jobs.in_worker_app(send_untold)
