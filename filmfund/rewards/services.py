"""Use cases of the donations spine: campaign, pledges, payments, ledger, entitlements, credits.

Views, the CLI and the webhook handler are thin callers of these functions.
"""
from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from filmfund.audit import record_audit
from filmfund.auth.models import User
from filmfund.auth.services import find_user, get_or_create_user, normalize_email, public_base_url
from filmfund.db import new_id, utcnow
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.rewards import donors, ledger, ledger_check, rules, snapshot, stripe_gateway, totals
from filmfund.rewards.campaign_file import MAX_AMOUNT, read_campaign_file
from filmfund.rewards.models import (
    BudgetLine,
    Campaign,
    CampaignPagePart,
    Donation,
    DonationSource,
    DonorProfile,
    EntryKind,
    Entitlement,
    EntitlementStatus,
    EventKind,
    LedgerEntry,
    Payout,
    Pledge,
    PledgeState,
    Reward,
    Tier,
    WebhookEvent,
    WebhookStatus,
)

log = logging.getLogger(__name__)

MIN_AMOUNT = 100  # $1: the smallest tier, and below Stripe's fees it makes no sense
CREDIT_NAME_MAX = 80
NOTE_MAX = 500

# URLs of the site's pages (owned by filmfund/site): kept in one place.
THANK_YOU_PATH = "/thank-you?pledge={pledge_id}"
CAMPAIGN_PATH = "/?amount={amount}&cancelled=1"
TEST_CHECKOUT_PATH = "/checkout/test/{pledge_id}"


# ---------------------------------------------------------------- campaign

def load_campaign(path: str | Path | None = None) -> Campaign:
    """Create or update the campaign from its TOML file. Idempotent: matched by slug, tiers by
    min_amount, rewards by key; a reward that left the file is detached from its tier, never deleted
    (entitlements and media point at it)."""
    spec = read_campaign_file(path or current_app.config["CAMPAIGN_FILE"])
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.slug == spec.slug))
    if campaign is None:
        campaign = Campaign(slug=spec.slug)
        db.session.add(campaign)
    elif campaign.currency != spec.currency and db.session.scalar(
            sa.select(sa.func.count(Donation.id)).where(Donation.campaign_id == campaign.id)):
        raise ValidationError("currency: cannot change once donations are recorded", code="invalid_campaign")
    changed = {attr: [getattr(campaign, attr), getattr(spec, attr)] for attr in
               ("title", "tagline", "currency", "goal", "partner_name", "share_bps")
               if campaign.id is not None and getattr(campaign, attr) != getattr(spec, attr)}
    for attr in ("title", "tagline", "description", "currency", "goal", "partner_name", "share_bps"):
        setattr(campaign, attr, getattr(spec, attr))
    db.session.flush()
    if changed:  # a change of an existing campaign's settings (goal, partner share, ...) is a staff action
        record_audit("settings.change", f"campaign {campaign.slug}", changed)
    totals.ensure_campaign_rows(campaign.id)
    tiers = {t.min_amount: t for t in campaign.tiers}
    rewards = {r.key: r for r in db.session.scalars(sa.select(Reward).where(Reward.campaign_id == campaign.id))}
    kept_tiers = set()
    for tspec in spec.tiers:
        tier = tiers.get(tspec.min_amount)
        if tier is None:
            tier = Tier(campaign=campaign, min_amount=tspec.min_amount, name=tspec.name)
            db.session.add(tier)
        tier.name = tspec.name
        kept_tiers.add(tspec.min_amount)
        db.session.flush()
        for position, rspec in enumerate(tspec.rewards):
            reward = rewards.pop(rspec.key, None) or Reward(campaign_id=campaign.id, key=rspec.key)
            reward.kind, reward.title, reward.tier_id, reward.position = rspec.kind, rspec.title, tier.id, position
            db.session.add(reward)
    db.session.flush()
    for reward in rewards.values():
        reward.tier_id = None
    for min_amount, tier in tiers.items():
        if min_amount not in kept_tiers:
            campaign.tiers.remove(tier)
    db.session.flush()
    _seed_page(campaign, spec)
    db.session.expire(campaign, ["tiers"])
    campaign.updated_at = utcnow()  # every process's cached snapshot is rebuilt (snapshot.py)
    # Tiers may have moved: stored entitlements must match them again.
    ledger.lock_money(campaign.id)
    for user in db.session.scalars(sa.select(User).where(User.id.in_(
            sa.select(Donation.user_id).where(Donation.campaign_id == campaign.id)))):
        refresh_entitlements(user, campaign)
    db.session.commit()
    snapshot.forget()
    db.session.refresh(campaign)
    return campaign


