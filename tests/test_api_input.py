"""No 500 from input (issue 7.6, API side): every /api/v1 route, as every kind of caller, fed odd
JSON values, wrong types, huge numbers, deep nesting and odd query strings and path ids,
answers a clear 4xx (or a 2xx) with the API's error shape, never a 500."""
from __future__ import annotations

import json
import re

import pytest

from filmfund.extensions import db
from filmfund.rewards.models import Pledge
import sqlalchemy as sa

ODD_VALUES = [None, True, False, 0, -1, 1.5, -0.0, 10**30, -(10**30), 2**63, 2**64, "", " ", "x" * 20000,
              "\u0000", "😀", "1e400", [], [1, [2, [3]]], {}, {"$ne": 1}, ["a"] * 1000, "' OR 1=1 --",
              "<script>", "9999-12-31", "../../etc/passwd"]
RAW_BODIES = [
    b"[" * 5000 + b"]" * 5000,                          # nested 5,000 deep
    b'{"amount":' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b'{"amount": 1e400, "email": "a@example.org"}',      # a float that is infinite
    b'{"amount": NaN, "email": "a@example.org"}',
    b'{"amount": Infinity, "email": "a@example.org"}',
    b'{"amount": -Infinity, "email": "a@example.org"}',
    b'{"amount": ' + b"9" * 5000 + b', "email": "a@example.org"}',   # an integer with 5,000 digits
    b'{"amount": 2500, "email": "a@example.org", "credit_name": "\\ud800"}',  # a lone surrogate
    b'{"amount": 2500, "email": "\\u0000@example.org"}',
    b'{"amount": 2500, "amount": "x"}',
    b"\xff\xfe\x00garbage", b"", b"null", b"[]", b'"a string"', b"12",
]
ODD_PATH_IDS = ["0", "-1", "99999999999999999999999", "x" * 300, "%00", "%2e%2e", "null", "😀", "0123456789abcdef" * 2]
ODD_QUERIES = [{"day": "9999-12-31"}, {"day": "0001-01-01"}, {"day": "2026-02-30"}, {"day": "x"},
               {"day": "99999-01-01"}, {"state": "nonsense"}, {"state": "ready", "day": "9999-12-31"},
               {"q": "x" * 5000}, {"q": "%"}, {"q": "\x00"}, {"camera": "_%\\"}, {"limit": "-1"}, {"page": "1e9"},
               {"before": "99999999999999999999"}]


def _api_rules(app):
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule, method))
    return out


def _paths(rule) -> list[str]:
    if not rule.arguments:
        return [rule.rule]
    paths = []
    for value in ODD_PATH_IDS:
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<int:{arg}>", value).replace(f"<{arg}>", value)
            path = path.replace(f"<string:{arg}>", value)
        paths.append(path)
    return paths


def _check(resp, what: str, failures: list[str]) -> None:
    if resp.status_code >= 500:
        failures.append(f"{what}: {resp.status_code} {resp.get_data(as_text=True)[:200]}")
    elif resp.status_code >= 400 and resp.status_code != 405:
        body = resp.get_json(silent=True)
        if not (isinstance(body, dict) and isinstance(body.get("error"), dict)
                and {"code", "message"} <= set(body["error"])):
            failures.append(f"{what}: {resp.status_code} without the error shape: {resp.get_data(as_text=True)[:200]}")


@pytest.fixture
def callers(app, make_user, token_for):
    from tests.site.helpers import pay

    pay(5000, "donor@example.org")
    return {"anon": {}, "donor": token_for(make_user("donor@example.org", "donor")),
            "producer": token_for(make_user("producer@filmfund.test", "producer")),
            "partner": token_for(make_user("partner@xinxing.test", "partner"))}


def _operation_fields(app) -> dict[tuple[str, str], set[str]]:
    """(rule, method) -> the request body's fields, as its route declares them."""
    from filmfund.api import OPERATIONS

    out = {}
    for op in OPERATIONS:
        rule = re.sub(r"\{(\w+)\}", r"<\1>", op.path)
        out[(rule, op.method.upper())] = set(op.body.model_fields) if op.body else set()
    return out


