"""The producer dashboard: totals, chart, donations, inbox, forms, fulfilment, updates, outbox, credits."""
import email
import json
import re
from pathlib import Path

import sqlalchemy as sa

from filmfund.auth.services import find_user
from filmfund.extensions import db
from filmfund.rewards.models import Donation, Entitlement, Payout, Reward
from tests.helpers import spreadsheet_csv
from tests.site.helpers import csrf_token, form_tokens, pay
from tests.worker import run_worker


def _post(client, path, **data):
    """A dashboard form as the page sends it (its CSRF and one-time tokens, unless `data` names them)."""
    return client.post(path, data={**form_tokens(client, "/admin/"), **data})


def test_dashboard_shows_totals_chart_and_recent_donations(client, campaign, login_as, producer):
    pay(5000, "ann@example.org", credit_name="Ann")
    pay(2000, "ben@example.org", anonymous=True)
    html = login_as(client, producer).get("/admin/").get_data(as_text=True)
    assert "Not run yet" in html  # the dashboard shows the scheduled check's result, never runs it
    from filmfund.rewards import tasks

    assert tasks.scheduled_ledger_check.call_local() == 0
    html = client.get("/admin/").get_data(as_text=True)
    assert '<span class="stat-value" id="stat-raised">$70.00</span>' in html
    assert '<span class="stat-value" id="stat-donors">2</span>' in html
    assert "1% of $4,000" in html  # 7000 / 400000, rounded down
    assert "$14.00" in html  # the partner's share due: 20% of 70
    assert "ann@example.org" in html and "ben@example.org" in html  # producers deliver rewards
    assert re.search(r'<svg id="raised-chart"[^>]*role="img"', html)
    assert "<polyline points=" in html
    assert "Every donation, refund, partner share and payout adds up" in html
    assert " style=" not in html and "<script>" not in html
    assert 'class="flash error"' not in html and "built-in method" not in html  # no form complains unasked


def test_offline_donation_counts_like_any_gift(client, campaign, login_as, producer):
    login_as(client, producer)
    resp = _post(client, "/admin/donations/offline", email="cash@example.org", amount="150.00",
                 received_on="2026-11-20", note="Screening in Berlin", credit_name="Cash Donor")
    assert resp.status_code == 303
    donation = db.session.scalar(sa.select(Donation))
    assert (donation.amount, donation.source.value, donation.recorded_by, donation.note) == \
        (15000, "offline", producer.email, "Screening in Berlin")
    assert donation.received_at.date().isoformat() == "2026-11-20"
    html = client.get("/admin/").get_data(as_text=True)
    assert '<span class="stat-value" id="stat-raised">$150.00</span>' in html


def test_bad_offline_donation_keeps_values_and_writes_nothing(client, campaign, login_as, producer):
    login_as(client, producer)
    resp = _post(client, "/admin/donations/offline", email="cash@example.org", amount="12.345",
                 received_on="2026-11-20", note="kept note")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "two decimals" in html
    assert 'value="kept note"' in html and 'value="cash@example.org"' in html
    assert db.session.scalar(sa.select(sa.func.count(Donation.id))) == 0


def test_offline_donation_dated_ahead_is_refused_today_in_the_campaign_zone_is_not(client, campaign, login_as,
                                                                                    producer):
    """A gift dated ahead would sit on a future day of the totals and the charts (the partner's too)."""
    from datetime import timedelta

    from filmfund.db import utcnow
    from filmfund.rewards import statements

    login_as(client, producer)
    today = utcnow().astimezone(statements.zone(campaign)).date()
    ahead = _post(client, "/admin/donations/offline", email="cash@example.org", amount="50.00",
                  received_on=(today + timedelta(days=1)).isoformat(), note="kept note")
    assert ahead.status_code == 400 and "not a day still to come" in ahead.get_data(as_text=True)
    assert 'value="kept note"' in ahead.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Donation.id))) == 0
    ok = _post(client, "/admin/donations/offline", email="cash@example.org", amount="50.00",
               received_on=today.isoformat())
    assert ok.status_code == 303 and db.session.scalar(sa.select(sa.func.count(Donation.id))) == 1


