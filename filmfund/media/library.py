"""The donor library: what a donor may download, play and see of the assets published to their
rewards, links that expire, and the producer's rendition links (publishing itself: publishing.py)."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from filmfund.auth.models import User
from filmfund.auth.services import external_url
from filmfund.db import utcnow
from filmfund.errors import DomainError, ForbiddenError, NotFoundError
from filmfund.extensions import db
from filmfund.i18n import current_language
from filmfund.media import captions, screening, streaming
from filmfund.media.common import EXTENSIONS, _iso, storage
from filmfund.media.models import Asset, AssetState, Publication, Rendition, RenditionKind
from filmfund.media.publishing import PUBLIC, donor_rendition_kind, shown_title
from filmfund.rewards import holdings
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.texts import reward_title


def _reward_titles_read() -> dict[str, str]:
    """Reward key -> its title as the reader reads it (rewards.texts: the campaign's Chinese
    version for a Chinese reader), for the library's "from which reward" line."""
    campaign = current_campaign()
    return {r.key: reward_title(campaign.translations, r) for t in campaign.tiers for r in t.rewards}


def _active_reward_keys(user) -> set[str]:
    """The rewards of the current campaign this user holds now (filmfund.rewards.holdings)."""
    if user is None:
        return set()
    return holdings.held_keys(user.id, current_campaign().id)


@dataclass
class Download:
    asset: Asset
    publication: Publication
    storage_key: str
    filename: str
    content_type: str
    size: int


def _download_for(pub: Publication) -> Download | None:
    """The donor's copy of a published asset: a rendition made for donors (web, still), never an
    original nor the edit proxy. None while there is none yet, or the asset is not ready or is
    in fixity alert (no new donor link until it is repaired)."""
    asset = pub.asset
    if asset.state != AssetState.READY or asset.fixity_ok is False:
        return None
    kind = donor_rendition_kind(asset, pub)
    r = asset.rendition(kind) if kind is not None else None
    if r is None:
        return None
    ext = EXTENSIONS.get(r.content_type, "")
    # Named by the title its donor reads: a Chinese reader's file is named in Chinese where the crew wrote it.
    return Download(asset, pub, r.storage_key, f"{shown_title(asset).title}{ext}", r.content_type, r.size)


def _screening_reward() -> str | None:
    """The early-access reward's key when the campaign has a screening window: what is published
    to it only ever streams, inside the window (screening.py), and is never a download."""
    w = screening.window()
    return w.reward if w is not None else None


def entitled_download(user, asset_public_id: str) -> Download | None:
    """What this user may download of this asset right now (None: not entitled)."""
    keys = _active_reward_keys(user) - {_screening_reward()}
    if not keys:
        return None
    pubs = db.session.scalars(sa.select(Publication).join(Asset).where(
        Asset.public_id == asset_public_id, Publication.reward_key.in_(keys)).order_by(Publication.id))
    for pub in pubs:
        dl = _download_for(pub)
        if dl is not None:
            return dl
    return None


def withheld_from(user, asset: Asset) -> str | None:
    """Why this asset may not be handed to this donor as a copy of their own (a producer's answer
    to their question attaches a clip), else None. The library's rule, so that no other path
    hands out what it withholds:
    - `screening`: published to the early-access reward only: it streams, in its window, and is
      never a file, whoever asks;
    - `reward`: published to rewards this donor does not hold (a higher tier's clips).
    An asset published nowhere (footage shot for this answer), or to the public, may be given."""
    return withheld_from_each(user)(asset)


