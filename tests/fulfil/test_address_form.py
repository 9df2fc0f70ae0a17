"""The shipping address as a donor types it and reads it back (the browser review's section 6):
every field to mend said at once, beside its field, in the page's language, what was typed kept;
the country list in the reader's order (in Chinese: the likely places, then by pinyin); the address
read back with the country's name, in Chinese with full-width punctuation and, for an address in
China, from the country down (fulfil/addresses.read_back, the one home of that sentence); and the
test checkout's shipping address asking for the country from the same list."""
from __future__ import annotations

import re

import pytest

from filmfund.auth.services import find_user
from filmfund.extensions import db
from filmfund.fulfil import addresses, fulfilment
from filmfund.fulfil.countries import ISO_COUNTRIES, LIKELY_FOR_CHINESE, PINYIN, country_choices, country_name
from filmfund.i18n import in_language
from filmfund.rewards import donors
from filmfund.rewards.models import ShippingAddress
from tests.helpers import make_pledge
from tests.site.helpers import CSRF_RE, csrf_token, pay

BEIJING = {"name": "李雷", "line1": "朝阳区建国路88号 SOHO现代城 A座 2201室", "line2": "", "city": "北京",
           "state": "北京", "postal_code": "100022", "country": "CN"}
LYON = {"name": "Mei Chen", "line1": "12 Rue des Lilas", "line2": "", "city": "Lyon", "state": "",
        "postal_code": "69003", "country": "FR"}
EMPTY = {"name": "", "line1": "", "line2": "Flat 3", "city": "", "state": "", "postal_code": "518000", "country": ""}
ZH_REQUIRED = "为确保包裹送达，此项必填。"


def _invalid_fields(html: str) -> list[str]:
    return re.findall(r'\sid="(?:addr|ship)-(\w+)"[^>]*aria-invalid="true"', html)


def _autofocused(html: str) -> list[str]:
    return re.findall(r'<(?:input|select|p)\s(?:[^>]*?\s)?id="([\w-]+)"[^>]*\sautofocus', html)  # a select's id comes first


def _error_of(html: str, prefix: str, field: str) -> str:
    return re.search(rf'<p class="field-error" id="{prefix}-{field}-error"[^>]*>([^<]*)</p>', html).group(1)


@pytest.fixture
def dvd_donor(campaign, client, login_as):
    """A signed-in donor at the DVD tier: a physical reward still to post."""
    pay(5000, "mei@example.org")
    return login_as(client, find_user("mei@example.org"))


@pytest.mark.parametrize("lang, required, flagged", [
    ("en", "Required for the parcel to arrive.", ["name", "line1", "city", "country"]),
    ("zh-Hans", ZH_REQUIRED, ["name", "country", "city", "line1"]),  # asked from the country down
])
def test_every_missing_field_of_the_address_is_said_at_once_beside_it(dvd_donor, lang, required, flagged):
    """Sent empty, the address comes back with the name, the address, the city and the country
    flagged together (before: the name alone, then the next field at the next try), each
    described by its own message under it, the first focused, what was typed kept."""
    donor = dvd_donor
    token = csrf_token(donor, f"/account/address?lang={lang}")
    resp = donor.post(f"/account/address?lang={lang}", data={"csrf_token": token, **EMPTY})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert _invalid_fields(html) == flagged
    for field in ("name", "line1", "city", "country"):
        assert _error_of(html, "addr", field) == required
        assert re.search(rf'id="addr-{field}"[^>]*aria-describedby="addr-{field}-error"', html)
    assert _autofocused(html) == ["addr-name"]  # the first to mend, and only it
    assert 'value="Flat 3"' in html and 'value="518000"' in html  # what was typed is kept
    assert db.session.get(ShippingAddress, find_user("mei@example.org").id) is None


def test_a_mailed_survey_says_every_field_to_mend_too(campaign, client):
    pay(5000, "lin@example.org")
    user = find_user("lin@example.org")
    link = fulfilment.survey_link(user)
    link = link[link.index("/rewards/survey/"):]
    token = CSRF_RE.search(client.get(link).get_data(as_text=True)).group(1)
    resp = client.post(link + "?lang=zh-Hans", data={"csrf_token": token, "form": "address",
                                                     **{**EMPTY, "name": "林", "country": "ZZ"}})
    html = resp.get_data(as_text=True)
    # In Chinese the form asks from the country down: the first field to mend is the country.
    assert resp.status_code == 400 and _invalid_fields(html) == ["country", "city", "line1"]
    assert _error_of(html, "addr", "city") == ZH_REQUIRED
    assert _error_of(html, "addr", "country").startswith("请选择国家或地区")
    assert _autofocused(html) == ["addr-country"] and 'value="林"' in html