def test_payout_is_recorded_and_refused_beyond_the_balance(client, campaign, login_as, producer):
    pay(10000, "ann@example.org")  # share due: $20
    login_as(client, producer)
    too_much = _post(client, "/admin/payouts", amount="25", paid_on="2026-11-22", reference="SEPA-1")
    assert too_much.status_code == 400 and "exceeds the balance" in too_much.get_data(as_text=True)
    assert 'value="SEPA-1"' in too_much.get_data(as_text=True)
    ok = _post(client, "/admin/payouts", amount="15", paid_on="2026-11-22", reference="SEPA-1")
    assert ok.status_code == 303
    payout = db.session.scalar(sa.select(Payout))
    assert (payout.amount, payout.reference, payout.paid_on.isoformat()) == (1500, "SEPA-1", "2026-11-22")
    html = client.get("/admin/").get_data(as_text=True)
    assert '<strong id="stat-balance">$5.00</strong>' in html


def _once(client, path: str = "/admin/") -> str:
    """The one-time token the page puts in its forms (filmfund/once.py)."""
    return re.search(r'name="once" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def test_a_payout_form_sent_twice_is_booked_once(client, campaign, login_as, producer):
    """A double click, or a browser sending the form again after a timeout: the ledger is append-only,
    so a second booking of one transfer could never be taken back. The page's one-time token makes
    the second submission a no-op. A form without the token (a page saved before tokens, a script)
    is refused, what was typed kept; and the bank reference names one transfer, so even a fresh
    page cannot book it twice."""
    pay(100000, "ann@example.org")  # share due: $200
    login_as(client, producer)
    form = dict(amount="50", paid_on="2026-11-22", reference="XINXING-2026-11", once=_once(client))
    assert _post(client, "/admin/payouts", **form).status_code == 303
    again = _post(client, "/admin/payouts", **form)
    assert again.status_code == 303  # what the first one did stands
    assert "already sent" in client.get(again.headers["Location"]).get_data(as_text=True)
    no_token = _post(client, "/admin/payouts", **{**form, "once": ""})
    assert no_token.status_code == 400 and "without its one-time key" in no_token.get_data(as_text=True)
    assert 'value="XINXING-2026-11"' in no_token.get_data(as_text=True)
    fresh = _post(client, "/admin/payouts", **{**form, "once": _once(client)})
    assert fresh.status_code == 400 and "already recorded" in fresh.get_data(as_text=True)
    assert [(p.amount, p.reference) for p in db.session.scalars(sa.select(Payout))] == [(5000, "XINXING-2026-11")]
    assert '<strong id="stat-balance">$150.00</strong>' in client.get("/admin/").get_data(as_text=True)
    # the same page token with other values is not a double click: refused, never guessed at
    other = _post(client, "/admin/payouts", **{**form, "reference": "XINXING-2026-12"})
    assert other.status_code == 400 and "other values" in other.get_data(as_text=True)
    assert _post(client, "/admin/payouts", **{**form, "reference": "XINXING-2026-12", "once": _once(client)}
                 ).status_code == 303


def test_a_form_without_its_one_time_token_books_nothing_and_keeps_what_was_typed(client, campaign, login_as,
                                                                                 producer):
    """A page always carries its token: a POST without it (a page saved before tokens, the resend of
    one, a hand-made POST) could not be told from its repetition, and used to be booked each time.
    It is refused, nothing booked, the form back with what was typed and a fresh token."""
    pay(100000, "ann@example.org")  # share due: $200
    login_as(client, producer)
    gift = dict(email="cash@example.org", amount="150.00", received_on="2026-11-20", note="kept note")
    for _ in range(2):  # the resend too
        refused = _post(client, "/admin/donations/offline", **gift, once="")
        html = refused.get_data(as_text=True)
        assert refused.status_code == 400 and "without its one-time key" in html
        assert 'value="kept note"' in html and 'value="cash@example.org"' in html
    payout = dict(amount="50", paid_on="2026-11-22", reference="HAND-MADE")
    refused = client.post("/admin/payouts", data={"csrf_token": csrf_token(client, "/admin/"), **payout})
    assert refused.status_code == 400 and 'value="HAND-MADE"' in refused.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Donation.id))) == 1  # Ann's only
    assert db.session.scalar(sa.select(sa.func.count(Payout.id))) == 0
    # the form it came back in carries a fresh token: sent from there, it is booked once
    again = re.search(r'name="once" value="([^"]+)"', refused.get_data(as_text=True)).group(1)
    assert _post(client, "/admin/payouts", **payout, once=again).status_code == 303
    (booked,) = db.session.scalars(sa.select(Payout)).all()
    reverse = f"/admin/payouts/{booked.id}/reverse"
    refused = _post(client, reverse, reason="typed the wrong amount", once="")
    assert refused.status_code == 400 and "without its one-time key" in refused.get_data(as_text=True)
    row = re.search(rf'<tr id="payout-{booked.id}".*?</tr>', refused.get_data(as_text=True), re.S).group(0)
    assert 'value="typed the wrong amount"' in row
    db.session.expire_all()
    assert db.session.get(Payout, booked.id).reversed_at is None


