"""A donor's settings are the donor's: credit name, anonymity, rewards opt-out, shipping address.

What a gift may change is decided by filmfund.rewards.privacy; this module carries it out. The
first gift booked for a donor (Stripe or offline) makes their DonorProfile from that gift's
choices. After that, anyone can pledge with anyone's email, so a later gift adds money and
changes nothing else, but for more privacy:

- more privacy asked by any gift (anonymity) applies at once, and the donor is told by mail (the
  receipt, or a mail of its own) so that they can undo it;
- anything else it asked ("no rewards", another credit name, a shipping address from its
  Checkout) records a DonorSettingsRequest and mails its link (in the receipt); nothing changes
  until the email owner clicks it and confirms.

Otherwise settings change only through the donor signed in (the account page, `PATCH
/api/v1/me`). Everything that reads a credit name, anonymity or the opt-out asks privacy.py.
"""
from __future__ import annotations

import json
import logging
from typing import Callable

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from flask_babel import gettext as _

from filmfund import i18n
from filmfund.auth.models import User
from filmfund.db import insert_on_conflict, utcnow
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.mail import send_mail
from filmfund.rewards import ledger, mail_prefs, privacy, signals
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.entitlements import refresh_entitlements
from filmfund.rewards.mail_prefs import absolute_url  # also from a queue worker, no request
from filmfund.rewards.models import (
    Donation,
    DonorProfile,
    DonorSettingsRequest,
    SettingsRequestState,
)
from filmfund.rewards.pledges import clean_credit_name
from filmfund.typed import search_key

log = logging.getLogger(__name__)

SETTINGS = ("credit_name", "anonymous", "rewards_opt_out")
CONFIRM_MAX_AGE = 30 * 24 * 3600  # a mailed confirmation link works for 30 days
_SALT = "filmfund.donor-settings"


# ---------------------------------------------------------------- reading

def profile_for(user_id: int) -> DonorProfile | None:
    return db.session.get(DonorProfile, user_id)


class ProfileLanguages(i18n.SavedLanguages):
    """A donor's language is kept on their profile (installed in i18n by rewards.init_app): the
    language their mail is written in, and their pages' when they sign in elsewhere."""

    def saved(self, user_id: int) -> str | None:
        profile = profile_for(user_id)
        return profile.language if profile is not None else None

    def save(self, user_id: int, tag: str) -> bool:
        profile = profile_for(user_id)
        if profile is None or profile.erased_at is not None or profile.language == tag:
            return False  # staff and people who never gave have no profile; an erased one keeps nothing
        profile.language = tag
        return True


def settings_doc(profile: DonorProfile | None) -> dict:
    """The donor's settings as the API shows them (defaults before a first gift)."""
    if profile is None:
        return {"credit_name": None, "anonymous": False, "rewards_opt_out": False}
    return {"credit_name": profile.credit_name, "anonymous": profile.anonymous,
            "rewards_opt_out": profile.rewards_opt_out}


# ---------------------------------------------------------------- the booking path

def _asked(donation: Donation) -> dict:
    return privacy.asked_by_gift(donation.credit_name, donation.anonymous, donation.rewards_opt_out)


def record_gift_choices(user: User, donation: Donation) -> DonorSettingsRequest | None:
    """Called by the booking of every gift, in its transaction. The donor's first gift makes the
    profile from its choices. A later one applies at once the more privacy it asked for (the
    receipt tells the donor, who can undo it signed in), and records what else it asked as a
    pending request for the donor to confirm (its link goes out with the receipt)."""
    # The statement is SQL text compiled once (insert_on_conflict): no column default runs, so the
    # name's search key is written here.
    values = dict(user_id=user.id, credit_name=donation.credit_name, credit_name_key=search_key(donation.credit_name),
                  anonymous=donation.anonymous, rewards_opt_out=donation.rewards_opt_out, created_at=utcnow(),
                  updated_at=utcnow(),
                  language=donation.pledge.language if donation.pledge is not None else None)
    table = DonorProfile.__table__
    made = db.session.execute(insert_on_conflict("donor_profile_once", db.engine.dialect, lambda insert: (
        insert(table).values({name: sa.bindparam(name, type_=table.c[name].type) for name in values})
        .on_conflict_do_nothing(index_elements=["user_id"]))), values).rowcount
    if made == 1:
        if donation.rewards_opt_out:
            mail_prefs.rewards_declined(user.id)
        return None
    profile = db.session.get(DonorProfile, user.id, populate_existing=True)
    now, later = privacy.split_gift_request(profile, _asked(donation))
    if now:
        for key, value in now.items():
            setattr(profile, key, value)
        profile.updated_at = utcnow()
        db.session.flush()
        signals.donor_settings_applied.send(user)
        log.info("donor %s: gift %s applied more privacy %s at once", user.id, donation.id, sorted(now))
    return ask_confirmation(user, donation, later) if later else None


