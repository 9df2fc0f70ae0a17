"""Publishing and unpublishing footage are staff actions in the audit log (issue 7.8)."""
from filmfund.audit import list_audit
from filmfund.extensions import db


def test_publish_and_unpublish_are_audited(app, client, make_user, token_for, ready_asset, campaign_reward):
    asset = ready_asset("Behind the scenes, day 3")
    boss = make_user("boss@filmfund.test", "producer")
    headers = token_for(boss)
    url = f"/api/v1/media/assets/{asset.public_id}"
    assert client.post(url + "/publish", json={"reward": "digital-download"}, headers=headers).status_code == 201
    assert client.post(url + "/publish", json={"reward": "digital-download"}, headers=headers).status_code == 200
    assert client.post(url + "/unpublish", json={"reward": "digital-download"}, headers=headers).status_code == 200
    db.session.expire_all()
    entries = list_audit(action="media")
    assert [(e.action, e.actor, e.details_dict["reward"]) for e in reversed(entries)] == [
        ("media.publish", f"user:{boss.id}", "digital-download"), ("media.unpublish", f"user:{boss.id}", "digital-download")]
    assert entries[0].target == f"asset {asset.public_id}"
