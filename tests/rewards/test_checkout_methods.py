"""Checkout as Stripe receives it (issue 12.3): card, Alipay and WeChat Pay for a one-time gift
(FILMFUND_PAYMENT_METHODS, with the web client WeChat Pay requires), in the donor's language."""
import pytest

from filmfund.config import load_settings

# Its subject is what Checkout is asked for, not the database (tests/conftest.py).
pytestmark = pytest.mark.one_database


def _session_form(fake_stripe):
    [req] = [r for r in fake_stripe.requests if r["path"] == "/v1/checkout/sessions"]
    return req["form"]


def test_a_chinese_reader_gets_alipay_wechat_pay_and_a_chinese_checkout(client, campaign, fake_stripe):
    r = client.post("/api/v1/pledges", json={"amount": 5000, "email": "mei@example.org"},
                    headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert r.status_code == 201, r.get_json()
    form = _session_form(fake_stripe)
    assert form["locale"] == "zh"
    assert [form[f"payment_method_types[{i}]"] for i in range(3)] == ["card", "alipay", "wechat_pay"]
    assert "payment_method_types[3]" not in form
    assert form["payment_method_options[wechat_pay][client]"] == "web"
    assert form["mode"] == "payment"
    assert form["line_items[0][price_data][product_data][name]"] == "捐助《心碎而活：寻找中国被拐的孩子》"


def test_an_english_reader_gets_an_english_checkout(client, campaign, fake_stripe):
    client.post("/api/v1/pledges?lang=en", json={"amount": 5000, "email": "ann@example.org"},
                headers={"Accept-Language": "zh-CN"})
    form = _session_form(fake_stripe)
    assert form["locale"] == "en"
    assert form["line_items[0][price_data][product_data][name]"].startswith("Donation to Living with Dead Hearts")
    assert form["payment_method_types[1]"] == "alipay"


def test_the_page_form_opens_checkout_in_the_page_language(client, campaign, fake_stripe):
    from tests.site.helpers import csrf_token

    token = csrf_token(client, "/?lang=zh-Hans")
    r = client.post("/pledge", data={"csrf_token": token, "amount": "25", "email": "li@example.org", "form_key": ""})
    assert r.status_code == 303 and r.headers["Location"].startswith("https://checkout.example/")
    assert _session_form(fake_stripe)["locale"] == "zh"


@pytest.mark.parametrize("app_overrides", [{"PAYMENT_METHODS": []}])
def test_no_methods_configured_lets_stripe_choose(client, campaign, fake_stripe):
    client.post("/api/v1/pledges", json={"amount": 5000, "email": "d@example.org"})
    form = _session_form(fake_stripe)
    assert not any(k.startswith("payment_method_") for k in form)


@pytest.mark.parametrize("app_overrides", [{"PAYMENT_METHODS": ["card"]}])
def test_card_only_sends_no_wechat_option(client, campaign, fake_stripe):
    client.post("/api/v1/pledges", json={"amount": 5000, "email": "d@example.org"})
    form = _session_form(fake_stripe)
    assert form["payment_method_types[0]"] == "card" and "payment_method_types[1]" not in form
    assert "payment_method_options[wechat_pay][client]" not in form


def test_the_setting_is_read_from_the_environment(tmp_path):
    base = {"FILMFUND_INSTANCE_DIR": str(tmp_path)}
    assert load_settings(base)["PAYMENT_METHODS"] == ["card", "alipay", "wechat_pay"]
    assert load_settings({**base, "FILMFUND_PAYMENT_METHODS": ""})["PAYMENT_METHODS"] == []
    assert load_settings({**base, "FILMFUND_PAYMENT_METHODS": " card , WeChat_Pay "})["PAYMENT_METHODS"] == \
        ["card", "wechat_pay"]
    with pytest.raises(ValueError, match="FILMFUND_PAYMENT_METHODS"):
        load_settings({**base, "FILMFUND_PAYMENT_METHODS": "card;drop table"})
    assert load_settings({**base, "FILMFUND_LANGUAGES": "zh-hans,en"})["LANGUAGES"] == ["zh-Hans", "en"]
    with pytest.raises(ValueError, match="FILMFUND_LANGUAGES"):
        load_settings({**base, "FILMFUND_LANGUAGES": "fr"})


def test_the_form_says_which_methods_each_kind_of_gift_allows(client, campaign):
    en = client.get("/?lang=en").get_data(as_text=True)
    assert "A one-time gift can be paid by card, Alipay or WeChat Pay; monthly gifts are by card only." in en
    zh = client.get("/?lang=zh-Hans").get_data(as_text=True)
    assert "单次捐款可使用银行卡、支付宝或微信支付；每月捐款仅支持银行卡。" in zh
