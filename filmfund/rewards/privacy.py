"""What the world may know of a donor: their public credit name, their anonymity, their erasure and
their shipping address, and who may change them.

One home for these rules: every page, CSV, mail, credits roll and export, API, queue and dashboard
asks here rather than reading DonorProfile's columns itself. Each rule has its SQL form (an
expression to put in a statement, so a list of ten thousand donors is one query) beside its Python
form; the tests check that both agree.

Reading:
- The public name is the donor's own credit name (their DonorProfile, never what one gift asked),
  or nothing when they are anonymous, were erased, or gave none.
- A donor is credited (in the end credits, their proof, the roll) when they have a public name and
  kept their rewards (the credit is a reward).

Changing (donors.py carries it out; these functions decide):
- The first gift booked for an email makes the donor's settings from its choices.
- After that, more privacy asked from any gift (anonymity) applies at once, and the donor is mailed
  so that they can undo it: hiding a name harms no one, and waiting would publish it meanwhile.
- Less privacy, a new name, a new shipping address or "no rewards" asked by a later gift wait for
  the email owner's confirmation (a link mailed to them): anyone can type an email into the form.
- Privacy beats the picture lock: an anonymity request or an erasure after the credits are frozen
  takes the name out of the export and the roll (filmfund.fulfil.credits), and flags the roll for
  rendering again.
"""
from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards.models import DonorProfile, ShippingAddress

# ---------------------------------------------------------------- the public name

def public_name_sql(profile=DonorProfile):
    """SQL: the donor's public credit name, or NULL (anonymous, erased, or no name given).
    `profile` is DonorProfile or an alias of it; a donor without a profile row reads NULL."""
    return sa.case((sa.and_(profile.anonymous.is_(False), profile.erased_at.is_(None),
                            profile.credit_name != ""), profile.credit_name), else_=sa.null())


def public_name(profile: DonorProfile | None) -> str | None:
    """Python form of public_name_sql."""
    if profile is None or profile.anonymous or profile.erased_at is not None:
        return None
    return profile.credit_name or None


def credited_sql(profile=DonorProfile):
    """SQL: the donor may appear in the credits (a public name, rewards kept)."""
    return sa.and_(public_name_sql(profile).is_not(None), profile.rewards_opt_out.is_(False))


def credited(profile: DonorProfile | None) -> bool:
    """Python form of credited_sql."""
    return public_name(profile) is not None and not profile.rewards_opt_out


#: Why a donor is not credited (not_credited_because), the first that holds in this order.
NOT_CREDITED = ("erased", "opted_out", "anonymous", "no_name")


def not_credited_because(profile: DonorProfile | None) -> str | None:
    """Why credited() is False for this donor, for the donor to be told (a code of NOT_CREDITED:
    erased; opted out of rewards, the credit among them; anonymous; no credit name, or no profile),
    or None when they are credited. The same rule as credited_sql, said part by part."""
    if profile is not None and profile.erased_at is not None:
        return "erased"
    if profile is not None and profile.rewards_opt_out:
        return "opted_out"
    if profile is not None and profile.anonymous:
        return "anonymous"
    if public_name(profile) is None:
        return "no_name"
    return None


def own_name(profile: DonorProfile | None) -> str | None:
    """What the producers see: the donor's own credit name, even when they asked to be anonymous
    (the crew may know who gave; the flag says the world may not). An erased donor has none."""
    if profile is None or profile.erased_at is not None:
        return None
    return profile.credit_name or None


def own_name_sql(profile=DonorProfile):
    """SQL form of own_name."""
    return sa.case((profile.erased_at.is_(None), sa.func.nullif(profile.credit_name, "")), else_=sa.null())


def is_anonymous(profile: DonorProfile | None) -> bool:
    """Anonymous by their own choice, or erased (an erased donor is nobody's to name)."""
    return profile is not None and (profile.anonymous or profile.erased_at is not None)


def is_anonymous_sql(profile=DonorProfile):
    return sa.or_(profile.anonymous.is_(True), is_erased_sql(profile))


