"""A stored object goes when nothing refers to it any more, and never while something does.

- The same footage sent again under another extension (a.mp4, then a.mov or take.MTS) is "already
  here", and the second full copy that upload stored under that extension's key is removed: by the
  form, the resumable upload, the direct-to-S3 upload and `media ingest`.
- A copy with captions burned in goes with its captions: deleted, replaced by new words, made
  stale by an edit (or a deletion) while it was being burned, or replaced by a new burn.
- Content-addressed storage shares one object between everyone who stored the same bytes: a
  rendition dropped by the fixity check keeps its object while another asset's original is the
  same bytes (a poster's frame uploaded again as a still).
"""
from __future__ import annotations

import io
import re
import shutil
import types

import pytest

from tests.media.stored_keys import orphans


def _csrf(client, url="/footage/"):
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)


# --- the same footage under another extension ---------------------------------------------------

@pytest.mark.parametrize("storage_backend", ["file", "s3"])
def test_the_same_clip_uploaded_again_as_mov_leaves_no_second_copy(app, client, make_user, login_as, clips,
                                                                   storage_backend):
    from filmfund.media import services

    login_as(client, make_user(role="producer"))
    token = _csrf(client)
    for name in ("a.mp4", "a.mov"):
        resp = client.post("/footage/upload", data={"csrf_token": token,
                                                    "file": ((clips / "small.mp4").open("rb"), name)},
                           content_type="multipart/form-data", follow_redirects=True)
        assert resp.status_code == 200
    assert "already here" in resp.get_data(as_text=True)
    [asset] = services.find_assets()
    assert asset.sources[0].original_name == "a.mp4"
    assert orphans() == []
    assert services.storage().keys() == [asset.sources[0].storage_key]  # one copy, the asset's


@pytest.mark.parametrize("storage_backend", ["file", "s3"])
def test_a_resumable_upload_of_known_bytes_as_mts_leaves_no_second_copy(app, client, make_user, login_as, clips,
                                                                        storage_backend):
    from filmfund.media import resumable, services

    login_as(client, make_user(role="producer"))
    h = {"X-CSRFToken": _csrf(client), "Accept": "application/json"}
    data = (clips / "small.mp4").read_bytes()
    answers = []
    for name in ("take.mp4", "take.MTS"):
        up = client.post("/footage/uploads/resumable", json={"filename": name, "size": len(data)}, headers=h).get_json()
        assert client.patch(up["url"], data=data, headers={**h, "Upload-Offset": "0",
                                                           "Content-Type": "application/offset+octet-stream"}
                            ).status_code == 204
        answers.append(client.post(up["url"] + "/complete", headers=h))
    assert [a.status_code for a in answers] == [201, 200]
    assert answers[1].get_json()["asset_id"] == answers[0].get_json()["asset_id"]
    assert len(services.find_assets()) == 1
    assert orphans() == [] and list(resumable.partials_dir().iterdir()) == []


@pytest.mark.parametrize("storage_backend", ["s3"])
def test_a_direct_s3_upload_of_known_bytes_leaves_no_second_copy(app, client, make_user, login_as, clips):
    import urllib.request

    from filmfund.media import services

    login_as(client, make_user(role="producer"))
    h = {"X-CSRFToken": _csrf(client), "Accept": "application/json"}
    data = (clips / "small.mp4").read_bytes()
    ids = []
    for name in ("dusk.mp4", "dusk.mov"):
        up = client.post("/footage/uploads/start", json={"filename": name, "size": len(data)}, headers=h).get_json()
        url = client.post("/footage/uploads/parts", json={"upload": up["upload"], "parts": [1]},
                          headers=h).get_json()["urls"]["1"]
        req = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req, timeout=10) as r:
            etag = r.headers["ETag"]
        done = client.post("/footage/uploads/complete", json={"upload": up["upload"],
                                                              "parts": [{"part": 1, "etag": etag}]}, headers=h)
        assert done.status_code in (200, 201), done.get_json()
        ids.append(done.get_json()["asset_id"])
    assert ids[0] == ids[1] and len(services.find_assets()) == 1
    assert orphans() == []


def test_media_ingest_of_a_renamed_copy_leaves_no_second_copy(app, clips, tmp_path):
    """`filmfund media ingest` of a folder where a take was copied again under another extension."""
    from filmfund.extensions import db
    from filmfund.media import services

    first, again = tmp_path / "card", tmp_path / "laptop"
    first.mkdir()
    again.mkdir()
    shutil.copy(clips / "small.mp4", first / "00001.mp4")
    shutil.copy(clips / "small.mp4", again / "00001.mov")
    [one] = services.ingest_paths([first])
    db.session.commit()
    [two] = services.ingest_paths([again])
    db.session.commit()
    assert one.created and not two.created and two.asset.id == one.asset.id
    assert orphans() == []


