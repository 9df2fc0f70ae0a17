"""The end credits: sections and names (never a legal name or an email), the donor's proof (the
Executive Producer's exact wording), the freeze at picture lock with later changes flagged, the
export in both formats, and the rendered roll (real ffmpeg)."""
from __future__ import annotations

import json
import re
import subprocess
from datetime import timedelta

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from filmfund.audit import AuditEntry
from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.fulfil import credits, tasks
from filmfund.fulfil import roll as roll_video
from filmfund.rewards.models import Pledge
from tests.helpers import make_pledge, spreadsheet_csv
from tests.rewards.conftest import charge_obj, session_obj
from tests.site.helpers import csrf_token, pay


def _user(email):
    from filmfund.auth.services import find_user

    return find_user(email)


def _donors():
    pay(50000, "exec1@example.org", credit_name="Olu Exec")
    pay(100000, "exec2@example.org", credit_name="ada exec")
    pay(100, "zed@example.org", credit_name="Zed Supporter")
    pay(5000, "amy@example.org", credit_name="Amy Supporter")
    pay(5000, "anon@example.org", credit_name="Hidden Name", anonymous=True)
    pay(50000, "optout@example.org", credit_name="Opted Out", rewards_opt_out=True)
    pay(5000, "noname@example.org")


def test_sections_in_order_and_nothing_private(campaign, runner):
    _donors()
    assert [(l.section, l.name) for l in credits.live_lines(campaign)] == [
        ("executive_producers", "ada exec"), ("executive_producers", "Olu Exec"),
        ("supporters", "Amy Supporter"), ("supporters", "Zed Supporter")]
    csv_out = runner.invoke(args=["credits", "export", "--format", "csv"])
    assert csv_out.exit_code == 0, csv_out.output
    assert csv_out.output.splitlines() == ["section,name", "executive_producers,ada exec",
                                           "executive_producers,Olu Exec", "supporters,Amy Supporter",
                                           "supporters,Zed Supporter"]
    txt = runner.invoke(args=["credits", "export"]).output
    assert txt == "Executive Producers\nada exec\nOlu Exec\n\nSupporters\nAmy Supporter\nZed Supporter\n"
    for secret in ("Hidden", "Opted", "@", "noname"):
        assert secret not in txt + csv_out.output


def test_the_donor_approves_the_proof_and_the_executive_producer_its_wording(campaign, client, login_as):
    _donors()
    exec1, zed = _user("exec1@example.org"), _user("zed@example.org")
    page = login_as(client, exec1).get("/account").get_data(as_text=True)
    assert "Confirm your Executive Producer credit" in page
    html = client.get("/account/credits").get_data(as_text=True)
    assert 'id="proof-wording"' in html and "Olu Exec" in html
    tok = csrf_token(client, "/account/credits")
    # An emptied box is refused, not taken as "print my credit name": the box comes back as sent,
    # marked, tied to the message and focused; nothing is approved.
    for lang, said in (("en", "Type your credit as it should be printed (your credit name is Olu Exec)."),
                       ("zh-Hans", "请填写署名要印出的文字（您的署名是 Olu Exec）。")):
        bad = client.post(f"/account/credits?lang={lang}", data={"csrf_token": tok, "decision": "approve",
                                                                 "wording": " \u200b "})
        html = bad.get_data(as_text=True)
        assert bad.status_code == 400 and said in html, html
        box = re.search(r'<input[^>]*id="proof-wording"[^>]*>', html).group(0)
        assert 'value=" \u200b "' in box and 'aria-invalid="true"' in box and "autofocus" in box
        assert "proof-error" in box
        assert credits.line_for(exec1, campaign).proof != "approved"
    resp = client.post("/account/credits", data={"csrf_token": tok, "decision": "approve",
                                                 "wording": "Olu Exec, for the Xinxing families"})
    assert resp.status_code == 303
    assert credits.line_for(exec1, campaign).proof == "approved"
    assert ("executive_producers", "Olu Exec, for the Xinxing families") in credits.export_lines(campaign)
    assert "Confirm your Executive Producer credit" not in client.get("/account").get_data(as_text=True)

    # A supporter approves the line as shown (no wording of their own), or asks for a change.
    other = login_as(client.application.test_client(), zed)
    tok = csrf_token(other, "/account/credits")
    assert 'id="proof-wording"' not in other.get("/account/credits").get_data(as_text=True)
    bad = other.post("/account/credits", data={"csrf_token": tok, "decision": "changes", "note": ""})
    assert bad.status_code == 400 and "say what should change" in bad.get_data(as_text=True).lower()
    # In Chinese, in Chinese; the note is open again, marked, where the donor types it.
    bad = other.post("/account/credits?lang=zh-Hans", data={"csrf_token": tok, "decision": "changes", "note": " "})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "请写下需要修改的地方" in html and "say what" not in html
    assert re.search(r"<details open>.*?id=\"proof-note\"[^>]*aria-invalid=\"true\"", html, re.DOTALL)
    other.post("/account/credits", data={"csrf_token": tok, "decision": "approve", "wording": "Sneaky Wording"})
    assert ("supporters", "Zed Supporter") in credits.export_lines(campaign)
    assert credits.line_for(zed, campaign).proof == "approved"

    # No line, no proof page (an anonymous donor): told why, on the page where that is changed.
    anon = login_as(client.application.test_client(), _user("anon@example.org"))
    resp = anon.get("/account/credits?lang=en")
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/account#settings")
    page = anon.get("/account").get_data(as_text=True)
    assert "Your name is not in the credits: you asked to stay anonymous." in page and 'id="settings"' in page