def test_odd_json_values_in_every_field_never_give_a_500(app, callers):
    failures: list[str] = []
    client = app.test_client()
    fields_of = _operation_fields(app)
    for rule, method in _api_rules(app):
        if method == "GET":
            continue
        plain = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule)
        fields = fields_of.get((plain, method)) or {"amount", "email", "reward", "title"}
        path = _paths(rule)[-1]
        for role in ("anon", "producer"):
            for field in sorted(fields):
                for value in ODD_VALUES:
                    body = {"amount": 2500, "email": "fuzz@example.org", "reward": "stills",
                            "title": "t", "body": "b", "audience": "everyone", field: value}
                    body = {k: v for k, v in body.items() if k in fields}
                    resp = client.open(path, method=method, json=body, headers=callers[role])
                    _check(resp, f"{method} {path} as {role}, {field}={value!r:.40}", failures)
    assert not failures, "\n".join(failures[:40])


def test_malformed_bodies_never_give_a_500(app, callers):
    failures: list[str] = []
    client = app.test_client()
    for rule, method in _api_rules(app):
        if method == "GET":
            continue
        for path in _paths(rule)[:2]:
            for role, headers in callers.items():
                for raw in RAW_BODIES:
                    for ctype in ("application/json", "text/plain"):
                        resp = client.open(path, method=method, data=raw,
                                           headers={**headers, "Content-Type": ctype})
                        _check(resp, f"{method} {path} as {role}, body {raw[:30]!r} ({ctype})", failures)
    assert not failures, "\n".join(failures[:40])


def test_odd_query_strings_path_ids_and_headers_never_give_a_500(app, callers):
    failures: list[str] = []
    client = app.test_client()
    for rule, method in _api_rules(app):
        for path in _paths(rule):
            for role, headers in callers.items():
                for query in (ODD_QUERIES if path == _paths(rule)[0] else ODD_QUERIES[:1]):
                    resp = client.open(path, method=method, query_string=query, headers=headers,
                                       json={} if method != "GET" else None)
                    _check(resp, f"{method} {path}?{query} as {role}", failures)
    for header in ("Bearer " + "x" * 5000, "Bearer", "Basic Zm9vOmJhcg==", "Bearer \x00", "bearer ff_" + "é" * 10):
        resp = client.get("/api/v1/me/entitlements", headers={"Authorization": header})
        _check(resp, f"Authorization {header[:20]!r}", failures)
        assert resp.status_code == 401
    resp = client.post("/api/v1/pledges", json={"amount": 2500, "email": "a@example.org"},
                       headers={"Idempotency-Key": "k" * 5000})
    _check(resp, "a 5,000-character Idempotency-Key", failures)
    assert not failures, "\n".join(failures[:40])


def test_the_footage_day_filter_at_the_end_of_time(app, callers):
    client = app.test_client()
    for day in ("9999-12-31", "0001-01-01"):
        resp = client.get("/api/v1/media/assets", query_string={"day": day}, headers=callers["producer"])
        assert resp.status_code in (200, 400), resp.get_data(as_text=True)
    bad = client.get("/api/v1/media/assets", query_string={"day": "2026-13-01"}, headers=callers["producer"])
    assert bad.status_code == 400 and bad.get_json()["error"]["code"]


def test_a_pledge_nested_5000_deep_is_a_clear_400_and_writes_nothing(app, callers):
    client = app.test_client()
    before = db.session.scalar(sa.select(sa.func.count(Pledge.id)))
    raw = b'{"amount": 2500, "email": "a@example.org", "credit_name": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    resp = client.post("/api/v1/pledges", data=raw, headers={"Content-Type": "application/json"})
    assert resp.status_code in (400, 413)
    assert resp.get_json()["error"]["code"] in ("invalid_json", "too_large")
    for raw in (b'{"amount": 1e400, "email": "a@example.org"}', b'{"amount": NaN, "email": "a@example.org"}',
                b'{"amount": 10000000000000000000000, "email": "a@example.org"}',
                b'{"amount": "2500", "email": "a@example.org"}', b'{"amount": 2500.5, "email": "a@example.org"}',
                b'{"amount": true, "email": "a@example.org"}', b'{"amount": 2500, "email": ["a@example.org"]}',
                b'{"amount": 2500, "email": "a@example.org", "anonymous": "yes"}'):
        resp = client.post("/api/v1/pledges", data=raw, headers={"Content-Type": "application/json"})
        assert resp.status_code == 400, (raw, resp.status_code, resp.get_data(as_text=True))
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(Pledge.id))) == before


def test_json_body_refuses_non_finite_numbers_and_depth(app):
    from filmfund.api import json_body
    from filmfund.errors import ValidationError

    for raw in (b"NaN", b'{"a": Infinity}', b'{"a": 1e999}', b"[" * 200 + b"]" * 200, b'{"a": "\\ud800"}'):
        with app.test_request_context("/api/v1/x", method="POST", data=raw, content_type="application/json"):
            with pytest.raises(ValidationError):
                json_body()
    with app.test_request_context("/api/v1/x", method="POST", data=json.dumps({"a": [[{"b": 1}]]}),
                                  content_type="application/json"):
        assert json_body() == {"a": [[{"b": 1}]]}


