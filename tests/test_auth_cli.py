"""`filmfund users create` and `filmfund tokens create`."""
import sqlalchemy as sa

from filmfund.auth import services
from filmfund.auth.models import ApiToken
from filmfund.extensions import db


def test_users_create_with_password_from_stdin(runner):
    result = runner.invoke(args=["users", "create", "Boss@FilmFund.test", "--role", "producer", "--password-stdin"],
                           input="a-long-producer-password\n")
    assert result.exit_code == 0, result.output
    assert "producer" in result.output
    user = services.authenticate("Boss@filmfund.test", "a-long-producer-password")
    assert user is not None and user.has_role("producer")
    assert "a-long-producer-password" not in result.output


def test_users_create_gives_an_existing_donor_another_role(runner, make_user):
    donor = make_user("both@example.org", "donor")
    # a staff role needs a password: refused without one, nothing changed
    refused = runner.invoke(args=["users", "create", "both@example.org", "--role", "partner"])
    assert refused.exit_code != 0 and "password" in refused.output
    db.session.expire_all()
    assert services.find_user("both@example.org").role_names == {"donor"}
    result = runner.invoke(args=["users", "create", "both@example.org", "--role", "partner", "--password-stdin"],
                           input="a-long-partner-password\n")
    assert result.exit_code == 0
    assert "donor, partner" in result.output
    db.session.expire_all()
    assert services.find_user("both@example.org").id == donor.id
    assert services.find_user("both@example.org").role_names == {"donor", "partner"}


def test_users_create_refuses_bad_input(runner):
    assert runner.invoke(args=["users", "create", "not-an-email", "--role", "donor"]).exit_code != 0
    assert runner.invoke(args=["users", "create", "x@example.org", "--role", "admin"]).exit_code != 0
    short = runner.invoke(args=["users", "create", "y@example.org", "--role", "producer", "--password-stdin"],
                          input="short\n")
    assert short.exit_code != 0 and "10 characters" in short.output
    assert services.find_user("y@example.org") is None  # nothing half-made


def test_tokens_create_prints_only_the_token_and_stores_its_hash(runner, client, make_user):
    make_user("partner@xinxing.test", "partner", password="a-long-partner-password")
    result = runner.invoke(args=["tokens", "create", "partner@xinxing.test"])
    assert result.exit_code == 0
    token = result.output.strip()
    assert result.output == token + "\n" and token.startswith("ff_")
    stored = db.session.scalar(sa.select(ApiToken.token_hash))
    assert stored != token and len(stored) == 64
    resp = client.get("/api/v1/partner/statement", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200 and resp.get_json()["share_bps"] == 2000


def test_tokens_create_for_unknown_user_fails(runner):
    result = runner.invoke(args=["tokens", "create", "ghost@example.org"])
    assert result.exit_code != 0 and "ghost@example.org" in result.output
