"""The rendered credits roll: the exported list as a video an editor drops into the film (H.264,
white on black), each name centred and drawn by libass as its owner wrote it; whether a rendered
roll still shows what the credits print (a roll showing a name they no longer print is taken
down: privacy beats the picture lock); and which characters of a name no installed font has."""
from __future__ import annotations

import bisect
import functools
import logging
import math
import shutil
import subprocess
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Callable

from flask import current_app

from filmfund.audit import record_audit
from filmfund.auth.models import User
from filmfund.db import on_commit
from filmfund.errors import ConflictError, NotFoundError
from filmfund.extensions import db
from filmfund.fulfil.credits import HEADINGS, SECTIONS, export_lines, in_credits, iter_live_names
from filmfund.media import ffmpeg as ff
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.models import Campaign

log = logging.getLogger(__name__)

ROLL_SIZE = (1280, 720)
ROLL_FPS = 24
ROLL_SPEED = 60  # pixels per second
# Noto Sans CJK first: many of this film's donors write their names in Chinese, which DejaVu
# draws as empty boxes (make install brings fonts-noto-cjk where it can; its first face covers
# Latin too). The others are the fallbacks of a machine without it. By file, the family libass asks
# fontconfig for; a glyph the face lacks (Arabic, Hebrew) comes from another installed font.
FONT_CANDIDATES = {"/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc": "Noto Sans CJK SC",
                   "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf": "DejaVu Sans",
                   "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf": "Liberation Sans"}


def roll_path() -> Path:
    return Path(current_app.config["INSTANCE_DIR"]) / "credits" / "credits-roll.mp4"


# The way names are drawn, kept with each rendered roll's text: 2 is libass (each line centred,
# shaped, wrapped by the roll); a roll drawn by drawtext (left edges, unjoined Arabic, long lines
# off the frame) kept its text alone.
LAYOUT = "layout 2"


def _rendered_text_path(out: Path) -> Path:
    return out.with_name(out.name + ".txt")  # what a rendered roll shows, kept beside it


def _kept_text(text: str) -> str:
    """What is kept beside a roll rendered from `text`: the way it was drawn, then the text."""
    return f"{LAYOUT}\n{text}"


# What is kept beside a roll taken down (no name): a roll was rendered and must be rendered again.
TAKEN_DOWN = "taken down: it showed a name the credits no longer print"


def roll_needs_rendering(campaign: Campaign, out: Path | None = None) -> bool:
    """A rendered roll no longer shows what the credits print (a donor asked for anonymity, declined
    rewards or was erased after the freeze, or the list was frozen again), or it was drawn the old
    way, or it was taken down for showing a withdrawn name: it must be rendered again. False when
    no roll was rendered."""
    out = out or roll_path()
    if not out.exists():
        return _rendered_text_path(out).exists()  # taken down (take_down)
    try:
        shown = _rendered_text_path(out).read_text(encoding="utf-8")
    except OSError:
        return True  # rendered before the roll kept its text: nobody can tell what it shows
    return shown != _kept_text(roll_text(campaign))


def _shown_names(kept: str) -> Counter:
    """The names a rendered roll shows, from the text kept beside it (headings left aside)."""
    lines = kept.split("\n")
    if lines and lines[0] == LAYOUT:
        lines = lines[1:]
    other = {HEADINGS[s].upper() for s in SECTIONS} | {"Thank you"}
    return Counter(line for line in lines if line.strip() and line not in other)


def take_down(out: Path | None = None) -> None:
    """Remove a rendered roll: the video goes, and the text kept beside it becomes a note without
    any name, by which roll_needs_rendering tells the producers to render it again."""
    out = out or roll_path()
    if not out.exists() and not _rendered_text_path(out).exists():
        return
    out.unlink(missing_ok=True)
    _rendered_text_path(out).write_text(TAKEN_DOWN, encoding="utf-8")
    log.info("credits roll %s taken down: it showed a name withdrawn from the credits", out)


def withdraw_stale_roll(campaign: Campaign, out: Path | None = None) -> bool:
    """Take down a rendered roll that shows a name the credits no longer print (after the freeze:
    a donor who asked for anonymity, declined rewards or was erased). True if it was. The one check
    of a rendered roll against the withdrawals, run before the roll is shown or served and after
    a render (a withdrawal may have come while it rendered)."""
    out = out or roll_path()
    if not _shows_withdrawn(campaign, out):
        return False
    take_down(out)
    return True


