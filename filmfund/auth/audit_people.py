"""Who the audit log's references stand for: the log keeps `user:<id>` and keyed hashes of
addresses, never an email (filmfund/audit.py); the people behind them are users, which this
component knows and the core's log does not."""
from __future__ import annotations

import sqlalchemy as sa

from filmfund.audit import AuditEntry, email_ref
from filmfund.auth.models import User
from filmfund.extensions import db


def refs_for(who: str) -> list[str]:
    """What the log calls the person behind an email (their `user:<id>` and the address's keyed
    hash), so that a producer who knows an address finds its entries without the log holding it."""
    who = who.strip()
    if who.startswith(("user:", "email#")):
        return [who]
    refs = [email_ref(who)]
    uid = db.session.scalar(sa.select(User.id).where(sa.func.lower(User.email) == who.lower()))
    return refs + ([f"user:{uid}"] if uid is not None else [])


def people_of(entries: list[AuditEntry]) -> dict[str, str]:
    """`user:<id>` -> that user's email as it stands today (an erased donor's placeholder)."""
    ids = {int(ref[5:]) for e in entries for ref in (e.actor, e.target)
           if ref.startswith("user:") and ref[5:].isdigit()}
    if not ids:
        return {}
    return {f"user:{uid}": email for uid, email in db.session.execute(
        sa.select(User.id, User.email).where(User.id.in_(ids)))}
