"""Text a person typed (a name in the credits, an address for a parcel): kept as written, minus
what prints nothing a reader could check. The one home of that rule: the credit name
(rewards/pledges.py) and the fulfilment's texts and addresses (fulfil/fulfilment.py) ask it, a
one-line field through `one_line`. A field that a program reads rather than a person (an amount, an
email address) is read through `half_width` first: a Chinese input method's full-width forms are
the ASCII they stand for; a word typed to confirm, through `folded` (width, case and spaces).

Taken out: controls, the bidi embeddings, overrides, isolates and marks (they reorder what is
around them: a name that reads differently in the roll than in the form), the zero-width space
and the other invisible formats, private-use characters, surrogates, line and paragraph
separators, and code points this Python's Unicode does not know.

Kept, though their categories are among those:
- the ideographic planes' code points (U+20000 to U+3FFFF): Unicode keeps adding there the rare
  characters of people's and places' names (CJK Extensions H and I came in Unicode 15 and 15.1,
  after the Unicode 14 of Python 3.11), and a donor whose name has one must see it in the credits;
- the zero-width joiner and non-joiner between two visible characters: Persian and Indic names
  and emoji sequences are written with them, and they reorder nothing.
"""
from __future__ import annotations

import re
import unicodedata

HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# The full-width forms of ASCII (U+FF01 to U+FF5E) and the ideographic space, as the ASCII they stand for.
_HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
JOINERS = "\u200c\u200d"  # zero-width non-joiner, zero-width joiner
IDEOGRAPHIC_PLANES = range(0x20000, 0x40000)


def _kept(c: str) -> bool:
    category = unicodedata.category(c)
    if category == "Cn":
        return ord(c) in IDEOGRAPHIC_PLANES
    return category not in HIDDEN


def _visible(c: str) -> bool:
    return not c.isspace() and c not in JOINERS and _kept(c)


def one_line(text: str, *, keep_spaces: bool = False) -> str:
    """A one-line field as typed (a name, an address line): `composed`, every kind of space a
    plain one, `printable`, runs of spaces made one, trimmed.

    `keep_spaces` (a name the credits print exactly as written): a space is kept of the kind typed
    (the ideographic space U+3000 a Chinese input method types is as wide as a character: made a
    plain one, the printed name would not be the one written); a run of spaces is still one, the
    first typed, and a tab or a line break, which no one types inside a name, a plain space."""
    if not keep_spaces:
        text = "".join(" " if c.isspace() else c for c in composed(text))
        return " ".join(printable(text).split())
    text = "".join(" " if c.isspace() and unicodedata.category(c) != "Zs" else c for c in composed(text))
    return _SPACES.sub(lambda run: run.group(0)[0], printable(text)).strip()


_SPACES = re.compile(r"\s+")


# CJK compatibility ideographs: each decomposes to a unified ideograph that fonts may draw otherwise.
_COMPATIBILITY_IDEOGRAPHS = re.compile("([\uf900-\ufaff\U0002f800-\U0002fa1f]+)")


def composed(text: str) -> str:
    """`text` with each letter and its accents as one character where Unicode has one (NFC): é as
    a keyboard types it, not the e and loose accent of a macOS file name or a pasted text. The
    same to a reader, but not to a comparison: a search by a name's start would miss the other
    form, and a check that the credits changed would see a change where there is none.

    CJK compatibility ideographs stay as written (豈, U+F900; 侮, U+FA30): NFC replaces each
    with its unified ideograph (豈, 侮), which a Japanese or Korean font draws differently, and the
    name in the credits must be the one its owner wrote."""
    if text.isascii():
        return text
    parts = _COMPATIBILITY_IDEOGRAPHS.split(text)  # the ideographs at the odd places, kept
    return "".join(part if i % 2 else unicodedata.normalize("NFC", part) for i, part in enumerate(parts))


def printable(text: str) -> str:
    """`text` without what the module's docstring takes out (no other change: the caller
    normalizes and trims)."""
    out: list[str] = []
    for i, c in enumerate(text):
        if c in JOINERS:
            following = text[i + 1] if i + 1 < len(text) else ""
            if out and _visible(out[-1]) and following and _visible(following):
                out.append(c)
        elif _kept(c):
            out.append(c)
    return "".join(out)


def folded(text: str) -> str:
    """A word typed to be compared with the one a page asks for (the word that confirms an
    erasure): what a phone or an input method makes of the same word reads as that word. The
    full-width forms as ASCII (`half_width`: "ｅｒａｓｅ"), case ignored (a phone's keyboard
    capitalises the first letter: "Erase"), spaces around and between words as one (`one_line`: a
    keyboard's suggestion adds one after the word)."""
    return one_line(half_width(text)).casefold()


