"""The producers' donations: the list (search, filters, pages), a donor's page, refunds from the
console, the receipts a donor's mail server refused sent again, and the supporters' CSV for the
crew. Producers only (never the partner); every write is a POST with a CSRF token, every refund,
receipt sent again and export audited. Thin views: the use cases are in rewards/donations.py,
rewards/refunds.py, rewards/receipts.py and admin/donors.py."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from filmfund import csvsafe
from filmfund.admin import donors as donor_views
from filmfund.admin.forms import parse_day
from filmfund.audit import record_audit
from filmfund.auth.models import User
from filmfund.db import new_id
from filmfund.errors import DomainError, NotFoundError, field_of, for_people
from filmfund.extensions import db
from filmfund.i18n import format_money
from filmfund.money import parse_dollars
from filmfund.rewards import donations, receipts, refunds
from filmfund.rewards.campaign import current_campaign
from filmfund.security import role_required

bp = Blueprint("donations_admin", __name__, url_prefix="/admin/donations", template_folder="templates")

FILTERS = ("q", "from", "to", "source", "state")


@bp.get("/")
@role_required("producer")
def list_page():
    args = {k: (request.args.get(k) or "").strip() for k in FILTERS}
    campaign = current_campaign()
    page, error, bad = {"items": [], "next": None}, None, None
    try:
        page = donations.list_donations(
            campaign, q=args["q"] or None, from_=parse_day(args["from"], "from"), to=parse_day(args["to"], "to"),
            source=args["source"] or None, state=args["state"] or None,
            cursor=request.args.get("cursor") or None)
    except DomainError as err:  # said under the list, tied to the filter it names (focused)
        error, bad = for_people(err.message), field_of(err)
    kept = {k: v for k, v in args.items() if v}
    return render_template("admin/donations.html", page=page, args=args, kept=kept, error=error, bad=bad,
                           first=not request.args.get("cursor"), states=donations.STATES,
                           sources=donations.SOURCES, campaign=campaign), 400 if error else 200


def _donor_page(user_id: int, *, errors: dict | None = None, bad: dict | None = None, values: dict | None = None,
                status: int = 200):
    """`errors`/`bad`/`values` by donation id: a refused refund's message, the field it is about
    (the page ties the message to it and focuses it; None: the whole form), what was typed."""
    campaign = current_campaign()
    ctx = donor_views.donor_page(campaign, user_id)
    return render_template("admin/donor.html", d=ctx, campaign=campaign, errors=errors or {}, bad=bad or {},
                           values=values or {}, form_key=new_id()), status


@bp.get("/donors/<int:user_id>")
@role_required("producer")
def donor_page(user_id: int):
    return _donor_page(user_id)


@bp.post("/<int:donation_id>/refund")
@role_required("producer")
def refund(donation_id: int):
    f = request.form
    donation = refunds.get_donation(donation_id)
    user_id = donation.user_id
    try:
        amount = parse_dollars(f.get("amount")) if (f.get("amount") or "").strip() else None
        req = refunds.request_refund(donation_id, amount, f.get("reason", ""),
                                     client_key=(f.get("form_key") or None), requested_by=current_user)
        db.session.commit()  # the request first: its id is the idempotency key of the call to Stripe
        refunds.send_to_stripe(req)
        db.session.commit()
        refunds.raise_failure(req)
    except DomainError as err:
        db.session.rollback()
        # More than remains is about the amount typed, though its message names no field.
        field = field_of(err) or ("amount" if err.code == "refund_exceeds_remaining" else None)
        return _donor_page(user_id, errors={donation_id: for_people(err.message)}, bad={donation_id: field},
                           values={donation_id: f.to_dict()}, status=err.status if err.status in (400, 409) else 400)
    money = format_money(req.amount, donation.currency)
    if req.state.value == "succeeded":
        flash(_("Refunded %(money)s: booked in the ledger; the totals, the donor's tier and the partner's share "
                "are updated.", money=money), "success")
    else:
        flash(_("Refund of %(money)s asked of Stripe. It is booked when Stripe confirms it (usually within "
                "seconds); until then it counts as pending.", money=money), "success")
    return redirect(url_for("donations_admin.donor_page", user_id=user_id, _anchor=f"gift-{donation_id}"), code=303)


@bp.post("/donors/<int:user_id>/receipts")
@role_required("producer")
def resend_receipts(user_id: int):
    """The donor's receipts their mail server refused every time (flagged, tried no more), sent
    again with fresh tries: lifted as a later accepted receipt lifts them (receipts.py's one home),
    by this producer. A double click finds none left to lift."""
    if db.session.get(User, user_id) is None:
        raise NotFoundError("No such donor.")
    n = receipts.lift_refused_receipts(user_id, "a producer asked to send it again", actor=current_user)
    db.session.commit()  # the receipts' sends are queued by this commit
    flash(ngettext("%(num)s refused receipt is being sent again; this page shows what became of it.",
                   "%(num)s refused receipts are being sent again; this page shows what became of them.", n)
          if n else _("No refused receipt is left to send again."), "success")
    return redirect(url_for("donations_admin.donor_page", user_id=user_id, _anchor="mail"), code=303)


@bp.get("/supporters.csv")
@role_required("producer")
def supporters_csv():
    campaign = current_campaign()
    record_audit("export.supporters", f"campaign:{campaign.slug}",
                 {"format": "csv", "rows": donor_views.supporters_count(campaign)})
    db.session.commit()
    return csvsafe.download(donor_views.supporters_csv(campaign), "supporters.csv")