def test_proofs_mailed_until_the_deadline_then_closed(campaign, client, login_as, producer, outbox):
    _donors()
    credits.approve_proof(_user("amy@example.org"), campaign)
    db.session.commit()
    now = utcnow()
    assert tasks.proof_mailing(campaign, now).sent == 3  # everyone listed who has not approved
    proof_mails = [m for m in outbox() if "credits" in m["Subject"]]
    assert sorted(m["To"] for m in proof_mails) == ["exec1@example.org", "exec2@example.org", "zed@example.org"]
    assert "/rewards/survey/" in proof_mails[0].get_body(("plain",)).get_content()
    assert tasks.proof_mailing(campaign, now + timedelta(days=1)).sent == 0

    staff = login_as(client, producer)
    tok = csrf_token(staff, "/admin/credits")
    yesterday = (now - timedelta(days=1)).strftime("%Y-%m-%d")
    assert staff.post("/admin/credits/deadline", data={"csrf_token": tok, "deadline": yesterday}).status_code == 303
    donor = login_as(client.application.test_client(), _user("zed@example.org"))
    tok = csrf_token(donor, "/account/credits")
    resp = donor.post("/account/credits", data={"csrf_token": tok, "decision": "approve"})
    assert resp.status_code == 400 and "closed" in resp.get_data(as_text=True)
    assert tasks.proof_mailing(campaign, now + timedelta(days=30)).sent == 0


def test_the_deadline_is_the_same_day_in_english_and_in_chinese(campaign, client, login_as, producer, outbox):
    """Saved as a day (its end, UTC), the deadline was moved to Beijing time for a Chinese donor:
    "by December 31, 2026" in English, 2027年1月1日 in Chinese. Both are asked the day given."""
    from filmfund.rewards.donors import profile_for

    _donors()
    profile_for(_user("exec2@example.org").id).language = "zh-Hans"
    db.session.commit()
    now = utcnow()
    day = (now + timedelta(days=40)).date()
    staff = login_as(client, producer)
    tok = csrf_token(staff, "/admin/credits")
    assert staff.post("/admin/credits/deadline", data={"csrf_token": tok, "deadline": day.isoformat()}).status_code == 303
    assert tasks.proof_mailing(campaign, now).sent == 4
    mails = {m["To"]: m.get_body(("plain",)).get_content() for m in outbox() if m["To"].startswith("exec")}
    english = f"{day:%B} {day.day}, {day.year}"
    chinese = f"{day.year}年{day.month}月{day.day}日"
    assert f"Please confirm it by {english}," in mails["exec1@example.org"]
    assert f"请在{chinese}前确认" in mails["exec2@example.org"]
    # The proof page says the same day, in either language.
    donor = login_as(client.application.test_client(), _user("exec2@example.org"))
    assert f"请在{chinese}前回复" in donor.get("/account/credits?lang=zh-Hans").get_data(as_text=True)
    assert f"Please answer by {english}:" in donor.get("/account/credits?lang=en").get_data(as_text=True)


