"""Countries an address may name (ISO 3166-1 alpha-2), and the ones Stripe Checkout can collect
a shipping address for (Stripe's `allowed_countries` leaves a few out)."""
import gettext
import unicodedata

from babel import Locale

ISO_COUNTRIES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV
BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES
ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE
IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU
NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM
SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE
VG VI VN VU WF WS XK YE YT ZA ZM ZW
""".split())

# Stripe Checkout's shipping_address_collection refuses these codes.
_NOT_IN_STRIPE = frozenset("AS CX CC CU HM IR KP MH FM NF MP PW SD SY UM VI".split())

STRIPE_SHIPPING_COUNTRIES = sorted(ISO_COUNTRIES - _NOT_IN_STRIPE)


def _catalogue(language: str):
    """pycountry's gettext catalogue of ISO 3166-1 names for a BCP 47 tag (zh-Hans -> zh_CN)."""
    import pycountry  # its databases load on the first address form, not in every process at start

    lang = (language or "en").lower()
    if lang.startswith("en"):
        return None
    code = {"zh-hans": "zh_CN", "zh": "zh_CN", "zh-cn": "zh_CN", "zh-hant": "zh_TW", "zh-tw": "zh_TW",
            "zh-hk": "zh_HK"}.get(lang, lang.replace("-", "_"))
    try:
        return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[code])
    except OSError:
        return None


def country_name(code: str, language: str = "en") -> str:
    """A country as people call it, in the reader's language: the ISO name's common form
    ("Taiwan", "Bolivia", "South Korea"), translated by pycountry's catalogue; the code itself for
    one pycountry does not know (XK, Kosovo: taken from CLDR through Babel when it has it)."""
    import pycountry  # as in _catalogue

    code = (code or "").upper()
    found = pycountry.countries.get(alpha_2=code)
    if found is None:
        try:
            return Locale.parse((language or "en").replace("-", "_")).territories.get(code, code)
        except (ValueError, LookupError):
            return code
    english = getattr(found, "common_name", None) or found.name
    catalogue = _catalogue(language)
    return catalogue.gettext(english) if catalogue else english


def country_choices(language: str = "en") -> list[tuple[str, str]]:
    """(code, name) of every country an address may name, sorted by name as the reader reads it
    (accents ignored; Chinese names in code-point order, Babel has no pinyin collation)."""
    def key(pair):
        return unicodedata.normalize("NFKD", pair[1]).encode("ascii", "ignore").decode().casefold() or pair[1]

    pairs = [(code, country_name(code, language)) for code in ISO_COUNTRIES]
    return sorted(pairs, key=key) if (language or "en").lower().startswith("en") else sorted(pairs, key=lambda p: p[1])
