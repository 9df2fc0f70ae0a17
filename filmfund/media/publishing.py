"""Publishing: making an asset donor-only content of a digital reward, and taking it back.

Only a digital reward can carry footage (a DVD or a letter cannot): any other kind is refused
with a message naming the reward. Donors only ever get renditions made for them (DONOR_KINDS:
the web rendition of a clip, the re-encoded still of an image, posters), which keep no metadata
but the title (ffmpeg.clean_metadata_args); never an original, never the edit proxy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from filmfund.audit import record_audit
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.i18n import producers_version
from filmfund.media.models import Asset, AssetKind, AssetState, Publication, RenditionKind
from filmfund.media.published import DONOR_KINDS, donor_rendition_kind, published_kinds
from filmfund.media.renditions import make_donor_renditions
from filmfund.rewards.models import Campaign, Reward, RewardKind
from filmfund.rewards.texts import reward_title

# Publishing to this key shows the asset to everyone on the campaign page (contract: {"reward": "public"}):
# a video as the trailer, a still in the gallery. Only its clean copies are shown (DONOR_KINDS).
PUBLIC = "public"
PUBLIC_TITLE = "Everyone: the campaign page (a video as the trailer, a still in the gallery)"

# A reward that cannot carry footage, named by its kind in the refusal (lazy: read per request).
_KIND_NAMES = {RewardKind.CREDIT: _l("a credit reward"), RewardKind.UPDATES: _l("an updates reward"),
               RewardKind.PHYSICAL: _l("a physical reward"), RewardKind.SERVICE: _l("a service reward"),
               RewardKind.CUSTOM: _l("a custom reward")}

@dataclass(frozen=True)
class ShownTitle:
    title: str
    lang: str  # the language it is written in: its page marks it so


def shown_title(asset, lang: str | None = None) -> ShownTitle:
    """An asset's title as a donor or visitor reading `lang` (the current language, by default)
    sees it: the producers' version in that language if they wrote one, otherwise the main title;
    never machine-translated. The one home of that choice: the donor's library and its downloads'
    names, the API's library, and the campaign page's trailer and gallery ask it. `asset` is an
    Asset or any row with its `title` and `translations`."""
    text, lang = producers_version({"title": asset.title}, asset.translations, lang)
    return ShownTitle(text["title"], lang)


def reward_titles() -> dict[str, str]:
    """Reward key -> title, to show publications by title (a campaign has a few dozen)."""
    titles = {key: title for key, title in db.session.execute(sa.select(Reward.key, Reward.title))}
    return titles | {PUBLIC: PUBLIC_TITLE}


@dataclass
class Target:
    key: str
    title: str
    kind: str
    digital: bool
    published: bool


def publish_targets(asset: Asset) -> list[Target]:
    """The campaign's rewards by title for the asset page's publish form: digital ones can be
    chosen, the others are listed as what they are."""
    published = {p.reward_key for p in asset.publications}
    rows = db.session.scalars(sa.select(Reward).order_by(Reward.tier_id, Reward.position, Reward.id))
    seen, out = set(), [Target(PUBLIC, PUBLIC_TITLE, "public", True, PUBLIC in published)]
    for r in rows:
        if r.key in seen:
            continue
        seen.add(r.key)
        out.append(Target(r.key, r.title, r.kind.value, r.kind == RewardKind.DIGITAL, r.key in published))
    return out


def _digital_reward(reward_key: Any):
    if not isinstance(reward_key, str) or not reward_key.strip() or len(reward_key) > 64:
        raise ValidationError(_("Choose a reward, e.g. %(example)s.", example='{"reward": "video-clips"}'),
                              code="invalid_reward")
    reward_key = reward_key.strip()
    if reward_key == PUBLIC:
        return reward_key, None
    reward = db.session.scalar(sa.select(Reward).where(Reward.key == reward_key).order_by(Reward.id).limit(1))
    if reward is None:
        raise ValidationError(_("The campaign has no reward with key %(key)s.", key=repr(reward_key)),
                              code="unknown_reward")
    if reward.kind != RewardKind.DIGITAL:
        campaign = db.session.get(Campaign, reward.campaign_id)
        raise ValidationError(
            _("“%(title)s” is %(kind)s: footage can only be published to a digital reward, which donors "
              "download from their library.", title=reward_title(campaign.translations if campaign else None, reward),
              kind=str(_KIND_NAMES.get(reward.kind, reward.kind.value))),
            code="not_digital_reward")
    return reward_key, reward


def publish(asset: Asset, reward_key: Any, *, rendition: str | None = None, user=None) -> tuple[Publication, bool]:
    """Make an asset (or one donor rendition of it) donor-only content of a digital reward; at
    the first publish the donors' renditions are queued, once the caller commits."""
    reward_key, _reward = _digital_reward(reward_key)
    if asset.state != AssetState.READY:
        raise ConflictError(_("Only a ready asset can be published (this one is %(state)s).", state=asset.state.value),
                            code="not_ready")
    if asset.fixity_ok is False:
        raise ConflictError(_("This asset is in fixity alert (a stored copy no longer matches its checksum): "
                              "repair it before publishing."), code="fixity_alert")
    kind = None
    if rendition:
        try:
            kind = RenditionKind(rendition)
        except ValueError:
            raise ValidationError(_("Unknown rendition %(rendition)s.", rendition=repr(rendition)),
                                  code="invalid_rendition") from None
        if kind not in DONOR_KINDS:
            raise ValidationError(_("The %(kind)s rendition is not made for donors (it keeps the camera's metadata); "
                                    "publish the web rendition or a still.", kind=kind.value),
                                  code="invalid_rendition")
        if asset.rendition(kind) is None and not (kind == RenditionKind.WEB and asset.kind == AssetKind.VIDEO):
            raise ValidationError(_("This asset has no %(kind)s rendition.", kind=kind.value),
                                  code="invalid_rendition")
    elif donor_rendition_kind(asset) is None:
        raise ValidationError(_("A %(kind)s asset has no copy made for donors yet, so it cannot be published.",
                                kind=asset.kind.value), code="no_donor_rendition")
    existing = next((p for p in asset.publications if p.reward_key == reward_key), None)
    if existing is not None:
        if kind is not None and existing.rendition != kind:
            # Another copy for the same audience (a still becomes the whole clip, or back): what
            # donors get changes, so it is recorded as a publish is, and what the new copy needs
            # (the clip's stream) is queued as at a first publish.
            was = existing.rendition
            existing.rendition = kind
            if published_kinds(asset.kind, was) != published_kinds(asset.kind, kind):
                record_audit("media.publish", f"asset {asset.public_id}",
                             {"reward": reward_key, "rendition": kind.value, "was": was.value if was else None,
                              "title": asset.title}, actor=user)
            make_donor_renditions(asset)
        return existing, False
    pub = Publication(asset=asset, reward_key=reward_key, rendition=kind, published_by=getattr(user, "id", None))
    db.session.add(pub)
    record_audit("media.publish", f"asset {asset.public_id}",
                 {"reward": reward_key, "rendition": kind.value if kind else None, "title": asset.title},
                 actor=user)

    make_donor_renditions(asset)  # the donors' web rendition is made at first publish
    return pub, True


def unpublish(asset: Asset, reward_key: Any) -> None:
    """Take an asset back from a reward: no new link is made, and a local download link already
    given stops working (it re-checks the publication); an S3 link lasts at most its TTL.
    The caller commits."""
    if not isinstance(reward_key, str) or not reward_key.strip():
        raise ValidationError(_("Choose the reward to unpublish from."), code="invalid_reward")
    pub = next((p for p in asset.publications if p.reward_key == reward_key.strip()), None)
    if pub is None:
        raise NotFoundError(_("This asset is not published to that reward."))
    asset.publications.remove(pub)
    record_audit("media.unpublish", f"asset {asset.public_id}", {"reward": pub.reward_key, "title": asset.title})