def test_frozen_credits_in_both_formats_and_later_changes_flagged(campaign, client, login_as, producer, runner,
                                                                 stripe_events):
    _donors()
    late = make_pledge(amount=50000, email="late@example.org", credit_name="Late Exec")
    staff = login_as(client, producer)
    tok = csrf_token(staff, "/admin/credits")
    assert staff.post("/admin/credits/freeze", data={"csrf_token": tok}).status_code == 303  # unconfirmed
    assert credits.frozen_lines(campaign) is None
    assert staff.post("/admin/credits/freeze", data={"csrf_token": tok, "confirm": "1"}).status_code == 303
    frozen_csv = ["section,name", "executive_producers,ada exec", "executive_producers,Olu Exec",
                  "supporters,Amy Supporter", "supporters,Zed Supporter"]
    frozen_txt = "Executive Producers\nada exec\nOlu Exec\n\nSupporters\nAmy Supporter\nZed Supporter\n"
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "credits.freeze"))
    assert entry.actor == f"user:{producer.id}" and json.loads(entry.details)["lines"] == 4

    # After picture lock: a new Executive Producer pays, a supporter is refunded.
    stripe_events.send("checkout.session.completed", session_obj(late.id, 50000, email="late@example.org"))
    zed_pledge = db.session.scalar(sa.select(Pledge).where(Pledge.email == "zed@example.org"))
    stripe_events.send("charge.refunded", charge_obj(f"pi_test_local_{zed_pledge.id}", 100, 100))
    changes = credits.changes_since_freeze(campaign)
    assert changes == {"added": [("executive_producers", "Late Exec")], "removed": [("supporters", "Zed Supporter")],
                       "withdrawn": []}

    csv_out = runner.invoke(args=["credits", "export", "--format", "csv"])
    assert csv_out.exit_code == 0 and csv_out.stdout.splitlines() == frozen_csv
    assert "changed since the freeze" in csv_out.stderr
    txt = runner.invoke(args=["credits", "export", "--format", "txt"])
    assert txt.stdout == frozen_txt
    assert spreadsheet_csv(staff.get("/admin/credits.csv")).splitlines() == frozen_csv  # the command's has no mark
    assert staff.get("/admin/credits.txt").get_data(as_text=True) == frozen_txt
    page = staff.get("/admin/credits").get_data(as_text=True)
    assert 'id="credits-changed"' in page and "added: Late Exec" in page and "removed: Zed Supporter" in page
    # Frozen: no more proofs.
    donor = login_as(client.application.test_client(), _user("amy@example.org"))
    tok2 = csrf_token(donor, "/account/credits")
    assert donor.post("/account/credits", data={"csrf_token": tok2, "decision": "approve"}).status_code == 400

    # Freezing again accepts the changes.
    staff.post("/admin/credits/freeze", data={"csrf_token": tok, "confirm": "1"})
    assert credits.changes_since_freeze(campaign) == {"added": [], "removed": [], "withdrawn": []}
    assert ("executive_producers", "Late Exec") in credits.export_lines(campaign)


