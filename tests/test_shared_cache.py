"""The shared cache in front of the app (filmfund/shared_cache.py): the public campaign document
kept a moment for anonymous readers, never for anyone whose request says who they are, and never
hiding this process's own writes."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import sqlalchemy as sa

from filmfund import api
from filmfund.extensions import db
from filmfund.shared_cache import MAX_ENTRIES, SharedCache, _storable

CAMPAIGN = "/api/v1/campaign"


class Clock:
    """The cache's clock, moved by the test (freshness is counted in whole seconds of it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app_overrides():
    return {"PUBLIC_CACHE_SECONDS": 30}


@pytest.fixture
def clock(app) -> Clock:
    cache = app.wsgi_app
    assert isinstance(cache, SharedCache)  # no trusted proxy in tests: the cache is the outermost layer
    cache.forget()
    cache.clock = Clock()
    return cache.clock


def another_process_books(app, net: int, donors: int) -> None:
    """What the worker does in its own process when it books money: the campaign's running total
    changes, and no commit happens in this one."""
    script = textwrap.dedent(f"""
        import sqlalchemy as sa
        engine = sa.create_engine({app.config["SQLALCHEMY_DATABASE_URI"]!r})
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM campaign_totals"))
            conn.execute(sa.text(
                "INSERT INTO campaign_totals (campaign_id, livemode, gross, refunded, net, share_allocated, "
                "paid_out, donors, donations, updated_at) SELECT id, false, :net, 0, :net, 0, 0, :donors, :donors, "
                "CURRENT_TIMESTAMP FROM campaigns"), {{"net": {net}, "donors": {donors}}})
    """)
    db.session.rollback()  # the test's own reads end first (SQLite: one writer), committing nothing here
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def test_an_anonymous_reader_gets_the_kept_document_until_it_is_stale_or_this_process_writes(
        app, client, campaign, clock):
    first = client.get(CAMPAIGN)
    assert first.status_code == 200
    assert first.json["raised"] == 0
    assert first.headers["Cache-Control"] == "public, max-age=30"
    assert {"Accept-Language", "Cookie"} <= {v.strip() for v in first.headers["Vary"].split(",")}
    assert "Age" not in first.headers  # the app's own answer

    another_process_books(app, net=12_500, donors=3)
    clock.now += 29.5
    kept = client.get(CAMPAIGN)
    assert kept.headers["Age"] == "29"  # the kept answer, not the app's: the books moved meanwhile
    assert kept.json["raised"] == 0
    assert kept.data == first.data
    # Security headers come with the kept answer as with the first.
    assert kept.headers["Content-Security-Policy"] == first.headers["Content-Security-Policy"]

    clock.now += 1  # 30.5 s old: stale
    fresh = client.get(CAMPAIGN)
    assert "Age" not in fresh.headers
    assert (fresh.json["raised"], fresh.json["donors"]) == (12_500, 3)

    # A write committed in this process shows on the next answer, however fresh the kept one.
    assert client.get(CAMPAIGN).headers["Age"] == "0"
    db.session.execute(sa.text("UPDATE campaign_totals SET net = 20000, donors = 4"))
    db.session.commit()
    after = client.get(CAMPAIGN)
    assert "Age" not in after.headers
    assert (after.json["raised"], after.json["donors"]) == (20_000, 4)


def test_an_answer_asked_while_a_write_commits_is_not_kept(app, client, clock):
    # No campaign fixture: the first request loads the campaign file and commits it (a write) while
    # it is being answered, so that answer may predate the write and is not kept; the next one is.
    first = client.get(CAMPAIGN)
    assert first.status_code == 200 and first.headers["Cache-Control"] == "public, max-age=30"
    assert app.wsgi_app._stored == {}
    assert "Age" not in client.get(CAMPAIGN).headers
    assert client.get(CAMPAIGN).headers["Age"] == "0"


@pytest.mark.parametrize("who", ["cookie", "token"])
def test_a_request_that_says_who_asks_is_never_answered_from_the_cache(app, client, campaign, clock, who):
    assert client.get(CAMPAIGN).status_code == 200  # kept for anonymous readers
    another_process_books(app, net=5_000, donors=1)
    reader = app.test_client()
    header = {}
    if who == "cookie":
        reader.set_cookie("lang", "en")
    else:
        header = {"Authorization": "Bearer nothing-to-see"}
    for _ in range(2):
        resp = reader.get(CAMPAIGN, headers=header)
        assert resp.status_code == 200
        assert "Age" not in resp.headers
        assert resp.json["raised"] == 5_000
        assert "public" not in resp.headers.get("Cache-Control", "")  # nor may any cache on the way keep it
    assert client.get(CAMPAIGN).json["raised"] == 0  # the anonymous answer is still the kept one


