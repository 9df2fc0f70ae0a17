"""Answers that depend on who asks are never kept by a shared cache (security._headers): what a
signed-in page shows, an API answer to a token, a page opened by a mailed link's token."""
from __future__ import annotations

import pytest

from filmfund.rewards import mail_prefs


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/me/data", "/api/v1/me/entitlements",
                                  "/api/v1/me/subscriptions"])
def test_a_donors_api_answers_are_private(client, make_user, token_for, campaign, path):
    r = client.get(path, headers=token_for(make_user("d@example.org")))
    assert r.status_code == 200, r.data
    assert r.headers["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize("path", ["/api/v1/donations", "/api/v1/media/assets", "/api/v1/partner/statement"])
def test_the_crews_api_answers_are_private(client, producer, token_for, campaign, path):
    r = client.get(path, headers=token_for(producer))
    assert r.status_code == 200, r.data
    assert r.headers["Cache-Control"] == "private, no-store"


def test_a_refused_token_is_not_kept_either(client, campaign):
    r = client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and r.headers["Cache-Control"] == "private, no-store"


def test_the_unsubscribe_page_showing_the_donors_address_is_private(client, make_user, campaign):
    donor = make_user("private.person@example.org")
    r = client.get(f"/unsubscribe/{mail_prefs.unsubscribe_token(donor, 'news')}")
    assert r.status_code == 200 and "private.person" in r.get_data(as_text=True)
    assert r.headers["Cache-Control"] == "private, no-store"


def test_the_public_campaign_is_still_cacheable(client, campaign):
    r = client.get("/api/v1/campaign")
    assert "no-store" not in r.headers.get("Cache-Control", "")