def test_bytes_stored_before_under_that_key_are_never_removed(app, client, make_user, login_as, ready_asset):
    """The copy goes only if this upload created it: a rendition's object uploaded again as new
    footage (a donor copy sent back by the crew) is the rendition's, and stays."""
    from filmfund.media import services

    asset = ready_asset("Interview", payload=b"\x00\x00\x00\x18ftypmp42" + b"w" * 5000)
    web = asset.rendition("web")
    login_as(client, make_user(role="producer"))
    data = services.storage().open(web.storage_key).read()
    resp = client.post("/footage/upload", data={"csrf_token": _csrf(client), "file": (io.BytesIO(data), "back.mp4")},
                       content_type="multipart/form-data")
    assert resp.status_code == 303
    assert services.storage().exists(web.storage_key) and orphans() == []


# --- copies with captions burned in ---------------------------------------------------------------

VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n你好\n"


def _burned_caption(asset, lang="zh-Hans", payload=b"burned-copy"):
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import Caption, CaptionStatus

    burned = services.storage().put_stream(io.BytesIO(payload * 5000), ".mp4")
    db.session.add(Caption(asset_id=asset.id, lang=lang, status=CaptionStatus.FINAL, vtt=VTT, cues=1,
                           burn_state="ready", burned_key=burned.key, burned_sha256=burned.sha256,
                           burned_size=burned.size))
    db.session.commit()
    return burned.key


@pytest.mark.parametrize("storage_backend", ["file", "s3"])
def test_deleting_captions_removes_their_burned_copy(app, client, make_user, token_for, login_as, ready_asset,
                                                     storage_backend):
    from filmfund.media import services

    asset = ready_asset("Interview")
    by_api = _burned_caption(asset, "zh-Hans")
    by_page = _burned_caption(asset, "en", b"another-burned-copy")
    producer = make_user(role="producer")
    resp = client.delete(f"/api/v1/media/assets/{asset.public_id}/captions/zh-Hans", headers=token_for(producer))
    assert resp.status_code == 204
    login_as(client, producer)
    page = f"/footage/{asset.public_id}"
    assert client.post(f"{page}/captions/en/delete", data={"csrf_token": _csrf(client, page)}).status_code == 303
    store = services.storage()
    assert not store.exists(by_api) and not store.exists(by_page)
    assert orphans() == []


def test_new_words_remove_the_stale_burned_copy(app, client, make_user, token_for, ready_asset):
    from filmfund.extensions import db
    from filmfund.media import services

    asset = ready_asset("Interview")
    old = _burned_caption(asset, "en")
    resp = client.put(f"/api/v1/media/assets/{asset.public_id}/captions/en",
                      data="WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello again\n",
                      headers={**token_for(make_user(role="producer")), "Content-Type": "text/vtt"})
    assert resp.status_code == 204
    db.session.expire_all()
    assert asset.captions[0].burned_key is None
    assert not services.storage().exists(old) and orphans() == []


def test_refused_new_words_keep_the_burned_copy(app, client, make_user, token_for, ready_asset):
    """A refused save changes nothing: the copy its captions still name stays."""
    from filmfund.media import services

    asset = ready_asset("Interview")
    kept = _burned_caption(asset, "en")
    resp = client.put(f"/api/v1/media/assets/{asset.public_id}/captions/en", data=b"\xff\xfe not text",
                      headers={**token_for(make_user(role="producer")), "Content-Type": "text/vtt"})
    assert resp.status_code == 400
    assert services.storage().exists(kept)


@pytest.fixture
def fake_burn(monkeypatch):
    """burnin.burn with ffmpeg stood in for (ready_asset's web rendition is not a real clip):
    `during` runs while "ffmpeg" runs, as another request would; each burn writes other bytes."""
    from filmfund.media import ffmpeg

    state = types.SimpleNamespace(during=None, runs=0, fail=False)
    monkeypatch.setattr(ffmpeg, "probe", lambda *a, **k: {})
    monkeypatch.setattr(ffmpeg, "summarize", lambda *a, **k: types.SimpleNamespace(has_audio=False, duration=1.0))
    monkeypatch.setattr(ffmpeg, "burn_captions_argv", lambda src, vtt, out, *a, **k: ["ffmpeg", out])

    def run(argv, **_kw):
        state.runs += 1
        if state.during:
            state.during()
        if state.fail:
            raise ffmpeg.FfmpegError("the encoder stopped")
        with open(argv[-1], "wb") as out:
            out.write(b"burned, run %d " % state.runs * 1000)

    monkeypatch.setattr(ffmpeg, "run", run)
    return state


