"""A credit the credits will not print (an anonymous donor, one without a credit name) is owed to no
one: left out of the producers' counts and lists (privacy's rule, in SQL), said so on the donor's
receipt; a donor sent to their proof without a line is told the true reason; and a name or an
Executive Producer's wording keeps the spaces it was typed with (the ideographic space)."""
from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from filmfund.auth.services import find_user
from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.fulfil import credits, statement
from filmfund.rewards import donors, holdings, refunds
from filmfund.rewards.models import Donation, DonorProfile
from tests.site.helpers import csrf_token, mails_to, pay

IDEOGRAPHIC_SPACE = "\u3000"


def _credit_donors():
    pay(50000, "exec@example.org", credit_name="Named Exec")
    pay(50000, "anon@example.org", credit_name="Hidden Exec", anonymous=True)
    pay(5000, "noname@example.org")
    pay(100, "named@example.org", credit_name="Named Supporter")


def _listed(html: str) -> list[str]:
    return re.findall(r'<td class="wide" data-label="Donor">([^<]+)</td>', html)


def _group(html: str, key: str) -> str:
    return re.search(rf'<details class="fulfil-group" id="fulfil-{key}".*?</details>', html, re.S).group(0)


def test_a_credit_is_owed_only_to_the_donors_the_credits_print(campaign, client, login_as, producer):
    _credit_donors()
    credits.set_proof_deadline(campaign, utcnow() - timedelta(hours=1))  # every proof not approved is late
    db.session.commit()

    counts = {q.reward.key: q.counts for q in statement.queues(campaign)}
    assert counts["credit-name"] == {"owed": 2, "in_progress": 0, "done": 0, "late": 2}
    assert counts["executive-producer-credit"] == {"owed": 1, "in_progress": 0, "done": 0, "late": 1}
    # a parcel is owed to every holder, anonymous or not (the two of $500 are sent the DVD signed)
    assert counts["dvd"]["owed"] == 1 and counts["dvd-signed"]["owed"] == 2

    staff = login_as(client, producer)
    page = staff.get("/admin/rewards").get_data(as_text=True)
    row = page.split('data-reward="credit-name"')[1].split("</tr>")[0]
    assert re.search(r'class="count-owed"[^>]*><a [^>]*>2</a>', row) and re.search(
        r'class="count-late"[^>]*><a [^>]*>2</a>', row)
    for state in ("", "?state=owed", "?state=late"):
        assert sorted(_listed(staff.get(f"/admin/rewards/credit-name{state}").get_data(as_text=True))) == [
            "exec@example.org", "named@example.org"], state
        assert _listed(staff.get(f"/admin/rewards/executive-producer-credit{state}").get_data(as_text=True)) == [
            "exec@example.org"], state
    dashboard = staff.get("/admin/").get_data(as_text=True)
    for key, n in (("credit-name", 2), ("executive-producer-credit", 1)):
        group = _group(dashboard, key)
        assert f"{n} owed" in group and f"{n} late" in group and f"{n} in all" in group, key
        assert "anon@example.org" not in group and "noname@example.org" not in group, key

    # The rule is read as the settings stand: named again, the donor is owed a line again.
    donors.update_donor_settings(find_user("anon@example.org"), via="account", anonymous=False)
    db.session.commit()
    counts = {q.reward.key: q.counts for q in statement.queues(campaign)}
    assert counts["executive-producer-credit"]["owed"] == 2 and counts["credit-name"]["owed"] == 3
    assert "anon@example.org" in _listed(staff.get("/admin/rewards/executive-producer-credit").get_data(as_text=True))


def _receipt(email: str) -> str:
    """The latest receipt mailed to this address (the outbox lists the newest first)."""
    return next(text for text in mails_to(email) if "tier:" in text)


def test_the_receipt_says_a_credit_held_is_not_printed(campaign):
    _credit_donors()
    anon = _receipt("anon@example.org")
    assert "Your name in the end credits (not listed: you asked to stay anonymous)" in anon
    assert "Executive Producer credit (not listed: you asked to stay anonymous)" in anon
    noname = _receipt("noname@example.org")
    assert "Your name in the end credits (not listed: you gave no credit name)" in noname
    named = _receipt("exec@example.org")
    assert "  - Your name in the end credits\n" in named and "  - Executive Producer credit\n" in named
    assert "not listed" not in named
    # Anonymous through a later gift (applied at once): that gift's receipt says so of the credit too.
    pay(100, "later@example.org", credit_name="Later Hidden")
    assert "not listed" not in _receipt("later@example.org")
    pay(500, "later@example.org", anonymous=True)
    [later] = [text for text in mails_to("later@example.org") if "you asked us to keep you anonymous" in text]
    assert "Your name in the end credits (not listed: you asked to stay anonymous)" in later


