"""Money in and out: a paid Checkout Session, refunds and disputes, money received offline, and
payouts to the partner, each booked in the ledger (ledger.py) with the donor's entitlements kept
in step."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable

import sqlalchemy as sa
from flask_babel import gettext as _

from filmfund.audit import record_audit
from filmfund.auth.models import Role, User
from filmfund.auth.services import find_user, get_or_create_user, grant_role, new_user, normalize_email
from filmfund.db import utcnow
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.i18n import format_money
from filmfund.rewards import donors, entitlements, ledger, receipts, refund_notices, rules, statements, stock
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.models import (
    Campaign,
    DisputeStatus,
    Donation,
    DonationSource,
    EntryKind,
    EventKind,
    LedgerEntry,
    Payout,
    Pledge,
    PledgeState,
    RefundReport,
    RefundRequest,
    RefundState,
    ReportKind,
)
from filmfund.rewards.pledges import NOTE_MAX, clean_credit_name, validate_amount, validate_flag

def record_stripe_payment(pledge: Pledge, campaign, *, amount: int, currency: str,
                          payment_intent_id: str | None, session_id: str | None, email: str | None,
                          stripe_event_id: str, flags: list[str], invoice_id: str | None = None, subscription=None,
                          charge_id: str | None = None, first_month: bool = True) -> Donation | None:
    """Count a paid Checkout Session once (by pledge and by payment intent), or one month of a
    monthly gift once (by its invoice and payment intent); None if already counted.

    A month's donation is the pledge's own (its `pledge_id` set) when it is the subscription's
    first invoice (`first_month`); a later month's names only its subscription. Every month is
    counted on the subscription's donor. `campaign` is the pledge's (campaign.campaign_of), the
    one the caller checked the currency against.

    The caller holds the pledge's row lock (so two events of one payment are serial); the money
    lock is taken only for the booking, which keeps the time other payments wait for it short."""
    by_payment = Donation.payment_intent_id == payment_intent_id if payment_intent_id else sa.false()
    first = invoice_id is None or first_month
    if invoice_id is None:
        key = Donation.pledge_id == pledge.id
    else:  # the pledge's own donation is its first month's: one of its invoices only
        key = sa.or_(Donation.invoice_id == invoice_id, Donation.pledge_id == pledge.id if first else sa.false())
    existing = db.session.scalar(sa.select(Donation).where(sa.or_(key, by_payment)))
    if existing is not None:
        return None
    # A month is compared with its gift's amount as it stands (changed in Stripe since the pledge, maybe).
    if amount != (subscription.amount if subscription is not None else pledge.amount):
        flags.append("amount_mismatch")  # the money that arrived is what counts
    if pledge.can_move(PledgeState.PAID):
        pledge.move(PledgeState.PAID)
    elif pledge.state != PledgeState.PAID:
        flags.append(f"paid_after_{pledge.state.value}")
    if first:
        pledge.payment_intent_id = payment_intent_id
    if invoice_id is not None:
        session_id = pledge.checkout_session_id if first else None
    user = subscription.user if subscription is not None else donor_for(email, pledge)
    donation = Donation(campaign_id=campaign.id, pledge_id=pledge.id if first else None, user_id=user.id,
                        source=DonationSource.STRIPE, amount=amount, currency=currency,
                        payment_intent_id=payment_intent_id, checkout_session_id=session_id,
                        invoice_id=invoice_id, subscription_id=subscription.id if subscription is not None else None,
                        charge_id=charge_id,
                        credit_name=pledge.credit_name, anonymous=pledge.anonymous,
                        rewards_opt_out=pledge.rewards_opt_out, flags=",".join(flags),
                        receipt_claimed_at=utcnow(), livemode=ledger.money_mode())
    db.session.add(donation)
    db.session.flush()
    booking = ledger.book_gift(campaign, donation, stripe_event_id)  # takes the money lock
    donors.record_gift_choices(user, donation)  # the first gift sets the settings; a later one only more privacy
    standing = entitlements.refresh_entitlements(user, campaign, pledge.id)
    stock.release_pledge(pledge.id)  # an item it held and did not need (the donor had it) goes back
    # Written now, from what this transaction just computed, and mailed by the caller after its
    # commit: nothing is reloaded after the commit, and no mail is sent while the money lock is held.
    receipts.queue_receipt(receipts.make_receipt(campaign, donation, user.email, booking.share, standing))
    return donation


def donor_for(email: str | None, pledge: Pledge) -> User:
    """The account a payment of this pledge is counted on (made if need be)."""
    try:
        return _donor(email or pledge.email)
    except ValidationError:  # an address Stripe took but we would not: the pledge's own is valid
        return _donor(pledge.email)


def _donor(email: str) -> User:
    """The donor's account, made if need be. Outside the money lock, two payments from one new
    address may race to create it: the loser's savepoint rolls back and finds the winner's. A
    pledge never gives a staff account a role: anyone can type a producer's email into the form,
    and the gift is then counted on that account without making it a donor's."""
    email = normalize_email(email)
    user = find_user(email)
    if user is not None and (user.has_role("donor") or user.is_staff):
        return user
    try:
        with db.session.begin_nested():
            if user is None:  # not found just now: made without looking again
                return new_user(email, Role.DONOR)
            grant_role(user, Role.DONOR)
            return user
    except sa.exc.IntegrityError:
        return get_or_create_user(email, Role.DONOR)


