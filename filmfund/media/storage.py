"""Where footage lives: one interface, a local folder (default) or S3 (`s3://bucket/prefix`).

Objects are content-addressed (`sha256/ab/abcdef…`): a key names exactly one content, so an
object is never overwritten and re-storing the same bytes is a no-op. Bytes move in streams
(8 MiB chunks; S3 multipart above one part), hashed with SHA-256 on the way, never whole in
memory. Uploads land under a temporary key first and are promoted once their hash is known.

An existing object wins, except where the caller says it is damaged (`replace`): then the new
bytes, whose hash is the key, take its place atomically. That is how a fixity failure is
repaired, from a re-ingested intact copy or from the second storage (FILMFUND_REPLICA_URL).
Temporary keys a killed process left behind are removed by `sweep_incoming`, by the one rule
of a temporary upload's life (`given_up`): idle since its last byte, not old since its first.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Callable, Iterator
from urllib.parse import quote, unquote, urlparse

from filmfund.errors import DomainError
from filmfund.media import owners

log = logging.getLogger(__name__)

CHUNK = 8 * 1024 * 1024
Progress = Callable[[int], None]


@dataclass
class Stored:
    key: str
    sha256: str
    size: int
    created: bool  # False when the same content was already stored
    replaced: bool = False  # an existing (damaged) object was replaced by these bytes


Replace = Callable[[str], bool]  # given the SHA-256 of content already stored: replace it?
INCOMING = ".incoming"


def given_up(last_byte_at: datetime | float, older_than: float) -> bool:
    """The one rule of a temporary upload's life, whatever carries it (a resumable upload's partial
    file, a browser's multipart upload straight to S3, a copy being stored under `.incoming`): it
    lives while bytes keep coming, and is given up once `older_than` seconds
    (FILMFUND_MEDIA_INCOMING_MAX_AGE) have passed since its LAST byte (or its start, before any),
    however long ago it began: a card sent over a slow line may take more than a day, and every
    byte it sent would be lost if its age counted from the start. Asked by the sweeps and by the
    requests that go on with an upload, so an upload the next request accepts is one the sweep
    keeps."""
    last = last_byte_at.timestamp() if isinstance(last_byte_at, datetime) else float(last_byte_at)
    return time.time() - last > older_than


class ChecksumMismatch(Exception):
    """The bytes read do not have the SHA-256 they were expected to have; nothing was stored."""


def content_key(sha256: str, suffix: str = "") -> str:
    suffix = suffix.lower() if suffix and len(suffix) <= 10 and suffix[1:].isalnum() else ""
    return f"sha256/{sha256[:2]}/{sha256}{suffix}"


_CONTENT_KEY = re.compile(r"sha256/([0-9a-f]{2})/(\1[0-9a-f]{62})(?:\.\w{1,9})?")


def key_sha256(key: str | None) -> str | None:
    """The SHA-256 a content key names (content_key's inverse), None for a key of another form."""
    m = _CONTENT_KEY.fullmatch(key or "")
    return m.group(2) if m else None


def sha256_file(path: str | Path, progress: Progress | None = None) -> tuple[str, int]:
    """Streaming SHA-256 (8 MiB readinto: ~1.4 GiB/s at ~25 MB RSS, see media.md)."""
    digest = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    size = 0
    with open(path, "rb") as fh:
        while n := fh.readinto(buf):
            digest.update(view[:n])
            size += n
            if progress:
                progress(n)
    return digest.hexdigest(), size


class _HashingReader:
    """Reads from `src` while hashing and counting: the one pass over the bytes."""

    def __init__(self, src: BinaryIO, progress: Progress | None = None, limit: int | None = None):
        self.src, self.progress, self.limit = src, progress, limit
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = CHUNK) -> bytes:
        data = self.src.read(n)
        if data:
            self.digest.update(data)
            self.size += len(data)
            if self.limit is not None and self.size > self.limit:
                raise TooLarge(f"upload is larger than {self.limit} bytes")
            if self.progress:
                self.progress(len(data))
        return data


class StorageFull(DomainError):
    """The storage's disk is full: nothing was stored (the partial file is removed)."""
    status, code = 507, "storage_full"


