"""The credits page and credits.csv at scale: sorted and paged in SQL (keyset), the CSV read a
chunk at a time; the SQL order and its Python form (credits.line_key) agree on both databases."""
from __future__ import annotations

import re

import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.fulfil import credits
from filmfund.rewards import demo
from filmfund.rewards.models import DonorProfile
from tests.helpers import record_offline

NAMES = ["Émile Zola", "émile ajar", "Éric", "éric", "Zoë", "zoe", "aaron", "Aaron", "Bob", "bob", "李小龙", "李 小",
         "Ångström", "_under", "[bracket", "Ωmega", "ωmega", "Ďas", "Ďas"]


def _name_everyone(make) -> None:
    named = set(db.session.scalars(sa.select(DonorProfile.user_id)))
    for n, (uid,) in enumerate(db.session.execute(sa.text("SELECT id FROM users ORDER BY id"))):
        if uid not in named:
            db.session.add(DonorProfile(user_id=uid, credit_name=make(n), anonymous=False, rewards_opt_out=False))
    db.session.commit()


def test_the_sql_order_is_its_python_form(campaign):
    for i, name in enumerate(NAMES):
        record_offline(f"n{i}@example.org", 2500 + (i % 3) * 30000, credit_name=name)
    db.session.commit()
    lines = credits.live_lines(campaign)
    assert len(lines) == len(NAMES)
    assert lines == sorted(lines, key=credits.line_key)
    # and paging by keyset walks the same list, however small the pages
    seen, after = [], None
    while True:
        page = credits.live_page(campaign, after, limit=4)
        seen += page["lines"]
        after = page["next"]
        if after is None:
            break
    assert seen == lines


def _names(client, url: str) -> tuple[list[str], str | None]:
    html = client.get(url).get_data(as_text=True)
    following = re.search(r'href="([^"]+)" rel="next"', html)
    return re.findall(r"Donor \d{4}", html), following.group(1).replace("&amp;", "&") if following else None


def test_a_supporter_arriving_between_two_pages_repeats_no_name(client, campaign, login_as, producer):
    demo.seed(600, 600)
    db.session.commit()
    _name_everyone(lambda n: f"Donor {n:04d}")
    login_as(client, producer)
    page1, following = _names(client, "/admin/credits")
    assert len(page1) == 200 and following
    record_offline("early@example.org", 2500, credit_name="Aaron Early")  # sorts before everyone
    page2, _ = _names(client, following)
    assert page2 and not set(page1) & set(page2)
    assert page2[0] > page1[-1]


def test_a_forged_starting_point_is_the_first_page(client, campaign, login_as, producer):
    record_offline("a@example.org", 2500, credit_name="Ann")
    login_as(client, producer)
    for after in ("x", "%%%", "WzEsIngiXQ", "W1siYSJdLCJ4IiwxXQ"):
        r = client.get("/admin/credits?after=" + after)
        assert r.status_code == 200
        assert "Ann" in r.get_data(as_text=True)


def test_credits_csv_memory_does_not_grow_with_its_names(client, campaign, login_as, producer):
    import tracemalloc

    login_as(client, producer)

    def peak() -> tuple[int, int]:
        client.get("/admin/credits.csv").close()
        tracemalloc.start()
        try:
            r = client.get("/admin/credits.csv", buffered=False)
            size = sum(len(chunk) for chunk in r.response)
            r.close()
            _cur, top = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return top, size

    demo.seed(3000, 3000, seed_value=3000)
    db.session.commit()
    _name_everyone(lambda n: f"Donor {n:05d} " + "x" * 100)
    small, small_size = peak()
    demo.seed(12000, 12000, seed_value=12000)
    db.session.commit()
    _name_everyone(lambda n: f"Donor {n:05d} " + "x" * 100)
    big, big_size = peak()
    assert big_size > 3 * small_size, (small_size, big_size)
    assert big < 2 * small, (small, big)
