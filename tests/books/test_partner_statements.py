"""The partner's statements as a page, a CSV and a PDF: the figures, the language, the hold-back
(a pledge booked now changes nothing the partner can see until the day is over), no donor string
anywhere, and the partner's "received" for a payout."""
from __future__ import annotations

import re
import subprocess
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards import ledger, statements
from filmfund.rewards.models import Payout
from filmfund.rewards.payments import record_payout
from tests.helpers import spreadsheet_csv
from tests.site.helpers import csrf_token, pay

NOW = datetime.now(timezone.utc)
# Distinctive donor strings: none may reach anything the partner (or the public) sees.
DONORS = [("zelda.quimby@donor-secret.example", "Zelda Quimbyfeather", 10000),
          ("otto.vexley@donor-secret.example", "奥托·维克斯利", 5000)]
ADDRESS = {"name": "Zelda Quimbyfeather", "line1": "77 Marmalade Crescent", "line2": "Flat Quokka",
           "city": "Wobbleton", "state": "", "postal_code": "ZX9 9QQ", "country": "GB"}


@pytest.fixture
def yesterday(monkeypatch):
    """Book what follows as the ledger would have yesterday (before the partner's cutoff)."""
    monkeypatch.setattr(ledger, "utcnow", lambda: NOW - timedelta(days=1, hours=1))
    yield
    monkeypatch.setattr(ledger, "utcnow", lambda: datetime.now(timezone.utc))


def _gifts():
    from filmfund.auth.services import find_user
    from filmfund.fulfil.fulfilment import save_address

    for email, name, amount in DONORS:
        pay(amount, email, credit_name=name)
    save_address(find_user(DONORS[0][0]), ADDRESS, source="account")
    db.session.commit()


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()


def _month(campaign) -> str:
    return statements.current_month(campaign)


def _booked_month(campaign) -> str:
    return (NOW - timedelta(days=1, hours=1)).astimezone(statements.zone(campaign)).strftime("%Y-%m")


def _everything_the_partner_sees(client, campaign, headers) -> dict:
    month = _booked_month(campaign)
    strip = lambda html: re.sub(r'name="csrf_token" value="[^"]+"', "", html)  # noqa: E731
    out = {
        "page": strip(client.get("/admin/partner").get_data(as_text=True)),
        "csv": client.get("/admin/partner/statement.csv").get_data(as_text=True),
        "month_page": strip(client.get(f"/admin/partner/statements/{month}").get_data(as_text=True)),
        "month_csv": client.get(f"/admin/partner/statements/{month}?format=csv").get_data(as_text=True),
        "month_pdf": pdf_text(client.get(f"/admin/partner/statements/{month}?format=pdf").data),
        "api": client.get("/api/v1/partner/statement", headers=headers).get_json(),
        "api_month": client.get(f"/api/v1/partner/statements/{month}", headers=headers).get_json(),
        "transparency": client.get("/api/v1/transparency").get_json(),
        "transparency_page": strip(client.get("/transparency").get_data(as_text=True)),
    }
    out["month_pdf"] = re.sub(r"\s+", " ", out["month_pdf"])
    return out


def test_one_pledge_cannot_be_read_off_a_before_and_after(app, client, campaign, login_as, partner, producer,
                                                         token_for, yesterday, monkeypatch):
    _gifts()
    monkeypatch.setattr(ledger, "utcnow", lambda: datetime.now(timezone.utc))  # from now on: booked today
    login_as(client, partner)
    partner_api, producer_api = token_for(partner), token_for(producer)
    before = _everything_the_partner_sees(client, campaign, partner_api)
    assert before["api"]["gross"] == 15000 and before["api"]["share_due"] == 3000 and before["api"]["as_of"]
    live_before = client.get("/api/v1/partner/statement", headers=producer_api).get_json()

    pay(4321, "newcomer@donor-secret.example", credit_name="Just Now")  # one pledge, booked now
    after = _everything_the_partner_sees(client, campaign, partner_api)
    for key in before:
        assert after[key] == before[key], key
    live = client.get("/api/v1/partner/statement", headers=producer_api).get_json()
    assert live["gross"] == live_before["gross"] + 4321 and live["as_of"] is None  # producers: live and exact

    # The day is over: the partner sees it (with the rest of that day's money).
    monkeypatch.setattr(statements, "utcnow", lambda: datetime.now(timezone.utc) + timedelta(days=1))
    tomorrow = client.get("/api/v1/partner/statement", headers=partner_api).get_json()
    assert tomorrow["gross"] == 15000 + 4321


