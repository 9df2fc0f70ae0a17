"""Physical rewards: shipping addresses, the items and their states, signing, letters, the
packing list, address surveys.

A physical reward (the DVD, the signed DVD, the letter) is an item per donor entitlement. It is
owed until the producers mark the reward available (the film's DVD does not exist yet), then
in production, shipped (with a tracking note and the address it went to), received (the donor
confirms) or returned. Entitlements are the rewards component's: an item whose entitlement was
revoked by a refund is left out of the queues before it ships, and flagged after.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from filmfund import csvsafe, jobs
from filmfund.fulfil.tokens import mailed_link, make_token
from filmfund.mail import send_mail
from filmfund.rewards.texts import campaign_title
from filmfund.i18n import for_donor
from filmfund.audit import record_audit
from filmfund.auth.models import User
from filmfund.db import on_commit, utcnow
from filmfund.jobs import app_task
from filmfund.auth.services import public_base_url
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.fulfil.addresses import read_back
from filmfund.fulfil.countries import ISO_COUNTRIES, STRIPE_SHIPPING_COUNTRIES
from filmfund.fulfil.models import (
    ITEM_MOVES,
    SHIPPED_STATES,
    FulfilmentItem,
    ItemState,
    ReminderMail,
    RewardSchedule,
)
from filmfund.rewards import donors, holdings, mail_prefs, privacy, stock, texts
from filmfund.rewards.models import (
    Campaign,
    Donation,
    DonorProfile,
    Entitlement,
    EntitlementStatus,
    Reward,
    RewardKind,
    ShippingAddress,
    Tier,
)
from filmfund.typed import half_width, one_line

log = logging.getLogger(__name__)

ADDRESS_FIELDS = {"name": 120, "line1": 200, "line2": 200, "city": 120, "state": 120, "postal_code": 32,
                  "country": 2}
REQUIRED = ("name", "line1", "city", "country")
TRACKING_MAX, SIGNER_MAX, DEDICATION_MAX, LETTER_MAX = 300, 120, 300, 10_000
SURVEY_REMINDER_AFTER = timedelta(days=7)
SURVEY_MAX_MAILS = 3  # the survey and two reminders


def clean_text(value, field: str, limit: int, *, multiline: bool = False, keep_spaces: bool = False) -> str:
    """Text as the person wrote it, minus what prints nothing a reader could check
    (filmfund/typed.py); single spaces (line breaks kept if multiline), each of the kind typed if
    `keep_spaces` (what the credits print: typed.one_line)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(_("%(field)s: must be text.", field=field), code="invalid_field")
    if multiline:
        lines = [one_line(line, keep_spaces=keep_spaces) for line in value.replace("\r\n", "\n").split("\n")]
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    else:
        text = one_line(value, keep_spaces=keep_spaces)
    if len(text) > limit:
        raise ValidationError(_("%(field)s: at most %(n)s characters.", field=field, n=limit), code="invalid_field")
    return text


class AddressRefused(ValidationError):
    """An address refused for one or more of its fields, all said at once: `fields` maps each
    field to its message ("city: required..."), in the form's order; the message is the first's
    (an API client reads it as any refusal, "name: ...")."""

    def __init__(self, fields: dict[str, str]):
        super().__init__(next(iter(fields.values())), code="invalid_address")
        self.fields = fields


# The postal codes of the countries most parcels go to, as their posts read them: one digit wrong
# or missing sends a Chinese parcel to another city. Typed in full width (an input method's
# "１０００８０") or with spaces, a code is kept as the label prints it: its ASCII digits, a ZIP+4
# with its dash. Each pattern's groups are the code's parts, joined by "-".
POSTAL_CODE_FORMS = {
    "CN": (re.compile(r"(\d{6})", re.ASCII), _l("postal_code: a postal code in China has 6 digits, like 100080.")),
    "US": (re.compile(r"(\d{5})(?:-?(\d{4}))?", re.ASCII),
           _l("postal_code: a US ZIP code has 5 digits (or 5+4, like 94110-1234).")),
}


def _postal_code(code: str, country: str) -> tuple[str, str | None]:
    """A postal code as the label prints it, and the refusal of one that cannot be right (None)."""
    form = POSTAL_CODE_FORMS.get(country)
    if form is None or not code:
        return code, None
    read = form[0].fullmatch(half_width(code).replace(" ", ""))
    return ("-".join(part for part in read.groups() if part), None) if read else (code, str(form[1]))


