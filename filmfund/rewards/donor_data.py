"""A donor's own data (issue 7.2): everything held about them (`GET /api/v1/me/data`), their
receipts, and erasure.

The export is built from the schema itself: every table with a column referring to users.id gives
the donor's rows (so a table added by any component is in it without anyone remembering to add
it), plus the pledges made with their email. It shows the donor what the donor's own pages show
and no more: no secret (password and token hashes, the TOTP seed), no staff work keyed by the
account (an update or a reply it wrote as staff), no internal note (a question's moderation note
before it was rejected, an answer or a letter still a draft, the producers' note on a donation).

Erasure removes or anonymises the personal data and keeps the money: the ledger's entries and the
donations' amounts stay as they are (the partner's share, the statement and `filmfund ledger
check` do not move); the email is replaced by a placeholder, the credit name cleared, the pledges'
emails and names scrubbed, Stripe payloads stripped of names, emails and addresses, the shipping
address deleted, every session and token ended.
"""
from __future__ import annotations

import enum
import json
import logging
from collections.abc import Mapping
from datetime import date, datetime
from email import policy
from email.parser import BytesParser

import sqlalchemy as sa
from babel.core import UnknownLocaleError
from babel.numbers import get_currency_name
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from filmfund.audit import record_audit, user_ref
from filmfund.auth.models import ApiToken, LoginLink, Role, User, UserRole
from filmfund.auth.services import email_for_people, normalize_email
from filmfund.db import forget_erased, on_commit, utcnow
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.i18n import (babel_locale, current_language, format_day, format_money, format_when, list_separator,
                           zone_name)
from filmfund.mail import ERASED_DOMAIN, outbox_messages
from filmfund.rewards import mail_prefs, receipts, signals, subscriptions
from filmfund.rewards.models import (
    Campaign,
    Donation,
    DonorProfile,
    DonorSettingsRequest,
    Pledge,
    Reward,
    ShippingAddress,
    WebhookEvent,
)
from filmfund.rewards.texts import reward_title

log = logging.getLogger(__name__)

# Never in an export: anyone holding one could sign in as the donor, or pass their second factor.
_SECRET_COLUMNS = ("password_hash", "token_hash", "session_version", "totp_secret", "totp_last_step")
# A row that names the account as the author of staff work (an update, a reply in someone else's
# thread, a page part) is not data about the donor.
_AUTHOR_COLUMNS = ("created_by", "published_by", "edited_by", "author_id")
# The producers' own notes and the delivery machinery: not shown on the donor's pages.
_INTERNAL_COLUMNS = {"donations": ("note", "flags", "recorded_by"), "update_deliveries": ("error",)}


def _shown_to_donor(table: str, row: dict) -> dict:
    """What the donor's own pages show of a row: the moderation note of a rejected question (the
    reason given), the answer of an answered one, a letter once it is in the post."""
    for column in _INTERNAL_COLUMNS.get(table, ()):
        row.pop(column, None)
    if table == "questions":
        if row.get("state") != "rejected":
            row.pop("moderation_note", None)
        if row.get("state") != "answered":
            for column in ("answer_original", "answer_english", "original_status", "english_status",
                           "answer_asset_id", "answer_language", "subject_id"):
                row.pop(column, None)
    if table == "fulfilment_items" and row.get("state") not in ("shipped", "received", "returned"):
        row.pop("letter", None)
    return row


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return None
    return value


def _row(row, table: sa.Table) -> dict:
    return {c.name: _plain(row._mapping[c]) for c in table.columns if c.name not in _SECRET_COLUMNS}


def _user_columns() -> list[tuple[sa.Table, sa.Column]]:
    """(table, column) of every column that refers to users.id, in a stable order."""
    found = []
    for table in sorted(db.metadata.tables.values(), key=lambda t: t.name):
        for column in table.columns:
            if any(fk.column.table.name == "users" and fk.column.name == "id" for fk in column.foreign_keys):
                found.append((table, column))
    return found


