"""What the producers see of one donor (their page) and of every supporter (the crew's CSV).

Producers only, never the partner. The producer may know who gave: the donor's own credit name is
shown with their anonymity flag beside it (privacy.own_name, privacy.is_anonymous); the tier and
rewards are holdings' and entitlements' answers, the shipping address privacy's, the physical
items fulfil's, the questions comms'.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from functools import lru_cache

import sqlalchemy as sa

from filmfund import csvsafe
from filmfund.auth.models import User
from filmfund.comms.models import DeliveryStatus, Question, Update, UpdateDelivery
from filmfund.errors import NotFoundError
from filmfund.extensions import db
from filmfund.fulfil import fulfilment
from filmfund.fulfil.models import ReminderMail
from filmfund.i18n import format_money
from filmfund.rewards import donations, holdings, ledger, privacy, receipts, refunds, texts
from filmfund.rewards.entitlements import donor_entitlements
from filmfund.rewards.models import Donation, DonationSource, DonorProfile, RefundReport, ReportKind, ShippingAddress
from filmfund.rewards.totals import DonorTotal


def donor_page(campaign, user_id: int) -> dict:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFoundError("No such donor.")
    profile = privacy.profile_of(user.id)
    gifts = donations.donor_donations(campaign, user.id)
    requests = refunds.requests_for([g["id"] for g in gifts])
    for g in gifts:
        g["remaining"] = g["amount"] - g["refunded"] - g["refund_pending"]
        g["refund_requests"] = requests.get(g["id"], [])
    standing = donor_entitlements(user, campaign)
    refused = receipts.refused_receipts(campaign.id, ledger.money_mode(), user.id)
    return {
        "user": user, "profile": profile, "credit_name": privacy.own_name(profile),
        "public_name": privacy.public_name(profile), "anonymous": privacy.is_anonymous(profile),
        "erased": privacy.is_erased(profile), "rewards_opt_out": bool(profile and profile.rewards_opt_out),
        "language": profile.language if profile else None,
        "total": standing["total"], "tier": standing["tier"], "rewards": standing["rewards"],
        "gifts": gifts, "address": privacy.shipping_address_of(user.id),
        "items": fulfilment.donor_items(user, campaign),
        "questions": list(db.session.scalars(sa.select(Question).where(
            Question.user_id == user.id, Question.campaign_id == campaign.id).order_by(Question.id.desc()))),
        "mail": mail_sent(user.id, gifts, refused),
        "receipts_given_up": sum(r["given_up"] for r in refused),
    }


def mail_sent(user_id: int, gifts: list[dict], refused_receipts: list[dict] = ()) -> list[dict]:
    """The mail the site sent this donor, newest first: receipts, refund notices, updates, surveys
    and proofs, and the receipts their mail server refused (receipts.refused_receipts: not sent
    since; `given_up` when tried no more, which the page offers to send again). A row without a
    time (`at` None) is a refund notice not mailed yet, listed first, or one told before its time
    was kept, listed last."""
    rows = []
    for r in refused_receipts:
        rows.append({"at": r["at"], "what": f"Receipt for {format_money(r['amount'], r['currency'])}",
                     "status": f"refused: {r['refused']}" if r["refused"] else "refused", "receipt": r,
                     "note": (f"{r['tries']} of {r['of']} tries: not tried again" if r["given_up"]
                              else f"{r['tries']} of {r['of']} tries: tried again each hour")})
    ids = [g["id"] for g in gifts]
    for sent_at, amount, currency in (db.session.execute(
            sa.select(Donation.receipt_sent_at, Donation.amount, Donation.currency)
            .where(Donation.id.in_(ids), Donation.receipt_sent_at.is_not(None))).all() if ids else []):
        rows.append({"at": sent_at, "what": f"Receipt for {format_money(amount, currency)}", "status": "sent"})
    rows += refund_notices_sent(ids)
    for delivery, title in db.session.execute(
            sa.select(UpdateDelivery, Update.title).join(Update, Update.id == UpdateDelivery.update_id)
            .where(UpdateDelivery.user_id == user_id)).all():
        rows.append({"at": delivery.sent_at or delivery.created_at, "what": f"Update: {title}",
                     "status": delivery.status.value if delivery.status != DeliveryStatus.SENT else "sent"})
    for reminder in db.session.scalars(sa.select(ReminderMail).where(ReminderMail.user_id == user_id)):
        rows.append({"at": reminder.sent_at, "what": reminder.kind.replace("_", " ").capitalize(),
                     "status": f"refused: {reminder.refused}" if reminder.refused else "sent"})
    return sorted(rows, key=lambda r: (r.get("rank", 1), r["at"] or _NEVER), reverse=True)


_NEVER = datetime.min.replace(tzinfo=timezone.utc)
_OWED, _UNDATED = 2, 0  # the rows without a time: above the dated ones (owed now), below (told long ago)


def refund_notices_sent(ids: list[int]) -> list[dict]:
    """What each refunded gift's donor was told of its refund (rewards/refund_notices.py), as rows of
    mail_sent: the notice mailed (its time and the amount it told); the gift's receipt, when a refund
    Stripe reported before the payment was told by it (no notice of its own: a REFUNDED report
    of at least what was told, booked before the receipt went out); a notice told before its time
    was kept (refund_noticed with no time); and what is refunded but not told yet."""
    if not ids:
        return []
    d = Donation
    on_receipt = sa.exists().where(
        RefundReport.donation_id == d.id, RefundReport.kind == ReportKind.REFUNDED,
        RefundReport.amount >= d.refund_noticed, RefundReport.created_at <= d.receipt_sent_at)
    rows = []
    for (amount, currency, refunded, told, told_at, source, receipt_sent_at, by_receipt) in db.session.execute(
            sa.select(d.amount, d.currency, d.amount_refunded, d.refund_noticed, d.refund_noticed_at, d.source,
                      d.receipt_sent_at, on_receipt)
            .where(d.id.in_(ids), d.amount_refunded > 0)).all():
        told_of = _refunded_of(told, amount, currency)
        if told and told_at is not None:
            rows.append({"at": told_at, "what": f"Refund notice: {told_of}", "status": "sent"})
        elif told and by_receipt:
            rows.append({"at": receipt_sent_at, "what": f"Refund told on the gift's receipt: {told_of}",
                         "status": "sent", "note": "no notice of its own"})
        elif told and source == DonationSource.STRIPE and receipt_sent_at is None:
            rows.append({"at": None, "rank": _OWED, "what": f"Refund to be told on the gift's receipt: {told_of}",
                         "status": "receipt not sent yet"})
        elif told:
            rows.append({"at": None, "rank": _UNDATED, "what": f"Refund notice: {told_of}",
                         "status": "time not recorded",
                         "note": "told before the site kept the time (a refund booked before refund notices "
                                 "began was marked told without a mail)"})
        if refunded > told:
            owed = _refunded_of(refunded, amount, currency)
            rows.append({"at": None, "rank": _OWED, "what": f"Refund notice: {owed}", "status": "not mailed yet",
                         "note": "tried until the mail server takes it"})
    return rows


def _refunded_of(part: int, amount: int, currency: str) -> str:
    gift = format_money(amount, currency)
    return (f"the gift of {gift} refunded in full" if part >= amount
            else f"{format_money(part, currency)} of the gift of {gift} refunded")


# ---------------------------------------------------------------- the supporters' CSV

SUPPORTER_HEADER = ["Email", "Credit name", "Anonymous", "Rewards", "Tier", "Given", "Refunded", "Net",
                    "Gifts", "First gift (UTC)", "Last gift (UTC)", "Country"]


def supporters_count(campaign) -> int:
    return int(db.session.scalar(sa.select(sa.func.count()).select_from(DonorTotal).where(
        DonorTotal.campaign_id == campaign.id, DonorTotal.livemode == ledger.money_mode(),
        DonorTotal.gross > 0)) or 0)


def supporters_csv(campaign, chunk: int = 2000) -> Iterator[str]:
    """Every supporter of the campaign (in the installation's money mode) with their lifetime
    figures, a row each, streamed in chunks: headers in words, money as money ($1,234.50), dates
    as dates, yes or no; every cell through csvsafe.

    A generator: nothing is read until the response's body is (csvsafe.download runs it in the
    request's context then, with a session of its own; the view's has been closed by then)."""
    tiers, currency = campaign.tiers, campaign.currency
    t = DonorTotal
    # The name and the flag in privacy's SQL forms (no ORM profile per row: a third of the time left).
    stmt = (sa.select(t.gross, t.refunded, t.net, t.donations, t.first_gift_at, t.last_gift_at, User.email,
                      privacy.own_name_sql(), privacy.is_anonymous_sql(),
                      sa.func.coalesce(DonorProfile.rewards_opt_out, False), ShippingAddress.country)
            .join(User, User.id == t.user_id)
            .outerjoin(DonorProfile, DonorProfile.user_id == t.user_id)
            .outerjoin(ShippingAddress, ShippingAddress.user_id == t.user_id)
            .where(t.campaign_id == campaign.id, t.livemode == ledger.money_mode(), t.gross > 0)
            .order_by(t.user_id).execution_options(yield_per=chunk))

    # Each amount and tier formatted once per export (the amounts most recently met, so that the
    # memory stays flat): Babel's formatting was half the export's time (22 s for 245,000
    # supporters), and most cells repeat one (no refund, the net equal to the gift, round gifts).
    money = lru_cache(maxsize=4096)(lambda cents: format_money(cents, currency))

    @lru_cache(maxsize=None)
    def tier_named(tier) -> str:  # the campaign's ten tiers at most
        return texts.tier_name(campaign.translations, tier)

    def tier_cell(net: int) -> str:
        tier = holdings.tier_of(tiers, net)
        return tier_named(tier) if tier is not None else ""

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    def day(at) -> str:
        return at.date().isoformat() if at else ""

    def supporter(gross, refunded, net, gifts, first, last, email, name, anonymous, opted_out, country) -> list:
        return [email, name or "", yes(anonymous), "declined" if opted_out else "yes", tier_cell(int(net)),
                money(int(gross)), money(int(refunded)), money(int(net)), int(gifts),
                day(first), day(last), country or ""]

    parts = db.session.execute(stmt).partitions()
    yield from csvsafe.stream(SUPPORTER_HEADER, ([supporter(*r) for r in part] for part in parts))
