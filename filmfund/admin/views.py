"""Producer dashboard and partner page. Thin views: parse the form, call a service, render.

Every write is a POST with a CSRF token and needs the producer role; the partner reads
aggregates only (no donor's email or name ever reaches its page).
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from filmfund import csvsafe
from filmfund.admin import charts
from filmfund.admin.forms import parse_day
from filmfund.audit import record_audit
from filmfund.admin import services as admin_services
from filmfund import once
from filmfund.errors import DomainError, ValidationError, field_of, for_people
from filmfund.extensions import db
from filmfund.fulfil import credits as end_credits
from filmfund.media import fixity
from filmfund.rewards import (donors, ledger, ledger_check, payments, receipts, rules, statements, subscriptions,
                              webhooks)
from filmfund.rewards.campaign import campaign_summary, current_campaign
from filmfund.rewards.entitlements import set_entitlement_status
from filmfund.security import role_required
from filmfund.i18n import format_money
from filmfund.money import parse_dollars

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")

INBOX_STATUSES = ("unmatched", "failed", "ignored")


def _dashboard(values: dict | None = None, errors: dict | None = None, status: int = 200, bad: dict | None = None):
    campaign = current_campaign()
    summary = campaign_summary(campaign)
    statement = payments.partner_statement(campaign)
    raised = admin_services.cumulative(ledger.raised_by_day(campaign.id))
    # Asked per status: a flood of processed events must not push an unmatched one out of sight.
    # The hourly ledger check's last result (the check itself reads the whole ledger).
    check = ledger_check.last_check()
    events = sorted([*(e for status in INBOX_STATUSES for e in webhooks.list_webhook_events(status=status, limit=50)),
                     *webhooks.list_stuck_events(limit=50)], key=lambda e: e.received_at, reverse=True)[:100]
    page = render_template(
        "admin/dashboard.html", c=summary, campaign=campaign, st=statement,
        percent=rules.percent_of_goal(summary["raised"], summary["goal"]),
        chart=charts.line_chart(raised, campaign.currency, goal=campaign.goal, label="Money raised",
                               width=560, height=300),
        donations=admin_services.recent_donations(campaign), events=events,
        by_tier=admin_services.donors_by_tier(campaign),
        fulfilment=admin_services.fulfilment_list(campaign, request.args.get("reward", "")[:64] or None,
                                                  after=request.args.get("fafter", "")[:40] or None,
                                                  before=request.args.get("fbefore", "")[:40] or None,
                                                  page=_page_arg(request.args.get("fpage"))),
        payouts=admin_services.payouts(campaign),
        outbox=None if admin_services.smtp_configured() else admin_services.outbox(),
        refused_receipts=receipts.refused_receipts(campaign.id, ledger.money_mode(), limit=50),
        check=check, breaches=check.breaches.splitlines() if check else [], today=date.today().isoformat(), footage_alerts=fixity.alerts(),
        **_monthly_givers(campaign),
        values=values or {}, errors=errors or {}, bad=bad or {}, once=once.new_token())
    db.session.commit()  # ends the read (the page writes nothing: reward items are made at booking)
    return page, status


def _monthly_givers(campaign) -> dict:
    """The monthly givers: how many, what they bring each month, and what their months brought."""
    monthly = subscriptions.producer_summary(campaign)
    series = [(date(int(m[:4]), int(m[5:7]), 1), amount) for m, amount in monthly["by_month"]]
    return {"monthly": monthly, "monthly_chart": charts.line_chart(
        series, campaign.currency, label="Monthly gifts per month", width=560, height=220)}


def _page_arg(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 6 else 1


@bp.get("/")
@role_required("producer")
def dashboard():
    return _dashboard()


def _refused(form_name: str, err: DomainError, **about):
    """The form again, with what was typed (and `about`: which payout a reversal was for)."""
    db.session.rollback()  # nothing half-written: the refused use case may have taken the money lock
    return _dashboard(values={form_name: {**request.form.to_dict(), **about}},
                      errors={form_name: for_people(err.message)}, bad={form_name: field_of(err)}, status=400)


def _done_before(done: once.AlreadyDone, anchor: str):
    """The same form sent again (a double click, a resend): what the first one did stands."""
    db.session.rollback()
    flash(done.message, "success")
    return redirect(url_for("admin.dashboard", _anchor=anchor), code=303)


@bp.post("/donations/offline")
@role_required("producer")
def offline_donation():
    f = request.form
    try:
        fields = dict(email=f.get("email", ""), amount=parse_dollars(f.get("amount")),
                      received_on=parse_day(f.get("received_on"), "received_on"), note=f.get("note", ""),
                      credit_name=f.get("credit_name") or None, anonymous=f.get("anonymous") == "1",
                      rewards_opt_out=f.get("rewards_opt_out") == "1")
        donation = once.run("offline_gift", current_user.id, f.get("once"), fields,
                            lambda: payments.record_offline_donation(**fields, recorded_by=current_user.email))
    except once.AlreadyDone as done:
        return _done_before(done, "offline")
    except DomainError as err:
        return _refused("offline", err)
    db.session.commit()
    donors.mail_gift_notice(donation)  # after the commit: what the gift did, and the link of what waits
    flash(_("Recorded an offline donation of %(amount)s; the totals, the donor's tier and the partner's "
            "share are updated.", amount=format_money(donation.amount, donation.currency)), "success")
    return redirect(url_for("admin.dashboard", _anchor="offline"), code=303)


@bp.post("/payouts")
@role_required("producer")
def record_payout():
    f = request.form
    try:
        paid_on = parse_day(f.get("paid_on"), "paid_on")
        if paid_on is None:
            raise ValidationError(_("paid_on: give the date of the transfer."), code="invalid_date")
        fields = dict(amount=parse_dollars(f.get("amount")), paid_on=paid_on, reference=f.get("reference", ""))
        once.run("payout", current_user.id, f.get("once"), fields,
                 lambda: payments.record_payout(**fields, recorded_by=current_user.email))
    except once.AlreadyDone as done:
        return _done_before(done, "payouts")
    except DomainError as err:
        return _refused("payout", err)
    db.session.commit()
    flash(_("Payout to the partner recorded."), "success")
    return redirect(url_for("admin.dashboard", _anchor="payouts"), code=303)


@bp.post("/payouts/<int:payout_id>/reverse")
@role_required("producer")
def reverse_payout(payout_id: int):
    """A payout recorded by mistake is taken back (a new ledger group, never an edit); the right
    amount is then recorded as a new payout. The form's token keeps a double click to one reversal."""
    f = request.form
    try:
        fields = dict(payout_id=payout_id, reason=f.get("reason", ""))
        payout = once.run("payout_reversal", current_user.id, f.get("once"), fields,
                          lambda: payments.reverse_payout(**fields, reversed_by=current_user.email))
    except once.AlreadyDone as done:
        return _done_before(done, "payouts")
    except DomainError as err:
        if err.status == 404:
            raise
        return _refused("reverse", err, payout_id=payout_id)
    db.session.commit()
    flash(_("Payout %(reference)s of %(amount)s reversed: it no longer counts as paid to the partner.",
            reference=payout.reference, amount=format_money(payout.amount, payout.currency)), "success")
    return redirect(url_for("admin.dashboard", _anchor="payouts"), code=303)