def _raise_if_full(exc: OSError, root: Path) -> None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise StorageFull(f"The footage storage ({root}) is full: nothing was stored. Free some space "
                          "(or move FILMFUND_STORAGE_URL to a larger volume) and upload again.") from None


class StorageUnavailable(DomainError):
    """The storage failed mid-upload: nothing was stored or registered."""
    status, code = 503, "storage_unavailable"


class TooLarge(Exception):
    pass


def _reachable(method):
    """An S3 read that cannot reach the storage (its endpoint down, a connection timing out):
    a 503 that says so (StorageUnavailable), not a bare 500, for the donor's poster or stream."""
    @functools.wraps(method)
    def read(self, *args, **kwargs):
        from botocore.exceptions import ConnectionError as BotoConnectionError  # deferred: as boto3

        try:
            return method(self, *args, **kwargs)
        except BotoConnectionError as exc:
            from flask_babel import gettext as _  # deferred: the command line's light start

            log.error("the footage storage cannot be reached: %s", exc)
            raise StorageUnavailable(str(_("The footage storage cannot be reached right now. "
                                            "Try again in a few minutes."))) from exc
    return read


def _check_expected(sha: str, expect: str | None) -> None:
    if expect is not None and sha != expect:
        raise ChecksumMismatch(f"the copy read has SHA-256 {sha}, expected {expect}")


class Storage:
    """The interface both backends keep."""

    url: str

    def put_stream(self, src: BinaryIO, suffix: str = "", progress: Progress | None = None,
                   limit: int | None = None, *, expect: str | None = None, replace: Replace | None = None
                   ) -> Stored:
        """Store a stream under its content key. `expect`: the SHA-256 it must have (else
        ChecksumMismatch, nothing stored). `replace(sha)`: asked when that content is already
        stored; True means the stored object is damaged and these bytes replace it."""
        raise NotImplementedError

    def restore(self, key: str, src: BinaryIO, sha256: str) -> Stored:
        """Write `key` (a content key) from a copy elsewhere, only if the copy has the recorded
        SHA-256; the object at `key`, if any, is replaced."""
        return self.put_stream(src, Path(key).suffix, expect=sha256, replace=lambda _sha: True)

    def sweep_incoming(self, older_than: float) -> int:
        """Remove temporary upload objects untouched for `older_than` seconds (a process killed
        mid-upload leaves them); the number removed."""
        raise NotImplementedError

    def put_file(self, path: str | Path, suffix: str = "", progress: Progress | None = None, *,
                 replace: Replace | None = None) -> Stored:
        with open(path, "rb") as fh:
            return self.put_stream(fh, suffix or Path(path).suffix, progress, replace=replace)

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def size(self, key: str) -> int:
        raise NotImplementedError

    def open(self, key: str) -> BinaryIO:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def keys(self, prefix: str = "") -> list[str]:
        raise NotImplementedError

    @contextlib.contextmanager
    def local_path(self, key: str, workdir: str | Path) -> Iterator[Path]:
        """A path ffmpeg can read: the file itself (local) or a streamed temporary copy (S3)."""
        raise NotImplementedError

    def location(self, key: str) -> str:
        """Where an object is, as the crew would look for it: a file's path, or its s3:// address."""
        raise NotImplementedError

    def local_file(self, key: str) -> Path | None:
        """The object's own file when the backend is a local folder (for send_file), else None."""
        return None

    def presigned_get(self, key: str, ttl: int, filename: str, content_type: str, *, inline: bool = False
                      ) -> str | None:
        """A time-limited direct link (S3), or None when the app must serve the bytes itself.
        `inline`: for a player or an <img>, not a download."""
        return None

    def sha256_of(self, key: str) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        with contextlib.closing(self.open(key)) as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size