def donor_data(user: User) -> dict:
    """Everything held about this donor, as JSON-ready data: one list of rows per table."""
    users = db.metadata.tables["users"]
    doc: dict = {"account": _row(db.session.execute(sa.select(users).where(users.c.id == user.id)).one(), users)}
    doc["account"]["roles"] = sorted(user.role_names)
    tables: dict[str, list[dict]] = {}
    for table, column in _user_columns():
        if column.name in _AUTHOR_COLUMNS:
            continue
        rows = db.session.execute(sa.select(table).where(column == user.id).order_by(*table.primary_key.columns))
        key = table.name if table.name not in tables else f"{table.name}.{column.name}"
        tables[key] = [_shown_to_donor(table.name, _row(r, table)) for r in rows]
    pledges = db.metadata.tables["pledges"]
    tables["pledges"] = [_row(r, pledges) for r in db.session.execute(
        sa.select(pledges).where(sa.or_(
            sa.func.lower(pledges.c.email) == user.email.lower(),
            pledges.c.id.in_(sa.select(Donation.pledge_id).where(Donation.user_id == user.id))))
        .order_by(pledges.c.created_at, pledges.c.id))]
    for row in tables["pledges"]:
        row.pop("idempotency_key", None)  # a hash, meaningless to anyone
    doc["tables"] = dict(sorted(tables.items()))
    return doc


# ---------------------------------------------------------------- receipts

def donation_of(user: User, donation_id) -> Donation:
    """One of this donor's donations; 404 for anyone else's (never 403: it says nothing)."""
    donation = db.session.get(Donation, donation_id) if isinstance(donation_id, int) else None
    if donation is None or donation.user_id != user.id:
        raise NotFoundError(_("No such donation."))
    return donation


def donor_donations(user: User) -> list[dict]:
    """The donor's gifts, newest first, as their account page lists them."""
    rows = db.session.scalars(sa.select(Donation).where(Donation.user_id == user.id)
                              .order_by(Donation.received_at.desc(), Donation.id.desc()))
    return [{"id": d.id, "amount": d.amount, "currency": d.currency, "refunded": d.counted_refunded,
             "net": d.net, "received_at": d.received_at, "source": d.source.value,
             "disputed": d.dispute_status.value if d.dispute_status else None,
             "credit_name": d.credit_name, "anonymous": d.anonymous, "rewards_opt_out": d.rewards_opt_out,
             "livemode": d.livemode}
            for d in rows]


def receipt_text(user: User, donation_id: int) -> tuple[str, str]:
    """(file name, text) of the receipt of one of the donor's donations, as mailed."""
    donation = donation_of(user, donation_id)
    receipt = receipts.compose_receipt(donation)
    name = f"receipt-{donation.received_at:%Y-%m-%d}-{donation.id}.txt"
    return name, f"Subject: {receipt.subject}\n\n{receipt.text}"


# ---------------------------------------------------------------- erasure

_PERSONAL_KEYS = {"customer_details", "customer_email", "shipping_details", "shipping", "billing_details",
                  "receipt_email", "email", "name", "phone", "address", "collected_information"}


