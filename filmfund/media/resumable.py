"""Resumable uploads through the app, to any storage: the browser sends a file in chunks, each
at an offset; the server keeps what arrived in a partial file and says how much it has; after a
dropped connection the browser asks, and goes on from there. The whole file is then ingested
exactly as a form upload is (type, size, hash, registration, verify job).

The protocol (the routes are in views.py; the upload is named by a signed token):

- `POST /footage/uploads/resumable` `{filename, size, title?}` → 201
  `{upload, url, offset: 0, chunk_size}`: the name and size are checked here (and again at the end).
- `HEAD url` → 204 with `Upload-Offset` (also `GET url` → `{offset, size}`): the bytes the server has.
- `PATCH url` with `Upload-Offset: N` and `Content-Type: application/offset+octet-stream`, the body
  the bytes from N on → 204 with the new `Upload-Offset`. An offset that is not the server's is
  refused (409, with the server's offset) and nothing is written. Bytes that arrived before a
  connection dropped are kept: the next HEAD counts them.
- `POST url/complete` → 201 (or 200 for bytes already here) `{asset_id, state, created}`, once
  the offset is the announced size; the partial file is removed once the asset is committed.

The requests are those of tus 1.0's core protocol (HEAD, PATCH, Upload-Offset), without its
extensions: no server-side library for Flask is kept up (flask-tus was last released in 2016),
and this is the little of it the footage page needs. Partial files live in `media-work/uploads`
and are swept with the other temporary uploads (FILMFUND_MEDIA_INCOMING_MAX_AGE after their last
byte, storage.given_up); an upload's token works as long as its partial file lives, so an upload
still receiving bytes is never cut off, however long ago it began.
"""
from __future__ import annotations

import fcntl
import os
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.exceptions import ClientDisconnected

from filmfund.db import on_commit
from filmfund.errors import ConflictError, DomainError, ForbiddenError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.media.board import typed_title
from filmfund.media.common import checked_upload, partials_dir
from filmfund.media.ingest import ingest_upload
from filmfund.media.storage import given_up

PIECE = 1024 * 1024  # bytes written per read from the request


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="filmfund.media.resumable-upload")


def start(user, filename: Any, size: Any, title: Any = None) -> dict[str, Any]:
    """Open an upload: an empty partial file, and the token that names it."""
    safe_name = checked_upload(filename, size)
    upload_id = uuid.uuid4().hex
    (partials_dir() / f"{upload_id}.part").touch(mode=0o600)
    token = _serializer().dumps({"i": upload_id, "n": safe_name, "s": size, "u": user.public_id,
                                 "t": typed_title(title)})
    return {"upload": token, "offset": 0, "size": size, "chunk_size": current_app.config["MEDIA_UPLOAD_CHUNK"]}


def _load(user, token: str) -> tuple[dict[str, Any], Path]:
    # The token is checked for its signature only: an upload lives while bytes keep coming
    # (storage.given_up, the sweep's rule), so its age is its partial file's, counted from the
    # last byte written, not from the token's signing (a card over a slow line takes days).
    try:
        data = _serializer().loads(token)
    except BadSignature:
        raise NotFoundError(_("Unknown or expired upload: start it again.")) from None
    if data.get("u") != user.public_id:
        raise ForbiddenError(_("This upload belongs to another account."))
    path = partials_dir() / f"{data['i']}.part"
    try:
        last_byte_at = path.stat().st_mtime
    except FileNotFoundError:
        last_byte_at = None
    if last_byte_at is None or given_up(last_byte_at, current_app.config["MEDIA_INCOMING_MAX_AGE"]):
        raise NotFoundError(_("This upload is gone (finished, or left unfinished too long): start it again."))
    return data, path


def offset(user, token: str) -> tuple[int, int]:
    """(bytes the server has, the file's size)."""
    data, path = _load(user, token)
    return path.stat().st_size, data["s"]


class OffsetMismatch(ConflictError):
    """The client's offset is not the server's: nothing written; the server's offset is told."""

    def __init__(self, have: int):
        super().__init__(_("The server has %(n)s bytes of this upload: send from there.", n=have),
                         code="offset_mismatch")
        self.have = have


def append(user, token: str, at: Any, body: BinaryIO, length: int | None) -> int:
    """Write the request's bytes at offset `at` (which must be what the server has); returns the
    new offset. One writer at a time per upload (a second one gets 409). A connection that drops
    mid-body keeps the bytes that arrived."""
    data, path = _load(user, token)
    try:
        at = int(at)
    except (TypeError, ValueError):
        raise ValidationError(_("Upload-Offset: the byte offset of this chunk."), code="invalid_offset") from None
    with open(path, "ab") as out:
        try:
            fcntl.flock(out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConflictError("Another request is writing this upload.", code="upload_busy") from None
        have = os.fstat(out.fileno()).st_size
        if at != have:
            raise OffsetMismatch(have)
        if length is not None and have + length > data["s"]:
            raise DomainError(_("The chunk goes past the announced size (%(n)s bytes).", n=data["s"]), code="too_large",
                              status=413)
        room = data["s"] - have

        def read(n: int) -> bytes:
            try:
                return body.read(n)
            except (ClientDisconnected, ConnectionError):
                return b""  # what arrived is kept: the client asks the offset and sends the rest

        while room > 0 and (piece := read(min(PIECE, room))):
            out.write(piece)
            room -= len(piece)
        if room == 0 and read(1):
            raise DomainError(_("The chunk goes past the announced size (%(n)s bytes).", n=data["s"]), code="too_large",
                              status=413)
        out.flush()
        os.fsync(out.fileno())
        return os.fstat(out.fileno()).st_size


def complete(user, token: str, title: str | None = None):
    """Ingest the whole file as a form upload is ingested. The caller commits; the partial file
    is removed then (kept if it rolls back, for the client to complete again)."""
    data, path = _load(user, token)
    with open(path, "rb") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConflictError("Another request is writing this upload.", code="upload_busy") from None
        have = os.fstat(fh.fileno()).st_size
        if have != data["s"]:
            raise ConflictError(_("The server has %(have)s of %(n)s bytes: send the rest first.",
                                  have=have, n=data["s"]),
                                code="upload_incomplete")
        result = ingest_upload(fh, data["n"], title or data.get("t"), limit=current_app.config["MAX_UPLOAD_BYTES"])
    on_commit(db.session, lambda: path.unlink(missing_ok=True))
    return result
