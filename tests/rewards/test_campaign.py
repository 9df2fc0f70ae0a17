"""The campaign ships as a TOML file; loading validates it, is idempotent and can be pointed elsewhere."""
import tomllib

import pytest
import sqlalchemy as sa

from filmfund.config import BUNDLED_CAMPAIGN
from filmfund.extensions import db
from filmfund.rewards import entitlements, ledger_check
from filmfund.rewards.campaign import campaign_summary, current_campaign, load_campaign
from filmfund.rewards.campaign_file import CampaignFileError, parse_campaign
from filmfund.rewards.models import Campaign, Reward, Tier
from tests.helpers import record_offline


def bundled() -> dict:
    return tomllib.loads(BUNDLED_CAMPAIGN.read_text())


def test_bundled_campaign_is_the_film(campaign):
    assert campaign.title == "Living with Dead Hearts: The Search for China's Kidnapped Children"
    assert (campaign.currency, campaign.goal) == ("usd", 400000)
    assert (campaign.partner_name, campaign.share_bps) == ("Xinxing Aid center", 2000)
    assert [t.min_amount for t in campaign.tiers] == [100, 1500, 3000, 5000, 10000, 25000, 50000, 75000,
                                                      100000, 200000]
    keys = [r.key for t in campaign.tiers for r in t.rewards]
    assert keys[:4] == ["credit-name", "wallpapers", "updates-monthly", "stills"]
    assert len(keys) == len(set(keys)) == 16


def test_load_is_idempotent_and_updates_titles(campaign, tmp_path):
    data = BUNDLED_CAMPAIGN.read_text().replace("Production stills", "Production stills (hi-res)")
    edited = tmp_path / "edited.toml"
    edited.write_text(data)
    ids = {r.key: r.id for r in db.session.scalars(sa.select(Reward))}
    load_campaign()
    db.session.commit()
    load_campaign(edited)
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(Campaign.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(Tier.id))) == 10
    rewards = {r.key: r for r in db.session.scalars(sa.select(Reward))}
    assert {k: r.id for k, r in rewards.items()} == ids  # same rows, never duplicated
    assert rewards["stills"].title == "Production stills (hi-res)"


def test_a_reward_removed_from_the_file_is_kept_detached(campaign, tmp_path):
    data = bundled()
    data["tiers"][0]["rewards"] = data["tiers"][0]["rewards"][:1]  # drop "wallpapers"
    spec_file = tmp_path / "c.toml"
    spec_file.write_text(BUNDLED_CAMPAIGN.read_text().replace(
        '  { key = "wallpapers", kind = "digital", title = { en = "Donor-only wallpapers", "zh-Hans" = "捐助者专属壁纸" } },\n',
        ""))
    loaded = load_campaign(spec_file)
    db.session.commit()
    wallpapers = db.session.scalar(sa.select(Reward).where(Reward.key == "wallpapers"))
    assert wallpapers is not None and wallpapers.tier_id is None
    assert "wallpapers" not in [r["key"] for t in campaign_summary(loaded)["tiers"] for r in t["rewards"]]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["tiers"][3]["rewards"][0].update(kind="poster"), "tiers[3].rewards[0].kind: must be one of credit"),
    (lambda d: d["tiers"][1].update(min_amount="15"), "tiers[1].min_amount: must be an integer"),
    (lambda d: d["tiers"][2].update(min_amount=100), "tiers[2].min_amount: tiers must be in ascending order"),
    (lambda d: d["tiers"][0]["rewards"][1].update(key="credit-name"), "tiers[0].rewards[1].key: 'credit-name' is used twice"),
    (lambda d: d["tiers"][0]["rewards"][0].update(key="Bad Key"), "tiers[0].rewards[0].key: use lowercase"),
    (lambda d: d["partner"].update(share_bps=12000), "partner.share_bps: must be between 0 and 10000"),
    (lambda d: d.pop("partner"), "partner: must be a table"),
    (lambda d: d.update(currency="dollars"), "currency: must be at most 3 characters"),
    (lambda d: d.update(goal=True), "goal: must be an integer"),
    (lambda d: d.update(title=""), "title: must be a non-empty string"),
    (lambda d: d.update(tiers=[]), "tiers: must be a non-empty list"),
    (lambda d: d["tiers"][4].update(rewards=[]), "tiers[4].rewards: must be a non-empty list"),
])
def test_validation_names_the_field(mutate, message):
    data = bundled()
    mutate(data)
    with pytest.raises(CampaignFileError) as err:
        parse_campaign(data)
    assert message in err.value.message


