"""The limits' storage down (Redis stopped for real): gifts and sign-ins go on, still limited,
each process counting in its own memory meanwhile, and the limits go back to Redis once it
answers again (extensions.StorageOutage for the API, Flask-Limiter's in-memory fallback for the
pages). Before, every pledge was a 500 while Redis was away. A private redis-server; no mock."""
from __future__ import annotations

import itertools
import json
import re

import pytest
import redis
import sqlalchemy as sa

from filmfund.extensions import db, storage_outage
from filmfund.rewards.models import Pledge
from tests.redis_server import RedisServer
from tests.waiting import wait_until

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def limits_server(tmp_path):
    server = RedisServer(tmp_path, persistent=True).start()  # its counts survive its restart
    yield server
    server.stop()


@pytest.fixture
def app_overrides(app_overrides, limits_server):
    return {**app_overrides, "RATELIMIT_STORAGE_URI": limits_server.url}


@pytest.fixture
def counts(limits_server):
    """The limits' counters in Redis, by the client address in their key."""
    server = redis.Redis.from_url(limits_server.url)

    def read() -> dict[str, int]:
        found = {}
        for key in server.keys("LIMITS:*"):
            address = re.search(rb"(\d+\.\d+\.\d+\.\d+)", key)
            found[address.group(1).decode()] = found.get(address.group(1).decode(), 0) + int(server.get(key))
        return found

    return read


def _pledge(client, address: str = "10.0.0.1"):
    return client.post("/api/v1/pledges", data=json.dumps({"amount": 2500, "email": f"{address}@example.org"}),
                       content_type="application/json", environ_base={"REMOTE_ADDR": address})


# Flask-Limiter's in-memory fallback lives as long as the process (as in production): each
# outage of this module's tests is seen from addresses of its own.
_outages = itertools.count(1)


def _ask_link(client, address: str):
    """A sign-in POST without a password (a link asked for): limited 10 per 5 minutes per address."""
    token = CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)
    return client.post("/login", data={"csrf_token": token, "email": f"someone-{address}@example.org"},
                       environ_base={"REMOTE_ADDR": address})


def test_a_donor_gives_while_redis_is_down_still_limited_and_redis_counts_again_once_back(
        client, campaign, limits_server, counts):
    assert _pledge(client).status_code == 201
    assert counts() == {"10.0.0.1": 1}
    limits_server.stop()
    try:
        codes = [_pledge(client).status_code for _ in range(31)]
        # Counted from nothing in this process's memory: 30 more, then refused, with a time to come back.
        assert codes == [201] * 30 + [429]
        refused = _pledge(client)
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
        assert _pledge(client, "10.0.0.2").status_code == 201  # each client its own count still
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Pledge)) == 32  # every 201 a pledge kept
    finally:
        limits_server.start()
    # Back: within the outage's back-off (1 s here), a pledge is counted in Redis again.
    wait_until(lambda: _pledge(client, "10.0.0.3").status_code == 201 and counts().get("10.0.0.3"),
               timeout=15, interval=0.2, message="the pledge's limit counted in Redis again")
    assert not storage_outage.ongoing()
    assert counts()["10.0.0.1"] == 1  # the outage's own counts stayed in memory


def test_sign_in_goes_on_while_redis_is_down_still_limited(client, campaign, limits_server, counts):
    n = next(_outages)
    assert _ask_link(client, "10.1.0.1").status_code == 302
    assert counts() == {"10.1.0.1": 1}
    limits_server.stop()
    try:
        codes = [_ask_link(client, f"10.1.{n}.2").status_code for _ in range(11)]
        assert codes == [302] * 10 + [429]  # a 500 before; now limited by this process's memory
    finally:
        limits_server.start()
    # Flask-Limiter tries Redis again on its own back-off (1, 2, 4 ... s): then counts there again.
    wait_until(lambda: _ask_link(client, f"10.1.{n}.3").status_code == 302 and counts().get(f"10.1.{n}.3"),
               timeout=40, interval=0.5, message="the sign-in limit counted in Redis again")
    assert counts()["10.1.0.1"] == 1 and f"10.1.{n}.2" not in counts()