def test_after_the_freeze_a_donor_is_shown_what_the_film_prints_not_a_new_name(campaign, client, login_as):
    """Picture lock: a donor who renames herself is told the film still prints the frozen name,
    which the producers decide on; a donor who first gave after the freeze is told why she is not
    listed (not "you are anonymous")."""
    _donors()
    credits.freeze(campaign, "cli")
    db.session.commit()
    amy = login_as(client, _user("amy@example.org"))
    resp = amy.post("/account/settings?lang=zh-Hans", data={"csrf_token": csrf_token(amy, "/account"),
                                                            "form": "credits", "credit_name": "Amy 艾米"},
                    follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert "您的新署名会转给制片方" in html  # saved, and told it is not the film's yet
    assert "片尾字幕中显示的是“Amy Supporter”" in html and "“Amy 艾米”已转给制片方" in html
    page = amy.get("/account/credits?lang=en").get_data(as_text=True)
    assert re.search(r'id="proof-line"><strong>Amy Supporter<', page)  # the frozen line, not the new name
    assert 'id="proof-waiting"' in page and "“Amy 艾米” is with the producers" in page
    assert ("supporters", "Amy Supporter") in credits.export_lines(campaign)  # what the page said

    pay(5000, "late@example.org", credit_name="Late Comer")
    late = login_as(client.application.test_client(), _user("late@example.org"))
    page = late.get("/account?lang=en").get_data(as_text=True)
    assert "“Late Comer” is with the producers" in page and "You are anonymous" not in page
    assert late.get("/account/credits?lang=en").status_code == 200  # told there, not sent to the settings

    # Nothing renamed: no such note.
    zed = login_as(client.application.test_client(), _user("zed@example.org"))
    assert "is with the producers" not in zed.get("/account?lang=en").get_data(as_text=True)


def test_rendered_credits_roll_is_a_real_video(campaign, tmp_path):
    _donors()
    credits.freeze(campaign, "cli")
    db.session.commit()
    out = roll_video.render_roll(campaign, size=(320, 180), fps=5, speed=400, out=tmp_path / "roll.mp4")
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(out)],
        capture_output=True, text=True, check=True).stdout)
    video = probe["streams"][0]
    assert video["codec_name"] == "h264" and (video["width"], video["height"]) == (320, 180)
    assert video["pix_fmt"] == "yuv420p" and float(probe["format"]["duration"]) > 0.5
    assert "ADA EXEC" not in roll_video.roll_text(campaign) and "EXECUTIVE PRODUCERS" in roll_video.roll_text(campaign)
    assert "ada exec" in roll_video.roll_text(campaign)


def test_a_roll_drawn_the_old_way_is_to_be_rendered_again(campaign, tmp_path):
    """A roll rendered before libass drew it (names on one left edge, long ones off the frame) kept
    its text alone: it is flagged, though its names are the credits' own."""
    _donors()
    out = roll_video.render_roll(campaign, size=(160, 90), fps=5, speed=600, out=tmp_path / "roll.mp4")
    assert not roll_video.roll_needs_rendering(campaign, out)
    kept = out.with_name(out.name + ".txt")
    kept.write_text(roll_video.roll_text(campaign), encoding="utf-8")  # as the drawtext roll kept it
    assert roll_video.roll_needs_rendering(campaign, out)


def test_the_roll_reports_its_progress_as_ffmpeg_renders_it(app, campaign, tmp_path, monkeypatch):
    """ffmpeg reads the roll's frames at 20x real time here: a quiet machine renders this small
    roll within one progress period otherwise, and there would be nothing to see between."""
    paced = tmp_path / "ffmpeg-paced"
    paced.write_text('#!/bin/sh\nexec ffmpeg -readrate 20 "$@"\n')
    paced.chmod(0o755)
    from filmfund.media import ffmpeg as ff

    monkeypatch.setattr(ff, "FFMPEG", str(paced))
    _donors()
    seen = []
    roll_video.render_roll(campaign, size=(320, 180), fps=25, speed=10, out=tmp_path / "roll.mp4", on_progress=seen.append)
    assert len(seen) >= 2 and seen == sorted(seen) and 0 < seen[0] < seen[-1] < 1, seen


def test_an_ffmpeg_without_libass_is_named_as_the_reason(campaign, tmp_path, monkeypatch):
    """An ffmpeg built without libass cannot draw the roll: the producer is told that, not shown
    ffmpeg's last lines. (Debian's has libass: a build without it is stood in for by a script
    that answers as such a build does.)"""
    import pytest

    from filmfund.errors import ConflictError
    from filmfund.media import ffmpeg as ff

    without = tmp_path / "ffmpeg-without-libass"
    without.write_text("#!/bin/sh\necho \"[AVFilterGraph @ 0x5] No such filter: 'ass'\" >&2\nexit 1\n")
    without.chmod(0o755)
    monkeypatch.setattr(ff, "FFMPEG", str(without))
    with pytest.raises(ConflictError) as refused:
        roll_video.render_roll(campaign, size=(320, 180), fps=5, speed=400, out=tmp_path / "roll.mp4")
    assert refused.value.code == "no_libass" and "libass" in refused.value.message
    assert not (tmp_path / "roll.mp4").exists()


