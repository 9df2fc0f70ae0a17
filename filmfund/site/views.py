"""Public pages: the campaign and its pledge form, the checkout return pages, the donor's account.

Views are thin: they parse what people typed, call the rewards services, and render.
"""
from __future__ import annotations

import secrets

from flask import (Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request,
                   send_file, session, url_for)
from flask_login import current_user, logout_user

from filmfund.audit import record_audit, user_ref
from filmfund.auth.services import external_url, public_base_url
from filmfund.comms.updates import readable_updates
from filmfund.config import test_payment_refusal
from filmfund.db import commit_keeping, utcnow
from filmfund.errors import ConflictError, DomainError, NotFoundError, for_people
from filmfund.extensions import db, limiter
from filmfund.fulfil import credits, fulfilment
from filmfund.fulfil.countries import country_groups
from filmfund.i18n import (current_language, format_money, in_language, languages, list_separator, mailed_link,
                           word_space, zone_name)
from filmfund.media import services as media_services
from filmfund.media.public import public_media
from filmfund.media.streaming import public_stream_ready
from filmfund.rewards import (campaign_edit, donor_data, donors, entitlements, holdings, mail_prefs, pledges, privacy,
                              rules, stock, subscriptions)
from filmfund.rewards.campaign import campaign_of, campaign_summary, current_campaign
from filmfund.rewards.stripe_gateway import payment_methods
from filmfund.rewards.webhooks import complete_test_checkout
from filmfund.security import role_required
from filmfund.site import page, sharing
from filmfund.money import cents_to_input, parse_dollars
from filmfund.site.texts import _, lazy_gettext
from filmfund.typed import folded

bp = Blueprint("site", __name__, template_folder="templates")

# Which form field a service refusal is about (the services' error codes are stable).
_FIELD_OF_CODE = {"invalid_amount": "amount", "invalid_email": "email", "invalid_credit_name": "credit_name",
                  "invalid_currency": "amount", "invalid_field": "form"}
TEST_OUTCOMES = {"paid": "paid", "processing": "processing", "failed": "failed", "succeeded": "succeeded"}


def _campaign_context() -> dict:
    campaign = current_campaign()
    summary = campaign_summary(campaign)
    share = rules.share_due(max(summary["raised"], 0), summary["partner"]["share_bps"])
    view = page.page_view(campaign, summary["raised"], page.page_language())
    trailer, gallery = _public_media()
    trailer_url = poster = trailer_stream = None
    if trailer is not None:
        trailer_url = external_url("library.public_file", asset_id=trailer.asset_id, what="video", ext="mp4")
        trailer_stream = _trailer_stream(trailer.asset_id)
        if trailer.has_poster:
            poster = external_url("library.public_file", asset_id=trailer.asset_id, what="poster", ext="jpg")
    # Share cards need absolute URLs: the trailer's poster, else the film's share picture.
    artwork = page.artwork_url(campaign, "share")
    share_image = poster or (public_base_url() + artwork if artwork else None)
    page_url = external_url("site.campaign")
    left = stock.stock(campaign.id)
    return {"c": summary, "stock": left, "in_place_of": _in_place_of(campaign, summary, left),
            "partner_share_raised": share, "percent": view["progress"]["percent"], "page": view,
            "trailer": trailer, "trailer_url": trailer_url, "trailer_poster": poster, "gallery": gallery,
            "trailer_stream": trailer_stream,
            "updates": _public_updates(), "page_url": page_url, "share_image": share_image,
            "share_links": sharing.share_links(page_url, summary["title"])}


def _in_place_of(campaign, summary: dict, left: dict[str, dict]) -> dict[str, str]:
    """What the tier list and the live preview say beside a reward that takes the place of another
    (holdings.replacements): "The DVD signed (in place of “A DVD of the finished film”)", so that a
    donor of $100 does not expect two DVDs. Keyed by the reward's key, in the reader's language.
    Nothing beside one sold out (`left`, stock.stock): a donor reaching it now is sent the other."""
    titles = {r["key"]: r["title"] for t in summary["tiers"] for r in t["rewards"]}
    return {key: word_space() + _("(in place of “%(reward)s”)", reward=titles[old])
            for key, old in holdings.replacements(campaign.tiers).items()
            if old in titles and (key not in left or left[key]["left"] > 0)}


