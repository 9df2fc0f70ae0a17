"""A hand-back to the campaign file sent without its confirmation box ticked (the campaign editor's
settings and tiers, the page editor's parts): refused, with the focus in the box to tick, marked
invalid and described by the message; and the part shown as it stands. Before, the message took
the focus above the form, and the tiers' refusal rebuilt the part from the hand-back's form, which
holds no values: the producer saw every tier gone."""
from __future__ import annotations

import re

import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards.models import Tier
from tests.site.helpers import assert_tied, csrf_token
from tests.site.test_campaign_editor import file_tiers, tiers_form


def _tier_minimums_shown(html: str) -> list[str]:
    return re.findall(r'name="tier-\d+-min"[^>]*value="([^"]*)"', html)


def test_a_tiers_hand_back_without_the_box_keeps_the_tiers_on_the_page_and_focuses_the_box(
        app, client, campaign, producer, login_as):
    login_as(client, producer)
    token = csrf_token(client, "/admin/campaign")
    tiers = file_tiers()
    renamed = [(tiers[0][0], "Friend", tiers[0][2])] + tiers[1:]
    assert client.post("/admin/campaign/tiers", data=tiers_form(token, renamed)).status_code == 303  # edited here
    shown = _tier_minimums_shown(client.get("/admin/campaign").get_data(as_text=True))
    assert len(shown) >= len(tiers)

    resp = client.post("/admin/campaign/tiers/reset", data={"csrf_token": token, "take_back": "0"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Tick the box to confirm" in html
    assert _tier_minimums_shown(html) == shown and 'value="Friend"' in html  # the tiers as they stand
    assert_tied(html, "cf-tiers-reset-confirm", "tiers-error")
    db.session.expire_all()
    assert db.session.scalar(sa.select(Tier.name).where(Tier.min_amount == tiers[0][0])) == "Friend"  # nothing done


def test_a_settings_hand_back_without_the_box_focuses_the_box_in_either_language(
        app, client, campaign, producer, login_as):
    login_as(client, producer)
    token = csrf_token(client, "/admin/campaign")
    form = {"csrf_token": token, "title-en": "Dead Hearts", "title-zh-Hans": "死去的心", "goal": "4000",
            "partner_name-en": "Xinxing Aid", "partner_name-zh-Hans": "心星援助", "share": "20"}
    assert client.post("/admin/campaign/settings", data=form).status_code == 303
    for lang in ("en", "zh-Hans"):
        client.get(f"/admin/campaign?lang={lang}")
        resp = client.post("/admin/campaign/settings/reset", data={"csrf_token": token})
        html = resp.get_data(as_text=True)
        assert resp.status_code == 400 and 'value="Dead Hearts"' in html, lang
        assert_tied(html, "cf-settings-reset-confirm", "settings-error")


def test_a_page_part_hand_back_without_the_box_focuses_the_box(app, client, campaign, producer, login_as):
    login_as(client, producer)
    token = csrf_token(client, "/admin/page")
    saved = client.post("/admin/page/story", data={"csrf_token": token, "part": "story",
                                                   "story-0-present": "1", "story-0-heading-en": "Why",
                                                   "story-0-body-en": "Because.", "story-0-body-zh-Hans": "因为。"})
    assert saved.status_code in (200, 303), saved.get_data(as_text=True)[:500]
    resp = client.post("/admin/page/story/reset", data={"csrf_token": token})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Tick the box to confirm" in html
    assert_tied(html, "page-story-reset-confirm", "story-error")
