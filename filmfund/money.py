"""Money as people type it and as people read it: dollars in forms, integer cents everywhere else.

No float ever touches an amount: the typed text is parsed as a decimal string.
"""
from __future__ import annotations

import re

from flask_babel import gettext as _

from filmfund.errors import ValidationError
from filmfund.typed import half_width

# "25", "25.5", "25.50", "$1,250.00", "US$1,250", "1250": at most two decimals, commas only as
# thousands groups. "US$" is how the Chinese page writes dollars (format_money), so a donor may
# type it back. static/js/pledge.js previews with the same rule.
_AMOUNT_RE = re.compile(r"^(?:US\$|\$)?[ ]*(?P<whole>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.(?P<frac>[0-9]{0,2}))?$")
MAX_DIGITS = 9  # far beyond any pledge; keeps a pasted 10**100 from becoming a huge int


def parse_dollars(text: str | None) -> int:
    """Cents from a typed dollar amount, e.g. "25.50" or "２５．５０" (a Chinese input method's
    full-width forms, `typed.half_width`) -> 2550. Refuses anything ambiguous."""
    value = half_width(text or "").strip()
    if not value:
        raise ValidationError(_("Enter an amount in dollars, for example 25."), code="invalid_amount")
    match = _AMOUNT_RE.match(value)
    if not match:
        raise ValidationError(_("Enter the amount in dollars and cents, like 25 or 25.50 "
                              "(no more than two decimals)."), code="invalid_amount")
    whole = match["whole"].replace(",", "")
    if len(whole.lstrip("0")) > MAX_DIGITS:
        raise ValidationError(_("That amount is too large for one pledge."), code="invalid_amount")
    frac = (match["frac"] or "").ljust(2, "0")
    return int(whole) * 100 + int(frac)


def cents_to_input(cents: int | None) -> str:
    """The amount as the form shows it again: "25" or "25.50"."""
    if cents is None:
        return ""
    whole, part = divmod(int(cents), 100)
    return f"{whole}" if part == 0 else f"{whole}.{part:02d}"
