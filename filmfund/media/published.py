"""What a publication gives its audience of its asset: the one home of that rule.

Apart from publishing.py (the use cases that publish and unpublish, which make the donor copies
through renditions.py) so that the modules that serve the footage (streaming.py, public.py, the
library) can ask it at import time without a cycle (renditions imports streaming). publishing.py
re-exports it for its callers."""
from __future__ import annotations

import sqlalchemy as sa

from filmfund.media.models import Asset, AssetKind, Publication, RenditionKind

# Renditions made for donors: re-encoded without the source's metadata.
DONOR_KINDS = frozenset({RenditionKind.WEB, RenditionKind.IMAGE, RenditionKind.POSTER})
# What a donor downloads of each kind of asset unless a publication names another donor kind.
DONOR_DEFAULT = {AssetKind.VIDEO: RenditionKind.WEB, AssetKind.IMAGE: RenditionKind.IMAGE}


def donor_rendition_kind(asset: Asset, pub: Publication | None = None) -> RenditionKind | None:
    """The rendition a donor gets of this asset: the publication's if it is a donor kind, else
    the asset kind's default; None when the asset has no donor copy at all (audio)."""
    if pub is not None and pub.rendition in DONOR_KINDS:
        return pub.rendition
    return DONOR_DEFAULT.get(asset.kind)


def published_kinds(asset_kind: AssetKind | str, rendition: RenditionKind | str | None) -> frozenset[RenditionKind]:
    """What one publication lets its audience (donors of its reward, or everyone) have of its
    asset: the donor rendition it names (donor_rendition_kind) and the poster that stands for it;
    nothing else. A video published as its poster gives the poster only: never its web rendition,
    its stream, its captions nor a copy with them burned in (`plays_clip`). The one home of that
    choice; `published_kinds_sql` is the same rule inside a query (the tests check they agree)."""
    rendition = RenditionKind(rendition) if rendition else None
    main = rendition if rendition in DONOR_KINDS else DONOR_DEFAULT.get(AssetKind(asset_kind))
    return frozenset() if main is None else frozenset({main, RenditionKind.POSTER})


def published_kinds_sql(asset_kind, pub_rendition, rendition_kind):
    """`published_kinds` as a SQL condition: `rendition_kind` (a rendition's kind column) is one
    the publication (its `pub_rendition` column, its asset's `asset_kind`) lets its audience have."""
    main = sa.case((pub_rendition.in_([k.value for k in DONOR_KINDS]), pub_rendition),
                   *((asset_kind == a.value, k.value) for a, k in DONOR_DEFAULT.items()), else_=None)
    return sa.and_(main.is_not(None), sa.or_(rendition_kind == main, rendition_kind == RenditionKind.POSTER.value))


def plays_clip(asset: Asset, pub: Publication | None) -> bool:
    """Does this publication give the clip itself (its web rendition, hence its stream, its
    captions and the copies with captions burned in), not only a still of it?"""
    return pub is not None and RenditionKind.WEB in published_kinds(asset.kind, pub.rendition)
