"""The public campaign page, the pledge form, the test checkout and the thank-you page."""
import json
import re

import pytest
import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards.models import Pledge
from tests.site.helpers import csrf_token, pay, pledge_count


def _form(client, **fields):
    data = {"csrf_token": csrf_token(client), "amount": "25.50", "email": "ada@example.org",
            "credit_name": "Ada L.", "form_key": ""}
    data.update(fields)
    return data


def test_campaign_page_shows_film_progress_partner_and_cumulative_tiers(client, campaign):
    pay(5000, "first@example.org")
    html = client.get("/").get_data(as_text=True)
    assert "Living with Dead Hearts" in html
    assert re.search(r'<progress id="goal-progress" max="400000" value="5000"', html)
    assert "$50</strong>" in html and "raised of a $4,000 goal" in html
    assert '<strong id="donor-count">1</strong> donor' in html
    assert "Xinxing Aid center" in html and "20% of every gift" in html
    assert "$10</strong> for Xinxing Aid center" in html  # the partner's share of what was raised
    assert html.count('class="tier"') == 10
    assert html.count("All the above, plus:") == 9
    tiers = json.loads(re.search(r"data-tiers='([^']*)'", html).group(1))
    assert [t["min_amount"] for t in tiers] == sorted(t["min_amount"] for t in tiers)
    assert tiers[3]["name"] == "Collector" and tiers[3]["rewards"][1]["key"] == "dvd"
    assert 'src="/static/js/pledge.js"' in html
    assert "<script>" not in html and " style=" not in html  # the CSP forbids both


def test_every_form_field_has_a_label(client, campaign):
    html = client.get("/").get_data(as_text=True)
    for field in ("amount", "email", "credit_name"):
        assert f'<label for="{field}"' in html and f'id="{field}"' in html


def test_optional_is_said_without_a_gap_before_a_full_width_bracket(client, campaign):
    """"片尾字幕署名 （选填）": the ASCII space the English needs left a gap before "（"."""
    assert 'Name for the end credits <span class="muted">(optional)</span>' in client.get("/?lang=en").get_data(as_text=True)
    assert '片尾字幕署名<span class="muted">（选填）</span>' in client.get("/?lang=zh-Hans").get_data(as_text=True)


def test_pledge_converts_dollars_to_cents_and_redirects_to_checkout(client, campaign):
    resp = client.post("/pledge", data=_form(client, anonymous="1"))
    assert resp.status_code == 303
    pledge = db.session.scalar(sa.select(Pledge))
    assert resp.headers["Location"].endswith(f"/checkout/test/{pledge.id}")
    assert (pledge.amount, pledge.email, pledge.credit_name, pledge.anonymous, pledge.rewards_opt_out) == \
        (2550, "ada@example.org", "Ada L.", True, False)


def test_a_full_width_amount_from_a_chinese_input_method_is_read_as_typed(client, campaign):
    """A Chinese input method in full-width mode types "５０．５０"; the Chinese page writes "US$"."""
    for typed, cents in (("５０．５０", 5050), ("US$1,000", 100000)):
        resp = client.post("/pledge?lang=zh-Hans", data=_form(client, amount=typed, email="mei@example.org"))
        assert resp.status_code == 303, typed
        pledge_id = resp.headers["Location"].rsplit("/", 1)[1]
        assert db.session.get(Pledge, pledge_id).amount == cents


