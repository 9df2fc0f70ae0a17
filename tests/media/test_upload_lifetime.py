"""An upload lives while it receives bytes and is given up once idle (storage.given_up): one rule,
asked by the requests that go on with an upload and by the hourly sweep, for an upload through the
app (its partial file) and one straight to S3 (its multipart upload's parts). A card sent over a
slow line from China takes more than a day (20 GiB at 2 Mbit/s: about 23 h): counted from its
first byte, such an upload was refused at its next chunk and every byte of it lost."""
from __future__ import annotations

import os
import re
import time
import urllib.request

import pytest
from itsdangerous import TimestampSigner

DAY = 24 * 3600
PATCH = {"Content-Type": "application/offset+octet-stream"}


def _csrf(client, url="/footage/"):
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)


_REAL_TIMESTAMP = TimestampSigner.get_timestamp


def _later(monkeypatch, seconds: float) -> None:
    """Signed tokens are read as `seconds` from now (itsdangerous asks get_timestamp)."""
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: _REAL_TIMESTAMP(self) + int(seconds))


def test_a_resumable_upload_still_receiving_bytes_goes_on_past_a_day(app, client, make_user, login_as, monkeypatch):
    from filmfund.media import fixity, resumable

    login_as(client, make_user(role="producer"))
    h = {"X-CSRFToken": _csrf(client), "Accept": "application/json"}
    up = client.post("/footage/uploads/resumable", json={"filename": "card.MTS", "size": 300}, headers=h).get_json()
    assert client.patch(up["url"], data=b"x" * 100, headers={**h, **PATCH, "Upload-Offset": "0"}).status_code == 204
    _later(monkeypatch, 23 * 3600)  # 23 hours on, the upload is still going
    assert client.patch(up["url"], data=b"x" * 100, headers={**h, **PATCH, "Upload-Offset": "100"}).status_code == 204
    [part] = list(resumable.partials_dir().iterdir())
    os.utime(part, (time.time() - 2 * 3600,) * 2)  # its last byte 2 hours ago ...
    _later(monkeypatch, 25 * 3600)  # ... and 25 hours after it began
    assert fixity.sweep_incoming()["resumable"] == 0  # the sweep keeps it
    head = client.head(up["url"])
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "200"
    resp = client.patch(up["url"], data=b"x" * 100, headers={**h, **PATCH, "Upload-Offset": "200"})
    assert resp.status_code == 204, resp.get_json()


def test_an_idle_resumable_upload_is_given_up_by_the_request_as_by_the_sweep(app, client, make_user, login_as):
    from filmfund.media import fixity, resumable

    login_as(client, make_user(role="producer"))
    h = {"X-CSRFToken": _csrf(client), "Accept": "application/json"}
    up = client.post("/footage/uploads/resumable", json={"filename": "card.MTS", "size": 300}, headers=h).get_json()
    assert client.patch(up["url"], data=b"x" * 100, headers={**h, **PATCH, "Upload-Offset": "0"}).status_code == 204
    [part] = list(resumable.partials_dir().iterdir())
    os.utime(part, (time.time() - DAY - 60,) * 2)  # no byte for a day: given up
    resp = client.patch(up["url"], data=b"x" * 100, headers={**h, **PATCH, "Upload-Offset": "100"})
    assert resp.status_code == 404 and "start it again" in resp.get_json()["error"]["message"]
    assert fixity.sweep_incoming()["resumable"] == 1 and not part.exists()


def _direct_start(client, h, data: bytes, name="card.MTS"):
    up = client.post("/footage/uploads/start", json={"filename": name, "size": len(data)}, headers=h)
    assert up.status_code == 200, up.get_json()
    return up.get_json()


def _put_part(client, h, up, n: int, body: bytes) -> dict:
    resp = client.post("/footage/uploads/parts", json={"upload": up["upload"], "parts": [n]}, headers=h)
    assert resp.status_code == 200, resp.get_json()
    req = urllib.request.Request(resp.get_json()["urls"][str(n)], data=body, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return {"part": n, "etag": r.headers["ETag"]}


@pytest.mark.parametrize("storage_backend", ["s3"])
def test_a_direct_s3_upload_still_receiving_parts_goes_on_past_a_day(app, client, make_user, login_as, clips,
                                                                     monkeypatch):
    from filmfund.media import fixity, services

    login_as(client, make_user(role="producer"))
    h = {"X-CSRFToken": _csrf(client), "Accept": "application/json"}
    data = (clips / "long.MTS").read_bytes()
    up = _direct_start(client, h, data)
    size = up["part_size"]
    first = _put_part(client, h, up, 1, data[:size])
    # The hourly sweep runs while the upload goes on: its part just arrived, so it stays (moto, like
    # a day-old upload on S3, says it was initiated long ago).
    assert fixity.sweep_incoming()["storage"] == 0
    _later(monkeypatch, 25 * 3600)  # the token was signed 25 hours ago; the last part is fresh
    second = _put_part(client, h, up, 2, data[size:])
    done = client.post("/footage/uploads/complete", json={"upload": up["upload"], "parts": [first, second]},
                       headers=h)
    assert done.status_code == 201, done.get_json()
    assert services.get_asset(done.get_json()["asset_id"]).size == len(data)


@pytest.mark.parametrize("storage_backend", ["s3"])
def test_an_idle_direct_s3_upload_is_given_up_by_the_request_as_by_the_sweep(app, client, make_user, login_as):
    from filmfund.media import fixity, services

    login_as(client, make_user(role="producer"))
    h = {"X-CSRFToken": _csrf(client), "Accept": "application/json"}
    up = _direct_start(client, h, b"x" * 2000)
    _put_part(client, h, up, 1, b"x" * 1000)
    app.config["MEDIA_INCOMING_MAX_AGE"] = 1.0
    time.sleep(1.2)  # its last part is older than the (shortened) idle time now
    resp = client.post("/footage/uploads/parts", json={"upload": up["upload"], "parts": [2]}, headers=h)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_upload"
    assert fixity.sweep_incoming()["storage"] == 1
    store = services.storage()
    assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
