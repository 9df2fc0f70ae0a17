"""Receipts: written in the transaction that books the gift, mailed after its commit, claimed
atomically so that retries and the hourly sweep mail each one once.

A receipt whose send failed (mail server down) gets its own retry task, with exponential
backoff (after 1, 2, 4 ... 256 minutes: huey's retry_delay and retry_backoff, kept in the
queue's storage so they survive a restart). Behind them, an hourly sweep sends every receipt still
unsent (retries exhausted, or a queue that was lost). The tasks are declared here, beside the use
case they run, so that nothing imports back into this module from a tasks module.

The steps (claim, mail, mark sent, give the claim back) commit nothing. Mailing is the jobs' loop
(the booking's send once its money is committed, retry_receipt, sweep_receipts, at the end of this
module): each claim is committed before its mail goes out and each outcome before the next, which
is what keeps a crash or a retry from mailing a receipt twice.

A receipt whose address (or message) the mail server refuses for good (a 5xx) is not an outage
that passes: the retries leave it, and each hourly sweep tries it again after the receipts never
tried, so that a heap of dead addresses at the front of the queue cannot starve the others. Each
refusal is in the audit log (`receipt.refused`); after RECEIPT_MAX_REFUSALS the donation is flagged
`receipt_refused`, which the producers see beside the gift, and the receipt is tried no more.
The flag goes (`lift_refused_receipts`, audited `receipt.unflagged`) once the address takes mail
again (a later receipt to it is accepted; the donor signed in with a link mailed to it, which
auth's `mailbox_proven` tells), a producer asks for it again (the donor's page), or the address is
no longer the donor's (an erasure): the receipt is sent again once that is committed (and the
sweep takes it first in line if the queue is down), with RECEIPT_MAX_REFUSALS tries again (the
refusals are counted from the last lifting on). The producers see every refused receipt not sent
since (`refused_receipts`: what was refused, how many tries) in the donor's mail and the
dashboard's Mail card.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from huey import crontab

from filmfund import jobs
from filmfund.audit import AuditEntry, record_audit
from filmfund.auth.services import public_base_url
from filmfund.auth.models import User
from filmfund.db import on_commit, utcnow
from filmfund.extensions import db
from filmfund.i18n import for_donor, format_bps, format_money, format_when
from filmfund.mail import our_message_id, refusal_kind, refused_for_good, send_mail
from filmfund.rewards import donors, privacy, texts
from filmfund.rewards.entitlements import donor_entitlements
from filmfund.rewards.models import Campaign, Donation, DonationSource, EntryKind, LedgerEntry, RewardKind

log = logging.getLogger(__name__)

RECEIPT_SWEEP_BATCH = 50  # unsent receipts the hourly sweep tries per run
RECEIPT_CLAIM_STALE = timedelta(minutes=15)  # a claim this old was left by a process that died
RETRY_DELAY = 60  # seconds before the first retry; doubled after each failure
RETRIES = 8
RECEIPT_MAX_REFUSALS = 5  # refusals for good (a 5xx) before a receipt is flagged failed and left
RECEIPT_REFUSED_FLAG = "receipt_refused"  # in Donation.flags: shown to the producers beside the gift


@dataclass(frozen=True)
class Receipt:
    donation_id: int
    to: str
    subject: str
    text: str


def queue_receipt(receipt: Receipt) -> None:
    """Mail this receipt once the current transaction commits (see send_queued_receipts). The
    donation's receipt was claimed in that same transaction, so no retry mails it meanwhile."""
    db.session.info.setdefault("receipts", []).append(receipt)


def queued_receipts_mark() -> int:
    return len(db.session.info.get("receipts", []))


def drop_queued_receipts(mark: int = 0) -> None:
    """The work that queued these receipts was rolled back: they must never be sent."""
    del db.session.info.setdefault("receipts", [])[mark:]