@pytest.mark.parametrize("amount,message", [
    ("0.50", "The smallest gift is $1.00."), ("abc", "dollars and cents"), ("10.005", "two decimals"),
    ("-5", "dollars and cents"), ("", "Enter an amount"), ("1e3", "dollars and cents"),
    ("99999999999", "too large"),
])
def test_bad_amount_rerenders_with_message_and_values_and_writes_nothing(client, campaign, amount, message):
    resp = client.post("/pledge", data=_form(client, amount=amount, email="keep@example.org",
                                             credit_name="Kept Name", rewards_opt_out="1"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert message in html
    assert 'aria-invalid="true"' in html
    assert 'value="keep@example.org"' in html and 'value="Kept Name"' in html
    assert re.search(r'name="rewards_opt_out" id="rewards_opt_out" value="1" checked', html)
    assert pledge_count() == 0


def test_the_form_refuses_a_gift_larger_than_stripe_charges(client, campaign):
    """$1,000,000.00 is one cent more than Stripe charges at once: it went on to a Checkout that
    refused it. The form says the limit; $999,999.99 goes on to Checkout."""
    resp = client.post("/pledge", data=_form(client, amount="1000000"))
    assert resp.status_code == 400 and "At most $999,999.99 in one gift." in resp.get_data(as_text=True)
    assert pledge_count() == 0
    assert client.post("/pledge", data=_form(client, amount="999999.99")).status_code == 303
    assert db.session.scalar(sa.select(Pledge.amount)) == 99_999_999


def test_bad_email_rerenders_with_message(client, campaign):
    resp = client.post("/pledge", data=_form(client, email="not-an-email", amount="30"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "valid email" in html and 'value="30"' in html and 'value="not-an-email"' in html
    assert pledge_count() == 0


def test_overlong_credit_name_is_refused_with_a_clear_message(client, campaign):
    resp = client.post("/pledge", data=_form(client, credit_name="x" * 120))
    assert resp.status_code == 400
    assert "at most 80 characters" in resp.get_data(as_text=True).lower()
    assert pledge_count() == 0


def test_double_submitted_form_makes_one_pledge(client, campaign):
    data = _form(client, form_key="same-form-page")
    first = client.post("/pledge", data=data)
    second = client.post("/pledge", data=data)
    assert first.headers["Location"] == second.headers["Location"]
    assert pledge_count() == 1


def test_pledge_form_is_rate_limited(client, campaign):
    data = _form(client, amount="abc")
    codes = [client.post("/pledge", data=data).status_code for _ in range(21)]
    assert codes[:20] == [400] * 20 and codes[20] == 429


def test_cancelled_checkout_returns_to_the_form_with_the_amount(client, campaign):
    resp = client.post("/pledge", data=_form(client, amount="75.25"))
    checkout = resp.headers["Location"]
    back = client.post(checkout, data={"csrf_token": csrf_token(client, checkout), "outcome": "cancel"})
    assert back.status_code == 303 and "amount=7525" in back.headers["Location"] and "cancelled=1" in back.headers["Location"]
    html = client.get(back.headers["Location"]).get_data(as_text=True)
    assert 'value="75.25"' in html and "nothing was charged" in html


def test_test_checkout_page_is_marked_and_shows_amount_and_tier(client, campaign):
    checkout = client.post("/pledge", data=_form(client, amount="50")).headers["Location"]
    html = client.get(checkout).get_data(as_text=True)
    assert "TEST MODE — no money moves" in html
    assert "$50.00" in html and "Collector" in html
    for label in ("Pay (test)", "Payment still processing", "Payment fails", "Cancel"):
        assert label in html


def _checkout(client, amount="50", outcome="paid"):
    checkout = client.post("/pledge", data=_form(client, amount=amount)).headers["Location"]
    resp = client.post(checkout, data={"csrf_token": csrf_token(client, checkout), "outcome": outcome})
    assert resp.status_code == 303
    return resp.headers["Location"]


def test_paid_checkout_lands_on_a_confirmed_thank_you_and_moves_the_total(client, campaign):
    thank_you = _checkout(client, "50", "paid")
    html = client.get(thank_you).get_data(as_text=True)
    assert "your donation is confirmed" in html and "Paid" in html and "Collector" in html
    assert 'http-equiv="refresh"' not in html
    assert "ada@example.org" not in html and "Ada L." not in html  # the URL may be shared: no personal data
    assert "your name will not appear" not in html
    assert "$50</strong>" in client.get("/").get_data(as_text=True)


def test_the_thank_you_page_says_once_that_the_receipt_is_coming(client, campaign):
    """The status line says the receipt is on its way; the paragraph under it said it again, in
    both languages ("收据正在发往您的邮箱" then "收据很快就会到您的邮箱")."""
    thank_you = _checkout(client, "50", "paid")
    html = client.get(thank_you).get_data(as_text=True)
    assert html.lower().count("receipt is on its way") == 1 and "sign in with your email" in html
    assert html.count("donation is confirmed") == 1  # the heading says it; the line under it does not again
    zh = client.get(thank_you + "&lang=zh-Hans").get_data(as_text=True)
    arriving = re.findall(r"收据[^<。]*(?:发往|到)您的邮箱", zh)  # what the receipt says is another sentence
    assert arriving == ["收据马上就会发到您的邮箱"], re.findall(r"[^>]*收据[^<]*", zh)
    # The heading thanks; the line under it confirms: "谢谢您！捐款已确认" was said twice.
    assert "<h1>谢谢您的支持！</h1>" in zh and zh.count("捐款已确认") == 1


@pytest.mark.parametrize("lang, says", [("en", ("First month paid", "$12.00 every month")),
                                        ("zh-Hans", ("首月已支付", "每月 US$12.00"))])
def test_a_monthly_gift_is_thanked_as_repeating(client, campaign, lang, says):
    """The status line said "Paid $12.00", nothing telling the donor that it repeats."""
    checkout = client.post("/pledge", data=_form(client, amount="12", interval="month")).headers["Location"]
    thank_you = client.post(checkout, data={"csrf_token": csrf_token(client, checkout), "outcome": "paid"}).headers["Location"]
    html = client.get(thank_you + f"&lang={lang}").get_data(as_text=True)
    line = re.search(r'<p class="status-line">(.*?)</p>', html, re.S).group(1)
    badge, amount = says
    assert f'<span class="badge state-paid">{badge}</span> {amount}' == line.strip(), line


def test_processing_payment_is_not_thanked_yet_and_refreshes(client, campaign):
    thank_you = _checkout(client, "20", "processing")
    html = client.get(thank_you).get_data(as_text=True)
    assert "still processing" in html and "confirmed" not in html
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html and 'data-watch="1"' in html
    # the test checkout can then settle it
    pledge_id = thank_you.split("pledge=")[1]
    client.post(f"/checkout/test/{pledge_id}",
                data={"csrf_token": csrf_token(client, f"/checkout/test/{pledge_id}"), "outcome": "succeeded"})
    assert "your donation is confirmed" in client.get(thank_you).get_data(as_text=True)


def test_failed_payment_offers_a_retry_with_the_amount(client, campaign):
    thank_you = _checkout(client, "20", "failed")
    html = client.get(thank_you).get_data(as_text=True)
    assert "did not go through" in html and "/?amount=2000" in html
    assert "$0</strong>" in client.get("/").get_data(as_text=True)


def test_thank_you_before_any_payment_event_says_waiting(client, campaign):
    checkout = client.post("/pledge", data=_form(client)).headers["Location"]
    pledge_id = checkout.rsplit("/", 1)[1]
    html = client.get(f"/thank-you?pledge={pledge_id}").get_data(as_text=True)
    assert "Waiting for the payment" in html and "Thank you" not in html


def test_unknown_pledge_is_404(client, campaign):
    assert client.get("/thank-you?pledge=nope").status_code == 404
    assert client.get("/checkout/test/" + "0" * 32).status_code == 404


@pytest.mark.parametrize("app_overrides", [{"STRIPE_TEST_MODE": False}])
def test_test_checkout_does_not_exist_outside_test_mode(client, app_overrides):
    assert client.get("/checkout/test/" + "a" * 32).status_code == 404


def test_anonymous_donor_is_reassured(client, campaign):
    checkout = client.post("/pledge", data=_form(client, anonymous="1")).headers["Location"]
    thank_you = client.post(checkout, data={"csrf_token": csrf_token(client, checkout), "outcome": "paid"})
    html = client.get(thank_you.headers["Location"]).get_data(as_text=True)
    assert "your name will not appear in the credits" in html and "Ada L." not in html