def test_the_roll_draws_chinese_names_with_a_font_that_has_them(campaign, tmp_path):
    """Many of this film's donors write their names in Chinese: the roll's font must hold those
    glyphs (DejaVu draws boxes). `make install` brings fonts-noto-cjk; fontconfig says which
    installed fonts cover Chinese."""
    zh_fonts = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True,
                              check=True).stdout
    assert roll_video._font() + ":" in zh_fonts
    pay(5000, "wang@example.org", credit_name="王小明")
    assert "王小明" in roll_video.roll_text(campaign)
    out = roll_video.render_roll(campaign, size=(320, 180), fps=5, speed=400, out=tmp_path / "roll.mp4")
    assert out.stat().st_size > 0


def test_the_roll_draws_a_pasted_name_as_typed_and_a_compatibility_ideograph_as_written(campaign, tmp_path):
    """ffmpeg's drawtext draws code points one by one: a name pasted decomposed (e and a combining
    accent, as macOS file names hold it) would show its accents beside the letters. It is stored
    composed; a CJK compatibility ideograph (U+FA30) is kept, not swapped for its unified form."""
    pay(5000, "jose@example.org", credit_name="Jose\u0301 Nguye\u0302\u0303n")
    pay(5000, "kim@example.org", credit_name="\ufa30\u5b50")
    text = roll_video.roll_text(campaign)
    assert "Jos\u00e9 Nguy\u1ec5n" in text and "\u0301" not in text
    assert "\ufa30\u5b50" in text and "\u4fae" not in text


def _frame(video, at: float, size: tuple[int, int]) -> list[bytes]:
    """The frame at `at` seconds, as rows of 8-bit grey pixels."""
    w, h = size
    raw = subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{at}", "-i", str(video), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    assert len(raw) == w * h
    return [raw[y * w:(y + 1) * w] for y in range(h)]


def _bands(rows: list[bytes]) -> list[tuple[int, int, int, int]]:
    """Each line drawn: a run of rows holding drawn pixels, a gap of one or two rows (under a
    descender) inside it: (top, bottom, leftmost, rightmost)."""
    found: list[list[int]] = []
    for y, row in enumerate(rows):
        lit = [x for x, v in enumerate(row) if v > 64]
        if not lit:
            continue
        if found and y - found[-1][1] <= 3:
            band = found[-1]
            band[1], band[2], band[3] = y, min(band[2], lit[0]), max(band[3], lit[-1])
        else:
            found.append([y, y, lit[0], lit[-1]])
    return [tuple(band) for band in found]


def test_each_name_of_the_roll_is_centred_and_drawn_as_written(app, tmp_path):
    """The roll (libass through media/ffmpeg.credits_roll_argv) centres every line, not the block
    as drawtext did, and a name is text: ASS markup in one (a font size, a line break) is drawn as
    written, so it neither enlarges its line nor splits it."""
    size, speed = (480, 270), 60
    long = "In memory of my grandmother, who taught me to read the names of the missing aloud"
    # Chinese has no spaces, and libass breaks lines only at them: the roll breaks it between two
    # ideographs itself, never before a closing mark (no row may start with "，").
    dedication = "献给我的女儿小雨，她于二零零八年在广州走失。我们从未停止寻找，也永远不会停止寻找。"
    names = ["Amy", "Bartholomew Montgomery-Smythe", "{\\fs200}Cy", "Eve\\NLi", long, dedication, "王小明"]
    script, duration = roll_video.roll_script("\n".join(names), size, speed, "Noto Sans CJK SC", roll_video._font())
    roll = tmp_path / "roll.mp4"
    with app.app_context():
        from filmfund.media import ffmpeg as ff

        ff.configure(app.config)
        (tmp_path / "roll.ass").write_text(script, encoding="utf-8")
        ff.run(ff.credits_roll_argv(str(tmp_path / "roll.ass"), str(roll), size=size, fps=10, duration=duration),
               timeout=120)
    bands = _bands(_frame(roll, 3.0, size))  # the block's top at 270 - 180 = 90 px: every line in the frame
    font_size = size[1] // 20
    # One line per name (no \N read as a break), but the two long ones, wrapped into two rows
    # each: given the room of two, they overlap no neighbour.
    assert len(bands) == len(names) + 2, bands
    for top, bottom, left, right in bands:
        assert bottom - top < 2 * font_size, bands  # no {\fs200} read as a font size
        # Each line centred on its own (within half an em: a Chinese full stop's ink is at the left
        # of its square, so a row ending with one looks a few pixels off by its ink).
        assert abs((left + right) / 2 - size[0] / 2) <= font_size / 2, bands
    widths = [right - left for _t, _b, left, right in bands]
    assert max(widths) <= size[0] * 0.9  # within the margins
    assert widths[1] > 3 * widths[0]  # the names differ in width: centring each is not a left edge shared


