"""What everyone sees of the footage: the assets published to the public (contract:
POST /api/v1/media/assets/{id}/publish {"reward": "public"}) on the campaign page, a video as the
trailer and stills in the gallery. Only the copies made for donors are ever shown (the web
rendition of a clip, the re-encoded still, the poster: no location, camera or serial), and only
while the asset is ready and not in fixity alert; unpublishing takes it down at once."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import gettext as _

from filmfund.errors import NotFoundError
from filmfund.extensions import db
from filmfund.media import captions
from filmfund.media.models import (Asset, AssetKind, AssetState, Caption, CaptionStatus, Publication, Rendition,
                                   RenditionKind)
from filmfund.media.published import published_kinds_sql
from filmfund.media.publishing import PUBLIC, shown_title

# What each public file of an asset is: its rendition kind (the public URL names the file, not the kind).
# A public video's final captions are public files too, one per language (public_caption).
PUBLIC_FILES = {"video": RenditionKind.WEB, "poster": RenditionKind.POSTER, "still": RenditionKind.IMAGE}
GALLERY_MAX = 24


@dataclass(frozen=True)
class PublicCaption:
    """One language's final captions of the trailer: a <track> on the campaign page."""
    lang: str     # its BCP 47 tag, as stored
    label: str    # the language's own name (captions.label), the player's menu entry
    version: str  # changes with its text: the track's URL carries it, so no cache serves old words


@dataclass(frozen=True)
class PublicItem:
    asset_id: str
    title: str       # in the reader's language where the producers wrote it (publishing.shown_title)
    title_lang: str  # the language it is in
    kind: str
    width: int | None
    height: int | None
    duration: float | None
    has_poster: bool
    captions: tuple[PublicCaption, ...] = ()  # the trailer's final captions, the campaign's languages first

    def default_caption(self, page_lang: str) -> str | None:
        """The track on at first on a page in `page_lang` (as on the donors' player): its language's."""
        return captions.default_lang([c.lang for c in self.captions], page_lang)


def _public_rows(asset_public_id: str | None = None):
    """One Core read (the campaign page is the busiest page: no ORM load of assets with their five
    relationships): each public, ready asset not in fixity alert, with the clean renditions its
    publication gives everyone (published.published_kinds: a video published as its poster has
    the poster only, never its clip)."""
    a, p, r = Asset.__table__, Publication.__table__, Rendition.__table__
    q = (sa.select(a.c.public_id, a.c.title, a.c.translations, a.c.kind, a.c.duration, r.c.kind.label("rendition"),
                   r.c.storage_key, r.c.content_type, r.c.width, r.c.height, r.c.duration.label("r_duration"),
                   p.c.published_at, p.c.id)
         .select_from(p.join(a, a.c.id == p.c.asset_id)
                      .outerjoin(r, sa.and_(r.c.asset_id == a.c.id, r.c.kind.in_([k.value for k in CLEAN]),
                                           published_kinds_sql(a.c.kind, p.c.rendition, r.c.kind))))
         .where(p.c.reward_key == PUBLIC, a.c.state == AssetState.READY.value,
                sa.or_(a.c.fixity_ok.is_(None), a.c.fixity_ok.is_(True)))
         .order_by(p.c.published_at.desc(), p.c.id.desc()).limit(600))
    if asset_public_id is not None:
        q = q.where(a.c.public_id == asset_public_id)
    assets: dict[str, dict] = {}
    for row in db.session.execute(q):
        item = assets.setdefault(row.public_id, {"row": row, "renditions": {}})
        if row.rendition is not None:
            item["renditions"][RenditionKind(row.rendition)] = row
    return assets


# The renditions made for everyone (published.DONOR_KINDS): nothing else is ever served publicly.
CLEAN = (RenditionKind.WEB, RenditionKind.POSTER, RenditionKind.IMAGE)


def public_media() -> tuple[PublicItem | None, list[PublicItem]]:
    """(the trailer, the gallery): the trailer is the latest public video whose web rendition is
    made (until then the page has none); the gallery, the public stills, newest first."""
    trailer, gallery = None, []
    for asset_id, item in _public_rows().items():
        row, renditions = item["row"], item["renditions"]
        has_poster = RenditionKind.POSTER in renditions
        if row.kind == AssetKind.VIDEO.value and trailer is None and RenditionKind.WEB in renditions:
            web = renditions[RenditionKind.WEB]
            title = shown_title(row)
            trailer = PublicItem(asset_id, title.title, title.lang, "video", web.width, web.height,
                                 web.r_duration or row.duration, has_poster, _final_captions(asset_id))
        elif row.kind == AssetKind.IMAGE.value and len(gallery) < GALLERY_MAX and RenditionKind.IMAGE in renditions:
            still = renditions[RenditionKind.IMAGE]
            title = shown_title(row)
            gallery.append(PublicItem(asset_id, title.title, title.lang, "image", still.width, still.height, None,
                                      has_poster))
    return trailer, gallery


def public_file(asset_public_id: str, what: str):
    """The stored clean copy behind a public URL (its storage_key and content_type), if the asset
    is public now; 404 otherwise (never "it exists")."""
    kind = PUBLIC_FILES.get(what)
    item = _public_rows(asset_public_id).get(asset_public_id) if kind is not None else None
    if item is None or kind not in item["renditions"]:
        raise NotFoundError(_("No such file."))
    return item["renditions"][kind]


def _final_captions(asset_public_id: str) -> tuple[PublicCaption, ...]:
    """The final captions of a public video (never a draft), read on each render of the page, so
    captions added, edited or taken back to draft later show at once."""
    a, c = Asset.__table__, Caption.__table__
    rows = db.session.execute(sa.select(c.c.lang, c.c.updated_at).select_from(c.join(a, a.c.id == c.c.asset_id))
                              .where(a.c.public_id == asset_public_id, c.c.status == CaptionStatus.FINAL.value))
    return tuple(PublicCaption(row.lang, captions.label(row.lang), f"{row.updated_at:%Y%m%d%H%M%S%f}")
                 for row in sorted(rows, key=lambda row: captions.language_order(row.lang)))


def public_caption(asset_public_id: str, lang: str) -> Caption:
    """A public video's final captions in one language (its stored tag), while its clip is public
    (public_file's rule: published to everyone, ready, not in fixity alert); 404 otherwise, for a
    draft, or a language it has none in (never "it exists")."""
    public_file(asset_public_id, "video")
    caption = db.session.scalar(sa.select(Caption).join(Asset, Asset.id == Caption.asset_id)
                                .where(Asset.public_id == asset_public_id, Caption.lang == lang,
                                       Caption.status == CaptionStatus.FINAL))
    if caption is None:
        raise NotFoundError(_("No such file."))
    return caption
