"""Two languages, English and Simplified Chinese: which one a person reads, and what is formatted in it.

The language is `?lang=` when given (then remembered in a cookie and, for a signed-in donor, on the
donor's profile), else that cookie, else the signed-in donor's profile, else (a page opened from a
link mailed to a donor: `mailed_link`) the language of the donor the link names, else the best
match of the browser's Accept-Language. Mails go in the donor's language (`in_language`).

Tags are BCP 47 (`en`, `zh-Hans`) everywhere a person or a client sees them (pages, the cookie, the
API, the database); Babel's locale ids (`zh_Hans`, the catalogue folder's name) stay inside this module.

Catalogues: filmfund/translations/<locale>/LC_MESSAGES/messages.po (the README says how producers
translate). The compiled .mo is built by `make install`, and again here at start-up when it is
missing or older than its .po, so a fresh clone run without make still speaks Chinese.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache, wraps
from typing import Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from babel import Locale
from babel.dates import format_date as _babel_date
from babel.dates import format_skeleton as _babel_skeleton
from babel.dates import format_time as _babel_time
from babel.dates import get_timezone, get_timezone_location, get_timezone_name
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, force_locale, get_locale, refresh
from flask_babel import gettext as _
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup

from filmfund import typed
from filmfund.errors import DomainError, ValidationError
from filmfund.extensions import db
from filmfund.shared_cache import anonymous

log = logging.getLogger(__name__)

TRANSLATIONS = Path(__file__).parent / "translations"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

# What each language calls itself, for the switch (never translated: a reader looks for their own).
NAMES = {"en": "English", "zh-Hans": "简体中文"}
# Times are shown in a zone the reader lives by, and always named: UTC for English, Beijing time
# for Chinese readers (most of them in China, where a gift at 23:00 UTC is made the next morning).
ZONES = {"en": "UTC", "zh-Hans": "Asia/Shanghai"}

babel = Babel()


def locale_id(tag: str) -> str:
    """Babel's id for a BCP 47 tag: zh-Hans -> zh_Hans."""
    return tag.replace("-", "_")


_LOCALES: dict[str, Locale] = {}
_TAGS: dict[int, str] = {}  # id of a Locale in _LOCALES -> the tag it was parsed from


def babel_locale(tag: str) -> Locale:
    """Babel's Locale for a tag, parsed once per process: Flask-Babel parses the selector's answer
    on every request otherwise (a Locale is passed through as it is), a tenth of a millisecond of
    each request's CPU. A Locale loads its data lazily and never changes, so threads share it."""
    locale = _LOCALES.get(tag)
    if locale is None:
        locale = _LOCALES[tag] = Locale.parse(locale_id(tag))
        _TAGS[id(locale)] = tag
    return locale


def tag_of(locale: Locale | str | None) -> str:
    """The BCP 47 tag of a Babel locale (zh_Hans -> zh-Hans), the default one for None."""
    if locale is None:
        return default_language()
    # One of babel_locale's has its tag kept: writing a Locale out is most of this function's
    # cost, and a pledge asks on the hot path. (Those Locales live as long as the process, so
    # their ids are never another object's.)
    text = _TAGS.get(id(locale)) or str(locale).replace("_", "-")
    return normalize(text) or default_language()


def languages() -> list[str]:
    if not current_app:  # a pure function called with no app (a unit test, a script): English
        return ["en"]
    return list(current_app.config.get("LANGUAGES") or ["en"])


def default_language() -> str:
    return languages()[0]


def normalize(tag: str | None) -> str | None:
    """The offered language that a tag names, or None: `zh-hans`, `zh_Hans`, `zh`, `zh-CN` and
    `zh-SG` all name Simplified Chinese; `zh-TW` and `zh-HK` too (Simplified reads better to them
    than English does); `en-GB` names English."""
    if not tag or not isinstance(tag, str) or len(tag) > 35:
        return None
    wanted = tag.strip().replace("_", "-").lower()
    offered = languages()
    for lang in offered:
        if lang.lower() == wanted:
            return lang
    primary = wanted.split("-", 1)[0]
    for lang in offered:
        if lang.split("-", 1)[0].lower() == primary:
            return lang
    return None


def best_accepted() -> str | None:
    """The best offered match of the request's Accept-Language (by its q values), or None."""
    for tag, _quality in request.accept_languages:  # werkzeug sorts them by quality
        if tag == "*":
            break
        found = normalize(tag)
        if found:
            return found
    return None


