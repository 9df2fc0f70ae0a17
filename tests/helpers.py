"""Helpers shared by tests of several components."""
from __future__ import annotations

from filmfund.fulfil import credits as end_credits


def credit_names(campaign) -> list[str]:
    """The names the end credits print now, in their order (filmfund.fulfil.credits is the one
    reading of them: profile, anonymity, opt-out, erasure, money mode, approved proofs)."""
    return [line.name for line in end_credits.live_lines(campaign)]


def make_pledge(*args, **kwargs):
    """A pledge as the pledge form and the API make it: stored and committed, then its Checkout
    Session opened (Stripe in live mode) and committed."""
    from filmfund.db import commit_keeping
    from filmfund.extensions import db
    from filmfund.rewards import pledges

    pledge = pledges.create_pledge(*args, **kwargs)
    commit_keeping(db.session, pledge)
    if pledges.open_checkout(pledge):
        commit_keeping(db.session, pledge)
    return pledge


def record_offline(*args, **kwargs):
    """Money received outside Stripe, recorded as the dashboard's form does: booked, committed,
    then the donor told what the gift did to their settings (if anything)."""
    from filmfund.extensions import db
    from filmfund.rewards import donors, payments

    donation = payments.record_offline_donation(*args, **kwargs)
    db.session.commit()
    donors.mail_gift_notice(donation)
    return donation


def spreadsheet_csv(response) -> str:
    """A page's CSV download as a spreadsheet reads it: text/csv beginning with the UTF-8 byte
    order mark (filmfund/csvsafe.download: Excel reads Chinese names right only with it); the
    text after the mark."""
    assert response.status_code == 200 and response.mimetype == "text/csv", response.status
    assert response.data.startswith(b"\xef\xbb\xbf"), response.data[:20]
    return response.data[3:].decode("utf-8")