def test_a_payout_dated_ahead_is_refused_as_an_offline_gift_is(client, campaign, login_as, producer):
    """A payout sits on its transfer date in the partner's chart and monthly statements: one dated
    ahead (a typo of the year) would show money paid on a day still to come. The offline gifts'
    rule (payments.day_ahead: today in the campaign's zone counts) judges it."""
    from datetime import timedelta

    from filmfund.db import utcnow
    from filmfund.rewards import statements

    pay(100000, "ann@example.org")
    login_as(client, producer)
    today = utcnow().astimezone(statements.zone(campaign)).date()
    for day in ("2099-12-31", (today + timedelta(days=1)).isoformat()):
        ahead = _post(client, "/admin/payouts", amount="10", paid_on=day, reference=f"TYPO-{day}")
        assert ahead.status_code == 400 and "not a day still to come" in ahead.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Payout.id))) == 0
    assert _post(client, "/admin/payouts", amount="10", paid_on=today.isoformat(), reference="TODAY").status_code == 303


def test_an_offline_gift_form_sent_twice_counts_once(client, campaign, login_as, producer):
    login_as(client, producer)
    form = dict(email="cash@example.org", amount="150.00", received_on="2026-11-20", once=_once(client))
    assert _post(client, "/admin/donations/offline", **form).status_code == 303
    assert _post(client, "/admin/donations/offline", **form).status_code == 303
    assert db.session.scalar(sa.select(sa.func.count(Donation.id))) == 1
    assert '<span class="stat-value" id="stat-raised">$150.00</span>' in client.get("/admin/").get_data(as_text=True)


def test_a_refused_offline_gift_keeps_its_anonymous_and_no_rewards_ticks(client, campaign, login_as, producer):
    """A donor who asked to stay anonymous, the amount mistyped: the form comes back with the ticks
    as they were, or the producer fixes the amount, sends again, and the donor is named."""
    login_as(client, producer)
    resp = _post(client, "/admin/donations/offline", email="quiet@example.org", amount="12,5",
                 credit_name="Zoë", anonymous="1", rewards_opt_out="1")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert re.search(r'<input type="checkbox" name="anonymous" value="1" checked>', html)
    assert re.search(r'<input type="checkbox" name="rewards_opt_out" value="1" checked>', html)
    plain = client.get("/admin/").get_data(as_text=True)  # a fresh form is not ticked
    assert 'name="anonymous" value="1">' in plain and 'name="rewards_opt_out" value="1">' in plain