def _meanwhile(app, asset_id: str, change):
    """What another request does, and commits, while the burn runs: its own app context, hence
    its own session and connection, through the producers' use case."""

    def act():
        from filmfund.extensions import db
        from filmfund.media import services

        with app.app_context():
            change(services.get_asset(asset_id))
            db.session.commit()
            db.session.remove()

    return act


def test_a_burn_whose_words_were_edited_meanwhile_keeps_no_copy(app, ready_asset, fake_burn):
    from filmfund.media import burnin, captions

    asset = ready_asset("Interview")
    _burned_caption(asset, "en")
    fake_burn.during = _meanwhile(app, asset.public_id, lambda a: captions.put(
        a, "en", VTT.replace("你好", "再见").encode(), "text/vtt"))
    burned = burnin.burn(asset, "en")
    assert burned.burn_state == "none" and burned.burned_key is None
    assert "再见" in burned.vtt
    assert orphans() == []


def test_a_burn_whose_captions_were_deleted_meanwhile_keeps_no_copy(app, ready_asset, fake_burn):
    from filmfund.errors import NotFoundError
    from filmfund.media import burnin, captions

    asset = ready_asset("Interview")
    _burned_caption(asset, "en")
    fake_burn.during = _meanwhile(app, asset.public_id, lambda a: captions.delete(a, "en"))
    with pytest.raises(NotFoundError):  # said as such, not an AttributeError on a row that is gone
        burnin.burn(asset, "en")
    assert fake_burn.runs == 1 and orphans() == []


def test_a_failed_burn_whose_captions_were_deleted_meanwhile_reports_the_failure(app, ready_asset, fake_burn):
    from filmfund.media import burnin, captions, ffmpeg

    asset = ready_asset("Interview")
    _burned_caption(asset, "en")
    fake_burn.during = _meanwhile(app, asset.public_id, lambda a: captions.delete(a, "en"))
    fake_burn.fail = True
    with pytest.raises(ffmpeg.FfmpegError):  # the burn's own failure, not an AttributeError on a row that is gone
        burnin.burn(asset, "en")
    assert orphans() == []


def test_a_new_burn_removes_the_copy_it_replaces(app, ready_asset, fake_burn):
    from filmfund.media import burnin, services

    asset = ready_asset("Interview")
    old = _burned_caption(asset, "en")
    burned = burnin.burn(asset, "en")
    assert burned.burn_state == "ready" and burned.burned_key != old
    assert services.storage().exists(burned.burned_key)
    assert not services.storage().exists(old) and orphans() == []


# --- one object, several owners ---------------------------------------------------------------------

def test_a_damaged_rendition_dropped_by_fixity_keeps_another_assets_original(app, client, make_user, login_as,
                                                                            ready_asset):
    """Asset A's poster and asset B's original are the same bytes (B is A's poster frame uploaded
    again as a still): one object. The fixity check finds the object damaged and drops A's poster
    (it is remade from A's intact clip); the object is B's original too and must stay, for B's own
    check to put B in alert and for a repair (the second copy, an intact re-upload) to mend it."""
    import os

    from filmfund.extensions import db
    from filmfund.media import fixity, services
    from filmfund.media.models import Rendition, RenditionKind

    a = ready_asset("Rough cut")
    frame = b"\xff\xd8\xff\xe0" + b"poster frame" * 300 + b"\xff\xd9"
    poster = services.storage().put_stream(io.BytesIO(frame), ".jpg")
    a.renditions.append(Rendition(kind=RenditionKind.POSTER, storage_key=poster.key, sha256=poster.sha256,
                                  size=poster.size, content_type="image/jpeg"))
    db.session.commit()
    login_as(client, make_user(role="producer"))
    assert client.post("/footage/upload", data={"csrf_token": _csrf(client), "file": (io.BytesIO(frame), "still.jpg")},
                       content_type="multipart/form-data").status_code == 303
    b = next(x for x in services.find_assets() if x.id != a.id)
    assert b.sources[0].storage_key == poster.key  # one object, two owners

    path = services.storage().local_file(poster.key)
    os.chmod(path, 0o644)
    path.write_bytes(b"\xff\xd8 bit rot")
    [result] = fixity.check_fixity([a.public_id])
    assert any("poster rendition" in r for r in result.repaired)  # A's poster: dropped, queued again
    assert services.storage().exists(poster.key), "B's original was deleted with A's poster"
    [checked] = fixity.check_fixity([b.public_id])
    assert not checked.ok  # B's alert names its damaged original: it is there to be repaired