def withheld_from_each(user) -> Callable[[Asset], str | None]:
    """withheld_from for many assets and one donor: their holdings read once, when first needed."""
    screening_key = _screening_reward()

    @functools.cache
    def held() -> frozenset[str]:
        return frozenset(_active_reward_keys(user))

    def why(asset: Asset) -> str | None:
        keys = {p.reward_key for p in asset.publications}
        if not keys or PUBLIC in keys:
            return None
        if (keys - {screening_key}) & held():
            return None
        return "screening" if screening_key in keys else "reward"
    return why


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
    try:
        data = _serializer().loads(token, max_age=link_ttl())
    except SignatureExpired:
        raise ForbiddenError(_("This download link has expired; open your library for a new one."),
                             code="link_expired") from None
    except BadSignature:
        raise ForbiddenError(_("This download link is not valid."), code="link_invalid") from None
    user = db.session.scalar(sa.select(User).where(User.public_id == data.get("u")))
    if user is None or screening.erased(user):  # an erased donor's link: not valid
        raise ForbiddenError(_("This download link is not valid."), code="link_invalid")
    if session_user is not None and getattr(session_user, "is_authenticated", False) and session_user.id != user.id:
        raise ForbiddenError(_("This download link was made for another account."), code="link_other_user")
    dl = entitled_download(user, data.get("a", ""))
    if dl is None or dl.storage_key != data.get("k"):
        raise ForbiddenError(_("This download is no longer available to this account."), code="not_entitled")
    return user, dl


def downloadable_reward_keys(keys) -> set[str]:
    """Which of these rewards have something in a donor's downloads (a publication whose file is
    ready): the account page says "In your downloads" for those only, never above an empty list."""
    keys = list(keys)
    if not keys:
        return set()
    pubs = db.session.scalars(sa.select(Publication).join(Asset).where(Publication.reward_key.in_(keys)))
    return {pub.reward_key for pub in pubs if _download_for(pub) is not None}


def library_for(user) -> list[dict[str, Any]]:
    """The donor-only media this user holds an active entitlement for, each with a fresh link,
    and what the library page shows: the reward's title, duration, size, a poster thumbnail and,
    for a clip, an inline player (the web rendition, served with HTTP Range)."""
    keys = _active_reward_keys(user)
    window = screening.window()
    if window is not None and not window.is_open():
        keys.discard(window.reward)  # the screening: never before its window, never after
    if not keys:
        return []
    titles = _reward_titles_read()
    items, seen = [], set()
    # An asset published to a reward that downloads and to the screening is a download for a donor
    # who holds both, as /library/<id> serves it (entitled_download): the screening's publication last.
    order = [Asset.title, Asset.id, Publication.id]
    if window is not None:
        order.insert(2, sa.case((Publication.reward_key == window.reward, 1), else_=0))
    pubs = db.session.scalars(sa.select(Publication).join(Asset).where(Publication.reward_key.in_(keys))
                              .order_by(*order))
    for pub in pubs:
        if pub.asset_id in seen:
            continue
        dl = _download_for(pub)
        if dl is None:
            continue
        seen.add(pub.asset_id)
        asset = pub.asset
        screening_only = window is not None and pub.reward_key == window.reward
        url, expires = download_link(user, dl)
        stream = streaming.stream_url(user, asset) if dl.content_type.startswith("video/") else None
        rendition = asset.rendition(donor_rendition_kind(asset, pub))
        poster = asset.rendition(RenditionKind.POSTER)
        playable = dl.content_type.startswith("video/")
        title = shown_title(asset)
        items.append({"asset_id": asset.public_id, "title": title.title, "title_lang": title.lang,
                      "kind": asset.kind.value,
                      "reward": pub.reward_key, "reward_title": titles.get(pub.reward_key, pub.reward_key),
                      "download_url": None if screening_only else url, "expires_at": _iso(expires),
                      "stream_url": stream, "screening": screening_only,
                      # the screening never downloads (/library/<id> is the download): it plays in
                      # the account page's downloads, its item there marked by its id
                      "page_url": external_url("site.account", _anchor=f"library-{asset.public_id}")
                      if screening_only else external_url("library.item", asset_id=asset.public_id),
                      "duration": round(rendition.duration or asset.duration or 0, 1) if playable else None,
                      "size": dl.size, "content_type": dl.content_type,
                      "width": rendition.width, "height": rendition.height,
                      "poster_url": external_url("library.poster", asset_id=asset.public_id)
                      if poster and not screening_only else None,
                      "play_url": external_url("library.play", asset_id=asset.public_id)
                      if playable and not screening_only else None,
                      "captions": caption_tracks(user, asset, downloads=not screening_only) if playable else []})
        if screening_only and stream is None:
            items.pop()  # a screening is a stream or nothing
    return items


