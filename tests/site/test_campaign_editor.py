"""The campaign in the browser (issue 14 item 2): producers edit the title, goal, partner and share,
and the tiers; every change is validated and audited, donors' rewards follow the tiers (a delivered
reward is never taken back silently), and a later `campaign load` leaves what they edited alone
until they hand it back to the file."""
from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

import sqlalchemy as sa

from filmfund.audit import AuditEntry
from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.mail import outbox_messages
from filmfund.rewards.models import Campaign, Entitlement, EntitlementStatus, Reward, Tier
from tests.site.helpers import csrf_token, pay



def file_tiers() -> list[tuple]:
    """The tiers as the campaign file made them: (min in cents, English name, Chinese name)."""
    campaign = db.session.scalars(sa.select(Campaign)).one()
    zh = campaign.translations.get("zh-Hans", {})
    return [(t.min_amount, t.name, zh.get(f"tier:{t.min_amount}", "")) for t in
            db.session.scalars(sa.select(Tier).order_by(Tier.min_amount))]


def tiers_form(token: str, tiers=None, **extra) -> dict:
    """The tiers form as the editor posts it: each (min in cents, English, Chinese) with its id."""
    ids = {t.min_amount: t.id for t in db.session.scalars(sa.select(Tier))}
    form = {"csrf_token": token}
    for i, (cents, en, zh, *rest) in enumerate(tiers):
        tier_id = rest[0] if rest else ids.get(cents, "")
        form.update({f"tier-{i}-present": "1", f"tier-{i}-id": str(tier_id or ""), f"tier-{i}-min": f"{cents / 100:.2f}",
                     f"tier-{i}-name-en": en, f"tier-{i}-name-zh-Hans": zh})
    return {**form, **extra}


def held(email: str) -> set[str]:
    return set(db.session.scalars(sa.select(Reward.key).join(Entitlement, Entitlement.reward_id == Reward.id)
                                  .join(Entitlement.user).where(sa.text("users.email = :e"),
                                                                Entitlement.status != EntitlementStatus.REVOKED),
                                  {"e": email}))


def test_settings_are_edited_validated_audited_and_kept_from_the_file(app, client, campaign, producer, login_as,
                                                                         tmp_path):
    from filmfund.rewards.campaign import load_campaign

    login_as(client, producer)
    token = csrf_token(client, "/admin/campaign")
    form = {"csrf_token": token, "title-en": "Dead Hearts", "title-zh-Hans": "死去的心", "goal": "25000.50",
            "partner_name-en": "Xinxing Aid", "partner_name-zh-Hans": "心星援助", "share": "12.5"}
    for bad, message in [({"share": "101"}, "at most 100%"), ({"share": "-3"}, "percentage from 0 to 100"),
                         ({"goal": "12.345"}, "two decimals"), ({"title-en": "", "title-zh-Hans": " "}, "Title")]:
        resp = client.post("/admin/campaign/settings", data={**form, **bad})
        assert resp.status_code == 400 and message in resp.get_data(as_text=True), bad
        assert 'value="心星援助"' in resp.get_data(as_text=True)  # the typing is kept
    assert db.session.scalar(sa.select(Campaign.goal)) == campaign.goal  # nothing written

    assert client.post("/admin/campaign/settings", data=form).status_code == 303
    row = db.session.scalars(sa.select(Campaign)).one()
    assert (row.title, row.goal, row.share_bps, row.partner_name) == ("Dead Hearts", 2500050, 1250, "Xinxing Aid")
    assert "Dead Hearts" in client.get("/?lang=en").get_data(as_text=True)
    assert "死去的心" in client.get("/?lang=zh-Hans").get_data(as_text=True)
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "settings.change")).one()
    assert entry.actor == f"user:{producer.id}" and entry.details_dict["share"] == ["20", "12.5"]

    # The file changes its goal and tagline: the tagline follows it, the edited goal stays.
    changed = tmp_path / "campaign.toml"
    changed.write_text(Path(app.config["CAMPAIGN_FILE"]).read_text().replace("share_bps = 2000", "share_bps = 3000"))
    load_campaign(changed)
    db.session.commit()
    assert db.session.scalar(sa.select(Campaign.share_bps)) == 1250
    assert db.session.scalar(sa.select(Campaign.title)) == "Dead Hearts"

    token = csrf_token(client, "/admin/campaign")
    assert client.post("/admin/campaign/settings/reset", data={"csrf_token": token}).status_code == 400
    assert client.post("/admin/campaign/settings/reset", data={"csrf_token": token, "confirm": "1"}).status_code == 303
    assert db.session.scalar(sa.select(Campaign.share_bps)) == 2000  # the configured file's again
    load_campaign(changed)
    db.session.commit()
    assert db.session.scalar(sa.select(Campaign.share_bps)) == 3000  # and it follows the file again


