"""Filters a user may well type: the calendar's last day (the date picker offers it) and an audit
page number beyond any entry's id. A page or a 400 that says why, never a 500."""
from __future__ import annotations

import pytest

from filmfund.audit import record_audit
from filmfund.extensions import db
from tests.helpers import record_offline


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=2026-01-01&to=9999-12-31", "from=9999-12-31",
                                   "from=0001-01-01&to=9999-12-31"])
def test_the_donations_page_takes_the_calendars_last_day(client, campaign, login_as, producer, query):
    record_offline("a@example.org", 1000)
    login_as(client, producer)
    r = client.get("/admin/donations/?" + query)
    assert r.status_code == 200, r.status_code
    shown = "a@example.org" in r.get_data(as_text=True)
    assert shown == (query != "from=9999-12-31")


def test_the_donations_api_takes_the_calendars_last_day(client, campaign, producer, token_for):
    record_offline("a@example.org", 1000)
    r = client.get("/api/v1/donations?to=9999-12-31", headers=token_for(producer))
    assert r.status_code == 200, r.status_code
    assert [i["email"] for i in r.get_json()["items"]] == ["a@example.org"]


@pytest.mark.parametrize("before", ["999999999999999999", str(2**31), str(2**31 - 1)])
def test_the_audit_log_before_every_entry_is_its_first_page(client, campaign, login_as, producer, before):
    record_audit("probe.odd_before", "campaign:odd", {})
    db.session.commit()
    login_as(client, producer)
    r = client.get("/admin/audit?before=" + before)
    assert r.status_code == 200, r.status_code
    assert "probe.odd_before" in r.get_data(as_text=True)


def test_the_audit_list_itself_takes_an_id_beyond_the_column(app, campaign):
    """The rule lives in audit.list_audit, not in its page: any caller (a command, an export) may
    pass a number from outside."""
    from filmfund.audit import list_audit

    record_audit("probe.odd_before", "campaign:odd", {})
    db.session.commit()
    assert [e.action for e in list_audit(before_id=2**63)] == ["probe.odd_before"]
    assert list_audit(before_id=1) == []
