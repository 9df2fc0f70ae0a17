"""CSV files that a spreadsheet opens without running anything: the one home of cell escaping.

Every CSV the project writes (credits, partner statement, packing list) goes through `writer()`,
so a donor's name, an address line or a payout reference that begins like a formula
(`=HYPERLINK(...)`, `+1`, `-2+3`, `@SUM(...)`, a tab, a carriage return) reaches the producer's
spreadsheet as text, not as a formula (CSV injection). Such a cell gets a leading apostrophe,
which spreadsheets show as nothing more than "this is text".

Numbers are written as they are: an amount of -500 cents stays the number -500 (escaping it would
turn a refund into text that no sum counts), and only `int` is trusted as a number; a string
that looks like one is escaped like any other string.

A CSV a person downloads from a page (`download`) starts with the UTF-8 byte order mark. Excel,
on Windows and on macOS, reads a CSV without it in the system's legacy code page (GBK on a
Chinese Windows): every Chinese name and address of the credits, the supporters or the packing
list came out as mojibake. With it, Excel, LibreOffice, Numbers and Google Sheets read UTF-8.
What a program reads (`filmfund credits export`, the API's `?format=csv`) has none.

A download too big to hold is streamed (`stream`'s pieces given to `download`): Flask ends the
request's contexts, and with them the view's database session, when the view returns, before a
real server reads the body. `download` is the one home that runs a streamed body inside the
request's contexts again (`flask.stream_with_context`), with a session of its own; so the body
must be lazy, a generator that runs its queries when first read (never a result the view already
executed, nor ORM objects the view loaded: both belong to the closed session). The signed-in
user is such an object, so the request's language and time zone (which may ask the user's saved
language) are settled before the view returns, as its page would have settled them.
"""
from __future__ import annotations

import csv
import io
import re
from typing import Any, Iterable, Iterator

from flask import Response, current_app, stream_with_context
from flask_babel import get_locale, get_timezone

# What makes Excel, LibreOffice and Google Sheets read a cell as a formula, after the characters
# they skip at the start of a cell. The full-width forms are read as formulas by some locales'
# spreadsheets too.
FORMULA_SIGNS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")
FORMULA_STARTS = FORMULA_SIGNS + ("\t", "\r", "\n")
_SKIPPED = " \u00a0\u3000"
# A cell a spreadsheet starts inside the field: Excel opens a .csv with the system's list separator,
# `;` in most European locales (so "Ann;=cmd|..." is two cells there, the second a formula), and a
# field's line break, not at the field's start, ends the row. The formula start after one of them
# gets the apostrophe too (OWASP: the separators must be handled, not only the field's start).
_INNER_FORMULA = re.compile(f"([;\t\r\n][{_SKIPPED}]*)(?=[{re.escape(''.join(FORMULA_SIGNS))}])")


def cell(value: Any) -> str | int:
    """One cell as it is safe to write: an int as a number, None as empty, anything else as text
    with a leading apostrophe when a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.lstrip(_SKIPPED).startswith(FORMULA_STARTS):
        text = "'" + text
    if ";" in text or "\t" in text or "\n" in text or "\r" in text:
        text = _INNER_FORMULA.sub(r"\1'", text)
    return text


def row(values: Iterable[Any]) -> list[str | int]:
    return [cell(v) for v in values]


def render(header: Iterable[str], rows: Iterable[Iterable[Any]], newline: str = "\r\n") -> str:
    """A whole CSV document: the header, then each row with every cell escaped."""
    return "".join(stream(header, [rows], newline))


def stream(header: Iterable[str], parts: Iterable[Iterable[Iterable[Any]]],
           newline: str = "\r\n") -> Iterator[str]:
    """A CSV document in pieces, for a download too big to hold: the header, then one piece per
    part of rows (a database partition), every cell escaped as in render()."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(list(header))
    yield out.getvalue()
    for rows in parts:
        out.seek(0)
        out.truncate()
        for values in rows:
            writer.writerow(row(values))
        yield out.getvalue()


SPREADSHEET_BOM = "\ufeff"


def download(body: str | Iterable[str], filename: str, headers: dict[str, str] | None = None, *,
             for_spreadsheet: bool = True, mimetype: str = "text/csv") -> Response:
    """A CSV document (`render`'s text or `stream`'s pieces) as a download: `filename`, private,
    and the byte order mark first unless a program reads it (`for_spreadsheet=False`: the API, and
    a document that is not CSV, `mimetype`; see the module's docstring). Pieces are read in the
    request's contexts (a lazy generator: see the module's docstring), from a view only."""
    pieces = [body] if isinstance(body, str) else body

    def with_bom() -> Iterator[str]:
        if for_spreadsheet:
            yield SPREADSHEET_BOM
        yield from pieces

    if not isinstance(body, str) and "babel" in current_app.extensions:
        get_locale(), get_timezone()  # settled now, while the view's session is open (the module's docstring)
    return Response(with_bom() if isinstance(body, str) else stream_with_context(with_bom()), mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "private, no-store", **(headers or {})})