def ask_confirmation(user: User, donation: Donation, changes: dict) -> DonorSettingsRequest:
    """Record what a gift asked that waits for the email owner's confirmation; the gift's one
    pending request gathers all of it (its settings and its Checkout's address), so one link
    confirms what the one gift asked."""
    request = pending_request_for(donation.id)
    if request is None:
        request = DonorSettingsRequest(user_id=user.id, donation_id=donation.id, changes=json.dumps(changes))
        db.session.add(request)
    else:
        request.changes = json.dumps({**request_changes(request), **changes})
    db.session.flush()
    return request


# ---------------------------------------------------------------- the donor's own changes

VIAS = ("account", "api", "link")

# A confirmed request may hold changes that another component applies, by key: the shipping address
# (filmfund.fulfil registers it). Each is called with the donor and the value, in the transaction.
CONFIRMED_ELSEWHERE: dict[str, Callable[[User, object], None]] = {}


def clean_changes(changes: dict) -> dict:
    """Validate a settings change (from the API, the account page or a confirmed request)."""
    unknown = set(changes) - set(SETTINGS)
    if unknown:
        raise ValidationError(_("Unknown field(s): %(fields)s.", fields=", ".join(sorted(unknown))), code="unknown_field")
    cleaned = {}
    for key, value in changes.items():
        if key == "credit_name":
            cleaned[key] = clean_credit_name(value)
        elif not isinstance(value, bool):
            raise ValidationError(_("%(field)s: must be true or false.", field=key), code="invalid_field")
        else:
            cleaned[key] = value
    return cleaned


def update_donor_settings(user: User, *, via: str, **changes) -> dict:
    """The one way a donor's settings change: the donor signed in (`via` "account" or "api") or a
    confirmation link mailed to them ("link"). Rewards follow at once (granted again or revoked),
    and so do the credits and every list, which read the profile. Returns the settings; the caller
    commits."""
    if via not in VIAS:
        raise ValueError(f"via: one of {VIAS}")
    changes = clean_changes(changes)
    profile = profile_for(user.id)
    if profile is not None and profile.erased_at is not None:
        raise ConflictError(_("This donor's data was erased."), code="erased")
    if profile is None:  # signed in before any gift was booked: the settings wait for it
        profile = DonorProfile(user_id=user.id, anonymous=False, rewards_opt_out=False)
        db.session.add(profile)
    opt_out_changed = "rewards_opt_out" in changes and changes["rewards_opt_out"] != profile.rewards_opt_out
    for key, value in changes.items():
        setattr(profile, key, value)
    profile.updated_at = utcnow()
    db.session.flush()
    if opt_out_changed:
        if profile.rewards_opt_out:
            mail_prefs.rewards_declined(user.id)
        campaign = current_campaign()
        ledger.lock_money(campaign.id)  # entitlements are written under the money lock, as the booking does
        refresh_entitlements(user, campaign)
    signals.donor_settings_applied.send(user)
    log.info("donor %s changed settings %s via %s", user.id, sorted(changes), via)
    return settings_doc(profile)


# ---------------------------------------------------------------- confirmation links

_LABELS = {"credit_name": "your name in the credits", "anonymous": "anonymity",
           "rewards_opt_out": "rewards"}


