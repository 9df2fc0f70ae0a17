"""Ids beyond the database column range are a 404 (or 401), never a 500."""

def test_big_ids(app, client, make_user, login_as):
    p = make_user("p@filmfund.test", "producer")
    d = make_user("d@example.org", "donor")
    for path in ("/updates/99999999999999", "/updates/99999999999999/images/x", "/api/v1/updates/99999999999999/publish"):
        r = client.post(path) if "api" in path else client.get(path)
        assert r.status_code in (401, 404), (path, r.status_code)
    c = login_as(app.test_client(), p)
    for path in ("/admin/updates/99999999999999", "/admin/questions/99999999999999", "/admin/experiences/99999999999999"):
        assert c.get(path).status_code == 404, path
    c = login_as(app.test_client(), d)
    for path in ("/account/questions/99999999999999", "/account/invitations/99999999999999"):
        assert c.get(path).status_code == 404, path
