"""Captions (issue 15 item 3): PUT/GET per language (WebVTT or SRT, read by webvtt-py and
pysubs2), sanitised as Markdown is, a status per language, and donors' signed, expiring,
entitlement-checked links in GET /api/v1/library, with <track>s on the library's player."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest
import webvtt

ZH = """WEBVTT

STYLE
::cue { background-image: url(https://tracker.example/p.png) }

1
00:00:00.000 --> 00:00:00.900 line:0
<v 李老师>我们在村里拍了三天。</v>

2
00:00:01.000 --> 00:00:01.900
<i>第二句</i> <script>alert(1)</script> <img src=x onerror=alert(2)> &
"""

EN_SRT = """1
00:00:00,000 --> 00:00:00,900
We filmed in the village <b>for three days</b>.

2
00:00:01,000 --> 00:00:01,900
<font color="red">Second</font> line <iframe src=javascript:alert(3)></iframe>
"""


@pytest.fixture
def producer(make_user, token_for):
    return token_for(make_user(role="producer"))


def _put(client, headers, asset, lang, body, ctype="text/vtt", **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return client.put(f"/api/v1/media/assets/{asset.public_id}/captions/{lang}" + (f"?{qs}" if qs else ""),
                      data=body.encode() if isinstance(body, str) else body, headers={**headers, "Content-Type": ctype})


def test_put_vtt_and_srt_get_sanitised_webvtt(app, client, producer, ready_asset):
    asset = ready_asset("Village interview")
    assert _put(client, producer, asset, "zh-hans", ZH).status_code == 204
    assert _put(client, producer, asset, "en", EN_SRT, "application/x-subrip").status_code == 204

    zh = client.get(f"/api/v1/media/assets/{asset.public_id}/captions/zh-Hans", headers=producer)
    assert zh.status_code == 200 and zh.mimetype == "text/vtt" and zh.headers["Content-Language"] == "zh-Hans"
    text = zh.get_data(as_text=True)
    cues = webvtt.from_string(text).captions  # what is served parses again
    assert [c.start for c in cues] == ["00:00:00.000", "00:00:01.000"]
    assert "<v 李老师>我们在村里拍了三天。</v>" in text and "<i>第二句</i>" in text
    for bad in ("<script", "<img", "onerror", "STYLE", "url(", "line:0"):
        assert bad not in text
    assert "alert(1)" in text and " &amp;" in text  # the words stay, as text

    en = client.get(f"/api/v1/media/assets/{asset.public_id}/captions/en", headers=producer).get_data(as_text=True)
    assert en.startswith("WEBVTT") and "<b>for three days</b>" in en
    assert "<font" not in en and "<iframe" not in en and "javascript" not in en
    assert [c.text for c in webvtt.from_string(en).captions][1].startswith("Second line")


@pytest.mark.parametrize("body,ctype,code,status", [
    ("", "text/vtt", "invalid_captions", 400),
    ("WEBVTT\n\n00:00:02.000 --> 00:00:01.000\nbackwards\n", "text/vtt", "invalid_captions", 400),
    ("WEBVTT\n\n00:10:00.000 --> 00:10:01.000\nlong after the clip\n", "text/vtt", "invalid_captions", 400),
    ("not captions at all", "text/vtt", "invalid_captions", 400),
    ("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nhi\n", "application/json", "unsupported_media_type", 415),
    (b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n\xff\xfe\n", "text/vtt", "invalid_captions", 400),
    ("WEBVTT\n\n" + "00:00:00.000 --> 00:00:01.000\n" + "x" * 600_000 + "\n", "text/vtt", "too_large", 413),
])
def test_refused_captions_say_why_and_keep_what_was_there(app, client, producer, ready_asset, body, ctype, code, status):
    asset = ready_asset()
    assert _put(client, producer, asset, "en", EN_SRT, "application/x-subrip").status_code == 204
    before = client.get(f"/api/v1/media/assets/{asset.public_id}/captions/en", headers=producer).data
    resp = _put(client, producer, asset, "en", body, ctype)
    assert resp.status_code == status and resp.get_json()["error"]["code"] == code, resp.get_json()
    assert client.get(f"/api/v1/media/assets/{asset.public_id}/captions/en", headers=producer).data == before


def test_language_tags_are_bcp47_and_roles_are_checked(app, client, producer, ready_asset, make_user, token_for):
    asset = ready_asset()
    resp = _put(client, producer, asset, "klingon!", ZH)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_language"
    assert _put(client, producer, asset, "xx", ZH).get_json()["error"]["code"] == "invalid_language"
    assert _put(client, producer, asset, "EN-gb", EN_SRT, "application/x-subrip").status_code == 204
    assert client.get(f"/api/v1/media/assets/{asset.public_id}/captions/en-GB", headers=producer).status_code == 200
    missing = client.get(f"/api/v1/media/assets/{asset.public_id}/captions/fr", headers=producer)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    donor = token_for(make_user(role="donor"))
    assert _put(client, donor, asset, "en", EN_SRT, "application/x-subrip").status_code == 403
    assert client.get(f"/api/v1/media/assets/{asset.public_id}/captions/en-GB", headers=donor).status_code == 403


def test_a_refusal_reads_in_chinese(app, client, producer, ready_asset):
    asset = ready_asset()
    resp = client.put(f"/api/v1/media/assets/{asset.public_id}/captions/en?lang=zh-Hans", data=b"",
                      headers={**producer, "Content-Type": "text/vtt", "Accept-Language": "zh-Hans"})
    assert resp.status_code == 400
    assert any("\u4e00" <= ch <= "\u9fff" for ch in resp.get_json()["error"]["message"])


def test_status_draft_stays_with_producers_and_each_save_is_audited(app, client, producer, ready_asset):
    import sqlalchemy as sa

    from filmfund.audit import AuditEntry
    from filmfund.extensions import db
    from filmfund.media import captions

    asset = ready_asset()
    assert _put(client, producer, asset, "en", EN_SRT, "application/x-subrip", status="draft",
                translated_from="zh-Hans").status_code == 204
    db.session.expire_all()
    [row] = asset.captions
    assert row.status.value == "draft" and row.translated_from == "zh-Hans" and row.cues == 2
    assert [(s["lang"], s["status"]) for s in captions.statuses(asset)] == [("zh-Hans", "missing"), ("en", "draft")]
    assert captions.final(asset) == []
    entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "media.captions")).all()
    assert len(entries) == 1 and '"lang": "en"' in entries[0].details
    assert _put(client, producer, asset, "en", EN_SRT, "application/x-subrip", status="bogus").status_code == 400


def _publish(client, headers, asset, reward="digital-download"):
    resp = client.post(f"/api/v1/media/assets/{asset.public_id}/publish", json={"reward": reward}, headers=headers)
    assert resp.status_code in (200, 201), resp.get_json()


def test_library_offers_final_captions_signed_expiring_and_entitlement_checked(
        app, client, producer, ready_asset, campaign_reward, entitle, make_user, token_for, login_as):
    asset = ready_asset("Village interview")
    _publish(client, producer, asset)
    assert _put(client, producer, asset, "en", EN_SRT, "application/x-subrip").status_code == 204
    assert _put(client, producer, asset, "zh-Hans", ZH).status_code == 204
    assert _put(client, producer, asset, "fr", EN_SRT, "application/x-subrip", status="draft").status_code == 204
    donor, stranger = make_user(role="donor"), make_user(role="donor")
    entitle(donor, campaign_reward["digital-download"], "fulfilled")

    [item] = client.get("/api/v1/library", headers=token_for(donor)).get_json()["items"]
    assert [c["lang"] for c in item["captions"]] == ["zh-Hans", "en"]  # Chinese first; the draft is not offered
    zh_link = urlparse(item["captions"][0]["url"]).path
    got = client.get(zh_link)
    assert got.status_code == 200 and got.mimetype == "text/vtt" and "我们在村里拍了三天" in got.get_data(as_text=True)
    assert got.headers["Cache-Control"] == "private, no-store"
    assert client.get(zh_link[:-3] + "AAA").status_code == 403

    other = app.test_client()
    login_as(other, stranger)
    assert other.get(zh_link).status_code == 403                                        # bound to its donor
    assert other.get(f"/library/{asset.public_id}/captions/en.vtt").status_code == 404  # not entitled

    from itsdangerous import TimestampSigner

    real = TimestampSigner.get_timestamp
    try:
        TimestampSigner.get_timestamp = lambda self: real(self) + 301
        expired = client.get(zh_link)
        assert expired.status_code == 403 and "expired" in expired.get_data(as_text=True)
    finally:
        TimestampSigner.get_timestamp = real

    # The player's <track>s on the donor's account page, both languages.
    login_as(client, donor)
    page = client.get("/account?lang=en").get_data(as_text=True)
    assert f'srclang="zh-Hans" label="中文" src="http://localhost/library/{asset.public_id}/captions/zh-Hans.vtt"' in page
    assert 'srclang="en" label="English"' in page and 'srclang="fr"' not in page
    assert client.get(f"/library/{asset.public_id}/captions/zh-Hans.vtt").status_code == 200
    assert client.get(f"/library/{asset.public_id}/captions/fr.vtt").status_code == 404

    # Revoked: the links stop working.
    from filmfund.extensions import db
    from filmfund.rewards.models import Entitlement, EntitlementStatus

    db.session.query(Entitlement).update({"status": EntitlementStatus.REVOKED})
    db.session.commit()
    assert client.get(zh_link).status_code == 403
    assert client.get(f"/library/{asset.public_id}/captions/zh-Hans.vtt").status_code == 404


def test_sanitiser_keeps_only_harmless_webvtt_tags():
    from filmfund.media.captions import sanitize

    assert sanitize("<b>a</b> <i>b</i> <u>c</u> <c.yellow.bg_blue>d</c> <ruby>漢<rt>kan</rt></ruby>") == \
        "<b>a</b> <i>b</i> <u>c</u> <c.yellow.bg_blue>d</c> <ruby>漢<rt>kan</rt></ruby>"
    assert sanitize('<v.loud Mary "x" onclick=1>hi</v>') == "<v.loud Mary x onclick1>hi</v>"
    assert sanitize("<lang zh-hans>你好</lang> <lang javascript:x>y</lang>") == "<lang zh-Hans>你好</lang> y</lang>"
    assert sanitize("<00:00:01.500>later") == "<00:00:01.500>later"
    assert sanitize('<script>alert(1)</script><img src=x onerror="alert(2)"><svg onload=alert(3)>') == "alert(1)"
    assert sanitize("a < b & c > d &amp; &lt;ok&gt; &#x4e2d;") == "a &lt; b &amp; c &gt; d &amp; &lt;ok&gt; &#x4e2d;"
    assert sanitize("x --> y") == "x --&gt; y"


def test_the_asset_page_adds_edits_and_refuses_captions_keeping_what_was_typed(app, client, make_user, login_as,
                                                                                ready_asset):
    import io
    import re

    asset = ready_asset("Village interview")
    login_as(client, make_user(role="producer"))
    page = client.get(f"/footage/{asset.public_id}").get_data(as_text=True)
    assert 'data-lang="zh-Hans" data-status="missing"' in page and 'data-lang="en" data-status="missing"' in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    resp = client.post(f"/footage/{asset.public_id}/captions", data={
        "csrf_token": token, "lang": "en", "status": "draft", "translated_from": "zh-Hans",
        "file": (io.BytesIO(EN_SRT.encode()), "interview.en.srt")}, content_type="multipart/form-data")
    assert resp.status_code == 303
    page = client.get(f"/footage/{asset.public_id}").get_data(as_text=True)
    assert 'data-lang="en" data-status="draft"' in page and "translated from zh-Hans" in page

    bad = "WEBVTT\n\n00:00:02.000 --> 00:00:01.000\n我写了很久的字幕\n"
    resp = client.post(f"/footage/{asset.public_id}/captions", data={"csrf_token": token, "lang": "zh-Hans",
                                                                    "text": bad, "status": "final"})
    assert resp.status_code == 400
    text = resp.get_data(as_text=True)
    assert "Caption 1 ends before it starts." in text and "我写了很久的字幕" in text  # nothing typed is lost
    assert 'data-lang="zh-Hans" data-status="missing"' in text

    resp = client.post(f"/footage/{asset.public_id}/captions", data={"csrf_token": token, "lang": "zh-Hans",
                                                                    "text": ZH, "status": "final"})
    assert resp.status_code == 303
    vtt = client.get(f"/footage/{asset.public_id}/captions/zh-Hans.vtt")
    assert vtt.status_code == 200 and "<script" not in vtt.get_data(as_text=True)
    assert client.post(f"/footage/{asset.public_id}/captions", data={"lang": "en", "text": ZH}).status_code == 400
    assert client.post(f"/footage/{asset.public_id}/captions/en/delete", data={"csrf_token": token}).status_code == 303
    page = client.get(f"/footage/{asset.public_id}").get_data(as_text=True)
    assert 'data-lang="en" data-status="missing"' in page and 'data-lang="zh-Hans" data-status="final"' in page


def _gray_frame(path, at: float = 1.0) -> bytes:
    import subprocess

    return subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-ss", str(at), "-i", str(path), "-frames:v", "1",
                           "-f", "rawvideo", "-pix_fmt", "gray", "-"], check=True, capture_output=True).stdout


def _mean_diff(a: bytes, b: bytes, rows: range, width: int) -> float:
    total = sum(abs(a[r * width + c] - b[r * width + c]) for r in rows for c in range(width))
    return total / (len(rows) * width)


def test_burned_donor_copy_draws_the_captions_and_has_no_subtitle_stream(app, runner, clips, drain, client, make_user,
                                                                          token_for, campaign_reward, entitle,
                                                                          login_as, tmp_path):
    from filmfund.extensions import db
    from filmfund.media import ffmpeg, services
    from filmfund.media.models import AssetState

    [result] = services.ingest_paths([clips / "small.mp4"])
    db.session.commit()
    drain()
    asset = result.asset
    producer = token_for(make_user(role="producer"))
    _publish(client, producer, asset)
    drain()  # the web rendition (the clean donor copy)
    db.session.expire_all()
    assert asset.state == AssetState.READY and asset.rendition("web") is not None
    big = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n我们在村里拍了三天\n"
    assert _put(client, producer, asset, "zh-Hans", big).status_code == 204

    out = runner.invoke(args=["media", "burn", asset.public_id, "--lang", "zh-Hans"])
    assert out.exit_code == 0, out.output
    db.session.expire_all()
    [caption] = asset.captions
    assert caption.burn_state == "ready" and caption.burned_size > 0
    store = services.storage()
    with store.local_path(asset.rendition("web").storage_key, tmp_path / "a") as clean, \
            store.local_path(caption.burned_key, tmp_path / "b") as burned:
        streams = ffmpeg.probe(str(burned))["streams"]
        assert [s["codec_type"] for s in streams] == ["video", "audio"]  # no subtitle stream
        info = ffmpeg.summarize(ffmpeg.probe(str(burned)))
        width, height = info.width, info.height
        a, b = _gray_frame(clean), _gray_frame(burned)
    assert len(a) == len(b) == width * height
    caption_rows = range(int(height * 0.7), height)
    top_rows = range(0, int(height * 0.3))
    assert _mean_diff(a, b, caption_rows, width) > 4 * max(1.0, _mean_diff(a, b, top_rows, width))

    # Donors who hold the clip get it beside the clean download; new words make it stale.
    donor = make_user(role="donor")
    entitle(donor, campaign_reward["digital-download"], "fulfilled")
    [item] = client.get("/api/v1/library", headers=token_for(donor)).get_json()["items"]
    burned_url = item["captions"][0]["burned_url"]
    login_as(client, donor)
    got = client.get(urlparse(burned_url).path)
    assert got.status_code == 200 and got.headers["Content-Disposition"].startswith("attachment;")
    assert _put(client, producer, asset, "zh-Hans", big.replace("三天", "四天")).status_code == 204
    assert client.get(urlparse(burned_url).path).status_code == 404
    db.session.expire_all()
    assert asset.captions[0].burn_state == "none" and asset.captions[0].burned_key is None


def test_the_page_queues_a_burn_and_refuses_a_draft(app, client, make_user, login_as, ready_asset, drain):
    import re

    asset = ready_asset()
    producer = make_user(role="producer")
    login_as(client, producer)
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      client.get(f"/footage/{asset.public_id}").get_data(as_text=True)).group(1)
    client.post(f"/footage/{asset.public_id}/captions", data={"csrf_token": token, "lang": "en", "text": ZH,
                                                             "status": "draft"})
    resp = client.post(f"/footage/{asset.public_id}/captions/en/burn", data={"csrf_token": token},
                       follow_redirects=True)
    assert "Only final captions are burned" in resp.get_data(as_text=True)
    client.post(f"/footage/{asset.public_id}/captions", data={"csrf_token": token, "lang": "en", "text": ZH,
                                                             "status": "final"})
    resp = client.post(f"/footage/{asset.public_id}/captions/en/burn", data={"csrf_token": token},
                       follow_redirects=True)
    assert 'data-burn="queued"' in resp.get_data(as_text=True)
    drain()  # ready_asset's "web" rendition is not a real video: the failure is shown, not lost
    page = client.get(f"/footage/{asset.public_id}").get_data(as_text=True)
    assert 'data-burn="failed"' in page and "burning failed" in page


@pytest.mark.parametrize("ctype,body", [
    ("application/x-subrip", "1\n00:00:00,000 --> 00:00:01,000\n温度<30度，湿度>80%\n\n"
                             "2\n00:00:01,000 --> 00:00:02,000\nKids aged <10, and those >5 came.\n"),
    ("text/vtt", "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n温度<30度，湿度>80%\n\n"
                 "00:00:01.000 --> 00:00:02.000\nKids aged <10, and those >5 came.\n"),
])
def test_a_stray_less_than_sign_is_text_and_keeps_its_words(app, client, producer, ready_asset, ctype, body):
    """Only `<letter…>`, `</letter…>` or a timestamp is a tag: "温度<30度，湿度>80%" (humidity over
    80%) is words, escaped, not a tag dropped with everything between its signs."""
    asset = ready_asset("Weather")
    assert _put(client, producer, asset, "zh-Hans", body, ctype).status_code == 204
    text = client.get(f"/api/v1/media/assets/{asset.public_id}/captions/zh-Hans", headers=producer).get_data(as_text=True)
    assert "温度&lt;30度，湿度&gt;80%" in text
    assert "Kids aged &lt;10, and those &gt;5 came." in text


@pytest.mark.parametrize("zh_tag", ["zh-Hans", "zh", "zh-CN"])
def test_a_chinese_reader_s_player_shows_chinese_captions_first_named_in_their_language(
        app, client, producer, ready_asset, campaign_reward, entitle, make_user, login_as, zh_tag):
    """Chinese tools tag their files zh or zh-CN: such a track is a Chinese reader's as zh-Hans
    is (offered first, on by default on a Chinese page, never English instead), and every track is
    named in its own language in the player's menu, not by a tag a reader does not know."""
    import re

    asset = ready_asset("Village interview")
    _publish(client, producer, asset)
    for lang in ("en", "fr", "en-GB", zh_tag):
        assert _put(client, producer, asset, lang, "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nhi\n").status_code == 204
    donor = make_user(role="donor")
    entitle(donor, campaign_reward["digital-download"])
    login_as(client, donor)

    def tracks(page_lang):
        page = client.get(f"/account?lang={page_lang}").get_data(as_text=True)
        return re.findall(r'<track kind="captions" srclang="([^"]+)" label="([^"]*)"[^>]*?( default)?>', page)

    zh_page = tracks("zh-Hans")
    assert [lang for lang, _label, _d in zh_page][:2] == [zh_tag, "en"]          # the Chinese track first
    assert [lang for lang, _label, default in zh_page if default] == [zh_tag]   # and on by default
    assert {lang: label for lang, label, _d in zh_page} == {
        zh_tag: "中文" if zh_tag != "zh-CN" else "中文 (简体, 中国)", "en": "English",
        "en-GB": "English (United Kingdom)", "fr": "Français"}
    assert [lang for lang, _label, default in tracks("en") if default] == ["en"]


def test_label_falls_back_to_the_tag_for_a_language_babel_does_not_know(app):
    from filmfund.media.captions import label

    assert label("yue") == "粵語" and label("zh-Hant") == "中文（繁體）"
    assert label("tlh") == "tlh"  # Klingon: a valid ISO 639 code, no name to give it


def test_a_donor_s_caption_download_from_the_library_page_is_named_after_the_clip(
        app, client, producer, ready_asset, campaign_reward, entitle, make_user, login_as):
    """The library page's captions links are downloads (`download`): without a Content-Disposition
    the browser names them `zh-Hans.vtt`, `zh-Hans (1).vtt`; they are named after the clip as its
    reader sees it, as the clip's own download is, with the language (RFC 5987 for Chinese)."""
    import re
    from urllib.parse import unquote

    asset = ready_asset("村里的采访")
    _publish(client, producer, asset)
    assert _put(client, producer, asset, "zh-Hans", ZH).status_code == 204
    donor = make_user(role="donor")
    entitle(donor, campaign_reward["digital-download"], "fulfilled")
    login_as(client, donor)
    page = client.get("/account?lang=zh-Hans").get_data(as_text=True)
    [link] = re.findall(r'<a href="([^"]+)" download hreflang="zh-Hans"', page)
    got = client.get(urlparse(link).path)
    assert got.status_code == 200
    disposition = got.headers["Content-Disposition"]
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == "村里的采访.zh-Hans.vtt"


def test_a_burn_whose_worker_died_is_marked_failed_and_offered_again(
        app, client, make_user, login_as, token_for, ready_asset, monkeypatch):
    """A burn runs in a worker that can die (a restart, the OOM killer: no except clause runs). Its
    heartbeat then stops, and the rule that reaps a footage job whose worker died marks the burn
    failed ("worker stopped"), at worker start and by the periodic reaper, so the page offers its
    button again instead of "running" forever. A live burn is left alone."""
    import re
    from datetime import timedelta

    from filmfund.db import utcnow
    from filmfund.extensions import db
    from filmfund.media import burnin, ffmpeg, services
    from filmfund.media.models import Caption
    from filmfund.media.tasks import reap_stale_jobs, recover_work

    asset = ready_asset("Village interview")
    producer = make_user(role="producer")
    assert _put(client, token_for(producer), asset, "zh-Hans", ZH).status_code == 204

    class WorkerKilled(BaseException):
        pass

    def killed(*_args, **_kwargs):
        raise WorkerKilled()

    monkeypatch.setattr(ffmpeg, "probe", killed)
    with pytest.raises(WorkerKilled):
        burnin.burn(asset, "zh-Hans")
    db.session.rollback()
    monkeypatch.undo()
    [caption] = services.get_asset(asset.public_id).captions
    assert caption.burn_state == "running"
    assert recover_work(at_start=True) == 0  # its heartbeat is fresh: it may be alive

    login_as(client, producer)
    page = client.get(f"/footage/{asset.public_id}").get_data(as_text=True)
    assert f"/footage/{asset.public_id}/captions/zh-Hans/burn" not in page  # running: no second burn

    # Its heartbeat stopped longer ago than MEDIA_STALE_SECONDS: the page already offers the button,
    stale = utcnow() - timedelta(seconds=app.config["MEDIA_STALE_SECONDS"] + 5)
    db.session.execute(db.update(Caption).where(Caption.id == caption.id).values(burn_beat_at=stale))
    db.session.commit()
    page = client.get(f"/footage/{asset.public_id}").get_data(as_text=True)
    assert f"/footage/{asset.public_id}/captions/zh-Hans/burn" in page and "its worker stopped" in page
    # and the reaper marks it failed.
    assert reap_stale_jobs.call_local() == 1
    db.session.expire_all()
    caption = db.session.get(Caption, caption.id)
    assert caption.burn_state == "failed" and "stopped" in caption.burn_error
    page = client.get(f"/footage/{asset.public_id}").get_data(as_text=True)
    assert re.search(r'data-burn="failed"', page) and f"/footage/{asset.public_id}/captions/zh-Hans/burn" in page


def test_a_queued_burn_is_claimed_once_so_a_resent_message_does_nothing(app, client, token_for, make_user,
                                                                         ready_asset):
    """Worker start re-sends queued burns (their queue message may have been lost with a dead
    worker): the task claims the burn first, so the second message of the same request is skipped."""
    from filmfund.extensions import db
    from filmfund.media import burnin, services

    asset = ready_asset()
    assert _put(client, token_for(make_user(role="producer")), asset, "en", EN_SRT,
                "application/x-subrip").status_code == 204
    [caption] = services.get_asset(asset.public_id).captions
    caption.burn_state = "queued"
    db.session.commit()
    assert burnin.claim(asset, "en") is True
    assert burnin.claim(asset, "en") is False
    [caption] = services.get_asset(asset.public_id).captions
    assert caption.burn_state == "running"
