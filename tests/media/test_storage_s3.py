"""Reading footage from S3 when the storage cannot be reached."""
from __future__ import annotations

import pytest


@pytest.mark.one_database  # botocore against a closed port, not the database
def test_a_storage_out_of_reach_is_a_503_that_says_so(app, monkeypatch):
    """Probe (ops, F6): with the S3 endpoint down, a donor's poster or stream segment was a bare
    500 "something went wrong on our side"; the command line said the storage failed. Reads now
    say it too (503, storage_unavailable)."""
    import time

    from filmfund.media.storage import S3Storage, StorageUnavailable
    from tests.redis_server import free_port

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    store = S3Storage("s3://film/media", endpoint_url=f"http://127.0.0.1:{free_port()}")  # nobody listens
    started = time.monotonic()
    for read in (lambda: store.open("ab/cd.jpg"), lambda: store.exists("ab/cd.jpg"), lambda: store.size("ab/cd.jpg")):
        with pytest.raises(StorageUnavailable, match="cannot be reached right now") as caught:
            read()
        assert caught.value.status == 503
    assert time.monotonic() - started < 60