def clean_address(data: dict) -> dict:
    """A postal address fit to print on a label, or an AddressRefused naming every field to mend."""
    if not isinstance(data, dict):
        raise ValidationError(_("address: give the address fields."), code="invalid_address")
    out: dict[str, str] = {}
    refused: dict[str, str] = {}
    for field, limit in ADDRESS_FIELDS.items():
        if field == "country":
            country = data.get("country")
            out[field] = country.strip().upper() if isinstance(country, str) else ""
            continue
        try:
            out[field] = clean_text(data.get(field), field, limit)
        except ValidationError as err:
            out[field], refused[field] = "", err.message
    for field in REQUIRED:
        if not out[field] and field not in refused:
            refused[field] = _("%(field)s: required for the parcel to arrive.", field=field)
    if out["country"] and out["country"] not in ISO_COUNTRIES:
        refused["country"] = _("country: choose a country (two-letter code, e.g. US, DE, CN).")
    elif "postal_code" not in refused:
        out["postal_code"], refusal = _postal_code(out["postal_code"], out["country"])
        if refusal:
            refused["postal_code"] = refusal
    if refused:
        raise AddressRefused({f: refused[f] for f in ADDRESS_FIELDS if f in refused})
    return out


# ---------------------------------------------------------------- items

def pledge_ships(pledge) -> bool:
    """Does this pledge alone reach a tier with a physical reward? Then Checkout collects the
    shipping address (a donor who gets there by several gifts gets the address survey)."""
    if pledge.rewards_opt_out:
        return False
    return any(r.kind == RewardKind.PHYSICAL for t in holdings.tiers_reached(pledge.campaign.tiers, pledge.amount)
               for r in t.rewards)


def checkout_shipping(pledge) -> list[str] | None:
    """Receiver of rewards' `checkout_shipping`: the countries Stripe Checkout may collect the
    address in, for a pledge that ships (None: Checkout asks for no address)."""
    return STRIPE_SHIPPING_COUNTRIES if pledge_ships(pledge) else None


def is_signed(reward: Reward) -> bool:
    """A reward the crew signs (the campaign file names it: its key says "signed")."""
    return "signed" in reward.key


def is_letter(reward: Reward) -> bool:
    return "letter" in reward.key


ITEM_COLUMNS = ["entitlement_id", "user_id", "reward_id", "state", "tracking", "ship_to", "signer", "dedication",
                "letter", "created_at", "updated_at"]
SYNC_BATCH = 5000


def _items_from(entitlement_ids) -> sa.Insert:
    """INSERT ... SELECT of the items of these entitlements (those of a physical reward, still held).
    It reads no fulfilment_items row: however the planner sees that table (a vacuumed empty one
    looks empty for good), the statement cannot rescan what it is filling."""
    now = utcnow()
    rows = (
        sa.select(Entitlement.id, Entitlement.user_id, Entitlement.reward_id,
                  sa.literal(ItemState.OWED.value), sa.literal(""), sa.literal(""), sa.literal(""),
                  sa.literal(""), sa.literal(""), sa.literal(now, type_=FulfilmentItem.created_at.type),
                  sa.literal(now, type_=FulfilmentItem.updated_at.type))
        .join(Reward, Reward.id == Entitlement.reward_id)
        .where(Entitlement.id.in_(entitlement_ids), Reward.kind == RewardKind.PHYSICAL,
               Entitlement.status != EntitlementStatus.REVOKED))
    return sa.insert(FulfilmentItem).from_select(ITEM_COLUMNS, rows)


def make_items_of(campaign, made) -> None:
    """Receiver of rewards' `entitlements_made`: the item of each new entitlement of a physical
    reward, made where the entitlement is (refresh_entitlements, in the booking's transaction): one
    INSERT ... SELECT, none when no new entitlement is of a physical reward. Pages only read items."""
    physical = {r.id for t in campaign.tiers for r in t.rewards if r.kind == RewardKind.PHYSICAL}
    ids = [entitlement_id for entitlement_id, reward_id in made if reward_id in physical]
    if ids:
        db.session.execute(_items_from(ids))