def apply_refund(donation: Donation, amount_refunded: int, stripe_event_id: str | None, actor="stripe", *,
                 reported_at: int | None = None, failures: Iterable[rules.RefundFailure] = ()) -> None:
    """A report of what is refunded on the donation: Stripe's cumulative `amount_refunded` at
    `reported_at` (its event's time; a refund the ledger books itself is reported now), with the
    failed refunds the charge listed, if any. The donation's refunds are worked out again from every
    report and the difference is booked; the producers' refund requests it covers are confirmed."""
    _report(donation, ReportKind.REFUNDED, min(donation.amount, amount_refunded), reported_at, stripe_event_id)
    for failure in failures:
        _report_failure(donation, failure, stripe_event_id)
    settle_refunds(donation, EventKind.REFUND, stripe_event_id, actor)


def apply_refund_failure(donation: Donation, failure: rules.RefundFailure, stripe_event_id: str | None,
                         reason: str = "", request: str | None = None) -> None:
    """Stripe says a refund failed (or was canceled) after it was made: its money went back to the
    balance. Taken out of the totals that held it; what it had ended comes back as the rules say
    (the net, and the tier from it), booked as a group of its own; a producer's request for it is
    marked failed (`request`: the request id its metadata names, refunds.send_to_stripe's)."""
    _report_failure(donation, failure, stripe_event_id, reason, request)
    settle_refunds(donation, EventKind.REFUND_FAILED, stripe_event_id)


def _report(donation: Donation, kind: ReportKind, amount: int, reported_at: int | None,
            stripe_event_id: str | None, refund_id: str | None = None, refund_created: int | None = None) -> None:
    db.session.add(RefundReport(donation_id=donation.id, kind=kind, amount=amount,
                                reported_at=int(utcnow().timestamp()) if reported_at is None else reported_at,
                                refund_id=refund_id, refund_created=refund_created, stripe_event_id=stripe_event_id))


def _report_failure(donation: Donation, failure: rules.RefundFailure, stripe_event_id: str | None,
                    reason: str = "", request: str | None = None) -> None:
    _report(donation, ReportKind.REFUND_FAILED, failure.amount, failure.failed_at, stripe_event_id,
            failure.refund_id, failure.created)
    req = db.session.scalar(sa.select(RefundRequest).where(
        RefundRequest.donation_id == donation.id,
        sa.or_(RefundRequest.stripe_refund_id == failure.refund_id,
               RefundRequest.id == _request_id(request))))
    if req is not None and req.can_move(RefundState.FAILED):
        req.move(RefundState.FAILED)
        req.error = (_("The refund failed after Stripe made it (%(reason)s): its money came back.",
                       reason=reason or _("no reason given")))[:500]
        record_audit("donation.refund_failed", f"donation {donation.id}",
                     {"refund_request": req.id, "amount": req.amount, "error": req.error}, actor="stripe")


def _request_id(value) -> int:
    """The refund request a refund's metadata names (refunds.send_to_stripe writes it), or -1."""
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) <= 12 else -1


def settle_refunds(donation: Donation, event: EventKind, stripe_event_id: str | None, actor="stripe") -> None:
    """The donation's refunds from all of its reports (rules.reported_refund), and the ledger after them."""
    db.session.flush()
    reports = db.session.scalars(sa.select(RefundReport).where(RefundReport.donation_id == donation.id)).all()
    before = donation.amount_refunded
    donation.amount_refunded = min(donation.amount, RefundReport.reported_refund(reports))
    if donation.amount_refunded != before:  # a Stripe event's refund: Stripe is the actor we see
        record_audit("donation.refund", f"donation {donation.id}",
                     {"amount_refunded": donation.amount_refunded, "before": before,
                      "currency": donation.currency, "stripe_event": stripe_event_id}, actor=actor)
    _confirm_refund_requests(donation)
    refund_notices.after_refund_change(donation)  # the donor is told, once this commits
    _after_money_change(donation, event, stripe_event_id)