def test_tiers_move_and_donors_rewards_follow_a_delivered_reward_is_not_taken_silently(
        app, client, campaign, producer, login_as, tmp_path):
    from filmfund.rewards.campaign import load_campaign

    TIERS = file_tiers()
    assert TIERS[:3] == [(100, "Supporter", "支持者"), (1500, "Follower", "关注者"), (3000, "Insider", "幕后伙伴")]
    pay(1500, "fifteen@example.org")
    pay(2000, "twenty@example.org")
    db.session.commit()
    assert "updates-monthly" in held("fifteen@example.org") and "updates-monthly" in held("twenty@example.org")
    login_as(client, producer)
    token = csrf_token(client, "/admin/campaign")

    not_up = [TIERS[0], (3000, "Follower", "关注者", db.session.scalar(sa.select(Tier.id).where(Tier.min_amount == 1500))),
              (3000, "Insider", "幕后伙伴")] + TIERS[3:]
    resp = client.post("/admin/campaign/tiers", data=tiers_form(token, not_up))
    assert resp.status_code == 400 and "tiers go strictly up" in resp.get_data(as_text=True)

    # Follower from $15 to $20: the $15 donor no longer reaches it, the $20 donor keeps it.
    moved = [TIERS[0], (2000, "Follower", "关注者", db.session.scalar(sa.select(Tier.id).where(Tier.min_amount == 1500)))]
    moved += TIERS[2:]
    assert client.post("/admin/campaign/tiers", data=tiers_form(token, moved)).status_code == 303
    db.session.expire_all()
    assert "updates-monthly" not in held("fifteen@example.org") and "updates-monthly" in held("twenty@example.org")
    assert db.session.scalar(sa.select(Reward.tier_id).where(Reward.key == "updates-monthly")) == \
        db.session.scalar(sa.select(Tier.id).where(Tier.min_amount == 2000))  # its reward moved with it
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "tiers.change")).one()
    assert entry.details_dict["donors"] == {"granted": 0, "revoked": 1, "revoked_delivered": 0}
    assert "$20" in client.get("/?lang=en").get_data(as_text=True)

    # The $20 donor's update subscription is delivered: moving the tier to $25 is refused ...
    ent = db.session.scalars(sa.select(Entitlement).join(Reward).where(
        Reward.key == "updates-monthly", Entitlement.status == EntitlementStatus.GRANTED)).one()
    ent.status, ent.fulfilled_at = EntitlementStatus.FULFILLED, utcnow()
    db.session.commit()
    tier_id = db.session.scalar(sa.select(Tier.id).where(Tier.min_amount == 2000))
    higher = [TIERS[0], (2500, "Follower", "关注者", tier_id)] + TIERS[2:]
    resp = client.post("/admin/campaign/tiers", data=tiers_form(token, higher))
    assert resp.status_code == 400 and "1 reward(s) already delivered" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(sa.select(Tier.min_amount).where(Tier.id == tier_id)) == 2000  # nothing changed
    assert "updates-monthly" in held("twenty@example.org")
    # ... and so is removing the tier; with the explicit choice, it is done and recorded.
    removing = tiers_form(token, [TIERS[0], (2000, "Follower", "关注者", tier_id)] + TIERS[2:], **{"tier-1-remove": "1"})
    assert client.post("/admin/campaign/tiers", data=removing).status_code == 400
    assert client.post("/admin/campaign/tiers", data={**removing, "take_back": "1"}).status_code == 303
    db.session.expire_all()
    assert "updates-monthly" not in held("twenty@example.org")
    assert db.session.scalar(sa.select(Reward.tier_id).where(Reward.key == "updates-monthly")) is None  # kept, detached
    last = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "tiers.change")
                              .order_by(AuditEntry.id.desc())).first()
    assert last.details_dict["donors"]["revoked_delivered"] == 1

    # A later load of the file leaves the browser's tiers alone.
    load_campaign()
    db.session.commit()
    assert db.session.scalars(sa.select(Tier.min_amount).order_by(Tier.min_amount)).all() == \
        [100] + [t[0] for t in TIERS[2:]]
    # Handed back, the file's tiers return; the delivered reward comes back delivered.
    token = csrf_token(client, "/admin/campaign")
    assert client.post("/admin/campaign/tiers/reset", data={"csrf_token": token, "confirm": "1"}).status_code == 303
    db.session.expire_all()
    assert db.session.scalars(sa.select(Tier.min_amount).order_by(Tier.min_amount)).all() == [t[0] for t in TIERS]
    assert db.session.get(Entitlement, ent.id).status == EntitlementStatus.FULFILLED