def sync_items(campaign: Campaign, user_id: int | None = None, batch: int = SYNC_BATCH) -> int:
    """The catch-up: make the item of every physical entitlement that has none (entitlements made
    before items were made at booking, or written by SQL, as `filmfund demo seed` does); how many
    were made. Items are never deleted: a revoked entitlement keeps its item, for the record.

    A statement per batch, never one INSERT reading the table it fills: each batch's missing ids
    come from an anti-join on the items' unique index (a read, planned on the table as it is now),
    then their items are inserted by id (`_items_from`). Run by a job (fulfil/tasks.py), never by a
    page. The caller commits."""
    return sum(missing_item_batches(campaign, user_id=user_id, batch=batch))


def missing_item_batches(campaign: Campaign, *, user_id: int | None = None, batch: int = SYNC_BATCH) -> Iterator[int]:
    """sync_items a batch at a time: makes the items of up to `batch` entitlements (two statements)
    and yields how many, until none is missing; a caller that keeps each batch (a job) commits
    between them."""
    after = 0
    while True:
        stmt = (sa.select(Entitlement.id)
                .join(Reward, Reward.id == Entitlement.reward_id)
                .outerjoin(FulfilmentItem, FulfilmentItem.entitlement_id == Entitlement.id)
                .where(Reward.campaign_id == campaign.id, Reward.kind == RewardKind.PHYSICAL,
                       Entitlement.status != EntitlementStatus.REVOKED, FulfilmentItem.id.is_(None),
                       Entitlement.id > after)
                .order_by(Entitlement.id).limit(batch))
        if user_id is not None:
            stmt = stmt.where(Entitlement.user_id == user_id)
        ids = list(db.session.scalars(stmt))
        if not ids:
            return
        made = 0
        try:
            with db.session.begin_nested():
                db.session.execute(_items_from(ids))
            made = len(ids)  # (the driver may not count an INSERT ... SELECT's rows)
        except sa.exc.IntegrityError:  # a concurrent catch-up made some of them first: left to the next run
            pass
        yield made
        if len(ids) < batch:
            return
        after = ids[-1]


def donor_items(user: User, campaign: Campaign) -> list[dict]:
    """The donor's physical items with their reward, state and whether the reward still counts."""
    sync_items(campaign, user.id)
    rows = db.session.execute(
        sa.select(FulfilmentItem, Reward, Entitlement.status, RewardSchedule.available_at)
        .join(Reward, Reward.id == FulfilmentItem.reward_id)
        .join(Entitlement, Entitlement.id == FulfilmentItem.entitlement_id)
        .outerjoin(RewardSchedule, RewardSchedule.reward_id == Reward.id)
        .where(FulfilmentItem.user_id == user.id, Reward.campaign_id == campaign.id)
        .order_by(Reward.tier_id, Reward.position)).all()
    return [{"item": item, "reward": reward, "revoked": status == EntitlementStatus.REVOKED,
             "available": available is not None, "signed": is_signed(reward)}
            for item, reward, status, available in rows]


UNSENT_STATES = (ItemState.OWED, ItemState.IN_PRODUCTION, ItemState.RETURNED)
SENT_STATES = (ItemState.SHIPPED, ItemState.RECEIVED)  # out with the donor (a returned one came back)

#: Why an address is refused, by code (the pages show the message; save_address raises it).
ADDRESS_REFUSALS = {
    "address_locked": _l("Your rewards have shipped; write to the producers if something is wrong."),
    "nothing_to_ship": _l("You have no rewards for us to post, so we need no shipping address."),
}


def address_refusal(user_id: int) -> str | None:
    """Why the donor's address cannot be given or changed now (a code of ADDRESS_REFUSALS), or None
    while a physical reward they hold (rewards/holdings.py) is still to be posted: its item not made
    yet (a gift that crossed a tier after the first parcel left, whose entitlement SQL wrote: the catch-up makes it),
    owed, in production or returned. "address_locked": everything they hold has gone out;
    "nothing_to_ship": they hold no physical reward (below its tier, refunded, opted out), and a
    stale link must not collect where they live."""
    states = db.session.scalars(
        sa.select(FulfilmentItem.state).select_from(Entitlement)
        .join(Reward, Reward.id == Entitlement.reward_id)
        .outerjoin(FulfilmentItem, FulfilmentItem.entitlement_id == Entitlement.id)
        .where(Entitlement.user_id == user_id, Reward.kind == RewardKind.PHYSICAL, holdings.HELD)).all()
    if not states:
        return "nothing_to_ship"
    if any(state is None or state in UNSENT_STATES for state in states):
        return None
    return "address_locked"