class LocalStorage(Storage):
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / INCOMING).mkdir(exist_ok=True)
        self.url = self.root.as_uri()

    def location(self, key):
        return str(self._path(key))

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"key outside the storage folder: {key!r}")
        return path

    def put_stream(self, src, suffix="", progress=None, limit=None, *, expect=None, replace=None) -> Stored:
        reader = _HashingReader(src, progress, limit)
        try:
            fd, tmp = tempfile.mkstemp(prefix=owners.file_prefix(), dir=self.root / INCOMING)
        except OSError as exc:
            _raise_if_full(exc, self.root)
            raise
        try:
            try:
                with os.fdopen(fd, "wb") as out:
                    while chunk := reader.read(CHUNK):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as exc:
                _raise_if_full(exc, self.root)  # the partial file goes in `finally`
                raise
            sha = reader.digest.hexdigest()
            _check_expected(sha, expect)
            key = content_key(sha, suffix)
            final = self._path(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)  # stored originals are read-only
            try:
                os.link(tmp, final)  # atomic and never replaces: an existing object wins ...
                created = True
            except FileExistsError:
                created = False
            if not created and replace is not None and replace(sha):
                os.replace(tmp, final)  # ... unless it is damaged: atomic swap to the intact bytes
                return Stored(key, sha, reader.size, False, replaced=True)
            return Stored(key, sha, reader.size, created)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def exists(self, key):
        return self._path(key).is_file()

    def size(self, key):
        return self._path(key).stat().st_size

    def open(self, key):
        return open(self._path(key), "rb")

    def delete(self, key):
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def sweep_incoming(self, older_than):
        removed = 0
        for path in (self.root / INCOMING).iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.is_file() and given_up(path.stat().st_mtime, older_than):
                    path.unlink()
                    removed += 1
        return removed

    def keys(self, prefix=""):
        base = self.root
        return sorted(str(p.relative_to(base)) for p in base.rglob("*")
                      if p.is_file() and not p.relative_to(base).parts[0].startswith(".")
                      and str(p.relative_to(base)).startswith(prefix))

    @contextlib.contextmanager
    def local_path(self, key, workdir):
        yield self._path(key)

    def local_file(self, key):
        return self._path(key)