def rewards_form(token: str, **changes) -> dict:
    """The rewards form as the editor shows it now, with `changes` ({"key": {field: value}}) applied."""
    campaign = db.session.scalars(sa.select(Campaign)).one()
    zh = campaign.translations.get("zh-Hans", {})
    form = {"csrf_token": token}
    rewards = db.session.scalars(sa.select(Reward).order_by(Reward.id)).all()
    for i, r in enumerate(rewards):
        row = {"id": str(r.id), "title-en": r.title, "title-zh-Hans": zh.get(f"reward:{r.key}", ""),
               "kind": r.kind.value, "tier": str(r.tier_id or ""),
               "limit": "" if r.quantity_limit is None else str(r.quantity_limit), **changes.get(r.key, {})}
        form.update({f"reward-{i}-{k}": v for k, v in row.items()})
        form[f"reward-{i}-present"] = "1"
    new = changes.get("new")
    if new:
        n = len(rewards)
        form.update({f"reward-{n}-present": "1", **{f"reward-{n}-{k}": v for k, v in new.items()}})
    return form


def test_rewards_are_retitled_moved_and_added_and_donors_follow(app, client, campaign, producer, login_as):
    from filmfund.rewards.campaign import load_campaign

    pay(3000, "thirty@example.org")
    db.session.commit()
    assert "stills" in held("thirty@example.org") and "dvd" not in held("thirty@example.org")
    login_as(client, producer)
    token = csrf_token(client, "/admin/campaign")
    insider = str(db.session.scalar(sa.select(Tier.id).where(Tier.min_amount == 3000)))

    bad = client.post("/admin/campaign/rewards", data=rewards_form(token, dvd={"kind": "hologram"}))
    assert bad.status_code == 400 and "choose its kind" in bad.get_data(as_text=True)
    bad = client.post("/admin/campaign/rewards", data=rewards_form(token, new={"key": "Signed Poster",
                                                                              "title-en": "A poster", "kind": "physical"}))
    assert bad.status_code == 400 and "lowercase letters" in bad.get_data(as_text=True)
    assert 'value="Signed Poster"' in bad.get_data(as_text=True)  # the typing is kept

    bad = client.post("/admin/campaign/rewards", data=rewards_form(token, dvd={"limit": "-2"}))
    assert bad.status_code == 400 and "whole number" in bad.get_data(as_text=True)

    # The DVD moves down to the $30 tier, is retitled in both languages; a poster limited to 20 is added there.
    form = rewards_form(token, dvd={"tier": insider, "title-en": "The film on DVD", "title-zh-Hans": "影片 DVD"},
                        new={"key": "signed-poster", "title-en": "A signed poster", "kind": "physical", "tier": insider,
                             "limit": "20"})
    assert client.post("/admin/campaign/rewards", data=form).status_code == 303
    db.session.expire_all()
    assert {"dvd", "signed-poster", "stills"} <= held("thirty@example.org")
    html = client.get("/?lang=en").get_data(as_text=True)
    assert "The film on DVD" in html and "A signed poster" in html
    assert "影片 DVD" in client.get("/?lang=zh-Hans").get_data(as_text=True)
    poster = db.session.scalars(sa.select(Reward).where(Reward.key == "signed-poster")).one()
    assert (poster.quantity_limit, poster.claimed) == (20, 1)  # the $30 donor holds one
    assert "1 of 20 spoken for" in client.get("/admin/campaign?lang=en").get_data(as_text=True)
    limit_audit = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "reward.limit")).one()
    assert limit_audit.actor == f"user:{producer.id}" and limit_audit.details_dict == {"from": None, "to": 20}
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "rewards.change")).one()
    assert entry.details_dict["donors"]["granted"] == 2 and set(entry.details_dict["after"]) == {"dvd", "signed-poster"}

    # The delivered stills cannot be taken off the tiers without the explicit choice.
    ent = db.session.scalars(sa.select(Entitlement).join(Reward).where(Reward.key == "stills")).one()
    ent.status, ent.fulfilled_at = EntitlementStatus.FULFILLED, utcnow()
    db.session.commit()
    off = rewards_form(token, stills={"tier": ""})
    resp = client.post("/admin/campaign/rewards", data=off)
    assert resp.status_code == 400 and "already delivered" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(sa.select(Reward.tier_id).where(Reward.key == "stills")) == int(insider)

    # The file no longer moves the rewards (they are the browser's, with the tiers).
    load_campaign()
    db.session.commit()
    assert db.session.scalar(sa.select(Reward.title).where(Reward.key == "dvd")) == "The film on DVD"
    assert db.session.scalar(sa.select(Reward.tier_id).where(Reward.key == "dvd")) == int(insider)