def _sent_sql(entitlement_id) -> sa.ColumnElement[bool]:
    """rewards/stock.py's question, answered from the items: the entitlement's item is out with its
    donor, so a refund after shipping keeps it out of stock."""
    return sa.exists().where(FulfilmentItem.entitlement_id == entitlement_id, FulfilmentItem.state.in_(SENT_STATES))


stock.SENT_ELSEWHERE["fulfil"] = _sent_sql


def get_address(user_id: int) -> ShippingAddress | None:
    return db.session.get(ShippingAddress, user_id)


def save_address(user: User, data: dict, *, source: str) -> ShippingAddress:
    """The donor's address, from the account page, the survey or Stripe Checkout. The caller commits.
    An erased donor gets none, whatever asks (a Checkout opened before the erasure, a mailed link):
    their parcels have nowhere to go."""
    fields = clean_address(data)
    if privacy.is_erased(privacy.profile_of(user.id)):
        raise ConflictError(_("This donor's data was already erased."), code="erased")
    refusal = address_refusal(user.id)
    if refusal is not None:
        raise ConflictError(str(ADDRESS_REFUSALS[refusal]), code=refusal)
    address = db.session.get(ShippingAddress, user.id)
    first = address is None
    if first:
        address = ShippingAddress(user_id=user.id, **fields, source=source)
        db.session.add(address)
        told = True
    else:
        told = any(getattr(address, key) != value for key, value in fields.items())
        for key, value in fields.items():
            setattr(address, key, value)
        address.source = source
    if told and source in ("account", "survey"):
        # Whoever holds a forwarded survey mail (its link lives 60 days) or a signed-in browser
        # could choose where the parcels go, the first time as well as later (the reminders then
        # stop: the donor "has an address"): the donor hears of the first address and of every
        # change, once it is kept. (Checkout's address is typed by whoever pays, for that gift; one
        # for a known donor waits for the mailed confirmation.)
        user_id, base_url = user.id, public_base_url()
        on_commit(db.session, lambda: notice_address_changed(user_id, base_url, first=first))
    return address


@app_task(lane=jobs.mail, retries=3, retry_delay=60)
def notice_address_changed(user_id: int, base_url: str, first: bool = False) -> None:
    """Worker side: tell the donor their shipping address was given (`first`) or changed, in their
    language. Not the address itself (a mail is read by more eyes than a page): where to see it,
    and how to put it back if it was not them. (An erased donor is mailed nothing: mail.send_mail.)"""
    user = db.session.get(User, user_id)
    if user is None:
        return
    with for_donor(user_id):
        if first:
            subject = _("Your shipping address was saved")
            said = _("The address we will post your rewards to was given just now. You can see it on your "
                     "account page: %(url)s", url=f"{base_url}/account/address")
        else:
            subject = _("Your shipping address was changed")
            said = _("The address we will post your rewards to was changed just now. You can see it on your "
                     "account page: %(url)s", url=f"{base_url}/account/address")
        send_mail(user.email, subject, said + "\n\n"
                  + _("If it was not you, sign in there and put your own address back: we post to the "
                      "address as it stands when your rewards ship.") + "\n")


def set_dedication(user: User, campaign: Campaign, dedication: str) -> None:
    """The donor's dedication on their signed items (until they ship). The caller commits."""
    text = clean_text(dedication, "dedication", DEDICATION_MAX)
    for row in donor_items(user, campaign):
        item = row["item"]
        if row["signed"] and item.state in (ItemState.OWED, ItemState.IN_PRODUCTION):
            item.dedication = text


def shipping_from_session(obj: dict) -> dict | None:
    """The shipping address Stripe Checkout collected, as our fields: `collected_information.
    shipping_details` (current API versions) or `shipping_details` (older ones)."""
    details = (obj.get("collected_information") or {}).get("shipping_details") or obj.get("shipping_details")
    if not isinstance(details, dict) or not isinstance(details.get("address"), dict):
        return None
    a = details["address"]
    return {"name": details.get("name"), "line1": a.get("line1"), "line2": a.get("line2"), "city": a.get("city"),
            "state": a.get("state"), "postal_code": a.get("postal_code"), "country": a.get("country")}


