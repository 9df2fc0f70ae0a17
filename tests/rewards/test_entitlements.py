"""Entitlements follow the donor's lifetime net: several donations add up, refunds lower the tier."""
import pytest
import sqlalchemy as sa

from filmfund.auth.services import find_user
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.rewards import donors, ledger_check
from filmfund.rewards.entitlements import donor_entitlements, set_entitlement_status
from filmfund.rewards.holdings import holds
from filmfund.rewards.models import Entitlement
from filmfund.rewards.campaign import current_campaign
from tests.helpers import record_offline

from .conftest import charge_obj, session_obj


def pay(stripe_events, pledge, amount, email="fan@example.org", **kw):
    p = pledge(amount, email, **kw)
    stripe_events.send("checkout.session.completed", session_obj(p.id, amount, email=email))
    return p


def statuses(email="fan@example.org"):
    return {r["key"]: r["status"] for r in donor_entitlements(find_user(email), current_campaign())["rewards"]}


def test_donations_add_up_and_refunds_revoke(campaign, stripe_events, pledge):
    first = pay(stripe_events, pledge, 3000)
    assert donor_entitlements(find_user("fan@example.org"), current_campaign())["tier"] == {"min_amount": 3000, "name": "Insider"}
    assert set(statuses()) == {"credit-name", "wallpapers", "updates-monthly", "stills"}
    pay(stripe_events, pledge, 2500)  # 55.00 in all: Collector
    doc = donor_entitlements(find_user("fan@example.org"), current_campaign())
    assert doc["total"] == 5500 and doc["tier"]["name"] == "Collector"
    assert statuses()["dvd"] == "granted"
    stripe_events.send("charge.refunded", charge_obj(f"pi_{first.id}", 3000, 1000))  # 45.00: Insider again
    assert statuses()["dvd"] == "revoked" and statuses()["video-clips"] == "revoked"
    assert statuses()["stills"] == "granted"
    rows_before = db.session.scalar(sa.select(sa.func.count(Entitlement.id)))
    pay(stripe_events, pledge, 1000)  # 55.00 again: re-granted, same rows
    assert statuses()["dvd"] == "granted"
    assert db.session.scalar(sa.select(sa.func.count(Entitlement.id))) == rows_before
    assert ledger_check.check_ledger() == []


def test_a_refund_ends_even_a_delivered_reward_and_keeps_the_delivery_on_record(campaign, stripe_events, pledge):
    """Ending a reward ends it whatever its delivery state (issue 16): a delivered service must stop
    opening its questions or updates. The delivery stays on record, and giving again brings the
    reward back as delivered (it was shipped: nobody ships it twice)."""
    p = pay(stripe_events, pledge, 5000)
    dvd = next(r for r in donor_entitlements(find_user("fan@example.org"), current_campaign())["rewards"] if r["key"] == "dvd")
    set_entitlement_status(dvd["id"], "fulfilled")
    db.session.commit()
    stripe_events.send("charge.refunded", charge_obj(f"pi_{p.id}", 5000, 5000))
    assert statuses()["dvd"] == "revoked" and statuses()["stills"] == "revoked"
    assert db.session.get(Entitlement, dvd["id"]).fulfilled_at is not None
    assert ledger_check.check_ledger() == []
    pay(stripe_events, pledge, 5000)
    assert statuses()["dvd"] == "fulfilled" and statuses()["stills"] == "granted"
    assert ledger_check.check_ledger() == []


def test_set_entitlement_status_refuses(campaign, stripe_events, pledge):
    p = pay(stripe_events, pledge, 100)
    ent_id = donor_entitlements(find_user("fan@example.org"), current_campaign())["rewards"][0]["id"]
    with pytest.raises(ValidationError):
        set_entitlement_status(ent_id, "shipped")
    with pytest.raises(ConflictError):
        set_entitlement_status(ent_id, "revoked")
    with pytest.raises(NotFoundError):
        set_entitlement_status(999999, "fulfilled")
    stripe_events.send("charge.refunded", charge_obj(f"pi_{p.id}", 100, 100))
    with pytest.raises(ConflictError):  # a revoked reward cannot be marked delivered
        set_entitlement_status(ent_id, "fulfilled")


