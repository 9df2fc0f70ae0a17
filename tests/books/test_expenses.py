"""Expenses against the budget lines, their private receipts, corrections by void and new entry,
and the public transparency page (planned against spent, the partner's share): audited, and
nothing private on the public side."""
from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from filmfund.audit import AuditEntry
from filmfund.books.models import Expense
from filmfund.extensions import db
from filmfund.rewards import ledger
from filmfund.rewards.payments import record_payout
from tests.site.helpers import csrf_token, form_tokens, pay

PDF = b"%PDF-1.4\n% a hotel bill of Hotel Secretplace, guest Mr Vendorname\n%%EOF\n"
PRIVATE = "Hotel Secretplace, room for Mr Vendorname"


def _audit(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


def test_api_records_an_expense(client, campaign, producer, partner, token_for):
    body = {"budget_line": "hotels", "amount": 12345, "spent_on": "2026-11-20", "description": PRIVATE}
    response = client.post("/api/v1/expenses", json=body, headers=token_for(producer))
    assert response.status_code == 201, response.get_json()
    doc = response.get_json()
    assert (doc["budget_line"], doc["amount"], doc["spent_on"], doc["state"]) == ("hotels", 12345, "2026-11-20",
                                                                                  "recorded")
    assert client.post("/api/v1/expenses", json=body, headers=token_for(partner)).status_code == 403
    assert client.post("/api/v1/expenses", json=body).status_code == 401
    for bad, code in [({"budget_line": "yachts"}, "invalid_budget_line"), ({"amount": 0}, "invalid_amount"),
                      ({"amount": "12"}, "invalid_amount"), ({"spent_on": "yesterday"}, "invalid_date"),
                      ({"description": ""}, "invalid_description"),
                      # nothing a reader could check (filmfund/typed.py): no description
                      ({"description": "\u200b"}, "invalid_description"),
                      ({"description": "\u202e\u2060 \ufeff"}, "invalid_description")]:
        r = client.post("/api/v1/expenses", json={**body, **bad}, headers=token_for(producer))
        assert r.status_code == 400 and r.get_json()["error"]["code"] == code, (bad, r.get_json())
    assert db.session.scalar(sa.select(sa.func.count(Expense.id))) == 1
    assert len(_audit("expense.record")) == 1
    t = client.get("/api/v1/transparency").get_json()
    lines = {b["key"]: b for b in t["budget"]}
    assert lines["hotels"]["spent"] == 12345 and lines["hotels"]["planned"] == 80000
    assert lines["travel"]["spent"] == 0 and set(lines) == {"editing-computer", "travel", "hotels"}
    assert PRIVATE not in str(t)


def test_a_description_is_kept_as_typed_minus_what_prints_nothing(client, campaign, producer, token_for):
    body = {"budget_line": "hotels", "amount": 100, "spent_on": "2026-11-20",
            "description": "\u202eHotel\u200b  Secretplace\u3000王府井"}
    response = client.post("/api/v1/expenses", json=body, headers=token_for(producer))
    assert response.status_code == 201 and response.get_json()["description"] == "Hotel Secretplace 王府井"
    assert db.session.scalar(sa.select(Expense.description)) == "Hotel Secretplace 王府井"


def test_page_form_with_a_private_receipt(app, client, campaign, login_as, producer, partner):
    login_as(client, producer)
    form = {**form_tokens(client, "/admin/expenses"), "budget_line": "editing-computer", "amount": "1,299.00",
            "spent_on": "2026-11-02",
            "description": PRIVATE, "receipt": (io.BytesIO(PDF), "bill.pdf")}
    assert client.post("/admin/expenses", data={**form, "csrf_token": "x", "receipt": (io.BytesIO(PDF), "bill.pdf")},
                       content_type="multipart/form-data").status_code == 400  # CSRF
    response = client.post("/admin/expenses", data=form, content_type="multipart/form-data")
    assert response.status_code == 303
    expense = db.session.scalar(sa.select(Expense))
    assert expense.amount == 129900 and expense.receipt_type == "application/pdf" and expense.receipt_name == "bill.pdf"
    got = client.get(f"/admin/expenses/{expense.id}/receipt")
    assert got.status_code == 200 and got.data == PDF and "no-store" in got.headers["Cache-Control"]
    assert _audit("export.receipt")
    # Nobody else opens it: not the partner, not a visitor, and there is no public path to it.
    login_as(client, partner)
    assert client.get(f"/admin/expenses/{expense.id}/receipt").status_code == 403
    assert client.get("/admin/expenses").status_code == 403
    anonymous = app.test_client()
    assert anonymous.get(f"/admin/expenses/{expense.id}/receipt").status_code in (302, 401)
    page = anonymous.get("/transparency").get_data(as_text=True)
    for secret in ("Secretplace", "Vendorname", "bill.pdf", expense.receipt_key):
        assert secret not in page
    assert "$1,299.00" in page and "$1,400.00" in page


def test_a_refused_receipt_leaves_nothing(app, client, campaign, login_as, producer):
    from filmfund.media.common import storage

    login_as(client, producer)
    before = set(storage().keys())
    tokens = form_tokens(client, "/admin/expenses")
    response = client.post("/admin/expenses", content_type="multipart/form-data", data={
        **tokens, "budget_line": "travel", "amount": "10", "spent_on": "2026-11-02",
        "description": "train", "receipt": (io.BytesIO(b"MZ\x90\x00 not a receipt"), "bill.exe")})
    assert response.status_code == 400 and "a pdf, jpeg or png file" in response.get_data(as_text=True).lower()
    # a good receipt but a refused row (a bad line): the stored bytes go again
    response = client.post("/admin/expenses", content_type="multipart/form-data", data={
        **form_tokens(client, "/admin/expenses"), "budget_line": "yachts", "amount": "10", "spent_on": "2026-11-02",
        "description": "boat", "receipt": (io.BytesIO(PDF), "bill.pdf")})
    assert response.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count(Expense.id))) == 0
    assert set(storage().keys()) == before


