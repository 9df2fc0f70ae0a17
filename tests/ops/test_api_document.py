"""The API document says what the routes really accept, and a 405 says what is allowed."""
from __future__ import annotations

import re

import pytest


def _doc(client) -> dict:
    return client.get("/api/v1/openapi.json").get_json()


def test_a_405_carries_allow(client):
    r = client.delete("/api/v1/campaign")
    assert r.status_code == 405 and r.get_json()["error"]["code"] == "method_not_allowed"
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "OPTIONS"}
    r = client.get("/api/v1/pledges")
    assert r.status_code == 405 and "POST" in r.headers["Allow"]


def test_the_idempotency_key_is_declared_and_enforced_as_declared(client, campaign):
    [param] = _doc(client)["paths"]["/api/v1/pledges"]["post"]["parameters"]
    schema = param["schema"]
    assert (param["name"], schema["minLength"], schema["maxLength"]) == ("Idempotency-Key", 1, 128)
    body = {"amount": 2000, "email": "d@example.org"}
    for key in ("k" * 129, "caf\u00e9".encode().decode("latin-1")):
        assert not re.fullmatch(schema["pattern"], key)
        r = client.post("/api/v1/pledges", json=body, headers={"Idempotency-Key": key})
        assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_idempotency_key"
    assert re.fullmatch(schema["pattern"], "k" * 128)
    assert client.post("/api/v1/pledges", json=body, headers={"Idempotency-Key": "k" * 128}).status_code == 201


def test_the_pledge_currency_is_the_campaigns(client, campaign):
    schema = _doc(client)["paths"]["/api/v1/pledges"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    pattern = schema["properties"]["currency"]["pattern"]
    assert re.fullmatch(pattern, "usd") and re.fullmatch(pattern, "USD") and not re.fullmatch(pattern, "eur")
    assert schema["properties"]["amount"]["maximum"] == 99_999_999  # Stripe charges at most 8 digits of cents


@pytest.mark.parametrize("day, ok", [("2026-11-30", True), ("", True), ("20261130", False), ("2026-W48-1", False),
                                     ("2026-02-30", False), ("30/11/2026", False)])
def test_the_day_filter_takes_exactly_yyyy_mm_dd(client, producer, token_for, day, ok):
    params = {p["name"]: p for p in _doc(client)["paths"]["/api/v1/media/assets"]["get"]["parameters"]}
    assert params["day"]["schema"]["anyOf"][0]["format"] == "date"
    r = client.get("/api/v1/media/assets", query_string={"day": day}, headers=token_for(producer))
    assert r.status_code == (200 if ok else 400), r.get_json()
    if not ok:
        assert r.get_json()["error"]["code"] == "invalid_day"


def test_a_nul_in_a_search_is_a_clear_400(client, producer, token_for):
    r = client.get("/api/v1/media/assets", query_string={"q": "a\x00b"}, headers=token_for(producer))
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_characters"


def test_the_captions_bodies_are_documented_as_what_they_are(client):
    """The captions routes take and give text, not JSON: the document says which text."""
    path = _doc(client)["paths"]["/api/v1/media/assets/{id}/captions/{lang}"]
    assert set(path["put"]["requestBody"]["content"]) == {"text/vtt", "application/x-subrip"}
    assert set(path["get"]["responses"]["200"]["content"]) == {"text/vtt"}
    assert set(path["get"]["responses"]["4XX"]["content"]) == {"application/json"}
