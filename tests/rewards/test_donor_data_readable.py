"""The donor's own data "to read" (/account/data/readable): codes said in words, in the reader's
language; the JSON export (/account/data) keeps the codes a program reads."""
from __future__ import annotations

import html as html_lib
import re

import sqlalchemy as sa

from filmfund.auth.services import find_user
from filmfund.extensions import db
from filmfund.fulfil import fulfilment
from filmfund.rewards import donor_data, mail_prefs
from tests.helpers import make_pledge
from tests.site.helpers import pay

EMAIL = "reader@example.org"


def _exported_tables() -> set[sa.Table]:
    tables = {table for table, column in donor_data._user_columns() if column.name not in donor_data._AUTHOR_COLUMNS}
    return tables | {db.metadata.tables["users"], db.metadata.tables["pledges"]}


def _enum_codes() -> dict[tuple[str, str], set[str]]:
    return {(table.name, column.name): set(column.type.enums) for table in _exported_tables()
            for column in table.columns if isinstance(column.type, sa.Enum)}


def test_every_code_the_export_can_hold_has_its_words(app):
    """Every column the schema declares an enum of, in a table the export reads, has words for each
    of its codes: a code added later fails here until it has them (tests/test_i18n.py then asks for
    their Chinese). Without them the page showed "granted", "owed", "stripe" in Chinese too."""
    codes = _enum_codes()
    assert ("entitlements", "status") in codes and ("questions", "state") in codes  # the schema is read
    missing = {key: sorted(values - set(map(str, donor_data._CODE_WORDS.get(key, {}))))
               for key, values in codes.items()}
    assert {key: values for key, values in missing.items() if values} == {}