def _trailer_stream(asset_id: str) -> str | None:
    """The trailer's HLS master playlist (plain, cacheable) once its package is made."""
    return url_for("library.public_stream_master", asset_id=asset_id) if public_stream_ready(asset_id) else None


def _public_media():
    return public_media()


def _public_updates(limit: int = 3) -> list:
    """The latest updates published to everyone (the public archive's newest)."""
    return readable_updates(None, limit=limit)


def _method_names(methods: list[str]) -> str:
    names = {"card": _("card"), "alipay": _("Alipay"), "wechat_pay": _("WeChat Pay")}
    listed = [str(names.get(m, m.replace("_", " "))) for m in methods]
    if len(listed) == 1:
        return listed[0]
    return _("%(some)s or %(last)s", some=list_separator().join(listed[:-1]), last=listed[-1])


def payment_methods_note() -> str:
    """What the form says about paying: which methods each kind of gift allows."""
    one_time = payment_methods()
    if not one_time:
        return _("Pay with any of the methods Stripe offers you at checkout; monthly gifts are by card only.")
    return _("A one-time gift can be paid by %(methods)s; monthly gifts are by card only.",
             methods=_method_names(one_time))


def pledge_messages() -> dict:
    """The live tier preview's sentences (static/js/pledge.js fills in the {braced} parts)."""
    return {
        "empty": _("Type an amount to see what it brings."),
        "invalid": _("Enter dollars and cents, like 25 or 25.50."),
        # the server's own refusal, word for word, so that the page never says it twice in two ways
        "too_small": for_people(_("amount: the smallest gift is %(amount)s.",
                                  amount=format_money(pledges.MIN_AMOUNT, current_campaign().currency))),
        "share": _("{share} of {amount} goes to {partner}."),
        "opt_out": _("No rewards: your whole gift supports the film and its partner charity."),
        "reaches": _("This reaches the {tier} tier ({amount}+)."),
        "below_one": _("All the rewards of the tier below, plus:"),
        "below_other": _("All the rewards of the {count} tiers below, plus:"),
        "brings": _("It brings:"),
        "next": _("Add {amount} to reach {tier}."),
    }


def _render_campaign(form: dict, errors: dict[str, str], status: int = 200, cancelled: bool = False):
    return render_template("site/campaign.html", form=form, errors=errors, cancelled=cancelled,
                           form_key=secrets.token_urlsafe(16), payment_methods_note=payment_methods_note(),
                           pledge_messages=pledge_messages(), **_campaign_context()), status


@bp.get("/")
def campaign():
    amount = request.args.get("amount", "")
    form = {"amount": "", "email": "", "credit_name": "", "anonymous": False, "rewards_opt_out": False,
            "ref": pledges.clean_ref(request.args.get("ref")) or ""}
    if amount.isascii() and amount.isdigit() and len(amount) <= 9:  # cents, from a cancelled checkout
        form["amount"] = cents_to_input(int(amount))
    elif form["ref"]:  # a visit from a share link (a cancelled checkout's return is not a new visit)
        sharing.count_visit(current_campaign().id, form["ref"])
        db.session.commit()
    return _render_campaign(form, {}, cancelled=request.args.get("cancelled") == "1")


@bp.get("/artwork/<name>")
def artwork(name: str):
    """The film's artwork named by the campaign file (banner, share picture, icon)."""
    path = page.artwork_file(current_campaign(), name)
    if path is None or not path.is_file():
        abort(404)
    resp = send_file(path, max_age=86400 * 30)  # the URL carries the campaign's version
    return resp