#: How a change that another component carries out is said to the donor, by the component that
#: knows it (the shipping address: fulfil reads an address back, `fulfil/addresses.read_back`):
#: rewards never imports the components above it (`CONFIRMED_ELSEWHERE` is the same idea).
DESCRIBED_ELSEWHERE: dict[str, Callable[[object], str]] = {}


def describe_change(key: str, value) -> str:
    if key in DESCRIBED_ELSEWHERE:
        return DESCRIBED_ELSEWHERE[key](value)
    if key == "credit_name":
        return _("show “%(name)s” in the credits", name=value) if value else _("show no name in the credits")
    if key == "anonymous":
        return _("keep you anonymous (no name in the credits or anywhere public)") if value else \
            _("no longer keep you anonymous")
    return _("give you no rewards (the rewards you have now would be withdrawn)") if value else \
        _("give you the rewards of your total again")


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def confirmation_token(request: DonorSettingsRequest) -> str:
    """Signed with the secret key: it names the request and its donor, and expires (it can be made
    again from the row, so a retried receipt carries the same working link)."""
    user = db.session.get(User, request.user_id)
    return _serializer().dumps({"r": request.id, "u": user.public_id})


def confirmation_url(request: DonorSettingsRequest) -> str:

    return absolute_url("site.confirm_settings", token=confirmation_token(request))


def request_for_token(token: str) -> DonorSettingsRequest:
    """The request a mailed link names; NotFoundError for a forged, expired or foreign one."""
    try:
        data = _serializer().loads(token, max_age=CONFIRM_MAX_AGE)
        request_id, public_id = data["r"], data["u"]
    except SignatureExpired:
        raise NotFoundError(_("This confirmation link has expired. Sign in to change your settings."),
                            code="link_expired") from None
    except (BadSignature, TypeError, KeyError):
        raise NotFoundError(_("This confirmation link is not valid.")) from None
    request = db.session.get(DonorSettingsRequest, request_id) if isinstance(request_id, int) else None
    user = db.session.get(User, request.user_id) if request is not None else None
    if user is None or user.public_id != public_id:
        raise NotFoundError(_("This confirmation link is not valid."))
    return request


def request_changes(request: DonorSettingsRequest) -> dict:
    return json.loads(request.changes)


def confirm_settings_request(token: str) -> dict:
    """The donor clicked the mailed link and confirmed: apply what that gift asked for. The caller
    commits."""
    request = request_for_token(token)
    if request.state != SettingsRequestState.PENDING:
        raise ConflictError(_("This change was already confirmed."), code="already_confirmed")
    claimed = db.session.execute(
        sa.update(DonorSettingsRequest)
        .where(DonorSettingsRequest.id == request.id, DonorSettingsRequest.state == SettingsRequestState.PENDING)
        .values(state=SettingsRequestState.CONFIRMED, decided_at=utcnow())).rowcount
    if claimed != 1:  # two clicks racing: one applies it (the caller rolls back)
        raise ConflictError(_("This change was already confirmed."), code="already_confirmed")
    user = db.session.get(User, request.user_id)
    changes = request_changes(request)
    for key in [k for k in changes if k in CONFIRMED_ELSEWHERE]:
        CONFIRMED_ELSEWHERE[key](user, changes.pop(key))
    if not changes:
        return settings_doc(profile_for(user.id))
    return update_donor_settings(user, via="link", **changes)


def pending_request_for(donation_id: int) -> DonorSettingsRequest | None:
    return db.session.scalar(sa.select(DonorSettingsRequest).where(
        DonorSettingsRequest.donation_id == donation_id,
        DonorSettingsRequest.state == SettingsRequestState.PENDING))


def confirmation_text(request: DonorSettingsRequest) -> list[str]:
    """The lines of a mail (the receipt, or a mail of its own) that ask the donor to confirm."""
    changes = request_changes(request)
    return [_("With this gift you asked us to:"), *[f"  - {describe_change(k, v)}" for k, v in changes.items()],
            "", _("You have given before, so your existing settings stay as they are: a gift never changes "
                  "them on its own, since anyone can type an email address into the form. If this was you "
                  "and you want the change, confirm it here (the link works for 30 days):"), "",
            f"  {confirmation_url(request)}", "",
            _("If it was not you, ignore this: nothing changes.")]


