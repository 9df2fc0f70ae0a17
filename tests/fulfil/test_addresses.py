"""The address flow of a DVD, from payment to the donor's "it arrived": Stripe Checkout's address
collection (and the test-mode checkout's), the mailed survey with reminders, the account page,
and the item states the producers move; refunds before and after shipping."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.fulfil import fulfilment, statement, tasks
from filmfund.fulfil.models import FulfilmentItem, ItemState
from filmfund.rewards import donors, entitlements, pledges
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.models import DonorSettingsRequest, Reward, ShippingAddress
from tests.helpers import make_pledge, spreadsheet_csv
from tests.rewards.conftest import charge_obj, session_obj
from tests.site.helpers import CSRF_RE, csrf_token, pay

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "stripe" / "fixtures3.json"
ADDRESS = {"name": "Mei Chen", "line1": "12 Rue des Lilas", "line2": "", "city": "Lyon", "state": "",
           "postal_code": "69003", "country": "FR"}


def _user(email):
    from filmfund.auth.services import find_user

    return find_user(email)


def _items(email) -> list[FulfilmentItem]:
    user = _user(email)
    fulfilment.sync_items(current_campaign(), user.id)
    db.session.commit()
    return list(db.session.scalars(sa.select(FulfilmentItem).where(FulfilmentItem.user_id == user.id)
                                   .order_by(FulfilmentItem.reward_id)))


def _dvd(email) -> FulfilmentItem:
    dvd = db.session.scalar(sa.select(Reward).where(Reward.key == "dvd"))
    return next(i for i in _items(email) if i.reward_id == dvd.id)


def test_checkout_asks_stripe_for_the_shipping_address_only_at_a_dvd_tier(campaign, fake_stripe):
    make_pledge(amount=5000, email="dvd@example.org")
    make_pledge(amount=3000, email="stills@example.org")
    make_pledge(amount=10000, email="none@example.org", rewards_opt_out=True)
    forms = [r["form"] for r in fake_stripe.requests if r["path"] == "/v1/checkout/sessions"]
    assert len(forms) == 3
    dvd, stills, none = forms
    countries = [v for k, v in dvd.items() if k.startswith("shipping_address_collection[allowed_countries]")]
    assert "FR" in countries and "CN" in countries and "US" in countries and "IR" not in countries
    assert not any(k.startswith("shipping_address_collection") for k in stills)
    assert not any(k.startswith("shipping_address_collection") for k in none)


def test_the_address_stripe_collected_is_kept_from_the_completed_session(campaign, stripe_events, client):
    """A checkout.session.completed shaped as in Stripe's own fixtures (collected_information)."""
    pledge = make_pledge(amount=5000, email="mei@example.org")
    session = json.loads(FIXTURES.read_text())["resources"]["checkout.session"]
    session.update(session_obj(pledge.id, 5000, email="mei@example.org"))
    session["collected_information"]["shipping_details"] = {
        "name": "Mei Chen", "address": {"line1": "12 Rue des Lilas", "line2": None, "city": "Lyon",
                                        "state": None, "postal_code": "69003", "country": "FR"}}
    stripe_events.send("checkout.session.completed", session)
    address = db.session.get(ShippingAddress, _user("mei@example.org").id)
    assert (address.name, address.city, address.country, address.source) == ("Mei Chen", "Lyon", "FR", "checkout")
    # An older API version's `shipping_details` is read too; a later gift's new address waits for
    # the email owner's confirmation (anyone can pay with their email) and changes nothing yet.
    again = make_pledge(amount=5000, email="mei@example.org")
    old = session_obj(again.id, 5000, email="mei@example.org")
    old["shipping_details"] = {"name": "Mei Chen", "address": {"line1": "1 Main St", "city": "Boston",
                                                                "state": "MA", "postal_code": "02110",
                                                                "country": "US"}}
    stripe_events.send("checkout.session.completed", old)
    db.session.expire_all()
    assert db.session.get(ShippingAddress, _user("mei@example.org").id).city == "Lyon"
    [waiting] = db.session.scalars(sa.select(DonorSettingsRequest).where(
        DonorSettingsRequest.user_id == _user("mei@example.org").id)).all()
    assert json.loads(waiting.changes)["shipping_address"]["city"] == "Boston"


