"""Keyset pages of a list ordered by a moment and an id: a page starts strictly past the row its
cursor names (the last row of the page before, or the first of the page after), so a page deep in
the list costs what the first does, and a row arriving between two pages repeats none and skips
none. The moment ties are broken by the id. One home for the rule: the producers' donations list
(rewards/donations.py, newest first) and a reward's page of holders (fulfil/statement.py, oldest
first, with pages back as well as forward).

A cursor is `<microseconds since 1970 UTC>-<id>`: opaque to clients (they pass it back). Any
string of its form names a place in the list (a forged one, just some page); any other is refused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import sqlalchemy as sa
from flask_babel import gettext as _

from filmfund.db import UTCDateTime
from filmfund.errors import ValidationError
from filmfund.extensions import db

CURSOR_PATTERN = r"^[0-9]{1,17}-[0-9]{1,10}$"
_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def encode(at: datetime, row_id: int) -> str:
    """A row's place in the list, as a page's starting point."""
    delta = at.astimezone(timezone.utc) - _EPOCH
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{micros}-{row_id}"


def decode(cursor: str) -> tuple[datetime, int]:
    if not isinstance(cursor, str) or not _CURSOR.match(cursor):
        raise ValidationError(_("cursor: not a cursor this list gave."), code="invalid_cursor")
    micros, row_id = cursor.split("-")
    return _EPOCH + timedelta(microseconds=int(micros)), min(int(row_id), 2**31 - 1)


def past(at_column, id_column, cursor: str, *, descending: bool = False):
    """SQL: the rows that come after the cursor's row in the list ordered by (at, id), ascending
    or `descending` (as one row value, which an index on (…, at, id) reads as a range)."""
    at, row_id = decode(cursor)
    mine = sa.tuple_(at_column, id_column)
    theirs = sa.tuple_(sa.literal(at, UTCDateTime()), sa.literal(row_id, sa.Integer()))
    return mine < theirs if descending else mine > theirs


def order(at_column, id_column, *, descending: bool = False) -> tuple:
    return (at_column.desc(), id_column.desc()) if descending else (at_column, id_column)


@dataclass
class Page:
    rows: list
    next: str | None  # the cursor of the page after (`after=`), None on the last page
    previous: str | None  # the cursor of the page before (`before=`), None on the first page
    first: bool  # the list's first page (a page past the last row, empty, has no cursor back: it is not)


def read(stmt: sa.Select, at_column, id_column, key: Callable[[Any], tuple[datetime, int]], *, size: int,
         after: str | None = None, before: str | None = None) -> Page:
    """One page of `size` rows of `stmt` in ascending (at, id) order: the first page, the page
    past `after`, or the page up to `before` (read backwards: as cheap). `key(row)` gives a row's
    (at, id). A page read forward has a page before it (unless it is empty: then the first page
    is the way back); one read backward has a page after it."""
    if before:
        rows = db.session.execute(stmt.where(past(at_column, id_column, before, descending=True))
                                  .order_by(*order(at_column, id_column, descending=True)).limit(size + 1)).all()
        more = len(rows) > size
        rows = rows[:size][::-1]
        return Page(rows, encode(*key(rows[-1])) if rows else None, encode(*key(rows[0])) if more and rows else None,
                    first=not more)
    where = [past(at_column, id_column, after)] if after else []
    rows = db.session.execute(stmt.where(*where).order_by(*order(at_column, id_column)).limit(size + 1)).all()
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows, encode(*key(rows[-1])) if more else None, encode(*key(rows[0])) if after and rows else None,
                first=not after)