@bp.post("/pledge")
@limiter.limit("20 per minute; 200 per hour")
def pledge():
    f = request.form
    form = {"amount": f.get("amount", "")[:40], "email": f.get("email", "")[:254],
            "credit_name": f.get("credit_name", "")[:400], "ref": pledges.clean_ref(f.get("ref", "")[:40]) or "",
            "anonymous": f.get("anonymous") == "1", "rewards_opt_out": f.get("rewards_opt_out") == "1",
            "interval": "month" if f.get("interval") == "month" else "once"}
    errors: dict[str, str] = {}
    try:
        amount = parse_dollars(form["amount"])
    except DomainError as err:
        errors["amount"] = err.message
        amount = None
    if not form["email"].strip():
        errors["email"] = _("Enter your email: your receipt and your rewards go there.")
    if errors:
        return _render_campaign(form, errors, 400)
    kwargs = dict(amount=amount, email=form["email"], credit_name=form["credit_name"] or None,
                  anonymous=form["anonymous"], rewards_opt_out=form["rewards_opt_out"], ref=form["ref"] or None,
                  interval="month" if form["interval"] == "month" else None)
    # A double-clicked submit makes one pledge; "form:" keeps these keys apart from the API's.
    key = "form:" + f["form_key"][:64] if f.get("form_key") else None
    try:
        try:
            made = pledges.create_pledge(**kwargs, idempotency_key=key)
        except ConflictError:  # the same form page re-sent with other values: a new pledge
            made = pledges.create_pledge(**kwargs)
        # Committed before its Checkout Session opens (a call to Stripe in live mode): the session
        # names the pledge, and Stripe's webhook, booked by another process, must find it.
        commit_keeping(db.session, made)
        if pledges.open_checkout(made):
            commit_keeping(db.session, made)
    except DomainError as err:
        errors[_FIELD_OF_CODE.get(err.code, "form")] = for_people(err.message)
        return _render_campaign(form, errors, 400)
    return redirect(made.checkout_url, code=303)


@bp.get("/thank-you")
def thank_you():
    pledge = pledges.get_pledge(request.args.get("pledge", ""))
    status = pledges.pledge_status(pledge)
    campaign = campaign_of(pledge)
    return render_template("site/thank_you.html", s=status, campaign=campaign,
                           share_bps=campaign.share_bps, outcome=donors.gift_outcome(pledge.id))


@bp.route("/checkout/test/<pledge_id>", methods=["GET", "POST"])
@limiter.limit("60 per minute", methods=["POST"])
def test_checkout(pledge_id: str):
    # The local stand-in for Stripe Checkout exists only without a Stripe key.
    if not current_app.config.get("STRIPE_TEST_MODE"):
        abort(404)
    refusal = test_payment_refusal(current_app.config, request.remote_addr, request.host)
    if refusal:
        abort(403, description=refusal)
    pledge = pledges.get_pledge(pledge_id)
    if not (pledge.checkout_session_id or "").startswith("cs_test_local_"):
        abort(404)  # a pledge made with real Stripe has no local checkout
    if request.method == "POST":
        outcome = request.form.get("outcome", "")
        if outcome == "cancel":
            return redirect(url_for("site.campaign", amount=pledge.amount, cancelled=1, ref=pledge.ref), code=303)
        if outcome not in TEST_OUTCOMES:
            abort(400, description=_("Choose one of the buttons."))
        shipping, refused = _test_shipping(pledge, outcome)
        if refused:
            return render_template("site/checkout_test.html", s=pledges.pledge_status(pledge),
                                   campaign=campaign_of(pledge), ships=True, shipping_errors=refused,
                                   shipping=request.form, countries=country_groups(current_language())), 400
        _complete_test_checkout(pledge.id, TEST_OUTCOMES[outcome], shipping)
        return redirect(url_for("site.thank_you", pledge=pledge.id), code=303)
    status = pledges.pledge_status(pledge)
    if status["state"] in ("paid", "failed", "expired"):
        return redirect(url_for("site.thank_you", pledge=pledge.id), code=303)
    ships = fulfilment.pledge_ships(pledge)
    return render_template("site/checkout_test.html", s=status, campaign=campaign_of(pledge), ships=ships,
                           shipping={}, countries=country_groups(current_language()) if ships else [])