def _seed_page(campaign: Campaign, spec) -> None:
    """The page's parts and budget lines from the file. A part a producer edited in the browser
    is theirs: the file no longer touches it (it seeds, it does not overrule). Budget lines are
    money planning, kept in the file like the goal: matched by key, a line that left the file is
    hidden, never deleted (expenses point at it), and a change of an existing line is audited."""
    parts = {p.part: p for p in db.session.scalars(
        sa.select(CampaignPagePart).where(CampaignPagePart.campaign_id == campaign.id))}
    seeded = dict(spec.page, artwork=spec.artwork)
    for part, content in seeded.items():
        row = parts.get(part)
        if row is None:
            db.session.add(CampaignPagePart(campaign_id=campaign.id, part=part, content=content))
        elif row.edited_at is None and row.content != content:
            row.content = content
    lines = {b.key: b for b in db.session.scalars(sa.select(BudgetLine).where(BudgetLine.campaign_id == campaign.id))}
    changed = {}
    for position, bspec in enumerate(spec.budget):
        line = lines.pop(bspec.key, None)
        if line is None:
            line = BudgetLine(campaign_id=campaign.id, key=bspec.key, title=bspec.title, planned=bspec.planned)
            db.session.add(line)
        elif (line.title, line.planned, line.active) != (bspec.title, bspec.planned, True):
            changed[bspec.key] = [line.planned, bspec.planned]
        line.title, line.planned, line.position, line.active = bspec.title, bspec.planned, position, True
    for line in lines.values():
        if line.active:
            changed[line.key] = [line.planned, None]
        line.active = False
    if changed:
        record_audit("settings.change", f"campaign {campaign.slug} budget", changed)


_slug_cache: dict[tuple[str, float], str] = {}


def _configured_slug() -> str:
    """The slug of the configured campaign file (parsed again only when the file changes)."""
    path = Path(current_app.config["CAMPAIGN_FILE"])
    try:
        key = (str(path), path.stat().st_mtime)
    except OSError:
        return read_campaign_file(path).slug  # raises the clear "no such campaign file" error
    if key not in _slug_cache:
        _slug_cache[key] = read_campaign_file(path).slug
    return _slug_cache[key]


def current_campaign() -> snapshot.CampaignSnapshot:
    """The campaign named by CAMPAIGN_FILE (loaded from the file the first time it is needed), as
    the process's cached snapshot: one indexed read per call, no ORM objects (see snapshot.py)."""
    slug = _configured_slug()
    snap = snapshot.cached(slug)
    if snap is None:
        try:
            load_campaign()
        except sa.exc.IntegrityError:  # another request loaded it at the same moment
            db.session.rollback()
        snap = snapshot.cached(slug)
    return snap


def loaded_campaign() -> snapshot.CampaignSnapshot | None:
    """The current campaign's snapshot if it is loaded, else None: for what every page shows
    (the top bar), which must never load the campaign as a side effect."""
    return snapshot.cached(_configured_slug())


def campaign_of(pledge: Pledge):
    """A pledge's campaign: the cached snapshot when it is the current one (it always is, but
    for a pledge made under another campaign file)."""
    current = current_campaign()
    return current if current.id == pledge.campaign_id else db.session.get(Campaign, pledge.campaign_id)


def _reward_dict(r: Reward) -> dict:
    return {"key": r.key, "kind": r.kind.value, "title": r.title}


def campaign_document() -> dict:
    """The public GET /api/v1/campaign document of the current campaign: the snapshot check and
    its totals row come in one read (one round trip), as campaign_summary(current_campaign())."""
    livemode = ledger.money_mode()
    found = snapshot.cached_with_figures(_configured_slug(), livemode)
    if found is None:  # not loaded yet: current_campaign loads it
        return campaign_summary(current_campaign())
    return _summary(*found, livemode)


def campaign_summary(campaign: Campaign) -> dict:
    """The public GET /api/v1/campaign document."""
    livemode = ledger.money_mode()
    # one row: no sum over the ledger
    return _summary(campaign, totals.campaign_figures(campaign.id, livemode), livemode)


def _summary(campaign: Campaign, figures: tuple[int, int], livemode: bool) -> dict:
    raised, donors = figures
    return {
        "slug": campaign.slug, "title": campaign.title, "tagline": campaign.tagline,
        "description": campaign.description, "currency": campaign.currency, "goal": campaign.goal,
        "raised": raised, "donors": donors,
        "partner": {"name": campaign.partner_name, "share_bps": campaign.share_bps},
        "tiers": [{"min_amount": t.min_amount, "name": t.name, "rewards": [_reward_dict(r) for r in t.rewards]}
                  for t in campaign.tiers],
        "test_money": not livemode,  # the figures count test payments only
    }


# ---------------------------------------------------------------- pledges

_UNSAFE_CHARS = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # controls, bidi/zero-width formats, ...