def test_a_long_line_is_broken_as_its_script_breaks():
    """Rows no wider than the frame: Latin at its spaces, Chinese between two ideographs but never
    before a closing mark nor after an opening one, a word wider than the frame inside it."""
    from filmfund.fulfil.roll import _rows

    def width(text: str) -> float:  # a monospaced measure: an ideograph 2, anything else 1
        return sum(2 if "\u4e00" <= c <= "\u9fff" or c in "，。（）" else 1 for c in text)

    assert _rows("Amy Lee", width, 10) == ["Amy Lee"]
    assert _rows("In memory of Li Xiuying", width, 12) == ["In memory of", "Li Xiuying"]
    assert _rows("王小明李小龙，谢谢", width, 12) == ["王小明李小", "龙，谢谢"]  # no row starts with the comma
    assert _rows("谢谢（王小明）", width, 6) == ["谢谢", "（王小", "明）"]  # "（" with what it opens
    assert _rows("x" * 25, width, 10) == ["x" * 10, "x" * 10, "x" * 5]
    assert _rows("", width, 10) == [""]


def test_the_credits_page_names_the_characters_no_installed_font_draws(campaign, client, login_as, producer):
    """The rarest ideographs of a name (CJK Extension H, Unicode 15) are in no font this machine
    installs: the roll would show empty boxes. The producer is told which names, and which
    characters, before the roll goes into the film; Chinese, Arabic and accented names are drawn."""
    rare = "\U00031350"
    found = subprocess.run(["fc-list", f":charset={ord(rare):x}", "family"], capture_output=True, text=True).stdout
    if found.strip():
        import pytest

        pytest.skip(f"this machine has a font with U+31350: {found.strip()}")
    pay(5000, "wang@example.org", credit_name=f"王{rare}明")
    pay(5000, "reza@example.org", credit_name="محمد رضا")
    pay(5000, "jose@example.org", credit_name="José Nguyễn")
    pay(5000, "li@example.org", credit_name="李小龙")
    login_as(client, producer)
    page = client.get("/admin/credits").get_data(as_text=True)
    warning = page[page.index('id="roll-undrawable"'):]
    warning = warning[:warning.index("</div>")]
    assert f"<bdi>王{rare}明</bdi>: U+31350" in warning
    assert all(name not in warning for name in ("محمد رضا", "José Nguyễn", "李小龙"))
    assert 'id="roll-emoji"' not in warning  # no emoji among them: no advice about emoji
    assert roll_video.undrawable(["Amy", "李小龙", "محمد رضا"]) == []


def test_emoji_in_a_name_get_their_own_advice(campaign, client, login_as, producer):
    """libass draws outlines: a colour emoji font would not draw 🎬 on the roll, and the advice for
    rare ideographs (a CJK font) would not either."""
    emoji = "\U0001F3AC"
    if subprocess.run(["fc-list", f":charset={ord(emoji):x}", "family"], capture_output=True, text=True).stdout.strip():
        import pytest

        pytest.skip("this machine has a font that draws U+1F3AC")
    pay(5000, "lily@example.org", credit_name=f"{emoji} Lily 莉莉")
    login_as(client, producer)
    page = client.get("/admin/credits").get_data(as_text=True)
    assert f"<bdi>{emoji} Lily 莉莉</bdi>: U+1F3AC" in page and 'id="roll-emoji"' in page
    assert roll_video.is_emoji("U+1F3AC") and roll_video.is_emoji("U+200D") and not roll_video.is_emoji("U+31350")