def rendition_link(asset: Asset, kind: str) -> tuple[Rendition, str | None]:
    """A rendition for a producer's page: a presigned URL on S3, or None (the app serves it)."""
    try:
        rk = RenditionKind(kind)
    except ValueError:
        raise NotFoundError(_("No such rendition.")) from None
    r = asset.rendition(rk)
    if r is None:
        raise NotFoundError(_("This asset has no such rendition yet."))
    url = storage().presigned_get(r.storage_key, link_ttl(), f"{asset.title}{EXTENSIONS.get(r.content_type, '')}",
                                  r.content_type)
    return r, url


# --- captions: the final ones of what a donor holds (filmfund.media.captions reads and keeps them) ---

def _captions_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="filmfund.media.captions")


def caption_tracks(user, asset: Asset, *, downloads: bool = True) -> list[dict]:
    """The final captions of an asset the donor is entitled to (the caller checked): for the
    API a signed link that expires as download links do, for the page's <track> the session's.
    Without `downloads` (an early-access screening: it only streams) no copy with them burned in."""
    ttl = link_ttl()
    out = []
    finals = captions.final(asset)
    shown_first = captions.default_lang([c.lang for c in finals], current_language())
    for c in finals:
        token = _captions_serializer().dumps({"u": user.public_id, "a": asset.public_id, "l": c.lang})
        out.append({"lang": c.lang, "label": captions.label(c.lang),
                    "url": external_url("library.captions_signed", token=token),
                    "track_url": external_url("library.captions", asset_id=asset.public_id, lang=c.lang),
                    "burned_url": external_url("library.captions_burned", asset_id=asset.public_id, lang=c.lang)
                    if c.burned_key and downloads else None,
                    "default": c.lang == shown_first,  # the player's track on at first, for this page's reader
                    "expires_in": ttl})
    return out


def caption_filename(caption: captions.Caption) -> str:
    """A captions file's download name: the clip's title as its reader sees it (as the clip's own
    download is named), then the language: `Village interview.zh-Hans.vtt`."""
    return f"{shown_title(caption.asset).title}.{caption.lang}.vtt"


def watchable(user, asset_public_id: str) -> Asset | None:
    """The clip this donor may watch now (streaming.watching: a reward's clip, or the early-access
    screening while its window is open; never one published as a still only), else None."""
    asset = db.session.scalar(sa.select(Asset).where(Asset.public_id == asset_public_id))
    return asset if asset is not None and streaming.watching(user, asset) is not None else None


def donor_caption(user, asset_public_id: str, lang: str) -> captions.Caption:
    """The final captions of an asset this user may download now, or watch now (an early-access
    screening: its captions go with the player), entitlement re-checked."""
    dl = entitled_download(user, asset_public_id)
    asset = dl.asset if dl is not None else watchable(user, asset_public_id)
    if asset is None:
        raise NotFoundError(_("No such item in your library."))
    caption = captions.find(asset, lang)
    if caption is None or caption.status != captions.CaptionStatus.FINAL:
        raise NotFoundError(_("This clip has no captions in %(lang)s.", lang=captions.normalize_lang(lang)))
    return caption


def resolve_caption_token(token: str, session_user=None) -> captions.Caption:
    try:
        data = _captions_serializer().loads(token, max_age=link_ttl())
    except SignatureExpired:
        raise ForbiddenError(_("This captions link has expired; open your library for a new one."),
                             code="link_expired") from None
    except BadSignature:
        raise ForbiddenError(_("This captions link is not valid."), code="link_invalid") from None
    user = db.session.scalar(sa.select(User).where(User.public_id == data.get("u")))
    if user is None or screening.erased(user):  # an erased donor's link: not valid
        raise ForbiddenError(_("This captions link is not valid."), code="link_invalid")
    if session_user is not None and getattr(session_user, "is_authenticated", False) and session_user.id != user.id:
        raise ForbiddenError(_("This captions link was made for another account."), code="link_other_user")
    try:
        return donor_caption(user, data.get("a", ""), data.get("l", ""))
    except (NotFoundError, DomainError):
        raise ForbiddenError(_("These captions are no longer available to this account."),
                             code="not_entitled") from None