def clean_credit_name(value) -> str | None:
    """A name fit for the credits: no control or bidi characters, single spaces, capped."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError("credit_name: must be a string.", code="invalid_credit_name")
    if len(value) > 4 * CREDIT_NAME_MAX:
        raise ValidationError(f"credit_name: at most {CREDIT_NAME_MAX} characters.", code="invalid_credit_name")
    text = unicodedata.normalize("NFC", value)
    text = "".join(" " if c.isspace() else c for c in text)
    text = "".join(c for c in text if unicodedata.category(c) not in _UNSAFE_CHARS)
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > CREDIT_NAME_MAX:
        raise ValidationError(f"credit_name: at most {CREDIT_NAME_MAX} characters.", code="invalid_credit_name")
    return text or None


def validate_amount(amount) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError("amount: must be a whole number of cents, e.g. 2500 for $25.00.",
                              code="invalid_amount")
    if amount < MIN_AMOUNT:
        raise ValidationError(f"amount: the smallest pledge is {MIN_AMOUNT} cents.", code="invalid_amount")
    if amount > MAX_AMOUNT:
        raise ValidationError(f"amount: at most {MAX_AMOUNT} cents in one pledge.", code="invalid_amount")
    return amount


def _flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{name}: must be true or false.", code="invalid_field")
    return value


def _site_url(path: str) -> str:
    # Stripe's return URLs: never built from a client-chosen Host header (see public_base_url).
    return public_base_url() + path


def create_pledge(amount, currency=None, email=None, credit_name=None, anonymous=False, rewards_opt_out=False,
                  *, idempotency_key: str | None = None, ref: str | None = None) -> Pledge:
    """Validate, store the pledge and open its Checkout Session (Stripe, or the local test page).
    `ref` is where the donor found the page (a share link's ?ref=): kept if it is a valid source
    name, dropped otherwise (a bad ref never costs a gift).

    The same idempotency key (a double-submitted form, a client retry) gives back the same pledge.
    """
    campaign = current_campaign()
    amount = validate_amount(amount)
    if currency is None:
        currency = campaign.currency
    if not isinstance(currency, str) or currency.lower() != campaign.currency:
        raise ValidationError(f"currency: this campaign takes {campaign.currency} only.", code="invalid_currency")
    if not isinstance(email, str) or len(email) > 254:
        raise ValidationError("email: give a valid email address.", code="invalid_email")
    email = normalize_email(email)
    credit_name = clean_credit_name(credit_name)
    anonymous, rewards_opt_out = _flag(anonymous, "anonymous"), _flag(rewards_opt_out, "rewards_opt_out")
    if idempotency_key is not None:
        if not (isinstance(idempotency_key, str) and 1 <= len(idempotency_key) <= 128):
            raise ValidationError("Idempotency-Key: 1 to 128 characters.", code="invalid_idempotency_key")
        # Scoped to the email and stored hashed: knowing someone's key alone gives nothing back.
        idempotency_key = hashlib.sha256(f"{email.lower()}\n{idempotency_key}".encode()).hexdigest()

    pledge = _pledge_by_key(idempotency_key) if idempotency_key else None
    if pledge is not None:
        if (pledge.amount, pledge.email) != (amount, email):
            raise ConflictError("This Idempotency-Key was used for a different pledge.", code="idempotency_conflict")
    else:
        pledge = Pledge(id=new_id(), campaign_id=campaign.id, amount=amount, currency=campaign.currency,
                        email=email, credit_name=credit_name, anonymous=anonymous,
                        rewards_opt_out=rewards_opt_out, idempotency_key=idempotency_key,
                        ref=clean_ref(ref))
        if current_app.config["STRIPE_TEST_MODE"]:  # no call to make: one insert, one commit
            _set_checkout(pledge, *_test_checkout(pledge))
        db.session.add(pledge)
        try:
            _commit_keeping(pledge)
        except sa.exc.IntegrityError:  # the same key raced in from a second request
            db.session.rollback()
            pledge = _pledge_by_key(idempotency_key)
            if pledge is None:
                raise
    if pledge.checkout_session_id is None:
        _open_checkout(pledge, campaign)
    return pledge


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


def _test_checkout(pledge: Pledge) -> tuple[str, str]:
    return f"cs_test_local_{pledge.id}", _site_url(TEST_CHECKOUT_PATH.format(pledge_id=pledge.id))


def _set_checkout(pledge: Pledge, session_id: str, url: str) -> None:
    pledge.checkout_session_id, pledge.checkout_url = session_id, url


def _open_checkout(pledge: Pledge, campaign: Campaign) -> None:
    if current_app.config["STRIPE_TEST_MODE"]:
        _set_checkout(pledge, *_test_checkout(pledge))
    else:
        # The pledge is committed first: the session names it, and its webhook must find it.
        _set_checkout(pledge, *stripe_gateway.create_checkout_session(
            pledge, campaign,
            success_url=_site_url(THANK_YOU_PATH.format(pledge_id=pledge.id)) + "&session_id={CHECKOUT_SESSION_ID}",
            cancel_url=_site_url(CAMPAIGN_PATH.format(amount=pledge.amount)
                                 + (f"&ref={pledge.ref}" if pledge.ref else ""))))
    _commit_keeping(pledge)


def _commit_keeping(obj) -> None:
    """Commit, keeping the values this request just wrote on `obj` (no SELECT to reload what we
    know: the row is exactly what was inserted or updated)."""
    from sqlalchemy.orm.attributes import set_committed_value

    db.session.flush()  # defaults (created_at...) are set now
    mapper = sa.inspect(obj).mapper
    known = {a.key: getattr(obj, a.key) for a in mapper.column_attrs}
    db.session.commit()
    for key, value in known.items():
        set_committed_value(obj, key, value)


def get_pledge(pledge_id: str) -> Pledge:
    pledge = db.session.get(Pledge, pledge_id) if isinstance(pledge_id, str) and len(pledge_id) <= 32 else None
    if pledge is None:
        raise NotFoundError("No such pledge.")
    return pledge


_STATUS_MESSAGES = {
    PledgeState.PENDING: "We are waiting for the payment to be confirmed.",
    PledgeState.PROCESSING: "Your payment is still processing; we will email your receipt once it clears.",
    PledgeState.PAID: "Thank you! Your donation is confirmed and your receipt is on its way.",
    PledgeState.FAILED: "The payment did not go through; nothing was charged. You can try again.",
    PledgeState.EXPIRED: "This checkout expired before payment; nothing was charged.",
}


def pledge_status(pledge: Pledge) -> dict:
    """What the thank-you page shows: the payment's real state (no other donor's data)."""
    tier = rules.tier_for(campaign_of(pledge).tiers, pledge.amount)
    return {"pledge_id": pledge.id, "state": pledge.state.value, "amount": pledge.amount,
            "currency": pledge.currency, "message": _STATUS_MESSAGES[pledge.state],
            "tier": {"min_amount": tier.min_amount, "name": tier.name} if tier and not pledge.rewards_opt_out else None,
            "test_mode": (pledge.checkout_session_id or "").startswith("cs_test_local_")}


# ---------------------------------------------------------------- payments and the ledger

def record_stripe_payment(pledge: Pledge, *, amount: int, currency: str, payment_intent_id: str | None,
                          session_id: str | None, email: str | None, stripe_event_id: str,
                          flags: list[str]) -> Donation | None:
    """Count a paid Checkout Session once (by pledge and by payment intent); None if already counted.

    The caller holds the pledge's row lock (so two events of one payment are serial); the money
    lock is taken only for the booking, which keeps the time other payments wait for it short."""
    existing = db.session.scalar(sa.select(Donation).where(sa.or_(
        Donation.pledge_id == pledge.id,
        Donation.payment_intent_id == payment_intent_id if payment_intent_id else sa.false())))
    if existing is not None:
        return None
    campaign = campaign_of(pledge)
    if amount != pledge.amount:
        flags.append("amount_mismatch")  # the money that arrived is what counts
    if pledge.can_move(PledgeState.PAID):
        pledge.move(PledgeState.PAID)
    elif pledge.state != PledgeState.PAID:
        flags.append(f"paid_after_{pledge.state.value}")
    pledge.payment_intent_id = payment_intent_id
    try:
        user = _donor(email or pledge.email)
    except ValidationError:  # an address Stripe took but we would not: the pledge's own is valid
        user = _donor(pledge.email)
    donation = Donation(campaign_id=campaign.id, pledge_id=pledge.id, user_id=user.id,
                        source=DonationSource.STRIPE, amount=amount, currency=currency,
                        payment_intent_id=payment_intent_id, checkout_session_id=session_id,
                        credit_name=pledge.credit_name, anonymous=pledge.anonymous,
                        rewards_opt_out=pledge.rewards_opt_out, flags=",".join(flags),
                        receipt_claimed_at=utcnow(), livemode=ledger.money_mode())
    db.session.add(donation)
    db.session.flush()
    booking = ledger.book_gift(campaign, donation, stripe_event_id)  # takes the money lock
    donors.record_gift_choices(user, donation)  # the first gift sets the donor's settings; later ones never do
    standing = refresh_entitlements(user, campaign)
    # Written now, from what this transaction just computed, and mailed by the caller after its
    # commit: nothing is reloaded after the commit, and no mail is sent while the money lock is held.
    queue_receipt(_receipt(campaign, donation, user.email, booking.share, standing))
    return donation


def _donor(email: str) -> User:
    """The donor's account, made if need be. Outside the money lock, two payments from one new
    address may race to create it: the loser's savepoint rolls back and finds the winner's."""
    user = find_user(normalize_email(email))
    if user is not None and user.has_role("donor"):
        return user
    try:
        with db.session.begin_nested():
            return get_or_create_user(email, "donor")
    except sa.exc.IntegrityError:
        return get_or_create_user(email, "donor")


def apply_refund(donation: Donation, amount_refunded: int, stripe_event_id: str | None) -> None:
    before = donation.amount_refunded
    donation.amount_refunded = min(donation.amount, rules.merged_refund(donation.amount_refunded, amount_refunded))
    if donation.amount_refunded != before:  # refunds are made in Stripe's dashboard: Stripe is the actor we see
        record_audit("donation.refund", f"donation {donation.id}",
                     {"amount_refunded": donation.amount_refunded, "before": before,
                      "currency": donation.currency, "stripe_event": stripe_event_id}, actor="stripe")
    _after_money_change(donation, EventKind.REFUND, stripe_event_id)


def apply_dispute(donation: Donation, status, stripe_event_id: str | None) -> None:
    from filmfund.rewards.models import DisputeStatus

    if status == DisputeStatus.OPEN:
        if donation.dispute_status is None:  # a late "created" never reopens a closed dispute
            donation.dispute_status = DisputeStatus.OPEN
        return
    donation.dispute_status = status
    event = EventKind.DISPUTE_LOST if status == DisputeStatus.LOST else EventKind.DISPUTE_WON
    _after_money_change(donation, event, stripe_event_id)


def _after_money_change(donation: Donation, event: EventKind, stripe_event_id: str | None) -> None:
    db.session.flush()
    campaign = db.session.get(Campaign, donation.campaign_id)
    if ledger.sync_refund(campaign, donation, event, stripe_event_id):
        refresh_entitlements(donation.user, campaign)


def _as_datetime(value: datetime | date | None) -> datetime:
    if value is None:
        return utcnow()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError("received_at: give a time with its zone.", code="invalid_date")
        return value
    return datetime.combine(value, time(12, 0), tzinfo=timezone.utc)


def record_offline_donation(email: str, amount, received_on: datetime | date | None = None, note: str = "",
                            credit_name=None, anonymous: bool = False, rewards_opt_out: bool = False,
                            recorded_by: str | None = None) -> Donation:
    """A producer records money received outside Stripe (cash at a screening, a bank transfer)."""
    campaign = current_campaign()
    amount = validate_amount(amount)
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ValidationError(f"note: at most {NOTE_MAX} characters.", code="invalid_note")
    credit_name = clean_credit_name(credit_name)
    anonymous, rewards_opt_out = _flag(anonymous, "anonymous"), _flag(rewards_opt_out, "rewards_opt_out")
    received_at = _as_datetime(received_on)
    ledger.lock_money(campaign.id)
    user = get_or_create_user(email, "donor")
    donation = Donation(campaign_id=campaign.id, user_id=user.id, source=DonationSource.OFFLINE, amount=amount,
                        currency=campaign.currency, credit_name=credit_name, anonymous=anonymous,
                        rewards_opt_out=rewards_opt_out, note=note, recorded_by=recorded_by,
                        received_at=received_at, livemode=ledger.money_mode())
    db.session.add(donation)
    db.session.flush()
    ledger.book_gift(campaign, donation)
    settings_request = donors.record_gift_choices(user, donation)  # only a first gift sets the settings
    refresh_entitlements(user, campaign)
    # The donor is named by the donation, never by email: the audit log is append-only, and an
    # erased donor's email must not survive in it.
    record_audit("donation.offline", f"donation {donation.id}", {"donation_id": donation.id, "amount": amount,
                                                                  "currency": donation.currency})
    db.session.commit()
    if settings_request is not None:  # asked for other settings: the donor confirms by mail, or not
        donors.mail_confirmation(settings_request)
    return donation


def record_payout(amount, paid_on: date, reference: str, recorded_by: str) -> Payout:
    """Money paid to the partner. Refused beyond the balance due: an overpayment would have to be
    clawed back from a charity. (Later refunds may still turn the balance negative; it shows as such.)"""
    campaign = current_campaign()
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationError("amount: a positive whole number of cents.", code="invalid_amount")
    if not isinstance(paid_on, date):
        raise ValidationError("paid_on: a date.", code="invalid_date")
    reference = (reference or "").strip()
    if not reference or len(reference) > 200:
        raise ValidationError("reference: 1 to 200 characters (the bank transfer's reference).",
                              code="invalid_reference")
    ledger.lock_money(campaign.id)
    balance = ledger.statement(campaign)["balance"]
    if amount > balance:
        raise ConflictError(f"A payout of {amount} exceeds the balance due to the partner ({balance}).",
                            code="payout_exceeds_balance")
    payout = Payout(campaign_id=campaign.id, amount=amount, currency=campaign.currency, paid_on=paid_on,
                    reference=reference, recorded_by=recorded_by)
    db.session.add(payout)
    db.session.flush()
    ledger.book_payout(campaign, payout)
    record_audit("payout.record", reference, {"payout_id": payout.id, "amount": amount,
                                              "currency": payout.currency, "paid_on": paid_on.isoformat()})
    db.session.commit()
    return payout


def partner_statement(campaign: Campaign) -> dict:
    """The statement in the installation's money mode; `test_money` says it counts test payments."""
    return {**ledger.statement(campaign), "test_money": not ledger.money_mode()}