def test_an_address_keeps_a_rare_character_of_a_name_as_written(campaign, stripe_events):
    """A name on the parcel with a character of CJK Extension H (Unicode 15, newer than this
    Python's tables) reaches the label as written: a missing character misaddresses a parcel."""
    pledge = make_pledge(amount=5000, email="wang@example.org")
    session = session_obj(pledge.id, 5000, email="wang@example.org")
    session["collected_information"] = {"shipping_details": {
        "name": "王\U00031350明", "address": {"line1": "人民路 8 号", "line2": None, "city": "昆明",
                                            "state": "云南", "postal_code": "650000", "country": "CN"}}}
    stripe_events.send("checkout.session.completed", session)
    address = db.session.get(ShippingAddress, _user("wang@example.org").id)
    assert (address.name, address.line1, address.city) == ("王\U00031350明", "人民路 8 号", "昆明")


def test_a_bad_collected_address_never_fails_the_payment(campaign, stripe_events):
    pledge = make_pledge(amount=5000, email="odd@example.org")
    obj = session_obj(pledge.id, 5000, email="odd@example.org")
    obj["collected_information"] = {"shipping_details": {"name": "X", "address": {"line1": "", "country": "ZZ"}}}
    assert stripe_events.send("checkout.session.completed", obj) == "processed"
    db.session.expire_all()
    assert pledges.get_pledge(pledge.id).state.value == "paid"
    assert db.session.get(ShippingAddress, _user("odd@example.org").id) is None


def test_test_mode_checkout_collects_the_address_for_a_dvd_tier(campaign, client):
    pledge = make_pledge(amount=5000, email="page@example.org")
    html = client.get(f"/checkout/test/{pledge.id}").get_data(as_text=True)
    assert 'id="checkout-shipping"' in html
    token = CSRF_RE.search(html).group(1)
    bad = client.post(f"/checkout/test/{pledge.id}", data={"csrf_token": token, "outcome": "paid",
                                                          "ship_name": "Page", "ship_country": "FR"})
    assert bad.status_code == 400 and "required" in bad.get_data(as_text=True).lower()
    db.session.expire_all()
    assert pledges.get_pledge(pledge.id).state.value == "pending"  # nothing half-done
    data = {"csrf_token": token, "outcome": "paid", **{f"ship_{k}": v for k, v in ADDRESS.items()}}
    assert client.post(f"/checkout/test/{pledge.id}", data=data).status_code == 303
    db.session.expire_all()
    address = db.session.get(ShippingAddress, _user("page@example.org").id)
    assert address.line1 == "12 Rue des Lilas" and address.source == "checkout"
    small = make_pledge(amount=3000, email="small@example.org")
    assert 'id="checkout-shipping"' not in client.get(f"/checkout/test/{small.id}").get_data(as_text=True)


def _survey_links(outbox, email):
    return [re.search(r"(/rewards/survey/\S+)", m.get_body(("plain",)).get_content()).group(1)
            for m in outbox() if m["To"] == email and "survey" in m.get_body(("plain",)).get_content()]


