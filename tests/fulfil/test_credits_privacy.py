"""Privacy beats the picture lock: after the credits are frozen, an erasure, an anonymity request
or a rewards opt-out takes the donor's name out of everything the credits keep and serve (the
stored frozen list for an erasure, the export, the rendered roll and the text kept beside it), and
the producers are told to render the roll again (real ffmpeg, real database)."""
from __future__ import annotations

import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.fulfil import credits
from filmfund.fulfil import roll as roll_video
from filmfund.fulfil.models import CreditsState
from filmfund.rewards import donor_data, donors, privacy, refunds
from filmfund.rewards.models import DonorProfile
from tests.helpers import record_offline
from tests.site.helpers import pay


def _user(email):
    from filmfund.auth.services import find_user

    return find_user(email)


def _frozen_with_a_rendered_roll(campaign):
    pay(100, "amy@example.org", credit_name="Amy Withdrawn")
    pay(100, "cy@example.org", credit_name="Cy Supporter")
    credits.freeze(campaign, "cli")
    db.session.commit()
    out = roll_video.render_roll(campaign, size=(160, 90), fps=5, speed=600, out=roll_video.roll_path())
    db.session.commit()
    assert "Amy Withdrawn" in roll_video._rendered_text_path(out).read_text(encoding="utf-8")
    return out


def _served_nowhere(campaign, staff, out, name):
    """The roll is not served, neither it nor its kept text holds the name, the exports leave it
    out, and the producers are told to render the roll again."""
    resp = staff.get("/admin/credits/roll.mp4")
    assert resp.status_code == 409 and "render it again" in resp.get_data(as_text=True)
    assert not out.exists()
    assert name not in roll_video._rendered_text_path(out).read_text(encoding="utf-8")
    assert roll_video.roll_needs_rendering(campaign)
    page = staff.get("/admin/credits").get_data(as_text=True)
    assert 'id="roll-stale"' in page and 'id="credits-withdrawn"' in page and '<p id="roll-download" hidden>' in page
    assert name not in staff.get("/admin/credits.txt").get_data(as_text=True)
    assert credits.export_lines(campaign) == [("supporters", "Cy Supporter")]


def _render_again(campaign, staff, out):
    roll_video.render_roll(campaign, size=(160, 90), fps=5, speed=600, out=out)
    db.session.commit()
    assert not roll_video.roll_needs_rendering(campaign)
    resp = staff.get("/admin/credits/roll.mp4")
    assert resp.status_code == 200 and resp.get_data()[4:8] == b"ftyp"
    resp.close()


def test_an_erasure_after_the_freeze_leaves_no_name_stored_or_served(campaign, client, login_as, producer):
    out = _frozen_with_a_rendered_roll(campaign)
    donor_data.erase_donor(_user("amy@example.org"))
    db.session.commit()
    stored = db.session.scalar(sa.select(CreditsState.frozen_lines).where(CreditsState.campaign_id == campaign.id))
    assert "Amy Withdrawn" not in stored and "Cy Supporter" in stored
    assert not out.exists()  # taken down by the erasure's commit, before anyone looks
    # The line keeps its place without a name: the producers still see one was taken out.
    assert credits.changes_since_freeze(campaign) == {"added": [], "removed": [], "withdrawn": [("supporters", "")]}
    staff = login_as(client, producer)
    _served_nowhere(campaign, staff, out, "Amy Withdrawn")
    _render_again(campaign, staff, out)
    assert "Amy Withdrawn" not in roll_video._rendered_text_path(out).read_text(encoding="utf-8")


def test_an_erasure_rolled_back_keeps_the_roll(campaign):
    out = _frozen_with_a_rendered_roll(campaign)
    donor_data.erase_donor(_user("amy@example.org"))
    db.session.rollback()
    assert out.exists() and not roll_video.roll_needs_rendering(campaign)
    assert ("supporters", "Amy Withdrawn") in credits.export_lines(campaign)


def test_anonymity_after_the_freeze_takes_the_rendered_roll_down(campaign, client, login_as, producer):
    out = _frozen_with_a_rendered_roll(campaign)
    donors.update_donor_settings(_user("amy@example.org"), via="account", anonymous=True)
    db.session.rollback()  # a change rolled back keeps the roll
    assert out.exists() and not roll_video.roll_needs_rendering(campaign)
    donors.update_donor_settings(_user("amy@example.org"), via="account", anonymous=True)
    db.session.commit()
    assert not out.exists()  # taken down by the change's commit, before anyone looks
    staff = login_as(client, producer)
    _served_nowhere(campaign, staff, out, "Amy Withdrawn")
    _render_again(campaign, staff, out)


