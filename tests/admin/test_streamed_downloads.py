"""Streamed downloads as a real server sends them (waitress on a loopback port, no outer app
context): Flask ends the request's contexts, and the view's session, when the view returns, before
the body is read. The suite's `client` runs inside the test's app context and never saw it."""
from __future__ import annotations

import csv
import io
import urllib.request

from filmfund.extensions import db
from filmfund.rewards import demo


def _cookie_for(app, login_as, user) -> str:
    c = app.test_client()
    login_as(c, user)
    cookie = c.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    return f"{cookie.key}={cookie.value}"


def _rows(url: str, cookie: str) -> list[list[str]]:
    req = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(req, timeout=60) as r:  # a broken stream raises (IncompleteRead)
        assert r.status == 200
        body = r.read()
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_supporters_csv_sends_every_supporter_beyond_one_chunk_over_http(app, campaign, served_app, login_as,
                                                                         producer):
    demo.seed(2100, 2100)  # more supporters than one chunk of the stream (2,000)
    db.session.commit()
    supporters = db.session.scalar(db.text(
        "SELECT count(DISTINCT user_id) FROM donations WHERE campaign_id = :c"), {"c": campaign.id})
    rows = _rows(served_app + "/admin/donations/supporters.csv", _cookie_for(app, login_as, producer))
    assert rows[0][0] == "Email"
    assert len(rows) == 1 + supporters


def test_credits_csv_sends_every_name_over_http(app, campaign, served_app, login_as, producer):
    from filmfund.fulfil import credits

    from filmfund.rewards.models import DonorProfile

    demo.seed(2500, 2500)  # some 1,600 names
    db.session.commit()
    named = set(db.session.scalars(db.select(DonorProfile.user_id)))
    for (uid,) in db.session.execute(db.text("SELECT id FROM users ORDER BY id")):
        if uid not in named:
            db.session.add(DonorProfile(user_id=uid, credit_name=f"Donor {uid:05d}", anonymous=False,
                                        rewards_opt_out=False))
    db.session.commit()
    expected = credits.live_lines(campaign)
    assert len(expected) > 1000
    rows = _rows(served_app + "/admin/credits.csv", _cookie_for(app, login_as, producer))
    assert rows[0] == ["section", "name"]
    assert [tuple(r) for r in rows[1:]] == [(line.section, line.name) for line in expected]


def test_packing_list_streams_every_parcel_but_an_erased_donors_over_http(app, campaign, served_app, login_as,
                                                                          producer):
    """Built whole, the packing list held 57 MiB at a million donations before its first byte; it
    streams in chunks now. An erased donor's parcel cannot be posted (no address, no name, no mail
    to ask one), so it is not packed."""
    import sqlalchemy as sa

    from filmfund.audit import AuditEntry
    from filmfund.fulfil import fulfilment
    from filmfund.fulfil.models import FulfilmentItem, ItemState
    from filmfund.rewards import donor_data
    from filmfund.auth.models import User

    demo.seed(3000, 3000)
    db.session.commit()
    fulfilment.sync_items(campaign)
    db.session.execute(sa.update(FulfilmentItem).values(state=ItemState.IN_PRODUCTION))  # every parcel made
    db.session.commit()
    items = db.session.execute(sa.select(FulfilmentItem.id, FulfilmentItem.user_id)
                               .order_by(FulfilmentItem.user_id, FulfilmentItem.id)).all()
    assert len(items) > 1000  # more than one chunk of the stream
    gone = items[1].user_id
    donor_data.erase_donor(db.session.get(User, gone))
    db.session.commit()

    rows = _rows(served_app + "/admin/rewards/packing-list.csv", _cookie_for(app, login_as, producer))
    assert rows[0][:3] == ["item_id", "reward", "state"]
    sent = [int(r[0]) for r in rows[1:]]
    assert sent == [i for i, user_id in items if user_id != gone]
    assert len(sent) < len(items)
    db.session.expire_all()
    audit = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "export.packing_list")).one()
    assert audit.details_dict["rows"] == len(sent)
