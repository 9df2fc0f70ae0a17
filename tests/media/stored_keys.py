"""What the tests of stored objects compare storage with: every key the database refers to, listed
here apart from the code (filmfund.media.common.keys_in_use is what the code asks), so that a test
of "no orphaned object" does not check the code with itself."""
from __future__ import annotations


def referenced_keys() -> set[str]:
    """Every storage key a row refers to: originals (sources, card files), renditions, copies
    with captions burned in, stream segments, expense receipts."""
    from filmfund.books.models import Expense
    from filmfund.extensions import db
    from filmfund.media.models import Caption, Rendition, Sidecar, Source, Stream

    keys = set(db.session.scalars(db.select(Source.storage_key)))
    keys |= set(db.session.scalars(db.select(Sidecar.storage_key)))
    keys |= set(db.session.scalars(db.select(Rendition.storage_key)))
    keys |= {k for k in db.session.scalars(db.select(Caption.burned_key)) if k}
    keys |= {k for k in db.session.scalars(db.select(Expense.receipt_key)) if k}
    for index in db.session.scalars(db.select(Stream.index)):
        keys |= {s.get("key") for s in (index or {}).get("segments", {}).values() if s.get("key")}
    return keys


def orphans() -> list[str]:
    """Objects in the footage storage that nothing refers to (temporary `.incoming` ones aside)."""
    from filmfund.extensions import db
    from filmfund.media import services

    db.session.expire_all()
    return sorted(set(services.storage().keys()) - referenced_keys())