def capture_checkout_address(donation: Donation, session: dict) -> str | None:
    """The address a completed Checkout Session collected (never fails the booking): the receiver
    of rewards' `checkout_paid`, sent by the webhook that booked the gift. The first gift of a
    donor without an address gives them one ("saved"); otherwise it waits for the email owner's
    confirmation ("pending"), mailed with the receipt: anyone can pay with someone's email, and the
    donor's parcels must not follow a stranger's Checkout (filmfund.rewards.privacy). None when
    nothing was kept."""
    data = shipping_from_session(session)
    user = db.session.get(User, donation.user_id)
    if data is None or user is None:
        return None
    try:
        fields = clean_address(data)
        if privacy.address_from_gift_waits(get_address(user.id) is not None, donors.first_gift(donation)):
            donors.ask_confirmation(user, donation, {"shipping_address": fields})
            return "pending"
        with db.session.begin_nested():
            save_address(user, fields, source="checkout")
    except (ValidationError, ConflictError) as exc:
        log.warning("shipping address of checkout %s not kept: %s", session.get("id"), exc)
        return None
    return "saved"


def _confirm_address(user: User, fields: dict) -> None:
    """The donor confirmed the address a later Checkout collected (the link mailed to them)."""
    save_address(user, fields, source="checkout")


donors.CONFIRMED_ELSEWHERE["shipping_address"] = _confirm_address


def _describe_address(fields: dict) -> str:
    """A later Checkout's address, as the donor is asked to confirm it (mail and pages)."""
    return _("send your rewards to: %(address)s", address=read_back(fields))


donors.DESCRIBED_ELSEWHERE["shipping_address"] = _describe_address


def erase_items(user: User) -> None:
    """Receiver of rewards' `donor_erasing`: the donor's items are kept (state and dates), without
    the address they were posted to, the dedication, the letter or the tracking note: free text,
    and a carrier's key to the delivery record (the recipient's name, town, signature)."""
    db.session.execute(sa.update(FulfilmentItem).where(FulfilmentItem.user_id == user.id)
                       .values(ship_to="", dedication="", letter="", tracking=""))


def _item(item_id: int) -> FulfilmentItem:
    item = db.session.get(FulfilmentItem, item_id) if isinstance(item_id, int) else None
    if item is None:
        raise NotFoundError(_("No such item."))
    return item


def _revoked(item: FulfilmentItem) -> bool:
    return db.session.get(Entitlement, item.entitlement_id).status == EntitlementStatus.REVOKED


def move_item(item_id: int, to: str, *, tracking: str | None = None) -> FulfilmentItem:
    """A producer moves an item on: owed → in production → shipped (tracking note) → received, or
    returned (then in production again). The caller commits."""
    item = _item(item_id)
    try:
        to = ItemState(to)
    except ValueError:
        raise ValidationError(_("state: owed, in_production, shipped, received or returned."),
                              code="invalid_state") from None
    if to not in ITEM_MOVES[item.state]:
        # The states by their codes' words: their labels (statement.ITEM_LABELS) are the donor's
        # and live in a module that imports this one.
        raise ConflictError(_("An item %(state)s cannot become %(to)s.", state=item.state.value.replace("_", " "),
                              to=to.value.replace("_", " ")), code="illegal_transition")
    now = utcnow()
    if to == ItemState.IN_PRODUCTION:
        if _revoked(item):
            raise ConflictError(_("This reward was revoked (the gift was refunded): do not send it."),
                                code="reward_revoked")
        schedule = db.session.get(RewardSchedule, item.reward_id)
        if schedule is None or schedule.available_at is None:
            raise ConflictError(_("Mark the reward available first: it is owed until it exists."),
                                code="not_available")
    if to == ItemState.SHIPPED:
        tracking = clean_text(tracking, "tracking", TRACKING_MAX)
        if not tracking:
            raise ValidationError(_("tracking: give the carrier and tracking number (or how it was sent)."),
                                  code="invalid_tracking")
        if _revoked(item):
            raise ConflictError(_("This reward was revoked (the gift was refunded): do not send it."),
                                code="reward_revoked")
        address = db.session.get(ShippingAddress, item.user_id)
        if address is None:
            raise ConflictError(_("The donor has given no address yet."), code="no_address")
        reward = db.session.get(Reward, item.reward_id)
        if is_signed(reward) and not item.signer:  # a signed item says who signed it (its row, the packing list)
            raise ConflictError(_("Record who signed it before it ships."), code="no_signer")

        item.tracking, item.ship_to, item.shipped_at = tracking, "\n".join(address.lines()), now
    elif to == ItemState.RECEIVED:
        item.received_at = now
    elif to == ItemState.RETURNED:
        item.returned_at = now
        if _revoked(item):  # posted after all, then refunded: the parcel back in hand is stock again
            stock.sent_item_returned(item.reward_id)
    before = item.state
    item.state = to
    record_audit(f"reward.item_{to.value}", f"item:{item.id}",
                 {"from": before.value, "to": to.value, "reward_id": item.reward_id, "user_id": item.user_id})
    return item


