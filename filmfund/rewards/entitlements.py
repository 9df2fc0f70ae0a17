"""What a donor holds: their tier and the rewards it brings, kept in step with their total
(granted, re-granted, revoked; fulfilled when delivered)."""
from __future__ import annotations

import sqlalchemy as sa
from flask_babel import gettext as _

from filmfund.audit import record_audit
from filmfund.auth.models import User
from filmfund.db import utcnow
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.rewards import holdings, ledger, signals, stock, texts, totals
from filmfund.rewards.models import Campaign, DonorProfile, Entitlement, EntitlementStatus, Reward, Tier


def _donor_standing(campaign: Campaign, user_id: int) -> tuple[int, bool]:
    """The donor's lifetime net in the installation's money mode (their totals row, kept with the
    ledger) and whether they opted out of rewards: their DonorProfile says so (a later pledge never
    changes it, see donors.py). One statement."""
    mode = ledger.money_mode()
    opted_out = sa.select(DonorProfile.rewards_opt_out).where(DonorProfile.user_id == user_id).scalar_subquery()
    row = db.session.execute(sa.select(
        sa.select(totals.DonorTotal.net).where(
            totals.DonorTotal.campaign_id == campaign.id, totals.DonorTotal.user_id == user_id,
            totals.DonorTotal.livemode == mode).scalar_subquery(), opted_out)).first()
    return int(row[0] or 0), bool(row[1])


def _wanted_rewards(campaign: Campaign, user_id: int) -> tuple[int, Tier | None, bool, set[int]]:
    total, opted_out = _donor_standing(campaign, user_id)
    return total, holdings.tier_of(campaign.tiers, total), opted_out, holdings.rewards_due(campaign.tiers, total,
                                                                                           opted_out)


def _user_entitlements(campaign: Campaign, user_id: int) -> list[Entitlement]:
    return list(db.session.scalars(
        sa.select(Entitlement).join(Reward).where(Entitlement.user_id == user_id, Reward.campaign_id == campaign.id)
        .order_by(Entitlement.id)))


def refresh_entitlements(user: User, campaign: Campaign, pledge_id: str | None = None) -> dict:
    """Make the stored entitlements match the donor's tier: grant, re-grant or revoke, never delete.
    Ending a reward (a refund or lost dispute below its tier, the opt-out) revokes it whatever its
    delivery state, so a delivered service (questions, a tier's updates) ends with it; fulfilled_at
    keeps the record, and a reward granted again comes back as delivered. Returns the donor's
    standing, as donor_entitlements does, without querying it again.

    A limited reward (rewards/stock.py) is granted with an item: the paying pledge's held claim
    (`pledge_id`), or one taken now; none left, it is not granted (and the reward it replaces, if
    any, is: holdings.rewards_due). Revoking it gives the item back, unless it was posted
    (stock.sent): that one is the donor's, and granted again it needs no other."""
    total, tier, opted_out, wanted = _wanted_rewards(campaign, user.id)
    now = utcnow()
    ents = _user_entitlements(campaign, user.id)
    have = {e.reward_id: e for e in ents}
    made: list[Entitlement] = []
    limited = stock.limited_ids(campaign)
    sold_out: set[int] = set()
    pending = sorted(wanted)
    while pending:
        reward_id = pending.pop(0)
        ent = have.get(reward_id)
        # A reward granted again whose parcel is still with the donor takes no second item.
        if reward_id in limited and (ent is None or (ent.status == EntitlementStatus.REVOKED
                                                     and not stock.sent(ent.id))):
            if not (stock.use_claim(pledge_id, reward_id) or stock.take(reward_id)):
                # Sold out: this donor does not get it, and what it would have taken the place of
                # is due again (no signed DVD left: the plain DVD), granted in this loop.
                sold_out.add(reward_id)
                more = holdings.rewards_due(campaign.tiers, total, opted_out, unavailable=sold_out) - wanted
                wanted |= more
                pending += sorted(more)
                continue
        if ent is None:
            ent = Entitlement(user_id=user.id, reward_id=reward_id, status=EntitlementStatus.GRANTED,
                              granted_at=now)
            db.session.add(ent)
            ents.append(ent)
            made.append(ent)
        elif ent.status == EntitlementStatus.REVOKED:
            ent.status = EntitlementStatus.FULFILLED if ent.fulfilled_at else EntitlementStatus.GRANTED
            ent.granted_at, ent.revoked_at = now, None
    for reward_id, ent in have.items():
        if reward_id not in wanted and holdings.is_held(ent):
            ent.status, ent.revoked_at = EntitlementStatus.REVOKED, now
            # A posted item is gone (the parcel is the donor's): giving it back would promise the
            # next donor an item that does not exist. It comes back only as a returned parcel.
            if reward_id in limited and not stock.sent(ent.id):
                stock.give_back(reward_id)
    db.session.flush()
    if made:  # the components above make what each needs (fulfil: a physical reward's item)
        signals.entitlements_made.send(campaign, made=[(e.id, e.reward_id) for e in made])
    return _standing_doc(total, tier, opted_out, ents, campaign)


def _standing_doc(total: int, tier: Tier | None, opted_out: bool, ents: list[Entitlement], campaign=None) -> dict:
    # A new entitlement's reward comes from the campaign (snapshot) rather than one SELECT each.
    known = {r.id: r for t in campaign.tiers for r in t.rewards} if campaign is not None else {}
    tr = campaign.translations if campaign is not None else None
    return {
        "total": total,
        "tier": {"min_amount": tier.min_amount, "name": texts.tier_name(tr, tier)} if tier else None,
        "rewards_opt_out": opted_out,
        "rewards": [{**reward_dict(known.get(e.reward_id) or e.reward, tr), "status": e.status.value, "id": e.id}
                    for e in ents],
    }


def donor_entitlements(user: User, campaign: Campaign) -> dict:
    """The GET /api/v1/me/entitlements document (the campaign is the caller's: campaign.py builds
    on this module, so it cannot be fetched from here)."""
    total, tier, opted_out, _wanted = _wanted_rewards(campaign, user.id)
    return _standing_doc(total, tier, opted_out, _user_entitlements(campaign, user.id), campaign)


def set_entitlement_status(entitlement_id: int, status: str | EntitlementStatus) -> Entitlement:
    """Producers mark a reward fulfilled (delivered) or back to granted."""
    ent = db.session.get(Entitlement, entitlement_id)
    if ent is None:
        raise NotFoundError(_("No such entitlement."))
    try:
        status = EntitlementStatus(status)
    except ValueError:
        raise ValidationError(_("status: granted or fulfilled."), code="invalid_status") from None
    if status == EntitlementStatus.REVOKED or ent.status == EntitlementStatus.REVOKED:
        raise ConflictError(_("Revocation follows the donor's total; it cannot be set by hand."),
                            code="illegal_transition")
    before = ent.status
    ent.status = status
    ent.fulfilled_at = utcnow() if status == EntitlementStatus.FULFILLED else None
    record_audit("entitlement.status", f"entitlement {ent.id}",
                 {"from": before.value, "to": status.value, "user_id": ent.user_id})
    return ent


def reward_dict(r: Reward, translations: dict | None = None, lang: str | None = None) -> dict:
    """A reward as the API and the pages show it, its title in the reader's language (`lang`
    when the caller has already asked which it is)."""
    return {"key": r.key, "kind": r.kind.value, "title": texts.reward_title(translations, r, lang)}
