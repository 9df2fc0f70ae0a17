"""The donor's entitlement statement (every reward, its state, the next step) and the producers'
queues per reward: counts from one aggregate query, whatever the number of donors, paginated."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.fulfil import credits, fulfilment, statement
from filmfund.rewards.models import Reward
from tests.site.helpers import pay


def _user(email):
    from filmfund.auth.services import find_user

    return find_user(email)


def test_statement_lists_every_reward_with_its_next_step(campaign, client, login_as):
    pay(100000, "big@example.org", credit_name="Big Giver")
    big = _user("big@example.org")
    login_as(client, big)
    page = client.get("/account").get_data(as_text=True)
    for title in ("Your name in the end credits", "The DVD signed",
                  "A personal thank-you letter", "Executive Producer credit", "A dinner invitation",
                  "Early access to the finished film"):
        assert title in page, title
    steps = page.split('id="next-steps"')[1].split("</div>")[0]
    assert "Give your shipping address" in steps and "Confirm your Executive Producer credit" in steps
    assert steps.count("Give your shipping address") == 1  # one step for two parcels
    with client.application.test_request_context():
        st = statement.rewards_statement(big)
    kinds = {row["key"]: row["state"] for row in st["rows"]}
    # nothing published for the wallpapers yet: not "In your downloads" above an empty list
    assert kinds["dvd-signed"] == "Owed" and kinds["wallpapers"] == "Not published yet"
    assert "dvd" not in kinds  # the DVD is sent signed: one DVD, not a second unsigned one
    assert "Your downloads" not in page and "Nothing to download" not in page
    assert kinds["updates-monthly"] == "By email"
    assert kinds["dinner-invitation"] == "Invitation to come"
    assert "Ask your questions" in steps

    # rewards-comms' states show through: an experience proposed asks for an RSVP; a question asked.
    from filmfund.comms import invitations, questions

    invitations.create_experience(reward_key="dinner-invitation", title="Dinner in Shenzhen")
    questions.submit_question(big, "How did you keep searching for so long?")
    page = client.get("/account").get_data(as_text=True)
    steps = page.split('id="next-steps"')[1].split("</div>")[0]
    assert "Answer the invitation (RSVP)" in steps and "Ask your questions" not in steps
    with client.application.test_request_context():
        kinds = {row["key"]: row["state"] for row in statement.rewards_statement(big)["rows"]}
    assert kinds["dinner-invitation"] == "Invited" and kinds["interview-questions"] == "0 of 1 answered"

    # The address given (with a dedication for the signed DVD), the step is gone.
    from tests.site.helpers import csrf_token

    tok = csrf_token(client, "/account/address")
    resp = client.post("/account/address", data={"csrf_token": tok, "name": "Big Giver", "line1": "1 Road",
                                                  "city": "Oslo", "country": "NO", "dedication": "For Lin"})
    assert resp.status_code == 303
    page = client.get("/account").get_data(as_text=True)
    assert "Give your shipping address" not in page.split('id="rewards-table"')[0]
    assert "Shipping to: Big Giver, 1 Road, Oslo, Norway" in page  # the country by its name (fulfil/addresses.read_back)
    signed = next(r for r in fulfilment.donor_items(big, campaign) if r["signed"])
    assert signed["item"].dedication == "For Lin"
    unsigned = next(r for r in fulfilment.donor_items(big, campaign) if r["reward"].key == "thank-you-letter")
    assert unsigned["item"].dedication == ""  # the dedication is the signed items' alone


def test_a_donor_below_the_tiers_or_opted_out_is_asked_nothing(campaign, client, login_as):
    pay(50000, "none@example.org", credit_name="No Thanks", rewards_opt_out=True)
    with client.application.test_request_context():
        st = statement.rewards_statement(_user("none@example.org"))
    assert st["rows"] == [] and st["steps"] == [] and st["opted_out"]
    page = login_as(client, _user("none@example.org")).get("/account").get_data(as_text=True)
    assert "No rewards, as you asked" in page


def test_queues_count_in_sql_and_page(campaign, client, login_as, producer, monkeypatch):
    for n in range(7):
        pay(5000, f"d{n}@example.org", credit_name=f"Donor {n}")
    pay(100, "small@example.org", credit_name="Small")
    dvd = db.session.scalar(sa.select(Reward).where(Reward.key == "dvd"))
    fulfilment.mark_available(dvd.id, due_at=utcnow() - timedelta(days=1))  # overdue already
    items = [r["item"] for n in range(7) for r in fulfilment.donor_items(_user(f"d{n}@example.org"), campaign)]
    for n, item in enumerate(items[:3]):
        fulfilment.save_address(_user(f"d{n}@example.org"), {"name": "N", "line1": "L", "city": "C",
                                                             "country": "DE"}, source="account")
        fulfilment.move_item(item.id, "in_production")
    fulfilment.move_item(items[0].id, "shipped", tracking="DPD 1")
    fulfilment.move_item(items[0].id, "received")
    credits.approve_proof(_user("d1@example.org"), campaign)
    db.session.commit()

    # The counts come from one aggregate query: the statements issued do not grow with donors.
    statements: list[str] = []

    def count(conn, cursor, sql, *args):
        statements.append(sql)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        queues = {q.reward.key: q.counts for q in statement.queues(campaign)}
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert queues["dvd"] == {"owed": 4, "in_progress": 2, "done": 1, "late": 6}
    assert queues["credit-name"] == {"owed": 7, "in_progress": 0, "done": 1, "late": 0}
    assert queues["wallpapers"]["done"] == 8 and queues["dinner-invitation"]["owed"] == 0
    assert len(statements) <= 10, statements  # a fixed few (sync, savepoint, counts, rewards), never per donor

    staff = login_as(client, producer)
    page = staff.get("/admin/rewards").get_data(as_text=True)
    assert 'data-reward="dvd"' in page
    monkeypatch.setattr(statement, "PAGE_SIZE", 3)
    first = staff.get("/admin/rewards/dvd?state=owed").get_data(as_text=True)
    assert first.count("@example.org") == 3 and "next →" in first
    following = re.search(r'<a rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = staff.get(following).get_data(as_text=True)
    assert second.count("@example.org") == 1 and "next →" not in second
    late = staff.get("/admin/rewards/dvd?state=late").get_data(as_text=True)
    assert late.count('class="badge state-failed">late') == 3  # the page size
    assert staff.get("/admin/rewards/dvd?state=nonsense").status_code == 400
    assert staff.get("/admin/rewards/no-such-reward").status_code == 404


def test_every_reward_queue_page_renders(campaign, client, login_as, producer):
    pay(200000, "all@example.org", credit_name="All Tiers")
    staff = login_as(client, producer)
    for reward in db.session.scalars(sa.select(Reward).where(Reward.tier_id.is_not(None))):
        for state in ("", "owed", "in_progress", "done", "late"):
            resp = staff.get(f"/admin/rewards/{reward.key}?state={state}")
            assert resp.status_code == 200, (reward.key, state)
            if not state:  # every reward's holder, but for the DVD: sent signed in its place
                assert ("all@example.org" in resp.get_data(as_text=True)) == (reward.key != "dvd"), reward.key
    assert staff.get("/admin/credits").status_code == 200


@pytest.mark.parametrize("lang, said", [("en", "0 of 1 answered"), ("zh-Hans", "已回答 0 个（共 1 个）")],
                         ids=["en", "zh-Hans"])
def test_the_questions_row_counts_the_answers_in_the_readers_language(campaign, client, login_as, lang, said):
    from filmfund.comms import questions

    pay(25000, "wang@example.org")
    questions.submit_question(_user("wang@example.org"), "您好，请问孩子们现在怎么样？")
    db.session.commit()
    page = login_as(client, _user("wang@example.org")).get(f"/account?lang={lang}").get_data(as_text=True)
    row = re.search(r'data-reward="interview-questions".*?</tr>', page, flags=re.S).group(0)
    assert said in row