def raised_by_day(campaign: Campaign) -> list[tuple[date, int]]:
    return ledger.raised_by_day(campaign.id)


def check_ledger(record: str | None = None) -> list[str]:
    """Every breach of the money rules, over every campaign; empty when all is well (see
    filmfund.rewards.ledger_check; `record` keeps the result for the dashboard)."""
    return ledger_check.check_ledger(record)


# ---------------------------------------------------------------- entitlements

def _donor_standing(campaign: Campaign, user_id: int) -> tuple[int, bool]:
    """The donor's lifetime net in the installation's money mode (their totals row, kept with the
    ledger) and whether they opted out of rewards: their DonorProfile says so (a later pledge never
    changes it, see donors.py). One statement."""
    mode = ledger.money_mode()
    opted_out = sa.select(DonorProfile.rewards_opt_out).where(DonorProfile.user_id == user_id).scalar_subquery()
    row = db.session.execute(sa.select(
        sa.select(totals.DonorTotal.net).where(
            totals.DonorTotal.campaign_id == campaign.id, totals.DonorTotal.user_id == user_id,
            totals.DonorTotal.livemode == mode).scalar_subquery(), opted_out)).first()
    return int(row[0] or 0), bool(row[1])


def _wanted_rewards(campaign: Campaign, user_id: int) -> tuple[int, Tier | None, bool, set[int]]:
    total, opted_out = _donor_standing(campaign, user_id)
    tier = rules.tier_for(campaign.tiers, total)
    wanted = set() if opted_out else {r.id for t in rules.tiers_reached(campaign.tiers, total) for r in t.rewards}
    return total, tier, opted_out, wanted