def _confirm_refund_requests(donation: Donation) -> None:
    """Pending refund requests (rewards/refunds.py) are confirmed, oldest first, as far as what
    now counts as refunded covers them with those already confirmed."""
    reqs = list(db.session.scalars(sa.select(RefundRequest).where(
        RefundRequest.donation_id == donation.id, RefundRequest.state != RefundState.FAILED)
        .order_by(RefundRequest.id)))
    covered, refunded = 0, donation.counted_refunded
    for req in reqs:
        if covered + req.amount > refunded:
            break
        covered += req.amount
        if req.state == RefundState.PENDING:
            req.move(RefundState.SUCCEEDED)


def apply_dispute(donation: Donation, status, stripe_event_id: str | None, amount: int | None = None) -> None:
    """A dispute opened or closed. Its `amount` (what Stripe withdraws if it is lost; a cardholder may
    dispute part of a gift) is kept from the closing event, or from the opening one until then."""
    booked_whole = donation.dispute_status == DisputeStatus.LOST and donation.dispute_amount is None
    if amount is not None and not booked_whole and (status != DisputeStatus.OPEN or donation.dispute_amount is None):
        donation.dispute_amount = min(donation.amount, amount)  # (a loss booked whole before amounts were kept stays so)
    if status == DisputeStatus.OPEN:
        if donation.dispute_status is None:  # a late "created" never reopens a closed dispute
            donation.dispute_status = DisputeStatus.OPEN
        return
    donation.dispute_status = status
    event = EventKind.DISPUTE_LOST if status == DisputeStatus.LOST else EventKind.DISPUTE_WON
    _after_money_change(donation, event, stripe_event_id)


def _after_money_change(donation: Donation, event: EventKind, stripe_event_id: str | None) -> None:
    db.session.flush()
    campaign = db.session.get(Campaign, donation.campaign_id)
    if ledger.sync_refund(campaign, donation, event, stripe_event_id):
        entitlements.refresh_entitlements(donation.user, campaign)


def day_ahead(day: date, campaign) -> bool:
    """Whether a day is still to come where the campaign counts its days (today is not): money
    recorded by hand (an offline gift, a payout) is never dated ahead, or it would sit on a future
    day of the totals, the charts and the partner's statements until that day came."""
    return day > utcnow().astimezone(statements.zone(campaign)).date()


def _as_datetime(value: datetime | date | None, campaign) -> datetime:
    """When money recorded by hand came in: a day (noon UTC) or a time with its zone, never one
    still ahead (today counts in the campaign's zone): a gift dated in the future would sit on a
    future day of the totals and charts until that day came."""
    if value is None:
        return utcnow()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError(_("received_at: give a time with its zone."), code="invalid_date")
        ahead = value > utcnow() + timedelta(minutes=5)  # a clock a little fast is no future
    else:
        ahead = day_ahead(value, campaign)
        value = datetime.combine(value, time(12, 0), tzinfo=timezone.utc)
    if ahead:
        raise ValidationError(_("received_on: today or a day before, not a day still to come."), code="invalid_date")
    return value


def record_offline_donation(email: str, amount, received_on: datetime | date | None = None, note: str = "",
                            credit_name=None, anonymous: bool = False, rewards_opt_out: bool = False,
                            recorded_by: str | None = None) -> Donation:
    """A producer records money received outside Stripe (cash at a screening, a bank transfer)."""
    campaign = current_campaign()
    amount = validate_amount(amount)
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ValidationError(_("note: at most %(n)s characters.", n=NOTE_MAX), code="invalid_note")
    credit_name = clean_credit_name(credit_name)
    anonymous, rewards_opt_out = validate_flag(anonymous, "anonymous"), validate_flag(rewards_opt_out, "rewards_opt_out")
    received_at = _as_datetime(received_on, campaign)
    ledger.lock_money(campaign.id)
    user = _donor(email)
    donation = Donation(campaign_id=campaign.id, user_id=user.id, source=DonationSource.OFFLINE, amount=amount,
                        currency=campaign.currency, credit_name=credit_name, anonymous=anonymous,
                        rewards_opt_out=rewards_opt_out, note=note, recorded_by=recorded_by,
                        received_at=received_at, livemode=ledger.money_mode())
    db.session.add(donation)
    db.session.flush()
    ledger.book_gift(campaign, donation)
    donors.record_gift_choices(user, donation)  # a first gift sets the settings; a later one only more privacy
    entitlements.refresh_entitlements(user, campaign)
    # The donor is named by the donation, never by email: the audit log is append-only, and an
    # erased donor's email must not survive in it.
    record_audit("donation.offline", f"donation {donation.id}", {"donation_id": donation.id, "amount": amount,
                                                                  "currency": donation.currency})
    return donation


