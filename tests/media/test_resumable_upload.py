"""Issue 14 item 3: an upload from the footage page to any storage is resumable. The browser sends
chunks at offsets; a connection that drops mid-chunk keeps what arrived; the server says how much
it has; the rest follows from there; the whole file is ingested as a form upload is, and no partial
file is left behind."""
from __future__ import annotations

import hashlib
import io
import os
import time

import pytest

from tests.media.test_access import _csrf


def _start(client, h, name, size, **extra):
    return client.post("/footage/uploads/resumable", json={"filename": name, "size": size, **extra}, headers=h)


def _patch(client, url, h, at, body, *, length=None):
    """A PATCH whose connection drops after `body` when `length` (the announced length) is larger."""
    headers = {**h, "Upload-Offset": str(at), "Content-Type": "application/offset+octet-stream"}
    return client.patch(url, input_stream=io.BytesIO(body), content_length=length or len(body), headers=headers)


@pytest.mark.parametrize("storage_backend", ["file", "s3"])
def test_a_cut_connection_resumes_from_what_the_server_has(app, client, make_user, login_as, clips, storage_backend):
    from filmfund.media import resumable, services

    login_as(client, make_user(role="producer"))
    h = {"X-CSRFToken": _csrf(client), "Accept": "application/json"}
    data = (clips / "long.MTS").read_bytes()  # 3 s of camera 1080i, a few MB
    chunk = 1024 * 1024
    started = _start(client, h, "00001.MTS", len(data), title="Dusk, take 2")
    assert started.status_code == 201, started.get_json()
    up = started.get_json()
    url = up["url"]
    assert started.headers["Location"] == url and up["offset"] == 0 and up["chunk_size"] > 0

    assert _patch(client, url, h, 0, data[:chunk]).headers["Upload-Offset"] == str(chunk)
    # The second chunk's connection drops after 300,000 of its bytes: they are kept.
    cut = _patch(client, url, h, chunk, data[chunk:chunk + 300_000], length=chunk)
    head = client.head(url)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == str(chunk + 300_000), cut.status_code
    assert head.headers["Upload-Length"] == str(len(data))
    # A client that thinks the whole chunk arrived is told what the server has; nothing is written.
    wrong = _patch(client, url, h, 2 * chunk, data[2 * chunk:3 * chunk])
    assert wrong.status_code == 409 and wrong.get_json()["offset"] == chunk + 300_000
    assert client.get(url).get_json() == {"offset": chunk + 300_000, "size": len(data)}
    # Finishing early is refused: the rest first.
    early = client.post(url + "/complete", headers=h)
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "upload_incomplete"

    at = chunk + 300_000
    while at < len(data):
        resp = _patch(client, url, h, at, data[at:at + chunk])
        assert resp.status_code == 204, resp.get_data(as_text=True)
        at = int(resp.headers["Upload-Offset"])
    done = client.post(url + "/complete", headers=h)
    assert done.status_code == 201, done.get_json()
    asset = services.get_asset(done.get_json()["asset_id"])
    assert asset.sha256 == hashlib.sha256(data).hexdigest() == asset.sources[0].sha256
    assert asset.title == "Dusk, take 2" and asset.sources[0].original_name == "00001.MTS"
    assert asset.state.value == "uploaded"  # the verify job checks it, as for any upload
    assert list(resumable.partials_dir().iterdir()) == []  # no partial file left
    assert client.head(url).status_code == 404  # the upload is finished: nothing to resume

    # The same bytes again: the asset that is already here.
    again = _start(client, h, "copy.MTS", len(data)).get_json()
    for at in range(0, len(data), 4 * chunk):
        _patch(client, again["url"], h, at, data[at:at + 4 * chunk])
    same = client.post(again["url"] + "/complete", headers=h)
    assert same.status_code == 200 and same.get_json()["asset_id"] == asset.public_id
    assert services.find_assets() == [asset]


def test_resumable_uploads_are_checked_and_private(app, client, make_user, login_as):
    login_as(client, make_user(role="producer"))
    h = {"X-CSRFToken": _csrf(client), "Accept": "application/json"}
    assert client.post("/footage/uploads/resumable", json={"filename": "a.MTS", "size": 10}).status_code == 400  # CSRF
    assert _start(client, h, "run.exe", 10).status_code == 400
    assert _start(client, h, "a.MTS", 0).status_code == 400
    app.config["MAX_UPLOAD_BYTES"] = 1000
    assert _start(client, h, "a.MTS", 1001).status_code == 413
    up = _start(client, h, "a.MTS", 10).get_json()
    # No more than the announced size, and bytes only as offset+octet-stream.
    assert _patch(client, up["url"], h, 0, b"x" * 11).status_code == 413
    plain = client.patch(up["url"], data=b"x", headers={**h, "Upload-Offset": "0", "Content-Type": "text/plain"})
    assert plain.status_code == 400
    assert client.patch(up["url"], data=b"x", headers={"Upload-Offset": "0",
                                                       "Content-Type": "application/offset+octet-stream"}
                        ).status_code == 400  # CSRF
    assert client.head(up["url"][:-3] + "xyz").status_code == 404  # a token not ours
    # Another producer's account cannot see, write or finish it.
    other = app.test_client()
    login_as(other, make_user(role="producer"))
    oh = {"X-CSRFToken": _csrf(other), "Accept": "application/json"}
    assert other.get(up["url"]).status_code == 403
    assert _patch(other, up["url"], oh, 0, b"x").status_code == 403
    assert other.post(up["url"] + "/complete", headers=oh).status_code == 403
    donor = app.test_client()
    login_as(donor, make_user(role="donor"))
    assert donor.get(up["url"]).status_code == 403


def test_a_partial_file_untouched_past_the_incoming_age_is_swept(app, client, make_user, login_as):
    from filmfund.media import fixity, resumable

    login_as(client, make_user(role="producer"))
    h = {"X-CSRFToken": _csrf(client), "Accept": "application/json"}
    given_up = _start(client, h, "a.MTS", 100).get_json()
    _patch(client, given_up["url"], h, 0, b"x" * 40)
    going_on = _start(client, h, "b.MTS", 100).get_json()
    _patch(client, going_on["url"], h, 0, b"y" * 40)
    [old] = [p for p in resumable.partials_dir().iterdir() if p.read_bytes() == b"x" * 40]
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    assert fixity.sweep_incoming()["resumable"] == 1
    assert client.head(given_up["url"]).status_code == 404
    assert client.head(going_on["url"]).headers["Upload-Offset"] == "40"


def test_an_empty_file_is_refused_as_empty_in_the_readers_language(app, client, make_user, login_as):
    """The crew probe's upload of a 0-byte file was told "Give the file's size in bytes."."""
    login_as(client, make_user(role="producer"))
    h = {"X-CSRFToken": _csrf(client), "Accept": "application/json"}
    refused = _start(client, h, "00003.MTS", 0).get_json()["error"]
    assert refused["code"] == "empty_file" and "empty (0 bytes)" in refused["message"]
    zh = _start(client, {**h, "Accept-Language": "zh-Hans"}, "00003.MTS", 0).get_json()["error"]
    assert zh["message"] == "这个文件是空的（0 字节），没有可上传的内容。"
    assert _start(client, h, "00003.MTS", -1).get_json()["error"]["code"] == "invalid_size"
