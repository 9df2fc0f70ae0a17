"""The daily address surveys and credits proofs when the mail server refuses one donor's address
(550): that donor's try is counted and passed over, the others are mailed (one dead mailbox used
to stop every donor's survey, every day). A mail server that is down or closing (421) stops the
run, and nobody's try is counted. Real SMTP servers on loopback (aiosmtpd)."""
from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.fulfil import tasks
from filmfund.fulfil.fulfilment import SURVEY_MAX_MAILS
from filmfund.fulfil.models import ReminderMail
from tests.comms.test_update_outage import refusing_server
from tests.site.helpers import pay


def _recipients(sink) -> list[str]:
    return sorted(rcpt for envelope in sink.envelopes for rcpt in envelope.rcpt_tos)


def _tries(kind: str) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(ReminderMail).where(ReminderMail.kind == kind))


@pytest.fixture
def two_donors(campaign):
    """Two $50 donors (a DVD to post, a name in the credits); the first one's mailbox is gone."""
    pay(5000, "gone@example.org", credit_name="Gone Donor")
    pay(5000, "alive@example.org", credit_name="Alive Donor")


def test_remind_mails_the_other_donors_when_one_address_is_refused(app, two_donors, runner):
    with refusing_server(app, refuse={"gone@example.org"}) as sink:
        result = runner.invoke(args=["rewards", "remind"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "address surveys sent: 1 (1 refused by the mail server" in result.output
    assert "credits proofs sent: 1 (1 refused by the mail server" in result.output
    assert _recipients(sink) == ["alive@example.org", "alive@example.org"]  # the survey and the proof
    assert (_tries("address_survey"), _tries("credit_proof")) == (2, 2)  # the refused ones count as tries


def test_a_refused_address_uses_up_that_donors_tries_as_reminders_would(app, campaign, two_donors):
    now = utcnow()
    with refusing_server(app, refuse={"gone@example.org"}) as sink:
        assert tasks.survey_mailing(campaign, now) == (1, 1)  # (sent, refused)
        assert tasks.survey_mailing(campaign, now + timedelta(days=1)) == (0, 0)  # tried: it waits a week
        for week in range(1, SURVEY_MAX_MAILS):
            assert tasks.survey_mailing(campaign, now + timedelta(days=8 * week)) == (1, 1)
        # Each has had their SURVEY_MAX_MAILS: the dead address is not tried every day for ever.
        assert tasks.survey_mailing(campaign, now + timedelta(days=8 * SURVEY_MAX_MAILS)) == (0, 0)
    assert _recipients(sink) == ["alive@example.org"] * SURVEY_MAX_MAILS


def test_a_mail_server_closing_stops_the_run_and_counts_nobodys_try(app, campaign, two_donors):
    now = utcnow()
    with refusing_server(app, closing=1) as sink:  # "421 closing" to the first message
        with pytest.raises(smtplib.SMTPDataError):
            tasks.survey_mailing(campaign, now)
        assert _tries("address_survey") == 0 and sink.envelopes == []
        # Back in service: both get their first survey, not a reminder.
        assert tasks.survey_mailing(campaign, now) == (2, 0)
    assert all("Reminder" not in e.content.decode() for e in sink.envelopes)


def test_the_producers_button_says_how_many_addresses_were_refused(app, two_donors, client, login_as, producer):
    from tests.site.helpers import csrf_token

    login_as(client, producer)
    with refusing_server(app, refuse={"gone@example.org"}) as sink:
        page = client.post("/admin/rewards/surveys", data={"csrf_token": csrf_token(client, "/admin/rewards")},
                           follow_redirects=True).get_data(as_text=True)
    assert _recipients(sink) == ["alive@example.org"]
    assert "Address survey sent to 1 donor" in page
    assert "The mail server refused 1 donor&#39;s address; the others were mailed." in page


def test_a_refused_survey_or_proof_shows_as_refused_not_sent(app, campaign, two_donors, client, login_as, producer):
    """The producers' page of a donor listed a survey and a proof that the donor's mail server had
    refused as "sent", and so did the donor's own data export: the producers waited for an answer
    to a mail nobody got. Each is kept as refused, with what was refused (the address, here)."""
    import html as html_lib
    import re

    from filmfund.auth.services import find_user

    with refusing_server(app, refuse={"gone@example.org"}):
        assert tasks.survey_mailing(campaign) == (1, 1) and tasks.proof_mailing(campaign) == (1, 1)
    assert sorted(db.session.scalars(sa.select(ReminderMail.refused)), key=str) == [None, None, "address", "address"]
    login_as(client, producer)
    for email, status in (("gone@example.org", "refused: address"), ("alive@example.org", None)):
        page = client.get(f"/admin/donations/donors/{find_user(email).id}").get_data(as_text=True)
        mail = re.search(r'<section class="card" id="mail".*?</section>', page, re.S).group(0)
        lines = [line for line in re.findall(r"<li>(.*?)</li>", mail, re.S) if "survey" in line or "proof" in line]
        assert len(lines) == 2, lines
        for line in lines:
            assert (status in line and "state-failed" in line) if status else "badge" not in line, line

    def reminders(lang: str) -> list[dict]:
        html = login_as(app.test_client(), find_user("gone@example.org")).get(
            f"/account/data/readable?lang={lang}").get_data(as_text=True)
        section = re.search(r'id="data-fulfil_reminders".*?</section>', html, re.S).group(0)
        return [dict((html_lib.unescape(dt), html_lib.unescape(dd)) for dt, dd in
                     re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", row))
                for row in re.findall(r"<dl.*?</dl>", section, re.S)]

    assert [row["Not delivered"] for row in reminders("en")] == ["Refused by your mail server: the address"] * 2
    assert [row["未送达"] for row in reminders("zh-Hans")] == ["被您的邮件服务器拒收：邮箱地址"] * 2
