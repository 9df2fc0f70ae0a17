"""Production updates from payment to delivery: audiences, the archive, mail over a real SMTP
server on loopback with one-click unsubscribe, retries, and never twice to one donor."""
from __future__ import annotations

import re

import sqlalchemy as sa
from flask import g

from filmfund import jobs
from filmfund.comms import updates
from filmfund.comms.models import DeliveryStatus, Update, UpdateDelivery
from filmfund.extensions import db
from filmfund.rewards import mail_prefs
from filmfund.rewards.models import Entitlement, EntitlementStatus, Reward
from filmfund.rewards.webhooks import complete_test_checkout
from tests.comms.conftest import wait_for
from tests.helpers import make_pledge
from tests.site.helpers import csrf_token, pay


def _publish_via_api(client, headers, **body):
    resp = client.post("/api/v1/updates", json=body, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["state"] == "draft"
    update_id = resp.get_json()["id"]
    resp = client.post(f"/api/v1/updates/{update_id}/publish", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return update_id, resp.get_json()


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_monthly_update_reaches_exactly_its_audience(app, client, smtp, donor, producer, token_for, login_as):
    one = donor(100, "one@example.org")                 # $1: no updates
    fifteen = donor(1500, "fifteen@example.org")        # $15: monthly updates
    donor(3000, "thirty@example.org")                   # $30: includes the $15 tier's
    donor(75000, "director@example.org")                # $750: monthly and director's updates
    quiet = donor(1500, "quiet@example.org")            # $15, but unsubscribed from them
    mail_prefs.opt_out(quiet.id, "updates-monthly")
    db.session.commit()
    refunded = pay(1500, "refunded@example.org")        # $15, then refunded in full through Stripe
    from tests.rewards.conftest import Stripe, charge_obj

    Stripe(app, client).send("charge.refunded", charge_obj(f"pi_test_local_{refunded.id}", 1500, 1500))
    assert db.session.scalar(sa.select(Entitlement.status).join(Reward).where(
        Reward.key == "updates-monthly", Entitlement.user.has(email="refunded@example.org"))) == "revoked"
    smtp.envelopes.clear()  # the receipts

    update_id, doc = _publish_via_api(client, token_for(producer), title="Shoot day 12",
                                      body="We filmed in **Shenzhen**.", audience="updates-monthly")
    assert doc["state"] == "published" and doc["deliveries"] == {"queued": 3, "unsubscribed": 1}
    assert smtp.envelopes == []                          # nothing mailed on the request path
    from filmfund.audit import list_audit

    [entry] = list_audit(action="update.send")
    assert entry.actor == f"user:{producer.id}" and entry.target == f"update:{update_id}"
    jobs.run_burst()
    wait_for(smtp, 3)
    msgs = smtp.messages()
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == [
        "director@example.org", "fifteen@example.org", "thirty@example.org"]
    for msg in msgs:
        assert msg["Subject"] == "Shoot day 12" and msg["Cc"] is None and "," not in msg["To"]
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert re.fullmatch(r"<https?://[^>]+/unsubscribe/[^>]+>", str(msg["List-Unsubscribe"]).replace(" ", ""))
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert "We filmed in **Shenzhen**." in text and "<strong>Shenzhen</strong>" in html
        assert "/unsubscribe/" in text and "/unsubscribe/" in html
    counts = updates.delivery_counts([update_id])[update_id]
    assert counts == {"sent": 3, "unsubscribed": 1}

    # The $1 donor never reads it: not in the API list, not on the page.
    assert client.get("/api/v1/updates", headers=token_for(one)).get_json()["items"] == []
    assert client.get("/api/v1/updates").get_json()["items"] == []
    assert login_as(client, one).get(f"/updates/{update_id}").status_code == 404
    assert "Shoot day 12" not in client.get("/updates").get_data(as_text=True)
    from filmfund.auth.services import find_user

    gone = find_user("refunded@example.org")                 # refunded: reads it nowhere
    assert client.get("/api/v1/updates", headers=token_for(gone)).get_json()["items"] == []
    assert login_as(app.test_client(), gone).get(f"/updates/{update_id}").status_code == 404
    items = client.get("/api/v1/updates", headers=token_for(fifteen)).get_json()["items"]
    assert [(i["id"], i["audience"]) for i in items] == [(update_id, "updates-monthly")]
    page = login_as(app.test_client(), fifteen).get(f"/updates/{update_id}")
    assert page.status_code == 200 and "<strong>Shenzhen</strong>" in page.get_data(as_text=True)

    # One click (as a mail client does it) from the $15 donor's mail stops that topic.
    to_fifteen = next(m for m in msgs if m["To"] == "fifteen@example.org")
    url = str(to_fifteen["List-Unsubscribe"]).replace(" ", "").strip("<>")
    assert app.test_client().post(_path(url), data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert mail_prefs.opted_out(fifteen.id) == {"updates-monthly"}

    # Publishing again, and running the queue again, sends nothing more.
    assert client.post(f"/api/v1/updates/{update_id}/publish", headers=token_for(producer)).status_code == 200
    jobs.run_burst()
    assert len(smtp.envelopes) == 3


def test_news_goes_to_every_donor_and_the_archive_to_everyone(app, client, smtp, donor, producer, token_for,
                                                               make_user):
    donor(100, "one@example.org")
    # No rewards: "nothing is sent to you except your receipt" (the pledge form), so no news
    # either, until the donor asks for it on her account page (below).
    pay(5000, "norewards@example.org", rewards_opt_out=True)
    make_user("signed-up@example.org")                        # never gave: no mail
    refunded = pay(1500, "refunded@example.org")               # refunded in full: no longer a donor
    from tests.rewards.conftest import Stripe, charge_obj

    Stripe(app, client).send("charge.refunded", charge_obj(f"pi_test_local_{refunded.id}", 1500, 1500))
    jobs.run_burst()
    smtp.envelopes.clear()  # the receipts
    update_id, doc = _publish_via_api(client, token_for(producer), title="We reached 50%",
                                      body="Thank you.", audience="everyone")
    jobs.run_burst()
    wait_for(smtp, 1)
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["one@example.org"]
    assert all("News from the production" in m.get_body(("plain",)).get_content() for m in smtp.messages())
    assert [i["id"] for i in client.get("/api/v1/updates").get_json()["items"]] == [update_id]
    assert client.get(f"/updates/{update_id}").status_code == 200  # public

    from filmfund.auth.services import find_user

    norewards = find_user("norewards@example.org")
    assert mail_prefs.opted_out(norewards.id) == {mail_prefs.NEWS}
    assert mail_prefs.opt_in(norewards.id, mail_prefs.NEWS)  # she asks for the news after all
    db.session.commit()
    smtp.envelopes.clear()
    _publish_via_api(client, token_for(producer), title="We reached 75%", body="Thank you.", audience="donors")
    jobs.run_burst()
    wait_for(smtp, 2)
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["norewards@example.org", "one@example.org"]


def test_a_refused_connection_waits_for_the_server_and_never_sends_twice(app, client, donor, producer, token_for,
                                                                         smtp):
    donor(1500, "a@example.org")
    donor(1500, "b@example.org")
    smtp.envelopes.clear()  # the receipts
    working = app.config["SMTP_URL"]
    from tests.comms.conftest import free_port

    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"  # nobody listens: refused
    update_id, _ = _publish_via_api(client, token_for(producer), title="Edit begins", body="Soon.",
                                    audience="updates-monthly")
    jobs.run_burst(max_tasks=1)  # the first try fails; huey schedules the next
    rows = db.session.scalars(sa.select(UpdateDelivery).order_by(UpdateDelivery.id)).all()
    # The server's fault, not the donors': no try counted, and the mailing stopped at the first
    assert [(r.status, r.attempts) for r in rows] == [(DeliveryStatus.QUEUED, 0)] * 2
    assert "refused" in rows[0].error.lower() and rows[1].error is None
    assert smtp.envelopes == []

    app.config["SMTP_URL"] = working  # the server is back: the retry sends each once
    assert updates.deliver_queued(update_id)["sent"] == 2
    assert updates.deliver_queued(update_id)["sent"] == 0
    wait_for(smtp, 2)
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["a@example.org", "b@example.org"]


def test_a_delivery_is_claimed_once_and_a_dead_workers_claim_is_not_resent(app, client, donor, producer,
                                                                          token_for, monkeypatch):
    from datetime import timedelta

    donor(1500, "a@example.org")
    donor(1500, "b@example.org")
    update = updates.create_update(title="T", body="B", audience="updates-monthly")
    db.session.commit()
    monkeypatch.setattr("filmfund.comms.updates.deliver_update", lambda update_id: None)  # no job yet
    updates.publish_update(update.id)
    db.session.commit()
    first, second = db.session.scalars(sa.select(UpdateDelivery.id).order_by(UpdateDelivery.id)).all()
    assert updates.claim_delivery(first) is True
    assert updates.claim_delivery(first) is False  # a second worker does not get it
    # The first worker dies while sending: the sweep marks it failed, and it is never re-sent.
    later = db.session.get(UpdateDelivery, first).claimed_at + updates.STALE_SENDING + timedelta(minutes=1)
    assert updates.sweep_deliveries(now=later)["stale"] == 1
    done = updates.deliver_queued(update.id)
    assert done["sent"] == 1
    statuses = dict(db.session.execute(sa.select(UpdateDelivery.id, UpdateDelivery.status)).all())
    assert statuses == {first: DeliveryStatus.FAILED, second: DeliveryStatus.SENT}


def test_the_sweep_gives_a_live_mailing_no_second_job(app, donor, monkeypatch):
    """The hourly sweep re-queues a lost mailing, not a running one: two jobs of one update side by
    side, in a worker then killed, would leave two donors' mails in flight (failed, never re-sent)."""
    from datetime import timedelta

    donor(1500, "a@example.org")
    donor(1500, "b@example.org")
    queued: list[int] = []
    monkeypatch.setattr("filmfund.comms.updates.deliver_update", queued.append)
    update = updates.create_update(title="T", body="B", audience="updates-monthly")
    updates.publish_update(update.id)
    db.session.commit()
    assert queued == [update.id]  # the publication's own job
    queued.clear()

    # Just published: its job may still wait in the queue.
    assert updates.sweep_deliveries()["requeued_updates"] == 0
    db.session.commit()
    # Published long ago, its job now mailing: one delivery claimed a moment ago.
    update.published_at -= timedelta(hours=2)
    first = db.session.scalars(sa.select(UpdateDelivery.id).order_by(UpdateDelivery.id)).first()
    assert updates.claim_delivery(first)
    db.session.commit()
    assert updates.sweep_deliveries() == {"stale": 0, "requeued_updates": 0}
    db.session.commit()
    assert queued == []
    # The job's worker died: once its claim is stale, the claim is closed and the rest re-queued.
    later = db.session.get(UpdateDelivery, first).claimed_at + updates.STALE_SENDING + timedelta(minutes=1)
    assert updates.sweep_deliveries(now=later) == {"stale": 1, "requeued_updates": 1}
    assert queued == []  # queued with the sweep's commit
    db.session.commit()
    assert queued == [update.id]


def test_gives_up_after_the_last_attempt_and_the_producer_sees_it(app, client, donor, producer, login_as):
    from tests.comms.test_update_outage import refusing_server

    donor(1500, "a@example.org")
    update = updates.create_update(title="Lost", body="B", audience="updates-monthly")
    updates.publish_update(update.id)
    db.session.commit()
    with refusing_server(app, refuse={"a@example.org"}):  # "550 no such user": this address's fault
        for _ in range(updates.MAX_ATTEMPTS - 1):
            assert updates.deliver_queued(update.id)["retry"] == 1
        assert updates.deliver_queued(update.id)["failed"] == 1
    html = login_as(client, producer).get(f"/admin/updates/{update.id}").get_data(as_text=True)
    assert "a@example.org" in html and "failed" in html and "<strong>1</strong> failed" in html
    assert "550" in html


def test_the_producer_sends_the_failed_mails_again_once_the_problem_is_mended(app, client, donor, producer, login_as):
    """A full mailbox failed the update for good after MAX_ATTEMPTS; once it is emptied, the producer
    sends the failed mails again from the update's page: each goes out once, with fresh tries, and
    only to those who failed (the delivered donor gets nothing twice)."""
    from tests.comms.test_update_outage import refusing_server

    donor(1500, "full@example.org")
    donor(1500, "fine@example.org")
    update = updates.create_update(title="Lost", body="B", audience="updates-monthly")
    updates.publish_update(update.id)
    db.session.commit()
    with refusing_server(app, refuse={"full@example.org"}) as sink:
        for _ in range(updates.MAX_ATTEMPTS):
            updates.deliver_queued(update.id)
        assert updates.delivery_counts([update.id])[update.id] == {"sent": 1, "failed": 1}
        page = f"/admin/updates/{update.id}"
        staff = login_as(client, producer)
        assert 'id="retry-failed"' in staff.get(page).get_data(as_text=True)
        sink.refuse.clear()  # the donor emptied their mailbox
        sink.envelopes.clear()
        resp = staff.post(f"{page}/retry", data={"csrf_token": csrf_token(staff, page)})
        assert resp.status_code == 303
        db.session.expire_all()
        assert updates.delivery_counts([update.id])[update.id] == {"sent": 1, "queued": 1}
        jobs.run_burst()
        assert [e.rcpt_tos for e in sink.envelopes] == [["full@example.org"]]
    db.session.expire_all()
    assert updates.delivery_counts([update.id])[update.id] == {"sent": 2}
    html = staff.get(page).get_data(as_text=True)
    assert 'id="retry-failed"' not in html  # nothing failed is left to send
    # Pressed again (a second tab): nothing to send, nothing sent.
    resp = staff.post(f"{page}/retry", data={"csrf_token": csrf_token(staff, page)}, follow_redirects=True)
    assert "No failed mail to send again." in resp.get_data(as_text=True)
    assert updates.delivery_counts([update.id])[update.id] == {"sent": 2}


def test_a_draft_has_no_failed_mail_to_send_again(client, producer, login_as):
    update = updates.create_update(title="Draft", body="B", audience="everyone")
    db.session.commit()
    page = f"/admin/updates/{update.id}"
    staff = login_as(client, producer)
    resp = staff.post(f"{page}/retry", data={"csrf_token": csrf_token(staff, page)})
    assert resp.status_code == 409
    assert "Only a published update" in resp.get_data(as_text=True)
    assert staff.post(f"{page}/retry", data={}).status_code == 400  # no CSRF token: refused


def test_a_draft_saved_while_another_producer_publishes_it_leaves_the_published_update(app, client, donor,
                                                                                        producer, login_as,
                                                                                        monkeypatch):
    """Producer A opens the draft, producer B publishes it (mailed to everyone), then A saves: A's
    text and audience must not replace what was published and mailed (409, nothing written)."""
    import threading

    donor(1500, "a@example.org")
    monkeypatch.setattr("filmfund.comms.updates.deliver_update", lambda update_id: None)  # no mailing here
    update = updates.create_update(title="Rough cut", body="For every donor.", audience="everyone")
    db.session.commit()
    update_id = update.id
    assert updates.get_update(update_id).state == "draft"  # A's request has read the draft (as the view does)

    def producer_b():
        with app.app_context():  # another request: its own session
            updates.publish_update(update_id)
            db.session.commit()

    b = threading.Thread(target=producer_b)
    b.start()
    b.join(30)
    from filmfund.errors import ConflictError

    try:
        updates.edit_update(update_id, title="Director's private note", body="Only for the $750 donors.",
                            audience="director-updates")
        db.session.commit()
    except ConflictError as err:
        assert err.status == 409 and err.code == "published"
        db.session.rollback()
    else:
        raise AssertionError("the published update was rewritten by a draft's save")
    db.session.expire_all()
    stored = updates.get_update(update_id)
    assert (stored.state, stored.audience, stored.title) == ("published", "everyone", "Rough cut")

    # The same on the page: a save of a draft published meanwhile is refused, and says why.
    page = f"/admin/updates/{update_id}"
    staff = login_as(client, producer)
    resp = staff.post(page, data={"csrf_token": csrf_token(staff, page), "title": "Late",
                                  "body": "Late.", "audience": "everyone"})
    assert resp.status_code == 409
    assert "cannot be changed" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert updates.get_update(update_id).title == "Rough cut"


def test_unsubscribed_or_refunded_before_the_send_gets_nothing(app, smtp, donor):
    a = donor(1500, "a@example.org")
    donor(1500, "b@example.org")
    update = updates.create_update(title="T", body="B", audience="updates-monthly")
    updates.publish_update(update.id)  # queued for both
    db.session.commit()
    mail_prefs.opt_out(a.id, "updates-monthly")
    ent = db.session.scalar(sa.select(Entitlement).join(Reward).where(
        Reward.key == "updates-monthly", Entitlement.user.has(email="b@example.org")))
    ent.status = EntitlementStatus.REVOKED
    db.session.commit()
    smtp.envelopes.clear()  # the receipts
    jobs.run_burst()
    assert smtp.envelopes == []
    assert updates.delivery_counts([update.id])[update.id] == {"unsubscribed": 1, "cancelled": 1}


def test_markdown_is_rendered_safely(app, client, producer, login_as):
    body = ("Hello <script>alert(1)</script> <img src=x onerror=alert(1)>\n\n"
            "[click](javascript:alert(1)) [site](https://example.org) ![tracker](https://evil.example/p.png)")
    update = updates.create_update(title="<b>Title</b>", body=body, audience="everyone")
    updates.publish_update(update.id)
    db.session.commit()
    html = client.get(f"/updates/{update.id}").get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html and "onerror" not in html.replace(
        "onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;" in html and "&lt;b&gt;Title&lt;/b&gt;" in html
    assert 'href="javascript:' not in html and 'href="https://example.org"' in html
    assert "evil.example" not in html and "[image: tracker]" in html


def test_producer_writes_previews_and_publishes_on_the_page(app, client, producer, login_as, donor, image_asset,
                                                           smtp):
    fifteen = donor(1500, "fifteen@example.org")
    one = donor(100, "one@example.org")
    asset = image_asset()
    smtp.envelopes.clear()  # the receipts
    login_as(client, producer)
    page = client.get("/admin/updates").get_data(as_text=True)
    assert f"asset:{asset.public_id}" in page  # the library's stills are offered
    token = csrf_token(client, "/admin/updates")
    resp = client.post("/admin/updates", data={"csrf_token": token, "title": "", "body": "kept body",
                                               "audience": "updates-monthly"})
    assert resp.status_code == 400 and "kept body" in resp.get_data(as_text=True)
    resp = client.post("/admin/updates", data={
        "csrf_token": token, "title": "Stills from Shenzhen", "audience": "updates-monthly",
        "body": f"Look:\n\n![Shenzhen]({'asset:' + asset.public_id})"})
    assert resp.status_code == 303
    update_id = int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    preview = client.get(f"/admin/updates/{update_id}").get_data(as_text=True)
    assert f'src="/updates/{update_id}/images/{asset.public_id}"' in preview and "Publish and send" in preview
    assert client.get(f"/updates/{update_id}/images/{asset.public_id}").status_code == 200  # producer preview
    assert smtp.envelopes == []  # a draft mails nobody
    assert login_as(app.test_client(), fifteen).get(f"/updates/{update_id}").status_code == 404  # draft

    resp = client.post(f"/admin/updates/{update_id}/publish", data={"csrf_token": token})
    assert resp.status_code == 303
    jobs.run_burst()
    wait_for(smtp, 1)
    [msg] = smtp.messages()
    assert msg["To"] == "fifteen@example.org"
    html = msg.get_body(("html",)).get_content()
    img_url = re.search(r'<img src="([^"]+)"', html).group(1)
    assert asset.public_id in img_url and "t=" in img_url
    anon = app.test_client()
    got = anon.get(_path(img_url.replace("&amp;", "&")))  # the mail's image loads with no session
    assert got.status_code == 200 and got.data.startswith(b"\x89PNG")
    assert anon.get(_path(img_url.replace("&amp;", "&"))[:-3] + "xyz").status_code == 404
    assert anon.get(f"/updates/{update_id}/images/{asset.public_id}").status_code == 404
    assert login_as(app.test_client(), one).get(f"/updates/{update_id}/images/{asset.public_id}").status_code == 404
    donor_page = login_as(app.test_client(), fifteen).get(f"/updates/{update_id}/images/{asset.public_id}")
    assert donor_page.status_code == 200
    listing = client.get("/admin/updates").get_data(as_text=True)
    assert "Stills from Shenzhen" in listing
    assert "<strong>1</strong> sent" in client.get(f"/admin/updates/{update_id}").get_data(as_text=True)


def test_api_refuses_bad_input_clearly(app, client, producer, token_for, donor):
    headers = token_for(producer)
    for body in ({}, {"title": "x", "body": "y", "audience": "nobody"}, {"title": "", "body": "y", "audience": "donors"},
                 {"title": "x", "body": 5, "audience": "donors"}, {"title": ["x"], "body": "y", "audience": "donors"}):
        resp = client.post("/api/v1/updates", json=body, headers=headers)
        assert resp.status_code == 400 and set(resp.get_json()["error"]) == {"code", "message"}
    assert client.post("/api/v1/updates/12345/publish", headers=headers).status_code == 404
    assert client.get("/api/v1/updates", headers={"Authorization": "Bearer nope"}).status_code == 401
    d = donor(1500, "d@example.org")
    assert client.post("/api/v1/updates", json={"title": "x", "body": "y", "audience": "donors"},
                       headers=token_for(d)).status_code == 403


def test_two_workers_at_once_send_each_donor_one_mail(app, donor, smtp, monkeypatch):
    import threading
    from collections import Counter

    emails = [f"d{i}@example.org" for i in range(12)]
    for e in emails:
        donor(1500, e)
    smtp.envelopes.clear()  # the receipts
    monkeypatch.setattr("filmfund.comms.updates.deliver_update", lambda update_id: None)  # run by hand below
    update = updates.create_update(title="Rough cut", body="Done.", audience="updates-monthly")
    updates.publish_update(update.id)
    db.session.commit()
    barrier, results, errors = threading.Barrier(2), [], []

    def worker():
        try:
            with app.app_context():
                barrier.wait()
                results.append(updates.deliver_queued(update.id))
                db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(r["sent"] for r in results) == 12
    wait_for(smtp, 12)
    assert Counter(e.rcpt_tos[0] for e in smtp.envelopes) == Counter(emails)  # each exactly once
    assert updates.delivery_counts([update.id])[update.id] == {"sent": 12}


def test_without_smtp_the_update_goes_to_the_outbox(app, donor, producer, login_as):
    import email as email_lib
    from email import policy

    from filmfund.mail import outbox_messages

    donor(1500, "fifteen@example.org")
    donor(100, "one@example.org")
    before = set(outbox_messages())  # the receipts
    update = updates.create_update(title="From the outbox", body="Hello *there*.", audience="updates-monthly")
    updates.publish_update(update.id)
    db.session.commit()
    jobs.run_burst()
    [path] = set(outbox_messages()) - before
    msg = email_lib.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert msg["To"] == "fifteen@example.org" and msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "<em>there</em>" in msg.get_body(("html",)).get_content()
    assert "From the outbox" in login_as(app.test_client(), producer).get("/admin/").get_data(as_text=True)


def test_the_preview_says_how_many_donors_publishing_mails(app, client, donor, producer, login_as):
    """The draft's page counts its reach from the audience's one rule, and publishing then writes
    exactly that many queued deliveries (and the opted-out as unsubscribed)."""
    donor(100, "one@example.org")                        # below the monthly-updates tier
    donor(1500, "fifteen@example.org")
    donor(3000, "thirty@example.org")
    quiet = donor(1500, "quiet@example.org")
    mail_prefs.opt_out(quiet.id, "updates-monthly")
    db.session.commit()
    update = updates.create_update(title="Shoot day 13", body="Rain.", audience="updates-monthly", author=producer)
    db.session.commit()
    assert updates.reach(update) == {"mailed": 2, "opted_out": 1}
    page = login_as(client, producer).get(f"/admin/updates/{update.id}").get_data(as_text=True)
    reach = page.split('id="update-reach"')[1].split("</p>")[0]
    assert "<strong>2</strong> donors by mail" in reach and "1 more" in reach
    news = updates.create_update(title="Premiere", body="Soon.", audience="everyone", author=producer)
    db.session.commit()
    assert updates.reach(news) == {"mailed": 4, "opted_out": 0}

    updates.publish_update(update.id, producer)
    db.session.commit()
    assert updates.delivery_counts([update.id])[update.id] == {"queued": 2, "unsubscribed": 1}


def test_a_signed_out_visitor_of_a_supporters_update_is_asked_to_sign_in(app, client, donor, producer):
    """Not "Not found": sign in. And nothing of the update (not its title), the same answer for a
    number that does not exist, so the answer tells nothing; a signed-in donor outside the
    audience still gets 404."""
    donor(1500, "fifteen@example.org")
    update = updates.create_update(title="Secret shoot", body="Only for you.", audience="updates-monthly",
                                   author=producer)
    db.session.commit()
    updates.publish_update(update.id, producer)
    db.session.commit()
    anon = app.test_client()
    for number in (update.id, 999999):
        resp = anon.get(f"/updates/{number}")
        html = resp.get_data(as_text=True)
        assert resp.status_code == 401 and "Sign in to read this update" in html
        assert "Secret shoot" not in html and "Only for you" not in html
        assert f"/login?next=/updates/{number}" in html or f"/login?next=%2Fupdates%2F{number}" in html
    zh = anon.get(f"/updates/{update.id}", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "登录后阅读这条动态" in zh


def test_an_update_written_in_chinese_too_reaches_each_donor_in_their_language(app, client, smtp, donor, producer,
                                                                             token_for, login_as, image_asset):
    """The producers may write an update's Chinese version beside its main text: a donor who reads
    Chinese gets it (mail, archive, page, API), the others the main text; without a version, the
    main text for everyone, marked as the language it is in."""
    from filmfund.rewards.donors import profile_for

    mei = donor(1500, "mei@example.org")
    donor(1500, "sam@example.org")
    profile_for(mei.id).language = "zh-Hans"  # as her pledge page, or her language switch, left it
    db.session.commit()
    smtp.envelopes.clear()  # the receipts
    headers = token_for(producer)
    image = f"![A still](asset:{image_asset().public_id})"
    update_id, doc = _publish_via_api(
        client, headers, title="Shoot day 12", body="We filmed in **Shenzhen**.", audience="updates-monthly",
        translations={"zh-Hans": {"title": "拍摄第十二天", "body": f"我们在**深圳**拍摄。\n\n{image}"}})
    assert doc["translations"] == {"zh-Hans": {"title": "拍摄第十二天", "body": f"我们在**深圳**拍摄。\n\n{image}"}}
    jobs.run_burst()
    wait_for(smtp, 2)
    mails = {m["To"]: m for m in smtp.messages()}
    assert mails["mei@example.org"]["Subject"] == "拍摄第十二天"
    zh_text = mails["mei@example.org"].get_body(("plain",)).get_content()
    zh_html = mails["mei@example.org"].get_body(("html",)).get_content()
    assert "我们在**深圳**拍摄。" in zh_text and "Shenzhen" not in zh_text
    # the title's underline is as wide as the title in a fixed-width font: two columns a character
    assert zh_text.splitlines()[:2] == ["拍摄第十二天", "=" * 12]
    assert "<strong>深圳</strong>" in zh_html and 'lang="zh-Hans"' in zh_html
    assert mails["sam@example.org"]["Subject"] == "Shoot day 12"
    assert "We filmed in **Shenzhen**." in mails["sam@example.org"].get_body(("plain",)).get_content()
    assert mails["sam@example.org"].get_body(("plain",)).get_content().splitlines()[:2] == ["Shoot day 12", "=" * 12]

    # The archive, the page and the API, each in the reader's language.
    login_as(client, mei)
    listing = client.get("/updates?lang=zh-Hans").get_data(as_text=True)
    assert "拍摄第十二天" in listing and "Shoot day 12" not in listing
    page = client.get(f"/updates/{update_id}?lang=zh-Hans").get_data(as_text=True)
    assert "<strong>深圳</strong>" in page and "Shenzhen" not in page
    # The image named in the Chinese version only is hers to see.
    src = re.search(r'<img[^>]+src="([^"]+)"', page.split('class="update-body"')[1]).group(1)
    assert client.get(src.replace("&amp;", "&")).status_code == 200
    english = client.get(f"/updates/{update_id}?lang=en").get_data(as_text=True)
    assert "<strong>Shenzhen</strong>" in english and "深圳" not in english
    zh_api = {"Accept-Language": "zh-CN", **token_for(mei)}  # a client of its own: no language cookie
    assert [i["title"] for i in app.test_client().get("/api/v1/updates", headers=zh_api).get_json()["items"]] \
        == ["拍摄第十二天"]

    # An update without a Chinese version: its main text for her too, marked as English.
    plain_id, _doc = _publish_via_api(client, headers, title="Edit begins", body="Soon.", audience="updates-monthly")
    page = login_as(client, mei).get(f"/updates/{plain_id}?lang=zh-Hans").get_data(as_text=True)
    assert '<div lang="en"><h1>Edit begins</h1>' in page


def test_a_half_written_or_unknown_version_is_refused_and_nothing_is_kept(client, producer, token_for):
    headers = token_for(producer)
    base = {"title": "T", "body": "B", "audience": "everyone"}
    half = client.post("/api/v1/updates", headers=headers,
                       json={**base, "translations": {"zh-Hans": {"title": "标题", "body": " "}}})
    assert half.status_code == 400 and half.get_json()["error"]["code"] == "invalid_body"
    assert "zh-Hans" in half.get_json()["error"]["message"]
    unknown = client.post("/api/v1/updates", headers=headers,
                          json={**base, "translations": {"fr": {"title": "Titre", "body": "Texte"}}})
    assert unknown.status_code == 400 and unknown.get_json()["error"]["code"] == "invalid_translations"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Update)) == 0


def test_the_producers_form_writes_and_keeps_the_chinese_version(client, producer, login_as):
    from tests.site.helpers import csrf_token

    login_as(client, producer)
    form = {"csrf_token": csrf_token(client, "/admin/updates"), "title": "Shoot day 12", "body": "Shenzhen.",
            "audience": "everyone", "title:zh-Hans": "拍摄第十二天", "body:zh-Hans": "深圳。"}
    created = client.post("/admin/updates", data=form)
    assert created.status_code == 303
    update = db.session.scalar(sa.select(Update))
    assert update.translations == {"zh-Hans": {"title": "拍摄第十二天", "body": "深圳。"}}
    page = client.get(created.headers["Location"]).get_data(as_text=True)
    assert 'id="preview-zh-Hans"' in page and "拍摄第十二天" in page
    assert 'name="title:zh-Hans" lang="zh-Hans" maxlength="200" value="拍摄第十二天"' in page
    # Emptied, the version goes: her readers get the main text.
    form.update({"csrf_token": csrf_token(client, created.headers["Location"]), "title:zh-Hans": "", "body:zh-Hans": ""})
    assert client.post(created.headers["Location"], data=form).status_code == 303
    db.session.expire_all()
    assert db.session.get(Update, update.id).translations == {}


def test_a_chinese_version_written_after_publishing_shows_at_once_and_mails_nobody_again(
        app, client, smtp, donor, producer, token_for, login_as):
    """A translator's work often comes after the mail went out: the version can still be added
    to a published update (the page and the API), shows in the archive, on its page and in the API
    at once, and sends nothing again; the main text and the audience stay what was mailed."""
    mei = donor(1500, "mei@example.org")
    smtp.envelopes.clear()  # the receipt
    headers = token_for(producer)
    update_id, _doc = _publish_via_api(client, headers, title="Shoot day 12", body="We filmed in **Shenzhen**.",
                                       audience="updates-monthly")
    jobs.run_burst()
    wait_for(smtp, 1)
    sent = db.session.scalar(sa.select(sa.func.count()).select_from(UpdateDelivery))

    # On the producer's page: the published update offers its versions, and keeps them.
    login_as(client, producer)
    page_url = f"/admin/updates/{update_id}"
    page = client.get(page_url).get_data(as_text=True)
    assert 'id="versions-heading"' in page and "Save draft" not in page
    half = {"csrf_token": csrf_token(client, page_url), "title:zh-Hans": "拍摄第十二天", "body:zh-Hans": " "}
    refused = client.post(f"{page_url}/versions", data=half)
    assert refused.status_code == 400 and "zh-Hans" in refused.get_data(as_text=True)
    assert 'value="拍摄第十二天"' in refused.get_data(as_text=True)  # what she typed is still there
    db.session.expire_all()
    assert db.session.get(Update, update_id).translations == {}
    saved = client.post(f"{page_url}/versions", data={**half, "body:zh-Hans": "我们在**深圳**拍摄。"})
    assert saved.status_code == 303
    db.session.expire_all()
    update = db.session.get(Update, update_id)
    assert update.translations == {"zh-Hans": {"title": "拍摄第十二天", "body": "我们在**深圳**拍摄。"}}
    assert (update.title, update.body, update.audience) == ("Shoot day 12", "We filmed in **Shenzhen**.",
                                                            "updates-monthly")
    assert 'id="preview-zh-Hans"' in client.get(page_url).get_data(as_text=True)

    # Her archive and the update's page in Chinese; nothing mailed again.
    login_as(client, mei)
    assert "拍摄第十二天" in client.get("/updates?lang=zh-Hans").get_data(as_text=True)
    assert "<strong>深圳</strong>" in client.get(f"/updates/{update_id}?lang=zh-Hans").get_data(as_text=True)
    jobs.run_burst()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UpdateDelivery)) == sent
    assert len(smtp.messages()) == 1

    # The API: replaced as a whole, {} removes them; a donor may not; an unknown language is refused.
    changed = client.put(f"/api/v1/updates/{update_id}/translations", headers=headers,
                         json={"translations": {"zh-Hans": {"title": "拍摄第十二天（修订）", "body": "深圳。"}}})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["translations"] == {"zh-Hans": {"title": "拍摄第十二天（修订）", "body": "深圳。"}}
    assert changed.get_json()["title"] == "Shoot day 12" and changed.get_json()["state"] == "published"
    mei_token = token_for(mei)
    g.pop("api_user", None)  # this test's app context outlives its requests; in production each has its own g
    assert client.put(f"/api/v1/updates/{update_id}/translations", headers=mei_token,
                      json={"translations": {}}).status_code == 403
    unknown = client.put(f"/api/v1/updates/{update_id}/translations", headers=headers,
                         json={"translations": {"fr": {"title": "Titre", "body": "Texte"}}})
    assert unknown.status_code == 400 and unknown.get_json()["error"]["code"] == "invalid_translations"
    assert client.put(f"/api/v1/updates/{update_id}/translations", headers=headers,
                      json={"translations": {}}).get_json()["translations"] == {}
    assert client.put("/api/v1/updates/999999/translations", headers=headers,
                      json={"translations": {}}).status_code == 404
    assert len(smtp.messages()) == 1
    from filmfund.audit import AuditEntry  # each producer's write is in the audit log, no refused one
    actions = db.session.scalars(sa.select(AuditEntry.action)).all()
    assert actions.count("write.comms.set_update_versions") == 1  # the refused one wrote nothing
    assert actions.count("write.comms_api.set_update_versions") == 2


def test_the_campaign_pages_latest_updates_are_in_the_readers_language(client, producer, token_for):
    """The campaign page lists the newest public updates as the archive does: each in the reader's
    language when its producers wrote that version (found by the every-page check in Chinese)."""
    _publish_via_api(client, token_for(producer), title="Shoot day 12", body="Shenzhen.", audience="everyone",
                     translations={"zh-Hans": {"title": "拍摄第十二天", "body": "深圳。"}})
    _publish_via_api(client, token_for(producer), title="Edit begins", body="Soon.", audience="everyone")
    zh = client.get("/?lang=zh-Hans").get_data(as_text=True).split('id="public-updates"')[1].split("</ul>")[0]
    assert "拍摄第十二天" in zh and "Shoot day 12" not in zh
    assert 'lang="en">Edit begins</a>' in zh  # no Chinese version: the main text, marked as English
    en = client.get("/?lang=en").get_data(as_text=True).split('id="public-updates"')[1].split("</ul>")[0]
    assert "Shoot day 12" in en and "拍摄第十二天" not in en


def test_an_invisible_or_reversed_text_is_no_update(app, client, producer, token_for):
    """What prints nothing a reader could check is taken out (filmfund/typed.py) before the
    "empty" check: an update mailed to every donor never has an invisible or backwards subject.
    The body keeps its Markdown lines and indents."""
    headers = token_for(producer)
    for body, code in [({"title": "\u200b"}, "invalid_title"), ({"title": "\u202e\u2066"}, "invalid_title"),
                       ({"body": "\u200b\u200b"}, "invalid_body"), ({"body": "\u202e\n\ufeff\t\n"}, "invalid_body"),
                       ({"translations": {"zh-Hans": {"title": "\u200b", "body": "正文"}}}, "invalid_title"),
                       ({"translations": {"zh-Hans": {"title": "标题", "body": "\u2060"}}}, "invalid_body")]:
        resp = client.post("/api/v1/updates", json={"title": "t", "body": "b", "audience": "everyone", **body},
                           headers=headers)
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == code, body
    assert db.session.scalar(sa.select(sa.func.count(Update.id))) == 0
    resp = client.post("/api/v1/updates", json={"title": "\u202eevil\u200b news", "audience": "everyone",
                                                "body": "# Shot\u200b list\r\n\n    code\n\tcell\u202e  \nend"},
                       headers=headers)
    assert resp.status_code == 201
    update = db.session.get(Update, resp.get_json()["id"])
    assert (update.title, update.body) == ("evil news", "# Shot list\n\n    code\n\tcell  \nend")


def _mailed_update(app, smtp, **kw):
    """Publish an update and return the one mail it sent (its plain text and HTML parts)."""
    smtp.envelopes.clear()  # the receipts
    update = updates.create_update(**kw)
    db.session.commit()
    updates.publish_update(update.id)
    db.session.commit()
    jobs.run_burst()
    wait_for(smtp, 1)
    [msg] = smtp.messages()
    return update, msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def test_a_site_link_in_an_update_works_from_the_mail(app, client, smtp, donor):
    """A mail is read from no page: `/account` and `#dinner` are made absolute on the update's own
    page, on the public URL, in both parts; the web archive keeps them as written."""
    donor(2000, "sam@example.org")
    app.config["PUBLIC_URL"] = "https://deadhearts.example"
    body = ("See [your account page](/account) for your rewards, [below](#dinner), "
            "[the press](https://press.example/a) and [us](mailto:crew@deadhearts.example).")
    update, text, html = _mailed_update(app, smtp, title="Your rewards", body=body, audience="everyone")
    page = f"https://deadhearts.example/updates/{update.id}"
    hrefs = re.findall(r'href="([^"]+)"', html)
    assert "https://deadhearts.example/account" in hrefs and f"{page}#dinner" in hrefs
    assert "https://press.example/a" in hrefs and "mailto:crew@deadhearts.example" in hrefs
    assert all(h.startswith(("https://", "mailto:")) for h in hrefs), hrefs
    assert "[your account page](https://deadhearts.example/account)" in text and f"[below]({page}#dinner)" in text
    archive = client.get(f"/updates/{update.id}").get_data(as_text=True)
    assert 'href="/account"' in archive and 'href="#dinner"' in archive


def test_a_library_image_in_a_chinese_update_is_not_called_image_in_english(app, smtp, image_asset):
    """The plain text names a library image by its caption, said to be an image in the donor's
    language (needs the merged zh-Hans catalogue: "[image: %(caption)s]")."""
    with app.test_request_context("/", headers={"Cookie": "lang=zh-Hans"}):  # her first gift, on a Chinese page
        pledge = make_pledge(amount=2000, email="mei@example.org")
    complete_test_checkout(pledge.id, "paid")
    still = image_asset("Shenzhen")
    _update, text, _html = _mailed_update(
        app, smtp, title="Day 12", body=f"We filmed.\n\n![Shenzhen street](asset:{still.public_id})", audience="donors",
        translations={"zh-Hans": {"title": "拍摄第十二天", "body": f"我们在深圳拍摄。\n\n![深圳街头](asset:{still.public_id})"}})
    assert "【图片：深圳街头】" in text and "image" not in text.lower()


def test_who_an_update_is_for_is_said_in_the_readers_language(app, client, donor, producer, token_for, login_as):
    """The archive and an update's page named its audience by the producers' English menu label
    ("仅限Monthly production updates by email (Follower, US$15+)", "仅限All donors") on a Chinese
    page, where the account page and the receipt name the same reward in Chinese. A donor reads the
    reward and its tier by their names in her language; the producers' pages keep their labels."""
    reader = donor(1500, "mei@example.org")  # $15: the monthly updates
    headers = token_for(producer)
    monthly, _doc = _publish_via_api(client, headers, title="Shoot day 12", body="Night market.",
                                     audience="updates-monthly")
    everyone_who_gave, _doc = _publish_via_api(client, headers, title="Thank you", body="All of you.",
                                               audience="donors")
    login_as(client, reader)
    for lang, reward, tier, english in (
            ("zh-Hans", "每月一封邮件，分享拍摄动态", "关注者", None),
            ("en", "Monthly production updates by email", "Follower", "for donors with")):
        listing = client.get(f"/updates?lang={lang}").get_data(as_text=True)
        page = client.get(f"/updates/{monthly}").get_data(as_text=True)
        [label] = re.findall(r"· ([^<]*)</p>", page)
        assert reward in label and tier in label and label in listing, (lang, label)
        assert "Monthly production updates by email (Follower" not in listing + page  # the producers' label
        assert "All donors" not in client.get(f"/updates/{everyone_who_gave}").get_data(as_text=True)
        if english:
            assert label.startswith(english), label
        else:
            assert "Follower" not in label and "Monthly" not in label, label
    login_as(client, producer)
    admin = client.get(f"/admin/updates/{monthly}?lang=en").get_data(as_text=True)
    assert "for Monthly production updates by email (Follower, $15+)" in admin
    assert "All donors" in client.get("/admin/updates?lang=en").get_data(as_text=True)


def test_the_footer_names_the_mails_topic_without_doubled_brackets(app, smtp, donor):
    """The footer read "(News from the production (updates for everyone and for all donors))"."""
    donor(100, "one@example.org")
    _update, text, html = _mailed_update(app, smtp, title="We reached 50%", body="Thank you.", audience="everyone")
    assert ("You receive this as part of your support of “Living with Dead Hearts: The Search for China's Kidnapped "
            "Children”: News from the production (updates for everyone and for all donors).") in text
    assert "donors))" not in text and "donors))" not in html and "donors)." in html