def test_corrections_void_and_replace_with_audit(client, campaign, login_as, producer, token_for):
    body = {"budget_line": "travel", "amount": 50000, "spent_on": "2026-11-10", "description": "train tickets"}
    first = client.post("/api/v1/expenses", json=body, headers=token_for(producer)).get_json()
    login_as(client, producer)
    token = csrf_token(client, "/admin/expenses")
    response = client.post(f"/admin/expenses/{first['id']}/correct", data={
        "csrf_token": token, "budget_line": "travel", "amount": "450.00", "spent_on": "2026-11-10",
        "description": "train tickets (one refunded)", "reason": "one ticket refunded"})
    assert response.status_code == 303
    old, new = db.session.scalars(sa.select(Expense).order_by(Expense.id)).all()
    assert (old.state, old.void_reason, new.replaces_id, new.amount) == ("void", "one ticket refunded", old.id, 45000)
    assert client.get("/api/v1/transparency").get_json()["budget"][1]["spent"] == 45000
    assert client.post(f"/admin/expenses/{new.id}/void", data={"csrf_token": token, "reason": ""}).status_code == 400
    assert client.post(f"/admin/expenses/{new.id}/void", data={"csrf_token": token, "reason": "duplicate"}
                       ).status_code == 303
    assert client.post(f"/admin/expenses/{new.id}/void", data={"csrf_token": token, "reason": "again"}
                       ).status_code == 400  # already void
    assert client.get("/api/v1/transparency").get_json()["budget"][1]["spent"] == 0
    assert len(_audit("expense.void")) == 2 and len(_audit("expense.record")) == 2
    assert client.post("/admin/expenses/999999/void", data={"csrf_token": token, "reason": "x"}).status_code == 404


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_transparency_page_shows_planned_spent_and_the_partners_share(app, client, campaign, producer, lang,
                                                                      token_for, monkeypatch):
    monkeypatch.setattr(ledger, "utcnow", lambda: datetime.now(timezone.utc) - timedelta(days=1, hours=1))
    pay(10000, "zelda@donor-secret.example", credit_name="Zelda Quimbyfeather")
    record_payout(1500, date(2026, 11, 20), "WIRE-PRIVATE-REF", producer.email)
    db.session.commit()
    client.post("/api/v1/expenses", json={"budget_line": "hotels", "amount": 20000, "spent_on": "2026-11-20",
                                          "description": PRIVATE}, headers=token_for(producer))
    html = client.get(f"/transparency?lang={lang}").get_data(as_text=True)
    assert f'<html lang="{lang}"' in html
    assert 'class="spend-bar"' in html and 'width="25"' in html  # $200 of $800 planned
    assert ("Where the money went" if lang == "en" else "善款去向") in html
    assert ("$20.00" if lang == "en" else "US$20.00") in html and ("$15.00" if lang == "en" else "US$15.00") in html
    for secret in ("Zelda", "Quimby", "donor-secret", "Secretplace", "Vendorname", "WIRE-PRIVATE-REF", producer.email):
        assert secret not in html
    doc = client.get("/api/v1/transparency").get_json()
    assert doc["partner"]["share_due"] == 2000 and doc["partner"]["paid_out"] == 1500 and doc["raised"] == 10000
    assert doc["partner"]["payouts"] == [{"paid_on": "2026-11-20", "amount": 1500}]
    campaign_page = client.get(f"/?lang={lang}").get_data(as_text=True)
    assert 'href="/transparency"' in campaign_page


