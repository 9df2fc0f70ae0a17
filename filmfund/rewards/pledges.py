"""Pledges: validate what a donor asked for, store it and open its Checkout Session; what the
thank-you page says of it."""
from __future__ import annotations

import hashlib
import re

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from filmfund.auth.services import normalize_email, public_base_url
from filmfund.db import as_written, new_id, utcnow
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db, one_statement_value
from filmfund.i18n import choose_language, format_money
from filmfund.rewards import holdings, snapshot, stock, stripe_gateway, texts
from filmfund.rewards.campaign import campaign_of, configured_slug, current_campaign
from filmfund.rewards.campaign_file import MAX_AMOUNT
from filmfund.rewards.models import Campaign, Pledge, PledgeState
from filmfund.typed import one_line

MIN_AMOUNT = 100  # $1: the smallest tier, and below Stripe's fees it makes no sense
CREDIT_NAME_MAX = 80
NOTE_MAX = 500

# URLs of the site's pages (owned by filmfund/site): kept in one place.
THANK_YOU_PATH = "/thank-you?pledge={pledge_id}"
CAMPAIGN_PATH = "/?amount={amount}&cancelled=1"
TEST_CHECKOUT_PATH = "/checkout/test/{pledge_id}"


def clean_credit_name(value) -> str | None:
    """A name fit for the credits, as the donor wrote it: only what prints nothing a reader could
    check is taken out (filmfund/typed.py), runs of spaces made one (each space of the kind typed:
    an ideographic space stays one), the length capped."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(_("credit_name: must be a string."), code="invalid_credit_name")
    if len(value) > 4 * CREDIT_NAME_MAX:
        raise ValidationError(_("credit_name: at most %(n)s characters.", n=CREDIT_NAME_MAX), code="invalid_credit_name")
    text = one_line(value, keep_spaces=True)
    if len(text) > CREDIT_NAME_MAX:
        raise ValidationError(_("credit_name: at most %(n)s characters.", n=CREDIT_NAME_MAX), code="invalid_credit_name")
    return text or None


def validate_amount(amount, currency: str = "usd") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError(_("amount: must be a whole number of cents, e.g. 2500 for $25.00."),
                              code="invalid_amount")
    if amount < MIN_AMOUNT:
        raise ValidationError(_("amount: the smallest gift is %(amount)s.", amount=format_money(MIN_AMOUNT, currency)),
                              code="invalid_amount")
    if amount > MAX_AMOUNT:
        raise ValidationError(_("amount: at most %(amount)s in one gift.", amount=format_money(MAX_AMOUNT, currency)),
                              code="invalid_amount")
    return amount


def validate_flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(_("%(field)s: must be true or false.", field=name), code="invalid_field")
    return value


def _site_url(path: str) -> str:
    # Stripe's return URLs: never built from a client-chosen Host header (see public_base_url).
    return public_base_url() + path


def validate_interval(value) -> str | None:
    """None (a one-time gift) or "month" (a monthly gift)."""
    if value in (None, "", "once"):
        return None
    if value != "month":
        raise ValidationError(_("interval: \"month\" for a monthly gift, or leave it out for a one-time gift."),
                              code="invalid_interval")
    return value


def create_pledge(amount, currency=None, email=None, credit_name=None, anonymous=False, rewards_opt_out=False,
                  *, idempotency_key: str | None = None, ref: str | None = None, interval: str | None = None) -> Pledge:
    """Validate and store the pledge; the caller commits it, then calls open_checkout (in test
    mode the local checkout page is set here already: no call to make). The one exception, for the
    hot path: a test-mode pledge without a key is one autocommitted INSERT (_pledge_at_once), which
    leaves the caller's commit nothing to do.
    `ref` is where the donor found the page (a share link's ?ref=): kept if it is a valid source
    name, dropped otherwise (a bad ref never costs a gift).

    The same idempotency key (a double-submitted form, a client retry) gives back the same pledge.
    `interval` "month" makes it a monthly gift (Checkout in subscription mode).
    """
    interval = validate_interval(interval)
    if current_app.config["STRIPE_TEST_MODE"] and idempotency_key is None:
        pledge = _pledge_at_once(amount, currency, email, credit_name, anonymous, rewards_opt_out, ref, interval)
        if pledge is not None:
            return pledge
    campaign = current_campaign()
    amount, email, credit_name, anonymous, rewards_opt_out = _valid_pledge(
        campaign, amount, currency, email, credit_name, anonymous, rewards_opt_out)
    if idempotency_key is not None:
        if not (isinstance(idempotency_key, str) and 1 <= len(idempotency_key) <= 128):
            raise ValidationError(_("Idempotency-Key: 1 to 128 characters."), code="invalid_idempotency_key")
        # Scoped to the email and stored hashed: knowing someone's key alone gives nothing back.
        idempotency_key = hashlib.sha256(f"{email.lower()}\n{idempotency_key}".encode()).hexdigest()

    pledge = _pledge_by_key(idempotency_key) if idempotency_key else None
    if pledge is not None:
        if (pledge.amount, pledge.email, pledge.interval) != (amount, email, interval):
            raise ConflictError(_("This Idempotency-Key was used for a different pledge."), code="idempotency_conflict")
    else:
        pledge = Pledge(id=new_id(), campaign_id=campaign.id, amount=amount, currency=campaign.currency,
                        email=email, credit_name=credit_name, anonymous=anonymous,
                        rewards_opt_out=rewards_opt_out, idempotency_key=idempotency_key,
                        ref=clean_ref(ref), language=choose_language(), interval=interval)
        if current_app.config["STRIPE_TEST_MODE"]:  # no call to make: the caller commits it whole, once
            _set_checkout(pledge, *_test_checkout(pledge.id))
        made = pledge
        if idempotency_key is None:
            db.session.add(pledge)
        else:
            try:
                with db.session.begin_nested():  # only this insert is undone if the key raced in
                    db.session.add(pledge)
            except sa.exc.IntegrityError:  # the same key raced in from a second request
                pledge = _pledge_by_key(idempotency_key)
                if pledge is None:
                    raise
        if pledge is made:
            _claim_limited_rewards(pledge, campaign)
    return pledge


def _claim_limited_rewards(pledge: Pledge, campaign) -> None:
    """Hold an item of each limited reward this gift's own amount reaches, or refuse the pledge when
    one is sold out. Judged on the pledge alone, never on what the owner of its email address gave
    or holds: an unpaid pledge costs nothing, and a stranger who typed a donor's address would read
    from the answer (accepted or sold out) and from the public "N left" whether the address has
    given, its total to the cent, what it holds and whether it opted out. So a returning donor's
    gift that crosses a tier with their earlier gifts claims nothing here and takes an item when it
    is booked, if one is left (stock.py's rule for every gift that reaches a reward without a
    claim); an item claimed for a reward the donor holds already goes back once the gift is booked
    (payments), or when its checkout ends unpaid."""
    limited = stock.limited_ids(campaign)
    if not limited or pledge.rewards_opt_out:
        return
    due = holdings.rewards_due(campaign.tiers, pledge.amount, opted_out=False)
    db.session.flush()  # the pledge's row first: its claims refer to it
    stock.claim_for_pledge(pledge, campaign, due & limited)


def _valid_pledge(campaign, amount, currency, email, credit_name, anonymous, rewards_opt_out) -> tuple:
    """The pledge's fields as stored, or the first ValidationError."""
    amount = validate_amount(amount, campaign.currency)
    if currency is None:
        currency = campaign.currency
    if not isinstance(currency, str) or currency.lower() != campaign.currency:
        raise ValidationError(_("currency: this campaign takes %(currency)s only.", currency=campaign.currency),
                              code="invalid_currency")
    if not isinstance(email, str) or len(email) > 254:
        raise ValidationError(_("email: give a valid email address."), code="invalid_email")
    email = normalize_email(email)
    credit_name = clean_credit_name(credit_name)
    return (amount, email, credit_name, validate_flag(anonymous, "anonymous"),
            validate_flag(rewards_opt_out, "rewards_opt_out"))


_PLEDGE_AT_ONCE_COLUMNS = ("id", "campaign_id", "amount", "currency", "email", "credit_name", "anonymous",
                           "rewards_opt_out", "state", "checkout_session_id", "checkout_url", "ref", "language",
                           "interval", "created_at", "updated_at")
# Built once: the pledge row, inserted only while its campaign is the one the process's snapshot
# shows (the snapshot may be older than a `campaign load`, or a limit set on a reward, in another
# process or request: every change to a campaign, its tiers or its limits moves its updated_at).
_PLEDGE_AT_ONCE = sa.insert(Pledge.__table__).from_select(
    _PLEDGE_AT_ONCE_COLUMNS,
    sa.select(*[sa.bindparam(name, type_=Pledge.__table__.c[name].type) for name in _PLEDGE_AT_ONCE_COLUMNS])
    .where(Campaign.__table__.c.id == sa.bindparam("campaign_id"),
           Campaign.__table__.c.currency == sa.bindparam("currency"),
           Campaign.__table__.c.updated_at == sa.bindparam("campaign_updated_at",
                                                           type_=Campaign.__table__.c.updated_at.type))
).returning(Pledge.__table__.c.id)


def _pledge_at_once(amount, currency, email, credit_name, anonymous, rewards_opt_out, ref,
                    interval=None) -> Pledge | None:
    """A test-mode pledge without an idempotency key is ONE statement (its checkout is the local
    page: nothing to call, nothing to update): the INSERT, in autocommit on PostgreSQL, checked
    against the campaign row in the same statement. None when the process has no snapshot yet, or
    the campaign changed since (a `campaign load`, a limit set): the caller then takes the full
    path. (With a live Stripe key the call to Stripe dwarfs the database's round trips: full path.)"""
    campaign = snapshot.peek(configured_slug())
    if campaign is None or stock.limited_ids(campaign):  # a limited reward is claimed on the full path
        return None
    try:
        amount, email, credit_name, anonymous, rewards_opt_out = _valid_pledge(
            campaign, amount, currency, email, credit_name, anonymous, rewards_opt_out)
    except ValidationError as err:
        if err.code == "invalid_currency":
            return None  # judged against the campaign as it stands, on the full path
        raise
    now, pledge_id = utcnow(), new_id()
    session_id, url = _test_checkout(pledge_id)
    row = dict(id=pledge_id, campaign_id=campaign.id, amount=amount, currency=campaign.currency, email=email,
               credit_name=credit_name, anonymous=anonymous, rewards_opt_out=rewards_opt_out,
               state=PledgeState.PENDING, checkout_session_id=session_id, checkout_url=url, ref=clean_ref(ref),
               # the request's language as a tag (its mails are written in it): Babel's locale, which
               # current_language would build and read back, is not needed by a pledge's answer
               language=choose_language(), interval=interval, created_at=now, updated_at=now)
    if one_statement_value(_PLEDGE_AT_ONCE, {**row, "campaign_updated_at": campaign.updated_at}) is None:
        return None
    return as_written(Pledge, row)


REF_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def clean_ref(value) -> str | None:
    """A share link's source (`?ref=weibo`) as it is counted: lowercase letters, digits, - and _,
    at most 32; anything else is no source at all."""
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    return value if REF_RE.match(value) else None


def _pledge_by_key(key: str) -> Pledge | None:
    return db.session.scalar(sa.select(Pledge).where(Pledge.idempotency_key == key))


def _test_checkout(pledge_id: str) -> tuple[str, str]:
    return f"cs_test_local_{pledge_id}", _site_url(TEST_CHECKOUT_PATH.format(pledge_id=pledge_id))


def _set_checkout(pledge: Pledge, session_id: str, url: str) -> None:
    pledge.checkout_session_id, pledge.checkout_url = session_id, url


def open_checkout(pledge: Pledge) -> bool:
    """Open the committed pledge's Checkout Session unless it has one; True if it was opened (the
    caller commits it). The pledge must be committed first: the session names it, and Stripe's
    webhook, booked by another process, must find it."""
    if pledge.checkout_session_id is not None:
        return False
    if current_app.config["STRIPE_TEST_MODE"]:
        _set_checkout(pledge, *_test_checkout(pledge.id))
    else:
        _set_checkout(pledge, *stripe_gateway.create_checkout_session(
            pledge, campaign_of(pledge),
            success_url=_site_url(THANK_YOU_PATH.format(pledge_id=pledge.id)) + "&session_id={CHECKOUT_SESSION_ID}",
            cancel_url=_site_url(CAMPAIGN_PATH.format(amount=pledge.amount)
                                 + (f"&ref={pledge.ref}" if pledge.ref else "")),
            expires_at=stock.session_expiry(pledge.id)))
    return True


def get_pledge(pledge_id: str) -> Pledge:
    pledge = db.session.get(Pledge, pledge_id) if isinstance(pledge_id, str) and len(pledge_id) <= 32 else None
    if pledge is None:
        raise NotFoundError(_("No such pledge."))
    return pledge


_STATUS_MESSAGES = {
    PledgeState.PENDING: _l("We are waiting for the payment to be confirmed."),
    PledgeState.PROCESSING: _l("Your payment is still processing; we will email your receipt once it clears."),
    PledgeState.PAID: _l("Your donation is in, and your receipt is on its way to your inbox."),
    PledgeState.FAILED: _l("The payment did not go through; nothing was charged. You can try again."),
    PledgeState.EXPIRED: _l("This checkout expired before payment; nothing was charged."),
}


def pledge_status(pledge: Pledge) -> dict:
    """What the thank-you page shows: the payment's real state (no other donor's data)."""
    campaign = campaign_of(pledge)
    tier = holdings.tier_of(campaign.tiers, pledge.amount)
    return {"pledge_id": pledge.id, "state": pledge.state.value, "amount": pledge.amount,
            "currency": pledge.currency, "message": str(_STATUS_MESSAGES[pledge.state]),
            "interval": pledge.interval,
            "tier": {"min_amount": tier.min_amount, "name": texts.tier_name(campaign.translations, tier)}
            if tier and not pledge.rewards_opt_out else None,
            "test_mode": (pledge.checkout_session_id or "").startswith("cs_test_local_")}