def confirm_received(user: User, item_id: int) -> FulfilmentItem:
    """The donor says the parcel arrived (only their own item; 404 for anyone else's). The caller commits."""
    item = db.session.get(FulfilmentItem, item_id)
    if item is None or item.user_id != user.id:
        raise NotFoundError(_("No such item."))
    if item.state == ItemState.RECEIVED:
        return item
    if item.state != ItemState.SHIPPED:
        raise ConflictError(_("This item has not shipped yet."), code="illegal_transition")
    item.state, item.received_at = ItemState.RECEIVED, utcnow()
    return item


def mark_available(reward_id: int, *, available: bool = True, due_at: datetime | None = None) -> RewardSchedule:
    """Producers: the reward exists now (the DVD is pressed), or not yet; optionally its due date.
    The caller commits."""
    reward = db.session.get(Reward, reward_id) if isinstance(reward_id, int) else None
    if reward is None:
        raise NotFoundError(_("No such reward."))
    schedule = db.session.get(RewardSchedule, reward_id)
    if schedule is None:
        schedule = RewardSchedule(reward_id=reward_id)
        db.session.add(schedule)
    schedule.available_at = (schedule.available_at or utcnow()) if available else None
    if due_at is not None:
        schedule.due_at = due_at
    record_audit("reward.available" if available else "reward.unavailable", f"reward:{reward.key}",
                 {"due_at": due_at.isoformat() if due_at else None})
    return schedule


def set_signing(item_id: int, *, signer: str | None = None, dedication: str | None = None) -> FulfilmentItem:
    """Who signs the item, and for whom (until it ships). The caller commits."""
    item = _item(item_id)
    if item.state not in (ItemState.OWED, ItemState.IN_PRODUCTION, ItemState.RETURNED):
        raise ConflictError(_("This item has shipped."), code="illegal_transition")
    if signer is not None:
        item.signer = clean_text(signer, "signer", SIGNER_MAX)
    if dedication is not None:
        item.dedication = clean_text(dedication, "dedication", DEDICATION_MAX)
    return item


def _letter_text(**values) -> str:
    """The letter's draft in the language being written now (draft_letter writes in the donor's)."""
    return _("Dear %(name)s,\n\n"
             "Thank you for standing with us on “%(title)s”. Your support as a %(tier)s helped us follow the\n"
             "families who never stop searching for their children, and %(partner)s receives part of every gift."
             "\n\n%(personal)s\n\nWith gratitude,\n%(signer)s\n", **values)


def draft_letter(item_id: int, *, campaign: Campaign, overwrite: bool = False) -> FulfilmentItem:
    """A letter drafted for this donor, for the producers to finish and sign (kept if already
    written). It is posted to the donor, so it is drafted in their language (i18n.for_donor, as
    their mails are), with the campaign's title, partner and their tier in that language too. The
    caller commits."""
    item = _item(item_id)
    if item.letter and not overwrite:
        return item
    address = db.session.get(ShippingAddress, item.user_id)
    with for_donor(item.user_id):
        tier = holdings.tier_of(campaign.tiers, holdings.net_total(item.user_id, campaign.id))
        tier_name = texts.tier_name(campaign.translations, tier) if tier else _("supporter")
        item.letter = _letter_text(
            name=privacy.public_name_of(item.user_id) or (address.name if address else "") or _("friend"),
            title=campaign_title(campaign), tier=tier_name, partner=texts.partner_name(campaign),
            personal=_("[a few personal words from the crew]"), signer=item.signer or _("The crew"))
    return item


def save_letter(item_id: int, text: str) -> FulfilmentItem:
    """The letter as the producers wrote it. The caller commits."""
    item = _item(item_id)
    item.letter = clean_text(text, "letter", LETTER_MAX, multiline=True)
    return item


# ---------------------------------------------------------------- packing list

PACKING_COLUMNS = ["item_id", "reward", "state", "name", "line1", "line2", "city", "state_region", "postal_code",
                   "country", "signer", "dedication", "letter"]