def _user_entitlements(campaign: Campaign, user_id: int) -> list[Entitlement]:
    return list(db.session.scalars(
        sa.select(Entitlement).join(Reward).where(Entitlement.user_id == user_id, Reward.campaign_id == campaign.id)
        .order_by(Entitlement.id)))


def refresh_entitlements(user: User, campaign: Campaign) -> dict:
    """Make the stored entitlements match the donor's tier: grant, re-grant or revoke (never delete;
    a fulfilled reward stays fulfilled, it was delivered). Returns the donor's standing, as
    donor_entitlements does, without querying it again."""
    total, tier, opted_out, wanted = _wanted_rewards(campaign, user.id)
    now = utcnow()
    ents = _user_entitlements(campaign, user.id)
    have = {e.reward_id: e for e in ents}
    for reward_id in sorted(wanted):
        ent = have.get(reward_id)
        if ent is None:
            ent = Entitlement(user_id=user.id, reward_id=reward_id, status=EntitlementStatus.GRANTED,
                              granted_at=now)
            db.session.add(ent)
            ents.append(ent)
        elif ent.status == EntitlementStatus.REVOKED:
            ent.status, ent.granted_at, ent.revoked_at = EntitlementStatus.GRANTED, now, None
    for reward_id, ent in have.items():
        if reward_id not in wanted and ent.status == EntitlementStatus.GRANTED:
            ent.status, ent.revoked_at = EntitlementStatus.REVOKED, now
    db.session.flush()
    return _standing_doc(total, tier, opted_out, ents, campaign)


