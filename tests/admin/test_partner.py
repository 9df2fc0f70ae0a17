"""The partner's page: the statement and payouts, and never a donor's email or name."""
import re

from tests.site.helpers import csrf_token, pay

DONORS = [("ann@example.org", "Ann Visible", 10000), ("ben@example.org", "Ben Hidden", 5000)]


def _donations():
    for email, name, amount in DONORS:
        pay(amount, email, credit_name=name)


def test_statement_and_payouts(client, campaign, login_as, partner, producer, monkeypatch):
    from datetime import date, datetime, timedelta, timezone

    from filmfund.extensions import db
    from filmfund.rewards import ledger, payments

    # Booked yesterday: the partner sees the ledger as it stood at the end of the previous day
    # (tests/books/test_partner_statements.py tests that hold-back).
    monkeypatch.setattr(ledger, "utcnow", lambda: datetime.now(timezone.utc) - timedelta(days=1, hours=1))
    _donations()
    payments.record_payout(amount=1000, paid_on=date(2026, 11, 20), reference="WIRE-77", recorded_by=producer.email)
    db.session.commit()
    html = login_as(client, partner).get("/admin/partner").get_data(as_text=True)
    assert 'id="st-gross">$150.00' in html and 'id="st-net">$150.00' in html
    assert 'id="st-due">$30.00' in html and 'id="st-paid">$10.00' in html and 'id="st-balance">$20.00' in html
    assert "WIRE-77" in html and "November 20, 2026" in html  # the date as the reader's language writes it
    assert re.search(r'<svg id="share-chart"', html)


def test_partner_sees_no_donor_data_in_page_or_csv(client, campaign, login_as, partner, producer):
    _donations()
    login_as(client, partner)
    page = client.get("/admin/partner").get_data(as_text=True)
    csv_text = client.get("/admin/partner/statement.csv").get_data(as_text=True)
    for text in (page, csv_text):
        for email, name, _ in DONORS:
            assert email not in text and name not in text
        assert producer.email not in text  # who recorded a payout is internal too
        assert "@example.org" not in text


def test_partner_cannot_write_anything(client, campaign, login_as, partner):
    login_as(client, partner)
    token = csrf_token(client, "/admin/partner")
    for path in ("/admin/payouts", "/admin/donations/offline", "/admin/updates", "/admin/entitlements/1"):
        assert client.post(path, data={"csrf_token": token, "amount": "1"}).status_code == 403
    assert client.get("/admin/").status_code == 403
    assert client.get("/admin/credits.csv").status_code == 403


def test_test_money_is_labelled(app, client, campaign, login_as, partner, producer):
    _donations()
    assert 'id="test-money"' in login_as(client, partner).get("/admin/partner").get_data(as_text=True)
    assert 'id="test-money"' in login_as(client, producer).get("/admin/").get_data(as_text=True)
    app.config.update(STRIPE_SECRET_KEY="sk_live_not_a_real_key", STRIPE_TEST_MODE=False)
    page = login_as(client, partner).get("/admin/partner").get_data(as_text=True)
    assert 'id="test-money"' not in page and 'id="st-gross">$0.00' in page  # live: the test money is not counted


def test_the_partner_csv_says_test_money_in_the_readers_language(client, campaign, login_as, partner):
    from tests.helpers import spreadsheet_csv

    _donations()
    login_as(client, partner)
    en = spreadsheet_csv(client.get("/admin/partner/statement.csv?lang=en"))
    zh = spreadsheet_csv(client.get("/admin/partner/statement.csv?lang=zh-Hans"))
    assert "test_money" in en and "Test money: no real payment is counted here" in en
    row = next(r for r in zh.splitlines() if r.startswith("test_money,"))
    assert row.isascii() is False and "Test money" not in row and "TEST MONEY" not in row