def record_payout(amount, paid_on: date, reference: str, recorded_by: str) -> Payout:
    """Money paid to the partner. Refused beyond the balance due: an overpayment would have to be
    clawed back from a charity. (Later refunds may still turn the balance negative; it shows as such.)"""
    campaign = current_campaign()
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationError(_("amount: a positive whole number of cents."), code="invalid_amount")
    if not isinstance(paid_on, date):
        raise ValidationError(_("paid_on: a date."), code="invalid_date")
    if day_ahead(paid_on, campaign):
        raise ValidationError(_("paid_on: today or a day before, not a day still to come."), code="invalid_date")
    reference = (reference or "").strip()
    if not reference or len(reference) > 200:
        raise ValidationError(_("reference: 1 to 200 characters (the bank transfer's reference)."),
                              code="invalid_reference")
    ledger.lock_money(campaign.id)
    # Under the money lock, so two submissions of one transfer cannot both pass: a bank reference
    # names one transfer, and a payout booked twice could never be taken back (append-only ledger).
    if _payout_with_reference(campaign, reference):
        raise ConflictError(_("A payout with the bank reference %(reference)s is already recorded.",
                              reference=reference), code="payout_recorded")
    balance = ledger.statement(campaign)["balance"]
    if amount > balance:
        raise ConflictError(_("A payout of %(amount)s exceeds the balance due to the partner (%(balance)s).",
                              amount=format_money(amount, campaign.currency),
                              balance=format_money(balance, campaign.currency)),
                            code="payout_exceeds_balance")
    payout = Payout(campaign_id=campaign.id, amount=amount, currency=campaign.currency, paid_on=paid_on,
                    reference=reference, recorded_by=recorded_by)
    db.session.add(payout)
    db.session.flush()
    ledger.book_payout(campaign, payout)
    record_audit("payout.record", reference, {"payout_id": payout.id, "amount": amount,
                                              "currency": payout.currency, "paid_on": paid_on.isoformat()})
    return payout


REVERSAL_REASON_MAX = 500


def reverse_payout(payout_id: int, reason: str, reversed_by: str) -> Payout:
    """Take back a payout recorded by mistake ($5,000 typed for $50.00): the ledger books a new
    `payout_reversal` group (ledger.book_payout_reversal), so `paid_out` comes back down and the
    balance due back up, and the payout shows as reversed; its own entry stays as it was booked.
    At most once: a second reversal is refused under the money lock (two producers, or a form sent
    twice without its token, cannot both pass). The right amount is then recorded as a new payout."""
    campaign = current_campaign()
    reason = (reason or "").strip()
    if not reason or len(reason) > REVERSAL_REASON_MAX:
        raise ValidationError(_("reason: say why the payout is taken back (1 to %(n)s characters).",
                                n=REVERSAL_REASON_MAX), code="invalid_reason")
    payout = db.session.get(Payout, payout_id)
    mode = ledger.payout_mode(payout_id) if payout is not None and payout.campaign_id == campaign.id else None
    if mode is None:
        raise NotFoundError(_("No such payout."), code="not_found")
    ledger.lock_money(campaign.id, mode)
    if ledger.payout_reversed(payout.id):
        raise ConflictError(_("This payout was already reversed."), code="payout_reversed")
    ledger.book_payout_reversal(campaign, payout, mode)
    payout.reversed_at, payout.reversed_by, payout.reversal_reason = utcnow(), reversed_by, reason
    record_audit("payout.reverse", payout.reference, {"payout_id": payout.id, "amount": payout.amount,
                                                      "currency": payout.currency, "reason": reason})
    db.session.flush()
    return payout


def _payout_with_reference(campaign: Campaign, reference: str) -> bool:
    """Whether a payout of this campaign, in the installation's money mode (its ledger entry's),
    already carries this bank reference. A reversed one does not count: the transfer it named is
    then recorded again, with the right amount, under the same reference."""
    return bool(db.session.scalar(sa.select(sa.exists().where(
        Payout.campaign_id == campaign.id, Payout.reference == reference,
        sa.exists().where(LedgerEntry.payout_id == Payout.id, LedgerEntry.livemode == ledger.money_mode()),
        ~sa.exists().where(LedgerEntry.payout_id == Payout.id,
                           LedgerEntry.entry_kind == EntryKind.PAYOUT_REVERSAL)))))


def partner_statement(campaign: Campaign) -> dict:
    """The statement in the installation's money mode; `test_money` says it counts test payments."""
    return {**ledger.statement(campaign), "test_money": not ledger.money_mode()}