def test_a_refusal_in_chinese_on_a_crew_page_is_marked_chinese(client, campaign, login_as, producer):
    """The page's body is marked English for the crew; its message follows the chosen language, and
    says so, or a screen reader reads the Chinese with an English voice."""
    login_as(client, producer)
    client.get("/?lang=zh-Hans")
    html = _post(client, "/admin/donations/offline", email="quiet@example.org", amount="12,5").get_data(as_text=True)
    error = re.search(r'<p class="flash error" role="alert"[^>]* lang="([^"]+)"[^>]*>([^<]+)</p>', html)
    assert error and error.group(1) == "zh-Hans" and not error.group(2).isascii(), error


def test_recent_donations_name_the_zone_of_their_times(client, campaign, login_as, producer):
    """Times are shown with their zone named (README, Two languages): the campaign's zone is not
    UTC, so a bare 17:30 would be read as Beijing time. The donations list says "Received (UTC)"."""
    pay(5000, "ann@example.org")
    html = login_as(client, producer).get("/admin/").get_data(as_text=True)
    section = re.search(r'<section class="card" id="donations".*?</section>', html, re.S).group(0)
    assert '<th scope="col">Date (UTC)</th>' in section and 'data-label="Date (UTC)"' in section


def test_the_dashboards_messages_follow_the_chosen_language(client, campaign, login_as, producer):
    """The producers' pages are in English but their messages follow the language chosen (README,
    How producers translate the site's texts)."""
    login_as(client, producer)
    client.get("/?lang=zh-Hans")
    resp = _post(client, "/admin/donations/offline", email="cash@example.org", amount="20")
    flashes = re.findall(r'<p class="flash success"[^>]*>(.*?)</p>', client.get(resp.headers["Location"]).get_data(
        as_text=True))
    assert flashes and re.search(r"[\u4e00-\u9fff]", flashes[0]), flashes


def _group(html: str, key: str) -> str:
    return re.search(rf'<details class="fulfil-group" id="fulfil-{key}".*?</details>', html, re.S).group(0)


def test_fulfilment_lists_who_is_owed_what_and_marks_delivery(client, campaign, login_as, producer):
    pay(5000, "dvd@example.org", credit_name="DVD Fan")
    pay(1500, "small@example.org")
    pay(75000, "dinner@example.org")
    login_as(client, producer)
    html = client.get("/admin/").get_data(as_text=True)
    dvd = _group(html, "dvd")
    # the $750 donor is owed the signed DVD in its place (one DVD, signed)
    assert "dvd@example.org" in dvd and "small@example.org" not in dvd and "1 owed" in dvd
    assert "dinner@example.org" in _group(html, "dvd-signed") and "dinner@example.org" not in dvd
    assert " open>" not in dvd.split(">")[0] + ">"  # folded until asked
    assert "Mark delivered" not in dvd and "on its page" in dvd  # a parcel is delivered when received
    dinner = _group(html, "dinner-invitation")
    assert "1 owed" in dinner and "Mark delivered" in dinner
    ent = db.session.scalar(sa.select(Entitlement).join(Reward).where(
        Reward.key == "dinner-invitation", Entitlement.user_id == find_user("dinner@example.org").id))
    resp = _post(client, f"/admin/entitlements/{ent.id}", status="fulfilled")
    assert resp.status_code == 303
    db.session.expire_all()
    assert db.session.get(Entitlement, ent.id).status.value == "fulfilled"
    html = client.get("/admin/").get_data(as_text=True)
    dinner = _group(html, "dinner-invitation")
    assert "0 owed</span>, 1 done" in dinner, dinner
    assert _post(client, "/admin/entitlements/999999", status="fulfilled").status_code == 404


