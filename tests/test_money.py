"""Dollars typed in a form become integer cents without floats."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from filmfund.errors import ValidationError
from filmfund.i18n import format_money
from filmfund.money import cents_to_input, parse_dollars


@pytest.fixture(autouse=True)
def _user_per_request():
    """Pure functions: no app, so no run per database."""


@pytest.mark.parametrize("text,cents", [
    ("25", 2500), ("25.5", 2550), ("25.50", 2550), ("0.10", 10), ("$1,250.00", 125000), (" 19.99 ", 1999),
    ("1.", 100), ("$ 7", 700), ("1000000", 100000000),
    # what the Chinese page writes ("US$"), and what a full-width input method types
    ("US$1,250", 125000), ("US$ 7", 700), ("５０", 5000), ("２５．５", 2550), ("＄１，２５０．００", 125000),
    ("ＵＳ＄５０", 5000), ("\u3000５０\u3000", 5000),
])
def test_parses_dollars_to_cents(text, cents):
    assert parse_dollars(text) == cents


@pytest.mark.parametrize("text", ["", "abc", "10.005", "1e3", "-5", "1,00", "12,34.5", "0x10", "NaN", "inf",
                                  "1 000", "١٢", "25.5.5", "9" * 40,
                                  "US50", "5²", "①", "50。00", "50元", "¥50", "US$-5", "５０ｅ３"])
def test_refuses_what_is_not_a_plain_amount(text):
    with pytest.raises(ValidationError):
        parse_dollars(text)


@given(st.integers(min_value=0, max_value=10**11 - 1))
def test_round_trips_every_amount(cents):
    assert parse_dollars(cents_to_input(cents)) == cents
    assert parse_dollars(format_money(cents)) == cents


def test_formats_money_for_people():
    assert format_money(123450) == "$1,234.50"
    assert format_money(123450, whole=True) == "$1,235"
    assert format_money(-5) == "-$0.05"
    assert format_money(100, "eur") == "€1.00"
    assert format_money(-195) == "-$1.95"  # the receipt's own copy once printed "$-1.95"
    assert format_money(-150, whole=True) == "-$2"


def test_what_the_chinese_page_writes_reads_back(app):
    from flask_babel import force_locale

    with app.test_request_context("/"), force_locale("zh_Hans"):
        for cents in (100, 1500, 2550, 123450, 100000000):
            written = format_money(cents)
            assert written.startswith("US$") and parse_dollars(written) == cents