class S3Storage(Storage):
    def __init__(self, url: str, endpoint_url: str | None = None, part_size: int = CHUNK):
        import boto3  # deferred: only a process that uses S3 storage loads boto3
        from botocore.config import Config  # deferred: as boto3 above

        parsed = urlparse(url)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.url = url
        self.part_size = max(part_size, 5 * 1024 * 1024)  # S3's smallest non-final part
        # SigV4 everywhere: without it boto3 presigns SigV2 URLs (reliability.md).
        self.client = boto3.client("s3", endpoint_url=endpoint_url,
                                   config=Config(signature_version="s3v4", retries={"max_attempts": 5,
                                                                                     "mode": "standard"}))

    def _k(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def location(self, key):
        return f"s3://{self.bucket}/{self._k(key)}"

    def put_stream(self, src, suffix="", progress=None, limit=None, *, expect=None, replace=None) -> Stored:
        reader = _HashingReader(src, progress, limit)
        tmp_key = self._k(f"{INCOMING}/{uuid.uuid4().hex}")
        from botocore.exceptions import BotoCoreError, ClientError  # deferred: as boto3 above

        try:
            first = _read_full(reader, self.part_size)
            if len(first) < self.part_size:  # small: one PUT
                self.client.put_object(Bucket=self.bucket, Key=tmp_key, Body=first)
            else:
                self._multipart(tmp_key, first, reader)
        except (BotoCoreError, ClientError) as exc:
            log.warning("storage failed during an upload to %s: %s", self.url, exc)
            raise StorageUnavailable("The footage storage failed during the upload: nothing was stored. "
                                     "Try again in a moment.") from None
        try:
            sha = reader.digest.hexdigest()
            _check_expected(sha, expect)
            key = content_key(sha, suffix)
            created = not self.exists(key)
            replaced = not created and replace is not None and replace(sha)
            if created or replaced:
                # Server-side copy (boto3 switches to multipart copy for big objects).
                self.client.copy({"Bucket": self.bucket, "Key": tmp_key}, self.bucket, self._k(key),
                                 ExtraArgs={"Metadata": {"sha256": sha}, "MetadataDirective": "REPLACE"})
            return Stored(key, sha, reader.size, created, replaced=replaced)
        finally:
            self.client.delete_object(Bucket=self.bucket, Key=tmp_key)

    def _multipart(self, tmp_key: str, first: bytes, reader: _HashingReader) -> None:
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=tmp_key)
        upload_id = upload["UploadId"]
        parts = []
        try:
            chunk, number = first, 1
            while chunk:
                resp = self.client.upload_part(Bucket=self.bucket, Key=tmp_key, UploadId=upload_id,
                                               PartNumber=number, Body=chunk)
                parts.append({"ETag": resp["ETag"], "PartNumber": number})
                number += 1
                chunk = _read_full(reader, self.part_size)
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=tmp_key, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts})
        except BaseException:
            # Best effort (the storage may be what failed): the incoming sweep removes what stays.
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=tmp_key, UploadId=upload_id)
            raise

    @_reachable
    def exists(self, key):
        from botocore.exceptions import ClientError  # deferred: as boto3 above

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    @_reachable
    def size(self, key):
        return int(self.client.head_object(Bucket=self.bucket, Key=self._k(key))["ContentLength"])

    @_reachable
    def open(self, key):
        return self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"]

    def delete(self, key):
        self.client.delete_object(Bucket=self.bucket, Key=self._k(key))

    def sweep_incoming(self, older_than):
        prefix = self._k(f"{INCOMING}/")
        removed = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if given_up(obj["LastModified"], older_than):
                    self.client.delete_object(Bucket=self.bucket, Key=obj["Key"])
                    removed += 1
        # Multipart uploads a killed worker or an abandoned browser upload never completed: their
        # parts are stored (and billed) without ever appearing as an object. One still receiving
        # parts is kept, however long ago it was initiated (given_up: its last part counts).
        for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if given_up(upload["Initiated"], older_than):
                    last = self.multipart_last_byte_at(upload["Key"], upload["UploadId"], upload["Initiated"])
                    if last is not None and not given_up(last, older_than):
                        continue
                    with contextlib.suppress(Exception):
                        self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                           UploadId=upload["UploadId"])
                        removed += 1
        return removed

    def multipart_last_byte_at(self, key: str, upload_id: str, began: datetime) -> datetime | None:
        """When a multipart upload (`key`: the bucket's own key) last received bytes: its latest
        part's time, or `began` (when it was initiated) before any; None once it is gone
        (completed or aborted)."""
        from botocore.exceptions import ClientError  # deferred: as boto3 above

        latest = began
        try:
            for page in self.client.get_paginator("list_parts").paginate(Bucket=self.bucket, Key=key,
                                                                         UploadId=upload_id):
                for part in page.get("Parts", []):
                    latest = max(latest, part["LastModified"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchUpload", "404", "NotFound"):
                return None
            raise
        return latest

    def keys(self, prefix=""):
        out = []
        base = self._k("")
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._k(prefix)):
            for obj in page.get("Contents", []):
                k = obj["Key"][len(base):] if base else obj["Key"]
                if not k.startswith("."):
                    out.append(k)
        return sorted(out)

    @contextlib.contextmanager
    def local_path(self, key, workdir):
        Path(workdir).mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=owners.file_prefix(), dir=workdir, suffix=Path(key).suffix)
        try:
            with os.fdopen(fd, "wb") as out, contextlib.closing(self.open(key)) as body:
                shutil.copyfileobj(body, out, CHUNK)
            yield Path(tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def presigned_get(self, key, ttl, filename, content_type, *, inline=False):
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._k(key),
                    "ResponseContentDisposition": content_disposition(filename, inline=inline),
                    "ResponseContentType": content_type,
                    "ResponseCacheControl": "private, no-store"},
            ExpiresIn=int(ttl), HttpMethod="GET")


