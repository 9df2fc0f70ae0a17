"""Each piece of a page marked with the language it is written in, so that a screen reader reads it
with the right voice (the accessibility probe's F1, F6, F10 and F11). A producers' page is the
crew's English, its body marked `lang="en"` in a Chinese page, unless its template says it is
translated (`translated_page`): then it is a Chinese page like any other. Inside that English body,
what is written in the page's language anyway (dates, tier and reward names, refusals) says so;
a language's own name in a label says its language; a name given once in Latin letters (the
partner charity's, a crew member's) is marked English in a Chinese page."""
from __future__ import annotations

import re

import pytest
from flask import g

from filmfund.extensions import db
from filmfund.media.models import Asset, AssetKind, AssetState
from tests.helpers import record_offline
from tests.site.helpers import form_tokens

ENGLISH_BODY = '<div lang="en">'
TRANSLATED = ("/admin/page", "/admin/expenses", "/admin/sharing")


def _zh(client, path: str) -> str:
    return client.get(path + ("&" if "?" in path else "?") + "lang=zh-Hans").get_data(as_text=True)


def _en(client, path: str) -> str:
    return client.get(path + ("&" if "?" in path else "?") + "lang=en").get_data(as_text=True)


def _main(html: str) -> str:
    return html[html.index('<main id="main"'):html.index("</main>")]


@pytest.mark.parametrize("path", TRANSLATED)
def test_a_translated_producers_page_is_a_chinese_page(client, campaign, login_as, producer, path):
    login_as(client, producer)
    main = _main(_zh(client, path))
    assert ENGLISH_BODY not in main
    assert re.search(r"<h1>[^<]*[\u4e00-\u9fff]", main), main[:300]  # its heading in Chinese
    assert ENGLISH_BODY in _main(_zh(client, "/admin/credits"))  # a page not translated: still the crew's English
    assert ENGLISH_BODY not in _main(_en(client, path))


def test_the_campaign_editor_is_a_chinese_page(client, campaign, login_as, producer):
    """Its flag is set in site/campaign_editor.html (with its fields' labels, F1 and F4)."""
    login_as(client, producer)
    assert ENGLISH_BODY not in _main(_zh(client, "/admin/campaign"))


def test_language_names_in_labels_say_their_language(client, campaign, login_as, producer):
    login_as(client, producer)
    english = _en(client, "/admin/page")
    assert "(<span lang=\"zh-Hans\">中文</span>)" in english and '(<span lang="en">' not in english
    chinese = _zh(client, "/admin/page")
    assert '(<span lang="en">English</span>)' in chinese and "(<span lang=\"zh-Hans\">" not in chinese
    updates = _en(client, "/admin/updates")
    assert 'Title in <span lang="zh-Hans">简体中文</span>' in updates
    assert 'In <span lang="zh-Hans">简体中文</span> too' in updates
    # In Chinese the page is the crew's English: the name is marked Chinese in it all the same.
    assert 'Title in <span lang="zh-Hans">简体中文</span>' in _zh(client, "/admin/updates")


def test_tier_and_reward_names_in_the_crews_english_say_their_language(client, campaign, login_as, producer):
    gift = record_offline("cash@example.org", 30000, credit_name="Cash Donor")
    login_as(client, producer)
    page = f"/admin/donations/donors/{gift.user_id}"
    chinese = _zh(client, page)
    assert ENGLISH_BODY in chinese
    tier = re.search(r"tier: (<span lang=\"zh-Hans\">[^<]+</span>)", chinese)
    assert tier, re.search(r"tier: .{0,80}", chinese)
    rewards = chinese[chinese.index('id="rewards"'):chinese.index('id="shipping"')]
    assert rewards.count("<li>") == rewards.count('<li><span lang="zh-Hans">') > 0
    english = _en(client, page)
    assert re.search(r"tier: [A-Z][^<]*</span>", english) and '<span lang="zh-Hans">' not in english


def test_dates_in_the_crews_english_say_their_language(client, campaign, login_as, producer):
    asset = Asset(title="Slate", sha256="a" * 64, size=1, kind=AssetKind.IMAGE, state=AssetState.READY)
    db.session.add(asset)
    db.session.commit()
    login_as(client, producer)
    board = _zh(client, "/footage/")
    assert ENGLISH_BODY in board
    added = re.search(r'<span class="added">added (.*?)</span></span>', board)
    assert added and re.fullmatch(r'<span lang="zh-Hans">\d{4}年.*（北京时间）', added.group(1)), added
    # The card alone, for the board's live updates, lands in the same English body.
    card = client.get("/footage/status.json", query_string={"ids": asset.public_id}).get_json()["items"][0]["html"]
    assert re.search(r'added <span lang="zh-Hans">\d{4}年', card), card
    assert re.search(r'<span class="added">added [A-Z][a-z]+ \d', _en(client, "/footage/"))