def _standing_doc(total: int, tier: Tier | None, opted_out: bool, ents: list[Entitlement], campaign=None) -> dict:
    # A new entitlement's reward comes from the campaign (snapshot) rather than one SELECT each.
    known = {r.id: r for t in campaign.tiers for r in t.rewards} if campaign is not None else {}
    return {
        "total": total,
        "tier": {"min_amount": tier.min_amount, "name": tier.name} if tier else None,
        "rewards_opt_out": opted_out,
        "rewards": [{**_reward_dict(known.get(e.reward_id) or e.reward), "status": e.status.value, "id": e.id}
                    for e in ents],
    }


def donor_entitlements(user: User, campaign: Campaign | None = None) -> dict:
    """The GET /api/v1/me/entitlements document."""
    campaign = campaign or current_campaign()
    total, tier, opted_out, _ = _wanted_rewards(campaign, user.id)
    return _standing_doc(total, tier, opted_out, _user_entitlements(campaign, user.id), campaign)


def user_has_reward(user_id: int, reward_key: str) -> bool:
    """For the donor library: does this user hold this reward (granted or fulfilled) right now?"""
    return db.session.scalar(
        sa.select(sa.func.count(Entitlement.id)).join(Reward)
        .where(Entitlement.user_id == user_id, Reward.key == reward_key,
               Entitlement.status != EntitlementStatus.REVOKED)) > 0


