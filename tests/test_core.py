import json


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}


def test_security_headers(client):
    resp = client.get("/healthz")
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"


def test_unknown_api_route_is_json_error(client):
    resp = client.get("/api/v1/nope")
    assert resp.status_code == 404
    body = resp.get_json()
    assert body["error"]["code"] == "not_found"
    assert body["error"]["message"]


def test_unknown_page_is_friendly_html(client):
    resp = client.get("/nope", headers={"Accept": "text/html"})
    assert resp.status_code == 404
    assert b"Not found" in resp.data
    assert b"Traceback" not in resp.data


def test_openapi_lists_itself(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert isinstance(doc["paths"], dict)
    json.dumps(doc)