def test_no_donor_string_in_any_statement(app, client, campaign, login_as, partner, producer, token_for,
                                          yesterday):
    _gifts()
    record_payout(1000, date.today(), "WIRE-2026-0042", producer.email)
    db.session.commit()
    for who in (partner, producer):
        login_as(client, who)
        seen = _everything_the_partner_sees(client, campaign, token_for(who))
        text = "\n".join(str(v) for v in seen.values())
        for email, name, _ in DONORS:
            assert email not in text and name not in text
        for part in ("donor-secret", "Quimby", "Marmalade", "Quokka", "Wobbleton", "ZX9 9QQ", producer.email):
            assert part not in text, part
        assert "15000" in seen["month_csv"] or "15000" in seen["csv"]


@pytest.mark.parametrize("lang, words, money", [
    ("en", ["Opening balance", "Gifts (gross)", "Refunds", "Share due", "Paid out", "Closing balance"],
     ["$150.00", "$30.00", "$10.00", "$20.00"]),
    ("zh-Hans", ["期初余额", "捐款总额", "退款", "应付份额", "已拨款", "期末余额"],
     ["US$150.00", "US$30.00", "US$10.00", "US$20.00"]),
])
def test_month_statement_in_three_formats_and_the_partners_language(app, client, campaign, login_as, partner,
                                                                    producer, token_for, yesterday, lang, words,
                                                                    money):
    _gifts()
    record_payout(1000, date.today(), "WIRE-77", producer.email)
    db.session.commit()
    month = _booked_month(campaign)
    login_as(client, partner)
    doc = client.get(f"/api/v1/partner/statements/{month}", headers=token_for(partner)).get_json()
    assert (doc["opening_balance"], doc["gross"], doc["refunded"], doc["net"], doc["share_due"], doc["paid_out"],
            doc["closing_balance"]) == (0, 15000, 0, 15000, 3000, 1000, 2000)
    page = client.get(f"/admin/partner/statements/{month}?lang={lang}").get_data(as_text=True)
    assert f'<html lang="{lang}"' in page
    # A month's share due is the growth of the whole's (the months add up), not its own net x 20%.
    assert ("what that figure grew by in the month" if lang == "en" else "当月的增加额") in page
    text = re.sub(r"\s+", " ", pdf_text(client.get(f"/admin/partner/statements/{month}?format=pdf&lang={lang}").data))
    for word in words:
        assert word in page and word in text, word
    for figure in money:
        assert figure in page and figure in text, figure
    # The payout's date as the reader's language writes it, on the page and the PDF alike.
    today = date.today()
    day = f"{today:%B} {today.day}, {today.year}" if lang == "en" else f"{today.year}年{today.month}月{today.day}日"
    assert day in page and day in text and "WIRE-77" in text
    csv_text = spreadsheet_csv(client.get(f"/admin/partner/statements/{month}?format=csv&lang={lang}"))
    rows = {line.split(",")[0]: line.split(",") for line in csv_text.splitlines()[1:]}
    assert rows["closing_balance"][3] == "2000" and rows["share_due"][3] == "3000" and rows["gross"][3] == "15000"
    assert words[0] in csv_text
    api_csv = client.get(f"/api/v1/partner/statements/{month}?format=csv", headers=token_for(partner))
    assert api_csv.status_code == 200 and api_csv.mimetype == "text/csv"
    assert not api_csv.data.startswith(b"\xef\xbb\xbf")  # for a program: no byte order mark
    api_pdf = client.get(f"/api/v1/partner/statements/{month}?format=pdf", headers=token_for(partner))
    assert api_pdf.mimetype == "application/pdf" and "$20.00" in pdf_text(api_pdf.data)


def test_statement_access(client, campaign, login_as, make_user, token_for):
    month = _month(campaign)
    donor = make_user("someone@example.org")
    assert client.get(f"/api/v1/partner/statements/{month}").status_code == 401
    assert client.get(f"/api/v1/partner/statements/{month}", headers=token_for(donor)).status_code == 403
    login_as(client, donor)
    assert client.get(f"/admin/partner/statements/{month}").status_code == 403
    assert client.get("/transparency").status_code == 200