def test_another_campaign_file_by_setting(app, tmp_path, runner):
    other = tmp_path / "other.toml"
    other.write_text(BUNDLED_CAMPAIGN.read_text().replace('slug = "living-with-dead-hearts"', 'slug = "another-film"')
                     .replace("Living with Dead Hearts:", "Another Film:"))
    app.config["CAMPAIGN_FILE"] = str(other)
    result = runner.invoke(args=["campaign", "load"])
    assert result.exit_code == 0, result.output
    assert "another-film: 10 tiers, 16 rewards" in result.output
    assert current_campaign().title.startswith("Another Film:")


def test_cli_load_with_path_and_clear_errors(app, runner, tmp_path):
    result = runner.invoke(args=["campaign", "load", str(BUNDLED_CAMPAIGN)])
    assert result.exit_code == 0 and "living-with-dead-hearts" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text(BUNDLED_CAMPAIGN.read_text().replace('kind = "physical"', 'kind = "vinyl"', 1))
    result = runner.invoke(args=["campaign", "load", str(bad)])
    assert result.exit_code == 1
    assert "tiers[3].rewards[1].kind: must be one of" in result.output
    broken = tmp_path / "broken.toml"
    broken.write_text("title = ")
    result = runner.invoke(args=["campaign", "load", str(broken)])
    assert result.exit_code == 1 and "not valid TOML" in result.output


def test_campaign_api(client, campaign):
    doc = client.get("/api/v1/campaign").get_json()
    assert doc["slug"] == "living-with-dead-hearts"
    assert (doc["goal"], doc["raised"], doc["donors"], doc["currency"]) == (400000, 0, 0, "usd")
    assert doc["partner"] == {"name": "Xinxing Aid center", "share_bps": 2000}
    assert [t["min_amount"] for t in doc["tiers"]] == sorted(t["min_amount"] for t in doc["tiers"])
    assert doc["tiers"][0]["rewards"][0] == {"key": "credit-name", "kind": "credit",
                                            "title": "Your name in the end credits"}
    assert {r["kind"] for t in doc["tiers"] for r in t["rewards"]} == {
        "credit", "digital", "updates", "physical", "service", "custom"}


def test_current_campaign_loads_on_first_use(app):
    assert db.session.scalar(sa.select(sa.func.count(Campaign.id))) == 0
    assert current_campaign().slug == "living-with-dead-hearts"
    assert current_campaign().id == current_campaign().id


def test_reload_with_moved_tiers_keeps_entitlements_in_step(campaign, tmp_path):
    from filmfund.auth.services import find_user

    record_offline("cash@example.org", 3000)
    assert entitlements.donor_entitlements(find_user("cash@example.org"), current_campaign())["tier"]["name"] == "Insider"
    moved = tmp_path / "moved.toml"
    moved.write_text(BUNDLED_CAMPAIGN.read_text().replace("min_amount = 3000", "min_amount = 3500"))
    load_campaign(moved)
    db.session.commit()
    stills = {r["key"]: r["status"] for r in entitlements.donor_entitlements(find_user("cash@example.org"), current_campaign())["rewards"]}
    assert stills["stills"] == "revoked" and stills["updates-monthly"] == "granted"
    assert ledger_check.check_ledger() == []
