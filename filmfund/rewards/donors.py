"""A donor's settings are the donor's: credit name, anonymity, rewards opt-out.

The first gift booked for a donor (Stripe or offline) makes their DonorProfile from that gift's
choices. After that, a pledge or donation NEVER changes it: anyone can pledge with anyone's email,
so a gift adds money and nothing else. Settings change only through

- the donor signed in (the account page, `PATCH /api/v1/me`), or
- a confirmation link mailed to the donor: a later gift that asked for something the profile
  does not say ("no rewards", anonymity, another credit name) records a DonorSettingsRequest and
  mails its link (in the receipt); nothing changes until the donor clicks it and confirms.

Everything that reads a credit name, anonymity or the opt-out reads the profile (entitlements,
credits, fulfilment lists, the dashboard).
"""
from __future__ import annotations

import json
import logging

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from filmfund.auth.models import User
from filmfund.db import utcnow
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.rewards.models import (
    Donation,
    DonorProfile,
    DonorSettingsRequest,
    SettingsRequestState,
)

log = logging.getLogger(__name__)

SETTINGS = ("credit_name", "anonymous", "rewards_opt_out")
CONFIRM_MAX_AGE = 30 * 24 * 3600  # a mailed confirmation link works for 30 days
_SALT = "filmfund.donor-settings"


# ---------------------------------------------------------------- reading

def profile_for(user_id: int) -> DonorProfile | None:
    return db.session.get(DonorProfile, user_id)


def settings_doc(profile: DonorProfile | None) -> dict:
    """The donor's settings as the API shows them (defaults before a first gift)."""
    if profile is None:
        return {"credit_name": None, "anonymous": False, "rewards_opt_out": False}
    return {"credit_name": profile.credit_name, "anonymous": profile.anonymous,
            "rewards_opt_out": profile.rewards_opt_out}


def rewards_opted_out(user_id: int) -> bool:
    """Whether the donor chose no rewards (read from the profile: one primary-key lookup)."""
    profile = profile_for(user_id)
    return bool(profile and profile.rewards_opt_out)


def public_names(user_ids) -> dict[int, str | None]:
    """Each donor's credit name as it may be published: None for an anonymous or erased donor, or
    one who gave no name. `user_ids` may be a subquery."""
    rows = db.session.execute(sa.select(DonorProfile.user_id, DonorProfile.credit_name, DonorProfile.anonymous,
                                        DonorProfile.erased_at)
                              .where(DonorProfile.user_id.in_(user_ids)))
    return {uid: (None if anonymous or erased_at else name) for uid, name, anonymous, erased_at in rows}


# ---------------------------------------------------------------- the booking path

def _asked(donation: Donation) -> dict:
    """What a gift asked for. An empty name or an unticked box asks for nothing: only a name, "keep
    me anonymous" or "no rewards" are requests."""
    asked = {}
    if donation.credit_name:
        asked["credit_name"] = donation.credit_name
    if donation.anonymous:
        asked["anonymous"] = True
    if donation.rewards_opt_out:
        asked["rewards_opt_out"] = True
    return asked


def record_gift_choices(user: User, donation: Donation) -> DonorSettingsRequest | None:
    """Called by the booking of every gift, in its transaction. The donor's first gift makes the
    profile from its choices; a later one changes nothing, and if it asked for something else a
    pending request is recorded for the donor to confirm (its link goes out with the receipt)."""
    values = dict(user_id=user.id, credit_name=donation.credit_name, anonymous=donation.anonymous,
                  rewards_opt_out=donation.rewards_opt_out, created_at=utcnow(), updated_at=utcnow())
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    made = db.session.execute(insert(DonorProfile).values(**values)
                              .on_conflict_do_nothing(index_elements=["user_id"])).rowcount
    if made == 1:
        return None
    profile = db.session.get(DonorProfile, user.id, populate_existing=True)
    wanted = {k: v for k, v in _asked(donation).items() if getattr(profile, k) != v}
    if not wanted or profile.erased_at is not None:
        return None
    request = DonorSettingsRequest(user_id=user.id, donation_id=donation.id, changes=json.dumps(wanted))
    db.session.add(request)
    db.session.flush()
    return request


# ---------------------------------------------------------------- the donor's own changes

VIAS = ("account", "api", "link")


def clean_changes(changes: dict) -> dict:
    """Validate a settings change (from the API, the account page or a confirmed request)."""
    from filmfund.rewards.services import clean_credit_name

    unknown = set(changes) - set(SETTINGS)
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(sorted(unknown))}.", code="unknown_field")
    cleaned = {}
    for key, value in changes.items():
        if key == "credit_name":
            cleaned[key] = clean_credit_name(value)
        elif not isinstance(value, bool):
            raise ValidationError(f"{key}: must be true or false.", code="invalid_field")
        else:
            cleaned[key] = value
    return cleaned


def update_donor_settings(user: User, *, via: str, **changes) -> dict:
    """The one way a donor's settings change: the donor signed in (`via` "account" or "api") or a
    confirmation link mailed to them ("link"). Rewards follow at once (granted again or revoked),
    and so do the credits and every list, which read the profile. Commits; returns the settings."""
    from filmfund.rewards import ledger, services

    if via not in VIAS:
        raise ValueError(f"via: one of {VIAS}")
    changes = clean_changes(changes)
    profile = profile_for(user.id)
    if profile is not None and profile.erased_at is not None:
        raise ConflictError("This donor's data was erased.", code="erased")
    if profile is None:  # signed in before any gift was booked: the settings wait for it
        profile = DonorProfile(user_id=user.id, anonymous=False, rewards_opt_out=False)
        db.session.add(profile)
    opt_out_changed = "rewards_opt_out" in changes and changes["rewards_opt_out"] != profile.rewards_opt_out
    for key, value in changes.items():
        setattr(profile, key, value)
    profile.updated_at = utcnow()
    db.session.flush()
    if opt_out_changed:
        campaign = services.current_campaign()
        ledger.lock_money(campaign.id)  # entitlements are written under the money lock, as the booking does
        services.refresh_entitlements(user, campaign)
    db.session.commit()
    log.info("donor %s changed settings %s via %s", user.id, sorted(changes), via)
    return settings_doc(profile)