def _packing_list_select(campaign: Campaign, reward_key: str | None):
    """Items to pack: in production (available, not yet shipped), entitlement still active, for a
    donor who is still known. An erased donor's parcel cannot be posted (no address, no name, no
    mail to ask for one: the erase page says so), so it is not packed."""
    stmt = (sa.select(FulfilmentItem, Reward.key, ShippingAddress)
            .join(Reward, Reward.id == FulfilmentItem.reward_id)
            .join(Entitlement, Entitlement.id == FulfilmentItem.entitlement_id)
            .outerjoin(ShippingAddress, ShippingAddress.user_id == FulfilmentItem.user_id)
            .outerjoin(DonorProfile, DonorProfile.user_id == FulfilmentItem.user_id)
            .where(Reward.campaign_id == campaign.id, FulfilmentItem.state == ItemState.IN_PRODUCTION,
                   Entitlement.status != EntitlementStatus.REVOKED, sa.not_(privacy.is_erased_sql())))
    if reward_key:
        stmt = stmt.where(Reward.key == reward_key)
    return stmt


def packing_list_count(campaign: Campaign, reward_key: str | None = None) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(
        _packing_list_select(campaign, reward_key).subquery())) or 0


def packing_list_csv(campaign: Campaign, reward_key: str | None = None, chunk: int = 1000) -> Iterator[str]:
    """The packing list as CSV pieces, a chunk of items at a time (at a million donations it is
    some 200,000 parcels: never held whole). A generator: read in the request's contexts by
    csvsafe.download."""
    i, a = FulfilmentItem, ShippingAddress
    # Columns, not an item and an address object per row: building them was most of the export's time.
    stmt = (_packing_list_select(campaign, reward_key)
            .with_only_columns(i.id, Reward.key, i.state, a.user_id, a.name, a.line1, a.line2, a.city, a.state,
                               a.postal_code, a.country, i.signer, i.dedication, i.letter)
            .order_by(i.user_id, i.id).execution_options(yield_per=chunk))

    def line(item_id, key, state, addressed, name, line1, line2, city, region, postal_code, country, signer,
             dedication, letter) -> tuple:
        if addressed is None:  # no address given yet
            name = line1 = line2 = city = region = postal_code = ""
            country = "NO ADDRESS YET"
        return (item_id, key, state.value, name, line1, line2, city, region, postal_code, country, signer,
                dedication, "yes" if letter else "")

    parts = db.session.execute(stmt).partitions()
    yield from csvsafe.stream(PACKING_COLUMNS, ([line(*r) for r in part] for part in parts))


def refunded_after_shipping(campaign: Campaign) -> list[dict]:
    """Items sent to a donor whose gift was refunded afterwards: flagged for the producers, never
    dropped silently. Refunded means the entitlement was revoked, or (for one a producer marked
    delivered before refunds revoked delivered rewards too) the donor's lifetime net fell below the
    reward's tier.

    Found from the few rows that can match, not from every parcel sent: the items of revoked
    entitlements (the entitlements' reward-and-status index), and the items of the donors some
    money went back to (`holdings.refunded_donors_sql`, with their net); the newest 200 of those
    are then read whole. Asked of every shipped item, the donor's net cost a read of
    `donor_totals` per parcel: 2.5 to 4.4 s at a million donations (208,000 parcels), most of
    the rewards page's time, even with none to show."""
    shipped = sa.and_(FulfilmentItem.state.in_(SHIPPED_STATES), Reward.campaign_id == campaign.id)
    refunded = holdings.refunded_donors_sql(campaign.id).subquery()
    newest = (FulfilmentItem.shipped_at.desc(), FulfilmentItem.id.desc())
    flagged = sa.union(
        sa.select(FulfilmentItem.id, FulfilmentItem.shipped_at)
        .join(Entitlement, Entitlement.id == FulfilmentItem.entitlement_id)
        .join(Reward, Reward.id == Entitlement.reward_id)
        .where(shipped, Entitlement.status == EntitlementStatus.REVOKED),
        sa.select(FulfilmentItem.id, FulfilmentItem.shipped_at)
        .join(refunded, refunded.c.user_id == FulfilmentItem.user_id)
        .join(Reward, Reward.id == FulfilmentItem.reward_id)
        .join(Tier, Tier.id == Reward.tier_id)
        .where(shipped, refunded.c.net < Tier.min_amount),
    ).subquery()
    page = sa.select(flagged.c.id).order_by(flagged.c.shipped_at.desc(), flagged.c.id.desc()).limit(200).subquery()
    rows = db.session.execute(
        sa.select(FulfilmentItem, Reward.title, User.email)
        .join(page, page.c.id == FulfilmentItem.id)
        .join(Reward, Reward.id == FulfilmentItem.reward_id)
        .join(User, User.id == FulfilmentItem.user_id)
        .order_by(*newest)).all()
    return [{"item": item, "title": title, "email": email} for item, title, email in rows]


