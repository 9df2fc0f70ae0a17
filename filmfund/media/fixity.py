"""Fixity: re-hash stored objects against the SHA-256 recorded at ingest."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from filmfund.db import utcnow
from filmfund.errors import NotFoundError
from filmfund.extensions import db
from filmfund.media.common import _problem, storage
from filmfund.media.models import Asset, Source

@dataclass
class FixityResult:
    asset: Asset
    ok: bool
    failures: list[str]


def check_fixity(public_ids: list[str] | None = None) -> list[FixityResult]:
    """Re-hash every stored object of these assets (all when None) against its recorded SHA-256."""
    query = sa.select(Asset).order_by(Asset.id)
    if public_ids:
        query = query.where(Asset.public_id.in_(public_ids))
        found = {a.public_id for a in db.session.scalars(query)}
        missing = [p for p in public_ids if p not in found]
        if missing:
            raise NotFoundError(f"No asset with id {', '.join(missing)}.")
    store = storage()
    results = []
    for asset in db.session.scalars(query):
        failures = []
        now = utcnow()
        items: list[tuple[Any, str, str, str]] = [(s, s.storage_key, s.sha256, s.original_name) for s in asset.sources]
        items += [(r, r.storage_key, r.sha256, f"{r.kind.value} rendition") for r in asset.renditions]
        for row, key, expected, label in items:
            try:
                actual, _size = store.sha256_of(key)
            except Exception as exc:  # noqa: BLE001 - a missing object is a fixity failure, reported
                failures.append(f"{label}: cannot read stored object {key} ({type(exc).__name__})")
                ok = False
            else:
                ok = actual == expected
                if not ok:
                    failures.append(f"{label}: stored object {key} has SHA-256 {actual}, expected {expected}")
            if isinstance(row, Source):
                row.fixity_ok, row.last_fixity_at = ok, now
        asset.fixity_ok, asset.last_fixity_at = not failures, now
        kept = [p for p in (asset.problems or []) if p.get("code") != "fixity"]
        if failures:
            kept.append(_problem("fixity", "A stored copy no longer matches its checksum: " + "; ".join(failures)[:1500],
                                 hint="Restore the object from a backup or re-ingest the original file."))
        asset.problems = kept
        results.append(FixityResult(asset, not failures, failures))
    db.session.commit()
    return results
