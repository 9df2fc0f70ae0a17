"""A donor's address where their data is erased or shown to them: the erasure deletes their mail
from the outbox folder and no one else's; the export they read shows the address as they wrote it."""
from __future__ import annotations

import email
from email import policy

import pytest

from filmfund.auth.services import find_user, normalize_email
from filmfund.extensions import db
from filmfund.mail import outbox_messages, send_mail
from filmfund.rewards import donor_data
from tests.site.helpers import pay


def _recipients() -> list[str]:
    return sorted(str(email.message_from_bytes(p.read_bytes(), policy=policy.default)["To"])
                  for p in outbox_messages())


def test_erasing_a_donor_deletes_their_mail_and_no_one_elses(app, campaign):
    """an@example.org is inside joan@example.org and an@example.org.uk: neither is the erased
    donor's, and their receipts stay. The erased donor's go, however their address was cased in
    the header of a mail written by hand, and a mail to them among others' goes too."""
    for address in ("joan@example.org", "an@example.org.uk", "an@example.org"):
        pay(2000, address)
    send_mail("Mei <AN@Example.org>", "Written by hand", "x")
    send_mail("keep@example.org, an@example.org", "To two", "x")
    assert len(_recipients()) == 5

    donor_data.erase_donor(find_user("an@example.org"))
    db.session.commit()
    assert _recipients() == ["an@example.org.uk", "joan@example.org"]


def test_the_readable_export_shows_an_internationalized_address_in_its_own_letters(app, campaign, client,
                                                                                    login_as):
    """Every page shows an IDNA domain in its own letters (auth.services.email_for_people); the
    export's own fields did not (the account's and the pledges' "Email": xn--fsqu00a.xn--fiqs8s).
    The JSON export, for programs, keeps the stored form."""
    pay(1500, "mei@例子.中国")
    mei = find_user(normalize_email("mei@例子.中国"))
    assert mei.email == "mei@xn--fsqu00a.xn--fiqs8s"
    login_as(client, mei)
    page = client.get("/account/data/readable?lang=zh-Hans").get_data(as_text=True)
    assert "mei@例子.中国" in page and "xn--" not in page
    assert client.get("/account/data").get_json()["account"]["email"] == "mei@xn--fsqu00a.xn--fiqs8s"


def test_an_erased_email_is_not_left_in_the_embedded_database_files(app, campaign):
    """SQLite keeps what a row held until its page is reused: in the write-ahead log, and in the
    freed pages of the file. An erased donor's address must not be readable there by whoever
    gets a copy of the files (a backup, a stolen laptop)."""
    from pathlib import Path

    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("sqlite:///"):
        pytest.skip("PostgreSQL's own files are the operator's to secure (README, \"Production\")")
    pay(2000, "lost-child-search@example.org", credit_name="Zhou Family of Xiamen")
    pay(1500, "stays@example.org")
    donor_data.erase_donor(find_user("lost-child-search@example.org"))
    db.session.commit()
    db.session.remove()

    main = Path(url[len("sqlite:///"):])
    files = [p for p in (main, Path(f"{main}-wal")) if p.exists()]
    assert files
    for kept in files:
        assert b"lost-child-search" not in kept.read_bytes() and b"Zhou Family" not in kept.read_bytes(), kept
    assert b"stays@example.org" in b"".join(p.read_bytes() for p in files)  # a check that can fail
