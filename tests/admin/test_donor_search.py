"""The producers' donor search (`/admin/donations/?q=`) as a producer answering a donor's mail types
it: case and accents aside, on SQLite and PostgreSQL alike. Before, "ELODIE" or "elodie" found
no "Élodie", "zoe" no "Zoë", "angstrom" no "Ångström", a full-width "ｅｌｏｄｉｅ" from a Chinese
input method nothing, and "istanbul" found "İstanbul" on PostgreSQL only (SQLite's lower() folds
ASCII alone). Names are still shown as written; only the search key (typed.search_key, stored in
users.email_key and donor_profiles.credit_name_key on every write) is folded."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from filmfund.auth.models import User
from filmfund.auth.services import find_user
from filmfund.extensions import db
from filmfund.rewards.models import DonorProfile
from tests.helpers import record_offline

NAMES = {"d1@example.org": "Élodie Dupré", "d2@example.org": "Zoë Ångström", "d3@example.org": "Ångström Lab",
         "d4@example.org": "İstanbul Film Club", "d5@example.org": "王小明", "d6@example.org": "Straße der Kommune",
         "d7@example.org": "Zoë 王芳", "d8@example.org": "Søren Łukasz"}


def _found(client, q: str) -> list[str]:
    """The addresses of the donors the list shows (its rows' links, not the search box)."""
    response = client.get("/admin/donations/", query_string={"q": q})
    assert response.status_code == 200
    return sorted(set(re.findall(r'data-label="Donor"><a href="[^"]+">([^<]+)</a>',
                                 response.get_data(as_text=True))))


@pytest.fixture
def donors(campaign):
    for email, name in NAMES.items():
        record_offline(email, 1000, credit_name=name)


@pytest.mark.parametrize("typed, emails", [
    ("ELODIE", ["d1@example.org"]), ("elodie dupre", ["d1@example.org"]), ("Élodie", ["d1@example.org"]),
    ("ｅｌｏｄｉｅ", ["d1@example.org"]),                       # a Chinese input method's full-width letters
    ("zoe", ["d2@example.org", "d7@example.org"]), ("ZOE ANG", ["d2@example.org"]),
    ("angstrom", ["d3@example.org"]), ("istanbul", ["d4@example.org"]), ("strasse", ["d6@example.org"]),
    ("王小", ["d5@example.org"]), ("zoe 王", ["d7@example.org"]), ("王芳", []),
    ("Ｄ５", ["d5@example.org"]), ("D7@EXAMPLE.ORG", ["d7@example.org"]),
    ("soren", ["d8@example.org"]), ("SØREN LUK", ["d8@example.org"]),  # ø and ł as a plain keyboard types them
])
def test_a_producer_finds_a_donor_however_typed(client, login_as, producer, donors, typed, emails):
    login_as(client, producer)
    assert _found(client, typed) == emails


def test_names_are_shown_as_written(client, login_as, producer, donors):
    login_as(client, producer)
    html = client.get("/admin/donations/", query_string={"q": "zoe"}).get_data(as_text=True)
    assert "Zoë Ångström" in html and "Zoë 王芳" in html


def test_an_address_is_found_case_and_accents_aside(client, campaign, login_as, producer):
    """An address's local part is kept as the donor typed it (Zoë.Martin@): "zoe.mar", the whole
    address in capitals, or full-width from a Chinese input method all find it."""
    record_offline("Zoë.Martin@example.org", 1000)
    login_as(client, producer)
    for typed in ("zoe.mar", "ZOË.MARTIN@EXAMPLE.ORG", "ｚｏｅ．ｍａｒｔｉｎ＠ｅｘａｍｐｌｅ"):
        assert _found(client, typed) == ["Zoë.Martin@example.org"], typed


def test_an_anonymous_donor_is_found_by_the_producers_as_they_see_them(client, campaign, login_as, producer):
    """privacy.own_name: the crew see an anonymous donor's own name, flagged; so the search finds it."""
    record_offline("shy@example.org", 1000, credit_name="Anaïs Quiet", anonymous=True)
    login_as(client, producer)
    html = client.get("/admin/donations/", query_string={"q": "anais"}).get_data(as_text=True)
    assert "shy@example.org" in html and "Anaïs Quiet" in html and ">anonymous<" in html


def test_an_erased_donor_is_found_neither_by_old_name_nor_by_old_address(client, campaign, login_as, producer):
    from filmfund.rewards import donor_data

    record_offline("eloise.gone@example.org", 1000, credit_name="Éloïse Partie")
    donor_data.erase_donor(find_user("eloise.gone@example.org"))
    db.session.commit()
    login_as(client, producer)
    for typed in ("eloise", "Éloïse Partie", "eloise.gone@example.org", "ELOISE.GONE"):
        assert _found(client, typed) == [], typed
    keys = db.session.execute(sa.select(User.email_key, DonorProfile.credit_name_key)
                              .join(DonorProfile, DonorProfile.user_id == User.id)).one()
    assert keys.credit_name_key is None and keys.email_key.startswith("erased-")


def test_a_name_the_donor_changes_is_found_by_its_new_form_only(client, campaign, login_as, producer):
    """The key is kept with every write of the name (here the donor's own settings change)."""
    from filmfund.rewards import donors as donor_settings

    record_offline("renamed@example.org", 1000, credit_name="Old Name")
    donor_settings.update_donor_settings(find_user("renamed@example.org"), via="account", credit_name="Chloé Nouveau")
    db.session.commit()
    login_as(client, producer)
    assert _found(client, "chloe nou") == ["renamed@example.org"]
    assert _found(client, "old name") == []


def test_donors_written_in_bulk_are_found_by_their_address(client, campaign, login_as, producer):
    """`filmfund demo seed` writes its accounts with one Core INSERT of many rows: each row's key is
    written by the column's default (db.derived_default), as an ORM flush writes it."""
    from filmfund.rewards import demo

    demo.seed(30, 12)
    login_as(client, producer)
    assert _found(client, "DONOR-000001") == [demo.demo_email(10), demo.demo_email(11)]
