"""Two languages (issue 12.1): chosen by ?lang=, a cookie, the donor's profile or Accept-Language;
pages, receipts and API error messages in them; the campaign's own texts per language; money and
times formatted by Babel; the zh-Hans catalogue complete."""
from __future__ import annotations

import email
import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from filmfund.extensions import db
from filmfund.mail import outbox_messages
from filmfund.rewards import pledges
from tests.helpers import make_pledge
from tests.site.helpers import csrf_token, pay

ROOT = Path(__file__).resolve().parents[1]
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.6"}
HTML_LANG = re.compile(r'<html lang="([^"]+)"')


def _lang(html: str) -> str:
    return HTML_LANG.search(html).group(1)


def _mail_text(path) -> tuple[str, str]:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return str(msg["Subject"]), msg.get_body(("plain",)).get_content()


def test_the_page_in_chinese_by_accept_language_then_english_by_the_switch(client, campaign):
    html = client.get("/", headers=ZH).get_data(as_text=True)
    assert _lang(html) == "zh-Hans"
    assert "心碎而活" in html and "支持这部影片" in html and "“支持者”" not in html
    assert "支持者" in html and "您的名字出现在片尾字幕中" in html  # the tiers' own texts, from the campaign file
    assert "Support the film" not in html
    switch = re.search(r'<a class="language-switch" href="([^"]+)" hreflang="en"', html).group(1)
    assert switch == "/?lang=en"

    english = client.get(switch, headers=ZH)
    assert _lang(english.get_data(as_text=True)) == "en" and "Support the film" in english.get_data(as_text=True)
    assert "lang=en" in english.headers["Set-Cookie"] and "SameSite=Lax" in english.headers["Set-Cookie"]
    # Remembered: the next page stays English though the browser still prefers Chinese.
    again = client.get("/account", headers=ZH, follow_redirects=True).get_data(as_text=True)
    assert _lang(again) == "en"
    assert _lang(client.get("/?lang=zh-Hans").get_data(as_text=True)) == "zh-Hans"


def test_accept_language_picks_the_best_offered_match(client, campaign):
    for header, lang in [("zh-TW", "zh-Hans"), ("fr-FR,en;q=0.5", "en"), ("fr", "en"),
                         ("en-GB,zh;q=0.8", "en"), ("de;q=0.9,zh-Hans;q=0.8", "zh-Hans"), ("", "en")]:
        html = client.get("/", headers={"Accept-Language": header}).get_data(as_text=True)
        assert _lang(html) == lang, header