def _sections(html: str) -> dict[str, list[tuple[str, str]]]:
    out = {}
    for key, body in re.findall(r'<section class="card data-section" id="data-([^"]+)".*?>(.*?)</section>', html, re.S):
        out[key] = [(html_lib.unescape(dt), html_lib.unescape(dd))
                    for dt, dd in re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", body)]
    return out


def _reader(app, login_as):
    pay(25000, EMAIL, credit_name="李小红")            # $250: the credit, DVDs, questions ...
    make_pledge(amount=2500, email=EMAIL)              # a form filled in, not paid
    reader = find_user(EMAIL)
    mail_prefs.opt_out(reader.id, mail_prefs.NEWS, via="account")
    fulfilment.save_address(reader, {"name": "李小红", "line1": "天河路 1 号", "city": "广州", "state": "owed",
                                     "country": "CN", "postal_code": "510000"}, source="account")
    db.session.commit()
    return login_as(app.test_client(), reader)


def test_the_export_to_read_says_its_codes_in_the_readers_words(app, campaign, login_as):
    client = _reader(app, login_as)
    every_code = set().union(*_enum_codes().values(), {"donor", "month", "usd", "account", "news"})
    for lang, words in (("en", {
        "entitlements": "Granted", "donations": "Paid online", "pledges": "Not paid yet",
        "user_roles": "Donor", "mail_opt_outs": "On your account page", "shipping_addresses": "China",
    }), ("zh-Hans", {
        "entitlements": "已获得", "donations": "在线支付", "pledges": "尚未付款",
        "user_roles": "捐助者", "mail_opt_outs": "在账户页面", "shipping_addresses": "中国",
    })):
        sections = _sections(client.get(f"/account/data/readable?lang={lang}").get_data(as_text=True))
        shown = [value for rows in sections.values() for _label, value in rows]
        assert sorted({v for v in shown if v in every_code} - {"owed"}) == [], lang
        for section, word in words.items():
            assert word in [value for _label, value in sections[section]], (lang, section)
        dollars = {"en": "US Dollar", "zh-Hans": "美元"}[lang]  # the currency by its name, not its code
        assert dollars in [value for _label, value in sections["donations"]], lang
        # The region she typed is shown as typed, though it reads like a code (a parcel's "owed"
        # would be a second one), under the address form's own label (not "State" as in a state).
        region = {"en": "State, province or region", "zh-Hans": "省、州或地区"}[lang]
        assert shown.count("owed") == 1 and (region, "owed") in sections["shipping_addresses"]


def test_the_json_export_keeps_the_codes(app, campaign, login_as):
    client = _reader(app, login_as)
    doc = client.get("/account/data?lang=zh-Hans").get_json()
    assert doc["account"]["roles"] == ["donor"]
    assert {row["status"] for row in doc["tables"]["entitlements"]} == {"granted"}
    assert {row["source"] for row in doc["tables"]["donations"]} == {"stripe"}
    assert sorted(row["state"] for row in doc["tables"]["pledges"]) == ["paid", "pending"]


def _audit_section(html: str) -> list[tuple[str, str]]:
    return _sections(html)["audit_log"]


def test_the_actions_recorded_about_her_say_who_and_how_in_words(app, campaign, login_as):
    """The audit section showed "user:2", {"via": "account"} and the chain's hashes: the log's own
    notation. A person reads who acted (herself), on what (her account) and how, in her language;
    the chain's number and hashes are for a program checking the log, in the JSON download."""
    client = _reader(app, login_as)
    reader = find_user(EMAIL)
    client.get("/account/data")  # the JSON download: an entry of the log, by her, on her account
    doc = client.get("/account/data").get_json()
    [entry] = doc["tables"]["audit_log"]
    assert entry["actor"] == f"user:{reader.id}" and entry["details"] == '{"via": "account"}'
    assert len(entry["entry_hash"]) == 64 and entry["seq"]  # the JSON keeps the chain
    for lang, you, account, via in (("en", "You", "Your account", "On your account page"),
                                    ("zh-Hans", "您", "您的账户", "在账户页面")):
        html = client.get(f"/account/data/readable?lang={lang}").get_data(as_text=True)
        rows = _audit_section(html)
        values = [value for _label, value in rows]
        assert you in values and account in values, (lang, rows)
        assert any(via in value for value in values), (lang, rows)
        text = re.sub(r"<[^>]+>", " ", html)
        assert f"user:{reader.id}" not in text and '{"via"' not in text, lang
        assert entry["entry_hash"] not in text and not re.search(r"\b[0-9a-f]{64}\b", text), lang


def test_another_account_in_a_staff_members_export_is_named_by_its_role(app, campaign, producer, partner):
    """The export of a staff account (built as the page builds it) names the partner's account that
    it gave a role to as the partner, never by its number, and the role in words."""
    from filmfund.audit import record_audit, user_ref

    record_audit("role.grant", user_ref(partner), {"role": "partner"}, actor=producer)
    db.session.commit()
    with app.test_request_context("/?lang=en"):
        sections = donor_data.readable_export(donor_data.donor_data(producer))
    [audit] = [s for s in sections if s["key"] == "audit_log"]
    [row] = [dict(r) for r in audit["rows"] if ("Action", "Role given") in r]
    assert (row["Done by"], row["About"], row["Details"]) == ("You", "The partner charity", "Role: Partner")


def test_her_credit_lines_section_is_named_and_no_two_parts_share_a_title(app, campaign, login_as):
    """The proof's section showed as "executive_producers" (栏目 executive_producers), and a table
    naming the account in two columns (expenses: recorded by, voided by) gave two parts both
    titled "Expenses you recorded"."""
    from filmfund.fulfil import credits

    pay(50000, "exec@example.org", credit_name="Olu Exec")  # $500: the Executive Producer credit
    reader = find_user("exec@example.org")
    credits.approve_proof(reader, campaign)
    db.session.commit()
    client = login_as(app.test_client(), reader)
    for lang, section, voided in (("en", "Executive Producers", "Expenses you voided"),
                                  ("zh-Hans", "执行制片人", "您作废的支出")):
        html = client.get(f"/account/data/readable?lang={lang}").get_data(as_text=True)
        assert section in [value for _label, value in _sections(html)["credit_proofs"]], lang
        assert "executive_producers" not in re.sub(r"<[^>]+>", " ", html), lang
        titles = re.findall(r'<h2 id="data-h-\d+">([^<]*?) <span', html)
        assert voided in titles and len(titles) == len(set(titles)), (lang, titles)
