"""One DVD, signed: the $100 tier's "the DVD signed" takes the place of the $50 tier's DVD
(the campaign file's `replaces`). Tiers add up ("all the above, plus..."), but a donor of $100 or
more is sent one DVD, signed, not an unsigned one beside it. Before, every such donor held both
and the crew's queues owed them two parcels of the same film.

The rule's home is holdings.rewards_due: the booking, a refund, the campaign's load, the demo
seed and the ledger check all ask it."""
from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest
import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.fulfil import statement
from filmfund.rewards import holdings, ledger_check, refunds, stock
from filmfund.rewards.campaign import current_campaign, load_campaign
from filmfund.rewards.campaign_file import CampaignFileError, parse_campaign
from filmfund.rewards.models import Reward
from tests.helpers import record_offline
from tests.rewards.test_campaign import bundled

BUNDLED = Path(__file__).resolve().parents[2] / "filmfund/campaigns/living-with-dead-hearts.toml"


def _held(email: str) -> set[str]:
    from filmfund.auth.services import find_user

    return holdings.held_keys(find_user(email).id, current_campaign().id)


def _owed(key: str) -> int:
    return {q.reward.key: q.counts for q in statement.queues(current_campaign())}[key]["owed"]


def test_a_donor_who_reaches_the_signed_dvd_is_owed_one_dvd_signed_and_a_refund_below_brings_the_dvd_back(campaign):
    record_offline("mei@example.org", 5000)
    assert {"dvd"} <= _held("mei@example.org") and "dvd-signed" not in _held("mei@example.org")
    assert (_owed("dvd"), _owed("dvd-signed")) == (1, 0)

    second = record_offline("mei@example.org", 5000)  # $100 in all: the Patron tier
    held = _held("mei@example.org")
    assert {"dvd-signed", "thank-you-letter"} <= held and "dvd" not in held
    assert (_owed("dvd"), _owed("dvd-signed")) == (0, 1)  # one parcel: the plain DVD's item left the queue
    assert ledger_check.check_ledger() == []

    refunds.request_refund(second.id, 1, "one cent back: below the Patron tier")
    db.session.commit()
    held = _held("mei@example.org")
    assert "dvd" in held and "dvd-signed" not in held and "thank-you-letter" not in held
    assert (_owed("dvd"), _owed("dvd-signed")) == (1, 0)  # the DVD, as before (its item owed again)
    assert ledger_check.check_ledger() == []


def test_when_the_signed_dvds_are_gone_a_donor_reaching_their_tier_gets_the_dvd(campaign):
    signed = db.session.scalar(sa.select(Reward).where(Reward.key == "dvd-signed"))
    stock.set_reward_limit(signed.id, 1)
    db.session.commit()
    record_offline("first@example.org", 10000)
    assert "dvd-signed" in _held("first@example.org")
    record_offline("late@example.org", 5000)
    record_offline("late@example.org", 5000)  # reaches the tier with the last signed DVD gone
    held = _held("late@example.org")
    assert "dvd" in held and "dvd-signed" not in held and "thank-you-letter" in held
    assert (_owed("dvd"), _owed("dvd-signed")) == (1, 1)
    assert ledger_check.check_ledger() == []


def test_a_campaign_load_that_adds_the_rule_sends_holders_of_both_one(campaign, tmp_path):
    without = tmp_path / "campaign.toml"
    without.write_text(BUNDLED.read_text().replace(' replaces = "dvd",', ""))
    load_campaign(without)
    db.session.commit()
    record_offline("patron@example.org", 10000)
    assert {"dvd", "dvd-signed"} <= _held("patron@example.org")  # the file without the rule: two DVDs
    load_campaign(BUNDLED)
    db.session.commit()
    held = _held("patron@example.org")
    assert "dvd-signed" in held and "dvd" not in held
    assert (_owed("dvd"), _owed("dvd-signed")) == (0, 1)
    assert ledger_check.check_ledger() == []


def _tier_text(html: str, min_amount: int) -> str:
    """A tier's entry on the campaign page, as read (tags out, spaces folded)."""
    entry = html.split(f'id="tier-{min_amount}"', 1)[1].split('<li class="tier"', 1)[0].split("</ol>", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", entry)).strip()


@pytest.mark.parametrize("lang, signed, dvd, note", [
    ("en", "The DVD signed", "A DVD of the finished film", " (in place of “A DVD of the finished film”)"),
    ("zh-Hans", "签名版 DVD", "成片 DVD 一张", "（代替“成片 DVD 一张”）"),
])
def test_the_tier_list_and_the_preview_say_the_signed_dvd_comes_in_place_of_the_dvd(client, campaign, lang, signed,
                                                                                   dvd, note, tmp_path):
    """A donor choosing $100 reads that the signed DVD takes the place of the DVD of the tier below
    (not a second one): beside the reward in the tier list, and in what the live preview reads
    (static/js/pledge.js; tests/site/test_browser.py sees it typed). Neither says it while the
    signed DVDs are sold out, nor for a file without the rule."""
    html = client.get(f"/?lang={lang}").get_data(as_text=True)
    assert signed + note in _tier_text(html, 10000)
    assert dvd in _tier_text(html, 5000) and note.strip() not in _tier_text(html, 5000)
    form = html.split('id="pledge-form"', 1)[1].split(">", 1)[0]
    in_place = json.loads(unescape(re.search(r"data-in-place-of='([^']*)'", form).group(1)))
    assert in_place == {"dvd-signed": note}  # the space before it included (i18n.word_space): none in Chinese

    # The signed DVDs sold out: a donor reaching the tier now is sent the DVD, and the page says nothing else.
    signed_dvd = db.session.scalar(sa.select(Reward).where(Reward.key == "dvd-signed"))
    stock.set_reward_limit(signed_dvd.id, 0)
    db.session.commit()
    html = client.get(f"/?lang={lang}").get_data(as_text=True)
    assert note.strip() not in html and "data-in-place-of='{}'" in html and signed in _tier_text(html, 10000)
    stock.set_reward_limit(signed_dvd.id, None)
    db.session.commit()
    assert note.strip() in client.get(f"/?lang={lang}").get_data(as_text=True)

    without = tmp_path / "campaign.toml"
    without.write_text(BUNDLED.read_text().replace(' replaces = "dvd",', ""))
    load_campaign(without)
    db.session.commit()
    html = client.get(f"/?lang={lang}").get_data(as_text=True)
    assert note.strip() not in html and "data-in-place-of='{}'" in html


def _reward(data: dict, key: str) -> dict:
    return next(r for t in data["tiers"] for r in t["rewards"] if r["key"] == key)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: _reward(d, "dvd-signed").update(replaces="no-such-reward"), "'no-such-reward' is not a reward of a lower tier"),
    (lambda d: _reward(d, "dvd-signed").update(replaces="thank-you-letter"), "'thank-you-letter' is not a reward of a lower tier"),
    (lambda d: _reward(d, "dvd").update(replaces="dvd-signed"), "'dvd-signed' is not a reward of a lower tier"),
    (lambda d: _reward(d, "dvd-signed").update(replaces="stills"), "only a physical reward takes the place of another"),
    (lambda d: _reward(d, "thank-you-letter").update(replaces="dvd"), "'dvd' is replaced by another reward already"),
])
def test_the_campaign_file_says_what_is_wrong_with_a_replacement(mutate, message):
    data = bundled()
    mutate(data)
    with pytest.raises(CampaignFileError) as err:
        parse_campaign(data)
    assert message in err.value.message, err.value.message
