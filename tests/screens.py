"""A page as a person sees it, for the browser tests: nothing wider than the screen.

Measured once the page has loaded its stylesheets. A click that submits a form returns as soon
as the answer starts to arrive, and the answer's rows can be in the document before the CSS that
lays them out: measured then, a table that scrolls inside its box reads as one that widens the
page (a loaded CI machine did exactly that)."""
from __future__ import annotations

import os
from pathlib import Path

# Every screenshot the browser tests can take, for a person to look through (a full-page shot is
# a tenth to a third of a page check's time in chromium: a third of the browser tests' time in all,
# so by default only a page that does not fit, and the walks' kept pictures, are shot).
EVERY_SHOT = os.environ.get("FILMFUND_TEST_SCREENSHOTS", "") not in ("", "0")

# The first elements that reach past the screen's right edge, to name the culprit in a failure.
_WIDEST = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > innerWidth + 1).slice(0, 5)
    .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def assert_fits(page, shots: Path | None = None, name: str | None = None, *, keep: bool = False) -> None:
    """No sideways scrolling on this page at its viewport's width. With `shots`, its full-page
    screenshot is written to `shots/name.png` when it does not fit (the failure's picture), when
    `keep` (pictures kept for people: the walks'), or with FILMFUND_TEST_SCREENSHOTS=1."""
    page.wait_for_load_state("load")
    wide, screen = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if shots is not None and (keep or EVERY_SHOT or wide > screen):
        page.screenshot(path=shots / f"{name}.png", full_page=True)
    assert wide <= screen, f"{name or page.url} is {wide} px wide on a {screen} px screen: {page.evaluate(_WIDEST)}"


def shot(page, path: Path, *, full_page: bool = True) -> None:
    """A screenshot of what a step shows, for a person to look through: taken with
    FILMFUND_TEST_SCREENSHOTS=1 only (what the step checks, it checks in the page itself)."""
    if EVERY_SHOT:
        page.screenshot(path=path, full_page=full_page)


def one_line_each(page, selector: str) -> int:
    """How many elements `selector` finds; each must lay its text out on one line."""
    lines = page.eval_on_selector_all(selector, """els => els.map(e => {
        const r = document.createRange(); r.selectNodeContents(e); return [e.textContent, r.getClientRects().length]; })""")
    assert all(n == 1 for _text, n in lines), lines
    return len(lines)


def assert_not_scrolled_sideways(page, selector: str) -> None:
    """Each element `selector` finds holds its content without a scrollbar of its own (a table
    in its `.table-wrap`: on a phone, a column scrolled out of sight is a column not read)."""
    boxes = page.eval_on_selector_all(selector, "els => els.map(e => [e.scrollWidth, e.clientWidth])")
    assert boxes and all(wide <= room for wide, room in boxes), (selector, boxes)


# The tables whose box scrolls sideways: the heading above each (or its table's id), to name them.
_SCROLLED_TABLES = """() => [...document.querySelectorAll('.table-wrap')]
    .filter(w => w.querySelector('table') && w.scrollWidth > w.clientWidth + 1)
    .map(w => w.querySelector('table')?.id || (w.closest('section, details')?.querySelector('h2, h3, summary')?.textContent || '').trim().slice(0, 60))"""


def tables_scrolled_sideways(page) -> list[str]:
    """The tables of this page that scroll sideways in their box (none, on a phone: a column
    scrolled out of sight is a column not read; `table.stack` lays each row out instead)."""
    return page.evaluate(_SCROLLED_TABLES)