def recompose_queued_receipt(donation: Donation) -> None:
    """The booking queued this donation's receipt, and something it did afterwards in the same
    transaction (a Checkout's address waiting for confirmation) must be in it: write it again."""
    queued = db.session.info.setdefault("receipts", [])
    for i, receipt in enumerate(queued):
        if receipt.donation_id == donation.id:
            queued[i] = compose_receipt(donation)


def receipt_queued(donation_id: int) -> bool:
    """Whether this transaction queued the donation's receipt (its booking): what it goes on to
    do to the gift, an early refund replayed, is told by that receipt (recompose_queued_receipt)."""
    return any(r.donation_id == donation_id for r in db.session.info.get("receipts", []))


def take_queued_receipts() -> list[Receipt]:
    return db.session.info.pop("receipts", [])


def receipt_message_id(donation_id: int) -> str:
    """The one Message-ID of a donation's receipt. A worker killed between the send and its mark
    leaves the receipt claimed but unmarked; once the claim is stale the sweep sends it again,
    under the same id: the outbox replaces its copy, and a mail program shows one receipt. Keyed
    with the secret key, so it names nothing and differs between installations."""
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"receipt:{donation_id}".encode(), hashlib.sha256).hexdigest()[:32]
    return our_message_id(f"receipt.{digest}")


# ---------------------------------------------------------------- the steps (none commits)

def _unsent_receipt(now: datetime):
    """Not sent, and not claimed by anyone still alive."""
    return sa.and_(Donation.receipt_sent_at.is_(None), Donation.source == DonationSource.STRIPE,
                   sa.or_(Donation.receipt_claimed_at.is_(None),
                          Donation.receipt_claimed_at < now - RECEIPT_CLAIM_STALE),
                   sa.not_(_flagged()))


def claim_receipt(donation_id: int) -> bool:
    """Take a donation's receipt to send it, in one UPDATE: of two workers only one gets it, and
    none gets one sent already or claimed by someone still alive (or not a Stripe donation). True
    if this caller has it; the caller commits the claim before the mail goes out."""
    now = utcnow()
    return db.session.execute(sa.update(Donation).where(Donation.id == donation_id, _unsent_receipt(now))
                              .values(receipt_claimed_at=now)).rowcount == 1


def mail_receipt(receipt: Receipt) -> tuple[str, str, str]:
    """Send a claimed receipt, under its one Message-ID. What became of it, why, and what a refusal
    was on: `sent`; `refused` (its address or the message refused for good: mail.refusal_kind's
    code third); `failed` (logged: the mail server down, or anything else). Writes nothing: the
    caller marks it sent, refused, or gives it back."""
    try:
        send_mail(receipt.to, receipt.subject, receipt.text, message_id=receipt_message_id(receipt.donation_id))
    except Exception as exc:  # the money is booked; a mail outage must not fail the webhook
        error = f"{type(exc).__name__}: {exc}"[:300]
        if refused_for_good(exc):  # a 5xx to its address or message: mail.py's rule
            log.warning("receipt for donation %s refused: %s", receipt.donation_id, error)
            return "refused", error, refusal_kind(exc)
        log.exception("receipt for donation %s could not be sent; it will be retried", receipt.donation_id)
        return "failed", error, ""
    return "sent", "", ""


def mark_receipt_sent(donation_id: int) -> None:
    """The receipt reached its address: that address takes mail, so the donor's receipts it refused
    before, flagged and left, are lifted and tried again (lift_refused_receipts)."""
    db.session.execute(sa.update(Donation).where(Donation.id == donation_id).values(receipt_sent_at=utcnow()))
    donor = sa.select(Donation.user_id).where(Donation.id == donation_id).scalar_subquery()
    lift_refused_receipts(donor, "a later receipt to the address was accepted")


def _flagged():
    return Donation.flags.contains(RECEIPT_REFUSED_FLAG, autoescape=True)