def _test_shipping(pledge, outcome: str) -> tuple[dict | None, dict[str, str] | None]:
    """Like Stripe Checkout's shipping-address collection: asked of a pledge at a DVD tier. The
    address, or every field to mend (field -> message)."""
    if outcome not in ("paid", "processing") or not fulfilment.pledge_ships(pledge):
        return None, None
    fields = {f: request.form.get(f"ship_{f}", "")[:400] for f in fulfilment.ADDRESS_FIELDS}
    if not any(v.strip() for v in fields.values()):
        return None, None  # left empty: the address survey asks for it later
    try:
        return fulfilment.clean_address(fields), None
    except fulfilment.AddressRefused as err:
        return None, {field: for_people(message) for field, message in err.fields.items()}


def _complete_test_checkout(pledge_id: str, outcome: str, shipping: dict | None = None) -> dict:
    return complete_test_checkout(pledge_id, outcome, shipping)


@bp.get("/account")
@role_required("donor")
def account(settings_errors: dict | None = None, form: dict | None = None, status: int = 200):
    user = current_user._get_current_object()
    campaign = current_campaign()
    ents = entitlements.donor_entitlements(user, campaign)
    donations = donor_data.donor_donations(user)
    tiers = campaign.tiers
    next_tier = next((t for t in tiers if t.min_amount > ents["total"]), None)
    settings = donors.settings_doc(donors.profile_for(user.id))
    waiting = [donors.describe_change(c["field"], c["value"]) for c in donors.pending_changes(user.id)]
    stopped = mail_prefs.opted_out(user.id)
    topics = [{"topic": t, "title": title, "on": t not in stopped} for t, title in mail_prefs.topics_for(user)]
    page = render_template("site/account.html", ents=ents, donations=donations, campaign=campaign,
                           next_tier=next_tier, library=media_services.library_for(user), settings=settings, topics=topics,
                           waiting=waiting, monthly=subscriptions.donor_subscriptions(user),
                           settings_errors=settings_errors or {}, form=form or {}, erase_word=str(ERASE_WORD))
    db.session.commit()  # the reward items its statement made as it rendered (fulfil.statement)
    return page, status


def _current_donor():
    return current_user._get_current_object()


@bp.post("/account/settings")
@role_required("donor")
@limiter.limit("30 per minute")
def account_settings():
    """The donor's credit name and anonymity (at once, everywhere), or rewards on/off (turning them
    off needs the explicit confirmation box: it withdraws the rewards already earned)."""
    user, f = _current_donor(), request.form
    if f.get("form") == "rewards":
        if f.get("rewards") not in ("on", "off"):
            return account(settings_errors={"rewards": _("Choose rewards on or off.")}, status=400)
        if f["rewards"] == "off" and f.get("confirm") != "1":
            return account(settings_errors={"rewards": _("Tick the box to confirm that your rewards are withdrawn.")},
                           form={"rewards": "off"}, status=400)
        changes = {"rewards_opt_out": f["rewards"] == "off"}
    else:
        changes = {"credit_name": f.get("credit_name", "")[:400] or None, "anonymous": f.get("anonymous") == "1"}
    named_before = privacy.public_name_of(user.id)  # the name the credits would print
    try:
        donors.update_donor_settings(user, via="account", **changes)
        db.session.commit()
    except DomainError as err:
        field = "credit_name" if err.code == "invalid_credit_name" else "form"
        return account(settings_errors={field: for_people(err.message)}, form=dict(f), status=400)
    flash(_("Your settings are saved."), "info")
    renamed = "credit_name" in changes and privacy.public_name_of(user.id) not in (named_before, None)
    if renamed and credits.credits_frozen(current_campaign()):  # saved, but not what the film prints yet
        flash(_("The credits are already locked for the film: your new name goes to the producers, "
                "who decide whether it can still go in. Your account page shows what the film prints."), "info")
    return redirect(url_for("site.account") + "#settings", code=303)


