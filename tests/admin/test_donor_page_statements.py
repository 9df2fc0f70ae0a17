"""A donor's page reads their gifts' refund requests and receipts in one query each, however many
gifts they made (a monthly giver of some years)."""
from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards import refunds
from tests.helpers import record_offline


@contextmanager
def counting():
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    engines = list(db.engines.values())
    for e in engines:
        sa.event.listen(e, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        for e in engines:
            sa.event.remove(e, "before_cursor_execute", note)


def _statements(client, path: str) -> int:
    client.get(path)  # first-request work
    with counting() as seen:
        r = client.get(path)
    assert r.status_code == 200, r.status_code
    return len(seen)


def test_a_donors_page_does_not_query_per_gift(client, campaign, login_as, producer):
    first = record_offline("many@example.org", 1000)
    for i in range(2):
        record_offline("many@example.org", 1000 + i)
    login_as(client, producer)
    page = f"/admin/donations/donors/{first.user_id}"
    few = _statements(client, page)
    for i in range(30):
        record_offline("many@example.org", 500 + i)
    many = _statements(client, page)
    assert many - few <= 2, f"3 gifts: {few} statements; 33 gifts: {many}"


def test_refund_requests_are_read_by_gift(campaign):
    a, b = record_offline("a@example.org", 1000), record_offline("b@example.org", 2000)
    req = refunds.request_refund(a.id, 300, "asked by mail")
    db.session.commit()
    found = refunds.requests_for([a.id, b.id])
    assert [r.id for r in found[a.id]] == [req.id]
    assert b.id not in found
    assert refunds.requests_for([]) == {}