def test_address_survey_with_reminders_then_the_dvd_ships_and_arrives(campaign, client, login_as, make_user,
                                                                      outbox, producer):
    # Two gifts reach the DVD tier together: Checkout never asked, so the survey does.
    pay(3000, "ana@example.org", credit_name="Ana")
    pay(2000, "ana@example.org")
    pay(5000, "has@example.org")
    fulfilment.save_address(_user("has@example.org"), ADDRESS, source="account")
    db.session.commit()
    pay(1500, "small@example.org")
    now = utcnow()
    assert tasks.survey_mailing(campaign, now).sent == 1  # not the one with an address, nor $15
    assert tasks.survey_mailing(campaign, now + timedelta(days=1)).sent == 0  # no reminder yet
    assert tasks.survey_mailing(campaign, now + timedelta(days=8)).sent == 1  # the reminder
    mails = [m for m in outbox() if m["To"] == "ana@example.org" and "receipt" not in m["Subject"]]
    assert [m["Subject"] for m in mails] == ["Where should we send your rewards?",
                                             "Reminder: where should we send your rewards?"]
    link = _survey_links(outbox, "ana@example.org")[-1]

    # The account page asks for the address as the next step.
    ana = _user("ana@example.org")
    page = login_as(client, ana).get("/account").get_data(as_text=True)
    assert "Give your shipping address" in page and "A DVD of the finished film" in page
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})

    # The survey link works without signing in; a refused address is said on the page, nothing saved.
    anon = client.application.test_client()
    html = anon.get(link).get_data(as_text=True)
    assert 'id="address-form"' in html
    token = CSRF_RE.search(html).group(1)
    bad = anon.post(link, data={"csrf_token": token, "form": "address", **ADDRESS, "country": "XX"})
    assert bad.status_code == 400 and "country" in bad.get_data(as_text=True).lower()
    assert db.session.get(ShippingAddress, ana.id) is None
    ok = anon.post(link, data={"csrf_token": token, "form": "address", **ADDRESS, "name": "Ana Lima"})
    assert ok.status_code == 200 and 'id="survey-done"' in ok.get_data(as_text=True)
    assert db.session.get(ShippingAddress, ana.id).name == "Ana Lima"
    assert tasks.survey_mailing(campaign, now + timedelta(days=30)).sent == 0  # answered: no more mail
    assert anon.get("/rewards/survey/" + link.rsplit("/", 1)[1][:-3] + "xyz").status_code == 404

    # Owed until the DVD exists; then in production, shipped with a tracking note, received.
    item = _dvd("ana@example.org")
    assert item.state == ItemState.OWED
    producer_client = login_as(client.application.test_client(), producer)
    tok = csrf_token(producer_client, "/admin/rewards/dvd")
    resp = producer_client.post(f"/admin/rewards/items/{item.id}", data={"csrf_token": tok, "action": "move",
                                                                        "to": "in_production"})
    assert resp.status_code == 409  # refused (not available), on the reward's page again
    assert "Mark the reward available first" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(FulfilmentItem, item.id).state == ItemState.OWED
    producer_client.post("/admin/rewards/dvd/schedule", data={"csrf_token": tok, "available": "1",
                                                             "due_at": "2027-06-30"})
    producer_client.post(f"/admin/rewards/items/{item.id}", data={"csrf_token": tok, "action": "move",
                                                                  "to": "in_production"})
    db.session.expire_all()
    assert db.session.get(FulfilmentItem, item.id).state == ItemState.IN_PRODUCTION

    packing = producer_client.get("/admin/rewards/packing-list.csv?reward=dvd")
    rows = spreadsheet_csv(packing).splitlines()
    assert rows[0].startswith("item_id,reward,state,name")
    assert any(r.startswith(f"{item.id},dvd,in_production,Ana Lima,12 Rue des Lilas") for r in rows)
    assert "@" not in packing.get_data(as_text=True)

    # The donor can still change the address; shipping needs a tracking note.
    fulfilment.save_address(ana, {**ADDRESS, "name": "Ana Lima", "line1": "3 Quai Saint-Vincent"}, source="account")
    db.session.commit()
    with __import__("pytest").raises(Exception, match="tracking"):
        fulfilment.move_item(item.id, "shipped", tracking="  ")
    producer_client.post(f"/admin/rewards/items/{item.id}", data={"csrf_token": tok, "action": "move",
                                                                  "to": "shipped", "tracking": "La Poste 6A123"})
    db.session.expire_all()
    shipped = db.session.get(FulfilmentItem, item.id)
    assert shipped.state == ItemState.SHIPPED and shipped.tracking == "La Poste 6A123"
    assert "3 Quai Saint-Vincent" in shipped.ship_to
    # Everything shipped: the address is locked.
    with __import__("pytest").raises(Exception, match="shipped"):
        fulfilment.save_address(ana, ADDRESS, source="account")

    donor = login_as(client.application.test_client(), ana)
    page = donor.get("/account").get_data(as_text=True)
    assert "La Poste 6A123" in page and "It arrived" in page
    other = login_as(client.application.test_client(), _user("has@example.org"))
    other_tok = csrf_token(other, "/account")
    assert other.post(f"/account/items/{item.id}/received", data={"csrf_token": other_tok}).status_code == 404
    donor_tok = csrf_token(donor, "/account")
    assert donor.post(f"/account/items/{item.id}/received", data={"csrf_token": donor_tok}).status_code == 303
    db.session.expire_all()
    assert db.session.get(FulfilmentItem, item.id).state == ItemState.RECEIVED
    assert "Received" in donor.get("/account").get_data(as_text=True)


