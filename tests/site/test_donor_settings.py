"""A later gift that asks for other settings changes nothing until the donor clicks the link mailed
to them (issue 7.1): the honest returning donor, and the stranger with a donor's email."""
import re

import sqlalchemy as sa

from filmfund.auth.services import find_user
from filmfund.extensions import db
from filmfund.rewards import donors, entitlements, ledger_check
from filmfund.rewards.models import DonorSettingsRequest
from filmfund.rewards.campaign import current_campaign
from tests.helpers import credit_names, record_offline
from tests.site.helpers import csrf_token, mails_to, pay

LINK_RE = re.compile(r"https?://\S+(/settings/confirm/[A-Za-z0-9_.\-]+)")


def confirm_link(address: str) -> str:
    links = [m.group(1) for text in mails_to(address) for m in [LINK_RE.search(text)] if m]
    assert links, f"no confirmation link mailed to {address}"
    return links[0]


def rewards(address: str) -> dict[str, str]:
    return {r["key"]: r["status"] for r in entitlements.donor_entitlements(find_user(address), current_campaign())["rewards"]}


def test_the_form_warns_a_returning_donor_without_revealing_anyone(client, campaign):
    html = client.get("/").get_data(as_text=True)
    assert "Given before?" in html and "we will email you to confirm the change" in html
    # Anonymity asked by a later gift applies at once (donors.record_gift_choices): the note says so.
    assert "never changes your credit name or rewards" in html and "Only staying anonymous applies at once" in html
    zh = client.get("/?lang=zh-Hans").get_data(as_text=True)
    assert "捐款本身不会更改您的署名或回报选择" in zh and "选择匿名会立即生效" in zh
    pay(5500, "known@example.org", credit_name="Known")
    # the same page for everybody: nothing tells a stranger that this email is a donor's
    form = {"csrf_token": csrf_token(client), "amount": "1", "email": "known@example.org",
            "rewards_opt_out": "1"}
    known = client.post("/pledge", data=form)
    form = {"csrf_token": csrf_token(client), "amount": "1", "email": "unknown@example.org",
            "rewards_opt_out": "1"}
    unknown = client.post("/pledge", data=form)
    assert known.status_code == unknown.status_code == 303


def test_honest_returning_donor_keeps_everything_until_they_confirm(client, campaign):
    """$55, then $5 with "No rewards, thanks": everything stays; the receipt carries the link, and
    the link works when clicked."""
    pay(5500, "honest@example.org", credit_name="Honest Donor")
    before = rewards("honest@example.org")
    assert before["dvd"] == "granted"
    pay(500, "honest@example.org", rewards_opt_out=True)
    assert rewards("honest@example.org") == before
    assert credit_names(campaign) == ["Honest Donor"]
    receipt = next(t for t in mails_to("honest@example.org") if "/settings/confirm/" in t)
    assert "give you no rewards" in receipt and "nothing changes" in receipt
    assert "brings you the “Collector” tier" in receipt  # the receipt still lists the rewards kept

    link = confirm_link("honest@example.org")
    page = client.get(link)
    assert page.status_code == 200 and "give you no rewards" in page.get_data(as_text=True)
    db.session.expire_all()
    assert rewards("honest@example.org") == before  # a visit (a mail scanner's, say) changes nothing
    done = client.post(link, data={"csrf_token": csrf_token(client, link)})
    assert done.status_code == 200 and "Your settings are changed" in done.get_data(as_text=True)
    db.session.expire_all()
    assert set(rewards("honest@example.org").values()) == {"revoked"}
    assert credit_names(campaign) == []
    assert donors.profile_for(find_user("honest@example.org").id).rewards_opt_out is True
    again = client.post(link, data={"csrf_token": csrf_token(client)})
    assert again.status_code == 409
    assert ledger_check.check_ledger() == []


def test_a_strangers_gift_mails_the_donor_not_the_stranger(client, campaign):
    pay(200000, "big@example.org", credit_name="Real Donor")
    before = rewards("big@example.org")
    pay(100, "big@example.org", credit_name="Attacker", rewards_opt_out=True)
    db.session.expire_all()
    assert rewards("big@example.org") == before and credit_names(campaign) == ["Real Donor"]
    link = confirm_link("big@example.org")  # only the donor's mailbox holds it
    assert "Attacker" in client.get(link).get_data(as_text=True)
    # a forged or altered token is refused
    assert client.get("/settings/confirm/forged").status_code == 404
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert client.get(tampered).status_code == 404
    assert client.post(tampered, data={"csrf_token": csrf_token(client)}).status_code == 404
    db.session.expire_all()
    assert rewards("big@example.org") == before


def test_a_link_names_its_own_donor(app, client, campaign):
    pay(3000, "a@example.org", credit_name="A")
    pay(100, "a@example.org", credit_name="A2")
    request = db.session.scalar(sa.select(DonorSettingsRequest))
    # a token signed for this request but naming another user is refused
    from itsdangerous import URLSafeTimedSerializer

    forged = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wrong-salt").dumps({"r": request.id, "u": "x"})
    assert client.get(f"/settings/confirm/{forged}").status_code == 404
    assert client.get(f"/settings/confirm/{donors.confirmation_token(request)}").status_code == 200


def test_offline_later_gift_mails_its_own_confirmation(client, campaign):
    record_offline("cash@example.org", 25000, credit_name="Cash", recorded_by="p@example.org")
    record_offline("cash@example.org", 1000, credit_name="Cash Two", recorded_by="p@example.org")
    assert credit_names(campaign) == ["Cash"]
    link = confirm_link("cash@example.org")
    client.post(link, data={"csrf_token": csrf_token(client, link)})
    db.session.expire_all()
    assert credit_names(campaign) == ["Cash Two"]
    assert donors.profile_for(find_user("cash@example.org").id).credit_name == "Cash Two"


def test_offline_later_gift_asking_anonymity_applies_it_and_says_how_to_undo(client, campaign):
    record_offline("quiet@example.org", 25000, credit_name="Quiet", recorded_by="p@example.org")
    assert credit_names(campaign) == ["Quiet"]
    record_offline("quiet@example.org", 1000, anonymous=True, recorded_by="p@example.org")
    assert credit_names(campaign) == []
    notice = next(t for t in mails_to("quiet@example.org") if "anonymous" in t)
    assert "We did at once" in notice and "/account#settings" in notice and "/settings/confirm/" not in notice
