"""Sharing that the crew can measure, with nothing that follows a person.

A share link carries where it was posted (`/?ref=weibo`). The server counts, per source:
- visits: one aggregate counter per source and UTC day (ShareVisit), no row per visit, no cookie,
  no address, no id of the visitor;
- pledges and money: the pledge form carries the ref of the page it was opened from (a hidden
  field, not a cookie), the pledge keeps it, and the figures are sums over pledges and the
  donations they became.
No third-party tracker is involved: the share buttons are plain links, loaded from nowhere.
"""
from __future__ import annotations

from datetime import date
from urllib.parse import quote, urlencode

import sqlalchemy as sa

from filmfund.db import dialect_insert, utcnow
from filmfund.extensions import db
from filmfund.rewards import ledger
from filmfund.rewards.models import Donation, Pledge, ShareVisit
from filmfund.rewards.pledges import clean_ref
from filmfund.site.texts import lazy_gettext

# Past this many sources in one day, new names are counted as "other": a flood of made-up refs
# cannot grow the table without bound.
MAX_SOURCES_PER_DAY = 200
OTHER = "other"

# The share buttons of the page: each posts a link whose ref names the place.
SHARE_TARGETS = (
    ("wechat", lazy_gettext("WeChat")),   # WeChat has no share URL: the page shows the link to copy
    ("weibo", lazy_gettext("Weibo")),
    ("x", "X"),
    ("facebook", "Facebook"),
    ("email", lazy_gettext("By email")),
)


def share_links(page_url: str, title: str) -> list[dict]:
    """The page's share buttons: where each goes, with the link it posts (`?ref=<source>`)."""
    out = []
    for source, label in SHARE_TARGETS:
        link = f"{page_url}?{urlencode({'ref': source})}"
        if source == "weibo":
            href = "https://service.weibo.com/share/share.php?" + urlencode({"url": link, "title": title})
        elif source == "x":
            href = "https://x.com/intent/post?" + urlencode({"url": link, "text": title})
        elif source == "facebook":
            href = "https://www.facebook.com/sharer/sharer.php?" + urlencode({"u": link})
        elif source == "email":
            href = f"mailto:?subject={quote(title)}&body={quote(link)}"
        else:
            href = link
        out.append({"source": source, "label": label, "link": link, "href": href})
    return out


def count_visit(campaign_id: int, ref: str | None, today: date | None = None) -> str | None:
    """Count one visit of the page from a share link (no ref, nothing counted). Returns the source
    counted. The caller commits."""
    source = clean_ref(ref)
    if source is None:
        return None
    today = today or utcnow().date()
    if not _bump(campaign_id, source, today):
        sources_today = db.session.scalar(sa.select(sa.func.count()).select_from(ShareVisit).where(
            ShareVisit.campaign_id == campaign_id, ShareVisit.day == today))
        if sources_today >= MAX_SOURCES_PER_DAY:
            source = OTHER
            if _bump(campaign_id, source, today):
                return source
        _insert(campaign_id, source, today)
    return source


def _bump(campaign_id: int, source: str, day: date) -> bool:
    result = db.session.execute(sa.update(ShareVisit).where(
        ShareVisit.campaign_id == campaign_id, ShareVisit.source == source, ShareVisit.day == day)
        .values(visits=ShareVisit.visits + 1))
    return result.rowcount > 0


def _insert(campaign_id: int, source: str, day: date) -> None:
    """The day's first visit from this source; a second request racing in adds to the same row."""
    insert = dialect_insert(db.session.get_bind().dialect)
    stmt = insert(ShareVisit).values(campaign_id=campaign_id, source=source, day=day, visits=1)
    db.session.execute(stmt.on_conflict_do_update(index_elements=["campaign_id", "source", "day"],
                                                  set_={"visits": ShareVisit.visits + 1}))


def report(campaign_id: int) -> list[dict]:
    """Per source: visits, pledges made, pledges paid and the money they brought (gifts minus
    refunds, in the installation's money mode), most money first. Pledges with no source are
    the row "(none)": the page opened directly or from a link without ?ref=."""
    visits = dict(db.session.execute(sa.select(ShareVisit.source, sa.func.sum(ShareVisit.visits))
                                     .where(ShareVisit.campaign_id == campaign_id).group_by(ShareVisit.source)).all())
    pledges = dict(db.session.execute(sa.select(Pledge.ref, sa.func.count()).where(Pledge.campaign_id == campaign_id)
                                      .group_by(Pledge.ref)).all())
    paid = {ref: (int(n), int(money or 0)) for ref, n, money in db.session.execute(
        sa.select(Pledge.ref, sa.func.count(Donation.id), sa.func.sum(Donation.amount - Donation.counted_refunded_sql()))
        .join(Donation, Donation.pledge_id == Pledge.id)
        .where(Pledge.campaign_id == campaign_id, Donation.livemode == ledger.money_mode())
        .group_by(Pledge.ref)).all()}
    rows = []
    for source in set(visits) | set(pledges) | set(paid):
        n_paid, money = paid.get(source, (0, 0))
        rows.append({"source": source, "visits": int(visits.get(source) or 0), "pledges": int(pledges.get(source, 0)),
                     "paid": n_paid, "money": money})
    rows.sort(key=lambda r: (-r["money"], -r["paid"], -r["visits"], r["source"] or ""))
    return rows