def _shows_withdrawn(campaign: Campaign, out: Path) -> bool:
    """Whether the rendered roll at `out` shows a name the credits no longer print."""
    if not out.exists():
        return False
    try:
        kept = _rendered_text_path(out).read_text(encoding="utf-8")
    except OSError:
        return False  # nobody can tell what it shows: it needs rendering, and is not served
    return bool(_shown_names(kept) - Counter(name for _section, name in export_lines(campaign)))


def withdraw_after_settings(user: User) -> None:
    """Receiver of rewards' `donor_settings_applied`: a rendered roll that shows a name the credits
    no longer print (the donor just asked for anonymity, cleared their name or declined rewards)
    is taken down once the change commits (a rollback keeps it)."""
    out = roll_path()
    if _shows_withdrawn(current_campaign(), out):
        on_commit(db.session, lambda: take_down(out))


def erase_from_roll(user: User) -> None:
    """Receiver of rewards' `donor_erasing`: a rendered roll that may show the donor (they have a
    line, live or frozen) is taken down once the erasure commits (a rollback keeps it)."""
    out = roll_path()
    if (out.exists() or _rendered_text_path(out).exists()) and in_credits(user, current_campaign()):
        on_commit(db.session, lambda: take_down(out))


def roll_for_download(campaign: Campaign) -> Path:
    """The rendered roll, while it shows what the credits print. A roll showing a withdrawn name is
    taken down first; one that needs rendering again is not served (ConflictError)."""
    out = roll_path()
    withdraw_stale_roll(campaign, out)
    if roll_needs_rendering(campaign, out):
        raise ConflictError("The rendered roll no longer shows what the credits print: render it again.",
                            code="roll_needs_rendering")
    if not out.exists():
        raise NotFoundError("No credits roll has been rendered.")
    return out


def _font() -> str:
    for path in FONT_CANDIDATES:
        if Path(path).exists():
            return path
    raise ConflictError("No font for the credits roll: install fonts-dejavu-core.", code="no_font")


def roll_text(campaign: Campaign) -> str:
    lines = export_lines(campaign)
    out = []
    for section in SECTIONS:
        names = [n for s, n in lines if s == section]
        if names:
            out += [HEADINGS[section].upper(), "", *names, "", ""]
    return "\n".join(out).rstrip("\n") or "Thank you"


def undrawable(names: list[str]) -> list[tuple[str, list[str]]]:
    """The names with characters that no installed font has, each with those characters' code
    points ("U+31350"): the roll (and most screens) would draw them as empty boxes. The rarest
    CJK ideographs of people's names (Extensions G to I, U+30000 and up) are in no font this
    machine installs by default.
    Only what the roll's own font lacks is asked of fontconfig, once per character per process.
    Without fontconfig nothing can be told: nothing is listed."""
    try:
        own = _font_charset(_font())
    except ConflictError:
        return []
    if not own:
        return []
    found = []
    for name in names:
        missing = dict.fromkeys(c for c in name if not c.isspace() and not _in(own, ord(c)) and not _has_font(c))
        if missing:
            found.append((name, [f"U+{ord(c):04X}" for c in missing]))
    return found


# Pictographs and emoji (and their joiners and variation selectors): libass draws a font's
# outlines, so a colour emoji font (bitmaps) does not draw them; a monochrome one does.
_EMOJI = ((0x1F000, 0x1FAFF), (0x2600, 0x27BF), (0x2B00, 0x2BFF), (0xFE00, 0xFE0F), (0x200D, 0x200D),
          (0xE0020, 0xE007F))


def is_emoji(code_point: str) -> bool:
    """Whether an undrawable character ("U+1F3AC", as undrawable lists it) is an emoji."""
    code = int(code_point.removeprefix("U+"), 16)
    return any(low <= code <= high for low, high in _EMOJI)


def undrawable_in_credits(campaign: Campaign) -> list[tuple[str, list[str]]]:
    """undrawable over the live credits' names, in their order. When the roll's own font draws
    every printable ASCII character, a name of those alone is drawable and is not read: at a
    million donations the check reads the few names beyond ASCII, not every line."""
    try:
        own = _font_charset(_font())
    except ConflictError:
        return []
    plain = bool(own) and all(_in(own, code) for code in range(0x21, 0x7F))
    return undrawable(iter_live_names(campaign, beyond_ascii=plain))


