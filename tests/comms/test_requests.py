"""The $2000 tier's private request thread between one donor and the producers."""
from __future__ import annotations

import email
import re

from filmfund import jobs
from tests.comms.conftest import wait_for
from tests.site.helpers import csrf_token


def test_private_thread_between_donor_and_producers(app, donor, producer, login_as, smtp):
    partner_in_film = donor(200000, "big@example.org")      # $2000
    other = donor(100000, "premiere@example.org")          # $1000: no thread
    smtp.envelopes.clear()  # the receipts
    me = login_as(app.test_client(), partner_in_film)
    token = csrf_token(me, "/account/requests")
    assert me.post("/account/requests", data={"csrf_token": token, "body": ""}).status_code == 400
    assert me.post("/account/requests", data={"csrf_token": token,
                                              "body": "Could I visit the edit room?"}).status_code == 303
    other_client = login_as(app.test_client(), other)
    resp = other_client.post("/account/requests", data={"csrf_token": csrf_token(other_client, "/account/requests"),
                                                        "body": "Me too?"})
    assert resp.status_code == 403
    assert "Could I visit" not in other_client.get("/account/requests").get_data(as_text=True)

    staff = login_as(app.test_client(), producer)
    listing = staff.get("/admin/requests").get_data(as_text=True)
    assert "big@example.org" in listing and "waiting for you" in listing and "premiere@example.org" not in listing
    thread = f"/admin/requests/{partner_in_film.public_id}"
    assert "Could I visit the edit room?" in staff.get(thread).get_data(as_text=True)
    assert staff.get(f"/admin/requests/{other.public_id}").status_code == 404
    resp = staff.post(thread, data={"csrf_token": csrf_token(staff, thread), "body": "Yes: in March, in Beijing."})
    assert resp.status_code == 303
    jobs.run_burst()
    wait_for(smtp, 1)
    [msg] = smtp.messages()
    assert msg["To"] == "big@example.org" and "in Beijing" not in msg.get_body(("plain",)).get_content()
    assert "Yes: in March, in Beijing." in me.get("/account/requests").get_data(as_text=True)
    assert "waiting for you" not in staff.get("/admin/requests").get_data(as_text=True)


def test_an_empty_message_is_refused_in_the_donors_language(app, donor, login_as):
    me = login_as(app.test_client(), donor(200000, "big@example.org"))
    for lang, said in (("en", "Write a message (up to 5000 characters)."), ("zh-Hans", "请写下您的留言（最多 5000 个字）。")):
        page = f"/account/requests?lang={lang}"
        resp = me.post("/account/requests", data={"csrf_token": csrf_token(me, page), "body": "  "})
        assert resp.status_code == 400
        assert re.findall(r'<p class="field-error"[^>]* role="alert"[^>]*>([^<]*)</p>', resp.get_data(as_text=True)) == [said]


def test_a_refunded_donor_loses_the_thread_and_is_mailed_no_reply(app, client, producer, login_as, smtp):
    """Once the $2000 gift is refunded the reward is revoked: the donor no longer reads what the
    producers wrote (a place, a door code), gets no notice of a reply written before the refund,
    and the producers keep the thread but can no longer add to it."""
    from filmfund.auth.services import find_user
    from filmfund.comms.models import RequestMessage
    from filmfund.extensions import db
    from tests.rewards.conftest import Stripe, charge_obj
    from tests.site.helpers import pay

    pledge = pay(200000, "big@example.org")
    big = find_user("big@example.org")
    me = login_as(app.test_client(), big)
    assert me.post("/account/requests", data={"csrf_token": csrf_token(me, "/account/requests"),
                                              "body": "Could I visit the edit room?"}).status_code == 303
    staff = login_as(app.test_client(), producer)
    thread = f"/admin/requests/{big.public_id}"
    assert staff.post(thread, data={"csrf_token": csrf_token(staff, thread),
                                    "body": "Yes: 3F, 12 Gulou St, door code 4471."}).status_code == 303
    smtp.envelopes.clear()  # the receipt; the reply's notice is queued, not yet mailed

    # Refunded in full before the worker mails the notice: the booking revokes the reward, then
    # the notice finds a donor who no longer holds it.
    Stripe(app, client).send("charge.refunded", charge_obj(f"pi_test_local_{pledge.id}", 200000, 200000))
    jobs.run_burst()
    to_big = [email.message_from_bytes(e.content)["Subject"] for e in smtp.envelopes if "big@example.org" in e.rcpt_tos]
    assert len(to_big) == 1 and to_big[0].startswith("Your gift has been refunded")  # the refund's notice, no reply

    page = me.get("/account/requests")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "door code 4471" not in html and "Could I visit" not in html
    assert "comes with the $2,000 tier" in html and 'name="body"' not in html

    html = staff.get(thread).get_data(as_text=True)  # the producers keep the record
    assert "door code 4471" in html and 'id="thread-closed"' in html and 'name="body"' not in html
    resp = staff.post(thread, data={"csrf_token": csrf_token(staff, thread), "body": "See you Tuesday at 7."})
    assert resp.status_code == 409
    assert "no longer holds the $2,000 tier" in resp.get_data(as_text=True)
    jobs.run_burst()
    assert db.session.query(RequestMessage).filter_by(body="See you Tuesday at 7.").count() == 0
    to_big = [email.message_from_bytes(e.content)["Subject"] for e in smtp.envelopes if "big@example.org" in e.rcpt_tos]
    assert len(to_big) == 1 and to_big[0].startswith("Your gift has been refunded")  # the refund's notice, no reply


def test_a_donor_who_declined_rewards_is_told_so_not_told_of_the_tier(app, login_as):
    """Probe (tiers, finding 8, on the thread too): a $2,000 donor who chose no rewards was told
    the thread "comes with the $2000 tier". She is told why, and how to have it back; the tier's
    amount comes from the campaign file (holdings.tier_amount_of), not from a copy in the text."""
    from filmfund.auth.services import find_user
    from filmfund.extensions import db
    from filmfund.rewards import donors
    from tests.site.helpers import pay

    pay(200000, "big@example.org")
    big = find_user("big@example.org")
    donors.update_donor_settings(big, via="account", rewards_opt_out=True)
    db.session.commit()
    me = login_as(app.test_client(), big)
    html = me.get("/account/requests").get_data(as_text=True)
    assert "You chose no rewards, so this thread is closed for now" in html and "tier" not in html.split("</h1>", 1)[1]
    refused = me.post("/account/requests", data={"csrf_token": csrf_token(me, "/account/requests"), "body": "Hello?"})
    assert refused.status_code == 403 and "You chose no rewards" in refused.get_data(as_text=True)
