"""What everyone sees of the footage: the assets published to the public (contract:
POST /api/v1/media/assets/{id}/publish {"reward": "public"}) on the campaign page, a video as the
trailer and stills in the gallery. Only the copies made for donors are ever shown (the web
rendition of a clip, the re-encoded still, the poster: no location, camera or serial), and only
while the asset is ready and not in fixity alert; unpublishing takes it down at once."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from filmfund.errors import NotFoundError
from filmfund.extensions import db
from filmfund.media.models import Asset, AssetKind, AssetState, Publication, Rendition, RenditionKind
from filmfund.media.publishing import PUBLIC

# What each public file of an asset is: its rendition kind (the public URL names the file, not the kind).
PUBLIC_FILES = {"video": RenditionKind.WEB, "poster": RenditionKind.POSTER, "still": RenditionKind.IMAGE}
GALLERY_MAX = 24


@dataclass(frozen=True)
class PublicItem:
    asset_id: str
    title: str
    kind: str
    width: int | None
    height: int | None
    duration: float | None
    has_poster: bool


def _public_assets() -> list[tuple[Asset, Publication]]:
    rows = db.session.execute(sa.select(Asset, Publication).join(Publication, Publication.asset_id == Asset.id)
                              .where(Publication.reward_key == PUBLIC, Asset.state == AssetState.READY,
                                     sa.or_(Asset.fixity_ok.is_(None), Asset.fixity_ok.is_(True)))
                              .order_by(Publication.published_at.desc(), Publication.id.desc()).limit(200)).all()
    return [(a, p) for a, p in rows]


def public_media() -> tuple[PublicItem | None, list[PublicItem]]:
    """(the trailer, the gallery): the trailer is the latest public video whose web rendition is
    made (until then the page has none); the gallery, the public stills, newest first."""
    trailer, gallery = None, []
    for asset, _pub in _public_assets():
        if asset.kind == AssetKind.VIDEO and trailer is None:
            web = asset.rendition(RenditionKind.WEB)
            if web is not None:
                trailer = PublicItem(asset.public_id, asset.title, "video", web.width, web.height,
                                     web.duration or asset.duration, asset.rendition(RenditionKind.POSTER) is not None)
        elif asset.kind == AssetKind.IMAGE and len(gallery) < GALLERY_MAX:
            still = asset.rendition(RenditionKind.IMAGE)
            if still is not None:
                gallery.append(PublicItem(asset.public_id, asset.title, "image", still.width, still.height, None,
                                          asset.rendition(RenditionKind.POSTER) is not None))
    return trailer, gallery


def public_file(asset_public_id: str, what: str) -> Rendition:
    """The stored clean copy behind a public URL, if the asset is public now; 404 otherwise
    (never "it exists")."""
    kind = PUBLIC_FILES.get(what)
    if kind is None:
        raise NotFoundError("No such file.")
    for asset, _pub in _public_assets():
        if asset.public_id == asset_public_id:
            rendition = asset.rendition(kind)
            if rendition is not None:
                return rendition
            break
    raise NotFoundError("No such file.")