def lift_refused_receipts(user_id, why: str, actor="system") -> int:
    """The donor's address takes mail again (a later receipt accepted, a sign-in by a mailed link),
    a producer asks for the receipts again, or the address is no longer theirs (erased: then nothing
    is mailed and the receipt is marked done): every receipt of theirs flagged RECEIPT_REFUSED_FLAG
    loses the flag, its claim released (never tried: first in the sweep's line), with its
    RECEIPT_MAX_REFUSALS tries again (note_refused_receipt counts from this lifting on), and is sent
    again once the caller commits (retry_receipt queued; the sweep's if the queue is down). Each one
    audited `receipt.unflagged` with `why`, by `actor` (a producer; else the system). `user_id` an
    id or a scalar subquery. Nothing to lift costs one indexed read. The caller commits; how many
    were lifted."""
    flagged = list(db.session.scalars(sa.select(Donation).where(Donation.user_id == user_id, _flagged())))
    for donation in flagged:
        donation.flags = ",".join(f for f in donation.flag_list if f != RECEIPT_REFUSED_FLAG)
        donation.receipt_claimed_at = None
        record_audit("receipt.unflagged", f"donation {donation.id}", {"why": why}, actor=actor)
        log.info("receipt for donation %s no longer flagged %s: %s", donation.id, RECEIPT_REFUSED_FLAG, why)
    db.session.flush()
    if flagged:
        ids = [d.id for d in flagged]
        on_commit(db.session, lambda: _queue_sends(ids))
    return len(flagged)


def _queue_sends(donation_ids: list[int]) -> None:
    """After the lifting's commit: each receipt's send, on the mail lane (retry_receipt claims it
    first, so the sweep taking it meanwhile mails it once)."""
    for donation_id in donation_ids:
        try:
            retry_receipt(donation_id)
        except Exception:  # the queue is down: the hourly sweep takes it, first in line
            log.exception("could not queue the receipt of donation %s again", donation_id)


def on_mailbox_proven(user, *, why: str, **_kw) -> None:
    """auth.links.mailbox_proven's receiver (connected at rewards' init_app): the donor acted on a
    link mailed to their address, in that act's transaction. Their mailbox takes our mail, so the
    receipts it refused are lifted and sent again, once (the next such act finds none flagged)."""
    lift_refused_receipts(user.id, why)


def give_back_receipt(donation_id: int) -> None:
    """The send failed: release the claim, so that a retry or the sweep takes it again."""
    db.session.execute(sa.update(Donation).where(Donation.id == donation_id).values(receipt_claimed_at=None))


def note_refused_receipt(donation_id: int, error: str, refused: str = "") -> bool:
    """The mail server refused this claimed receipt for good: one refusal more, in the audit log
    (its count is the receipt's tries; `refused`: what it was refused on, mail.refusal_kind's code,
    which the producers read in refused_receipts). The claim is kept, not given back: its time
    says when it was last tried, so the retries (minutes apart) leave it and the next sweeps take it
    after every receipt tried less recently (unsent_receipts' order). After RECEIPT_MAX_REFUSALS the
    donation is flagged RECEIPT_REFUSED_FLAG and nothing tries it again. True if it was the last.
    The count is the log's entries since the flag was last lifted (lift_refused_receipts): the log
    is append-only and names the gift, never the address, so an erasure leaves it whole."""
    target = f"donation {donation_id}"
    lifted = sa.select(sa.func.coalesce(sa.func.max(AuditEntry.id), 0)).where(
        AuditEntry.action == "receipt.unflagged", AuditEntry.target == target).scalar_subquery()
    refusals = 1 + db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "receipt.refused", AuditEntry.target == target, AuditEntry.id > lifted))
    record_audit("receipt.refused", target, {"refusal": refusals, "of": RECEIPT_MAX_REFUSALS, "error": error,
                                             "refused": refused}, actor="system")
    if refusals < RECEIPT_MAX_REFUSALS:
        return False
    log.warning("receipt for donation %s refused %s times: flagged %s", donation_id, refusals, RECEIPT_REFUSED_FLAG)
    db.session.execute(sa.update(Donation).where(Donation.id == donation_id).values(flags=sa.case(
        (Donation.flags == "", RECEIPT_REFUSED_FLAG), else_=Donation.flags + "," + RECEIPT_REFUSED_FLAG)))
    return True