def test_the_dashboard_and_the_rewards_page_count_what_is_owed_alike(client, campaign, login_as, producer):
    """One rule of "owed" (fulfil/statement.py): a credit whose donor has sent the proof is in
    progress on both pages, never still "to deliver" on one and not owed on the other."""
    from filmfund.fulfil import credits

    for n in range(3):
        pay(1500, f"credit{n}@example.org", credit_name=f"Credit {n}")
    credits.approve_proof(find_user("credit0@example.org"), campaign)  # done on the rewards page
    db.session.commit()
    login_as(client, producer)
    dash = client.get("/admin/").get_data(as_text=True)
    page = client.get("/admin/rewards").get_data(as_text=True)
    for key in ("credit-name", "dvd", "dinner-invitation"):
        row = re.search(rf'<tr data-reward="{key}">.*?</tr>', page, re.S).group(0)
        owed = re.search(r'class="count-owed"[^>]*><a[^>]*>(\d+)</a>', row).group(1)
        assert f'<span class="count-owed">{owed} owed</span>' in _group(dash, key), key


def test_the_fulfilment_list_is_paged_per_reward(client, campaign, login_as, producer):
    for n in range(12):
        pay(5000, f"fan{n:02d}@example.org")
    login_as(client, producer)
    first = _group(client.get("/admin/").get_data(as_text=True), "dvd")
    assert first.count('<td class="email') == 10 and "next page" in first and "12 in all" in first
    following = re.search(r'<a rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "fafter=" in following  # a keyset page (fulfil.statement.queue_page), as the reward's own page
    second = _group(client.get(following).get_data(as_text=True), "dvd")
    assert second.count('<td class="email') == 2 and "previous page" in second and "next page" not in second
    assert second.startswith('<details class="fulfil-group" id="fulfil-dvd" data-reward="dvd" open')

def test_webhook_inbox_shows_unmatched_events(client, campaign, login_as, producer, app):
    from filmfund.rewards.webhooks import sign_payload

    event = {"id": "evt_orphan_1", "object": "event", "type": "checkout.session.completed", "livemode": False,
             "data": {"object": {"id": "cs_test_unknown", "object": "checkout.session", "payment_status": "paid",
                                 "amount_total": 500, "currency": "usd"}}}
    payload = json.dumps(event).encode()
    resp = client.post("/webhooks/stripe", data=payload, content_type="application/json",
                       headers={"Stripe-Signature": sign_payload(payload, app.config["STRIPE_WEBHOOK_SECRET"])})
    assert resp.status_code == 200
    run_worker(app)
    html = login_as(client, producer).get("/admin/").get_data(as_text=True)
    inbox = html.split('id="inbox"')[1].split("</section>")[0]
    assert "evt_orphan_1" in inbox and "unmatched" in inbox


def test_webhook_inbox_shows_events_still_waiting_to_be_booked(client, campaign, login_as, producer, app):
    """A payment whose booking keeps failing, or that no worker has booked for minutes, is shown
    with why; one that has just arrived and is about to be booked is not."""
    from datetime import timedelta

    import pytest

    from filmfund.db import utcnow
    from filmfund.rewards import webhooks
    from filmfund.rewards.models import WebhookEvent

    def waiting(event_id: str, payload: str = "{}", minutes: int = 0) -> None:
        db.session.add(WebhookEvent(event_id=event_id, type="checkout.session.completed", livemode=False,
                                    payload=payload, status="received", received_at=utcnow() - timedelta(minutes=minutes)))
        db.session.commit()

    def inbox() -> str:
        return login_as(client, producer).get("/admin/").get_data(as_text=True).split('id="inbox"')[1].split("</section>")[0]

    waiting("evt_damaged_row", '{"id": "evt_damaged_row", "data":')
    assert "evt_damaged_row" not in inbox()  # just arrived: a worker is about to book it
    with pytest.raises(json.JSONDecodeError):  # the sweep's batch: nothing else waits, so it is raised
        webhooks.book_pending_older(0)
    waiting("evt_no_worker", minutes=10)
    waiting("evt_just_now")
    html = inbox()
    row = html.split("evt_damaged_row")[1].split("</tr>")[0]
    assert "received" in row and "its last booking failed (JSONDecodeError;" in row
    row = html.split("evt_no_worker")[1].split("</tr>")[0]
    assert "received" in row and "is a worker running" in row
    assert "evt_just_now" not in html
    # Mended by hand, it is booked at the next try, and the reason goes with the failure.
    db.session.execute(sa.update(WebhookEvent).where(WebhookEvent.event_id == "evt_damaged_row")
                       .values(payload=json.dumps({"id": "evt_damaged_row", "type": "customer.created",
                                                   "livemode": False, "data": {"object": {}}})))
    db.session.commit()
    damaged = db.session.scalars(sa.select(WebhookEvent).where(WebhookEvent.event_id == "evt_damaged_row")).one()
    assert webhooks.book_event(damaged.id) == "ignored"  # a type filmfund does not book
    db.session.refresh(damaged)
    assert damaged.error is None
    assert "last booking failed" not in inbox()


def test_credits_csv_escapes_formulas_and_leaves_out_anonymous_donors(client, campaign, login_as, producer):
    pay(500, "a@example.org", credit_name="=HYPERLINK(\"http://evil\")")
    pay(500, "b@example.org", credit_name="Hidden Person", anonymous=True)
    pay(500, "c@example.org", credit_name="Zoë Normal")
    resp = login_as(client, producer).get("/admin/credits.csv")
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = spreadsheet_csv(resp).splitlines()
    assert rows[0] == "section,name"
    assert "'=HYPERLINK" in rows[1] and "supporters,Zoë Normal" in rows
    assert not any("Hidden Person" in r for r in rows)


def test_donors_by_tier_counts_lifetime_totals(client, campaign, login_as, producer):
    pay(1000, "a@example.org")
    pay(1000, "a@example.org")   # 20 in total: Follower
    pay(1500, "b@example.org")   # Follower
    pay(100000, "c@example.org")  # Premiere
    html = login_as(client, producer).get("/admin/").get_data(as_text=True)
    table = html.split('id="donors-by-tier"')[1].split("</table>")[0]
    rows = dict(re.findall(r"<tr><td>([^<]+)</td><td[^>]*>[^<]+</td><td>(\d+)</td></tr>", table))
    assert rows["Supporter"] == "0" and rows["Follower"] == "2" and rows["Premiere"] == "1"
    assert sum(map(int, rows.values())) == 3


def test_the_outbox_list_says_when_each_mail_was_written_as_a_reader_does(client, campaign, login_as,
                                                                          producer, app):
    """No SMTP server: the dashboard lists the outbox's latest mails. Their moment is said in the
    reader's words and zone ("December 5, 2026, 9:45 PM UTC"), not as the raw Date header
    ("Sat, 05 Dec 2026 21:45:07 -0000"), which is also too long for a phone's column."""
    from filmfund.mail import send_mail

    assert not app.config.get("SMTP_URL")
    with app.test_request_context():
        raw = send_mail("reader@example.org", "From the edit", "A first cut.")["Date"]
    html = login_as(client, producer).get("/admin/").get_data(as_text=True)
    outbox = html.split('id="outbox"')[1].split("</section>")[0]
    [row] = [r for r in outbox.split("<tr>") if "reader@example.org" in r]
    assert "From the edit" in row
    assert raw not in row and "-0000" not in row
    assert re.search(r"(January|February|March|April|May|June|July|August|September|October|November|December)"
                     r" \d{1,2}, \d{4}, \d{1,2}:\d{2}\s[AP]M", row), row


def test_a_payout_is_reversed_by_a_producer_once_and_the_partner_sees_it(client, campaign, login_as, producer,
                                                                         partner):
    """$500.00 typed for $5.00 is taken back beside the payouts list, with a reason: a new ledger
    group (the payout's own entry stays), the balance due back, the partner's page marking it
    reversed. Only producers reverse; a form sent twice (its one-time token) reverses once, and a
    second reversal is refused."""
    from filmfund.rewards.models import LedgerEntry

    pay(500000, "ann@example.org")  # share due: $1,000
    login_as(client, producer)
    assert _post(client, "/admin/payouts", amount="500", paid_on="2026-11-22", reference="WIRE-TYPO").status_code == 303
    payout = db.session.scalar(sa.select(Payout))
    assert f'action="/admin/payouts/{payout.id}/reverse"' in client.get("/admin/").get_data(as_text=True)
    path = f"/admin/payouts/{payout.id}/reverse"

    no_reason = _post(client, path, reason=" ", once=_once(client))
    assert no_reason.status_code == 400 and "Say why the payout is taken back" in no_reason.get_data(as_text=True)

    login_as(client, partner)
    assert _post(client, path, reason="mine now").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client, "/admin/partner")})
    assert client.post(path, data={"reason": "anonymous"}).status_code != 303  # signed out: nothing booked

    login_as(client, producer)
    form = dict(reason="typed $500 for $5", once=_once(client))
    done = _post(client, path, **form)
    assert done.status_code == 303 and "reversed" in client.get(done.headers["Location"]).get_data(as_text=True)
    again = _post(client, path, **form)  # the double click
    assert again.status_code == 303 and "already sent" in client.get(again.headers["Location"]).get_data(as_text=True)
    second = _post(client, path, reason="once more", once=_once(client))
    assert second.status_code == 400 and "already reversed" in second.get_data(as_text=True)
    kinds = db.session.scalars(sa.select(LedgerEntry.entry_kind).where(LedgerEntry.payout_id == payout.id)
                               .order_by(LedgerEntry.id)).all()
    assert kinds == ["payout", "payout_reversal"]
    html = client.get("/admin/").get_data(as_text=True)
    assert '<strong id="stat-balance">$1,000.00</strong>' in html
    row = re.search(rf'<tr id="payout-{payout.id}".*?</tr>', html, re.S).group(0)
    assert "Reversed" in row and "typed $500 for $5" in row and "<form" not in row

    login_as(client, partner)
    page = client.get("/admin/partner").get_data(as_text=True)
    row = re.search(rf'<tr id="payout-{payout.id}">.*?</tr>', page, re.S).group(0)
    assert "Reversed on" in row and "typed $500 for $5" in row