def test_clean_address_names_every_field_and_an_api_client_still_reads_the_first():
    with pytest.raises(fulfilment.AddressRefused) as refused:
        fulfilment.clean_address({"name": "x" * 121, "line1": "", "city": "Lyon", "country": "fr"})
    assert list(refused.value.fields) == ["name", "line1"]
    assert refused.value.message == refused.value.fields["name"] and refused.value.message.startswith("name: ")
    assert refused.value.code == "invalid_address" and refused.value.status == 400
    assert fulfilment.clean_address({**LYON, "country": " fr "})["country"] == "FR"


@pytest.mark.parametrize("code, kept", [
    ("100022", "100022"), ("１０００２２", "100022"), ("100 022", "100022"),  # an input method's full width
])
def test_a_chinese_postal_code_is_kept_in_the_digits_the_label_prints(app, code, kept):
    assert fulfilment.clean_address({**BEIJING, "postal_code": code})["postal_code"] == kept


@pytest.mark.parametrize("fields, message", [
    ({**BEIJING, "postal_code": "10002"}, "postal_code: a postal code in China has 6 digits, like 100080."),
    ({**BEIJING, "postal_code": "1000220"}, "postal_code: a postal code in China has 6 digits, like 100080."),
    ({**BEIJING, "postal_code": "北京"}, "postal_code: a postal code in China has 6 digits, like 100080."),
    ({**LYON, "country": "US", "postal_code": "9411"}, "postal_code: a US ZIP code has 5 digits"),
])
def test_a_postal_code_that_cannot_be_right_is_refused(app, fields, message):
    """One digit missing sends a Chinese parcel to another city: the codes of China and the US are
    checked as their posts read them; other countries' (GB's "LS1 1AA", a code left out where a
    country has none) as typed."""
    with pytest.raises(fulfilment.AddressRefused) as refused:
        fulfilment.clean_address(fields)
    assert list(refused.value.fields) == ["postal_code"] and refused.value.fields["postal_code"].startswith(message)
    for typed in ("94110-1234", "94110 1234", "941101234", "９４１１０－１２３４"):
        assert fulfilment.clean_address({**LYON, "country": "US", "postal_code": typed})["postal_code"] == "94110-1234"
    assert fulfilment.clean_address({**LYON, "country": "GB", "postal_code": "LS1 1AA"})["postal_code"] == "LS1 1AA"
    assert fulfilment.clean_address({**BEIJING, "postal_code": ""})["postal_code"] == ""


def test_a_wrong_chinese_postal_code_is_said_beside_its_field_in_chinese(dvd_donor):
    token = csrf_token(dvd_donor, "/account/address?lang=zh-Hans")
    resp = dvd_donor.post("/account/address?lang=zh-Hans",
                          data={"csrf_token": token, **{**BEIJING, "postal_code": "10002"}})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and _invalid_fields(html) == ["postal"]  # the box's id: addr-postal
    assert _error_of(html, "addr", "postal_code") == "中国的邮政编码是 6 位数字，例如 100080。"
    assert _autofocused(html) == ["addr-postal"] and 'value="10002"' in html
    assert db.session.get(ShippingAddress, find_user("mei@example.org").id) is None