def is_erased_sql(profile=DonorProfile):
    return profile.erased_at.is_not(None)


def is_erased(profile: DonorProfile | None) -> bool:
    return profile is not None and profile.erased_at is not None


def profile_of(user_id: int) -> DonorProfile | None:
    return db.session.get(DonorProfile, user_id)


def public_name_of(user_id: int) -> str | None:
    """This donor's public name (one primary-key read)."""
    return public_name(profile_of(user_id))


def public_names_of(user_ids: Iterable[int]) -> dict[int, str | None]:
    """The public names of these donors (a page's worth) in one query; a donor without a profile
    maps to None."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    found = dict(db.session.execute(sa.select(DonorProfile.user_id, public_name_sql())
                                    .where(DonorProfile.user_id.in_(ids))).all())
    return {uid: found.get(uid) for uid in ids}


# ---------------------------------------------------------------- the shipping address

ADDRESS_KEYS = ("name", "line1", "line2", "city", "region", "postal_code", "country")


def address_doc(address: ShippingAddress | dict | None) -> dict | None:
    """An address as the API shows it (`region`: the state or province), from the stored row or
    from the fields a Checkout collected."""
    if address is None:
        return None
    get = address.get if isinstance(address, dict) else (lambda key: getattr(address, key, None))
    doc = {k: get(k) or "" for k in ADDRESS_KEYS if k != "region"}
    doc["region"] = get("state") or ""
    return {k: doc[k] for k in ADDRESS_KEYS}


def shipping_address_of(user_id: int) -> dict | None:
    """Where the donor's parcels go (only the donor, and the producers who post them, see it)."""
    return address_doc(db.session.get(ShippingAddress, user_id))


# ---------------------------------------------------------------- what a gift may change

#: Settings a gift may ask for, with the value that means more privacy (applied at once).
MORE_PRIVATE = {"anonymous": True}


def asked_by_gift(credit_name: str | None, anonymous: bool, rewards_opt_out: bool) -> dict:
    """What a gift asked for. An empty name or an unticked box asks for nothing: only a name,
    "keep me anonymous" or "no rewards" are requests."""
    asked: dict = {}
    if credit_name:
        asked["credit_name"] = credit_name
    if anonymous:
        asked["anonymous"] = True
    if rewards_opt_out:
        asked["rewards_opt_out"] = True
    return asked


def split_gift_request(profile: DonorProfile | None, asked: dict) -> tuple[dict, dict]:
    """(apply now, wait for the email owner's confirmation) of what a later gift asked, given the
    donor's settings as they stand. More privacy applies at once; anything else that differs
    (a name, less privacy, no rewards) waits. Nothing is applied to an erased donor."""
    if profile is None:
        return dict(asked), {}
    if profile.erased_at is not None:
        return {}, {}
    now, later = {}, {}
    for key, value in asked.items():
        if getattr(profile, key) == value:
            continue
        (now if MORE_PRIVATE.get(key, object()) == value else later)[key] = value
    return now, later


def address_from_gift_waits(has_address: bool, first_gift: bool) -> bool:
    """Whether a shipping address collected by a gift's Checkout waits for the email owner's
    confirmation: always, unless this is the first gift of a donor who has no address yet (a later
    Checkout by anyone with the donor's email must not send the donor's parcels elsewhere)."""
    return has_address or not first_gift


# ---------------------------------------------------------------- the credits after the freeze

def withdrawn_from_credits(user_ids: Iterable[int]) -> set[int]:
    """Of these donors, those who are no longer credited (credited_sql: anonymous, erased, no name
    any more, or opted out of rewards): a frozen list drops them, whatever the picture lock says."""
    ids = sorted(set(user_ids))
    if not ids:
        return set()
    credited_ids = set(db.session.scalars(sa.select(DonorProfile.user_id).where(
        DonorProfile.user_id.in_(ids), credited_sql())))
    return set(ids) - credited_ids