def test_a_date_is_marked_only_inside_the_crews_english(app, campaign):
    from datetime import datetime, timezone

    from filmfund.i18n import format_when

    moment = datetime(2026, 12, 3, 20, 30, tzinfo=timezone.utc)
    page = app.jinja_env.from_string("{% set in_english = body_in_english(translated) %}{{ moment|when }}")
    with app.test_request_context("/?lang=zh-Hans"):
        app.preprocess_request()
        chinese = format_when(moment)
        assert chinese.startswith("2026年12月4日")
        assert page.render(moment=moment, translated=False) == chinese  # not a producers' page
        g.written_for_crew = True
        assert page.render(moment=moment, translated=False) == f'<span lang="zh-Hans">{chinese}</span>'
        assert page.render(moment=moment, translated=True) == chinese  # a translated producers' page
        # A plain-text mail written during a producer's request: never a tag in it.
        mail = app.jinja_env.overlay(autoescape=False).from_string("{% set in_english = true %}{{ moment|when }}")
        assert mail.render(moment=moment) == chinese
    with app.test_request_context("/?lang=en"):
        app.preprocess_request()
        g.written_for_crew = True
        assert page.render(moment=moment, translated=False) == format_when(moment)  # English is English


def test_latin_names_in_a_chinese_page_are_marked_english(client, campaign):
    from tests.site.helpers import pay

    partner = '<span lang="en">Xinxing Aid center</span>'
    page = _zh(client, "/")
    assert page.count(partner) >= 4  # the totals, the note under them, the budget, the crew
    assert f"<strong>{partner}</strong>" in page and '<strong><span lang="en">Charles Custer</span></strong>' in page
    assert partner in _zh(client, "/transparency")
    paid = pay(5000, "ada@example.org")
    assert partner in _zh(client, f"/thank-you?pledge={paid.id}")
    # In English they are English already; a Chinese text is never marked English.
    english = _en(client, "/")
    assert "Xinxing Aid center" in english and '<span lang="en">' not in _main(english)
    assert '<span lang="en">' not in re.sub(r"<span lang=\"en\">(Xinxing Aid center|Charles Custer)</span>", "", page)


def test_refusals_say_their_language(client, campaign, login_as, producer, make_user):
    # A field's refusal (_fields.html), here the sign-in's:
    make_user("p@example.org", "producer")
    form = form_tokens(client, "/login?lang=zh-Hans")
    refused = client.post("/login", data={**form, "email": "p@example.org", "password": "not-it"})
    refused = refused.get_data(as_text=True)
    assert re.search(r'<p class="field-error" id="[^"]+" role="alert" lang="zh-Hans">', refused), refused[-2000:]
    login_as(client, producer)
    # An update's and an expense's, in the crew's English (the expenses: a translated page).
    form = form_tokens(client, "/admin/updates?lang=zh-Hans")
    update = client.post("/admin/updates", data={**form, "title": "", "body": "kept", "audience": "updates-monthly"})
    assert update.status_code == 400
    assert re.search(r'id="update-error" lang="zh-Hans"', update.get_data(as_text=True))
    form = form_tokens(client, "/admin/expenses")
    expense = client.post("/admin/expenses", content_type="multipart/form-data", data={
        **form, "budget_line": "travel", "amount": "ten", "spent_on": "2026-11-02", "description": "train"})
    assert expense.status_code == 400
    assert re.search(r'id="expense-error" lang="zh-Hans"', expense.get_data(as_text=True))


def test_the_credits_page_names_each_landmark_once(client, campaign, login_as, producer):
    html = login_as(client, producer).get("/admin/credits").get_data(as_text=True)
    names = re.findall(r'<section[^>]*aria-label="([^"]+)"', html)
    headed = [re.search(rf'<h2 id="{label}">([^<]+)</h2>', html).group(1)
              for label in re.findall(r'<section[^>]*aria-labelledby="([^"]+)"', html)]
    assert "Proof counts" in names and "Proofs" in headed
    assert len(names + headed) == len(set(names + headed)), names + headed


def test_a_public_page_after_a_producers_page_is_not_the_crews_english(client, campaign, login_as, producer):
    """The tests' app context outlives a request (so may a CLI's): a producers' page's word that
    its body is English must not last into the next page."""
    login_as(client, producer)
    assert ENGLISH_BODY in _main(_zh(client, "/admin/credits"))
    page = _main(_zh(client, "/"))
    assert ENGLISH_BODY not in page and '<span lang="en">Xinxing Aid center</span>' in page


def test_an_error_page_on_a_producers_route_is_in_the_readers_language(client, campaign, login_as, producer):
    """A 404 under the producers' guard was the crew's English, its Chinese heading and message
    marked English: a screen reader read them with an English voice (stop 48's a11y leftover)."""
    login_as(client, producer)
    resp = client.get("/admin/donations/donors/999999?lang=zh-Hans")  # no such donor
    main = _main(resp.get_data(as_text=True))
    assert resp.status_code == 404 and ENGLISH_BODY not in main
    assert re.search(r"<h1>[\u4e00-\u9fff]+</h1>", main), main
