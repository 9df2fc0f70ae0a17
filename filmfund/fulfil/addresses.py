"""A shipping address as it is read back to its donor, on a page or in a mail: one home.

The country by its name in the reader's language (never the stored code: "中国", "China", not
"CN"); for a Chinese reader full-width punctuation, and an address in a Chinese-speaking place
(written in Chinese) in the order a Chinese envelope has it, from the country down to the street,
then the name: "中国 北京 朝阳区建国路88号 2201室，邮编 100022，李雷". Otherwise the order the
address was typed in, the postal code before the city: "Mei Lin, 12 Rue des Lilas, 75011 Paris,
France". The label written on the parcel is the producers' (`ShippingAddress.lines`, the packing
list), not this.
"""
from __future__ import annotations

from flask_babel import gettext as _

from filmfund.fulfil.countries import chinese_reader, country_name
from filmfund.i18n import current_language
from filmfund.typed import has_han

#: Places whose addresses a Chinese reader writes from the largest part to the smallest.
CHINESE_ORDER = frozenset({"CN", "HK", "MO", "TW"})

#: The address form's fields in the order it asks for them, a row per tuple (two side by side on a
#: wide screen). In Chinese from the largest part to the smallest, as a Chinese envelope and every
#: Chinese shop's form ask: the country, the province, the city, then the street. Otherwise as an
#: envelope abroad is written: the street, then the postal code and the city, the region, the
#: country. Whatever the order, the fields and what each keeps are the same.
FORM_ROWS = (("name",), ("line1",), ("line2",), ("postal_code", "city"), ("state", "country"))
FORM_ROWS_CHINESE = (("name",), ("country", "state"), ("city", "postal_code"), ("line1",), ("line2",))


def form_rows(language: str | None = None) -> tuple[tuple[str, ...], ...]:
    """The address form's rows in the reader's language (the page's when not given)."""
    return FORM_ROWS_CHINESE if chinese_reader(language or current_language()) else FORM_ROWS


def read_back(address, language: str | None = None) -> str:
    """The address in one line, as its donor reads it (a ShippingAddress, or the dict of its
    fields a settings change carries: `state` or `region`). `language`: the page's or the mail's
    (i18n.current_language) when not given."""
    if not address:
        return ""
    get = address.get if isinstance(address, dict) else (lambda key: getattr(address, key, None))

    def field(*keys: str) -> str:
        return next((str(get(k)).strip() for k in keys if get(k) and str(get(k)).strip()), "")

    name, line1, line2, city = field("name"), field("line1"), field("line2"), field("city")
    state, postal, code = field("state", "region"), field("postal_code"), field("country").upper()
    if state == city:
        state = ""  # 北京, 北京: said once
    language = language or current_language()
    country = country_name(code, language) if code else ""
    if not chinese_reader(language):
        town = " ".join(p for p in (postal, city) if p)
        return ", ".join(p for p in (name, line1, line2, town, state, country) if p)
    if code in CHINESE_ORDER and has_han(line1 + city + state):
        place = " ".join(p for p in (country, state, city, line1, line2) if p)
        return "，".join(p for p in (place, _("postal code %(code)s", code=postal) if postal else "", name) if p)
    town = " ".join(p for p in (postal, city) if p)
    return "，".join(p for p in (name, line1, line2, town, state, country) if p)
