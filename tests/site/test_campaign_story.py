"""The page persuades (issue 12 item 2): the story, crew, risks, FAQ, where the money goes and
stretch goals from the campaign file; the film as the brand; share cards with absolute URLs; the
true percentage past the goal; and producers building the page in the browser, audited, without
the campaign file overruling them."""
from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from filmfund.audit import AuditEntry
from filmfund.extensions import db
from filmfund.rewards.models import BudgetLine, CampaignPagePart
from tests.site.helpers import csrf_token, pay


def _meta(html: str, attr: str, name: str) -> str | None:
    match = re.search(rf'<meta {attr}="{re.escape(name)}" content="([^"]*)"', html)
    return match.group(1) if match else None


def test_the_page_tells_the_story_and_where_the_money_goes(client, campaign):
    html = client.get("/").get_data(as_text=True)
    for heading in ("The children who vanish", "The parents who never stop", "Why we need you"):
        assert f"<h3>{heading}</h3>" in html
    assert "Charles Custer" in html and "Director and producer" in html
    assert 'id="risks-heading"' in html and "three-star hotels" in html
    assert html.count('<details class="faq">') == 3
    budget = html[html.index('id="budget"'):html.index("</table>", html.index('id="budget"'))]
    assert "An editing computer that reads our camera" in budget and "$1,400" in budget
    assert "Travel back to the families" in budget and "$1,000" in budget
    assert "Three-star hotels" in budget and "$800" in budget
    assert "Xinxing Aid center" in budget and "$800</td>" in budget  # the charity's 20% of the $4,000 goal
    assert "$8,000" in html and "Chinese and English subtitles for free screenings" in html  # a stretch goal
    assert 'id="public-updates"' not in html and "The first update from the shoot" in html


def test_the_film_is_the_brand_with_a_favicon_and_share_cards(client, campaign):
    html = client.get("/").get_data(as_text=True)
    brand = re.search(r'<a class="brand"[^>]*>(.*?)</a>', html, re.S).group(1)
    assert "Living with Dead Hearts" in brand and "filmfund" not in brand
    icon = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)"', html).group(1)
    resp = client.get(icon)
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml" and b"<svg" in resp.data
    assert _meta(html, "property", "og:title").startswith("Living with Dead Hearts")
    for attr, name in (("property", "og:url"), ("property", "og:image"), ("name", "twitter:image")):
        assert _meta(html, attr, name).startswith("http://localhost/"), name  # absolute
    assert _meta(html, "name", "twitter:card") == "summary_large_image"
    image = _meta(html, "property", "og:image").removeprefix("http://localhost")
    resp = client.get(image)  # no trailer yet: the film's share picture
    assert resp.status_code == 200 and resp.mimetype == "image/jpeg" and len(resp.data) < 100_000
    # other pages carry the brand too
    assert "Living with Dead Hearts" in re.search(r"<title>(.*?)</title>", client.get("/login").get_data(
        as_text=True)).group(1)


def test_percentage_past_the_goal_is_true_and_the_dashboard_agrees(client, campaign, producer, login_as):
    pay(8_634_000, "big@example.org")  # $86,340 of a $4,000 goal
    html = client.get("/").get_data(as_text=True)
    assert '<strong id="goal-percent">2158%</strong>' in html
    assert 'aria-label="2158% of the goal raised"' in html
    assert '<progress id="goal-progress" max="400000" value="400000"' in html  # the bar stops at its end
    assert re.search(r'class="reached"><strong>\$8,000</strong>', html)  # stretch goals reached
    dashboard = login_as(client, producer).get("/admin/").get_data(as_text=True)
    assert "2158% of $4,000" in dashboard


def test_loading_the_file_again_keeps_what_producers_edited(app, client, campaign, producer, login_as, tmp_path):
    from filmfund.rewards.campaign import load_campaign

    login_as(client, producer)
    form = {"csrf_token": csrf_token(client, "/admin/page"), "part": "faq",
            "faq-0-present": "1", "faq-0-question-en": "Is the film safe for the families?",
            "faq-0-question-zh-Hans": "拍摄会危及这些家庭吗？", "faq-0-answer-en": "Every family chose to be filmed.",
            "faq-0-answer-zh-Hans": "", "faq-1-present": "1"}
    resp = client.post("/admin/page/faq", data=form)
    assert resp.status_code == 303
    html = client.get("/").get_data(as_text=True)
    assert html.count('<details class="faq">') == 1 and "Is the film safe for the families?" in html
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "page.edit")).one()
    assert entry.actor == f"user:{producer.id}" and entry.target.endswith(" faq")
    assert entry.details_dict["after"][0]["answer"] == {"en": "Every family chose to be filmed."}
    assert len(entry.details_dict["before"]) == 3

    # the file changes its FAQ and its story: the edited FAQ stays, the unedited story follows the file
    source = Path(app.config["CAMPAIGN_FILE"]).read_text()
    changed = tmp_path / "campaign.toml"
    changed.write_text(source.replace("Where does my money go?", "Where does the money go?")
                       .replace("The children who vanish", "Children who vanish"))
    audits = db.session.scalar(sa.select(sa.func.count(AuditEntry.id)))
    load_campaign(changed)
    db.session.commit()
    html = client.get("/").get_data(as_text=True)
    assert "Is the film safe for the families?" in html and "Where does the money go?" not in html
    assert "<h3>Children who vanish</h3>" in html
    load_campaign(changed)  # idempotent: nothing changes, nothing is audited
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(AuditEntry.id))) == audits
    assert db.session.scalar(sa.select(sa.func.count(CampaignPagePart.part))) == 7  # five parts, the artwork and the screening window
    assert db.session.scalar(sa.select(sa.func.count(BudgetLine.id))) == 3

    # handed back to the file (confirmed): the file's FAQ again, and it follows the file from then on
    token = csrf_token(client, "/admin/page")
    assert client.post("/admin/page/faq/reset", data={"csrf_token": token}).status_code == 400  # not confirmed
    assert client.post("/admin/page/faq/reset", data={"csrf_token": token, "confirm": "1"}).status_code == 303
    html = client.get("/").get_data(as_text=True)
    assert "Is the film safe for the families?" not in html and html.count('<details class="faq">') == 3
    load_campaign(changed)
    db.session.commit()
    assert "Where does the money go?" in client.get("/").get_data(as_text=True)
    assert db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.action.like("page.%"))
                              .order_by(AuditEntry.id)).all() == ["page.edit", "page.reset"]


