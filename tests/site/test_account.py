"""The donor's account page: their own donations, total, tier and rewards; nobody else's."""
from filmfund.auth.services import find_user
from tests.site.helpers import pay


def test_account_shows_own_donations_total_tier_and_rewards(client, campaign, login_as):
    pay(3000, "alice@example.org", credit_name="Alice A.")
    pay(2500, "alice@example.org")
    pay(100000, "bob@example.org", credit_name="Bob Secret")
    alice = find_user("alice@example.org")
    html = login_as(client, alice).get("/account").get_data(as_text=True)
    assert '<p class="big-number" id="lifetime-total">$55.00</p>' in html
    assert '<strong id="donor-tier">Collector</strong>' in html  # 30 + 25: gifts add up
    assert "A DVD of the finished film" in html and "Production stills" in html
    assert "Give $45.00 more to reach Patron" in html
    assert "$30.00" in html and "$25.00" in html and "Alice A." in html
    # nothing of another donor
    assert "bob@example.org" not in html and "Bob Secret" not in html and "$1,000.00" not in html
    assert "Record an audio commentary" not in html
    # The page's title is its title, and each section stands once (a merge once put the data
    # section inside <title>, where a browser shows it as text).
    assert "<title>Your donations and rewards · Living with Dead Hearts</title>" in html  # the film is the brand
    assert html.count('id="your-data"') == 1


def test_opted_out_donor_sees_no_rewards(client, campaign, login_as):
    pay(5000, "quiet@example.org", rewards_opt_out=True)
    html = login_as(client, find_user("quiet@example.org")).get("/account").get_data(as_text=True)
    assert "You chose no rewards" in html and "A DVD of the finished film" not in html


def test_account_needs_a_signed_in_donor(client, campaign, make_user, login_as):
    resp = client.get("/account")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    partner = make_user("p@xinxing.test", "partner")
    assert login_as(client, partner).get("/account").status_code == 403


def test_credit_name_is_escaped_everywhere_it_is_shown(client, campaign, login_as, producer):
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    pay(2000, "xss@example.org", credit_name=evil)
    html = login_as(client, find_user("xss@example.org")).get("/account").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    html = login_as(client, producer).get("/admin/").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def test_account_lists_the_donors_own_library(client, campaign, login_as, monkeypatch):
    from filmfund.media import services as media_services

    pay(3000, "lib@example.org")
    pay(3000, "other@example.org")
    asked_for = []

    def library_for(user):
        asked_for.append(user.email)
        return [{"asset_id": "a1", "title": "Production still: the search", "kind": "image", "reward": "stills",
                 "download_url": "/library/download/t", "expires_at": "2026-11-23T13:00:00+00:00",
                 "page_url": "http://localhost/library/a1"}]

    monkeypatch.setattr(media_services, "library_for", library_for)
    html = login_as(client, find_user("lib@example.org")).get("/account").get_data(as_text=True)
    assert asked_for == ["lib@example.org"]  # the library of the signed-in donor, nobody else's
    assert 'href="http://localhost/library/a1"' in html and "Production still: the search" in html


def test_two_sentences_in_a_row_are_spaced_as_each_language_writes_them(client, campaign, login_as):
    """The tier's two sentences (and the anonymity box's) were two texts with a template's line
    break between them: English wants that space, Chinese writes none after 。, and showed
    "（US$50 起）。 再捐". The language's own joiner puts them together (needs the merged zh-Hans
    catalogue: "%(sentence)s %(next_sentence)s")."""
    pay(5000, "mei@example.org")
    client = login_as(client, find_user("mei@example.org"))
    english = client.get("/account?lang=en").get_data(as_text=True)
    assert "($50+). Give $50.00 more to reach Patron." in english
    assert "<strong>Keep me anonymous.</strong> Your name is taken out" in english
    chinese = client.get("/account?lang=zh-Hans").get_data(as_text=True)
    assert "（US$50 起）。再捐 US$50.00" in chinese and "。 " not in chinese


def test_the_rewards_table_says_a_mailing_was_unsubscribed_and_how_to_get_it_again(client, campaign, login_as):
    """After the mail program's one-click unsubscribe, the table still said "Monthly production
    updates by email — By email"."""
    import re

    from filmfund.rewards import mail_prefs

    pay(1500, "fifteen@example.org")
    user = find_user("fifteen@example.org")
    page = login_as(client, user)

    def row(lang: str) -> str:
        html = page.get(f"/account?lang={lang}").get_data(as_text=True)
        return re.search(r'<tr id="reward-updates-monthly".*?</tr>', html, re.S).group(0)

    assert "By email" in row("en")
    path = mail_prefs.unsubscribe_url(user, "updates-monthly").split("://", 1)[1].split("/", 1)[1]
    assert client.application.test_client().post("/" + path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    en, zh = row("en"), row("zh-Hans")
    assert "By email" not in en and "Unsubscribed" in en and "tick them under “Mail from us”" in en
    assert 'href="/account#mail">Subscribe again</a>' in en
    assert "通过邮件发送" not in zh and "已退订" in zh and "重新订阅" in zh
    mail_prefs.opt_in(user.id, "updates-monthly")  # ticked again on the account page
    from filmfund.extensions import db

    db.session.commit()
    assert "By email" in row("en")
