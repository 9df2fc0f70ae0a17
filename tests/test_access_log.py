"""The access log (serving.AccessLog) names no secret: a sign-in, confirmation, unsubscribe,
download or stream link carries its bearer token in its path, and whoever reads the log could
replay it. Those paths are logged as their route's pattern; the others as they are."""
from __future__ import annotations

import logging

import pytest

from filmfund import serving

SECRET = "Zq8v0-SECRET-bearer-token-value-123"


@pytest.fixture
def logged(app, caplog):
    serving.install_access_log(app)
    caplog.set_level(logging.INFO, logger="filmfund.access")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "filmfund.access"]


@pytest.mark.parametrize("path", [
    f"/login/magic/{SECRET}", f"/login/reset/{SECRET}", f"/settings/confirm/{SECRET}",
    f"/unsubscribe/{SECRET}", f"/rewards/survey/{SECRET}", f"/library/download/{SECRET}",
    f"/stream/{SECRET}/master.m3u8",
])
def test_a_path_with_a_token_is_logged_without_it(client, logged, path):
    client.get(path)
    lines = logged()
    assert len(lines) == 1 and SECRET not in lines[0], lines
    assert "<token>" in lines[0]


def test_other_paths_are_logged_as_they_are(client, logged):
    client.get("/api/v1/campaign")
    client.get("/no/such/page")
    lines = logged()
    assert '"GET /api/v1/campaign" 200' in lines[0] and '"GET /no/such/page" 404' in lines[1], lines
