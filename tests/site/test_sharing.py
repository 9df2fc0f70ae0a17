"""Sharing that the crew can measure (issue 12 item 4): share links carry ?ref=; the server counts
visits per source and day, and the pledges and money that came from each source (the pledge form
carries the ref of the page it was opened from); the producer reads them on a page. Nothing is
stored about a visitor: no row per visit, no cookie, no address."""
from __future__ import annotations

import re
from datetime import date

import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards.models import Pledge, ShareVisit
from tests.site.helpers import csrf_token


def _pledge_from(client, path: str, amount: str, email: str) -> Pledge:
    html = client.get(path).get_data(as_text=True)
    data = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', html).group(1), "amount": amount,
            "email": email, "form_key": re.search(r'name="form_key" value="([^"]+)"', html).group(1)}
    ref = re.search(r'<input type="hidden" name="ref" value="([^"]*)">', html)
    if ref:
        data["ref"] = ref.group(1)
    resp = client.post("/pledge", data=data)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
    return db.session.scalars(sa.select(Pledge).order_by(Pledge.created_at.desc())).first()


def test_share_links_say_where_they_were_posted(client, campaign):
    html = client.get("/").get_data(as_text=True)
    share = html[html.index('class="share"'):html.index("</section>", html.index('class="share"'))]
    for source in ("wechat", "weibo", "x", "facebook", "email"):
        assert f'data-share-link="http://localhost/?ref={source}"' in share
    assert "service.weibo.com/share/share.php?url=http%3A%2F%2Flocalhost%2F%3Fref%3Dweibo" in share
    assert 'value="http://localhost/?ref=wechat"' in share  # WeChat: a link to copy
    assert "<script" not in share  # no third-party widget


def test_visits_pledges_and_money_are_counted_per_source(client, campaign, producer, login_as):
    from filmfund.rewards.webhooks import complete_test_checkout

    for _ in range(3):
        client.get("/?ref=weibo")
    client.get("/?ref=WeChat")   # the same source, however it is written
    client.get("/?ref=bad%20ref<script>")  # not a source name: not counted
    client.get("/")                        # no ref: nothing counted
    visits = {(v.source, v.day): v.visits for v in db.session.scalars(sa.select(ShareVisit))}
    assert visits == {("weibo", date.today()): 3, ("wechat", date.today()): 1}

    paid = _pledge_from(client, "/?ref=weibo", "40", "w1@example.org")
    assert paid.ref == "weibo"
    complete_test_checkout(paid.id, "paid")
    unpaid = _pledge_from(client, "/?ref=weibo", "15", "w2@example.org")
    assert unpaid.ref == "weibo"
    direct = _pledge_from(client, "/", "25", "d@example.org")
    assert direct.ref is None
    complete_test_checkout(direct.id, "paid")
    db.session.expire_all()

    html = login_as(client, producer).get("/admin/sharing").get_data(as_text=True)
    rows = {m.group(1): re.findall(r"<td[^>]*>([^<]*)</td>", m.group(0))
            for m in re.finditer(r'<tr data-source="([^"]*)">.*?</tr>', html, re.S)}
    assert rows["weibo"][1:] == ["5", "2", "1", "$40.00"]  # 3 visits + 2 pledge pages, 2 pledges, 1 paid
    assert rows["wechat"][1:] == ["1", "0", "0", "$0.00"]
    assert rows[""][1:] == ["0", "1", "1", "$25.00"]
    # nothing about a person: no per-visit rows and no cookie other than the session's CSRF one
    resp = client.get("/?ref=x")
    assert all("ref" not in c.lower() for c in resp.headers.getlist("Set-Cookie"))


def test_a_cancelled_checkout_keeps_the_source_without_counting_a_visit(client, campaign):
    pledge = _pledge_from(client, "/?ref=facebook", "20", "f@example.org")
    checkout = f"/checkout/test/{pledge.id}"
    resp = client.post(checkout, data={"csrf_token": csrf_token(client, checkout), "outcome": "cancel"})
    assert resp.status_code == 303 and "ref=facebook" in resp.headers["Location"]
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert '<input type="hidden" name="ref" value="facebook">' in html
    assert db.session.scalar(sa.select(ShareVisit.visits).where(ShareVisit.source == "facebook")) == 1


def test_made_up_sources_cannot_grow_the_table_without_bound(app, campaign):
    from filmfund.site import sharing

    with app.test_request_context():
        for i in range(sharing.MAX_SOURCES_PER_DAY + 5):
            sharing.count_visit(campaign.id, f"src{i}")
        db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ShareVisit)) == sharing.MAX_SOURCES_PER_DAY + 1
    assert db.session.scalar(sa.select(ShareVisit.visits).where(ShareVisit.source == sharing.OTHER)) == 5