# ---------------------------------------------------------------- address survey

def survey_link(user: User) -> str:
    return mailed_link("fulfil.survey", token=make_token(user.id, "survey"))


def _mails_sent(user_id: int, kind: str) -> tuple[int, datetime | None]:
    count, last = db.session.execute(
        sa.select(sa.func.count(ReminderMail.id), sa.func.max(ReminderMail.sent_at))
        .where(ReminderMail.user_id == user_id, ReminderMail.kind == kind)).one()
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=timezone.utc)
    return int(count), last


def due_for_reminder(user_id: int, kind: str, now: datetime) -> bool:
    count, last = _mails_sent(user_id, kind)
    return count == 0 or (count < SURVEY_MAX_MAILS and last is not None and last <= now - SURVEY_REMINDER_AFTER)


def opted_out_of_reminders(user_id: int) -> bool:
    """rewards-comms' mail preferences: the `reminders` topic (address surveys, credits proofs)."""
    return "reminders" in mail_prefs.opted_out(user_id)


def send_reminder_mail(user: User, subject: str, text: str) -> None:
    """An optional mail of the `reminders` topic: with its one-click unsubscribe (RFC 8058)."""
    unsubscribe = mail_prefs.unsubscribe_url(user, "reminders")
    send_mail(user.email, subject, text + "\n" + _("No more reminders like this one: %(url)s", url=unsubscribe) + "\n",
              headers=mail_prefs.list_unsubscribe_headers(user, "reminders"))


def survey_recipients(campaign: Campaign) -> list[int]:
    """The donors the address survey is for: owed a physical item not yet shipped, and no address
    given (items are made at booking; tasks.catch_up_items makes those of older data)."""
    return list(db.session.scalars(
        sa.select(User.id).where(User.id.in_(
            sa.select(FulfilmentItem.user_id)
            .join(Entitlement, Entitlement.id == FulfilmentItem.entitlement_id)
            .join(Reward, Reward.id == FulfilmentItem.reward_id)
            .where(Reward.campaign_id == campaign.id, Entitlement.status != EntitlementStatus.REVOKED,
                   FulfilmentItem.state.in_([ItemState.OWED, ItemState.IN_PRODUCTION]))),
            ~sa.exists().where(ShippingAddress.user_id == User.id))
        .order_by(User.id)))


def send_address_survey(user_id: int, campaign: Campaign, now: datetime) -> bool:
    """Mail this donor the address survey, or a reminder of it every SURVEY_REMINDER_AFTER, at
    most SURVEY_MAX_MAILS times, unless they opted out of reminders; the mail is recorded. True if
    mailed. The caller commits each mail before the next (filmfund.fulfil.tasks.survey_mailing)."""
    user = db.session.get(User, user_id)
    if opted_out_of_reminders(user.id) or not due_for_reminder(user.id, "address_survey", now):
        return False
    count, _latest = _mails_sent(user.id, "address_survey")
    with for_donor(user.id):
        subject = (_("Reminder: where should we send your rewards?") if count
                   else _("Where should we send your rewards?"))
        text = (_("Your support of “%(title)s” includes rewards we will post to you (the DVD, once the film "
                  "is finished).", title=campaign_title(campaign)) + "\n\n" + _("Tell us where to send them:")
                + f"\n\n{survey_link(user)}\n\n"
                + _("You can change the address on your account page until they ship.") + "\n")
        send_reminder_mail(user, subject, text)
    db.session.add(ReminderMail(user_id=user.id, kind="address_survey", sent_at=now))
    return True


def record_refused_reminder(user_id: int, kind: str, now: datetime, refused: str) -> None:
    """The mail server refused this donor's address survey or credits proof (`kind`) for good (a
    550 to their address): the try counts as one of their SURVEY_MAX_MAILS, so the next comes
    after SURVEY_REMINDER_AFTER like a reminder, and none after the last. It is kept as refused,
    with what was refused (`refused`, mail.refusal_kind's code), never shown as sent. The caller
    commits."""
    db.session.add(ReminderMail(user_id=user_id, kind=kind, sent_at=now, refused=refused))