@bp.post("/account/subscriptions/<subscription_id>/cancel")
@role_required("donor")
@limiter.limit("30 per minute")
def account_cancel_subscription(subscription_id: str):
    """Stop a monthly gift: no further payment; what was paid stays given (and counted)."""
    user = _current_donor()
    try:
        subscriptions.cancel(user, subscription_id, via="account")
    except NotFoundError:
        abort(404)
    except DomainError as err:  # Stripe could not be reached: nothing changed, try again
        flash(for_people(err.message), "error")
        return redirect(url_for("site.account") + "#monthly", code=303)
    db.session.commit()
    flash(_("Your monthly gift is cancelled: no further payment will be taken. Thank you for your support."), "info")
    return redirect(url_for("site.account") + "#monthly", code=303)


@bp.post("/account/mail")
@role_required("donor")
@limiter.limit("30 per minute")
def account_mail():
    """One toggle per kind of optional mail (receipts and sign-in links always go)."""
    user = _current_donor()
    wanted = set(request.form.getlist("topic"))
    if wanted - {t for t, _ in mail_prefs.topics_for(user)}:
        return account(settings_errors={"mail": _("Unknown kind of mail.")}, status=400)
    for topic, _title in mail_prefs.topics_for(user):
        if topic in wanted:
            mail_prefs.opt_in(user.id, topic)
        else:
            mail_prefs.opt_out(user.id, topic, via="account")
    db.session.commit()  # every toggle in one commit
    flash(_("Your mail preferences are saved."), "info")
    return redirect(url_for("site.account") + "#mail", code=303)


@bp.get("/account/receipts/<int:donation_id>")
@role_required("donor")
def account_receipt(donation_id: int):
    name, text = donor_data.receipt_text(_current_donor(), donation_id)
    disposition = "attachment" if request.args.get("download") == "1" else "inline"
    return Response(text, mimetype="text/plain",
                    headers={"Content-Disposition": f'{disposition}; filename="{name}"'})


@bp.get("/account/data")
@role_required("donor")
@limiter.limit("10 per minute")
def account_data():
    """The same document as GET /api/v1/me/data, for the signed-in donor, as a file."""
    donor = _current_donor()
    response = jsonify(donor_data.donor_data(donor))
    record_audit("export.donor_data", user_ref(donor), {"via": "account"})
    db.session.commit()
    response.headers["Content-Disposition"] = 'attachment; filename="my-filmfund-data.json"'
    return response


@bp.get("/account/data/readable")
@role_required("donor")
def account_data_readable():
    """The same export as /account/data, for a person to read (and keep: ?download=1 saves it)."""
    donor = _current_donor()
    sections = donor_data.readable_export(donor_data.donor_data(donor))
    record_audit("export.donor_data", user_ref(donor), {"via": "account", "form": "readable"})
    db.session.commit()
    download = request.args.get("download") == "1"

    response = current_app.make_response(render_template("site/account_data.html", sections=sections,
                                                         download=download, made_at=utcnow(), zone=zone_name()))
    if download:
        response.headers["Content-Disposition"] = 'attachment; filename="my-filmfund-data.html"'
    return response


# The word the erase box asks for, in the page's language: a Chinese reader types 删除, not an
# English word. TRANSLATORS: one word, typed by the donor to confirm that her data is erased.
ERASE_WORD = lazy_gettext("erase")


# The site's Chinese is Simplified, and it is the page a reader from Hong Kong or Taiwan is served;
# her keyboard types the word in Traditional characters (刪除 for 删除). The Traditional forms of
# the characters the erase word is written with, read as the Simplified ones the page shows.
_SIMPLIFIED = str.maketrans({"刪": "删"})


def _typed_the_erase_word(typed: str) -> bool:
    """The word as the page asked for it, in any of the site's languages (the donor may have read
    the page in the other one, or switched keyboards), however a phone or an input method typed
    it: "Erase", "ｅｒａｓｅ", "erase " (typed.folded), "刪除" from a Traditional Chinese keyboard."""
    words = set()
    for lang in languages():
        with in_language(lang):
            words.add(folded(str(ERASE_WORD)))
    return folded(typed).translate(_SIMPLIFIED) in words


