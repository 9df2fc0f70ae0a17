"""A title typed where footage comes in follows the title rule of the asset page
(board._clean_title, on typed.one_line): one line of what prints. Donors read it in their library
and as their downloads' names: a right-to-left override pasted from a chat (`Mother‮gnp.exe`
shows as "Motherexe.png"), a zero-width space, a newline or a bell must not reach them."""
from __future__ import annotations

import re
import urllib.request

import pytest

TYPED = "访谈\u202e第三天\u200b\nday 3\u0007"
KEPT = "访谈第三天 day 3"


def _csrf(client, url="/footage/"):
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)


def _only_asset():
    from filmfund.media import services

    [asset] = services.find_assets()
    return asset


def test_the_upload_forms_title_follows_the_title_rule(app, client, make_user, login_as, clips):
    login_as(client, make_user(role="producer"))
    data = {"csrf_token": _csrf(client), "title": TYPED, "file": ((clips / "small.mp4").open("rb"), "a.mp4")}
    assert client.post("/footage/upload", data=data, content_type="multipart/form-data").status_code == 303
    assert _only_asset().title == KEPT


@pytest.mark.parametrize("where", ["start", "complete"])
def test_a_resumable_uploads_title_follows_the_title_rule(app, client, make_user, login_as, clips, where):
    login_as(client, make_user(role="producer"))
    h = {"X-CSRFToken": _csrf(client), "Accept": "application/json"}
    data = (clips / "small.mp4").read_bytes()
    start = {"filename": "b.mp4", "size": len(data)} | ({"title": TYPED} if where == "start" else {})
    up = client.post("/footage/uploads/resumable", json=start, headers=h).get_json()
    assert client.patch(up["url"], data=data, headers={**h, "Upload-Offset": "0",
                                                       "Content-Type": "application/offset+octet-stream"}
                        ).status_code == 204
    done = client.post(up["url"] + "/complete", json={"title": TYPED} if where == "complete" else None, headers=h)
    assert done.status_code == 201, done.get_json()
    assert _only_asset().title == KEPT


def test_a_title_of_nothing_printable_names_the_asset_by_its_file(app, client, make_user, login_as, clips):
    login_as(client, make_user(role="producer"))
    data = {"csrf_token": _csrf(client), "title": "\u200b\u202e\n", "file": ((clips / "small.mp4").open("rb"),
                                                                            "黄昏 第二条.mp4")}
    assert client.post("/footage/upload", data=data, content_type="multipart/form-data").status_code == 303
    assert _only_asset().title == "黄昏 第二条"


@pytest.mark.parametrize("storage_backend", ["s3"])
def test_a_direct_s3_uploads_title_follows_the_title_rule(app, client, make_user, login_as, clips):
    login_as(client, make_user(role="producer"))
    h = {"X-CSRFToken": _csrf(client), "Accept": "application/json"}
    data = (clips / "small.mp4").read_bytes()
    up = client.post("/footage/uploads/start", json={"filename": "c.mp4", "size": len(data)}, headers=h).get_json()
    url = client.post("/footage/uploads/parts", json={"upload": up["upload"], "parts": [1]}, headers=h).get_json()["urls"]["1"]
    req = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(req, timeout=10) as r:
        etag = r.headers["ETag"]
    done = client.post("/footage/uploads/complete", json={"upload": up["upload"], "title": TYPED,
                                                          "parts": [{"part": 1, "etag": etag}]}, headers=h)
    assert done.status_code == 201, done.get_json()
    assert _only_asset().title == KEPT


def test_media_ingests_title_follows_the_title_rule(app, clips, tmp_path):
    import shutil

    from filmfund.extensions import db
    from filmfund.media import services

    folder = tmp_path / "card"
    folder.mkdir()
    shutil.copy(clips / "small.mp4", folder / "00001.mp4")
    [result] = services.ingest_paths([folder], title=TYPED)
    db.session.commit()
    assert result.asset.title == KEPT