def test_page_forms_with_a_nul_character_are_refused_not_500(app, make_user):
    from tests.site.helpers import csrf_token

    client = app.test_client()
    token = csrf_token(client, "/login")
    for path, data in (("/login", {"email": "a\x00@example.org", "password": "x"}),
                       ("/login", {"email": "a\x00@example.org"}),
                       ("/login/reset", {"email": "a@example.org\x00"}),
                       ("/pledge", {"amount": "25", "email": "a@example.org", "credit_name": "A\x00B"})):
        resp = client.post(path, data={"csrf_token": token, **data})
        assert resp.status_code == 400, (path, resp.status_code)
    from filmfund.auth.services import normalize_email
    from filmfund.errors import ValidationError

    for bad in ("a\x00@example.org", "a\x1f@example.org", "a\x7f@example.org"):
        with pytest.raises(ValidationError):
            normalize_email(bad)


def test_the_api_refuses_in_the_callers_language_without_the_parsers_english(app, client, campaign):
    """A zh-Hans caller reads why in Chinese: no token, and a body that is no JSON (where it breaks,
    not Python's parser's English sentence)."""
    zh = {"Accept-Language": "zh-Hans"}
    for headers in ({}, {"Authorization": "Bearer nope"}):
        resp = client.get("/api/v1/me", headers=zh | headers)
        assert resp.status_code == 401
        assert resp.get_json()["error"] == {"code": "unauthorized",
                                            "message": "需要有效的 API 令牌（Authorization: Bearer <token>）。"}
    for raw, said in ((b'{"amount": 1000 "email": "a@example.org"}', "JSON 格式有误：第 1 行第 17 列。"),
                      (b'{"amount": NaN, "email": "a@example.org"}', "JSON 格式有误：JSON 不接受 NaN 这样的数值。"),
                      (b'{"amount": 1e999, "email": "a@example.org"}', "JSON 格式有误：1e999 超出了允许的范围。"),
                      (b'{"email": "\xff"}', "JSON 内容须为 UTF-8 编码的文本。")):
        resp = client.post("/api/v1/pledges", data=raw, content_type="application/json", headers=zh)
        assert resp.status_code == 400 and resp.get_json()["error"] == {"code": "invalid_json", "message": said}, raw
    resp = client.post("/api/v1/pledges", data=b'{"amount": 1000 "email": "a@example.org"}',
                       content_type="application/json")
    assert resp.get_json()["error"]["message"] == "Malformed JSON at line 1, column 17."


def test_refusals_join_and_list_in_the_callers_language(app, client, campaign, producer, partner, token_for):
    """Pydantic writes its lists in English ("'json', 'csv' or 'pdf'", "a and b"), and a field's own
    check in its own words ("Value error, ..."): the caller reads each in their language."""
    zh, en = {"Accept-Language": "zh-Hans"}, {"Accept-Language": "en"}

    def said(path, headers, token=None, **kw):
        resp = client.post(path, headers=headers, **kw) if kw else client.get(path, headers=headers | (token or {}))
        assert resp.status_code == 400, resp.get_json()
        return resp.get_json()["error"]

    assert said("/api/v1/pledges", zh, json={}) == {"code": "missing_field", "message": "amount和email：必填。"}
    assert said("/api/v1/pledges", en, json={})["message"] == "amount and email: required."
    month = "/api/v1/partner/statements/2026-11?format=xml"
    assert said(month, zh, token_for(partner)) == {"code": "invalid_format",
                                                   "message": "format：只能是 'json'、'csv'或'pdf' 之一。"}
    assert said(month, en, token_for(partner))["message"] == "format: must be one of 'json', 'csv', or 'pdf'."
    day = said("/api/v1/donations?from=0", zh, token_for(producer))
    assert day["code"] == "invalid_date" and "Value error" not in day["message"] and day["message"].startswith("from：")
    assert not re.search(r"[A-Za-z]{4,}", day["message"].removeprefix("from："))


def test_the_document_says_any_route_may_answer_a_service_failure(client):
    """README: a pledge may answer 503 payment_provider_busy, a refund or a cancel 502: the OpenAPI
    document declares a 5XX error object on every operation."""
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path, ops in paths.items():
        for method, op in ops.items():
            assert op["responses"]["5XX"]["content"]["application/json"]["schema"]["required"] == ["error"], (path, method)
