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
    # Paid in full, then a gift refunded: paid more than the share (probe, partner F9: "Balance
    # still due -$6.47" said nothing of it).
    import sqlalchemy as sa

    from filmfund import jobs
    from filmfund.rewards.models import Pledge
    from tests.rewards.conftest import Stripe, charge_obj

    payments.record_payout(amount=2000, paid_on=date(2026, 11, 21), reference="WIRE-78", recorded_by=producer.email)
    db.session.commit()
    ben = db.session.scalar(sa.select(Pledge).where(Pledge.email == "ben@example.org"))
    Stripe(client.application, client).send("charge.refunded", charge_obj(f"pi_test_local_{ben.id}", 5000, 5000))
    jobs.run_burst()
    html = client.get("/admin/partner").get_data(as_text=True)
    assert "Paid beyond the share so far" in html and 'id="st-balance">$10.00' in html
    assert "Balance still due" not in html


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


def _live_csv_rows(client, lang):
    import csv
    import io

    from tests.helpers import spreadsheet_csv

    return list(csv.reader(io.StringIO(spreadsheet_csv(client.get(f"/admin/partner/statement.csv?lang={lang}")))))


def test_the_live_csv_names_its_rows_as_the_month_csv_does(client, campaign, login_as, partner, producer,
                                                         booked_yesterday):
    """The month's CSV has a `label` column in the reader's words; the live statement's CSV,
    linked from the same page, named its rows `gross`, `refunded`... only, English a Chinese
    accountant had to guess. It is laid out as the month's (item, then label), and its labels
    come from the same home (books/printing.labels), so both files name a figure alike."""
    from datetime import date

    from filmfund.extensions import db
    from filmfund.rewards import payments

    _donations()
    payments.record_payout(amount=1000, paid_on=date.today(), reference="WIRE-88", recorded_by=producer.email)
    db.session.commit()
    rows = _live_csv_rows(login_as(client, partner), "zh-Hans")
    assert rows[0] == ["item", "label", "date", "amount_cents", "currency", "reference"]
    label = {r[0]: r[1] for r in rows[1:]}
    assert [label[k] for k in ("gross", "refunded", "net", "share_due", "paid_out", "balance", "payout")] == [
        "捐款总额", "退款", "净额", "应付份额", "已拨款", "待拨余额", "拨款"]
    assert label["share_booked"] == "当日入账的应付份额"
    payout = next(r for r in rows if r[0] == "payout")
    assert payout[2:] == [date.today().isoformat(), "1000", "usd", "WIRE-88"]


def test_the_live_csv_gives_its_cutoff_in_the_campaigns_zone(client, campaign, login_as, partner,
                                                            booked_yesterday):
    """The partner's figures stop at midnight in the campaign's zone (Beijing); the CSV wrote
    that moment in UTC (…T16:00:00+00:00), the day before to a Beijing reader and text to Excel.
    It writes the campaign's wall time, as a spreadsheet reads a date and time, and names the
    zone in the reader's words."""
    from filmfund.rewards import statements

    _donations()
    midnight = statements.partner_cutoff(campaign).astimezone(statements.zone(campaign))
    assert campaign.time_zone == "Asia/Shanghai" and (midnight.hour, midnight.minute) == (0, 0)
    login_as(client, partner)
    as_of = next(r for r in _live_csv_rows(client, "en") if r[0] == "as_of")
    assert as_of[1:3] == ["Figures as at this time (China Time)", f"{midnight:%Y-%m-%d} 00:00"]
    as_of = next(r for r in _live_csv_rows(client, "zh-Hans") if r[0] == "as_of")
    assert as_of[1:3] == ["数字截至此时间（北京时间）", f"{midnight:%Y-%m-%d} 00:00"]


def test_the_charts_text_alternative_is_punctuated_and_worded_as_the_page(client, campaign, login_as, partner,
                                                                        producer, booked_yesterday):
    """A screen reader reads the chart's title and summary as one text: they were joined by an
    ASCII ". " (…随时间的变化. 2026年…), and the chart called what was paid 已支付 where the
    figures above it say 已付款 (now 已拨款, the payout's one word). The separator is the language's
    own, and the term is one."""
    from datetime import date

    from filmfund.extensions import db
    from filmfund.rewards import payments

    _donations()
    payments.record_payout(amount=1000, paid_on=date.today(), reference="WIRE-88", recorded_by=producer.email)
    db.session.commit()
    page = login_as(client, partner).get("/admin/partner?lang=zh-Hans").get_data(as_text=True)
    title = re.search(r'<title id="share-chart-title">(.*?)</title>', page, re.S).group(1)
    assert title.startswith("合作机构的应付份额与已拨款随时间的变化。") and ". " not in title, title
    chart = re.search(r'<figure class="chart".*?</figure>', page, re.S).group(0)
    assert "已拨款" in chart and "已支付" not in chart and "已付款" not in chart
    en = login_as(client, partner).get("/admin/partner?lang=en").get_data(as_text=True)
    assert "<title id=\"share-chart-title\">Share due to the partner and paid to it over time. From " in en