def test_footage_never_deletes_a_receipts_object(app, client, campaign, login_as, producer):
    """Storage is content-addressed and receipts live in the media storage: a photo kept both as an
    expense's receipt and as footage is one object. Whatever deletes an object unused by footage
    (media.common.keys_in_use) must still find the receipt's."""
    from filmfund.media.common import drop_unreferenced, keys_in_use, storage

    login_as(client, producer)
    response = client.post("/admin/expenses", content_type="multipart/form-data", data={
        **form_tokens(client, "/admin/expenses"), "budget_line": "travel", "amount": "10", "spent_on": "2026-11-02",
        "description": "train", "receipt": (io.BytesIO(PDF), "bill.pdf")})
    assert response.status_code == 303
    key = db.session.scalar(sa.select(Expense.receipt_key))
    assert keys_in_use({key, "sha256/00/unused.pdf"}) == {key}
    assert drop_unreferenced([key]) == []
    assert storage().exists(key)


def _spent(client) -> dict[str, int]:
    return {b["key"]: b["spent"] for b in client.get("/api/v1/transparency").get_json()["budget"]}


def test_an_expense_form_sent_twice_is_counted_once(client, campaign, login_as, producer):
    """A double click, or a browser sending the form again: the public page's "spent" must not show
    one hotel bill twice. The page's one-time token (filmfund/once.py) makes the second a no-op."""
    import re

    login_as(client, producer)
    page = client.get("/admin/expenses").get_data(as_text=True)
    form = {"csrf_token": csrf_token(client, "/admin/expenses"), "budget_line": "hotels", "amount": "1,234.50",
            "spent_on": "2026-11-20", "description": "Hotel, 3 nights",
            "once": re.search(r'name="once" value="([^"]+)"', page).group(1)}
    assert client.post("/admin/expenses", data=form).status_code == 303
    again = client.post("/admin/expenses", data=form)
    assert again.status_code == 303 and "already sent" in client.get(again.headers["Location"]).get_data(as_text=True)
    assert _spent(client)["hotels"] == 123450 and len(_audit("expense.record")) == 1
    # the token sent back with other values (the browser's back button, the form edited): refused
    other = client.post("/admin/expenses", data={**form, "amount": "99"})
    assert other.status_code == 400 and "other values" in other.get_data(as_text=True)
    assert _spent(client)["hotels"] == 123450


def test_an_expense_form_without_its_token_is_refused_keeping_what_was_typed(client, campaign, login_as, producer,
                                                                             token_for):
    """The page always carries its one-time token: a POST without it (a page saved before tokens, a
    hand-made one) is refused, not counted once per sending; the API's Idempotency-Key stays optional."""
    login_as(client, producer)
    form = {"csrf_token": csrf_token(client, "/admin/expenses"), "budget_line": "hotels", "amount": "1,234.50",
            "spent_on": "2026-11-20", "description": "Hotel, 3 nights"}
    for _ in range(2):
        refused = client.post("/admin/expenses", data=form)
        html = refused.get_data(as_text=True)
        assert refused.status_code == 400 and "without its one-time key" in html
        assert 'value="1,234.50"' in html and "Hotel, 3 nights" in html
    assert _spent(client)["hotels"] == 0 and _audit("expense.record") == []
    body = {"budget_line": "hotels", "amount": 5000, "spent_on": "2026-11-20", "description": "API, no key"}
    assert client.post("/api/v1/expenses", json=body, headers=token_for(producer)).status_code == 201


def test_an_api_expense_repeated_with_its_idempotency_key_is_recorded_once(client, campaign, producer, make_user,
                                                                          token_for):
    """A client that retries after a timeout sends the same Idempotency-Key (as a pledge's): it gets the
    same expense back, and the public page counts it once. The key is the producer's own: another
    producer's same key is another expense; the same key with another body is refused."""
    body = {"budget_line": "hotels", "amount": 50000, "spent_on": "2026-11-20", "description": "Hotel"}
    keyed = {**token_for(producer), "Idempotency-Key": "retry-7"}
    first = client.post("/api/v1/expenses", json=body, headers=keyed)
    second = client.post("/api/v1/expenses", json=body, headers=keyed)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.get_json()["id"] == first.get_json()["id"]
    assert _spent(client)["hotels"] == 50000
    other_body = client.post("/api/v1/expenses", json={**body, "amount": 100}, headers=keyed)
    assert other_body.status_code == 409 and other_body.get_json()["error"]["code"] == "idempotency_conflict"
    colleague = make_user("second-producer@filmfund.test", "producer")
    theirs = client.post("/api/v1/expenses", json=body, headers={**token_for(colleague), "Idempotency-Key": "retry-7"})
    assert theirs.status_code == 201 and theirs.get_json()["id"] != first.get_json()["id"]
    assert client.post("/api/v1/expenses", json=body, headers=token_for(producer)).status_code == 201  # no key: each
    assert _spent(client)["hotels"] == 150000
    bad = client.post("/api/v1/expenses", json=body, headers={**token_for(producer), "Idempotency-Key": " x"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_idempotency_key"