class SavedLanguages:
    """Where a signed-in person's language is kept between visits. This core module knows no
    profile: the component that keeps one (rewards, the donor's profile) installs its own at
    init_app (`keep_languages_in`); until then nobody's language is kept."""

    def saved(self, user_id: int) -> str | None:
        """The tag kept for this user, or None."""
        return None

    def save(self, user_id: int, tag: str) -> bool:
        """Keep `tag` for this user if they have somewhere to keep it; True if it changed (the
        caller commits)."""
        return False


_saved = SavedLanguages()


def keep_languages_in(store: SavedLanguages) -> None:
    global _saved
    _saved = store


def _profile_language() -> str | None:
    if anonymous(request.environ):
        # Nothing in the request says who is asking, so nobody is signed in: no user is loaded
        # (nor the session opened) to learn it. A pledge from the API asks on its hot path.
        return None
    try:
        if not current_user.is_authenticated:
            return None
    except RuntimeError:  # no login manager bound (a bare app in a unit test)
        return None
    return normalize(_saved.saved(current_user.id))


def choose_language() -> str:
    """The language of this request (see the module's docstring); the default outside a request."""
    if not has_request_context():
        return default_language()
    chosen = g.get("_filmfund_language")
    if chosen:
        return chosen
    lang = (g.get("_filmfund_asked_language") or normalize(request.cookies.get(COOKIE))
            or _profile_language() or _link_owner_language() or best_accepted() or default_language())
    g._filmfund_language = lang
    return lang


def mailed_link(owner: Callable[..., int | None]):
    """A page opened from a link mailed to one donor (unsubscribe, the address survey, a settings
    confirmation, a sign-in link): its token names the donor, and a phone's mail program opens it
    in a fresh browser, with no cookie and often an English Accept-Language. The page is then in
    the donor's language, the one the mail was in, unless this browser chose one (?lang=, the
    cookie, a signed-in profile). `owner(**view_args)` is the donor's user id, or None (a stale or
    forged link; a DomainError it raises counts as None: the view says why, in the browser's
    language). Asked only when nothing before it chooses."""
    def decorate(view):
        @wraps(view)
        def with_owner(*args, **kwargs):
            g._filmfund_link_owner = lambda: owner(**kwargs)
            g.pop("_filmfund_language", None)  # a choice made before the view knew whose link this is
            refresh()  # and what Flask-Babel kept of it (the locale, its zone and translations)
            return view(*args, **kwargs)
        return with_owner
    return decorate


def _link_owner_language() -> str | None:
    # Taken before it is asked: reading a stale token writes its refusal with gettext, which
    # chooses the language again, and that inner choice must not ask the token once more.
    owner = g.pop("_filmfund_link_owner", None)
    if owner is None:
        return None
    try:
        user_id = owner()
    except DomainError:
        return None
    return normalize(_saved.saved(user_id)) if user_id is not None else None


def current_language() -> str:
    """The BCP 47 tag of the language being written in now (a page, or a mail in `in_language`)."""
    return tag_of(get_locale())


@contextmanager
def in_language(tag: str | None):
    """Write in this language (a mail to a donor, whatever the sender's page reads in)."""
    with force_locale(locale_id(normalize(tag) or default_language())):
        yield


def donor_language(user_id: int | None) -> str:
    """The language a donor reads their mail in: their profile's, else the default."""
    if user_id is not None:
        saved = normalize(_saved.saved(user_id))
        if saved:
            return saved
    return default_language()


def donor_zone(user_id: int | None) -> str:
    """The zone (its id) a donor is given times in where nothing else names one: the zone of their
    language (ZONES), as their pages give times; an invitation starts from it."""
    return ZONES.get(donor_language(user_id), "UTC")


@contextmanager
def for_donor(user_id: int | None):
    """Write in the donor's language (their mails: receipts, links, updates, surveys...)."""
    with in_language(donor_language(user_id)):
        yield


# ---------------------------------------------------------------- formatting

def _babel_locale() -> Locale:
    return get_locale() or babel_locale(default_language())


def format_money(cents: int | None, currency: str = "usd", *, whole: bool = False) -> str:
    """An amount of minor units as the reader's language writes it: $1,234.50 (US$1,234.50 in
    Chinese, where a bare $ could be read as yuan); with whole=True rounded half up to the unit
    ($1,235). The sign goes before the symbol: -$0.05, never $-0.05. Decimal, never a float."""
    cents = int(cents or 0)
    code = (currency or "usd").upper()
    locale = _babel_locale()
    if whole:
        units = (abs(cents) + 50) // 100 * (1 if cents >= 0 else -1)
        return format_currency(Decimal(units), code, locale=locale, format="¤#,##0;-¤#,##0", currency_digits=False)
    return format_currency(Decimal(cents).scaleb(-2), code, locale=locale)