def refused_receipts(campaign_id: int, livemode: bool, user_id: int | None = None,
                     limit: int = 100) -> list[dict]:
    """For the producers (never the partner: each names the donor's address): the receipts a
    donor's mail server refused and that have not gone out since, the last refused first. Each
    {"donation_id", "user_id", "email", "amount", "currency", "received_at", "at" (the last
    refusal), "refused" (mail.REFUSAL_KINDS code; "" when noted before it was kept), "tries" (since
    the flag was last lifted), "of" (RECEIPT_MAX_REFUSALS), "given_up" (flagged: tried no more until
    lifted)}. The campaign's gifts in one money mode, one donor's (`user_id`) or everyone's. Read
    from the audit log, the one record of the refusals (its index on the action: refusals are few
    beside the gifts), then those of their gifts whose receipt is still unsent."""
    refused = {int(n) for t in db.session.scalars(
        sa.select(AuditEntry.target).where(AuditEntry.action == "receipt.refused").distinct())
        if (n := t.rpartition(" ")[2]).isdigit()}
    if not refused:
        return []
    stmt = (sa.select(Donation, User.email).join(User, User.id == Donation.user_id)
            .where(Donation.id.in_(refused), Donation.campaign_id == campaign_id, Donation.livemode == livemode,
                   Donation.receipt_sent_at.is_(None)))
    if user_id is not None:
        stmt = stmt.where(Donation.user_id == user_id)
    unsent = {f"donation {d.id}": (d, email) for d, email in db.session.execute(stmt).all()}
    if not unsent:
        return []
    seen: dict[str, list[AuditEntry]] = {}
    for entry in db.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.action.in_(("receipt.refused", "receipt.unflagged")),
            AuditEntry.target.in_(list(unsent))).order_by(AuditEntry.id)):
        if entry.action == "receipt.unflagged":
            seen.pop(entry.target, None)  # the count restarts there
        else:
            seen.setdefault(entry.target, []).append(entry)
    rows = []
    for target, refusals in seen.items():
        donation, email = unsent[target]
        last = refusals[-1].details_dict
        rows.append({"donation_id": donation.id, "user_id": donation.user_id, "email": email,
                     "amount": donation.amount, "currency": donation.currency,
                     "received_at": donation.received_at, "at": refusals[-1].created_at,
                     "refused": last.get("refused", ""), "tries": len(refusals), "of": RECEIPT_MAX_REFUSALS,
                     "given_up": RECEIPT_REFUSED_FLAG in donation.flag_list})
    return sorted(rows, key=lambda r: (r["at"], r["donation_id"]), reverse=True)[:limit]


def unsent_receipts(limit: int = RECEIPT_SWEEP_BATCH) -> list[int]:
    """The donations whose receipt is still unsent and unclaimed (or claimed by a process that
    died, or last tried and refused over RECEIPT_CLAIM_STALE ago): what the sweep sends. Those
    never tried, oldest first, then the least recently tried: receipts refused again and again
    take their turn behind the others, never the whole batch every hour."""
    return list(db.session.scalars(sa.select(Donation.id).where(_unsent_receipt(utcnow()))
                                   .order_by(Donation.receipt_claimed_at.asc().nulls_first(), Donation.id)
                                   .limit(limit)))


def compose_receipt(donation: Donation) -> Receipt:
    """The receipt of a recorded donation, read back from the database (the retry task; a booking
    whose transaction went on to change the gift, such as an early refund replayed): the partner's
    part of what the gift still gives, and the donor's standing, as they are now."""
    campaign = db.session.get(Campaign, donation.campaign_id)
    share = int(db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.donation_id == donation.id,
        LedgerEntry.entry_kind.in_((EntryKind.PARTNER_SHARE, EntryKind.PARTNER_SHARE_REVERSAL)))))
    return make_receipt(campaign, donation, donation.user.email, share, donor_entitlements(donation.user, campaign))