def test_anonymity_from_a_later_gift_takes_the_roll_down_when_it_is_booked(campaign, client, login_as, producer):
    out = _frozen_with_a_rendered_roll(campaign)
    pay(100, "amy@example.org", anonymous=True)  # a later gift asks for anonymity: applied at once
    assert not out.exists()  # taken down by the booking's commit
    staff = login_as(client, producer)
    page = staff.get("/admin/credits").get_data(as_text=True)
    assert not out.exists() and "Amy Withdrawn" not in roll_video._rendered_text_path(out).read_text(encoding="utf-8")
    assert 'id="roll-stale"' in page and '<p id="roll-download" hidden>' in page


def test_a_roll_out_of_date_for_another_reason_is_kept_but_not_served(campaign, client, login_as, producer):
    """A new supporter after a draft roll (before the freeze): the roll shows no withdrawn name, so
    it stays, but it is not what the credits print, so it is not handed out."""
    pay(100, "cy@example.org", credit_name="Cy Supporter")
    out = roll_video.render_roll(campaign, size=(160, 90), fps=5, speed=600, out=roll_video.roll_path())
    db.session.commit()
    pay(100, "dee@example.org", credit_name="Dee New")
    staff = login_as(client, producer)
    assert staff.get("/admin/credits/roll.mp4").status_code == 409
    assert out.exists() and roll_video.roll_needs_rendering(campaign)


def test_an_opt_out_after_the_freeze_leaves_the_credits_a_full_refund_is_flagged(campaign, producer, runner):
    """Donors who opted out of rewards never appear in the credits (the contract), frozen or not.
    A refund after the freeze is a change of the live list for the producers to decide on: the
    frozen list keeps the line and the change is flagged (credits.changes_since_freeze)."""
    record_offline("optout@example.org", 5000, recorded_by=producer.email, credit_name="Opted Out")
    refunded = record_offline("refunded@example.org", 5000, recorded_by=producer.email, credit_name="Refunded Whole")
    record_offline("cy@example.org", 5000, recorded_by=producer.email, credit_name="Cy Supporter")
    credits.freeze(campaign, "cli")
    db.session.commit()
    donors.update_donor_settings(_user("optout@example.org"), via="account", rewards_opt_out=True)
    refunds.request_refund(refunded.id, None, "all", requested_by=producer)
    db.session.commit()
    out = runner.invoke(args=["credits", "export", "--format", "csv"])
    assert out.stdout.splitlines() == ["section,name", "supporters,Cy Supporter", "supporters,Refunded Whole"]
    assert "declined rewards" in out.stderr and "1 removed" in out.stderr
    assert credits.changes_since_freeze(campaign) == {"added": [], "removed": [("supporters", "Refunded Whole")],
                                                       "withdrawn": [("supporters", "Opted Out")]}
    # Opting back in puts the frozen line back: the withdrawal is read, never stored.
    donors.update_donor_settings(_user("optout@example.org"), via="account", rewards_opt_out=False)
    db.session.commit()
    assert ("supporters", "Opted Out") in credits.export_lines(campaign)


def test_withdrawn_from_credits_asks_the_credited_rule(campaign, producer):
    """privacy.withdrawn_from_credits (SQL) is exactly "not privacy.credited" (Python)."""
    for email, choices in [("named@example.org", {}), ("anon@example.org", {"anonymous": True}),
                           ("out@example.org", {"rewards_opt_out": True}), ("noname@example.org", {"credit_name": ""}),
                           ("erased@example.org", {})]:
        record_offline(email, 5000, recorded_by=producer.email, credit_name="A Name")
        if choices:
            donors.update_donor_settings(_user(email), via="account", **choices)
    donor_data.erase_donor(_user("erased@example.org"))
    db.session.commit()
    ids = list(db.session.scalars(sa.select(DonorProfile.user_id)))
    assert len(ids) == 5
    expected = {uid for uid in ids if not privacy.credited(db.session.get(DonorProfile, uid))}
    assert privacy.withdrawn_from_credits(ids) == expected and len(expected) == 4
