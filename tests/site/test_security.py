"""CSRF on every form, security headers on pages, escaping of what donors type."""
import pytest
import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards.models import Donation, Payout
from tests.site.helpers import pay, pledge_count

FORM_POSTS = ["/pledge", "/login", "/logout", "/admin/donations/offline", "/admin/payouts", "/admin/updates",
              "/admin/entitlements/1", "/login/magic/some-token"]


@pytest.mark.parametrize("path", FORM_POSTS)
def test_forms_without_a_csrf_token_are_refused_with_a_friendly_page(client, campaign, login_as, producer, path):
    login_as(client, producer)
    resp = client.post(path, data={"amount": "25", "email": "x@example.org", "paid_on": "2026-11-20",
                                   "reference": "R", "subject": "s", "body": "b", "reward": "updates-monthly"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "This form has expired or did not come from this site" in html
    assert "Traceback" not in html


def test_forged_cross_site_post_changes_nothing(client, campaign, login_as, producer):
    pay(10000, "ann@example.org")
    login_as(client, producer)
    client.post("/admin/payouts", data={"amount": "5", "paid_on": "2026-11-20", "reference": "forged",
                                        "csrf_token": "not-the-token"})
    client.post("/admin/donations/offline", data={"amount": "5", "email": "f@example.org"})
    client.post("/pledge", data={"amount": "5", "email": "f@example.org"})
    assert db.session.scalar(sa.select(sa.func.count(Payout.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Donation.id))) == 1
    assert pledge_count() == 1


@pytest.mark.parametrize("path", ["/", "/login", "/admin/", "/admin/partner", "/thank-you?pledge=nope"])
def test_security_headers_on_pages(client, campaign, login_as, producer, path):
    login_as(client, producer)
    resp = client.get(path)
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_signed_in_pages_are_not_cached(client, campaign, login_as, producer):
    resp = login_as(client, producer).get("/admin/")
    assert "no-store" in resp.headers["Cache-Control"]


def test_session_cookie_is_httponly_and_samesite(client, campaign):
    client.get("/")  # the form's CSRF token puts something in the session
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


def test_xss_in_credit_name_is_escaped_on_the_form_after_an_error(client, campaign):
    from tests.site.helpers import csrf_token

    evil = '"><script>alert(1)</script>'
    resp = client.post("/pledge", data={"csrf_token": csrf_token(client), "amount": "bad", "email": "a@example.org",
                                        "credit_name": evil})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "<script>alert(1)" not in html and "&#34;&gt;&lt;script&gt;" in html


def test_error_pages_leak_no_internals(client, campaign, app, monkeypatch):
    from filmfund.site import views as site_views

    def boom(*a, **k):
        raise RuntimeError("secret internals sk_live_123")

    monkeypatch.setattr(site_views, "campaign_summary", boom)  # as the campaign page calls it
    resp = client.get("/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 500
    assert "secret internals" not in html and "sk_live" not in html and "Traceback" not in html
    assert "Something went wrong" in html