def test_budget_lines_are_edited_hidden_never_deleted_and_kept_from_the_file(app, client, campaign, producer,
                                                                              login_as):
    from filmfund.rewards.campaign import load_campaign
    from filmfund.rewards.models import BudgetLine

    login_as(client, producer)
    token = csrf_token(client, "/admin/campaign")
    lines = db.session.scalars(sa.select(BudgetLine).order_by(BudgetLine.position)).all()
    form = {"csrf_token": token}
    for i, line in enumerate(lines):
        form.update({f"budget-{i}-present": "1", f"budget-{i}-id": str(line.id), f"budget-{i}-planned": f"{line.planned / 100:.2f}",
                     f"budget-{i}-title-en": line.title.get("en", ""), f"budget-{i}-title-zh-Hans": line.title.get("zh-Hans", "")})
    n = len(lines)
    form.update({f"budget-{n}-present": "1", f"budget-{n}-key": "music-rights", f"budget-{n}-planned": "1200.50",
                 f"budget-{n}-title-en": "Music rights", f"budget-{n}-title-zh-Hans": "音乐版权"})
    bad = client.post("/admin/campaign/budget", data={**form, f"budget-{n}-planned": "twelve"})
    assert bad.status_code == 400 and "Budget line" in bad.get_data(as_text=True)
    assert 'value="音乐版权"' in bad.get_data(as_text=True)
    hidden = lines[0]
    form["budget-0-hide"] = "1"
    assert client.post("/admin/campaign/budget", data=form).status_code == 303
    db.session.expire_all()
    html = client.get("/?lang=en").get_data(as_text=True)
    assert "Music rights" in html and hidden.title["en"] not in html
    assert db.session.get(BudgetLine, hidden.id).active is False  # kept, hidden
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.target.like("% budget"))).one()
    assert entry.actor == f"user:{producer.id}" and set(entry.details_dict) == {hidden.key, "music-rights"}
    load_campaign()
    db.session.commit()
    assert db.session.get(BudgetLine, hidden.id).active is False
    assert db.session.scalar(sa.select(BudgetLine.planned).where(BudgetLine.key == "music-rights")) == 120050