def first_gift(donation: Donation) -> bool:
    """This donation is the first one booked for its donor (no earlier one): the gift that made
    their settings."""
    return not db.session.scalar(sa.select(sa.exists().where(
        Donation.user_id == donation.user_id, Donation.id < donation.id)))


def privacy_applied_text(donation: Donation) -> list[str]:
    """For a later gift that asked for anonymity: it applied at once; how to undo it."""

    if not donation.anonymous or first_gift(donation):
        return []
    return [_("With this gift you asked us to keep you anonymous. We did at once: your name no longer appears "
              "in the credits or anywhere public. If this was not you, or you want your name back, sign in "
              "with this email address and change it in your settings:"), "",
            f"  {absolute_url('site.account')}#settings"]


def gift_notice_lines(donation: Donation) -> list[str]:
    """What a gift did to the donor's settings, for its receipt: the privacy it applied at once
    (with how to undo it) and the link that confirms what waits."""
    lines = []
    applied = privacy_applied_text(donation)
    if applied:
        lines += ["", *applied]
    request = pending_request_for(donation.id)
    if request is not None:
        lines += ["", *confirmation_text(request)]
    return lines


def receipt_lines(donation: Donation) -> list[str]:
    """Added to a donation's receipt (see gift_notice_lines)."""
    return gift_notice_lines(donation)


def mail_gift_notice(donation: Donation) -> None:
    """For gifts without a mailed receipt (offline): what the gift did to the settings, in a mail of
    its own (nothing is sent when it did nothing). A mail failure is logged; the donor can still
    change their settings signed in."""
    if not gift_notice_lines(donation):
        return
    user = db.session.get(User, donation.user_id)
    try:
        with i18n.for_donor(user.id):
            subject = _("Your donor settings")
            text = "\n".join([_("Thank you for your gift."), *gift_notice_lines(donation)]) + "\n"
        send_mail(user.email, subject, text)
    except Exception:
        log.exception("the settings mail of donation %s could not be sent", donation.id)


def gift_outcome(pledge_id: str) -> dict:
    """What a booked gift's thank-you page says of the donor's settings. Anyone who paid with an
    email address can open it, the owner of that address or not, so it says the same whatever the
    address's past: only what this gift asked, never what became of it against the account's
    settings (whether they changed at once, waited for a confirmation, or were already so would
    tell a stranger that the address has given, and confirm a guessed credit name or choice).
    What the gift did is in the receipt, mailed to the address (gift_notice_lines).
    Anonymity asked is said as done: more privacy applies at once, from any gift. Empty before the
    payment is booked."""
    asked = db.session.execute(sa.select(Donation.anonymous).where(Donation.pledge_id == pledge_id)).first()
    if asked is None:
        return {}
    return {"booked": True, "anonymous": bool(asked.anonymous)}


def me_document(user: User) -> dict:
    """GET /api/v1/me: the donor's settings as they stand; what gifts asked that waits for their
    confirmation is listed in pending_changes, never applied."""
    profile = profile_for(user.id)
    doc = settings_doc(profile)
    return {"email": user.email, **doc, "language": i18n.donor_language(user.id),
            "shipping_address": privacy.shipping_address_of(user.id), "pending_changes": pending_changes(user.id)}


def pending_changes(user_id: int) -> list[dict]:
    """The changes asked by gifts that wait for this donor's confirmation (GET /api/v1/me), oldest
    first: one item per setting, never applied until confirmed."""
    rows = db.session.scalars(sa.select(DonorSettingsRequest).where(
        DonorSettingsRequest.user_id == user_id, DonorSettingsRequest.state == SettingsRequestState.PENDING)
        .order_by(DonorSettingsRequest.created_at, DonorSettingsRequest.id))
    items = []
    for request in rows:
        for key, value in request_changes(request).items():
            if key == "shipping_address":
                value = privacy.address_doc(value)
            items.append({"field": key, "value": value, "requested_at": request.created_at.isoformat(),
                          "donation_id": request.donation_id})
    return items