def _strip(value):
    if isinstance(value, dict):
        return {k: (None if k in _PERSONAL_KEYS else _strip(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def erased_email(user: User) -> str:
    """What takes the place of an erased donor's address: under mail.ERASED_DOMAIN, where the mail
    module sends nothing (its rule: nothing more is mailed to them, ever)."""
    return f"erased-{user.public_id}@{ERASED_DOMAIN}"


def erase_donor(user: User) -> None:
    """Remove or anonymise this donor's personal data; keep every amount. The caller commits; the
    mail kept for them in the outbox folder goes once it has."""
    profile = db.session.get(DonorProfile, user.id)
    if profile is not None and profile.erased_at is not None:
        raise ConflictError(_("This donor's data was already erased."), code="erased")
    if user.has_role("producer", "partner"):
        raise ConflictError(_("A staff account is not erased from the account page."), code="staff_account")
    # A monthly gift would go on charging a donor who is no longer known: it stops first (Stripe
    # is called; if it cannot be reached, nothing is erased and the donor is asked to try again).

    for sub in subscriptions.donor_subscriptions(user, every_mode=True):
        subscriptions.cancel(user, sub.id, via="erase")
    old_email, placeholder, now = user.email, erased_email(user), utcnow()
    for topic in (mail_prefs.NEWS, mail_prefs.REMINDERS, *mail_prefs._updates_rewards()):
        mail_prefs.opt_out(user.id, topic, via="erase")  # nothing more is mailed, ever

    donation_rows = db.session.execute(sa.select(Donation.pledge_id, Donation.payment_intent_id)
                                       .where(Donation.user_id == user.id)).all()
    pledge_ids = [p for p, _ in donation_rows if p]
    intents = [pi for _, pi in donation_rows if pi]
    pledge_match = sa.or_(sa.func.lower(Pledge.email) == old_email.lower(), Pledge.id.in_(pledge_ids))
    intents += list(db.session.scalars(sa.select(Pledge.payment_intent_id).where(
        pledge_match, Pledge.payment_intent_id.is_not(None))))
    sessions = list(db.session.scalars(sa.select(Pledge.checkout_session_id).where(
        pledge_match, Pledge.checkout_session_id.is_not(None))))
    db.session.execute(sa.update(Pledge).where(pledge_match)
                       .values(email=placeholder, credit_name=None, idempotency_key=None),
                       execution_options={"synchronize_session": False})
    # Only names and notes: every amount, state and reference the ledger needs stays.
    db.session.execute(sa.update(Donation).where(Donation.user_id == user.id).values(credit_name=None, note=""))
    # A receipt the old address refused is no one's to chase now: the sweep "sends" it to nobody.
    receipts.lift_refused_receipts(user.id, "the donor's data was erased")
    events = db.session.scalars(sa.select(WebhookEvent).where(sa.or_(
        WebhookEvent.payment_intent_id.in_(intents),
        WebhookEvent.payload.contains(old_email, autoescape=True),
        *[WebhookEvent.payload.contains(s, autoescape=True) for s in sessions[:200]])))
    for event in events:
        try:
            event.payload = json.dumps(_strip(json.loads(event.payload)))
        except ValueError:
            event.payload = "{}"
    db.session.execute(sa.delete(DonorSettingsRequest).where(DonorSettingsRequest.user_id == user.id))
    db.session.execute(sa.delete(ShippingAddress).where(ShippingAddress.user_id == user.id))
    signals.donor_erasing.send(user)  # filmfund.fulfil: the credit proof, the parcels' address and letter
    engine = db.engine
    on_commit(db.session, lambda: forget_erased(engine))  # the embedded database's old copies of the rows
    db.session.execute(sa.delete(LoginLink).where(LoginLink.user_id == user.id))
    db.session.execute(sa.update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                       .values(revoked_at=now))
    if profile is None:
        profile = DonorProfile(user_id=user.id, anonymous=True, rewards_opt_out=False)
        db.session.add(profile)
    profile.credit_name, profile.anonymous, profile.erased_at, profile.updated_at = None, True, now, now
    user.email, user.password_hash = placeholder, None
    user.session_version += 1  # every session cookie ends now
    record_audit("donor.erase", user_ref(user))  # by id: the log names nobody by email
    user_id = user.id

    def forget() -> None:  # after the commit: a rollback must not leave the donor without their mail
        _forget_outbox_mail(old_email)
        log.info("donor %s erased their personal data", user_id)

    on_commit(db.session, forget)


def _forget_outbox_mail(address: str) -> None:
    """Mail written to the outbox folder for this donor (receipts, sign-in and confirmation
    links: without SMTP it is kept there) goes with the rest of their data; only theirs: each
    recipient is compared whole, as accounts are (an@example.org is not joan@example.org)."""
    mailbox = address.lower()
    for path in outbox_messages():
        try:
            with path.open("rb") as fh:
                to = BytesParser(policy=policy.default).parse(fh, headersonly=True)["To"]
        except OSError:  # taken by a concurrent reader or sender: nothing to forget there
            continue
        if mailbox in _mailboxes(to):
            path.unlink(missing_ok=True)


def _mailboxes(to) -> set[str]:
    """The addresses of a parsed To header as accounts are compared (auth.services.find_user): the
    stored form (normalize_email's; as written where it has none), case ignored."""
    found = set()
    for recipient in getattr(to, "addresses", ()):
        try:
            found.add(normalize_email(recipient.addr_spec).lower())
        except ValidationError:
            found.add(recipient.addr_spec.lower())
    return found


# ---------------------------------------------------------------- the export a person reads

# Each part of the export in words; a table not named here (added later by a component) is still
# shown, under its own name made readable.
_SECTION_TITLES = {
    "account": _l("Your account"),
    "donations": _l("Your donations"),
    "donor_totals": _l("Your totals"),
    "pledges": _l("The donation forms you filled in"),
    "entitlements": _l("Your rewards"),
    "subscriptions": _l("Your monthly gifts"),
    "refund_requests": _l("Refunds"),
    "donor_profiles": _l("Your settings"),
    "donor_settings_requests": _l("Settings changes you were asked to confirm"),
    "mail_opt_outs": _l("Mail you chose not to get"),
    "update_deliveries": _l("Production updates mailed to you"),
    "shipping_addresses": _l("Your shipping address"),
    "fulfilment_items": _l("Your parcels"),
    "fulfil_reminders": _l("Reminders we sent you"),
    "credit_proofs": _l("Your line in the end credits"),
    "questions": _l("Your questions to the film's subjects"),
    "invitations": _l("Your invitations"),
    "request_messages": _l("Your messages to the producers"),
    "login_links": _l("Sign-in links we mailed you"),
    "api_tokens": _l("Access keys"),
    "user_roles": _l("Your roles"),
    "media_viewings": _l("Films you watched"),
    "audit_log": _l("Actions recorded about your account"),
    "media_viewing_flags": _l("Your streams flagged as fetched from many places"),
    "expenses": _l("Expenses you recorded"),
    # A table naming the account in two columns is two parts (donor_data: `table.column`).
    "expenses.voided_by": _l("Expenses you voided"),
    "media_captions": _l("Captions you edited"),
    "payouts": _l("Payouts you acknowledged"),
}
_LABELS = {
    "amount": _l("Amount"), "amount_refunded": _l("Refunded"), "refund_noticed": _l("Refund we mailed you about"), "refunded": _l("Refunded"), "net": _l("Net"),
    "refund_noticed_at": _l("When we mailed you about the refund"),
    "gross": _l("Given"), "currency": _l("Currency"), "received_at": _l("Received"), "created_at": _l("Created"),
    "updated_at": _l("Last changed"), "credit_name": _l("Name in the credits"), "anonymous": _l("Anonymous"),
    "rewards_opt_out": _l("No rewards"), "email": _l("Email"), "status": _l("State"), "state": _l("State"),
    "reward_id": _l("Reward"), "granted_at": _l("Since"), "fulfilled_at": _l("Delivered"), "revoked_at": _l("Withdrawn"),
    "source": _l("How"), "livemode": _l("Real money"), "last_login_at": _l("Last sign-in"),
    "totp_confirmed_at": _l("Second factor set up"), "roles": _l("Roles"),
    "role": _l("Role"), "donations": _l("Donations"), "first_gift_at": _l("First gift"), "last_gift_at": _l("Last gift"),
    # The other columns a donor's tables hold, so that no label shows a column's own name.
    "action": _l("Action"), "actor": _l("Done by"), "address": _l("Address"),
    "answer_asset_id": _l("Answer's video"), "answer_english": _l("Answer in English"),
    "answer_language": _l("Answer's language"), "answer_original": _l("Answer as given"),
    "answered_at": _l("Answered"), "approved_at": _l("Approved on"), "asset_id": _l("Film or clip"),
    "at": _l("When"), "attempts": _l("Attempts"), "author_id": _l("Written by"), "body": _l("Text"),
    "canceled_at": _l("Cancelled on"), "changes": _l("Changes"), "charge_id": _l("Stripe charge"),
    "checkout_session_id": _l("Stripe Checkout session"), "checkout_url": _l("Checkout page"), "city": _l("City"),
    "claimed_at": _l("Taken for sending"), "client_key": _l("Request key"), "country": _l("Country"),
    "decided_at": _l("Decided"), "dedication": _l("Dedication"), "details": _l("Details"),
    "dispute_status": _l("Dispute"), "dispute_amount": _l("Amount disputed"), "donation_id": _l("Donation"),
    "donor_id": _l("Donor"),
    "english_status": _l("English version"), "entitlement_id": _l("Reward held"),
    "erased_at": _l("Erased"), "error": _l("Error"), "experience_id": _l("Experience"), "expires_at": _l("Expires"),
    "flags": _l("Flags"), "from_producers": _l("From the producers"), "idempotency_key": _l("Form key"),
    "interval": _l("Every"), "invited_at": _l("Invited on"), "invoice_id": _l("Stripe invoice"),
    "ip": _l("Network address"), "kind": _l("Kind"), "language": _l("Language"), "last_used_at": _l("Last used"),
    "letter": _l("Letter"), "line": _l("Your line"), "line1": _l("Address line 1"), "line2": _l("Address line 2"),
    "moderated_at": _l("Reviewed"), "moderation_note": _l("Review note"), "name": _l("Name"),
    "next_payment_at": _l("Next payment"), "note": _l("Note"), "notified_at": _l("Told"),
    "original_status": _l("Original version"), "payment_intent_id": _l("Stripe payment"),
    "pledge_id": _l("Donation form"), "postal_code": _l("Postal code"),
    "purpose": _l("Purpose"), "reason": _l("Reason"), "receipt_claimed_at": _l("Receipt being sent"),
    "receipt_sent_at": _l("Receipt sent"), "recorded_by": _l("Recorded by"), "ref": _l("Found us through"),
    "refused": _l("Not delivered"), "reminded_at": _l("Reminded"), "requested_by": _l("Asked by"), "responded_at": _l("Replied"),
    "returned_at": _l("Returned"), "rsvp_reminded_at": _l("Reminded to reply"),
    "screening": _l("Early-access screening"), "section": _l("Section"), "sent_at": _l("Sent"),
    "ship_to": _l("Ship to"), "shipped_at": _l("Shipped on"), "signer": _l("Signed by"), "slot_id": _l("Time slot"),
    "started_at": _l("Started"), "state_at": _l("State since"), "stripe_customer_id": _l("Stripe customer"),
    "stripe_refund_id": _l("Stripe refund"), "stripe_subscription_id": _l("Stripe subscription"),
    "subject_id": _l("Interview subject"), "subscription_id": _l("Monthly gift"), "target": _l("About"),
    "time_zone": _l("Time zone"), "topic": _l("Topic"),
    "tracking": _l("Tracking number"), "update_id": _l("Production update"), "used_at": _l("Used"),
    "via": _l("Through"),
    # An account that is also staff: the rows it wrote that name it (expenses, captions, payouts).
    "budget_line_id": _l("Budget line"), "description": _l("Description"), "receipt_key": _l("Receipt file"),
    "receipt_name": _l("Receipt's name"), "receipt_size": _l("Receipt's size"), "receipt_type": _l("Receipt's type"),
    "replaces_id": _l("Replaces"), "spent_on": _l("Spent on"), "void_reason": _l("Why voided"),
    "voided_at": _l("Voided on"), "voided_by": _l("Voided by"), "burn_error": _l("Burn-in error"),
    "burn_worker": _l("Burn-in running on"), "burn_beat_at": _l("Burn-in last seen running"),
    "reversed_at": _l("Reversed on"), "reversed_by": _l("Reversed by"), "reversal_reason": _l("Reason for the reversal"),
    "burn_state": _l("Burn-in"), "burned_at": _l("Burned in on"), "burned_key": _l("Copy with captions"),
    "burned_sha256": _l("Its SHA-256"), "burned_size": _l("Its size"), "cues": _l("Cues"), "lang": _l("Language"),
    "source_format": _l("Format given"), "translated_from": _l("Translated from"), "updated_by": _l("Changed by"),
    "vtt": _l("Captions (WebVTT)"), "acknowledged_at": _l("Acknowledged on"),
    "acknowledged_by": _l("Acknowledged by"), "paid_on": _l("Paid on"), "reference": _l("Reference"),
    "addresses": _l("Network addresses"), "first_at": _l("First seen"), "last_at": _l("Last seen"),
    # The details of an audit entry (_audit_details): what a donor's own entries hold.
    "form": _l("Format"), "method": _l("Signed in with"),
}
# What a donor does that the audit log records (its `action`), in words; another action (a staff
# account's) is shown by its code.
_ACTIONS = {
    "auth.sign_in": _l("Signed in"), "auth.sign_in_failed": _l("A sign-in failed"),
    "auth.password_reset": _l("Password reset"), "password.change": _l("Password changed"),
    "password.set": _l("Password set"), "token.create": _l("Access key made"), "token.revoke": _l("Access key revoked"),
    "export.donor_data": _l("Your data downloaded"), "subscription.cancel": _l("Monthly gift cancelled"),
    "donation.refund_request": _l("Refund asked for"), "donor.erase": _l("Account erased"), "role.grant": _l("Role given"),
}
# What a code in the export means, in the reader's words: (table, column) -> {code: words}. Every
# column the schema declares an enum of has its words here (a test holds this to the schema, so a
# code added later fails until it has them), and so has each string column that holds a code. A
# component built on rewards gives the words of its own codes at its init_app (`describe_codes`:
# the questions' states are comms', the items' and credits proofs' fulfil's). The JSON export
# keeps the codes: a program reads them.
_ROLE_WORDS = {"donor": _l("Donor"), "producer": _l("Producer"), "partner": _l("Partner")}
_TEXT_STATUS_WORDS = {"missing": _l("Not written yet"), "draft": _l("Draft"), "final": _l("Final")}
_VIA_WORDS = {
    "account": _l("On your account page"), "link": _l("By the link in a mail"),
    "one-click": _l("By your mail program's unsubscribe button"), "erase": _l("When your data was erased"),
    "api": _l("Through the API"),
    "no_rewards": _l("When you declined rewards"),
}
_CODE_WORDS: dict[tuple[str, str], Mapping] = {
    ("user_roles", "role"): _ROLE_WORDS,
    ("pledges", "state"): {
        "pending": _l("Not paid yet"), "processing": _l("Payment being confirmed"), "paid": _l("Paid"),
        "failed": _l("Payment failed"), "expired": _l("Expired")},
    ("pledges", "interval"): {"month": _l("Every month")},
    ("subscriptions", "interval"): {"month": _l("Every month")},
    # as the account page says them
    ("subscriptions", "state"): {"active": _l("Active"), "past_due": _l("Payment failed"),
                                 "canceled": _l("Cancelled")},
    ("donations", "source"): {"stripe": _l("Paid online"),
                              "offline": _l("Given offline, recorded by the producers")},
    ("donations", "dispute_status"): {
        "open": _l("Disputed with the bank"), "won": _l("Dispute closed: the gift stands"),
        "lost": _l("Dispute closed: the money went back")},
    ("entitlements", "status"): {"granted": _l("Granted"), "fulfilled": _l("Delivered"),
                                 "revoked": _l("Withdrawn")},
    ("refund_requests", "state"): {"pending": _l("Being refunded"), "succeeded": _l("Refunded"),
                                   "failed": _l("Not refunded")},
    ("donor_settings_requests", "state"): {
        "pending": _l("Waiting for your confirmation"), "confirmed": _l("Confirmed"),
        "superseded": _l("Replaced by a later change")},
    ("update_deliveries", "status"): {
        "queued": _l("Waiting to be sent"), "sending": _l("Being sent"), "sent": _l("Mailed"),
        "failed": _l("Could not be sent"), "unsubscribed": _l("Not sent: you unsubscribed"),
        "cancelled": _l("Not sent: no longer among its readers")},
    ("fulfil_reminders", "kind"): {"address_survey": _l("Asked for your shipping address"),
                                   "credit_proof": _l("Asked you to check your credit line")},
    ("questions", "original_status"): _TEXT_STATUS_WORDS,
    ("questions", "english_status"): _TEXT_STATUS_WORDS,
    ("invitations", "status"): {"invited": _l("Invited"), "accepted": _l("Coming"), "declined": _l("Declined")},
    ("login_links", "purpose"): {"sign_in": _l("Sign in"), "reset": _l("Choose a new password")},
    ("mail_opt_outs", "topic"): mail_prefs.TOPIC_TITLES,  # a reward's key: its title (_readable_value)
    ("mail_opt_outs", "via"): _VIA_WORDS,
    # an audit entry's details (_audit_details): how the donor downloaded her data, and so on
    ("audit_log", "via"): _VIA_WORDS,
    ("audit_log", "role"): _ROLE_WORDS,
    ("audit_log", "form"): {"readable": _l("A page to read")},
    ("audit_log", "method"): {"password": _l("Your password"),
                              "password+totp": _l("Your password and a code from your app")},
    ("shipping_addresses", "source"): {"checkout": _l("At checkout"), "survey": _l("In the address survey"),
                                       "account": _l("On your account page")},
    ("expenses", "state"): {"recorded": _l("Recorded"), "void": _l("Void")},
    ("media_captions", "status"): _TEXT_STATUS_WORDS,
    ("media_captions", "burn_state"): {"none": _l("Not made"), "queued": _l("Waiting"), "running": _l("Being made"),
                                       "ready": _l("Made"), "failed": _l("Failed")},
}
# Columns holding a language's tag (zh-Hans, yue): shown by the language's name.
_LANGUAGE_COLUMNS = {"language", "lang", "answer_language", "translated_from"}


def describe_codes(table: str, column: str, words: Mapping) -> None:
    """The words of a code column of a component's own table (code -> lazy text), given by the
    component at its init_app."""
    _CODE_WORDS[(table, column)] = words


def _code_words(table: str, column: str, value: str, reward_keys: dict[str, str]) -> str | None:
    words = _CODE_WORDS.get((table, column))
    if words is not None and value in words:
        return str(words[value])
    if (table, column) == ("mail_opt_outs", "topic") and value in reward_keys:
        return reward_keys[value]
    if column in _LANGUAGE_COLUMNS:
        try:
            return babel_locale(value).get_display_name(babel_locale(current_language())) or value
        except (ValueError, UnknownLocaleError):
            return value
    if column == "country":
        return babel_locale(current_language()).territories.get(value.upper(), value)
    if column == "time_zone":
        try:
            return zone_name(value)
        except LookupError:
            return value
    if column == "currency":  # "美元", "US Dollar": the code is for machines (the JSON keeps it)
        try:
            return get_currency_name(value.upper(), locale=babel_locale(current_language()))
        except (ValueError, UnknownLocaleError):
            return value.upper()
    return None


_MONEY = {"amount", "amount_refunded", "refund_noticed", "refunded", "net", "gross", "share", "fee", "min_amount", "dispute_amount"}
# Ids a person has no use for; kept in the JSON, which stays complete and machine-readable. An
# audit entry's account id is its `actor` (said in words), and its place in the chain (number,
# hashes) is for a program checking the log: the JSON keeps them. So are the producers' search's
# folded copies of the address and the name (typed.search_key): the page shows them as written.
_PLUMBING = {"id", "user_id", "campaign_id", "public_id", "actor_id", "seq", "prev_hash", "entry_hash",
             "email_key", "credit_name_key"}


# A column whose name means another thing in one table: the address's `state` is where it is.
_TABLE_LABELS = {("shipping_addresses", "state"): _l("State, province or region")}


def _label(column: str, table: str = "") -> str:
    if (table, column) in _TABLE_LABELS:
        return str(_TABLE_LABELS[(table, column)])
    return str(_LABELS[column]) if column in _LABELS else column.replace("_", " ").capitalize()


def _readable_value(table: str, column: str, value, row: dict, rewards: dict[int, str],
                    reward_keys: dict[str, str]) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str) and (words := _code_words(table, column, value, reward_keys)) is not None:
        return words
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if column == "email" and isinstance(value, str):
        return email_for_people(value)  # an internationalized domain in its own letters, as every page shows it
    if column in _MONEY and isinstance(value, int):
        return format_money(value, row.get("currency") or "usd")
    if column == "reward_id" and isinstance(value, int):
        return rewards.get(value, str(value))
    if column == "action" and value in _ACTIONS:
        return str(_ACTIONS[value])
    if isinstance(value, str) and (column.endswith("_at") or column in ("at",)):
        try:
            return format_when(datetime.fromisoformat(value))
        except ValueError:
            return value
    if isinstance(value, str) and (column.endswith("_on") or column == "date"):
        try:
            return format_day(date.fromisoformat(value))
        except ValueError:
            return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _person(ref: str, reader_id: int | None, reader_words) -> str:
    """Who an audit entry's `user:<id>` is, as its reader says it: herself, the producers, the
    partner charity, or another account (never its number)."""
    kind, _colon, number = ref.partition(":")
    if kind != "user" or not number.isdigit():
        return ref
    if int(number) == reader_id:
        return str(reader_words)
    roles = set(db.session.scalars(sa.select(UserRole.role).where(UserRole.user_id == int(number))))
    if Role.PRODUCER in roles:
        return _("The producers")
    if Role.PARTNER in roles:
        return _("The partner charity")
    return _("Another account")


def _audit_details(details, rewards: dict[int, str], reward_keys: dict[str, str]) -> str:
    """An audit entry's details ({"via": "account"}) in words: "Through: On your account page"."""
    try:
        value = json.loads(details) if isinstance(details, str) else details
    except ValueError:
        return details
    if not isinstance(value, dict):
        return details
    return _("; ").join(
        _("%(label)s: %(value)s", label=_label(key, "audit_log"),
          value=_readable_value("audit_log", key, item, value, rewards, reward_keys))
        for key, item in sorted(value.items()) if key not in _PLUMBING and not key.endswith("_id"))


def _audit_row(row: dict, reader_id: int | None, rewards: dict[int, str], reward_keys: dict[str, str]) -> dict:
    return {**row, "actor": _person(row.get("actor") or "", reader_id, _l("You")),
            "target": _person(row.get("target") or "", reader_id, _l("Your account")),
            "details": _audit_details(row.get("details"), rewards, reward_keys)}


def readable_export(doc: dict) -> list[dict]:
    """The same document as the JSON export (donor_data), for a person to read: one section per
    part, titled in words, each row as label/value pairs with money as money, times with their
    zone, rewards by title, booleans as yes/no, codes in words (states, roles, languages, countries).
    Nothing is left out but the database's own ids."""
    titled = [(r, reward_title(translations, r)) for r, translations in
              db.session.execute(sa.select(Reward, Campaign.translations).join(Campaign,
                                                                               Campaign.id == Reward.campaign_id))]
    rewards = {r.id: title for r, title in titled}
    reward_keys = {r.key: title for r, title in titled}

    def rows_of(table: str, rows: list[dict]) -> list[list[tuple[str, str]]]:
        if table == "audit_log":
            rows = [_audit_row(row, doc["account"].get("id"), rewards, reward_keys) for row in rows]
        return [[(_label(col, table), _readable_value(table, col, val, row, rewards, reward_keys))
                 for col, val in row.items() if col not in _PLUMBING] for row in rows]

    account = dict(doc["account"])
    account["roles"] = list_separator().join(str(_ROLE_WORDS.get(r, r)) for r in account.get("roles") or [])
    sections = [{"key": "account", "title": str(_SECTION_TITLES["account"]), "rows": rows_of("users", [account])}]
    for name, rows in doc["tables"].items():
        table = name.split(".")[0]
        title = _SECTION_TITLES.get(name) or _SECTION_TITLES.get(table)
        sections.append({"key": name, "title": str(title) if title else table.replace("_", " ").capitalize(),
                         "rows": rows_of(table, rows)})
    return sections