def test_refund_before_shipping_revokes_and_after_shipping_is_flagged(campaign, stripe_events, client, login_as,
                                                                     producer):
    before = make_pledge(amount=5000, email="before@example.org")
    stripe_events.send("checkout.session.completed", session_obj(before.id, 5000, email="before@example.org"))
    after = make_pledge(amount=5000, email="after@example.org")
    stripe_events.send("checkout.session.completed", session_obj(after.id, 5000, email="after@example.org"))
    for email in ("before@example.org", "after@example.org"):
        fulfilment.save_address(_user(email), ADDRESS, source="account")
    dvd = db.session.scalar(sa.select(Reward).where(Reward.key == "dvd"))
    fulfilment.mark_available(dvd.id)
    db.session.commit()
    item_before, item_after = _dvd("before@example.org"), _dvd("after@example.org")
    fulfilment.move_item(item_after.id, "in_production")
    fulfilment.move_item(item_after.id, "shipped", tracking="DHL 42")
    db.session.commit()
    counts = {q.reward.key: q.counts for q in statement.queues(campaign)}
    db.session.commit()
    assert counts["dvd"] == {"owed": 1, "in_progress": 1, "done": 0, "late": 0}

    stripe_events.send("charge.refunded", charge_obj(f"pi_{before.id}", 5000, 5000))
    stripe_events.send("charge.refunded", charge_obj(f"pi_{after.id}", 5000, 5000))
    db.session.expire_all()
    # Before shipping: revoked, out of the queue, and it cannot be sent any more.
    with __import__("pytest").raises(Exception, match="revoked"):
        fulfilment.move_item(item_before.id, "in_production")
    assert {q.reward.key: q.counts for q in statement.queues(campaign)}["dvd"]["owed"] == 0
    db.session.commit()
    page = login_as(client, _user("before@example.org")).get("/account").get_data(as_text=True)
    assert "A DVD of the finished film" not in page
    # After shipping: flagged for the producers, not lost.
    flagged = fulfilment.refunded_after_shipping(campaign)
    assert [f["item"].id for f in flagged] == [item_after.id]
    # Even when a producer had marked the entitlement delivered on the dashboard (a refund does not
    # revoke a delivered reward), a parcel sent to a donor now below the tier is flagged.
    marked = make_pledge(amount=5000, email="marked@example.org")
    stripe_events.send("checkout.session.completed", session_obj(marked.id, 5000, email="marked@example.org"))
    fulfilment.save_address(_user("marked@example.org"), ADDRESS, source="account")
    db.session.commit()
    item_marked = _dvd("marked@example.org")
    fulfilment.move_item(item_marked.id, "in_production")
    fulfilment.move_item(item_marked.id, "shipped", tracking="DHL 43")
    entitlements.set_entitlement_status(item_marked.entitlement_id, "fulfilled")
    db.session.commit()
    stripe_events.send("charge.refunded", charge_obj(f"pi_{marked.id}", 5000, 5000))
    flagged = {f["item"].id for f in fulfilment.refunded_after_shipping(campaign)}
    assert flagged == {item_after.id, item_marked.id}
    html = login_as(client.application.test_client(), producer).get("/admin/rewards").get_data(as_text=True)
    assert 'id="flagged"' in html and "after@example.org" in html and "DHL 42" in html


def _collected(session: dict, line1: str, city: str) -> dict:
    session["collected_information"] = {"shipping_details": {"name": "Ana", "address": {
        "line1": line1, "city": city, "postal_code": "69001", "country": "FR"}}}
    return session


def test_a_donor_who_crosses_a_tier_after_their_dvd_shipped_confirms_the_new_address(campaign, stripe_events,
                                                                                    client):
    """The DVD went out and arrived; a second gift reaches the signed DVD and the letter, and its
    Checkout collected a new address, which waits for the email owner's confirmation. Confirmed, it
    is kept: the new rewards are still to be posted, though no page has made their items yet (the
    lock used to count only the items already made). The parcel that left keeps its address."""
    first = make_pledge(amount=5000, email="ana@example.org")
    stripe_events.send("checkout.session.completed",
                       _collected(session_obj(first.id, 5000, email="ana@example.org"), "1 Old Street", "Lyon"))
    fulfilment.mark_available(db.session.scalar(sa.select(Reward.id).where(Reward.key == "dvd")))
    db.session.commit()
    dvd = _dvd("ana@example.org")
    fulfilment.move_item(dvd.id, "in_production")
    fulfilment.move_item(dvd.id, "shipped", tracking="La Poste 1")
    fulfilment.confirm_received(_user("ana@example.org"), dvd.id)
    db.session.commit()
    assert fulfilment.address_refusal(_user("ana@example.org").id) == "address_locked"  # all held has gone out

    again = make_pledge(amount=5000, email="ana@example.org")
    stripe_events.send("checkout.session.completed",
                       _collected(session_obj(again.id, 5000, email="ana@example.org"), "9 New Road", "Paris"))
    db.session.expire_all()
    request = db.session.scalar(sa.select(DonorSettingsRequest).where(
        DonorSettingsRequest.user_id == _user("ana@example.org").id))
    path = "/settings/confirm/" + donors.confirmation_token(request)
    token = CSRF_RE.search(client.get(path).get_data(as_text=True)).group(1)
    resp = client.post(path, data={"csrf_token": token})
    assert resp.status_code == 200, resp.get_data(as_text=True)[-400:]
    db.session.expire_all()
    assert db.session.get(ShippingAddress, _user("ana@example.org").id).line1 == "9 New Road"
    assert "1 Old Street" in db.session.get(FulfilmentItem, dvd.id).ship_to


