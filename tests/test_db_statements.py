"""db.insert_on_conflict: an INSERT … ON CONFLICT built with the dialects' insert() is compiled once
into SQL text that SQLAlchemy caches (its own statement is never cached: inherit_cache = False),
and it does what the statement it was built from does, on SQLite and on PostgreSQL."""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa


def test_the_statement_is_cacheable_and_made_once(app):
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    from filmfund.extensions import db
    from filmfund.rewards import totals, webhooks
    from filmfund.rewards.totals import DailyTotal

    dialect = db.engine.dialect
    # What the change is for: the dialect's own statement has no cache key, the text has one.
    assert pg_insert(DailyTotal.__table__).values(net=1)._generate_cache_key() is None
    first = webhooks._insert_once(dialect)
    assert first is webhooks._insert_once(dialect)
    assert first._generate_cache_key() is not None
    from filmfund.db import insert_on_conflict

    made = insert_on_conflict("daily_total_add", dialect, totals._add_to_day)
    assert made._generate_cache_key() is not None and "ON CONFLICT" in made.text


def test_it_does_what_the_upsert_says(app, campaign):
    from filmfund.extensions import db
    from filmfund.rewards import totals
    from filmfund.rewards.totals import DailyTotal

    day = date(2026, 12, 4)
    totals.add_to_day(campaign.id, False, day, net=1500, gifts=1, share=300)
    totals.add_to_day(campaign.id, False, day, net=-500, gifts=0, share=-100)
    db.session.commit()
    row = db.session.execute(sa.select(DailyTotal.net, DailyTotal.gifts, DailyTotal.share).where(
        DailyTotal.campaign_id == campaign.id, DailyTotal.day == day)).one()
    assert tuple(row) == (1000, 1, 200)