def _donation_of(email: str) -> int:
    return db.session.scalar(sa.select(Donation.id).join(DonorProfile, DonorProfile.user_id == Donation.user_id)
                             .where(Donation.user_id == find_user(email).id))


def _told(client, login_as, email: str) -> tuple[str, str]:
    """Where /account/credits sends this donor, and what the page says there."""
    browser = login_as(client.application.test_client(), find_user(email))
    resp = browser.get("/account/credits?lang=en")
    assert resp.status_code == 303, email
    where = resp.headers["Location"]
    return where, browser.get(where).get_data(as_text=True)


def test_a_donor_without_a_line_is_told_the_true_reason(campaign, client, login_as, producer):
    _credit_donors()
    pay(5000, "gone@example.org", credit_name="Gone Person")
    pay(5000, "optout@example.org", credit_name="Opted Out", rewards_opt_out=True)
    refunds.request_refund(_donation_of("gone@example.org"), None, "all", requested_by=producer)
    db.session.commit()
    plain = "you chose to stay anonymous or gave no credit name"
    # holdings' "some money went back", in Python as in SQL
    refunded = {uid for uid, _net in db.session.execute(holdings.refunded_donors_sql(campaign.id))}
    assert refunded == {find_user("gone@example.org").id}
    assert [holdings.is_refunded_donor(find_user(e).id, campaign.id) for e in ("gone@example.org", "anon@example.org")
            ] == [True, False]

    where, page = _told(client, login_as, "gone@example.org")
    assert where.endswith("/account#rewards-heading")
    assert "after the refund, your total no longer includes a credit" in page and plain not in page
    where, page = _told(client, login_as, "optout@example.org")
    assert where.endswith("/account#settings")
    assert "you chose no rewards, and the credit is one of them" in page and plain not in page
    where, page = _told(client, login_as, "anon@example.org")
    assert where.endswith("/account#settings") and "you asked to stay anonymous. You can change" in page
    where, page = _told(client, login_as, "noname@example.org")
    assert where.endswith("/account#settings") and "you gave no credit name. You can change" in page
    # A donor with a line proofreads it.
    named = login_as(client.application.test_client(), find_user("named@example.org"))
    assert named.get("/account/credits?lang=en").status_code == 200


def test_a_name_and_a_wording_keep_the_spaces_they_were_typed_with(campaign, client, login_as, runner):
    pay(50000, "wang@example.org", credit_name=f"  王小明{IDEOGRAPHIC_SPACE}{IDEOGRAPHIC_SPACE}Wang\t")
    pay(100, "grace@example.org", credit_name="Grace  Exec O'Brien")
    assert credits.donor_credit_name(find_user("wang@example.org").id) == f"王小明{IDEOGRAPHIC_SPACE}Wang"
    assert credits.donor_credit_name(find_user("grace@example.org").id) == "Grace Exec O'Brien"  # runs still one

    browser = login_as(client, find_user("wang@example.org"))
    wording = f"王小明与家人{IDEOGRAPHIC_SPACE}（上海）"
    resp = browser.post("/account/credits", data={"csrf_token": csrf_token(browser, "/account/credits"),
                                                  "decision": "approve", "wording": f"{wording}\u200b "})
    assert resp.status_code == 303
    out = runner.invoke(args=["credits", "export", "--format", "csv"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == ["section,name", f"executive_producers,{wording}",
                                       "supporters,Grace Exec O'Brien"]
    assert runner.invoke(args=["credits", "export"]).output.splitlines()[1] == wording

    # The donor's settings keep it too.
    donors.update_donor_settings(find_user("grace@example.org"), via="account",
                                 credit_name=f"李雷{IDEOGRAPHIC_SPACE}Grace\n")
    db.session.commit()
    assert credits.donor_credit_name(find_user("grace@example.org").id) == f"李雷{IDEOGRAPHIC_SPACE}Grace"