def test_the_partner_share_is_fixed_once_a_gift_is_recorded(app, client, campaign, producer, login_as, runner,
                                                            tmp_path):
    """Contract, money rules: the allocations add up to exactly net x share at every moment. A new
    rate over money already allocated at the old one would break that for every gift before it,
    so the share is fixed from the first gift: in the browser, by the file, by handing back."""
    from filmfund.rewards.campaign import load_campaign
    from tests.helpers import record_offline

    login_as(client, producer)
    form = {"title-en": "Living with Dead Hearts", "goal": "4000", "partner_name-en": "Xinxing Aid center",
            "share": "20"}
    assert 'readonly' not in client.get("/admin/campaign").get_data(as_text=True).split('name="share"')[1][:80]
    record_offline("a@example.org", 10000)
    record_offline("b@example.org", 5003)

    page = client.get("/admin/campaign").get_data(as_text=True)
    assert 'readonly' in page.split('name="share"')[1][:80] and 'id="share-fixed"' in page
    resp = client.post("/admin/campaign/settings",
                       data={**form, "share": "12.5", "csrf_token": csrf_token(client, "/admin/campaign")})
    assert resp.status_code == 400 and "cannot change once gifts are recorded" in resp.get_data(as_text=True)
    assert db.session.scalar(sa.select(Campaign.share_bps)) == 2000
    # The rest of the settings still change (the share as it is).
    resp = client.post("/admin/campaign/settings",
                       data={**form, "goal": "5000", "csrf_token": csrf_token(client, "/admin/campaign")})
    assert resp.status_code == 303
    assert db.session.scalars(sa.select(Campaign)).one().goal == 500000

    # The file after the settings were handed back: refused too, nothing changed.
    changed = tmp_path / "campaign.toml"
    changed.write_text(Path(app.config["CAMPAIGN_FILE"]).read_text().replace("share_bps = 2000", "share_bps = 1250"))
    token = csrf_token(client, "/admin/campaign")
    assert client.post("/admin/campaign/settings/reset", data={"csrf_token": token, "confirm": "1"}).status_code == 303
    result = runner.invoke(args=["campaign", "load", str(changed)])
    assert result.exit_code != 0 and "cannot change once gifts are recorded" in result.output, result.output
    db.session.expire_all()
    assert db.session.scalar(sa.select(Campaign.share_bps)) == 2000
    record_offline("c@example.org", 3333)
    assert runner.invoke(args=["ledger", "check"]).exit_code == 0

    zh = client.post("/admin/campaign/settings?lang=zh-Hans",
                     data={**form, "share": "12.5", "csrf_token": csrf_token(client, "/admin/campaign")})
    assert zh.status_code == 400 and "cannot change" not in zh.get_data(as_text=True)


PASTED_BREAKS = ["\u2028", "\u2029", "\x0b", "\r\n", "\u200b\n"]


def test_a_line_break_pasted_into_the_editors_one_line_texts_is_a_space(app, campaign):
    """A browser's one-line input keeps a line separator pasted from a word processor (U+2028,
    Word's manual line break U+000B): the editor reads its titles and names by the one rule of
    one-line texts (typed.one_line), as every other form does."""
    from filmfund.rewards import campaign_edit

    for sep in PASTED_BREAKS:
        form = {"title-en": f"  Living with Dead Hearts:{sep}The Search  ", "title-zh-Hans": f"心碎而活：{sep}寻找",
                "partner_name-en": f"Xinxing{sep}Aid center", "goal": "4,000", "share": "20"}
        campaign_edit.save_settings(campaign.id, form, None)
        db.session.commit()
        saved = db.session.get(Campaign, campaign.id)
        assert saved.title == "Living with Dead Hearts: The Search", repr(sep)
        assert saved.translations["zh-Hans"]["title"] == "心碎而活： 寻找"
        assert saved.partner_name == "Xinxing Aid center"
        [tier] = campaign_edit.parse_tiers({"tier-0-present": "1", "tier-0-min": "15", "tier-0-name-en": f"Early{sep}bird"})
        assert tier["name"] == {"en": "Early bird"}
        [reward] = campaign_edit.parse_rewards({"reward-0-present": "1", "reward-0-key": "poster", "reward-0-kind": "physical",
                                                "reward-0-title-en": f"A signed{sep}poster"}, set())
        assert reward["title"] == {"en": "A signed poster"}


def test_receipts_go_out_after_a_title_with_a_pasted_line_break_was_saved(app, campaign):
    """Saved before the editor read it as one line (or written so in a campaign file), the title is
    in every receipt's subject: the mail module makes the subject one line, so that no receipt
    is refused (and retried forever)."""
    from filmfund.rewards import campaign_edit
    from tests.site.helpers import mails_to

    for sep in ("\u2028", "\x0b"):
        campaign_edit.save_settings(campaign.id, {"title-en": f"Living with Dead Hearts:{sep}The Search",
                                                  "partner_name-en": "Xinxing Aid center", "goal": "4,000",
                                                  "share": "20"}, None)
        db.session.commit()
    campaign_row = db.session.get(Campaign, campaign.id)
    campaign_row.title = "Living with Dead Hearts:\u2028The Search"  # as an older editor kept it
    campaign_row.translations = {**campaign_row.translations, "en": {**campaign_row.translations.get("en", {}),
                                                                    "title": campaign_row.title}}
    campaign_row.updated_at = utcnow()  # every process reads the campaign again
    db.session.commit()
    pay(2000, "sam@example.org")
    assert mails_to("sam@example.org"), "no receipt: its subject holds the title's line break"
    subjects = [email.message_from_bytes(p.read_bytes(), policy=policy.default)["Subject"] for p in outbox_messages()]
    assert any("Living with Dead Hearts: The Search" in s for s in subjects), subjects


