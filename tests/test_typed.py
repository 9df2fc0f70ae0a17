"""What is kept of text a person typed (filmfund/typed.py): everything a reader can see and check,
including the characters Unicode added after this Python's own tables."""
import unicodedata

import pytest

from filmfund.typed import columns, folded, one_line, printable

RARE = "\U00031350"  # CJK Extension H (Unicode 15.0): unassigned to Python 3.11's Unicode 14


def test_this_python_does_not_know_the_rare_character():
    # The case the rule exists for; were Python's tables newer, the character would simply be a letter.
    assert unicodedata.category(RARE) in ("Cn", "Lo")


@pytest.mark.parametrize("typed, kept", [
    (f"王{RARE}明", f"王{RARE}明"),                          # a rare character of a Chinese name
    ("\U0002ebf0", "\U0002ebf0"),                            # CJK Extension I (Unicode 15.1)
    ("李\U000e0100", "李\U000e0100"),                        # an ideographic variation sequence
    ("محمد\u200cرضا", "محمد\u200cرضا"),                      # Persian: the non-joiner between two letters
    ("👨\u200d👩\u200d👧", "👨\u200d👩\u200d👧"),              # an emoji family: joiners between emoji
    ("Ada \u202eLovelace\u200b\x07", "Ada Lovelace"),        # an override, a zero-width space, a bell
    ("\u2066Eve\u2069 \u200fAlice", "Eve Alice"),            # isolates and a right-to-left mark
    ("\u200dAda\u200d", "Ada"),                              # joiners joining nothing
    ("Ada \u200d Lovelace", "Ada  Lovelace"),                # ... or a space
    ("a\u200d\u200db", "a\u200db"),                         # two in a row: the one next to a letter
    ("\ue000Ada\U000f0000", "Ada"),                          # private use
    ("Ada\u0378\u2028Lovelace", "AdaLovelace"),              # a code point unassigned outside the ideographic planes, a line separator
])
def test_printable_keeps_what_a_reader_sees(typed, kept):
    assert printable(typed) == kept


def test_a_one_line_field_keeps_its_characters_with_single_spaces():
    assert one_line(f"  王{RARE}明\u3000\tZhang\u200b  ") == f"王{RARE}明 Zhang"
    assert one_line("e\u0301 \u202eb") == "\u00e9 b"  # NFC, an override out


@pytest.mark.parametrize("typed, kept", [
    ("Jose\u0301 Nguye\u0302\u0303n Thi\u0323", "Jos\u00e9 Nguy\u1ec5n Th\u1ecb"),  # pasted from a macOS file name
    ("\u1100\u1161\u11a8", "\uac01"),                      # Hangul jamo: the syllable
    ("\uf900\ufa30\U0002f800", "\uf900\ufa30\U0002f800"),  # compatibility ideographs: as written, not NFC's
    ("\ufa30e\u0301", "\ufa30\u00e9"),                     # ... and what follows one still composed
])
def test_a_name_is_composed_but_its_compatibility_ideographs_are_its_own(typed, kept):
    assert one_line(typed) == kept
    assert unicodedata.normalize("NFC", kept) == unicodedata.normalize("NFC", typed)  # the same text to Unicode


def test_a_letter_keeps_its_lines_each_read_as_a_one_line_field():
    from filmfund.fulfil.fulfilment import clean_text

    letter = "Dear\tMei,\r\n\r\n\r\n\r\nThank you\u200b \u202efor\u3000all.\n"
    assert clean_text(letter, "letter", 1000, multiline=True) == "Dear Mei,\n\nThank you for all."


def test_a_word_typed_to_confirm_is_folded_as_a_phone_or_an_input_method_types_it():
    for typed in ("erase", "Erase", "ERASE", "ｅｒａｓｅ", "Ｅｒａｓｅ", " erase ", "erase\u3000", "\u200berase"):
        assert folded(typed) == "erase", repr(typed)
    assert folded("删除 ") == "删除" and folded("Straße") == "strasse"
    assert folded("e rase") == "e rase" and folded("erased") == "erased"  # another word stays another


@pytest.mark.parametrize("text, width", [("Shoot day 12", 12), ("拍摄第十二天", 12), ("拍摄 day 1", 10),
                                         ("Zoë", 3), ("Zoe\u0308", 3), ("（修订）", 8), ("", 0)])
def test_a_title_takes_its_columns_in_a_fixed_width_font(text, width):
    assert columns(text) == width


@pytest.mark.parametrize("typed, key", [
    ("Élodie Dupré", "elodie dupre"), ("ELODIE", "elodie"), ("E\u0301lodie", "elodie"),  # é typed as e + accent
    ("ｅｌｏｄｉｅ　Ｄ", "elodie d"),             # full-width letters and the ideographic space: ASCII
    ("Zoë Ångström", "zoe angstrom"), ("Straße", "strasse"), ("İstanbul", "istanbul"), ("Nguyễn", "nguyen"),
    ("ΟΔΥΣΣΕΥΣ", "οδυσσευσ"), ("Ὀδυσσεύς", "οδυσσευσ"),  # Greek: tonos and breathing out, final sigma as σ
    ("Ørsted", "orsted"), ("ŁÓDŹ", "lodz"), ("Ærø", "aero"), ("Þór", "thor"), ("Đorđe", "dorde"),
    ("ﬁlm", "film"),                                  # letters apart as a plain keyboard types them; the ligature is two
    ("王小明", "王小明"), ("豈", "豈"),               # Chinese kept as written, compatibility ideograph too
    ("ガイド", "ガイド"), ("한국", "한국"), ("हिन्दी", "हिन्दी"), ("محمّد", "محمّد"),  # marks that are letters' parts
    ("Zoë 王芳", "zoe 王芳"), (None, None),
])
def test_a_search_key_folds_case_and_accents_of_latin_greek_cyrillic_only(typed, key):
    from filmfund.typed import search_key

    assert search_key(typed) == key


def test_a_search_key_keeps_a_prefix_a_prefix():
    """The search compares the typed key with the start of the stored one: whatever a producer types
    of a name's start folds to the start of the name's key, also beyond the key's length."""
    from filmfund.typed import SEARCH_KEY_MAX, search_key

    for name in ("Zoë Ångström", "Élodie Dupré 王小明", "ΟΔΥΣΣΕΥΣ", "Ǆemal Straße", "Þórunn Ærø", "é" * 300):
        for end in range(1, len(name) + 1):
            assert search_key(name).startswith(search_key(name[:end])), (name, end)
    assert len(search_key("é" * 300)) == SEARCH_KEY_MAX


def test_has_han_finds_chinese_characters_even_the_rarest_and_nothing_else():
    from filmfund.typed import has_han

    assert has_han("Mei 李") and has_han("\U00031350") and has_han("㐀")  # common, Extension H, Extension A
    assert not has_han("Ｌｉ Ｍｅｉ") and not has_han("ひらがな") and not has_han("한국") and not has_han("")