def test_each_language_is_kept_apart(app, client, campaign, clock):
    zh = client.get(CAMPAIGN, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    en = client.get(CAMPAIGN, headers={"Accept-Language": "en-GB"})
    assert zh.json["title"] != en.json["title"]
    assert zh.headers["Content-Language"] == "zh-Hans"
    again_zh = client.get(CAMPAIGN, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    again_en = client.get(CAMPAIGN, headers={"Accept-Language": "en-GB"})
    assert "Age" in again_zh.headers and "Age" in again_en.headers
    assert (again_zh.data, again_en.data) == (zh.data, en.data)


def test_an_answer_that_sets_a_cookie_is_neither_kept_nor_public(app, campaign, clock):
    for _ in range(2):
        client = app.test_client()  # a new reader each time, without the cookie the first was given
        resp = client.get(CAMPAIGN + "?lang=zh-Hans")
        assert resp.headers.get("Set-Cookie", "").startswith("lang=zh-Hans")
        assert "public" not in resp.headers["Cache-Control"]
        assert "Age" not in resp.headers


def test_a_stranger_cannot_fill_the_memory_with_new_keys(app, client, campaign, clock):
    for i in range(MAX_ENTRIES + 40):
        assert client.get(CAMPAIGN, headers={"Accept-Language": f"x-{i}"}).status_code == 200
    assert len(app.wsgi_app._stored) == MAX_ENTRIES


def test_only_declared_public_paths_and_gets_are_kept(app, client, campaign, clock):
    assert api.PUBLIC_PATHS == {CAMPAIGN}
    client.get(CAMPAIGN)
    assert client.head(CAMPAIGN).status_code == 200
    assert "Age" not in client.head(CAMPAIGN).headers
    for _ in range(2):
        assert "Age" not in client.get(CAMPAIGN + "/").headers  # another path (a 404 or a redirect)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("app_overrides", [{"PUBLIC_CACHE_SECONDS": 0}])
def test_with_no_seconds_set_nothing_is_public_nor_kept(app, client, campaign, clock):
    client.get(CAMPAIGN)
    resp = client.get(CAMPAIGN)
    assert "public" not in resp.headers.get("Cache-Control", "")
    assert "Age" not in resp.headers
    assert app.wsgi_app._stored == {}


@pytest.mark.parametrize(("status", "headers", "seconds"), [
    ("200 OK", [("Cache-Control", "public, max-age=5")], 5),
    ("200 OK", [("Cache-Control", "public, max-age=5"), ("Vary", "Accept-Language, Cookie")], 5),
    ("200 OK", [("Cache-Control", "max-age=5")], 0),  # not said to be public
    ("200 OK", [("Cache-Control", "public, max-age=5, no-store")], 0),
    ("200 OK", [("Cache-Control", "public, max-age=5"), ("Set-Cookie", "a=b")], 0),
    ("200 OK", [("Cache-Control", "public, max-age=5"), ("Vary", "User-Agent")], 0),  # a key it does not keep
    ("200 OK", [("Cache-Control", "public, max-age=soon")], 0),
    ("404 NOT FOUND", [("Cache-Control", "public, max-age=5")], 0),
])
def test_what_may_be_kept(status, headers, seconds):
    assert _storable(status, headers) == seconds


def test_a_public_route_has_no_roles_limit_nor_variables():
    bp = api.Blueprint("probe", __name__, url_prefix="/probe")
    for kwargs in ({"roles": ("donor",)}, {"limit": "5 per minute"}):
        with pytest.raises(ValueError, match="public"):
            api.route(bp, "/x", "GET", "x", public=True, **kwargs)
    with pytest.raises(ValueError, match="public"):
        api.route(bp, "/x/<int:n>", "GET", "x", public=True)
    with pytest.raises(ValueError, match="public"):
        api.route(bp, "/x", "POST", "x", public=True)
    assert "/probe/x" not in api.PUBLIC_PATHS
