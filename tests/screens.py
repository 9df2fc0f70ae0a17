"""A page as a person sees it, for the browser tests: nothing wider than the screen.

Measured once the page has loaded its stylesheets. A click that submits a form returns as soon
as the answer starts to arrive, and the answer's rows can be in the document before the CSS that
lays them out: measured then, a table that scrolls inside its box reads as one that widens the
page (a loaded CI machine did exactly that)."""
from __future__ import annotations

from pathlib import Path

# The first elements that reach past the screen's right edge, to name the culprit in a failure.
_WIDEST = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > innerWidth + 1).slice(0, 5)
    .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def assert_fits(page, shots: Path | None = None, name: str | None = None) -> None:
    """No sideways scrolling on this page at its viewport's width; its full-page screenshot is
    kept as `shots/name.png` when asked."""
    page.wait_for_load_state("load")
    if shots is not None:
        page.screenshot(path=shots / f"{name}.png", full_page=True)
    wide, screen = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert wide <= screen, f"{name or page.url} is {wide} px wide on a {screen} px screen: {page.evaluate(_WIDEST)}"


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