def test_partner_acknowledges_a_payout(app, client, campaign, login_as, partner, producer, yesterday):
    from filmfund.audit import AuditEntry

    _gifts()
    record_payout(2000, date(2026, 11, 20), "WIRE-ACK", producer.email)
    db.session.commit()
    payout = db.session.scalar(sa.select(Payout))
    login_as(client, producer)
    assert "We received it" not in client.get("/admin/partner").get_data(as_text=True)  # the partner's button
    login_as(client, partner)
    page = client.get("/admin/partner").get_data(as_text=True)
    assert "We received it" in page
    token = csrf_token(client, "/admin/partner")
    assert client.post(f"/partner/payouts/{payout.id}/received").status_code == 400  # no CSRF token
    response = client.post(f"/partner/payouts/{payout.id}/received", data={"csrf_token": token})
    assert response.status_code == 303
    db.session.expire_all()
    payout = db.session.get(Payout, payout.id)
    assert payout.acknowledged_at is not None and payout.acknowledged_by == partner.id
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "payout.acknowledge"))
    assert entry is not None and entry.actor_id == partner.id
    assert client.post(f"/partner/payouts/999999/received", data={"csrf_token": token}).status_code == 404
    login_as(client, producer)
    dashboard = client.get("/admin/").get_data(as_text=True)
    row = re.search(rf'<tr id="payout-{payout.id}">.*?</tr>', dashboard, re.S).group(0)
    assert "not yet" not in row and "2026" in row
    assert "Received on" in client.get("/admin/partner").get_data(as_text=True)
    login_as(client, producer)
    token = csrf_token(client, "/admin/partner/statements/" + _month(campaign))
    assert client.post(f"/partner/payouts/{payout.id}/received", data={"csrf_token": token}).status_code == 403


def test_partner_chart_places_the_money_on_the_day_the_ledger_booked_it(app, client, campaign, login_as, partner,
                                                                        producer, monkeypatch):
    """The hold-back's promise (no single gift read off a before-and-after) holds for the days too:
    a day the partner has seen never changes. An offline gift recorded today but received ten days
    ago is placed on today, not on its old day, which would move by that one gift's share alone."""
    from tests.helpers import record_offline

    tz = statements.zone(campaign)
    day1, day2 = NOW - timedelta(days=9), NOW - timedelta(days=4)
    monkeypatch.setattr(ledger, "utcnow", lambda: day1)
    record_offline("a@donor-secret.example", 10000, day1.date())
    monkeypatch.setattr(ledger, "utcnow", lambda: day2)
    record_offline("b@donor-secret.example", 5000, day2.date())
    monkeypatch.setattr(ledger, "utcnow", lambda: NOW - timedelta(days=2))
    # A payout is dated as the producer types its transfer's day: a day of the campaign's zone (in
    # UTC it is the day before for eight hours of each day, which failed this test in those hours).
    record_payout(1000, (NOW - timedelta(days=2)).astimezone(tz).date(), "WIRE-T", producer.email)
    db.session.commit()
    line = statements.timeline(campaign, statements.partner_cutoff(campaign))
    assert [(d, due, paid) for d, due, paid in line] == [
        (day1.astimezone(tz).date(), 2000, 0), (day2.astimezone(tz).date(), 3000, 0),
        ((NOW - timedelta(days=2)).astimezone(tz).date(), 3000, 1000)]

    login_as(client, partner)
    html = client.get("/admin/partner").get_data(as_text=True)
    assert '<svg id="share-chart"' in html and 'class="due"' in html and 'class="paid"' in html
    before = spreadsheet_csv(client.get("/admin/partner/statement.csv"))

    monkeypatch.setattr(ledger, "utcnow", lambda: NOW)
    for n, amount in enumerate((7000, 9000, 11000)):  # today's other gifts
        record_offline(f"today{n}@donor-secret.example", amount, NOW.date())
    record_offline("cash.at.screening@donor-secret.example", 12345, (NOW - timedelta(days=10)).date())
    monkeypatch.setattr(statements, "utcnow", lambda: NOW + timedelta(days=1))
    after = spreadsheet_csv(client.get("/admin/partner/statement.csv"))
    booked = lambda text: [r.split(",") for r in text.splitlines() if r.startswith("share_booked,")]  # noqa: E731
    old_rows = lambda text: [r for r in booked(text) if r[2] < NOW.astimezone(tz).date().isoformat()]  # noqa: E731
    assert old_rows(after) == old_rows(before) and len(old_rows(before)) == 2
    today = [r for r in booked(after) if r[2] == NOW.astimezone(tz).date().isoformat()]
    # 20% of 150.00 + 393.45 is 108.69 (half up), of which 30.00 was due before: 78.69, all on today.
    assert [r[3] for r in today] == ["7869"]

    # Producers' chart, live: each gift on the day it came in.
    live = statements.timeline(campaign)
    assert (NOW - timedelta(days=10)).astimezone(tz).date() in [d for d, _, _ in live]