def test_producer_renders_the_roll_through_the_queue_and_downloads_it(app, campaign, client, login_as, producer):
    from filmfund import jobs

    app.config["CREDITS_ROLL"] = {"size": (320, 180), "fps": 5, "speed": 400}
    _donors()
    staff = login_as(client, producer)
    assert staff.get("/admin/credits/roll.mp4").status_code == 404
    tok = csrf_token(staff, "/admin/credits")
    assert staff.get("/admin/credits/roll.json").get_json()["status"] == "none"
    assert staff.post("/admin/credits/roll", data={"csrf_token": tok}).status_code == 303
    waiting = staff.get("/admin/credits/roll.json").get_json()
    assert waiting["status"] == "queued" and waiting["download_url"] is None
    assert 'data-status="queued"' in staff.get("/admin/credits").get_data(as_text=True)
    assert jobs.run_burst() >= 1
    done = staff.get("/admin/credits/roll.json").get_json()
    assert done["status"] == "succeeded" and done["progress"] == 1 and done["download_url"] == "/admin/credits/roll.mp4"
    resp = staff.get("/admin/credits/roll.mp4")
    assert resp.status_code == 200 and resp.mimetype == "video/mp4"
    assert resp.get_data()[4:8] == b"ftyp"
    assert "Download the rendered roll" in staff.get("/admin/credits").get_data(as_text=True)
    resp.close()


def test_credits_follow_the_donor_profile_and_a_name_change_needs_a_new_proof(campaign, runner, stripe_events):
    """Names, anonymity and rewards come from the donor's profile: a later gift asking for something
    else changes nothing; a change the donor makes makes an approved proof stale, and after the
    freeze it is flagged."""
    from filmfund.rewards import donors

    _donors()
    exec1 = _user("exec1@example.org")
    credits.approve_proof(exec1, campaign, wording="Olu Exec and family")
    db.session.commit()
    pay(100, "exec1@example.org", credit_name="Someone Else")  # a later gift asks another name: no change
    assert credits.line_for(exec1, campaign).name == "Olu Exec and family"
    credits.freeze(campaign, "cli")
    db.session.commit()
    donors.update_donor_settings(exec1, via="account", credit_name="Olu E.")
    db.session.commit()
    line = credits.line_for(exec1, campaign)
    assert (line.proof, line.name) == ("stale", "Olu E.")
    assert credits.changes_since_freeze(campaign) == {
        "added": [("executive_producers", "Olu E.")], "removed": [("executive_producers", "Olu Exec and family")],
        "withdrawn": []}
    # privacy beats the picture lock: anonymity after the freeze takes the line out of the frozen list
    donors.update_donor_settings(_user("amy@example.org"), via="account", anonymous=True)
    db.session.commit()
    assert credits.changes_since_freeze(campaign)["withdrawn"] == [("supporters", "Amy Supporter")]
    out = runner.invoke(args=["credits", "export"])
    assert "Olu Exec and family" in out.stdout and "Amy Supporter" not in out.stdout  # the frozen list, less Amy
    assert "anonymity" in out.stderr


def test_the_live_credits_text_is_streamed_and_reads_as_the_commands(campaign, runner, client, login_as, producer):
    """credits.txt is written a chunk of the live list at a time (at a million it was built whole:
    61 MiB): the page's download, streamed, is the command's text."""
    _donors()
    response = login_as(client, producer).get("/admin/credits.txt")
    assert response.is_streamed and response.mimetype == "text/plain"
    assert response.headers["Content-Disposition"] == 'attachment; filename="credits.txt"'
    assert response.get_data(as_text=True) == runner.invoke(args=["credits", "export"]).output == (
        "Executive Producers\nada exec\nOlu Exec\n\nSupporters\nAmy Supporter\nZed Supporter\n")


@given(st.lists(st.tuples(st.sampled_from(credits.SECTIONS), st.text("Aé王 ", min_size=1, max_size=5)), max_size=12),
       st.lists(st.integers(min_value=0, max_value=12), max_size=4))
def test_the_text_in_pieces_is_the_text_whole(lines, cuts):
    """However the live list's chunks fall (between sections or inside one), the pieces make the
    text that the whole list makes: each heading once, before its names, a blank line between."""
    lines = sorted(lines, key=lambda line: credits.SECTIONS.index(line[0]))
    bounds = [0, *sorted(min(c, len(lines)) for c in cuts), len(lines)]
    parts = [lines[a:b] for a, b in zip(bounds, bounds[1:])]
    blocks = ["\n".join([credits.HEADINGS[s], *(n for t, n in lines if t == s)])
              for s in credits.SECTIONS if any(t == s for t, _ in lines)]
    expected = "\n\n".join(blocks) + ("\n" if blocks else "")
    assert "".join(credits._txt_pieces(parts)) == expected == credits.render_txt(lines)