@pytest.mark.parametrize("lang, order, pairs", [
    ("en", ["name", "line1", "line2", "postal", "city", "state", "country"], [["postal", "city"], ["state", "country"]]),
    # as a Chinese envelope and a Chinese shop's form ask: the country, the province, the city, the street
    ("zh-Hans", ["name", "country", "state", "city", "postal", "line1", "line2"],
     [["country", "state"], ["city", "postal"]]),
])
def test_the_address_form_asks_in_the_order_its_reader_writes_an_address(dvd_donor, lang, order, pairs):
    """The fields in the page's order (which is also the keyboard's), each with its label before
    it, the pairs side by side in a row; sent from either page, the same address is kept."""
    html = dvd_donor.get(f"/account/address?lang={lang}").get_data(as_text=True)
    form = html[html.index('id="address-form"'):html.index('id="address-submit"')]
    assert re.findall(r'<(?:input|select) [^>]*\bid="addr-(\w+)"', form) == order
    for field in order:
        assert form.index(f'<label for="addr-{field}"') < form.index(f'id="addr-{field}"')
    rows = form.split('<div class="row">')[1:]
    assert [re.findall(r'<(?:input|select) [^>]*\bid="addr-(\w+)"', row)[:2] for row in rows] == pairs
    token = csrf_token(dvd_donor, f"/account/address?lang={lang}")
    resp = dvd_donor.post(f"/account/address?lang={lang}", data={"csrf_token": token, **BEIJING})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
    kept = db.session.get(ShippingAddress, find_user("mei@example.org").id)
    assert (kept.line1, kept.city, kept.postal_code, kept.country) == (BEIJING["line1"], "北京", "100022", "CN")


# ---------------------------------------------------------------- the country list

def test_a_chinese_reader_finds_the_likely_places_first_then_the_rest_by_pinyin():
    codes = [code for code, _ in country_choices("zh-Hans")]
    names = [name for _, name in country_choices("zh-Hans")]
    assert sorted(codes) == sorted(ISO_COUNTRIES) and len(codes) == len(ISO_COUNTRIES)
    assert tuple(codes[:len(LIKELY_FOR_CHINESE)]) == LIKELY_FOR_CHINESE
    # named as a simplified-Chinese address form names them (countries.CHINESE_PLACES)
    assert names[:4] == ["中国", "中国香港", "中国澳门", "中国台湾"]
    rest = names[len(LIKELY_FOR_CHINESE):]
    assert rest[0] == "阿尔巴尼亚" and rest[-1] == "中非共和国"  # a, then … zhong: not 不丹, 东帝汶, 中国…
    # by the first syllable: 秘鲁 is bì (after 比利时), 不丹 bù (after 波兰), 东帝汶 dōng (after 丹麦)
    assert rest.index("比利时") < rest.index("秘鲁") < rest.index("冰岛")
    assert rest.index("波兰") < rest.index("不丹") < rest.index("布隆迪")
    assert rest.index("丹麦") < rest.index("东帝汶") < rest.index("多哥")
    assert rest.index("阿富汗") < rest.index("阿根廷")  # the second syllable: fu before gen
    # every character of today's names has its pinyin (a new name would sort by its own character)
    assert not {ch for name in names for ch in name if ch.isalnum() and ch not in PINYIN}


def test_a_chinese_reader_reads_the_mainlands_country_names():
    """pycountry's zh_CN names had a wrong character (柬埔塞), Taiwan's forms (瓜地马拉, 马尔他) and
    half-width brackets: countries.CHINESE_NAMES corrects them, in the list and read back."""
    names = dict(country_choices("zh-Hans"))
    assert (names["KH"], names["BO"], names["GT"], names["KG"]) == ("柬埔寨", "玻利维亚", "危地马拉", "吉尔吉斯斯坦")
    assert (names["PF"], names["MT"], names["BD"]) == ("法属波利尼西亚", "马耳他", "孟加拉国")
    assert names["FK"] == "福克兰群岛（马尔维纳斯）" and names["CC"] == "科科斯（基林）群岛"
    assert not [name for name in names.values() if set(name) & set("()[]")]  # no half-width bracket
    assert country_name("KH", "zh-Hans") == "柬埔寨" and country_name("KH", "en") == "Cambodia"
    rest = [name for code, name in country_choices("zh-Hans") if code not in LIKELY_FOR_CHINESE]
    assert rest.index("哈萨克斯坦") < rest.index("柬埔寨") < rest.index("捷克")  # ha < jian < jie: by its pinyin
    assert rest.index("瓦努阿图") < rest.index("危地马拉") < rest.index("委内瑞拉") < rest.index("文莱")  # wa, wei, wen