def test_opt_out_is_the_first_gifts_and_then_the_donors_choice(campaign, stripe_events, pledge):
    pay(stripe_events, pledge, 5000, rewards_opt_out=True)
    doc = donor_entitlements(find_user("fan@example.org"), current_campaign())
    assert doc["rewards_opt_out"] is True and doc["rewards"] == [] and doc["total"] == 5000
    pay(stripe_events, pledge, 100)  # a later pledge never changes the donor's settings (donors.py)
    assert donor_entitlements(find_user("fan@example.org"), current_campaign())["rewards_opt_out"] is True
    donors.update_donor_settings(find_user("fan@example.org"), via="account", rewards_opt_out=False)
    db.session.commit()
    assert statuses()["dvd"] == "granted"  # the whole lifetime total counts
    pay(stripe_events, pledge, 100, rewards_opt_out=True)  # asks; the donor has not confirmed
    assert statuses()["dvd"] == "granted"
    donors.update_donor_settings(find_user("fan@example.org"), via="api", rewards_opt_out=True)
    db.session.commit()
    assert set(statuses().values()) == {"revoked"}
    assert ledger_check.check_ledger() == []


def test_offline_donations_grant_too(campaign):
    record_offline("cash@example.org", 25000, recorded_by="p@example.org")
    assert statuses("cash@example.org")["interview-questions"] == "granted"


def test_media_can_ask_by_user_and_reward_key(campaign, stripe_events, pledge):
    p = pay(stripe_events, pledge, 3000)
    user, campaign_id = find_user("fan@example.org"), current_campaign().id
    assert holds(user.id, "stills", campaign_id) and not holds(user.id, "video-clips", campaign_id)
    stripe_events.send("charge.refunded", charge_obj(f"pi_{p.id}", 3000, 3000))
    assert not holds(user.id, "stills", campaign_id)


def test_me_entitlements_api(client, campaign, stripe_events, pledge, token_for, make_user):
    pay(stripe_events, pledge, 1500)
    donor = find_user("fan@example.org")
    doc = client.get("/api/v1/me/entitlements", headers=token_for(donor)).get_json()
    assert doc["total"] == 1500 and doc["tier"] == {"min_amount": 1500, "name": "Follower"}
    assert doc["rewards_opt_out"] is False
    assert doc["rewards"][0] == {"key": "credit-name", "kind": "credit", "title": "Your name in the end credits",
                                 "status": "granted"}
    stranger = make_user("stranger@example.org")
    assert client.get("/api/v1/me/entitlements", headers=token_for(stranger)).get_json() == {
        "total": 0, "tier": None, "rewards_opt_out": False, "rewards": []}
    assert client.get("/api/v1/me/entitlements").status_code == 401
    partner = make_user("partner@example.org", role="partner")
    assert client.get("/api/v1/me/entitlements", headers=token_for(partner)).status_code == 403


def test_partner_statement_api(client, campaign, stripe_events, pledge, token_for, make_user, booked_yesterday):
    pay(stripe_events, pledge, 5001)
    expected = {"currency": "usd", "share_bps": 2000, "gross": 5001, "refunded": 0, "net": 5001,
                "share_due": 1000, "paid_out": 0, "balance": 1000, "test_money": True}
    for role in ("partner", "producer"):
        r = client.get("/api/v1/partner/statement", headers=token_for(make_user(f"{role}@example.org", role=role)))
        body = r.get_json()
        as_of = body.pop("as_of")
        assert r.status_code == 200 and body == expected
        # The partner's figures stop at the start of today (the hold-back); the producer's are live.
        assert (as_of is None) == (role == "producer")
        assert "fan@example.org" not in r.get_data(as_text=True)
    donor = find_user("fan@example.org")
    assert client.get("/api/v1/partner/statement", headers=token_for(donor)).status_code == 403
    assert client.get("/api/v1/partner/statement").status_code == 401
    assert client.post("/api/v1/partner/statement").status_code == 405