# A search key's length: a prefix longer than this is compared on its first SEARCH_KEY_MAX
# characters (each side cut alike, so a prefix stays a prefix), and an index row stays small.
SEARCH_KEY_MAX = 255
_FOLDED_SCRIPTS = ("LATIN ", "GREEK ", "CYRILLIC ")


def _folds(c: str) -> bool:
    """Whether `c` (a base character after NFKD) is of the scripts whose accents a search ignores:
    ASCII, Latin, Greek, Cyrillic. Any other script is kept as written (its marks are letters'
    parts: a Devanagari vowel sign, a Japanese voiced mark, a Hangul syllable's jamo)."""
    return c.isascii() or unicodedata.name(c, "").startswith(_FOLDED_SCRIPTS)


def _bare(text: str) -> str:
    """`text` decomposed (NFKD) without its combining marks."""
    return "".join(p for p in unicodedata.normalize("NFKD", text) if not _mark(p))


def _mark(c: str) -> bool:
    return unicodedata.category(c).startswith("M")


# Latin letters Unicode does not write as a base and an accent, as a keyboard without them types
# them (what a producer answering "I gave as Søren" types): "soren" finds Søren, "lodz" Łódź,
# "aero" Ærø, "thor" Þór. Applied after case folding, so only the small letters are named.
_LETTERS_APART = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ð": "d", "ħ": "h", "ı": "i", "ŧ": "t",
                                "æ": "ae", "œ": "oe", "þ": "th"})


def search_key(text: str | None) -> str | None:
    """The form a name or an address is searched by, the one rule for what is stored (a donor's
    search keys) and what is typed (the producers' search), so that both databases compare the
    same code points and a plain index serves a prefix: "Élodie", "ELODIE" and "ｅｌｏｄｉｅ" are all
    "elodie", "Zoë Ångström" is "zoe angstrom", "Straße" is "strasse", "İstanbul" is "istanbul".

    For a letter of ASCII, Latin, Greek or Cyrillic: its compatibility decomposition (NFKD: a
    full-width Ａ is A, the ligature ﬁ is fi, ² is 2), its accents dropped, case folded
    (str.casefold: ß is ss, ς is σ). Any other character (Chinese, Japanese, Korean, Arabic,
    Devanagari...) is kept exactly as written. The Latin letters that are not a base and an accent
    are written as a plain keyboard types them (_LETTERS_APART: ø is o, æ is ae, þ is th). Cut to
    SEARCH_KEY_MAX. None stays None (no name)."""
    if text is None:
        return None
    if text.isascii():  # what NFKD and casefold make of ASCII: its lower case
        return text.lower()[:SEARCH_KEY_MAX]
    out: list[str] = []
    folding = False  # the last base character was folded: a loose accent after it goes too
    for c in composed(text):
        if c.isascii():
            out.append(c.lower())
            folding = True
            continue
        if _mark(c):
            if not folding:
                out.append(c)
            continue
        parts = unicodedata.normalize("NFKD", c)
        folding = _folds(parts[0])
        out.append(_bare(_bare(parts).casefold()).translate(_LETTERS_APART) if folding else c)
    key = "".join(out)
    return key[:SEARCH_KEY_MAX]


def half_width(text: str) -> str:
    """What a machine-read field (an amount, an email address) stands for when a Chinese input
    method in full-width mode typed it: "５０．００" is 50.00, "ｍｅｉ＠ｑｑ．ｃｏｍ" is mei@qq.com.
    Only the full-width forms of ASCII and the ideographic space: nothing wider (NFKC would read
    "5²" as 52), and other digit systems stay what they are. Never for a name: those are kept as
    written."""
    return text.translate(_HALF_WIDTH)


def columns(text: str) -> int:
    """How many columns `text` takes in a fixed-width font, as a mail program shows a plain-text
    mail: a Chinese character (East Asian wide or full-width) takes two, a combining mark none.
    A title's underline of "=" is that long, not len(): half a Chinese title's width."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def has_han(text: str) -> bool:
    """Whether the text holds Chinese characters (the CJK Unified Ideographs, their Extension A,
    and Extensions B to H, where the rarest characters of people's names are)."""
    return any("\u3400" <= ch <= "\u9fff" or "\U00020000" <= ch <= "\U000323af" for ch in text)
