"""The producers' donations pages: the list with search and pages, a donor's page, a refund from the
console (CSRF, a double click refunds once, past the remainder refused), the supporters' CSV (never
the partner's, audited as an export, readable, formula-safe)."""
from __future__ import annotations

import csv
import io
import re

import pytest
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
    assert bad.status_code == 400 and "give a date like" in bad.get_data(as_text=True).lower()


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


def test_the_supporters_csv_says_each_donors_choices_as_their_pages_do(client, campaign, login_as, producer):
    """Each row's name, anonymity, rewards and tier are privacy's and holdings' answers, whatever the
    row (read in SQL for the export, in Python for the donor's page): an erased donor has no name
    and is anonymous, one who declined rewards says so, and every amount is the reader's money."""
    from filmfund.auth.services import find_user
    from filmfund.rewards import donor_data

    record_offline("cai@example.org", 10000, credit_name="蔡明")
    record_offline("dee@example.org", 5000, credit_name="Dee Declines", rewards_opt_out=True)
    record_offline("gone@example.org", 3000, credit_name="Gone Name")
    record_offline("nop@example.org", 1500)  # no profile given: no name, not anonymous
    donor_data.erase_donor(find_user("gone@example.org"))
    db.session.commit()
    login_as(client, producer)
    rows = list(csv.reader(io.StringIO(spreadsheet_csv(client.get("/admin/donations/supporters.csv")))))
    by_email = {row[0]: row for row in rows[1:]}
    assert by_email["cai@example.org"][1:6] == ["蔡明", "no", "yes", "Patron", "$100.00"]
    assert by_email["dee@example.org"][1:4] == ["Dee Declines", "no", "declined"]
    (gone,) = [row for email, row in by_email.items() if email.startswith("erased-")]
    assert gone[1:3] == ["", "yes"] and gone[5] == "$30.00"
    assert "Gone Name" not in str(rows) and "gone@example.org" not in str(rows)
    assert by_email["nop@example.org"][1:3] == ["", "no"]
    zh = client.get("/admin/donations/supporters.csv", headers={"Accept-Language": "zh-Hans"})
    cai = next(row for row in csv.reader(io.StringIO(spreadsheet_csv(zh))) if row[0] == "cai@example.org")
    assert cai[4:6] == ["赞助人", "US$100.00"]


@pytest.mark.parametrize("typed", ["Élodie", "élodie", "ÉLODIE", "ELODIE", "elodie", "E\u0301lodie ørs"])
def test_search_finds_an_accented_credit_name_however_typed(campaign, typed):
    """README: `q` is the start of the credit name, case and accents aside (typed.search_key on
    both sides); a decomposed é (e + accent, as some keyboards send it) is the same letter."""
    from filmfund.rewards import donations

    record_offline("e.orsted@example.org", 3000, credit_name="Élodie Ørsted")
    record_offline("eloise@example.org", 3000, credit_name="Eloise Other")
    found = donations.list_donations(campaign, q=typed)["items"]
    assert [i["email"] for i in found] == ["e.orsted@example.org"]


def test_search_by_a_long_name_in_a_cased_script_is_checked_letter_by_letter(campaign):
    """A name in another cased script (Cyrillic) is found by its whole prefix, case aside."""
    from filmfund.rewards import donations

    record_offline("dima@example.org", 3000, credit_name="ДМИТРИЙ Иванов")
    record_offline("dimon@example.org", 3000, credit_name="Дмитрон")
    found = donations.list_donations(campaign, q="дмитрий и")["items"]
    assert [i["email"] for i in found] == ["dima@example.org"]


@pytest.mark.parametrize("table, key, index", [("donor_profiles", "credit_name_key", "ix_donor_profiles_credit_name_key"),
                                               ("users", "email_key", "ix_users_email_key")])
def test_search_reads_the_search_key_indexes_on_both_databases(campaign, table, key, index):
    """The search stays on one range of each search key's index, SQLite and PostgreSQL alike (seq
    scans off so that a small table still shows which index can serve): at 1M donations a name or
    an address prefix reads the few donors it matches, not 250,000."""
    from filmfund.rewards import donations

    column = sa.table(table, sa.column(key)).c[key]
    stmt = sa.select(sa.literal_column("1")).select_from(column.table).where(donations._prefix(column, "elodie"))
    compiled = stmt.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
    if db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(r[0] for r in db.session.execute(sa.text(f"EXPLAIN {compiled}")))
    else:
        plan = "\n".join(str(r[-1]) for r in db.session.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert index in plan, plan
    assert f"SCAN {table}\n" not in plan + "\n", plan