def set_entitlement_status(entitlement_id: int, status: str | EntitlementStatus) -> Entitlement:
    """Producers mark a reward fulfilled (delivered) or back to granted."""
    ent = db.session.get(Entitlement, entitlement_id)
    if ent is None:
        raise NotFoundError("No such entitlement.")
    try:
        status = EntitlementStatus(status)
    except ValueError:
        raise ValidationError("status: granted or fulfilled.", code="invalid_status") from None
    if status == EntitlementStatus.REVOKED or ent.status == EntitlementStatus.REVOKED:
        raise ConflictError("Revocation follows the donor's total; it cannot be set by hand.",
                            code="illegal_transition")
    before = ent.status
    ent.status = status
    ent.fulfilled_at = utcnow() if status == EntitlementStatus.FULFILLED else None
    record_audit("entitlement.status", f"entitlement {ent.id}",
                 {"from": before.value, "to": status.value, "user_id": ent.user_id})
    db.session.commit()
    return ent


# ---------------------------------------------------------------- queries for the pages

def donor_donations(user: User) -> list[dict]:
    rows = db.session.scalars(sa.select(Donation).where(Donation.user_id == user.id)
                              .order_by(Donation.received_at.desc(), Donation.id.desc()))
    return [{"id": d.id, "amount": d.amount, "currency": d.currency, "refunded": d.counted_refunded,
             "net": d.net, "received_at": d.received_at, "source": d.source.value,
             "disputed": d.dispute_status.value if d.dispute_status else None,
             "credit_name": d.credit_name, "anonymous": d.anonymous, "rewards_opt_out": d.rewards_opt_out,
             "livemode": d.livemode}
            for d in rows]


