"""The audit log (issue 7.8): staff actions recorded with who, what and when; producers read
it at /admin/audit; nobody can edit it (triggers refuse UPDATE and DELETE on both databases)."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from filmfund.audit import AuditEntry, list_audit, record_audit, verify_chain
from filmfund.auth.models import User
from filmfund.extensions import db
from tests.helpers import make_pledge
from tests.site.helpers import csrf_token, form_tokens, pay

PASSWORD = "a-long-producer-password"


def _entries(action: str) -> list[AuditEntry]:
    db.session.expire_all()
    return list_audit(action=action)


def test_an_entry_commits_with_its_action_and_rolls_back_with_it(app, make_user):
    boss = make_user("boss@filmfund.test", "producer")
    record_audit("settings.change", "campaign", {"goal": 5}, actor=boss)
    db.session.rollback()
    assert _entries("settings") == []
    record_audit("settings.change", "campaign", {"goal": 5}, actor=boss)
    db.session.commit()
    (entry,) = _entries("settings")
    assert (entry.actor_id, entry.actor, entry.target, entry.details_dict) == (boss.id, f"user:{boss.id}",
                                                                               "campaign", {"goal": 5})
    (grant,) = _entries("role.grant")  # make_user's; the rolled-back entry took no place in the chain
    assert (grant.seq, grant.prev_hash, entry.seq, entry.prev_hash) == (1, "0" * 64, 2, grant.entry_hash)
    assert verify_chain() == ([], 2)
    assert entry.created_at is not None


def test_nobody_can_edit_or_delete_an_entry(app, make_user):
    record_audit("token.revoke", "user:7", actor="cli")
    db.session.commit()
    for sql in ("UPDATE audit_log SET actor = 'nobody'", "UPDATE audit_log SET action = 'x.y'",
                "UPDATE audit_log SET entry_hash = 'x'", "UPDATE audit_log SET seq = 5", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(sa.text(sql))
    if db.engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(sa.text("TRUNCATE audit_log"))
    (entry,) = _entries("token")
    assert (entry.actor, entry.action) == ("cli", "token.revoke")


def test_deleting_a_user_keeps_their_entries_and_label(app, make_user):
    boss = make_user("boss@filmfund.test", "producer")
    record_audit("payout.record", "ref-1", actor=boss)
    db.session.commit()
    db.session.delete(boss)
    db.session.commit()
    (entry,) = _entries("payout")
    assert entry.actor_id is None and entry.actor == f"user:{boss.id}"
    assert verify_chain() == ([], 2)  # the foreign key's SET NULL is outside the chain


def test_producers_read_the_log_and_nobody_else(app, client, make_user, login_as):
    boss = make_user("boss@filmfund.test", "producer")
    record_audit("role.grant", "<script>x</script>", {"role": "partner"}, actor=boss)
    db.session.commit()
    login_as(client, boss)
    html = client.get("/admin/audit").get_data(as_text=True)
    assert "role.grant" in html and "boss@filmfund.test" in html  # the page names user:<id> by today's email
    assert "<script>x</script>" not in html  # escaped
    assert "<code>role.grant</code>" in client.get("/admin/audit?action=role").get_data(as_text=True)
    assert "<code>role.grant</code>" not in client.get("/admin/audit?action=token").get_data(as_text=True)
    assert client.get("/admin/audit?before=abc&action=" + "x" * 500).status_code == 200
    for role in ("partner", "donor"):
        other = app.test_client()
        login_as(other, make_user(role=role))
        assert other.get("/admin/audit").status_code == 403


def test_cli_role_and_token_changes_are_recorded(app, runner, make_user):
    result = runner.invoke(args=["users", "create", "boss@filmfund.test", "--role", "producer", "--password-stdin"],
                           input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    (grant,) = _entries("role.grant")
    boss = db.session.scalar(sa.select(User).where(User.email == "boss@filmfund.test"))
    assert (grant.actor, grant.target, grant.details_dict) == ("cli", f"user:{boss.id}", {"role": "producer"})
    assert runner.invoke(args=["tokens", "create", "boss@filmfund.test"]).exit_code == 0
    (token,) = _entries("token.create")
    assert token.actor == "cli" and token.target == f"user:{boss.id}"


def test_donors_made_by_gifts_are_not_staff_actions(app):
    pay(2500, "donor@example.org")
    assert _entries("role") == []


def test_staff_password_sign_in_is_recorded_with_the_address(app, client, make_user):
    boss = make_user("boss@filmfund.test", "producer", password=PASSWORD)
    app.config["STAFF_TOTP"] = False
    resp = client.post("/login", data={"csrf_token": csrf_token(client, "/login"), "email": boss.email,
                                       "password": PASSWORD}, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert resp.status_code == 302
    (entry,) = _entries("auth.sign_in")
    assert (entry.actor_id, entry.target, entry.ip) == (boss.id, f"user:{boss.id}", "10.1.2.3")


def test_producer_money_and_fulfilment_actions_are_recorded(app, client, make_user, login_as, campaign):
    boss = make_user("boss@filmfund.test", "producer")
    login_as(client, boss)
    token = csrf_token(client, "/admin/")
    resp = client.post("/admin/donations/offline", data={
        **form_tokens(client, "/admin/"), "email": "cash@example.org", "amount": "120.00",
        "received_on": date.today().isoformat(), "note": "screening"})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    (offline,) = _entries("donation.offline")
    donation_id = offline.details_dict["donation_id"]
    assert (offline.actor, offline.target, offline.details_dict["amount"]) == (f"user:{boss.id}", f"donation {donation_id}", 12000)
    assert "cash@example.org" not in offline.target + offline.details  # erasure cannot reach this log
    resp = client.post("/admin/payouts", data={**form_tokens(client, "/admin/"), "amount": "10.00",
                                               "paid_on": date.today().isoformat(), "reference": "BANK-7"})
    assert resp.status_code == 303
    (payout,) = _entries("payout.record")
    assert (payout.actor, payout.target, payout.details_dict["amount"]) == (f"user:{boss.id}", "BANK-7", 1000)
    from filmfund.rewards.models import Entitlement

    ent = db.session.scalar(sa.select(Entitlement).limit(1))
    resp = client.post(f"/admin/entitlements/{ent.id}", data={"csrf_token": token, "status": "fulfilled"})
    assert resp.status_code == 303
    (status,) = _entries("entitlement.status")
    assert status.actor == f"user:{boss.id}" and status.details_dict["to"] == "fulfilled"
    # a refused action leaves no entry
    client.post("/admin/payouts", data={**form_tokens(client, "/admin/"), "amount": "999999.00",
                                        "paid_on": date.today().isoformat(), "reference": "TOO-MUCH"})
    assert len(_entries("payout")) == 1


def test_a_campaign_file_that_changes_the_goal_or_share_is_recorded(app, runner, campaign, tmp_path):
    from filmfund.rewards.campaign import load_campaign

    load_campaign()  # the same file again: nothing changed, nothing recorded
    db.session.commit()
    assert _entries("settings") == []
    text = Path(app.config["CAMPAIGN_FILE"]).read_text()
    changed = tmp_path / "campaign.toml"
    changed.write_text(re.sub(r"(?m)^goal\s*=\s*\d+", "goal = 999900", text, count=1))
    result = runner.invoke(args=["campaign", "load", str(changed)])
    assert result.exit_code == 0, result.output
    (entry,) = _entries("settings.change")
    assert entry.actor == "cli" and entry.details_dict["goal"][1] == 999900


def test_a_refund_from_stripe_is_recorded_once(app, client, campaign):
    from tests.rewards.conftest import Stripe, charge_obj, make_event, session_obj

    stripe = Stripe(app, client)
    pledge = make_pledge(amount=12000, email="donor@example.org")
    pi = f"pi_{pledge.id}"
    stripe.post(make_event("checkout.session.completed", session_obj(pledge.id, 12000, pi=pi)))
    refund = make_event("charge.refunded", charge_obj(pi, 12000, 2500))
    for _ in range(2):  # Stripe's redelivery changes nothing and records nothing (a worker books each)
        assert stripe.post(refund).status_code == 200
    (entry,) = _entries("donation.refund")
    assert entry.actor == "stripe" and entry.details_dict["amount_refunded"] == 2500