@bp.post("/entitlements/<int:entitlement_id>")
@role_required("producer")
def entitlement_status(entitlement_id: int):
    try:
        set_entitlement_status(entitlement_id, request.form.get("status", ""))
    except DomainError as err:
        if err.status == 404:
            raise
        return _refused("fulfilment", err)
    db.session.commit()
    flash(_("Fulfilment updated."), "success")
    return redirect(url_for("admin.dashboard", _anchor="fulfilment"), code=303)


@bp.get("/credits.csv")
@role_required("producer")
def credits_csv():
    campaign = current_campaign()
    record_audit("export.credits", f"campaign:{campaign.slug}",
                 {"format": "csv", "rows": end_credits.export_count(campaign)})
    db.session.commit()
    return csvsafe.download(end_credits.stream_csv(campaign), "credits.csv")  # streamed: read a chunk at a time


def _partner_context() -> dict:
    """What the partner's page and CSV show: for the partner, everything as it stood at the end of
    yesterday in the campaign's zone (rewards/statements.py, the hold-back); live for producers."""
    campaign = current_campaign()
    as_of = statements.as_of_for(campaign, current_user)
    timeline = statements.timeline(campaign, as_of)
    shares = [(day, due - (timeline[i - 1][1] if i else 0)) for i, (day, due, _paid) in enumerate(timeline)]
    return {"campaign": campaign, "st": statements.statement(campaign, as_of), "as_of": as_of,
            # The partner's list shows a reversed payout, marked; the CSV's payouts are those counted.
            "payouts": statements.payouts_seen(campaign, reversed_too=True),
            "counted_payouts": statements.payouts_seen(campaign, as_of),
            "timeline": timeline, "shares": [(d, s) for d, s in shares if s], "months": statements.months(campaign)}


@bp.get("/partner")
@role_required("partner", "producer")
def partner():
    ctx = _partner_context()
    chart = charts.share_chart(ctx["timeline"], ctx["campaign"].currency)
    return render_template("admin/partner.html", chart=chart, **ctx)


@bp.get("/partner/statement.csv")
@role_required("partner", "producer")
def partner_csv():
    ctx = _partner_context()
    record_audit("export.partner_statement", f"campaign:{ctx['campaign'].slug}", {"format": "csv"})
    db.session.commit()
    return csvsafe.download(admin_services.statement_csv(ctx["st"], ctx["counted_payouts"], ctx["shares"]),
                            "partner-statement.csv")