@bp.post("/account/erase")
@role_required("donor")
@limiter.limit("5 per minute")
def account_erase():
    user = _current_donor()
    if not _typed_the_erase_word(request.form.get("confirm", "")):
        return account(settings_errors={"erase": _("Type %(word)s in the box to confirm.", word=str(ERASE_WORD))},
                       status=400)
    donor_data.erase_donor(user)
    db.session.commit()
    logout_user()
    session.clear()
    return render_template("site/erased.html")


@bp.route("/settings/confirm/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute")
@mailed_link(lambda token: donors.request_for_token(token).user_id)
def confirm_settings(token: str):
    """The link mailed to a donor whose later gift asked for other settings. The token is the
    credential (only the donor's mailbox has it). GET shows what would change (a mail scanner's
    visit changes nothing); POST applies it."""
    settings_request = donors.request_for_token(token)
    if request.method == "POST":
        settings = donors.confirm_settings_request(token)
        db.session.commit()
        return render_template("site/confirm_settings.html", state="done", settings=settings, token=token)
    settings = donors.settings_doc(donors.profile_for(settings_request.user_id))
    lines = [donors.describe_change(k, v) for k, v in donors.request_changes(settings_request).items()]
    return render_template("site/confirm_settings.html", state=settings_request.state.value, lines=lines,
                           settings=settings, token=token)


# ---------------------------------------------------------------- producers: the page and its sharing

@bp.get("/admin/page")
@role_required("producer")
def page_editor(errors: dict | None = None, status: int = 200, refused: str | None = None):
    """The page's editor; `refused`: the field a refusal names (focused, its message tied to it)."""
    campaign = current_campaign()
    return render_template("site/page_editor.html", campaign=campaign, parts=page.editor_parts(campaign.id),
                           languages=page.TEXT_LANGUAGES, errors=errors or {}, refused=refused), status


@bp.post("/admin/page/<part>")
@role_required("producer")
@limiter.limit("60 per minute")
def page_save(part: str):
    """One part of the page as the producer wrote it, in both languages; audited when it changed."""
    campaign = current_campaign()
    try:
        content = page.form_to_part(part, request.form)
    except DomainError as err:
        if err.code == "invalid_part":
            abort(404)
        return page_editor(errors={part: for_people(err.message)}, status=400)
    changed = page.save_part(campaign.id, part, content, current_user._get_current_object())
    return _page_part_done(part, _("Saved: the page shows it now.") if changed else _("Nothing changed."))


@bp.post("/admin/page/<part>/reset")
@role_required("producer")
@limiter.limit("60 per minute")
def page_reset(part: str):
    """Hand a part back to the campaign file (its text is the file's again, and follows it)."""
    if request.form.get("confirm") != "1":
        return page_editor(errors={part: _("Tick the box to confirm: your text for this part is replaced by "
                                           "the campaign file's.")}, status=400, refused=f"{part}-reset-confirm")
    try:
        changed = page.reset_part(current_campaign().id, part, current_user._get_current_object())
    except DomainError:
        abort(404)
    return _page_part_done(part, _("This part follows the campaign file again.") if changed
                           else _("Nothing changed."))


def _page_part_done(part: str, message: str):
    """The editor's one ending of a save or a reset: commit once, refresh the page's cache, say so."""
    db.session.commit()
    page.after_commit()
    flash(message, "info")
    return redirect(url_for("site.page_editor") + f"#part-{part}", code=303)


# ---------------------------------------------------------------- producers: the campaign's settings and tiers

@bp.get("/admin/campaign")
@role_required("producer")
def campaign_editor(errors: dict | None = None, status: int = 200, refused: str | None = None,
                    typed: bool = True):
    """The editor; after a refusal, with the producer's typing (`typed`: the refused form was one of
    the part's values; a hand-back's form has none, so the part is shown as it stands)."""
    campaign = current_campaign()
    view = campaign_edit.editor_view(campaign.id)
    if errors and request.method == "POST" and typed:  # a refusal shows the producer's typing again
        view = campaign_edit.editor_view_from_form(view, next(iter(errors)), request.form, refused)
    elif errors:
        view = {**view, "refused": refused}
    return render_template("site/campaign_editor.html", campaign=campaign, view=view,
                           languages=page.TEXT_LANGUAGES, errors=errors or {}), status