def format_percent_of(part: int, whole: int) -> str:
    """What share of `whole` `part` is, as a whole percent (floored, never capped: 2158% is 2158%)."""
    if not whole:
        return format_decimal(0, locale=_babel_locale()) + "%"
    return format_decimal(part * 100 // whole, locale=_babel_locale()) + "%"


def format_bps(bps: int) -> str:
    """A share in basis points as a percent: 2000 -> 20%, 1250 -> 12.5%."""
    return format_decimal(Decimal(bps).scaleb(-2).normalize(), locale=_babel_locale()) + "%"


def reader_zone():
    return get_timezone(reader_zone_id())


def reader_zone_id() -> str:
    """The zone a page writes times in for its reader's language ("Asia/Shanghai" for Chinese)."""
    return ZONES.get(current_language(), "UTC")


# How Chinese readers name Beijing time (Babel's generic name is "中国时间").
ZONE_NAMES = {("zh-Hans", "Asia/Shanghai"): "北京时间"}


def zone_name(zone: str | None = None) -> str:
    """A time zone (the reader's, unless named) in the reader's language: "UTC", "北京时间",
    "Pacific Time", "北美太平洋时间"; never a database id such as "Asia/Shanghai"."""
    lang = current_language()
    return _zone_word(lang, zone or ZONES.get(lang, "UTC"), get_timezone_name)


def _zone_word(lang: str, zone: str, babel_word) -> str:
    """A zone in the reader's words: "UTC" as is, Beijing time as its readers say it, any other by
    Babel (its long name, or its place)."""
    if zone == "UTC":
        return "UTC"
    return ZONE_NAMES.get((lang, zone)) or babel_word(get_timezone(zone), locale=_babel_locale())


# Where this film's donors mostly live: offered first, before every zone of the world.
COMMON_ZONES = ("Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei", "Asia/Singapore", "Asia/Kuala_Lumpur",
                "Asia/Tokyo", "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
                "America/Toronto", "America/Vancouver", "Europe/London", "Europe/Paris", "Europe/Berlin",
                "Australia/Sydney", "Pacific/Auckland", "UTC")


def zone_choices(zones: list[str], current: str | None = None) -> list[tuple[str, list[tuple[str, str]]]]:
    """A select's groups of `zones` (ids, the values a form sends back), each zone by its place in
    the reader's language ("美国（纽约）时间", "United States (New York) Time"; Beijing time as its
    readers say it): the common zones first, then every other one by name. Ids that name the same
    place (old aliases) are offered once; `current` is always among them."""
    lang = current_language()
    common, rest = _zone_labels(lang, tuple(zones))
    if current and current not in dict(common) and current not in dict(rest) and current in zones:
        rest = sorted([*rest, (current, _zone_label(lang, current))], key=lambda pair: pair[1])
    return [(_("Common time zones"), common), (_("All time zones"), rest)]


@lru_cache(maxsize=8)
def _zone_labels(lang: str, zones: tuple[str, ...]) -> tuple[list, list]:
    """Built once a language, in that language (the reader's: 518 zones named by Babel take 0.16 s)."""
    common = [(z, _zone_label(lang, z)) for z in COMMON_ZONES if z in zones]
    seen = {label for _z, label in common}
    rest = []
    for z in zones:
        label = _zone_label(lang, z)
        if label not in seen:
            seen.add(label)
            rest.append((z, label))
    return common, sorted(rest, key=lambda pair: pair[1])


def _zone_label(lang: str, zone: str) -> str:
    return _zone_word(lang, zone, get_timezone_location)


def format_when(value: datetime | None, zone: str | None = None) -> str:
    """A moment in the reader's language and zone (or `zone`: the campaign's, where the books
    count their days), to the minute, with the zone named: "December 3, 2026, 8:30 PM UTC" /
    "2026年12月4日 04:30（北京时间）" / "December 4, 2026, 12:00 AM China Standard Time"."""
    if value is None:
        return ""
    text = _date_and_time(value, get_timezone(zone) if zone else reader_zone(), "long")
    if _babel_locale().language == "zh":
        return f"{text}（{zone_name(zone)}）"
    return f"{text} {zone_name(zone)}"


def format_recorded(value: datetime | None, camera_zone: str | None = None) -> str:
    """When a camera recorded: at the offset the camera recorded with, when it recorded one
    ("December 3, 2026, 5:33 PM (UTC+05:30)": the time on location, what the crew and the slate
    say), otherwise in the reader's zone, named (format_when). Never a bare UTC time."""
    if value is None:
        return ""
    if not camera_zone:
        return format_when(value)
    sign = -1 if camera_zone.startswith("-") else 1
    hours, _sep, minutes = camera_zone[1:].partition(":")
    zone = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes or 0)))
    text = _date_and_time(value, zone, "long")
    label = f"UTC{camera_zone}"
    return f"{text}（{label}）" if _babel_locale().language == "zh" else f"{text} ({label})"


