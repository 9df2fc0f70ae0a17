"""Browser-to-S3 uploads: the browser fills a multipart upload part by part (presigned PUTs), then
the object is checked, moved to its content key and registered like any upload."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer

from filmfund.errors import ConflictError, DomainError, ForbiddenError, ValidationError
from filmfund.media import fixity
from filmfund.media.common import checked_upload, storage
from filmfund.media.ingest import IngestResult, _register_stored
from filmfund.media.storage import DirectUploads, S3Storage, given_up

DIRECT_UPLOAD_TTL = 3600  # a part URL is good for an hour; the upload while it receives parts


def _direct():
    store = storage()
    if not isinstance(store, S3Storage):
        raise ConflictError(_("Direct uploads need S3 storage; use the upload form."),
                            code="direct_upload_unavailable")
    return DirectUploads(store)


def _upload_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="filmfund.media.direct-upload")


def start_direct_upload(user, filename: Any, size: Any) -> dict[str, Any]:
    """Open a multipart upload the browser fills part by part (presigned PUTs), for files too big
    to pass through the app. Size and type are checked here, and again at completion."""
    direct = _direct()
    safe_name = checked_upload(filename, size)
    part_size = max(current_app.config["MEDIA_S3_PART_SIZE"], -(-size // 10000))  # S3: at most 10,000 parts
    key, upload_id = direct.start("application/octet-stream")
    token = _upload_serializer().dumps({"k": key, "i": upload_id, "n": safe_name, "s": size, "u": user.public_id})
    return {"upload": token, "part_size": part_size, "part_count": max(1, -(-size // part_size))}


def _load_upload(user, token: Any) -> dict[str, Any]:
    """The upload a token names while it lives: checked for its signature only, then asked of S3
    how long it has been idle (storage.given_up, the rule the sweep aborts it by): an upload still
    receiving parts goes on however long ago it began; one idle for MEDIA_INCOMING_MAX_AGE, or
    already completed or aborted, is refused."""
    try:
        data, began = _upload_serializer().loads(token if isinstance(token, str) else "", return_timestamp=True)
    except BadSignature:
        raise ValidationError(_("Unknown or expired upload."), code="invalid_upload") from None
    if data.get("u") != user.public_id:
        raise ForbiddenError(_("This upload belongs to another account."))
    last_byte_at = _direct().last_byte_at(data["k"], data["i"], began)
    if last_byte_at is None or given_up(last_byte_at, current_app.config["MEDIA_INCOMING_MAX_AGE"]):
        raise ValidationError(_("Unknown or expired upload."), code="invalid_upload")
    return data


def direct_upload_part_urls(user, token: Any, numbers: Any) -> dict[str, str]:
    data = _load_upload(user, token)
    if not isinstance(numbers, list) or not numbers or len(numbers) > 100 or not all(
            isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 10000 for n in numbers):
        raise ValidationError(_("Ask for 1 to 100 part numbers between 1 and 10000."), code="invalid_parts")
    direct = _direct()
    return {str(n): direct.part_url(data["k"], data["i"], n, DIRECT_UPLOAD_TTL) for n in numbers}


def complete_direct_upload(user, token: Any, parts: Any, title: str | None = None) -> IngestResult:
    """Finish the multipart upload, check the stored size (S3 does not enforce what we signed),
    hash the object, move it to its content key and register the asset."""
    data = _load_upload(user, token)
    direct = _direct()
    try:
        pairs = [(int(p["part"]), str(p["etag"])) for p in parts]
    except (TypeError, KeyError, ValueError):
        raise ValidationError(_("List the parts as [{part, etag}]."), code="invalid_parts") from None
    try:
        size = direct.complete(data["k"], data["i"], pairs)
    except Exception as exc:  # noqa: BLE001 - S3 refused the parts: tell the uploader, keep nothing
        direct.abort(data["k"], data["i"])
        raise ValidationError(_("S3 could not assemble the upload: %(error)s.", error=type(exc).__name__),
                              code="upload_failed") from None
    if size != data["s"] or size > current_app.config["MAX_UPLOAD_BYTES"]:
        direct.abort(data["k"], data["i"])
        raise DomainError(_("The uploaded file has %(size)s bytes, %(announced)s were announced; it was discarded.",
                            size=size, announced=data["s"]),
                          code="size_mismatch", status=413 if size > data["s"] else 400)

    stored = direct.promote(data["k"], Path(data["n"]).suffix, replace=fixity.replace_damaged)
    return _register_stored(stored, data["n"], title, "uploaded from the footage page, directly to S3")