@bp.post("/admin/campaign/<part>")
@role_required("producer")
@limiter.limit("60 per minute")
def campaign_save(part: str):
    """The settings or the tiers as the producer set them; validated, audited, donors' rewards kept
    consistent (see rewards/campaign_edit.py). A refusal changes nothing."""
    campaign = current_campaign()
    user = current_user._get_current_object()
    try:
        if part == "settings":
            changed = campaign_edit.save_settings(campaign.id, request.form, user)
            message = _("Saved: the page shows it now.") if changed else _("Nothing changed.")
        elif part == "budget":
            changed = campaign_edit.save_budget(campaign.id, campaign_edit.parse_budget(request.form), user)
            message = _("Saved: the page shows it now.") if changed else _("Nothing changed.")
        elif part == "rewards":
            tier_ids = {t["id"] for t in campaign_edit.editor_view(campaign.id)["tiers"]}
            rows = campaign_edit.parse_rewards(request.form, tier_ids)
            outcome = campaign_edit.save_rewards(campaign.id, rows, user,
                                                 take_back_delivered=request.form.get("take_back") == "1")
            message = (_("Nothing changed.") if outcome is None else
                       _("Saved. Donors' rewards follow the new tiers: %(granted)s granted, %(revoked)s taken back.",
                         granted=outcome["granted"], revoked=outcome["revoked"]))
        elif part == "tiers":
            rows = campaign_edit.parse_tiers(request.form)
            outcome = campaign_edit.save_tiers(campaign.id, rows, user,
                                               take_back_delivered=request.form.get("take_back") == "1")
            message = (_("Nothing changed.") if outcome is None else
                       _("Saved. Donors' rewards follow the new tiers: %(granted)s granted, %(revoked)s taken back.",
                         granted=outcome["granted"], revoked=outcome["revoked"]))
        else:
            abort(404)
    except DomainError as err:
        db.session.rollback()
        return campaign_editor(errors={part: for_people(err.message)}, status=400,
                               refused=err.field if isinstance(err, campaign_edit.FieldRefused) else None)
    return _campaign_part_done(part, message)


@bp.post("/admin/campaign/<part>/reset")
@role_required("producer")
@limiter.limit("60 per minute")
def campaign_reset(part: str):
    """Hand the settings or the tiers back to the campaign file (its values apply again, and follow it)."""
    if part not in campaign_edit.SETTINGS_PARTS:
        abort(404)
    if request.form.get("confirm") != "1":
        # The part as it stands (a hand-back's form holds no values: rebuilt from it, the tiers
        # showed none), and the focus in the box to tick.
        return campaign_editor(errors={part: _("Tick the box to confirm: your values for this part are replaced "
                                               "by the campaign file's.")}, status=400,
                               refused=f"{part}-reset-confirm", typed=False)
    try:
        changed = campaign_edit.hand_back(current_campaign().id, part, current_user._get_current_object(),
                                          take_back_delivered=request.form.get("take_back") == "1")
    except DomainError as err:
        db.session.rollback()
        return campaign_editor(errors={part: for_people(err.message)}, status=400, typed=False)
    return _campaign_part_done(part, _("This part follows the campaign file again.") if changed
                               else _("Nothing changed."))


def _campaign_part_done(part: str, message: str):
    db.session.commit()
    page.after_commit()
    flash(message, "info")
    return redirect(url_for("site.campaign_editor") + f"#part-{part}", code=303)


@bp.get("/admin/sharing")
@role_required("producer")
def sharing_report():
    campaign = current_campaign()
    page_url = external_url("site.campaign")
    return render_template("site/sharing.html", campaign=campaign, rows=sharing.report(campaign.id),
                           links=sharing.share_links(page_url, campaign.title),
                           newsletter_link=external_url("site.campaign", ref="newsletter"))
