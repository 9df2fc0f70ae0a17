"""Test-mode money is marked wherever it is shown, and never mixed with live money: once the
installation has a live key, a donor who gave only test money is gone from the statement, the
campaign figures and the credits (export and producer page). No network: the paths used here
(the local test checkout, offline donations, pages, the API, the CLI) never call Stripe."""
from __future__ import annotations

from filmfund.fulfil import credits
from tests.helpers import record_offline
from tests.site.helpers import pay


def _names(campaign):
    return [l.name for l in credits.live_lines(campaign)]


def test_test_money_is_marked_then_gone_under_a_live_key(app, client, campaign, runner, login_as, producer,
                                                          partner, token_for, outbox, booked_yesterday):
    from filmfund.auth.services import find_user

    pay(50000, "tester@example.org", credit_name="Tess Tmoney")  # the local test checkout: test money
    db_user = find_user("tester@example.org")

    # Test mode: the figures count the test money and say so, everywhere.
    api = client.get("/api/v1/campaign").get_json()
    assert api["test_money"] is True and api["raised"] == 50000 and api["donors"] == 1
    assert 'id="test-money"' in client.get("/").get_data(as_text=True)
    statement = client.get("/api/v1/partner/statement", headers=token_for(partner)).get_json()
    assert statement["test_money"] is True and statement["gross"] == 50000
    assert _names(campaign) == ["Tess Tmoney"]
    [receipt] = [m for m in outbox() if m["To"] == "tester@example.org"]
    assert "no money moved" in receipt["Subject"].lower()
    assert "No money moved" in receipt.get_body(("plain",)).get_content()
    account = login_as(client, db_user).get("/account").get_data(as_text=True)
    assert "test payment: no money moved" in account
    partner_csv = login_as(client, partner).get("/admin/partner/statement.csv").get_data(as_text=True)
    assert any(line.startswith("test_money,") for line in partner_csv.splitlines())

    # The installation goes live. The test donor's entitlements are still there (until `campaign
    # load` re-derives them), yet nothing shown counts the test money.
    app.config.update(STRIPE_SECRET_KEY="sk_live_not_a_real_key", STRIPE_TEST_MODE=False)
    from filmfund.rewards import receipts

    live = record_offline("livefan@example.org", 5000, credit_name="Liv Realmoney",
                                     recorded_by="producer@example.org")
    client = app.test_client()
    api = client.get("/api/v1/campaign").get_json()
    assert api["test_money"] is False and api["raised"] == 5000 and api["donors"] == 1
    page = client.get("/").get_data(as_text=True)
    assert 'id="test-money"' not in page and "$50" in page
    statement = client.get("/api/v1/partner/statement", headers=token_for(partner)).get_json()
    assert (statement["test_money"], statement["gross"], statement["net"]) == (False, 5000, 5000)
    assert _names(campaign) == ["Liv Realmoney"]
    partner_csv = login_as(client, partner).get("/admin/partner/statement.csv").get_data(as_text=True)
    assert "test_money" not in partner_csv and "gross,Gifts (gross),,5000,usd," in partner_csv
    out = runner.invoke(args=["credits", "export", "--format", "csv"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == ["section,name", "supporters,Liv Realmoney"]
    html = login_as(client, producer).get("/admin/credits").get_data(as_text=True)
    assert "Liv Realmoney" in html and "Tess Tmoney" not in html
    live_receipt = receipts.compose_receipt(live)  # a live donation's receipt is a plain receipt
    assert "no money moved" not in (live_receipt.subject + live_receipt.text).lower()
    assert "Keep this email as your receipt." in live_receipt.text

    # The donor's own page still lists the test donation, labelled as such.
    account = login_as(app.test_client(), db_user).get("/account").get_data(as_text=True)
    assert "$500.00" in account and "test payment: no money moved" in account
    # And back in test mode the live donor is not in the test credits either.
    app.config.update(STRIPE_SECRET_KEY=None, STRIPE_TEST_MODE=True)
    assert _names(campaign) == ["Tess Tmoney"]