def test_a_reversed_payout_in_the_month_page_csv_and_the_public_account(app, client, campaign, login_as, partner,
                                                                        producer, token_for, yesterday):
    """A payout taken back shows where the partner reads the month it was booked in: the page and
    its CSV list the reversal as a line of its own, negative, with its reason, and the month's paid
    out is what is left. The public account no longer lists it (its paid out does not count it)."""
    from filmfund.rewards.payments import reverse_payout

    _gifts()  # share due: $30.00
    wrong = record_payout(2000, date.today(), "WIRE-TYPO", producer.email)
    record_payout(1000, date.today(), "WIRE-OK", producer.email)
    reverse_payout(wrong.id, "typed $20 for $2.00", producer.email)
    db.session.commit()
    month = _booked_month(campaign)
    login_as(client, partner)
    doc = client.get(f"/api/v1/partner/statements/{month}", headers=token_for(partner)).get_json()
    assert (doc["share_due"], doc["paid_out"], doc["closing_balance"]) == (3000, 1000, 2000)
    assert [(p["reference"], p["amount"], p.get("reversal", False)) for p in doc["payouts"]] == [
        ("WIRE-TYPO", 2000, False), ("WIRE-OK", 1000, False), ("WIRE-TYPO", -2000, True)]
    page = client.get(f"/admin/partner/statements/{month}").get_data(as_text=True)
    assert "Reversal of this payout" in page and "typed $20 for $2.00" in page
    csv_rows = [line.split(",") for line in
                spreadsheet_csv(client.get(f"/admin/partner/statements/{month}?format=csv")).splitlines()]
    # A reversal is a line of its own kind, named as such with its reason: not a payout of -$20.00.
    assert [(r[0], r[3]) for r in csv_rows if r[0].startswith("payout")] == [
        ("payout", "2000"), ("payout", "1000"), ("payout_reversal", "-2000")]
    assert next(r[1] for r in csv_rows if r[0] == "payout_reversal") == "Payout reversed: typed $20 for $2.00"
    public = client.get("/api/v1/transparency").get_json()["partner"]
    assert public["paid_out"] == 1000 and [p["amount"] for p in public["payouts"]] == [1000]


