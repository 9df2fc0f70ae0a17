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
    if chinese_reader(language) and code in CHINESE_PLACES:
        return CHINESE_PLACES[code]
    if (language or "").lower().replace("_", "-") in _SIMPLIFIED and code in CHINESE_NAMES:
        return CHINESE_NAMES[code]
    catalogue = _catalogue(language)
    return catalogue.gettext(english) if catalogue else english


# How a simplified-Chinese address form names the Chinese-speaking places (the mainland's usage, as
# its shops and couriers list them): a parcel's label and the donor's list read the same way.
CHINESE_PLACES = {"HK": "中国香港", "MO": "中国澳门", "TW": "中国台湾"}

# pycountry's zh_CN catalogue gets these wrong for a mainland reader: a wrong character (柬埔塞),
# Taiwan's forms (瓜地马拉, 马尔他, 波利维亚, 孟加拉), short or odd ones (吉尔吉斯坦, 曼岛, 布维群岛)
# and half-width brackets. Here as the mainland writes them (CLDR's zh names, the foreign
# ministry's list), for the address forms, the survey, the test checkout and every address read
# back: one table over pycountry, so that an update of its catalogue cannot bring them back.
CHINESE_NAMES = {
    "BD": "孟加拉国", "BO": "玻利维亚", "BV": "布韦岛", "CC": "科科斯（基林）群岛", "FK": "福克兰群岛（马尔维纳斯）",
    "GS": "南乔治亚和南桑威奇群岛", "GT": "危地马拉", "HM": "赫德岛和麦克唐纳群岛", "IM": "马恩岛", "KG": "吉尔吉斯斯坦",
    "KH": "柬埔寨", "MT": "马耳他", "PF": "法属波利尼西亚", "PN": "皮特凯恩群岛", "SH": "圣赫勒拿、阿森松和特里斯坦-达库尼亚",
    "TF": "法属南部领地",
}
_SIMPLIFIED = ("zh", "zh-hans", "zh-cn", "zh-hans-cn", "zh-sg")


# The countries a Chinese reader most often posts to, first in her list (the rest follow by pinyin):
# the Chinese-speaking places, then where most of the diaspora lives.
LIKELY_FOR_CHINESE = ("CN", "HK", "MO", "TW", "US", "CA", "GB", "AU", "NZ", "SG", "MY", "JP", "KR", "DE", "FR")