def test_reminders_carry_one_click_unsubscribe_and_respect_it(campaign, client, outbox):
    from filmfund.rewards import mail_prefs

    pay(5000, "quiet@example.org")
    pay(5000, "loud@example.org")
    mail_prefs.opt_out(_user("quiet@example.org").id, "reminders")
    db.session.commit()
    assert tasks.survey_mailing(campaign).sent == 1
    survey = [m for m in outbox() if "send your rewards" in m["Subject"]]
    assert [m["To"] for m in survey] == ["loud@example.org"]
    assert survey[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = survey[0]["List-Unsubscribe"].strip("<>")
    path = link.split("://", 1)[1].split("/", 1)[1]
    assert client.post("/" + path, data={"List-Unsubscribe": "One-Click"}).status_code in (200, 303)
    assert "reminders" in mail_prefs.opted_out(_user("loud@example.org").id)
    assert tasks.survey_mailing(campaign, utcnow() + timedelta(days=8)).sent == 0


def test_country_names_in_the_readers_language():
    from filmfund.fulfil.countries import ISO_COUNTRIES, country_choices, country_name

    assert country_name("DE", "en") == "Germany" and country_name("DE", "zh-Hans") == "德国"
    assert country_name("TW", "en") == "Taiwan" and country_name("KR", "en") == "South Korea"
    assert country_name("XK", "en") == "Kosovo"  # not in pycountry: CLDR's name
    for lang in ("en", "zh-Hans"):
        choices = country_choices(lang)
        assert {code for code, _ in choices} == ISO_COUNTRIES and len(choices) == len(ISO_COUNTRIES)
    english = [name for _, name in country_choices("en")]
    assert english.index("Åland Islands") < english.index("Albania")  # accents do not send Å to the end


def test_erasing_a_donor_blanks_their_parcels_and_drops_their_credit_proof(campaign):
    """Erasure is rewards' use case; fulfil's part (its rows about the donor) runs through the signal
    fulfil connects at init_app (rewards never imports fulfil): this proves the part still runs."""
    from filmfund.fulfil import credits
    from filmfund.fulfil.models import CreditProof
    from filmfund.rewards import donor_data

    pay(10000, "erase@example.org", credit_name="Ana Erase")
    pay(10000, "keep@example.org", credit_name="Bo Keep")
    for email in ("erase@example.org", "keep@example.org"):
        for item in _items(email):  # as a shipped, signed DVD with its letter would hold them
            item.ship_to, item.dedication, item.letter = f"1 Rue {email}", "For you", f"Dear {email}"
            item.tracking = f"La Poste 6A1 to {email}"  # a carrier's key to where the parcel went
        credits.approve_proof(_user(email), campaign)
    db.session.commit()
    erased, kept = _user("erase@example.org"), _user("keep@example.org")

    donor_data.erase_donor(erased)
    db.session.commit()
    db.session.expire_all()

    def rows(user):
        return [(i.ship_to, i.dedication, i.letter, i.tracking) for i in db.session.scalars(
            sa.select(FulfilmentItem).where(FulfilmentItem.user_id == user.id))]

    assert rows(erased) and all(r == ("", "", "", "") for r in rows(erased))  # the items stay, owed or sent
    assert db.session.get(CreditProof, erased.id) is None
    assert all(r == ("1 Rue keep@example.org", "For you", "Dear keep@example.org", "La Poste 6A1 to keep@example.org")
               for r in rows(kept))
    assert db.session.get(CreditProof, kept.id) is not None


def test_a_given_or_changed_address_is_told_to_the_donor_in_their_language(campaign, client, login_as, outbox,
                                                                          app):
    """A forwarded survey mail (its link lives 60 days) or a signed-in browser could send the
    parcels elsewhere: the donor hears of the first address and of each change, once it is kept,
    without the address in the mail. The same one again is no change to tell."""
    from tests.worker import run_worker

    pay(5000, "mei@example.org")
    user = _user("mei@example.org")
    donor = login_as(client, user)
    donor.get("/account?lang=zh-Hans")  # kept on her profile: her mails are in Chinese

    def post(**changes):
        resp = donor.post("/account/address", data={"csrf_token": csrf_token(donor, "/account/address"),
                                                     **ADDRESS, **changes})
        assert resp.status_code in (200, 303), resp.get_data(as_text=True)[:500]
        run_worker(app)
        return [m for m in outbox() if m["To"] == "mei@example.org" and "receipt" not in m["Subject"].lower()
                and "收据" not in m["Subject"]]

    [given] = post()  # the first address
    text = given.get_body(("plain",)).get_content()
    assert given["Subject"] == "您的收货地址已保存" and "/account/address" in text
    assert "Rue des Lilas" not in text and "Lyon" not in text
    assert len(post()) == 1  # the same again: nothing more
    mails = post(line1="1 Stranger Street", city="Elsewhere")
    assert len(mails) == 2
    changed = next(m for m in mails if m["Subject"] != given["Subject"])
    text = changed.get_body(("plain",)).get_content()
    assert changed["Subject"] == "您的收货地址已更改" and "/account/address" in text
    assert "Stranger" not in text and "Elsewhere" not in text  # where to, only on the page
    # A refused change (nothing kept) tells nothing.
    resp = donor.post("/account/address", data={"csrf_token": csrf_token(donor, "/account/address"),
                                                **ADDRESS, "country": "ZZ"})
    assert resp.status_code == 400
    run_worker(app)
    assert len([m for m in outbox() if m["Subject"] == "您的收货地址已更改"]) == 1


def test_a_first_address_given_through_the_survey_link_is_told_to_the_donor(campaign, client, outbox, app):
    """Whoever holds a forwarded survey mail could give the first address of a donor who has none
    yet: the parcels would go there and the reminders stop (the donor "has an address"). The
    donor hears of it, as of a change, without the address."""
    from tests.worker import run_worker

    pay(5000, "dvd@example.org")  # $50: a DVD, no address yet
    user = _user("dvd@example.org")
    link = re.sub(r"^https?://[^/]+", "", fulfilment.survey_link(user))
    token = CSRF_RE.search(client.get(link).get_data(as_text=True)).group(1)
    run_worker(app)
    before = {m["Message-ID"] for m in outbox()}
    resp = client.post(link, data={"csrf_token": token, "form": "address", **ADDRESS, "name": "Someone Else"})
    assert resp.status_code == 200 and 'id="survey-done"' in resp.get_data(as_text=True)
    run_worker(app)
    [notice] = [m for m in outbox() if m["Message-ID"] not in before]
    text = notice.get_body(("plain",)).get_content()
    assert notice["To"] == "dvd@example.org" and notice["Subject"] == "Your shipping address was saved"
    assert "/account/address" in text and "put your own address back" in text
    assert "Someone Else" not in text and "Lilas" not in text


def test_the_packing_list_names_the_parcels_still_without_an_address(campaign, stripe_events, client, login_as,
                                                                      producer):
    """A parcel in production for a donor who gave no address yet is listed, its address cells
    empty and its country saying so; the one with an address reads it whole."""
    for email in ("has@example.org", "none@example.org"):
        p = make_pledge(amount=5000, email=email)
        stripe_events.send("checkout.session.completed", session_obj(p.id, 5000, email=email))
    fulfilment.save_address(_user("has@example.org"), ADDRESS, source="account")
    fulfilment.mark_available(db.session.scalar(sa.select(Reward.id).where(Reward.key == "dvd")))
    db.session.commit()
    has, none = _dvd("has@example.org"), _dvd("none@example.org")
    for item in (has, none):
        fulfilment.move_item(item.id, "in_production")
    db.session.commit()
    packing = login_as(client, producer).get("/admin/rewards/packing-list.csv")
    rows = {int(r[0]): r for r in list(csv.reader(io.StringIO(spreadsheet_csv(packing))))[1:]}
    assert rows[none.id][1:] == ["dvd", "in_production", "", "", "", "", "", "", "NO ADDRESS YET", "", "", ""]
    assert rows[has.id][1:10] == ["dvd", "in_production", ADDRESS["name"], ADDRESS["line1"], ADDRESS.get("line2", ""),
                                  ADDRESS["city"], ADDRESS.get("state", ""), ADDRESS["postal_code"], ADDRESS["country"]]