def test_two_payouts_reversed_from_one_page_are_each_reversed_once(client, campaign, login_as, producer):
    """The payouts list has a reversal form per payout, all carrying the page's one token. A
    producer reversed payout A, went Back and reversed payout B from the same page: B was refused
    ("already sent with other values: reload the page"), as the token was spent on A. The token is
    bound to the object its form's URL names (filmfund/once.py), so B is reversed, and A sent
    again (a double click, a resend) is still done once."""
    pay(500000, "ann@example.org")
    login_as(client, producer)
    for ref in ("WIRE-A", "WIRE-B"):
        assert _post(client, "/admin/payouts", amount="5", paid_on="2026-11-22", reference=ref).status_code == 303
    a, b = db.session.scalars(sa.select(Payout).order_by(Payout.id)).all()
    page = form_tokens(client, "/admin/")  # the page as it was before either reversal
    first = client.post(f"/admin/payouts/{a.id}/reverse", data={**page, "reason": "typed A twice"})
    assert first.status_code == 303
    second = client.post(f"/admin/payouts/{b.id}/reverse", data={**page, "reason": "typed B twice"})
    assert second.status_code == 303, second.get_data(as_text=True)
    assert "reversed" in client.get(second.headers["Location"]).get_data(as_text=True)
    again = client.post(f"/admin/payouts/{a.id}/reverse", data={**page, "reason": "typed A twice"})
    assert again.status_code == 303 and "already sent" in client.get(again.headers["Location"]).get_data(as_text=True)
    # the page's token spent on a payout and its reversals is not taken for another form's
    fresh = form_tokens(client, "/admin/")
    assert _post(client, "/admin/payouts", amount="7", paid_on="2026-11-22", reference="WIRE-C",
                 once=fresh["once"]).status_code == 303
    db.session.expire_all()
    reversals = db.session.scalars(sa.select(Payout.reference).where(Payout.reversed_at.is_not(None))
                                   .order_by(Payout.id)).all()
    assert reversals == ["WIRE-A", "WIRE-B"]
    assert db.session.scalar(sa.select(sa.func.count(Payout.id))) == 3