def format_in_zone(value: datetime | None, zone: str) -> str:
    """A moment in a given zone (an invitation's), with its weekday, in the reader's language:
    "Saturday, March 14, 2026, 7:30 AM" / "2026年3月14日星期六 07:30"."""
    return _date_and_time(value, get_timezone(zone), "full") if value is not None else ""


def _date_and_time(value: datetime, zone, date_width: str) -> str:
    """The date (long: no weekday, full: with it) and the time to the minute, in that zone, joined
    as the reader's language joins them."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    locale = _babel_locale()
    local = value.astimezone(zone)
    return locale.datetime_formats["medium"].format(_babel_time(local, "short", tzinfo=None, locale=locale),
                                                    _babel_date(local.date(), date_width, locale=locale))


def format_day(value: date | datetime | None) -> str:
    """A date in the reader's language ("December 3, 2026" / "2026年12月3日"); a datetime is first
    moved to the reader's zone."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(reader_zone()).date()
    return _babel_date(value, "long", locale=_babel_locale())


def language_name(tag: str | None) -> str:
    """A language, by its BCP 47 tag (`zh-Hans`, `zh`, `yue`, `en`), named in the reader's
    language: "Chinese" / "中文", "Cantonese" / "粤语"; never the code, except for one Babel does
    not know. The language itself, not its script or region (an interview is in Chinese, whether
    it is then written in simplified or traditional characters). Unlike NAMES (each language's
    own name, for the switch)."""
    if not tag:
        return ""
    primary = str(tag).replace("_", "-").split("-", 1)[0].lower()
    return _babel_locale().languages.get(primary) or str(tag)


def other_languages() -> list[str]:
    """The languages a producers' text (an update, an experience) may also be written in, beside
    its main text: the site's languages after its first."""
    return languages()[1:]


