"""A refusal in the campaign editor comes back tied to the field it names (a11y probe F4): that
field (it has an id) marked invalid, described by its form's message and focused, the message not
focused; a refusal about no one field focuses the message. The field names in the messages go
through the catalogue."""
from __future__ import annotations

import re

import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards.models import Reward
from tests.site.helpers import assert_tied, csrf_token
from tests.site.test_campaign_editor import file_tiers, rewards_form, tiers_form


def _field(html: str, name: str) -> str:
    match = re.search(rf'<(?:input|select)\b[^>]*\bname="{re.escape(name)}"[^>]*>', html)
    assert match, f"no field {name}"
    return match.group(0)


def _tied(html: str, name: str, part: str) -> None:
    """The field of that name (its id cf-<name>) tied to its form's message, and nothing else marked."""
    assert f'id="cf-{name}"' in _field(html, name)
    assert_tied(html, f"cf-{name}", f"{part}-error")
    assert html.count(" autofocus") == 1 and html.count('aria-invalid="true"') == 1
    assert html.count(f'id="{part}-error"') == 1
    if re.match(r"(tier|reward|budget)-\d+-", name):  # a row's field: said in its row, just above it
        start = html.rindex("<fieldset", 0, html.index(f'name="{name}"'))
        assert f'id="{part}-error"' in html[start:html.index("</fieldset>", start)], name


def _settings(token: str, **changes) -> dict:
    return {"csrf_token": token, "title-en": "Dead Hearts", "title-zh-Hans": "死去的心", "goal": "25000",
            "partner_name-en": "Xinxing Aid", "partner_name-zh-Hans": "心星援助", "share": "20", **changes}


def test_a_refused_setting_is_tied_to_its_field(client, campaign, producer, login_as):
    login_as(client, producer)
    token = csrf_token(client, "/admin/campaign")
    for changes, name in (({"share": "101"}, "share"), ({"goal": "12.345"}, "goal"),
                          ({"title-en": "", "title-zh-Hans": ""}, "title-en"),
                          ({"partner_name-zh-Hans": "心" * 201}, "partner_name-zh-Hans")):
        resp = client.post("/admin/campaign/settings", data=_settings(token, **changes))
        assert resp.status_code == 400, changes
        _tied(resp.get_data(as_text=True), name, "settings")


def test_a_refused_tier_marks_the_row_as_shown_again(client, campaign, producer, login_as):
    login_as(client, producer)
    token = csrf_token(client, "/admin/campaign")
    tiers = file_tiers()
    resp = client.post("/admin/campaign/tiers", data=tiers_form(token, tiers, **{"tier-0-min": "x"}))
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    _tied(html, "tier-0-min", "tiers")
    assert "Tier 1, minimum: Enter the amount in dollars and cents" in html
    # Not going up: the second tier's minimum. A blank row before it is not shown again: the
    # field is the one of its row as the page numbers it.
    form = tiers_form(token, tiers, **{"tier-1-min": f"{tiers[0][0] / 100:.2f}"})
    resp = client.post("/admin/campaign/tiers", data=form)
    _tied(resp.get_data(as_text=True), "tier-1-min", "tiers")
    rows = {k: v for k, v in form.items() if not k.startswith("tier-")}
    for key, value in form.items():
        match = re.fullmatch(r"tier-(\d+)-(.*)", key)
        if match:
            i = int(match.group(1))
            rows[f"tier-{i + 1 if i >= 1 else i}-{match.group(2)}"] = value
    rows["tier-1-present"] = "1"  # a blank row, second
    resp = client.post("/admin/campaign/tiers", data=rows)
    assert resp.status_code == 400
    _tied(resp.get_data(as_text=True), "tier-1-min", "tiers")
    resp = client.post("/admin/campaign/tiers", data=tiers_form(token, tiers, **{"tier-2-name-en": "",
                                                                                 "tier-2-name-zh-Hans": ""}))
    _tied(resp.get_data(as_text=True), "tier-2-name-en", "tiers")


def test_refused_rewards_and_budget_lines_are_tied_to_their_field(client, campaign, producer, login_as):
    login_as(client, producer)
    token = csrf_token(client, "/admin/campaign")
    i = [r.key for r in db.session.scalars(sa.select(Reward).order_by(Reward.id))].index("dvd")
    n = db.session.scalar(sa.select(sa.func.count(Reward.id)))
    for changes, name in (({"dvd": {"kind": "hologram"}}, f"reward-{i}-kind"),
                          ({"dvd": {"limit": "-2"}}, f"reward-{i}-limit"),
                          ({"new": {"key": "Signed Poster", "title-en": "A poster", "kind": "physical"}}, f"reward-{n}-key")):
        resp = client.post("/admin/campaign/rewards", data=rewards_form(token, **changes))
        assert resp.status_code == 400, changes
        _tied(resp.get_data(as_text=True), name, "rewards")
    html = client.get("/admin/campaign").get_data(as_text=True)
    new = int(re.findall(r'name="budget-(\d+)-present"', html)[-1])  # the blank row to add one
    resp = client.post("/admin/campaign/budget", data={
        "csrf_token": token, **{f"budget-{k}-present": "1" for k in range(new + 1)},
        **{k: v for k, v in re.findall(r'name="(budget-\d+-(?:id|title-en|title-zh-Hans|planned))"[^>]*value="([^"]*)"', html)},
        f"budget-{new}-key": "travel-2", f"budget-{new}-title-en": "More travel", f"budget-{new}-planned": "lots"})
    assert resp.status_code == 400
    _tied(resp.get_data(as_text=True), f"budget-{new}-planned", "budget")


def test_a_refusal_of_no_one_field_focuses_its_message(client, campaign, producer, login_as):
    login_as(client, producer)
    token = csrf_token(client, "/admin/campaign")
    resp = client.post("/admin/campaign/tiers", data=tiers_form(token, []))  # no tier left
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    error = re.search(r'<p [^>]*id="tiers-error"[^>]*>', html).group(0)
    assert 'tabindex="-1"' in error and " autofocus" in error
    assert html.count(" autofocus") == 1 and 'aria-invalid="true"' not in html


def test_the_field_names_of_a_refusal_are_in_the_readers_language(client, campaign, producer, login_as):
    """Read from the catalogue as it stands ("Title", "%(field)s: at most %(n)s characters.")."""
    login_as(client, producer)
    token = csrf_token(client, "/admin/campaign")
    resp = client.post("/admin/campaign/settings?lang=zh-Hans", data=_settings(token, **{"title-en": "T" * 201}))
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert re.search(r'id="settings-error"[^>]*>标题：最多 200 个字符。</p>', html), html
    _tied(html, "title-en", "settings")
