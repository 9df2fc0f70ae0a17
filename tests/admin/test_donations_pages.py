"""The producers' donations pages: the list with search and pages, a donor's page, a refund from the
console (CSRF, a double click refunds once, past the remainder refused), the supporters' CSV (never
the partner's, audited as an export, readable, formula-safe)."""
from __future__ import annotations

import csv
import io
import re

import sqlalchemy as sa

from filmfund.audit import AuditEntry
from filmfund.extensions import db
from filmfund.rewards import ledger_check
from filmfund.rewards.models import Donation, RefundRequest
from tests.helpers import record_offline, spreadsheet_csv
from tests.site.helpers import csrf_token


def test_list_searches_filters_and_pages(client, campaign, login_as, producer):
    for i in range(60):
        record_offline(f"fan{i:02d}@example.org", 1000 + i)
    record_offline("alice@example.org", 2500, credit_name="Alice Wong", anonymous=True)
    login_as(client, producer)
    html = client.get("/admin/donations/").get_data(as_text=True)
    assert html.count("data-donation=") == 50 and 'id="next-page"' in html
    nxt = re.search(r'href="([^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
    html2 = client.get(nxt).get_data(as_text=True)
    assert html2.count("data-donation=") == 11 and 'id="next-page"' not in html2
    html = client.get("/admin/donations/?q=alice+w").get_data(as_text=True)
    assert html.count("data-donation=") == 1
    assert "alice@example.org" in html and "Alice Wong" in html and ">anonymous<" in html
    bad = client.get("/admin/donations/?from=yesterday")
    assert bad.status_code == 400 and "give a date like" in bad.get_data(as_text=True)


def test_pages_are_for_producers_only(client, campaign, login_as, make_user):
    gift = record_offline("x@example.org", 1000)
    login_as(client, make_user("partner@example.org", role="partner"))
    for path in ("/admin/donations/", f"/admin/donations/donors/{gift.user_id}", "/admin/donations/supporters.csv"):
        assert client.get(path).status_code == 403, path
    assert client.post(f"/admin/donations/{gift.id}/refund", data={}).status_code in (400, 403)


def test_donor_page_and_a_partial_refund_from_the_console(client, campaign, login_as, producer):
    gift = record_offline("cash@example.org", 5000, credit_name="Cash Donor", anonymous=True)
    login_as(client, producer)
    page = f"/admin/donations/donors/{gift.user_id}"
    html = client.get(page).get_data(as_text=True)
    assert "cash@example.org" in html and "Cash Donor" in html and ">anonymous<" in html
    form_key = re.search(r'name="form_key" value="([^"]+)"', html).group(1)
    # Without the CSRF token: refused, nothing refunded.
    assert client.post(f"/admin/donations/{gift.id}/refund", data={"amount": "10"}).status_code == 400
    token = csrf_token(client, page)
    data = {"csrf_token": token, "form_key": form_key, "amount": "20", "reason": "asked by phone"}
    r = client.post(f"/admin/donations/{gift.id}/refund", data=data)
    assert r.status_code == 303
    again = client.post(f"/admin/donations/{gift.id}/refund", data=data)  # a double click
    assert again.status_code == 303
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RefundRequest)) == 1
    db.session.expire_all()
    assert db.session.get(Donation, gift.id).amount_refunded == 2000
    html = client.get(page).get_data(as_text=True)
    assert "Refunded $20.00" in html and "asked by phone" in html and "partially refunded" in html
    r = client.post(f"/admin/donations/{gift.id}/refund",
                    data={"csrf_token": csrf_token(client, page), "amount": "30.01", "form_key": "k2"})
    assert r.status_code == 409 and "Only $30.00 of this donation can still be refunded." in r.get_data(as_text=True)
    assert ledger_check.check_ledger() == []


def test_supporters_csv_is_readable_safe_and_audited(client, campaign, login_as, producer):
    record_offline("ann@example.org", 12345, credit_name="=HYPERLINK(\"x\")")
    record_offline("ann@example.org", 5000)
    record_offline("bob@example.org", 500, anonymous=True)
    login_as(client, producer)
    rows = list(csv.reader(io.StringIO(spreadsheet_csv(client.get("/admin/donations/supporters.csv")))))
    assert rows[0][:8] == ["Email", "Credit name", "Anonymous", "Rewards", "Tier", "Given", "Refunded", "Net"]
    ann = next(row for row in rows if row[0] == "ann@example.org")
    assert ann[1] == "'=HYPERLINK(\"x\")" and ann[5] == "$173.45" and ann[7] == "$173.45" and ann[8] == "2"
    bob = next(row for row in rows if row[0] == "bob@example.org")
    assert bob[2] == "yes" and bob[5] == "$5.00"
    audit = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "export.supporters"))
    assert audit is not None and audit.details_dict["rows"] == 2