def producers_versions(translations, clean: Callable[[dict], dict[str, str]],
                       main: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """A producers' text in the other languages, as a form or the API gave it ({"zh-Hans": {...}}),
    each version checked by `clean` (the main text's own rule, raising ValidationError). A
    language left blank has no version; one half-written is refused with its language named, so
    that no reader gets a title without its text: given the `main` text (cleaned), a version must
    also give every part the main text gives (an experience's place: a guest is always told
    where, in her language). Unknown languages are refused."""
    if translations is None:
        return {}
    others = other_languages()
    if not isinstance(translations, dict) or any(lang not in others or not isinstance(text, dict)
                                                 for lang, text in translations.items()):
        raise ValidationError(_("translations: one of %(tags)s, by its tag.",
                                tags=", ".join(others) or _("no other language")), code="invalid_translations")
    cleaned = {}
    for lang, text in translations.items():
        if not any(isinstance(v, str) and v.strip() for v in text.values()):
            continue
        try:
            cleaned[lang] = clean(text)
        except ValidationError as err:
            raise ValidationError(f"{lang} {err.message}", code=err.code) from None
        missing = [part for part, words in (main or {}).items() if words and not cleaned[lang].get(part)]
        if missing:
            raise ValidationError(_("%(lang)s %(part)s: the main text gives one, so this version needs it too "
                                    "(the same words if they read the same), or leave the whole version blank.",
                                    lang=lang, part=missing[0]), code="half_written_version")
    return cleaned


def versions_from_form(form, fields: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """A producers' page's versions in the other languages: its fields named `title:zh-Hans`."""
    return {lang: {field: form.get(f"{field}:{lang}", "") for field in fields} for lang in other_languages()}


def versions_to_form(translations: dict | None) -> dict[str, str]:
    """The stored versions as that page's fields hold them (`title:zh-Hans`: ...), to edit them."""
    return {f"{field}:{lang}": value for lang, text in (translations or {}).items() for field, value in text.items()}


def producers_version(main: dict[str, str], translations: dict | None,
                      lang: str | None = None) -> tuple[dict[str, str], str]:
    """A text the producers wrote (an update, an experience), as a reader in `lang` (the current
    language, by default) reads it: the version they wrote in that language, otherwise the main
    one; with the language it is in (its page or mail marks it so). A part the version leaves
    blank (a version stored before `producers_versions` asked for every part: an experience's
    place) is read from the main text, never shown empty. Never machine-translated."""
    lang = lang or current_language()
    version = (translations or {}).get(lang)
    if version:
        return {**main, **{part: words for part, words in version.items() if words}}, lang
    return main, default_language()


def list_separator() -> str:
    """What goes between the items of a short list (reward titles, roles, payment methods) in the
    reader's language: ", " in English, "、" in Chinese. Not for CSV files or codes: those keep ", "."""
    return _(", ")


def word_space() -> str:
    """The space between two parts a page joins (a label and its "(optional)", "Rewards:" and its
    list, a reward and its note): one in English, none in Chinese, whose full-width punctuation
    (（）：) carries its own."""
    return "" if current_language() == "zh-Hans" else " "


def format_month(value: str | date) -> str:
    """A calendar month in the reader's language ("December 2026" / "2026年12月"), from a date or
    its "2026-12" form (a statement's month, as in its address)."""
    if isinstance(value, str):
        year, _sep, month = value.partition("-")
        value = date(int(year), int(month), 1)
    return _babel_skeleton("yMMMM", value, locale=_babel_locale())


# ---------------------------------------------------------------- the language a text is marked in

def body_in_english(translated_page=False) -> bool:
    """Whether the body of the page being written is English inside a page in another language: a
    producers' page (`g.written_for_crew`, security.role_required) whose template does not declare
    itself translated (`{% set translated_page = true %}` at its top level: every text of it goes
    through the catalogue). base.html marks such a body `lang="en"` and keeps this answer as
    `in_english`, which the pieces written in the page's language inside it read (mark_language)."""
    return bool(has_request_context() and g.get("written_for_crew")) and current_language() != "en" \
        and not translated_page


def text_language(text: str) -> str:
    """The language of a text given once, with no version per language (a crew member's or the
    partner charity's name as written, a producer's note), as far as the site's languages go:
    Chinese when it holds Chinese characters, English otherwise. A text with versions knows its
    language (producers_version, media's shown_title): its caller passes that instead."""
    return "zh-Hans" if typed.has_han(text) else "en"


def mark_language(context, text, lang: str):
    """`text` in a `<span lang>` when `lang` is not the language around it in the page being
    written: the page's, or English inside a producers' page's English body (base.html's
    `in_english`, in the Jinja `context`). A screen reader then reads it with the right voice.
    Otherwise, and outside an HTML template (a plain-text mail), the text as it is."""
    if not text or not context.eval_ctx.autoescape:
        return text
    around = "en" if context.get("in_english") else current_language()
    if lang == around:
        return text
    return Markup('<span lang="%s">%s</span>') % (lang, text)


@pass_context
def as_written(context, text, lang: str | None = None):
    """Template filter: a text marked with its language where it differs from the page's.
    `{{ m.name|as_written }}` (a text given once: text_language), `{{ name|as_written(lang) }}`."""
    if text is None:
        return ""
    return mark_language(context, text, lang or text_language(str(text)))


def _in_page_language(format: Callable) -> Callable:
    """A formatting filter (a date, a zone) whose words are in the page's language: marked so
    where it lands inside a producers' page's English body."""
    @pass_context
    @wraps(format)
    def marked(context, value, *args, **kwargs):
        return mark_language(context, format(value, *args, **kwargs), current_language())
    return marked


# ---------------------------------------------------------------- the switch and the cookie

def switch_url(tag: str) -> str:
    """This page again in another language: the same path and query with lang= replaced. A page
    shown after a form was posted has no GET of its own: the switch leads to the campaign page."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    args.append(("lang", tag))
    path = request.path if request.method in ("GET", "HEAD") else "/"
    return f"{path}?{urlencode(args)}"


def _remember_asked_language() -> None:
    """Before every request: a `?lang=` is noted (the cookie and the profile take it after the
    view). Flask-Babel's cached choice is dropped (an app context can
    outlive one request: the tests', a CLI's), and so is a producers' page's word that its
    body is the crew's English (body_in_english: this request's guard says it again)."""
    g.pop("_flask_babel", None)
    g.pop("_filmfund_language", None)
    g.pop("written_for_crew", None)
    g._filmfund_asked_language = normalize(request.args.get("lang"))


def _save_on_profile(tag: str) -> None:
    if current_user.is_authenticated and _asked_on_this_site() and _saved.save(current_user.id, tag):
        db.session.commit()


def _asked_on_this_site() -> bool:
    """Was `?lang=` followed from this site (its switch) or typed, rather than from a link on
    another site? The session cookie goes with a top-level link from anywhere (SameSite=Lax), and
    the profile's language is the one the donor's mail is written in: a stranger's page must not
    change it. Fetch Metadata says where the request came from (every current browser sends it);
    without it, the Referer's host, when there is one."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    referrer = request.referrer
    return not referrer or urlsplit(referrer).netloc == request.host


