"""The partner's pages read the money kept per day, never a sum of the ledger's entries.

What a user met: at a million gifts the producers' live partner page and its CSV summed every
entry by the day its gift was received (1.1 to 2 s), and the partner's own held-back view summed
every entry booked before yesterday's end, which on a campaign booked over months is the same
million entries. Now every figure there is read from the days the ledger keeps as it books
(rewards/totals.CampaignDay): here no statement those pages run sums `ledger_entries`."""
import re
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa


def _sums_of_entries(app, client, paths, headers=None):
    from filmfund.extensions import db

    seen = []

    def listen(conn, cursor, statement, params, context, executemany):
        if re.search(r"sum\(", statement, re.I) and "ledger_entries" in statement:
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        for path in paths:
            assert client.get(path, headers=headers or {}).status_code == 200, path
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
    return seen


def test_the_partner_pages_sum_no_entries(app, client, campaign, login_as, partner, producer, token_for,
                                          monkeypatch):
    from filmfund.extensions import db
    from filmfund.rewards import ledger, payments
    from tests.helpers import record_offline

    monkeypatch.setattr(ledger, "utcnow", lambda: datetime.now(timezone.utc) - timedelta(days=3))
    record_offline("a@example.org", 10000, date.today() - timedelta(days=4))
    payout = payments.record_payout(amount=1000, paid_on=date.today() - timedelta(days=3), reference="W-1",
                                    recorded_by=producer.email)
    db.session.commit()
    payments.reverse_payout(payout.id, "typed twice", producer.email)
    db.session.commit()
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    pages = ["/admin/partner", "/admin/partner/statement.csv", f"/admin/partner/statements/{month}"]
    api = ["/api/v1/partner/statement", f"/api/v1/partner/statements/{month}"]
    for user in (producer, partner):
        login_as(client, user)
        assert _sums_of_entries(app, client, pages) == []
        assert _sums_of_entries(app, client, api, token_for(user)) == []