def test_a_producer_says_which_reward_takes_the_place_of_another_and_donors_follow(app, client, campaign, producer,
                                                                                   login_as):
    """The editor's "Takes the place of": the campaign file's `replaces` (the signed DVD for the DVD),
    asked of the same rule (rules.replacement_refusal) and refused where the file would refuse it,
    naming the field; a change is audited and donors' rewards follow at once."""
    pay(10000, "patron@example.org")
    db.session.commit()
    assert {"dvd-signed"} <= held("patron@example.org") and "dvd" not in held("patron@example.org")
    login_as(client, producer)
    html = client.get("/admin/campaign?lang=en").get_data(as_text=True)
    signed_row = [r.key for r in db.session.scalars(sa.select(Reward).order_by(Reward.id))].index("dvd-signed")
    select = re.search(rf'<select name="reward-{signed_row}-replaces".*?</select>', html, re.S).group(0)
    assert re.search(r'<option value="dvd" selected>A DVD of the finished film · dvd</option>', select), select
    token = csrf_token(client, "/admin/campaign")

    for changes, said in (
            ({"interview-questions": {"replaces": "dvd"}}, "only a physical reward takes the place of another physical one"),
            ({"stills": {"replaces": "dvd"}}, "only take the place of a reward of a lower tier (dvd is not)"),
            ({"thank-you-letter": {"replaces": "dvd"}}, "another reward already takes the place of dvd"),
            ({"dvd": {"replaces": "dvd-signed"}}, "only take the place of a reward of a lower tier (dvd-signed is not)"),
            ({"dvd-signed": {"replaces": "no-such-reward"}}, "choose the reward it takes the place of from the list")):
        bad = client.post("/admin/campaign/rewards?lang=en", data=rewards_form(token, **changes))
        html = bad.get_data(as_text=True)
        assert bad.status_code == 400 and said in html, (changes, html[:2000])
        key = next(iter(changes))
        row = [r.key for r in db.session.scalars(sa.select(Reward).order_by(Reward.id))].index(key)
        field = re.search(rf'<select name="reward-{row}-replaces"[^>]*>', html).group(0)
        assert 'aria-invalid="true"' in field and "autofocus" in field, field
        assert f"<legend>{key}</legend>" in html  # the rows keep their names after a refusal
        db.session.expire_all()
        assert db.session.scalar(sa.select(Reward.replaces).where(Reward.key == "dvd-signed")) == "dvd"

    # Taken off: the $100 donor is owed the DVD and the signed one (two parcels), as the producer chose.
    assert client.post("/admin/campaign/rewards", data=rewards_form(token, **{"dvd-signed": {"replaces": ""}})
                       ).status_code == 303
    db.session.expire_all()
    assert {"dvd", "dvd-signed"} <= held("patron@example.org")
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "rewards.change")).one()
    assert entry.details_dict["before"]["dvd-signed"]["replaces"] == "dvd"
    assert entry.details_dict["after"]["dvd-signed"]["replaces"] is None
    # And back: one parcel again.
    assert client.post("/admin/campaign/rewards", data=rewards_form(token, **{"dvd-signed": {"replaces": "dvd"}})
                       ).status_code == 303
    db.session.expire_all()
    assert "dvd-signed" in held("patron@example.org") and "dvd" not in held("patron@example.org")
    # Taking either off the tiers is not refused for the rule it leaves behind (it brings nothing then).
    assert client.post("/admin/campaign/rewards", data=rewards_form(token, dvd={"tier": ""})).status_code == 303
    db.session.expire_all()
    assert "dvd-signed" in held("patron@example.org") and "dvd" not in held("patron@example.org")
    # A form without the field (an older page) leaves the rule as it is.
    assert client.post("/admin/campaign/rewards", data=rewards_form(token, dvd={"title-en": "The DVD"})
                       ).status_code == 303
    db.session.expire_all()
    assert db.session.scalar(sa.select(Reward.replaces).where(Reward.key == "dvd-signed")) == "dvd"