def list_webhook_events(status: str | None = None, limit: int = 200) -> list[WebhookEvent]:
    stmt = sa.select(WebhookEvent).order_by(WebhookEvent.received_at.desc(), WebhookEvent.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(WebhookEvent.status == WebhookStatus(status))
    return list(db.session.scalars(stmt))


def credits(campaign: Campaign) -> list[str]:
    """The names the end credits print now, in their order. filmfund.fulfil.credits is the one
    reading of them (profile, anonymity, opt-out, erasure, money mode, approved proofs)."""
    from filmfund.fulfil import credits as end_credits  # fulfil builds on rewards, not the reverse

    return [line.name for line in end_credits.live_lines(campaign)]


# ---------------------------------------------------------------- receipts

RECEIPT_SWEEP_BATCH = 50  # unsent receipts the hourly sweep tries per run
RECEIPT_CLAIM_STALE = timedelta(minutes=15)  # a claim this old was left by a process that died


@dataclass(frozen=True)
class Receipt:
    donation_id: int
    to: str
    subject: str
    text: str


def queue_receipt(receipt: Receipt) -> None:
    """Mail this receipt once the current transaction commits (see send_queued_receipts). The
    donation's receipt was claimed in that same transaction, so no retry mails it meanwhile."""
    db.session.info.setdefault("receipts", []).append(receipt)


def queued_receipts_mark() -> int:
    return len(db.session.info.get("receipts", []))


def drop_queued_receipts(mark: int = 0) -> None:
    """The work that queued these receipts was rolled back: they must never be sent."""
    del db.session.info.setdefault("receipts", [])[mark:]


def take_queued_receipts() -> list[Receipt]:
    return db.session.info.pop("receipts", [])


def send_queued_receipts(receipts: list[Receipt]) -> None:
    """After commit, outside any lock: mail the receipts the committed transaction recorded. A
    failed send is unmarked and handed to the queue, which retries it with backoff."""
    from filmfund.rewards import tasks

    for receipt in receipts:
        if _deliver(receipt):
            continue
        try:
            tasks.retry_receipt_later(receipt.donation_id)
        except Exception:  # the queue is down too: the hourly sweep still finds the receipt
            log.exception("could not queue the retry of receipt %s", receipt.donation_id)


def _deliver(receipt: Receipt) -> bool:
    """Send a claimed receipt and mark it sent; if the mail cannot go, release the claim (for a
    retry) and say so."""
    from filmfund.mail import send_mail

    try:
        send_mail(receipt.to, receipt.subject, receipt.text)
    except Exception:  # the money is booked; a mail outage must not fail the webhook
        log.exception("receipt for donation %s could not be sent; it will be retried", receipt.donation_id)
        db.session.rollback()  # whatever the failure left open
        db.session.execute(sa.update(Donation).where(Donation.id == receipt.donation_id)
                           .values(receipt_claimed_at=None))
        db.session.commit()
        return False
    db.session.execute(sa.update(Donation).where(Donation.id == receipt.donation_id)
                       .values(receipt_sent_at=utcnow()))
    db.session.commit()
    return True


def _unsent_receipt(now: datetime):
    """Not sent, and not claimed by anyone still alive."""
    return sa.and_(Donation.receipt_sent_at.is_(None), Donation.source == DonationSource.STRIPE,
                   sa.or_(Donation.receipt_claimed_at.is_(None),
                          Donation.receipt_claimed_at < now - RECEIPT_CLAIM_STALE))


def send_receipt_once(donation_id: int) -> bool:
    """Send a donation's receipt unless it was sent already or another worker is sending it. The
    claim is atomic (only one caller can take it), so concurrent retries mail it once. False if
    the mail failed."""
    now = utcnow()
    claimed = db.session.execute(sa.update(Donation).where(Donation.id == donation_id, _unsent_receipt(now))
                                 .values(receipt_claimed_at=now)).rowcount
    db.session.commit()
    if claimed != 1:
        return True  # sent already (or being sent), or not a Stripe donation: nothing to do
    return _deliver(compose_receipt(db.session.get(Donation, donation_id)))


def send_unsent_receipts(limit: int = RECEIPT_SWEEP_BATCH) -> int:
    """The sweep behind the per-receipt retries: every receipt still unsent (its retries ran
    out, their queue was lost, or the process died between commit and send). Returns how many
    were sent."""
    unsent = db.session.scalars(sa.select(Donation.id).where(_unsent_receipt(utcnow()))
                                .order_by(Donation.id).limit(limit)).all()
    db.session.commit()
    sent = 0
    for donation_id in unsent:
        if send_receipt_once(donation_id):
            sent += 1
    return sent


def _money(cents: int, currency: str) -> str:
    symbol = "$" if currency == "usd" else ""
    return f"{symbol}{cents // 100:,}.{cents % 100:02d}" + ("" if symbol else f" {currency.upper()}")


def compose_receipt(donation: Donation) -> Receipt:
    """The receipt of a recorded donation, read back from the database (for the retry task)."""
    campaign = db.session.get(Campaign, donation.campaign_id)
    share = int(db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.donation_id == donation.id, LedgerEntry.entry_kind == EntryKind.PARTNER_SHARE)))
    return _receipt(campaign, donation, donation.user.email, share, donor_entitlements(donation.user, campaign))


TEST_RECEIPT_NOTE = ("TEST PAYMENT: this was a test-mode payment. No money moved: nothing was charged "
                     "and nothing was given.")


def _receipt(campaign: Campaign, donation: Donation, to: str, share: int, standing: dict) -> Receipt:
    test = not donation.livemode
    lines = ([TEST_RECEIPT_NOTE, ""] if test else []) + [f"Thank you for supporting “{campaign.title}”.", "",
             f"Amount: {_money(donation.amount, donation.currency)}",
             f"Date: {donation.received_at:%Y-%m-%d} (UTC)",
             f"Of this, {_money(share, donation.currency)} goes to {campaign.partner_name} "
             f"({campaign.share_bps / 100:g}% of what is raised).", ""]
    if standing["rewards_opt_out"]:
        lines.append("You chose no rewards: all of it goes to the film and its partner.")
    elif standing["tier"]:
        lines.append(f"Your total of {_money(standing['total'], donation.currency)} brings you the "
                     f"“{standing['tier']['name']}” tier:")
        lines += [f"  - {r['title']}" for r in standing["rewards"] if r["status"] != "revoked"]
    lines += donors.receipt_lines(donation)  # a later gift's asked-for settings wait for the donor's click
    lines += ["", "This is not a receipt for a real payment." if test else "Keep this email as your receipt."]
    subject = f"Your receipt: {campaign.title}" + (" (TEST PAYMENT: no money moved)" if test else "")
    return Receipt(donation.id, to, subject, "\n".join(lines) + "\n")


def send_receipt(donation: Donation) -> None:
    """Mail a donation's receipt now (raises if the mail cannot be sent)."""
    from filmfund.mail import send_mail

    receipt = compose_receipt(donation)
    send_mail(receipt.to, receipt.subject, receipt.text)


def complete_test_checkout(pledge_id: str, outcome: str, shipping: dict | None = None) -> dict:
    """The local test-mode checkout page's "pay" (see webhooks.complete_test_checkout)."""
    from filmfund.rewards import webhooks

    return webhooks.complete_test_checkout(pledge_id, outcome, shipping)
