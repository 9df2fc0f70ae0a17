"""Captions: producers upload or edit WebVTT or SRT per language (a BCP 47 tag); donors' players
and downloads offer the final ones.

Read by libraries, never by hand: SRT by pysubs2 (written out as WebVTT), WebVTT by webvtt-py. Each
cue is then checked (times, order, within the clip) and its text sanitised as Markdown is: the
harmless WebVTT tags b, i, u, c (with classes), v (a voice name), lang (a language tag), ruby, rt
and timestamps are kept; every other tag (`<script>`, `<img onerror=...>`, `<font>`) is dropped,
and a stray `<`, `>` or `&` is escaped. STYLE and REGION blocks and cue settings are not kept (a
style sheet could load a URL). What is stored and served is the WebVTT written here.

A language's captions have a status as a question's translation has: missing (no row), draft
(the producers' only) or final (offered to donors: filmfund.media.library gives their links). `translated_from` says which language a
translation was made from.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Response
from flask_babel import gettext as _

from filmfund.audit import record_audit
from filmfund.errors import NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.media.common import drop_unreferenced_on_commit
from filmfund.media.models import Asset, AssetKind, Caption, CaptionStatus
from filmfund.media.storage import content_disposition

MAX_BYTES = 512 * 1024
MAX_CUES = 10_000
FIRST = ("zh-Hans", "en")                      # the campaign's languages, offered first
AUTONYMS = {"zh-Hans": "中文", "zh-Hant": "中文（繁體）", "zh": "中文", "en": "English"}
SRT_TYPES = {"application/x-subrip", "application/srt", "text/srt", "text/x-srt"}
VTT_TYPES = {"text/vtt"}
SNIFF_TYPES = {"", "text/plain", "application/octet-stream"}

_LANG = re.compile(r"^([A-Za-z]{2,3})(?:-([A-Za-z]{4}))?(?:-([A-Za-z]{2}|[0-9]{3}))?((?:-[A-Za-z0-9]{5,8})*)$")
# A tag starts with a letter (`<b>`, `</i>`, `<v Li Wei>`) or is a timestamp; any other "<" is text
# and is escaped ("温度<30度，湿度>80%", "aged <10"), never taken as a tag and dropped with its words.
_TAG = re.compile(r"<(/?[A-Za-z][^<>]*|(?:\d{2,}:)?\d{2}:\d{2}\.\d{3})>")
_OPEN = re.compile(r"([a-z]+)((?:\.[A-Za-z0-9_-]+)*)(?:[ \t]+(.*))?", re.S)
_TIMESTAMP = re.compile(r"(?:\d{2,}:)?\d{2}:\d{2}\.\d{3}")
_ENTITY = re.compile(r"&(?:amp|lt|gt|lrm|rlm|nbsp);|&#[0-9]{1,7};|&#x[0-9A-Fa-f]{1,6};")
ALLOWED_TAGS = {"b", "i", "u", "c", "v", "lang", "ruby", "rt"}


class CaptionError(ValidationError):
    code = "invalid_captions"


@dataclass
class Parsed:
    vtt: str
    cues: int
    source_format: str


def normalize_lang(tag: str) -> str:
    """A BCP 47 tag (language, optional script, region and variants) in its usual case:
    `zh-hans` -> `zh-Hans`, `EN-gb` -> `en-GB`. The language must be a known ISO 639 code."""
    import pycountry  # caption parsers load on first use, not in every web process and worker at start

    m = _LANG.match((tag or "").strip())
    lang = m and m.group(1).lower()
    known = lang and (pycountry.languages.get(alpha_2=lang) if len(lang) == 2
                      else pycountry.languages.get(alpha_3=lang))
    if not known:
        raise CaptionError(_("%(lang)s is not a language tag (BCP 47), such as zh-Hans or en.", lang=(tag or "")[:40]),
                           code="invalid_language")
    out = lang
    if m.group(2):
        out += "-" + m.group(2).title()
    if m.group(3):
        out += "-" + m.group(3).upper()
    if m.group(4):
        out += m.group(4).lower()
    return out


def _locale(lang: str):
    """The language babel knows for this tag (its likely script filled in: zh-TW is Hant), or None."""
    import babel

    try:
        return babel.Locale.parse(lang, sep="-")
    except (ValueError, TypeError, babel.UnknownLocaleError):
        return None


def label(lang: str) -> str:
    """The language's own name, for a player's menu (the same in every page language): the
    campaign's own words for its languages, babel's autonym for the others (`fr` français,
    `en-GB` English (United Kingdom)), the tag itself for a language babel does not know."""
    if lang in AUTONYMS:
        return AUTONYMS[lang]
    locale = _locale(lang)
    name = locale.get_display_name() if locale is not None else None
    return (name[:1].upper() + name[1:]) if name else lang  # a menu entry starts with a capital


def language_order(lang: str) -> tuple[int, int, str]:
    """The campaign's languages first, each with every tag of the same language: a Chinese file
    is often tagged zh or zh-CN (what Chinese tools write), and is a Chinese reader's track as
    zh-Hans is (zh-Hans itself first, simplified before traditional); then the others by tag."""
    base = lang.split("-")[0]
    bases = [tag.split("-")[0] for tag in FIRST]
    if base not in bases:
        return (len(FIRST), 0, lang)
    locale = _locale(lang) if base == "zh" else None
    later = 2 if locale is not None and locale.script == "Hant" else 1
    return (bases.index(base), 0 if lang in FIRST else later, lang)


def default_lang(langs: list[str], page_lang: str) -> str | None:
    """Which of these tracks (in `final` order) a player shows first on a page in `page_lang`: the
    page's own language, else the first track of the same language (a Chinese page's first zh*
    track), else none (the reader chooses; a track never turns itself on in a language not read)."""
    if page_lang in langs:
        return page_lang
    base = page_lang.split("-")[0]
    return next((lang for lang in langs if lang.split("-")[0] == base), None)


# --- reading and sanitising -------------------------------------------------------------------

def _escape_text(text: str) -> str:
    out, pos = [], 0
    for m in _ENTITY.finditer(text):
        out.append(text[pos:m.start()].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
        out.append(m.group(0))
        pos = m.end()
    out.append(text[pos:].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    return "".join(out)


def _safe_tag(inner: str) -> str:
    """The tag as kept, or "" to drop it."""
    if _TIMESTAMP.fullmatch(inner):
        return f"<{inner}>"
    if inner.startswith("/"):
        return f"</{inner[1:]}>" if inner[1:] in ALLOWED_TAGS else ""
    m = _OPEN.fullmatch(inner)
    if not m or m.group(1) not in ALLOWED_TAGS:
        return ""
    name, classes, annotation = m.group(1), m.group(2), (m.group(3) or "").strip()
    if name == "v":
        voice = re.sub(r"[^\w .'-]+", "", annotation, flags=re.U)[:64].strip()
        return f"<v{classes} {voice}>" if voice else f"<v{classes}>"
    if name == "lang":
        try:
            return f"<lang{classes} {normalize_lang(annotation)}>"
        except CaptionError:
            return ""
    return f"<{name}{classes}>"


def sanitize(text: str) -> str:
    """A cue's text with only harmless WebVTT markup (see the module's docstring)."""
    out, pos = [], 0
    for m in _TAG.finditer(text):
        out.append(_escape_text(text[pos:m.start()]))
        out.append(_safe_tag(m.group(1)))
        pos = m.end()
    out.append(_escape_text(text[pos:]))
    lines = [line.rstrip() for line in "".join(out).replace("\r", "").split("\n")]
    return "\n".join(line for line in lines if line.strip())


def _seconds(stamp: str) -> float:
    parts = stamp.split(":")
    total = 0.0
    for p in parts:
        total = total * 60 + float(p)
    return total


def _stamp(seconds: float) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _format_of(content_type: str | None, text: str) -> str:
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in VTT_TYPES:
        return "vtt"
    if ctype in SRT_TYPES:
        return "srt"
    if ctype in SNIFF_TYPES:
        return "vtt" if text.lstrip().startswith("WEBVTT") else "srt"
    raise CaptionError(_("Send WebVTT (text/vtt) or SRT (application/x-subrip)."), code="unsupported_media_type",
                       status=415)


def parse(body: bytes, content_type: str | None = None, *, duration: float | None = None) -> Parsed:
    """WebVTT or SRT to sanitised WebVTT, or a CaptionError that says what is wrong."""
    import pysubs2  # as in normalize_lang
    import webvtt

    if len(body) > MAX_BYTES:
        raise CaptionError(_("Captions are larger than %(n)s KiB.", n=MAX_BYTES // 1024), code="too_large", status=413)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CaptionError(_("Captions must be UTF-8 text.")) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if not text.strip():
        raise CaptionError(_("The captions are empty."))
    fmt = _format_of(content_type, text)
    try:
        if fmt == "srt":  # the SRT's own tags kept as text here: the sanitiser below decides
            captions = [("", e.start / 1000, e.end / 1000, e.plaintext)
                        for e in pysubs2.SSAFile.from_string(text, format_="srt", keep_html_tags=True)]
        else:
            captions = [(c.identifier or "", _seconds(c.start), _seconds(c.end), c.raw_text)
                        for c in webvtt.from_string(text).captions]
    except Exception as exc:  # noqa: BLE001 (each library has its own errors; all mean "unreadable")
        raise CaptionError(_("These captions could not be read as %(format)s: %(error)s", format=fmt.upper(),
                             error=str(exc)[:200])) from None
    if not captions:
        raise CaptionError(_("No caption was found in this file."))
    if len(captions) > MAX_CUES:
        raise CaptionError(_("At most %(n)s captions per language.", n=MAX_CUES))
    blocks = ["WEBVTT", ""]
    for n, (cue_id, start, end, raw) in enumerate(captions, 1):
        if end <= start:
            raise CaptionError(_("Caption %(n)s ends before it starts.", n=n))
        if duration and start > duration + 0.5:
            raise CaptionError(_("Caption %(n)s starts after the clip ends (%(end)s).", n=n, end=_stamp(duration)))
        ident = re.sub(r"\s+", " ", cue_id.replace("-->", "")).strip()[:64]
        body_text = sanitize(raw)
        if ident:
            blocks.append(ident)
        blocks.append(f"{_stamp(start)} --> {_stamp(end)}")
        blocks.append(body_text or "&nbsp;")
        blocks.append("")
    return Parsed("\n".join(blocks), len(captions), fmt)


# --- producers ----------------------------------------------------------------------------------

def _video(asset: Asset) -> Asset:
    if asset.kind != AssetKind.VIDEO:
        raise CaptionError(_("Only a video has captions."), code="not_a_video")
    return asset


def find(asset: Asset, lang: str) -> Caption | None:
    lang = normalize_lang(lang)
    return next((c for c in asset.captions if c.lang == lang), None)


def get(asset: Asset, lang: str) -> Caption:
    caption = find(asset, lang)
    if caption is None:
        raise NotFoundError(_("This clip has no captions in %(lang)s.", lang=normalize_lang(lang)))
    return caption


def put(asset: Asset, lang: str, body: bytes, content_type: str | None, *, status: str = "final",
        translated_from: str | None = None, user=None) -> tuple[Caption, bool]:
    """Store (or replace) an asset's captions in one language. Nothing is changed if they are
    refused. The caller commits."""
    _video(asset)
    lang = normalize_lang(lang)
    try:
        state = CaptionStatus(status or "final")
    except ValueError:
        raise CaptionError(_("The status is draft or final."), code="invalid_status") from None
    source = normalize_lang(translated_from) if translated_from else None
    if source == lang:
        source = None
    parsed = parse(body, content_type, duration=asset.duration)
    caption = find(asset, lang)
    created = caption is None
    if created:
        caption = Caption(lang=lang, asset=asset)
        db.session.add(caption)
    caption.vtt, caption.cues, caption.source_format = parsed.vtt, parsed.cues, parsed.source_format
    caption.status, caption.translated_from = state, source
    if not created:  # a donor copy burned with the old words is stale (filmfund.media.burnin)
        stale = caption.burned_key
        caption.burned_key = caption.burned_sha256 = caption.burned_size = caption.burned_at = None
        caption.burn_state, caption.burn_error = "none", None
        drop_unreferenced_on_commit([stale])  # a whole re-encoded clip: it goes with its words
    caption.updated_by = getattr(user, "id", None)
    record_audit("media.captions", f"asset:{asset.public_id}", {"lang": lang, "status": state.value,
                                                               "cues": parsed.cues, "format": parsed.source_format,
                                                               "created": created}, actor=user)
    return caption, created


def delete(asset: Asset, lang: str, *, user=None) -> None:
    """Remove one language's captions, and the donor copy burned with them once the caller
    commits. The caller commits."""
    caption = get(asset, lang)
    burned = caption.burned_key
    asset.captions.remove(caption)
    db.session.delete(caption)
    drop_unreferenced_on_commit([burned])
    record_audit("media.captions_deleted", f"asset:{asset.public_id}", {"lang": caption.lang}, actor=user)


def statuses(asset: Asset) -> list[dict]:
    """Each language's state for the producers' page: the campaign's two first (missing when
    there is none), then the others."""
    have = {c.lang: c for c in asset.captions}
    langs = sorted(set(FIRST) | set(have), key=language_order)
    return [{"lang": lang, "label": label(lang), "caption": have.get(lang),
             "status": have[lang].status.value if lang in have else "missing"} for lang in langs]


# --- donors -------------------------------------------------------------------------------------

def final(asset: Asset) -> list[Caption]:
    return sorted((c for c in asset.captions if c.status == CaptionStatus.FINAL),
                  key=lambda c: language_order(c.lang))


def vtt_response(caption: Caption, *, filename: str | None = None):
    resp = Response(caption.vtt, mimetype="text/vtt")
    resp.charset = "utf-8"
    resp.headers["Cache-Control"] = "private, no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Language"] = caption.lang
    if filename:
        resp.headers["Content-Disposition"] = content_disposition(filename)
    return resp