def test_the_switch_keeps_the_page_and_its_query(client, campaign):
    p = make_pledge(2500, email="q@example.org")
    html = client.get(f"/thank-you?pledge={p.id}", headers=ZH).get_data(as_text=True)
    href = re.search(r'<a class="language-switch" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert href == f"/thank-you?pledge={p.id}&lang=en"


def test_a_receipt_goes_in_the_language_of_the_pledge_page(client, campaign):
    form = {"csrf_token": csrf_token(client, "/?lang=zh-Hans"), "amount": "55", "email": "mei@example.org",
            "credit_name": "王小梅", "form_key": ""}
    r = client.post("/pledge", data=form, headers=ZH)
    assert r.status_code == 303
    pledge_id = r.headers["Location"].rsplit("/", 1)[1]
    assert pledges.get_pledge(pledge_id).language == "zh-Hans"
    client.post(f"/checkout/test/{pledge_id}", data={"csrf_token": csrf_token(client, f"/checkout/test/{pledge_id}"),
                                                     "outcome": "paid"})
    [path] = outbox_messages()
    subject, text = _mail_text(path)
    assert subject == "《心碎而活：寻找中国被拐的孩子》捐款收据（测试付款，未实际扣款）"
    assert "感谢您支持《心碎而活：寻找中国被拐的孩子》。" in text
    assert "金额：US$55.00" in text and "（北京时间）" in text
    assert "“收藏家”" in text and "成片 DVD 一张" in text
    assert "Thank you" not in text and "Amount:" not in text
    # A test gift grants its rewards, listed below the note: the note says they are test ones.
    assert "下面列出的回报仅供测试" in text and "没有发放" not in text

    # The donor switches to English, signed in: the profile keeps it and the next mail is English.
    from filmfund.auth.models import User
    import sqlalchemy as sa

    user = db.session.scalar(sa.select(User).where(User.email == "mei@example.org"))
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True
    client.get("/account?lang=en")
    db.session.expire_all()
    from filmfund.rewards.donors import profile_for

    assert profile_for(user.id).language == "en"
    # A link on another site (the session cookie goes with it) shows its language here, and leaves
    # the language her mail is written in alone; her own switch, or a typed address, changes it.
    page = client.get("/account?lang=zh-Hans", headers={"Sec-Fetch-Site": "cross-site"})
    assert 'lang="zh-Hans"' in page.get_data(as_text=True)
    client.get("/account?lang=zh-Hans", headers={"Referer": "https://elsewhere.example/page"})
    db.session.expire_all()
    assert profile_for(user.id).language == "en"
    client.get("/account?lang=zh-Hans", headers={"Sec-Fetch-Site": "same-origin"})
    db.session.expire_all()
    assert profile_for(user.id).language == "zh-Hans"
    client.get("/account?lang=en", headers={"Sec-Fetch-Site": "none"})
    db.session.expire_all()
    assert profile_for(user.id).language == "en"
    pay(1000, "mei@example.org")
    newest = max(outbox_messages(), key=lambda p: p.stat().st_mtime_ns)
    subject, text = _mail_text(newest)
    assert subject.startswith("Your receipt: Living with Dead Hearts") and "Amount: $10.00" in text
    assert "UTC" in text
    assert "any rewards listed below are test rewards" in text and "nothing was given" not in text


def test_a_pledge_takes_the_profile_language_of_a_signed_in_donor_only(app, client, campaign):
    import sqlalchemy as sa
    from flask import g

    from filmfund.auth.models import User
    from filmfund.i18n import choose_language

    pay(1000, "lan@example.org")
    user = db.session.scalar(sa.select(User).where(User.email == "lan@example.org"))
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True
    client.get("/account?lang=zh-Hans")  # kept on the profile
    client.delete_cookie("lang")  # so that only the profile says it
    signed_in = client.post("/api/v1/pledges", json={"amount": 2000, "email": "lan@example.org"})
    assert pledges.get_pledge(signed_in.get_json()["pledge_id"]).language == "zh-Hans"

    stranger = app.test_client().post("/api/v1/pledges", json={"amount": 2000, "email": "lan@example.org"})
    assert pledges.get_pledge(stranger.get_json()["pledge_id"]).language == "en"
    # A request that names nobody (no cookie, no credential) loads no user to learn that.
    with app.test_request_context("/api/v1/pledges", method="POST"):
        assert choose_language() == "en" and g.get("_login_user") is None


def test_api_errors_keep_their_code_and_speak_the_language(client, campaign):
    en = client.post("/api/v1/pledges", json={"amount": 25, "email": "a@example.org"})
    zh = client.post("/api/v1/pledges", json={"amount": 25, "email": "a@example.org"}, headers=ZH)
    assert en.status_code == zh.status_code == 400
    assert en.get_json()["error"]["code"] == zh.get_json()["error"]["code"] == "invalid_amount"
    assert en.get_json()["error"]["message"] != zh.get_json()["error"]["message"]
    assert re.search(r"[\u4e00-\u9fff]", zh.get_json()["error"]["message"])
    by_query = client.post("/api/v1/pledges?lang=zh-Hans", json={"amount": 25, "email": "a@example.org"})
    assert by_query.get_json()["error"]["message"] == zh.get_json()["error"]["message"]


def test_money_and_times_are_formatted_per_language(app):
    from flask_babel import force_locale

    from filmfund.i18n import format_money, format_when

    moment = datetime(2026, 12, 3, 20, 30, tzinfo=timezone.utc)
    with app.test_request_context("/"):
        assert format_money(-5) == "-$0.05" and format_money(-195) == "-$1.95"
        assert format_money(123456789) == "$1,234,567.89" and format_money(123450, whole=True) == "$1,235"
        assert format_when(moment) == "December 3, 2026, 8:30\u202fPM UTC"
        with force_locale("zh_Hans"):
            assert format_money(-195) == "-US$1.95" and format_money(400000, whole=True) == "US$4,000"
            assert format_when(moment) == "2026年12月4日 04:30（北京时间）"  # Beijing time, named


def test_a_zone_is_named_in_the_readers_language_never_by_its_id(app, client, campaign, partner, login_as):
    from flask_babel import force_locale

    from filmfund.i18n import zone_name

    with app.test_request_context("/"):
        assert (zone_name("Asia/Shanghai"), zone_name("America/Los_Angeles")) == ("China Time", "Pacific Time")
        with force_locale("zh_Hans"):
            assert (zone_name("Asia/Shanghai"), zone_name("America/Los_Angeles")) == ("北京时间", "北美太平洋时间")
    page = login_as(client, partner).get("/admin/partner?lang=zh-Hans").get_data(as_text=True)
    assert "每月一份对账单（按北京时间计）" in page and "Asia/Shanghai" not in page


def test_a_statements_month_is_named_as_its_reader_writes_it(app, client, campaign, partner, login_as):
    """"December 2026" / "2026年12月", never the address's "2026-12", in the statement's heading, its
    list of months, and the partner's page that links them."""
    from zoneinfo import ZoneInfo

    from flask_babel import force_locale

    from filmfund.i18n import format_month
    from tests.site.helpers import pay

    with app.test_request_context("/"):
        assert format_month("2026-12") == "December 2026" and format_month(date(2027, 1, 31)) == "January 2027"
        with force_locale("zh_Hans"):
            assert format_month("2026-12") == "2026年12月"
    pay(1500, "a@example.org")
    month = datetime.now(ZoneInfo(campaign.time_zone or "UTC")).strftime("%Y-%m")  # the campaign's month
    login_as(client, partner)
    for lang, named, heading in (("en", format_month_en(month), f"statement for {format_month_en(month)}"),
                                 ("zh-Hans", format_month_zh(month), f"{format_month_zh(month)}对账单")):
        page = client.get(f"/admin/partner/statements/{month}?lang={lang}").get_data(as_text=True)
        h1 = page.split("<h1>")[1].split("</h1>")[0]
        assert heading in h1 and month not in h1, h1
        assert f">{named}</a>" in page, lang  # the list of months
        partner_page = client.get(f"/admin/partner?lang={lang}").get_data(as_text=True)
        assert f">{named}</a>" in partner_page and f">{month}</a>" not in partner_page


def format_month_en(month: str) -> str:  # written out here, not asked of the code under test
    year, number = month.split("-")
    return f"{('January February March April May June July August September October November December').split()[int(number) - 1]} {year}"


def format_month_zh(month: str) -> str:
    year, number = month.split("-")
    return f"{year}年{int(number)}月"


def test_a_text_missing_in_one_language_reads_the_other(app, tmp_path):
    from filmfund.rewards.campaign_file import parse_campaign, read_campaign_file
    from filmfund.rewards.texts import localized
    from filmfund.config import BUNDLED_CAMPAIGN

    spec = read_campaign_file(BUNDLED_CAMPAIGN)
    assert spec.title.startswith("Living with Dead Hearts")
    assert spec.translations["zh-Hans"]["title"] == "心碎而活：寻找中国被拐的孩子"
    assert spec.translations["zh-Hans"]["tier:5000"] == "收藏家"
    import tomllib

    data = tomllib.loads(BUNDLED_CAMPAIGN.read_text())
    data["title"] = {"zh-Hans": "只有中文"}
    data["tagline"] = {"en": "Only English"}
    only = parse_campaign(data)
    assert only.title == "只有中文"  # no English title: English readers get the Chinese one, not a blank
    assert localized(only.translations, "title", only.title, "en") == "只有中文"
    assert localized(only.translations, "tagline", only.tagline, "zh-Hans") == "Only English"
    data["title"] = {"fr": "Titre"}
    with pytest.raises(Exception, match="title: unknown language 'fr'"):
        parse_campaign(data)


def test_donor_names_are_kept_exactly_as_written(client, campaign):
    pay(15000, "li@example.org", credit_name="李 Lǐ  Wěi")
    html = client.get("/", headers=ZH).get_data(as_text=True)
    assert _lang(html) == "zh-Hans"
    from filmfund.rewards.donors import profile_for
    from filmfund.auth.models import User
    import sqlalchemy as sa

    user = db.session.scalar(sa.select(User).where(User.email == "li@example.org"))
    assert profile_for(user.id).credit_name == "李 Lǐ Wěi"  # only runs of spaces are made one, as before


def test_every_text_of_the_sources_has_its_chinese(tmp_path):
    """Extract every marked text from the sources and templates (as `make translations` does) and
    fail on any without a zh-Hans translation in the catalogue."""
    pot = tmp_path / "messages.pot"
    from babel.messages.frontend import CommandLineInterface

    CommandLineInterface().run(["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "-k", "lazy_gettext",
                                "-k", "_l", "-k", "refuse:2", "-o", str(pot), str(ROOT)])
    with pot.open("rb") as fh:
        wanted = [m.id for m in read_po(fh) if m.id]
    assert len(wanted) > 100  # the extraction found the site's texts
    with (ROOT / "filmfund/translations/zh_Hans/LC_MESSAGES/messages.po").open("rb") as fh:
        catalogue = read_po(fh, locale="zh_Hans")
    missing = []
    for msgid in wanted:
        found = catalogue.get(msgid)
        strings = found.string if found is not None and isinstance(found.string, tuple) else \
            (found.string if found is not None else "",)
        if found is None or found.fuzzy or not all(strings):
            missing.append(msgid)
    assert missing == [], f"{len(missing)} texts have no zh-Hans translation (run `make translations`): {missing[:20]}"
    # Placeholders survive translation: a msgstr that drops %(name)s would fail at run time.
    for message in catalogue:
        if message.id and not isinstance(message.id, tuple):
            assert set(re.findall(r"%\(\w+\)s|\{\w+\}", message.id)) == \
                set(re.findall(r"%\(\w+\)s|\{\w+\}", message.string)), message.id


def test_a_kept_locale_names_the_same_language_as_its_text(app):
    """tag_of keeps the tag of each Locale babel_locale made (the pledge asks for it on the hot
    path): it answers as writing the Locale out would, offered languages and all."""
    from babel import Locale

    from filmfund.i18n import babel_locale, tag_of

    assert tag_of(babel_locale("zh-Hans")) == tag_of(Locale.parse("zh_Hans")) == "zh-Hans"
    assert tag_of(babel_locale("en")) == "en"
    app.config["LANGUAGES"] = ["en"]  # an installation offering English alone
    assert tag_of(babel_locale("zh-Hans")) == tag_of(Locale.parse("zh_Hans")) == "en"



def _donor_reading(app, lang: str, amount: int, address: str, **kw):
    """A gift made on a page in `lang`, paid; a donor's first gift gives her profile (and her mail)
    that language. The donor."""
    from filmfund.auth.services import find_user
    from filmfund.rewards.webhooks import complete_test_checkout

    with app.test_request_context("/", headers={"Cookie": f"lang={lang}"}):
        pledge = make_pledge(amount=amount, email=address, **kw)
    complete_test_checkout(pledge.id, "paid")
    db.session.expire_all()
    return find_user(address)


def _mailed_link(app, which: str, user) -> str:
    """The path of a link mailed to `user` that opens a page without a session."""
    import sqlalchemy as sa

    from filmfund.auth import links
    from filmfund.fulfil import fulfilment
    from filmfund.rewards import donors, mail_prefs
    from filmfund.rewards.models import Donation

    if which == "unsubscribe":
        url = mail_prefs.unsubscribe_url(user, "news")
    elif which == "survey":
        url = fulfilment.survey_link(user)
    elif which == "confirm":  # a later gift, on an English page, asked for another name: its receipt's link
        _donor_reading(app, "en", 1500, user.email, credit_name="Mei C.")
        later = db.session.scalars(sa.select(Donation).order_by(Donation.id.desc())).first()
        url = donors.confirmation_url(donors.pending_request_for(later.id))
    else:  # the sign-in link
        _user, token, _ttl = links.new_link(user.email, links.SIGN_IN)
        db.session.commit()
        url = "/login/magic/" + token
    return re.sub(r"^https?://[^/]+", "", url)


MAILED_LINKS = ["unsubscribe", "survey", "confirm", "magic"]
EN_BROWSER = {"Accept-Language": "en-US,en;q=0.9"}


@pytest.mark.parametrize("which", MAILED_LINKS)
def test_a_link_from_a_chinese_mail_opens_in_chinese_in_a_fresh_browser(app, campaign, which):
    """A phone's mail program opens a link in a browser with no cookie, often in English: the page
    a donor's link opens is in her language, the mail's (i18n.mailed_link, asked by the choice of
    the request's language), not the browser's."""
    mei = _donor_reading(app, "zh-Hans", 10000, "mei@example.org")
    page = app.test_client().get(_mailed_link(app, which, mei), headers=EN_BROWSER)
    assert page.status_code == 200
    assert _lang(page.get_data(as_text=True)) == "zh-Hans"
    assert "lang=" not in page.headers.get("Set-Cookie", "")  # the browser's own choice is not made for it


@pytest.mark.parametrize("which", MAILED_LINKS)
def test_a_browser_that_chose_its_language_keeps_it_on_a_mailed_link(app, campaign, which):
    """The link's donor comes after what this browser chose (?lang=, the cookie), and an English
    donor's link opens in English in a Chinese browser (the mail was English)."""
    mei = _donor_reading(app, "zh-Hans", 10000, "mei@example.org")
    path = _mailed_link(app, which, mei)
    chose = app.test_client()
    chose.get("/?lang=en")
    assert _lang(chose.get(path, headers=ZH).get_data(as_text=True)) == "en"
    sam = _donor_reading(app, "en", 10000, "sam@example.org")
    assert _lang(app.test_client().get(_mailed_link(app, which, sam), headers=ZH).get_data(as_text=True)) == "en"


@pytest.mark.parametrize("path", ["/unsubscribe/not-a-token", "/rewards/survey/not-a-token",
                                  "/settings/confirm/not-a-token", "/login/magic/not-a-token"])
def test_a_stale_mailed_link_names_nobody_and_answers_in_the_browsers_language(app, campaign, path):
    html = app.test_client().get(path, headers=ZH).get_data(as_text=True)
    assert _lang(html) == "zh-Hans"