def test_the_editor_refuses_bad_input_and_writes_nothing(client, campaign, producer, login_as):
    login_as(client, producer)
    token = csrf_token(client, "/admin/page")
    resp = client.post("/admin/page/stretch_goals", data={
        "csrf_token": token, "part": "stretch_goals", "stretch_goals-0-present": "1",
        "stretch_goals-0-amount": "lots", "stretch_goals-0-title-en": "More"})
    assert resp.status_code == 400
    assert "Stretch goal 1: Enter the amount in dollars" in resp.get_data(as_text=True)
    resp = client.post("/admin/page/story", data={"csrf_token": token})  # not the editor's form
    assert resp.status_code == 400
    resp = client.post("/admin/page/crew", data={"csrf_token": token, "part": "crew", "crew-0-present": "1",
                                                 "crew-0-name": "Somebody"})  # a role is required
    assert resp.status_code == 400 and "Crew 1, role: must not be empty" in resp.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(AuditEntry.id)).where(AuditEntry.action == "page.edit")) == 0
    assert "Charles Custer" in client.get("/").get_data(as_text=True)


def test_a_text_missing_in_one_language_shows_the_other():
    from filmfund.site.page import text_in

    assert text_in({"en": "Hello", "zh-Hans": "你好"}, "zh-Hans") == "你好"
    assert text_in({"en": "Hello"}, "zh-Hans") == "Hello"
    assert text_in({"zh-Hans": "你好"}, "en") == "你好"
    assert text_in({}, "en") == ""


def test_the_latest_public_updates_are_on_the_page(app, client, campaign, producer):
    from filmfund.comms import updates

    for n, audience in enumerate(["everyone", "donors", "everyone", "everyone", "everyone"]):
        update = updates.create_update(title=f"Update {n} for {audience}", body="From the shoot.",
                                       audience=audience, author=producer)
        db.session.commit()
        updates.publish_update(update.id, producer)
        db.session.commit()
    updates.create_update(title="A draft", body="Not yet.", audience="everyone", author=producer)
    db.session.commit()
    html = client.get("/").get_data(as_text=True)
    listed = re.findall(r'<li><a href="/updates/\d+"[^>]*>([^<]+)</a>', html[html.index('id="public-updates"'):])
    assert listed == ["Update 4 for everyone", "Update 3 for everyone", "Update 2 for everyone"]  # newest 3
    assert "for donors" not in html and "A draft" not in html


def test_the_story_in_chinese(client, campaign):
    html = client.get("/?lang=zh-Hans").get_data(as_text=True)
    assert '<html lang="zh-Hans"' in html
    for text in ("<h3>消失的孩子</h3>", "<h3>从不放弃的父母</h3>", "善款用途", "一台能读取摄像机存储卡的剪辑电脑",
                 "三星级酒店住宿", "常见问题", "我的钱用在哪里？", "导演、制片人", "风险与挑战", "追加目标",
                 "中英文字幕，用于免费放映", "分享这部影片", "发邮件"):
        assert text in html, text
    assert "Charles Custer" in html  # a name stays as written
    assert '<meta property="og:locale" content="zh_CN">' in html
    # a Chinese paragraph wrapped in the file reads as one line (no stray spaces between characters)
    assert "有的被卖给别人收养，有的被迫做工，警方很少能找回他们。留给父母的" in html


def test_the_editors_fields_are_named_in_the_producers_language(client, campaign, producer, login_as):
    """Each field of the page editor is labelled in the page's language: its Chinese page said
    "Body (中文)", "Bio (English)", the field names of the campaign file."""
    login_as(client, producer)
    zh = client.get("/admin/page?lang=zh-Hans").get_data(as_text=True)
    # A language named in the other one says its language (a screen reader's voice changes for it).
    for label in ("小标题 (中文)", '正文 (<span lang="en">English</span>)', "简介 (中文)", "问题 (中文)",
                  '回答 (<span lang="en">English</span>)', "姓名", "金额（美元）"):
        assert label in zh, label
    en = client.get("/admin/page?lang=en").get_data(as_text=True)
    for label in ("Heading (English)", 'Text (<span lang="zh-Hans">中文</span>)', "About them (English)",
                  'Question (<span lang="zh-Hans">中文</span>)', "Amount in dollars"):
        assert label in en, label
    for page in (zh, en):
        assert "Body (" not in page and "Bio (" not in page