class DirectUploads:
    """Browser-to-S3 multipart uploads: the browser PUTs parts to presigned URLs, we only sign
    and complete. The object lands under a temporary key; `promote` hashes it (streaming from
    S3) and copies it to its content key."""

    def __init__(self, store: S3Storage):
        self.store = store

    def start(self, content_type: str) -> tuple[str, str]:
        key = self.store._k(f"{INCOMING}/{uuid.uuid4().hex}")
        upload = self.store.client.create_multipart_upload(Bucket=self.store.bucket, Key=key, ContentType=content_type)
        return key, upload["UploadId"]

    def part_url(self, key: str, upload_id: str, number: int, ttl: int) -> str:
        return self.store.client.generate_presigned_url(
            "upload_part", Params={"Bucket": self.store.bucket, "Key": key, "UploadId": upload_id,
                                   "PartNumber": number}, ExpiresIn=int(ttl), HttpMethod="PUT")

    def complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> int:
        self.store.client.complete_multipart_upload(
            Bucket=self.store.bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in sorted(parts)]})
        return int(self.store.client.head_object(Bucket=self.store.bucket, Key=key)["ContentLength"])

    def last_byte_at(self, key: str, upload_id: str, began: datetime) -> datetime | None:
        """When this browser upload last sent a part (`began` before any); None once it is gone."""
        return self.store.multipart_last_byte_at(key, upload_id, began)

    def abort(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(Exception):
            self.store.client.abort_multipart_upload(Bucket=self.store.bucket, Key=key, UploadId=upload_id)
        with contextlib.suppress(Exception):
            self.store.client.delete_object(Bucket=self.store.bucket, Key=key)

    def promote(self, key: str, suffix: str, replace: Replace | None = None) -> Stored:
        digest = hashlib.sha256()
        size = 0
        body = self.store.client.get_object(Bucket=self.store.bucket, Key=key)["Body"]
        with contextlib.closing(body):
            while chunk := body.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        sha = digest.hexdigest()
        final = content_key(sha, suffix)
        created = not self.store.exists(final)
        replaced = not created and replace is not None and replace(sha)
        if created or replaced:
            self.store.client.copy({"Bucket": self.store.bucket, "Key": key}, self.store.bucket, self.store._k(final),
                                   ExtraArgs={"Metadata": {"sha256": sha}, "MetadataDirective": "REPLACE"})
        self.store.client.delete_object(Bucket=self.store.bucket, Key=key)
        return Stored(final, sha, size, created, replaced=replaced)


def _read_full(reader: _HashingReader, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        data = reader.read(min(CHUNK, n - got))
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


NAME_MAX = 150  # characters of a download's name


def _within_name_max(filename: str) -> str:
    """The name cut to NAME_MAX characters with its extension kept: a long title downloads as
    `采访记录：王明…….mp4`, not as a file the phone cannot open. The extension is the last suffix
    (up to 10 ASCII letters or digits) and, before it, a language tag or a second suffix like it
    (`.zh-Hans.vtt`), so that two captions' files of one long title keep their languages apart."""
    if len(filename) <= NAME_MAX:
        return filename
    stem, tail = filename, ""
    for longest in (11, 17):
        head, dot, ext = stem.rpartition(".")
        if not dot or not head or len(ext) + 1 > longest or not (ext.isascii() and ext.replace("-", "").isalnum()):
            break
        stem, tail = head, f".{ext}{tail}"
    return stem[:NAME_MAX - len(tail)].rstrip() + tail


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """RFC 6266 attachment (or inline) header: the UTF-8 name (`filename*`, what browsers read)
    and an ASCII one for the rest. ASCII, not merely letters: a header is sent as Latin-1 at most
    (waitress answers a 500 to anything else), so a Chinese title's own characters there broke
    the download; the fallback names such a file `download` with its extension. Both are at most
    NAME_MAX characters, their extension kept (`_within_name_max`)."""
    filename = _within_name_max(filename)
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._- ") else "_" for c in filename)
    if not any(c.isalnum() for c in Path(fallback).stem):
        fallback = "download" + Path(fallback).suffix
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def open_storage(url: str, endpoint_url: str | None = None, part_size: int = CHUNK,
                 setting: str = "FILMFUND_STORAGE_URL") -> Storage:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStorage(unquote(parsed.path))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"{setting}: s3:// needs a bucket (s3://bucket/prefix)")
        return S3Storage(url, endpoint_url, part_size)
    raise ValueError(f"{setting}: unsupported scheme {parsed.scheme!r} (use file:// or s3://)")