def test_the_partner_cannot_confirm_receiving_a_reversed_payout(app, client, campaign, login_as, partner, producer):
    """Probe (partner, F3): a payout reversed as recorded by mistake kept its "We received it"
    button, and a click set it acknowledged (audited, shown to the producers, `acknowledged: true`
    in the API). It is refused with a reason, and the page offers nothing to confirm."""
    from filmfund.rewards.models import Payout
    from filmfund.rewards.payments import reverse_payout
    from tests.site.helpers import csrf_token

    _gifts()
    wrong = record_payout(2000, date.today(), "WIRE-TYPO", producer.email)
    right = record_payout(1000, date.today(), "WIRE-OK", producer.email)
    reverse_payout(wrong.id, "typed $20 for $2.00", producer.email)
    db.session.commit()
    login_as(client, partner)
    page = client.get("/admin/partner").get_data(as_text=True)
    rows = {pid: page.split(f'id="payout-{pid}"', 1)[1].split("</tr>", 1)[0] for pid in (wrong.id, right.id)}
    assert "We received it" not in rows[wrong.id] and "Nothing to confirm" in rows[wrong.id]
    assert "We received it" in rows[right.id]
    token = csrf_token(client, "/admin/partner")
    resp = client.post(f"/partner/payouts/{wrong.id}/received", data={"csrf_token": token}, follow_redirects=True)
    assert "never made, so there is nothing to confirm" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Payout, wrong.id).acknowledged_at is None
    client.post(f"/partner/payouts/{right.id}/received", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(Payout, right.id).acknowledged_at is not None


@pytest.mark.parametrize("lang, final, still", [
    ("en", "The month is over: its figures are final.", "previous day"),
    ("zh-Hans", "本月已结束，以下为最终数字。", "前一天"),
])
def test_a_closed_month_says_its_figures_are_final(app, client, campaign, login_as, partner, monkeypatch,
                                                   lang, final, still):
    """A month long over is final; its page and the PDF the partner files said its figures were
    "counted up to the end of the previous day" (the 1st of the next month), as if they could
    still grow. They say the month is over."""
    monkeypatch.setattr(ledger, "utcnow", lambda: NOW - timedelta(days=70))
    _gifts()
    monkeypatch.setattr(ledger, "utcnow", lambda: datetime.now(timezone.utc))
    month = statements.months(campaign)[-1]
    assert statements.month_statement(campaign, month, statements.as_of_for(campaign, partner))["final"]
    login_as(client, partner)
    page = client.get(f"/admin/partner/statements/{month}?lang={lang}").get_data(as_text=True)
    period = re.search(r'<p class="help" id="period">(.*?)</p>', page, re.S).group(1)
    text = re.sub(r"\s+", " ", pdf_text(client.get(f"/admin/partner/statements/{month}?format=pdf&lang={lang}").data))
    assert final in period and still not in period, period
    assert final.replace(" ", "") in text.replace(" ", "") and still not in text


def test_the_month_page_joins_its_sentences_as_the_language_does(client, campaign, login_as, partner, yesterday):
    """The month page's period was two sentences on two lines of the template: a Chinese reader
    saw a space after 。 (月份按北京时间计算。 统计截至…). They are joined by the language's own
    "%(sentence)s %(next_sentence)s": a space in English, none in Chinese."""
    _gifts()
    login_as(client, partner)
    month = _booked_month(campaign)
    zh = client.get(f"/admin/partner/statements/{month}?lang=zh-Hans").get_data(as_text=True)
    period = re.search(r'<p class="help" id="period">(.*?)</p>', zh, re.S).group(1)
    assert period.startswith("月份按北京时间计算。统计截至") and not re.search(r"。\s", period) and "\n" not in period, period
    en = client.get(f"/admin/partner/statements/{month}?lang=en").get_data(as_text=True)
    assert re.search(r'id="period">The month in China Time\. Counted up to ', en)
    # Counted up to midnight where the month is counted, named so (probe, partner F5: it said
    # "4:00 PM UTC (the end of the previous day)", the end of no UTC day).
    assert re.search(r"Counted up to \w+ \d+, \d{4}, 12:00\s?AM China Time \(the end of the previous day\)", en), en
    page = client.get("/admin/partner?lang=en").get_data(as_text=True)
    assert re.search(r"Figures as they stood at \w+ \d+, \d{4}, 12:00\s?AM China Time \(the end", page)


def test_the_transparency_page_dates_a_payout_with_the_languages_colon(client, campaign, producer, yesterday):
    """The public page listed a payout as "2026年12月6日: US$10.00", an ASCII colon after Chinese;
    the pair is the catalogue's "%(label)s: %(value)s", whose Chinese colon is full-width."""
    _gifts()
    record_payout(1000, date.today(), "WIRE-PUBLIC", producer.email)
    db.session.commit()
    paid_on = date.today()
    page = client.get("/transparency?lang=zh-Hans").get_data(as_text=True)
    item = re.search(r'<ul class="payout-dates"><li>(.*?)</li>', page).group(1)
    assert item == f"{paid_on.year}年{paid_on.month}月{paid_on.day}日：US$10.00", item
    en = client.get("/transparency?lang=en").get_data(as_text=True)
    assert f"{paid_on:%B} {paid_on.day}, {paid_on.year}: $10.00" in en
