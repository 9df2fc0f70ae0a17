"""The $2000 tier's private request thread between one donor and the producers."""
from __future__ import annotations

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
        assert re.findall(r'<p class="field-error" role="alert">([^<]*)</p>', resp.get_data(as_text=True)) == [said]
