"""The pledge's limit on Redis, production's storage: the count is sent first and its answer read
once the input is validated (extensions.PerClientLimit.send). A private redis-server; no mock."""
from __future__ import annotations

import json

import pytest
import redis

from filmfund.extensions import _limit_connections, limiter

PLEDGE = json.dumps({"amount": 2500, "email": "donor@example.org"})


@pytest.fixture
def limits_url(session_redis):
    url = session_redis.url.rsplit("/", 1)[0] + "/5"  # a database of our own server, emptied for this test
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def app_overrides(app_overrides, limits_url):
    return {**app_overrides, "RATELIMIT_STORAGE_URI": limits_url}


def _pledge(client, body: str = PLEDGE, address: str = "127.0.0.1"):
    return client.post("/api/v1/pledges", data=body, content_type="application/json",
                       environ_base={"REMOTE_ADDR": address})


def _connections_in_use() -> int:
    pool = limiter.limiter.storage.get_connection().connection_pool
    return len(pool._in_use_connections)


def _limit_connections_idle() -> list:
    """The API limits' own connections, each back once its answer was read whole."""
    return list(_limit_connections.of(limiter.limiter.storage.get_connection().connection_pool).idle)


def test_thirty_pledges_a_minute_then_429_and_every_connection_back_in_the_pool(client, campaign):
    assert type(limiter.limiter.storage).__name__ == "RedisStorage"  # the path under test, not memory://
    codes = [_pledge(client).status_code for _ in range(31)]
    assert codes == [201] * 30 + [429]
    refused = _pledge(client)
    assert refused.get_json()["error"]["code"] == "too_many_requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert _pledge(client, address="10.0.0.2").status_code == 201  # another client has its own count
    assert _connections_in_use() == 0
    assert len(_limit_connections_idle()) == 1  # one request at a time: one connection, always back


def test_a_spent_limit_is_told_before_a_bad_body_and_a_bad_body_is_counted(client, campaign, limits_url):
    bad = json.dumps({"amount": "lots", "email": "donor@example.org"})
    first = _pledge(client, bad)
    assert first.status_code == 400 and first.get_json()["error"]["code"] == "invalid_amount"
    assert _connections_in_use() == 0
    assert len(_limit_connections_idle()) == 1  # read back after the validation failed, not left half used
    assert [_pledge(client).status_code for _ in range(29)] == [201] * 29  # the bad one counted: 30 in all
    refused = _pledge(client, bad)
    assert refused.status_code == 429  # the limit first, though the body is wrong too
    assert _connections_in_use() == 0
    keys = redis.Redis.from_url(limits_url).keys("LIMITS:*")
    assert len(keys) == 1 and int(redis.Redis.from_url(limits_url).get(keys[0])) == 31


def test_a_restarted_redis_still_counts_every_pledge(client, campaign, limits_url):
    """After a restart Redis has closed every connection and forgotten the script (NOSCRIPT):
    each pledge is still counted once, by limits' own call, and answered; the connection that
    failed is dropped, never handed to the next pledge."""
    server = redis.Redis.from_url(limits_url)
    assert _pledge(client).status_code == 201
    [before] = _limit_connections_idle()
    server.client_kill_filter(_type="normal", skipme=True)  # the limit's idle connection among them
    assert _pledge(client).status_code == 201
    assert before not in _limit_connections_idle()
    server.script_flush()
    assert _pledge(client).status_code == 201
    assert _limit_connections_idle() == []  # the one that met NOSCRIPT is gone too
    assert _pledge(client).status_code == 201  # a new connection; the script is loaded again
    keys = server.keys("LIMITS:*")
    assert len(keys) == 1 and int(server.get(keys[0])) == 4
    assert _connections_in_use() == 0
    assert len(_limit_connections_idle()) == 1
