"""What a screen reader's list of links and fields reads (a11y probe F12, F13): each receipt link on
the account page names its gift (date and amount), not "view, download, view, download"; the
WeChat share box has a visible label tied to it, not an aria-label alone."""
from __future__ import annotations

import re

from filmfund.auth.services import find_user
from tests.site.helpers import pay

EMAIL = "names@example.org"


def _text(html: str) -> str:
    """An element's text as a screen reader gets it: its tags dropped, its spaces folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


def test_each_receipt_link_names_the_date_and_amount_of_its_gift(app, campaign, login_as):
    pay(5500, EMAIL)
    pay(700, EMAIL)
    client = login_as(app.test_client(), find_user(EMAIL))
    html = client.get("/account?lang=en").get_data(as_text=True)
    table = html[html.index('id="donations-heading"'):]
    rows = re.findall(r"<tr><td class=\"date\"[^>]*>(.*?)</td>(.*?)</tr>", table[:table.index("</table>")], re.S)
    assert len(rows) == 2
    names = []
    for day, rest in rows:
        amount = _text(re.search(r'<span class="money">(.*?)</span>', rest).group(1))
        links = [_text(link) for link in re.findall(r'<a href="/account/receipts/\d+[^"]*">(.*?)</a>', rest, re.S)]
        assert links == [f"view the receipt for {amount} on {_text(day)}",
                         f"download the receipt for {amount} on {_text(day)}"], links
        names += links
    assert len(set(names)) == 4  # no two links read alike
    assert '<span class="visually-hidden"> the receipt for' in table  # seen as "view · download", as before


def test_the_wechat_link_box_has_a_visible_label(client, campaign):
    html = client.get("/?lang=en").get_data(as_text=True)
    share = html[html.index('class="share"'):html.index("</section>", html.index('class="share"'))]
    box = re.search(r"<input[^>]*id=\"share-wechat-link\"[^>]*>", share).group(0)
    assert "aria-label" not in box
    label = re.search(r'<label for="share-wechat-link"[^>]*>(.*?)</label>', share, re.S)
    assert label and _text(label.group(1)) == "For WeChat, copy this link and paste it in a chat or your Moments:"