def _remember_after(response):
    """After the view: the cookie, and a signed-in donor's profile (after the view, which has
    loaded the user and committed its own work)."""
    asked = g.get("_filmfund_asked_language")
    if asked:
        try:
            _save_on_profile(asked)
        except Exception:  # remembering a language never breaks the page it was asked on
            log.exception("could not keep the language on the donor's profile")

            db.session.rollback()
    if asked and request.cookies.get(COOKIE) != asked:
        response.set_cookie(COOKIE, asked, max_age=COOKIE_MAX_AGE, samesite="Lax", httponly=True,
                            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
        if response.cache_control.public:  # a public answer (api.route) setting this reader's cookie is theirs alone
            response.cache_control.public = False
            response.cache_control.private = True
    if not request.path.startswith(("/static/", "/api/", "/webhooks/")):
        response.vary.add("Accept-Language")
        response.vary.add("Cookie")
    chosen = g.get("_flask_babel")
    if chosen is not None and getattr(chosen, "babel_locale", None) is not None:  # something was written
        response.headers.setdefault("Content-Language", current_language())
    return response


# ---------------------------------------------------------------- catalogues

def compile_catalogues(directory: Path = TRANSLATIONS) -> list[Path]:
    """Compile each messages.po whose .mo is missing or older (what `make install` runs too).
    Returns the .mo files written."""
    written = []
    for po in sorted(directory.glob("*/LC_MESSAGES/messages.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=po.parent.parent.name)
        tmp = mo.with_suffix(".mo.tmp")
        try:
            with tmp.open("wb") as fh:
                write_mo(fh, catalog, use_fuzzy=False)
            tmp.replace(mo)  # atomic: another process starting at the same moment reads one or the other
        except OSError as exc:  # an installed, read-only package: `make install` compiles it instead
            log.warning("cannot compile %s: %s", po, exc)
            continue
        written.append(mo)
    return written


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", locale_id(app.config.get("LANGUAGES", ["en"])[0]))
    compile_catalogues()
    babel.init_app(app, locale_selector=lambda: babel_locale(choose_language()),
                   timezone_selector=lambda: ZONES.get(current_language(), "UTC"))
    app.before_request(_remember_asked_language)
    app.after_request(_remember_after)
    app.add_template_filter(format_money, "money")
    app.add_template_filter(_in_page_language(format_when), "when")
    app.add_template_filter(_in_page_language(format_day), "day")
    app.add_template_filter(_in_page_language(format_month), "month")
    app.add_template_global(other_languages, "other_languages")
    app.add_template_filter(language_name, "language_name")
    app.add_template_filter(_in_page_language(format_in_zone), "in_zone")
    app.add_template_filter(_in_page_language(zone_name), "zone_name")
    app.add_template_global(reader_zone_id, "reader_zone_id")
    app.add_template_filter(_in_page_language(format_recorded), "recorded")
    app.add_template_filter(as_written, "as_written")
    app.add_template_global(body_in_english, "body_in_english")
    app.add_template_global(current_language, "language_tag")  # a mail's <html lang>, outside a request too
    app.add_template_filter(format_bps, "bps")
    app.add_template_global(list_separator, "list_separator")
    app.add_template_global(word_space, "word_space")
    app.add_template_filter(typed.columns, "columns")  # a plain-text mail's underline

    @app.context_processor
    def _language_context():
        if not has_request_context():
            return {}
        here = current_language()
        return {"current_language": here, "language_names": NAMES,
                "language_links": [(tag, NAMES.get(tag, tag), switch_url(tag)) for tag in languages()
                                   if tag != here]}


__all__ = ["babel", "choose_language", "current_language", "for_donor", "format_money", "format_when",
           "format_day", "in_language", "refresh"]