@functools.lru_cache(maxsize=8)
def _font_charset(font_file: str) -> tuple[tuple[int, int], ...]:
    """The code point ranges a font file covers, as fontconfig reads them (empty without it)."""
    try:
        out = subprocess.run(["fc-query", "--index", "0", "--format", "%{charset}", font_file], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    ranges = []
    for part in out.split():
        low, _dash, high = part.partition("-")
        try:
            ranges.append((int(low, 16), int(high or low, 16)))
        except ValueError:
            return ()
    return tuple(ranges)


def _in(ranges: tuple[tuple[int, int], ...], code: int) -> bool:
    index = bisect.bisect_right(ranges, (code, float("inf"))) - 1
    return index >= 0 and ranges[index][0] <= code <= ranges[index][1]


@functools.lru_cache(maxsize=4096)
def _has_font(char: str) -> bool:
    try:
        out = subprocess.run(["fc-list", f":charset={ord(char):x}", "family"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return True  # nothing can be told
    return out.returncode != 0 or bool(out.stdout.strip())


def roll_script(text: str, size: tuple[int, int], speed: int, font: str, font_file: str) -> tuple[str, float]:
    """The roll as an ASS script (written by pysubs2, drawn by libass: media/ffmpeg.credits_roll_argv)
    and its length in seconds: `text`'s lines, each centred, rising at `speed` pixels a second from
    just below the frame until the last one has left it. A name wider than the frame is wrapped
    here (`_rows`), so that its rows are known and given their room.

    One event per line, on screen only while the line is: libass lays out every event shown in a
    frame, and a roll of a thousand names as one event took 14 ms a frame (a quarter of an hour of
    roll, five minutes of rendering; 2.7 s for 20 s of it this way, as drawtext took).

    The names are text, never markup: a brace or a backslash in a name (`{\\b1}`, `\\N`) is
    drawn as written, not read as an ASS override or a line break."""
    import pysubs2  # here: only a render needs them (the CLI's start imports this module)
    from PIL import ImageFont

    w, h = size
    em = max(12, h // 20)  # a twentieth of the frame's height (36 px at 720p)
    row = em * 1.5  # a line of Noto Sans CJK is 1.448 em tall, of DejaVu Sans 1.165
    margin = w // 20
    measure = ImageFont.truetype(font_file, em)
    ascent, descent = ImageFont.truetype(font_file, 1000).getmetrics()
    roll = pysubs2.SSAFile()
    roll.info.update({"PlayResX": str(w), "PlayResY": str(h), "WrapStyle": "2"})  # libass wraps nothing: _rows did
    roll.styles = {"Roll": pysubs2.SSAStyle(
        # An ASS font size is the face's line height (VSFilter's rule), not its em.
        fontname=font, fontsize=round(em * (ascent + descent) / 1000, 1), primarycolor=pysubs2.Color(255, 255, 255),
        outline=0, shadow=0, alignment=pysubs2.Alignment.TOP_CENTER, marginl=margin, marginr=margin, marginv=0)}
    top = 0.0  # the line's distance below the first line's top, in pixels
    for line in text.split("\n"):
        rows = _rows(line, measure.getlength, w - 2 * margin)
        height = row * len(rows)
        if line.strip():
            start = top / speed  # its top at the frame's bottom edge
            shown = (h + height) / speed  # until its bottom has passed the top edge
            roll.append(pysubs2.SSAEvent(
                start=math.floor(start * 1000), end=math.ceil((start + shown) * 1000), style="Roll",
                text=f"{{\\move({w // 2},{h},{w // 2},{-math.ceil(height)},0,{round(shown * 1000)})}}"
                     + r"\N".join(_ass_text(r) for r in rows)))
        top += height
    return roll.to_string("ass"), (h + top) / speed + 1


# Chinese line breaking (GB/T 15834, and what every CJK typesetter does): no row starts with a
# closing mark nor ends with an opening one. These stay with their neighbour.
_CLOSING = set("，。、；：！？）》」』】〕〉…—,.;:!?)]}'\"”’")
_OPENING = set("（《「『【〔〈([{“‘")


def _rows(line: str, width: Callable[[str], float], across: float) -> list[str]:
    """`line` in rows no wider than `across` as `width` measures them: broken at a space, or
    between two ideographs (Chinese has no spaces, and libass breaks only at them), or, for a word
    wider than the frame by itself, between any two characters. Greedy, as a typesetter's first
    pass is; the rows are trimmed."""
    units: list[str] = []  # what may not be broken inside
    for char in line:
        if units and (char in _CLOSING or units[-1][-1] in _OPENING
                      or not (_is_wide(char) or char == " " or units[-1][-1] == " " or _is_wide(units[-1][-1]))):
            units[-1] += char
        else:
            units.append(char)
    rows: list[str] = []
    current = ""
    for unit in units:
        if current and width((current + unit).rstrip()) > across:
            rows.append(current.strip())
            current = unit.lstrip()
        else:
            current += unit
        while width(current.strip()) > across and len(current.strip()) > 1:  # a word wider than the frame
            cut = max(1, max(n for n in range(1, len(current) + 1) if width(current[:n]) <= across or n == 1))
            rows.append(current[:cut].strip())
            current = current[cut:]
    if current.strip() or not rows:
        rows.append(current.strip())
    return rows


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in "WF"


def _ass_text(line: str) -> str:
    """A line as ASS text that libass draws as written. A backslash is followed by a word joiner
    (invisible, joining nothing) so that no `\\N`, `\\h` or override is read in it; braces are
    escaped (libass draws `\\{` as a brace)."""
    return line.replace("\\", "\\\u2060").replace("{", "\\{").replace("}", "\\}")


def render_roll(campaign: Campaign, *, size: tuple[int, int] | None = None, fps: int | None = None,
                speed: int | None = None, out: Path | None = None, on_progress=None) -> Path:
    """A scrolling credits roll (H.264 MP4, white on black) rendered by ffmpeg from the exported
    list, for an editor to drop into the film. Written beside, then renamed into place. Size,
    frame rate and speed default to the app's CREDITS_ROLL (a dict), then 1280x720, 24 fps, 60 px/s.
    `on_progress(fraction)`: called as ffmpeg reports the time it has rendered. The render is
    audited; the caller commits the entry."""
    cfg = current_app.config.get("CREDITS_ROLL") or {}
    size = size or tuple(cfg.get("size", ROLL_SIZE))
    fps = fps or cfg.get("fps", ROLL_FPS)
    speed = speed or cfg.get("speed", ROLL_SPEED)
    if shutil.which(ff.FFMPEG) is None:  # the app's FILMFUND_FFMPEG (media/ffmpeg.configure)
        raise ConflictError("ffmpeg is not installed.", code="no_ffmpeg")
    text = roll_text(campaign)
    font_file = _font()
    script, duration = roll_script(text, size, speed, FONT_CANDIDATES[font_file], font_file)
    out = out or roll_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        script_file = Path(tmp) / "credits.ass"
        script_file.write_text(script, encoding="utf-8")
        part = Path(tmp) / "roll.mp4"
        argv = ff.credits_roll_argv(str(script_file), str(part), size=size, fps=fps, duration=duration)

        def rendered(block: dict[str, str]) -> None:
            try:
                seconds = int(block.get("out_time_us") or 0) / 1e6
            except ValueError:
                return
            if on_progress is not None and seconds > 0:
                on_progress(min(0.99, seconds / duration))

        try:
            ff.run(argv, timeout=600, on_progress=rendered)
        except ff.FfmpegError as exc:
            if "No such filter: 'ass'" in exc.stderr_tail:
                raise ConflictError("This ffmpeg was built without libass, which draws the roll (its `ass` filter): "
                                    "install an ffmpeg built with it (Debian's and Ubuntu's are).",
                                    code="no_libass") from None
            raise ConflictError(f"ffmpeg could not render the roll: {exc.stderr_tail[-500:]}",
                                code="render_failed") from None
        part.replace(out)
    _rendered_text_path(out).write_text(_kept_text(text), encoding="utf-8")
    withdraw_stale_roll(campaign, out)  # a donor withdrawn while it rendered
    record_audit("credits.render", f"campaign:{campaign.slug}", {"seconds": round(duration, 1)})
    return out
