"""Publishing an asset to a reward, and the donor library: what a donor may download, links that
expire, and the producer's rendition links."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from filmfund.auth.services import external_url
from filmfund.db import utcnow
from filmfund.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.media.common import EXTENSIONS, _iso, storage
from filmfund.media.models import Asset, AssetKind, AssetState, Publication, Rendition, RenditionKind

def _reward_models():
    try:
        from filmfund.rewards import models as rm
    except ImportError:
        return None
    return rm if hasattr(rm, "Reward") and hasattr(rm, "Entitlement") else None


def reward_titles() -> dict[str, str]:
    """Reward key -> title, for showing publications by title (a campaign has a few dozen)."""
    rm = _reward_models()
    if rm is None:
        return {}
    return {key: title for key, title in db.session.execute(sa.select(rm.Reward.key, rm.Reward.title))}


def publish(asset: Asset, reward_key: Any, *, rendition: str | None = None, user=None) -> tuple[Publication, bool]:
    """Make an asset (or one rendition of it) donor-only content of a reward."""
    if not isinstance(reward_key, str) or not reward_key.strip() or len(reward_key) > 64:
        raise ValidationError("Give the reward's key, e.g. {\"reward\": \"digital-download\"}.", code="invalid_reward")
    reward_key = reward_key.strip()
    rm = _reward_models()
    if rm is not None and db.session.scalar(sa.select(sa.func.count()).select_from(rm.Reward)
                                            .where(rm.Reward.key == reward_key)) == 0:
        raise ValidationError(f"The campaign has no reward with key {reward_key!r}.", code="unknown_reward")
    if asset.state != AssetState.READY:
        raise ConflictError(f"Only a ready asset can be published (this one is {asset.state.value}).",
                            code="not_ready")
    if asset.fixity_ok is False:
        raise ConflictError("This asset is in fixity alert (a stored copy no longer matches its checksum): "
                            "repair it before publishing.", code="fixity_alert")
    kind = None
    if rendition:
        try:
            kind = RenditionKind(rendition)
        except ValueError:
            raise ValidationError(f"Unknown rendition {rendition!r}.", code="invalid_rendition") from None
        if asset.rendition(kind) is None:
            raise ValidationError(f"This asset has no {kind.value} rendition.", code="invalid_rendition")
    existing = next((p for p in asset.publications if p.reward_key == reward_key), None)
    if existing is not None:
        if kind is not None and existing.rendition != kind:
            existing.rendition = kind
            db.session.commit()
        return existing, False
    pub = Publication(asset=asset, reward_key=reward_key, rendition=kind, published_by=getattr(user, "id", None))
    db.session.add(pub)
    db.session.commit()
    return pub, True


def _active_reward_keys(user) -> set[str]:
    rm = _reward_models()
    if rm is None or user is None:
        return set()
    active = [rm.EntitlementStatus.GRANTED, rm.EntitlementStatus.FULFILLED]
    return set(db.session.scalars(
        sa.select(rm.Reward.key).join(rm.Entitlement, rm.Entitlement.reward_id == rm.Reward.id)
        .where(rm.Entitlement.user_id == user.id, rm.Entitlement.status.in_(active))))


@dataclass
class Download:
    asset: Asset
    publication: Publication
    storage_key: str
    filename: str
    content_type: str
    size: int


def _download_for(pub: Publication) -> Download | None:
    asset = pub.asset
    if asset.state != AssetState.READY or asset.fixity_ok is False:
        return None  # not ready, or in fixity alert: no new donor link until it is repaired
    kind = pub.rendition or (RenditionKind.WEB if asset.kind == AssetKind.VIDEO else None)
    if kind is not None:
        r = asset.rendition(kind)
        if r is None:
            return None
        ext = EXTENSIONS.get(r.content_type, "")
        return Download(asset, pub, r.storage_key, f"{asset.title}{ext}", r.content_type, r.size)
    src = asset.sources[0]
    import mimetypes

    ctype = mimetypes.guess_type(src.original_name)[0] or "application/octet-stream"
    return Download(asset, pub, src.storage_key, f"{asset.title}{Path(src.original_name).suffix.lower()}", ctype, src.size)


def entitled_download(user, asset_public_id: str) -> Download | None:
    """What this user may download of this asset right now (None: not entitled)."""
    keys = _active_reward_keys(user)
    if not keys:
        return None
    pubs = db.session.scalars(sa.select(Publication).join(Asset).where(
        Asset.public_id == asset_public_id, Publication.reward_key.in_(keys)).order_by(Publication.id))
    for pub in pubs:
        dl = _download_for(pub)
        if dl is not None:
            return dl
    return None


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="filmfund.media.download")


def link_ttl() -> int:
    return min(int(current_app.config["MEDIA_LINK_TTL"]), 300)


def download_link(user, dl: Download) -> tuple[str, datetime]:
    """A link that expires: a presigned GET on S3, else a signed token bound to this user."""
    ttl = link_ttl()
    expires = utcnow() + timedelta(seconds=ttl)
    url = storage().presigned_get(dl.storage_key, ttl, dl.filename, dl.content_type)
    if url is None:
        token = _serializer().dumps({"u": user.public_id, "a": dl.asset.public_id, "k": dl.storage_key})
        url = external_url("library.download", token=token)
    return url, expires


def resolve_download_token(token: str, session_user=None) -> tuple[Any, Download]:
    """The user and file a download token names, if it is genuine, unexpired, used by the user
    it was made for, and that user is still entitled. Every refusal is a ForbiddenError."""
    from filmfund.auth.models import User

    try:
        data = _serializer().loads(token, max_age=link_ttl())
    except SignatureExpired:
        raise ForbiddenError("This download link has expired; open your library for a new one.",
                             code="link_expired") from None
    except BadSignature:
        raise ForbiddenError("This download link is not valid.", code="link_invalid") from None
    user = db.session.scalar(sa.select(User).where(User.public_id == data.get("u")))
    if user is None:
        raise ForbiddenError("This download link is not valid.", code="link_invalid")
    if session_user is not None and getattr(session_user, "is_authenticated", False) and session_user.id != user.id:
        raise ForbiddenError("This download link was made for another account.", code="link_other_user")
    dl = entitled_download(user, data.get("a", ""))
    if dl is None or dl.storage_key != data.get("k"):
        raise ForbiddenError("This download is no longer available to this account.", code="not_entitled")
    return user, dl


def library_for(user) -> list[dict[str, Any]]:
    """The donor-only media this user holds an active entitlement for, each with a fresh link."""
    keys = _active_reward_keys(user)
    if not keys:
        return []
    items, seen = [], set()
    pubs = db.session.scalars(sa.select(Publication).join(Asset).where(Publication.reward_key.in_(keys))
                              .order_by(Asset.title, Publication.id))
    for pub in pubs:
        if pub.asset_id in seen:
            continue
        dl = _download_for(pub)
        if dl is None:
            continue
        seen.add(pub.asset_id)
        url, expires = download_link(user, dl)
        items.append({"asset_id": pub.asset.public_id, "title": pub.asset.title, "kind": pub.asset.kind.value,
                      "reward": pub.reward_key, "download_url": url, "expires_at": _iso(expires),
                      "page_url": external_url("library.item", asset_id=pub.asset.public_id)})
    return items


def rendition_link(asset: Asset, kind: str) -> tuple[Rendition, str | None]:
    """A rendition for a producer's page: a presigned URL on S3, or None (the app serves it)."""
    try:
        rk = RenditionKind(kind)
    except ValueError:
        raise NotFoundError("No such rendition.") from None
    r = asset.rendition(rk)
    if r is None:
        raise NotFoundError("This asset has no such rendition yet.")
    url = storage().presigned_get(r.storage_key, link_ttl(), f"{asset.title}{EXTENSIONS.get(r.content_type, '')}",
                                  r.content_type)
    return r, url