TEST_RECEIPT_NOTE = _l("TEST PAYMENT: this was a test-mode payment. No money moved and nothing was charged; "
                       "any rewards listed below are test rewards.")


def make_receipt(campaign: Campaign, donation: Donation, to: str, share: int, standing: dict) -> Receipt:
    """The receipt, written in the donor's language (their profile's: the first gift's page language)."""
    with for_donor(donation.user_id):
        return _receipt_text(campaign, donation, to, share, standing)


def _credit_title(title: str, why: str | None) -> str:
    """A credit reward among what the tier brings, and whether the credits print the donor
    (`why`: privacy.not_credited_because): a credit they hold but that names no one says so."""
    if why in ("anonymous", "erased"):
        return _("%(reward)s (not listed: you asked to stay anonymous)", reward=title)
    if why == "no_name":
        return _("%(reward)s (not listed: you gave no credit name)", reward=title)
    return title


def _receipt_text(campaign: Campaign, donation: Donation, to: str, share: int, standing: dict) -> Receipt:
    test = not donation.livemode
    tr, cur = campaign.translations, donation.currency
    title = texts.campaign_title(campaign)
    lines = ([str(TEST_RECEIPT_NOTE), ""] if test else []) + [
        _("Thank you for supporting “%(title)s”.", title=title), "",
        _("Amount: %(amount)s", amount=format_money(donation.amount, cur)),
        *([_("Refunded: %(amount)s", amount=format_money(donation.counted_refunded, cur))]
          if donation.counted_refunded else []),
        _("Date: %(when)s", when=format_when(donation.received_at)),
        _("Of this, %(share)s goes to %(partner)s (%(percent)s of all that is raised, rounded on the running "
          "total: one gift's part may be a cent more or less than another's).",
          share=format_money(share, cur), partner=texts.partner_name(campaign), percent=format_bps(campaign.share_bps)),
        ""]
    if standing["rewards_opt_out"]:
        lines.append(_("You chose no rewards: all of it goes to the film and its partner."))
    elif standing["tier"]:
        tier = texts.standing_tier_name(tr, standing["tier"])
        lines.append(_("Your total of %(total)s brings you the “%(tier)s” tier:",
                       total=format_money(standing["total"], cur), tier=tier))
        unlisted = privacy.not_credited_because(privacy.profile_of(donation.user_id))
        for r in standing["rewards"]:
            if r["status"] == "revoked":
                continue
            reward = texts.localized(tr, "reward:" + r["key"], r["title"])
            if r["kind"] == RewardKind.CREDIT.value:
                reward = _credit_title(reward, unlisted)
            lines.append(f"  - {reward}")
    lines += donors.receipt_lines(donation)  # a later gift's asked-for settings wait for the donor's click
    if donation.subscription_id:  # one month of a monthly gift: say how to stop it

        lines += ["", _("This is one month of your monthly gift. To stop it, cancel it on your account page: "
                        "%(url)s", url=public_base_url() + "/account")]
    lines += ["", _("This is not a receipt for a real payment.") if test else _("Keep this email as your receipt.")]
    subject = (_("Your receipt: %(title)s (TEST PAYMENT: no money moved)", title=title) if test
               else _("Your receipt: %(title)s", title=title))
    return Receipt(donation.id, to, subject, "\n".join(lines) + "\n")


# ---------------------------------------------------------------- the jobs' loops (they commit)
#
# Mailing receipts is the jobs' loop, not a use case's: each claim is committed before its mail
# goes out, and what became of it (sent, or the claim given back) before the next, so a retry, the
# sweep or a second worker never mails a receipt twice, and a failed send is taken again later.
# Their callers: the booking (webhooks.book_event, once the money is committed), retry_receipt
# and sweep_receipts below.