# Pinyin (toneless) of every character of the Chinese country names pycountry gives (its zh_CN
# catalogue): no collation library is installed (no ICU, pyuca or pypinyin; Babel has no collation
# data), and a list sorted by code point (不丹, 东帝汶, 中国…) means nothing to a reader. A name
# whose character is missing here (a new name in pycountry) still sorts, after that syllable's
# place would be: `_pinyin_key` falls back to the character itself. tests/fulfil/test_addresses.py
# checks that every current name is covered.
_PINYIN_SYLLABLES = """
a:阿 ai:埃爱 an:安 ang:昂 ao:奥澳 ba:巴 bai:白百拜 ban:半班 bao:保堡 bei:北贝 ben:本 bi:比秘 bie:别
bin:宾 bing:冰 bo:伯博泊波玻 bu:不布部 chao:朝 chi:赤 ci:茨 da:大达 dai:代 dan:丹旦诞 dao:岛道 de:得德
deng:登 di:地帝蒂迪 dian:典甸 ding:丁 dong:东 du:度都 dun:敦顿 duo:多 e:俄厄 en:恩 er:尔耳 fa:伐法
fan:梵 fei:斐菲非 fen:芬 fo:佛 fu:夫富福 gan:干 gang:冈刚港 ge:各哥格 gen:根 gong:共 gu:古 gua:瓜 guan:关
gui:圭 guo:国果 ha:哈 hai:海 han:汗韩 he:和荷赫 hei:黑 hong:洪 ji:几及吉基极济 jia:加 jian:柬 jiang:疆
jiao:角 jie:捷 jin:津 jing:京 ka:卡喀 kai:凯开 ke:克科 ken:肯 ku:库 la:拉腊 lai:来莱 lan:兰 lang:朗
lao:劳老 le:勒 li:利力立里黎 lian:联 lie:列 lin:林 ling:陵领 liu:留 long:隆 lu:卢路鲁 lun:伦 luo:洛罗
lv:律 ma:马 mai:买麦 man:曼 mao:毛 mei:美 men:门 meng:孟蒙 mi:密米 mian:缅 min:民 mo:墨摩莫 mu:慕
na:拿纳那 nai:奈 nan:南 nao:瑙 nei:内 nen:嫩 ni:尼 ning:宁 niu:纽 nu:努 nuo:挪诺 pa:帕 peng:蓬 pi:皮
po:坡 pu:埔普浦葡 qi:其奇 qiao:乔 qiu:求球酋 qun:群 ri:日 rui:瑞 sa:撒萨 sai:塞 san:三 sang:桑 se:色
sen:森 sha:沙 shan:山 shao:绍 she:舌 sheng:圣 shi:士时 shu:属 si:斯 song:松 su:苏 suo:所索 ta:他塔
tai:台泰 tan:坦 tang:唐汤 tao:萄陶 te:特 ti:提 ting:廷 tu:突图土 tuo:托脱陀 wa:瓦 wai:外 wan:宛湾
wang:旺汪 wei:危威委维韦 wen:文汶 wo:挝沃 wu:乌 xi:希西 xian:鲜 xiang:香 xiao:小 xie:歇 xin:新
xiong:匈 xu:叙 ya:亚牙 yan:延 yang:扬洋 ye:也 yi:以伊意 yin:印 ying:英 you:尤 yu:与屿 yue:约越
zan:赞 ze:泽 zha:乍 zhai:寨 zhi:支智治直 zhong:中 zhou:洲 zhu:主 zi:兹
"""
PINYIN = {ch: syllable for entry in _PINYIN_SYLLABLES.split() for syllable, chars in [entry.split(":")]
          for ch in chars}


def _pinyin_key(name: str) -> tuple:
    """A Chinese name's place in a list ordered as Chinese readers look things up: by the pinyin of
    each character in turn (tones aside), a syllable's characters by code point; punctuation and
    spaces ignored, a letter or digit as itself."""
    return tuple((PINYIN.get(ch, ch.casefold()), ch) for ch in name if ch.isalnum())


def _latin_key(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold() or name


def chinese_reader(language: str | None) -> bool:
    """Does `language` (a tag: "zh-Hans", "zh_CN", "en") read Chinese? The country list, the country's
    name, the address read back and the address form's order all ask this."""
    return (language or "en").lower().startswith("zh")


def _ordered(language: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(the likely places, the rest), each (code, name), in the reader's order."""
    pairs = [(code, country_name(code, language)) for code in ISO_COUNTRIES]
    if not chinese_reader(language):
        return [], sorted(pairs, key=lambda p: _latin_key(p[1]))
    names = dict(pairs)
    return ([(code, names[code]) for code in LIKELY_FOR_CHINESE],
            sorted((p for p in pairs if p[0] not in LIKELY_FOR_CHINESE), key=lambda p: _pinyin_key(p[1])))


def country_choices(language: str = "en") -> list[tuple[str, str]]:
    """(code, name) of every country an address may name, in the order the reader looks for them:
    an English reader alphabetically (accents ignored); a Chinese reader the likely places first
    (LIKELY_FOR_CHINESE), then the rest by pinyin."""
    likely, rest = _ordered(language)
    return likely + rest


def country_groups(language: str = "en") -> list[tuple[str | None, list[tuple[str, str]]]]:
    """country_choices as the address forms' <select> shows it (fulfil/_forms.html, country_options):
    (a group's label or None, its (code, name) pairs). One group in English; in Chinese the likely
    places, then all the others."""
    from flask_babel import gettext as _  # a page's or a mail's language: asked at the call

    likely, rest = _ordered(language)
    if not likely:
        return [(None, rest)]
    return [(_("Most often chosen"), likely), (_("All other countries and regions"), rest)]