def test_the_address_forms_show_the_country_list_in_groups_in_chinese(dvd_donor):
    zh = dvd_donor.get("/account/address?lang=zh-Hans").get_data(as_text=True)
    assert '<optgroup label="常用">' in zh and '<optgroup label="其他国家和地区">' in zh
    options = re.findall(r'<option value="([A-Z]{2})"', zh)
    assert options[:4] == ["CN", "HK", "MO", "TW"] and len(options) == len(ISO_COUNTRIES)
    en = dvd_donor.get("/account/address?lang=en").get_data(as_text=True)
    assert "<optgroup" not in en and re.findall(r'<option value="([A-Z]{2})"', en)[:2] == ["AF", "AX"]


# ---------------------------------------------------------------- the address read back

def test_an_address_is_read_back_in_the_readers_language_and_order(app):
    with app.test_request_context(), in_language("zh-Hans"):
        assert addresses.read_back(BEIJING) == "中国 北京 朝阳区建国路88号 SOHO现代城 A座 2201室，邮编 100022，李雷"
        assert addresses.read_back(LYON) == "Mei Chen，12 Rue des Lilas，69003 Lyon，法国"
        # an address in China written in Latin letters keeps the order it was typed in
        assert addresses.read_back({**LYON, "line1": "88 Jiefang Road", "city": "Chengdu", "postal_code": "",
                                    "country": "CN"}) == "Mei Chen，88 Jiefang Road，Chengdu，中国"
        said = donors.describe_change("shipping_address", {**BEIJING, "state": None, "region": "北京市"})
        assert said == "把回报寄到：中国 北京市 北京 朝阳区建国路88号 SOHO现代城 A座 2201室，邮编 100022，李雷"
    with app.test_request_context(), in_language("en"):
        assert addresses.read_back(LYON) == "Mei Chen, 12 Rue des Lilas, 69003 Lyon, France"
        assert addresses.read_back(BEIJING) == "李雷, 朝阳区建国路88号 SOHO现代城 A座 2201室, 100022 北京, China"
        assert country_name("CN", "en") == "China" and addresses.read_back(None) == ""


def test_the_survey_and_the_account_read_the_address_back_so(dvd_donor, client):
    user = find_user("mei@example.org")
    fulfilment.save_address(user, BEIJING, source="account")
    db.session.commit()
    link = fulfilment.survey_link(user)
    survey = client.application.test_client().get(link[link.index("/rewards/survey/"):] + "?lang=zh-Hans")
    said = re.search(r'id="survey-current-address">([^<]*)<', survey.get_data(as_text=True)).group(1)
    assert said == ("我们登记的地址：中国 北京 朝阳区建国路88号 SOHO现代城 A座 2201室，邮编 100022，李雷。"
                    "如有错误，请在下方修改。")
    account = dvd_donor.get("/account?lang=zh-Hans").get_data(as_text=True)
    assert "寄送地址：中国 北京 朝阳区建国路88号 SOHO现代城 A座 2201室，邮编 100022，李雷。" in account
    assert ", CN" not in account and ", CN" not in survey.get_data(as_text=True)


# ---------------------------------------------------------------- the test checkout

def test_the_test_checkout_asks_the_country_from_the_list_and_says_every_field(campaign, client):
    pledge = make_pledge(amount=5000, email="ship@example.org")
    page = client.get(f"/checkout/test/{pledge.id}?lang=zh-Hans").get_data(as_text=True)
    assert re.search(r'<select id="ship-country" name="ship_country"', page)
    assert '<optgroup label="常用">' in page and 'maxlength="2"' not in page
    token = CSRF_RE.search(page).group(1)
    resp = client.post(f"/checkout/test/{pledge.id}?lang=zh-Hans",
                       data={"csrf_token": token, "outcome": "paid", "ship_name": "王", "ship_postal_code": "100022"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and _invalid_fields(html) == ["line1", "city", "country"]
    assert _error_of(html, "ship", "line1") == ZH_REQUIRED and _autofocused(html) == ["ship-line1"]
    assert 'value="王"' in html and 'value="100022"' in html
    data = {"csrf_token": token, "outcome": "paid", **{f"ship_{k}": v for k, v in BEIJING.items()}}
    assert client.post(f"/checkout/test/{pledge.id}", data=data).status_code == 303
    db.session.expire_all()
    assert db.session.get(ShippingAddress, find_user("ship@example.org").id).country == "CN"