def send_queued_receipts(receipts: list[Receipt]) -> None:
    """After the booking's commit, outside any lock: mail the receipts the committed transaction
    recorded (and claimed). A failed send is given back and handed to the queue, which retries it
    with backoff."""
    for receipt in receipts:
        if _deliver(receipt) != "failed":
            continue  # sent, or refused for good: the sweep takes a refused one again later
        try:
            retry_receipt_later(receipt.donation_id)
        except Exception:  # the queue is down too: the hourly sweep still finds the receipt
            log.exception("could not queue the retry of receipt %s", receipt.donation_id)


def _deliver(receipt: Receipt) -> str:
    """Send a claimed receipt and commit what became of it (mail_receipt's outcome): sent; refused
    for good (noted, the claim kept: see note_refused_receipt); or failed, the claim given back
    for a retry."""
    outcome, error, refused = mail_receipt(receipt)
    if outcome == "sent":
        mark_receipt_sent(receipt.donation_id)
        db.session.commit()  # sent is kept before the next receipt goes out
        return outcome
    db.session.rollback()  # whatever the failure left open
    if outcome == "refused":
        note_refused_receipt(receipt.donation_id, error, refused)
    else:
        give_back_receipt(receipt.donation_id)
    db.session.commit()
    return outcome


def send_receipt_once(donation_id: int) -> str:
    """Send a donation's receipt unless it was sent already or another worker is sending it
    (retry_receipt's body): the claim is committed before the mail goes out, so concurrent
    retries mail it once. `sent`, `refused`, `failed` (_deliver), or `skipped`: sent already or
    being sent, refused moments ago or for good, or not a Stripe donation."""
    claimed = claim_receipt(donation_id)
    db.session.commit()  # claimed before the mail goes out
    if not claimed:
        return "skipped"
    return _deliver(compose_receipt(db.session.get(Donation, donation_id)))


def send_unsent_receipts(limit: int = RECEIPT_SWEEP_BATCH) -> int:
    """The sweep behind the per-receipt retries (sweep_receipts' body): every receipt still
    unsent (its retries ran out, their queue was lost, or the process died between commit and
    send), each claimed and committed as in send_receipt_once. Returns how many were sent; the
    refusals are logged (and in the audit log, one entry each)."""
    unsent = unsent_receipts(limit)
    db.session.commit()  # no transaction held while mailing
    done = {"sent": 0, "refused": 0, "failed": 0, "skipped": 0}
    for donation_id in unsent:
        done[send_receipt_once(donation_id)] += 1
    if done["refused"] or done["failed"]:
        log.warning("receipt sweep: %(sent)s sent, %(refused)s refused, %(failed)s failed", done)
    return done["sent"]


class ReceiptNotSent(Exception):
    """Raised so that huey schedules the next try."""


@jobs.app_task(lane=jobs.mail, retries=RETRIES, retry_delay=2 * RETRY_DELAY, retry_backoff=2)
def retry_receipt(donation_id: int) -> None:
    if send_receipt_once(donation_id) == "failed":
        raise ReceiptNotSent(f"receipt of donation {donation_id}: the mail server refused or is down")


def retry_receipt_later(donation_id: int) -> None:
    """The first retry, RETRY_DELAY from now. Put straight into the schedule (as huey does its own
    retries): the worker and run_burst run it when due, never early."""
    task = retry_receipt.s(donation_id)
    task.eta = jobs.mail._get_timestamp() + timedelta(seconds=RETRY_DELAY)
    jobs.mail.add_schedule(task)


@jobs.mail.periodic_task(crontab(minute="41"), name="filmfund.rewards.sweep_receipts")
def sweep_receipts() -> int:
    """Hourly: send the receipts still unsent."""
    return jobs.in_worker_app(send_unsent_receipts)
