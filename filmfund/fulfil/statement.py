"""The donor's entitlement statement (every reward, its state, the next step asked of them) and
the producers' queue per reward (owed, in progress, done, late), counted in SQL and paged by keyset.

The entitlements are the rewards component's (read, never recomputed here). A reward is:
- physical: done when the donor confirmed receipt; in progress once in production or shipped;
- credit: done when the donor approved their proof; in progress while a proof waits; owed only to
  the donors the credits print (LISTED: anonymous donors and those without a credit name are in
  no state, nor in its list);
- digital and updates: delivered by the site itself (done);
- service and custom: done when the producers mark the entitlement fulfilled.
Late: not done after the reward's due date (the proof deadline for credits).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask import url_for
from werkzeug.routing import BuildError

from filmfund import keyset
from filmfund.auth.models import User
from filmfund.comms import invitations
from filmfund.comms.models import Experience, Invitation, Question, QuestionState, RsvpStatus
from filmfund.db import utcnow
from filmfund.errors import NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.fulfil import credits, fulfilment
from filmfund.fulfil.models import CreditProof, CreditsState, FulfilmentItem, ItemState, ProofState, RewardSchedule
from filmfund.i18n import format_when
from filmfund.media import screening
from filmfund.media.library import downloadable_reward_keys
from filmfund.rewards import mail_prefs, privacy
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.entitlements import donor_entitlements
from filmfund.rewards.models import (ENTITLEMENT_HELD_SQL, Campaign, DonorProfile, Entitlement, EntitlementStatus,
                                     Reward, RewardKind, ShippingAddress, Tier)

PAGE_SIZE = 50
QUEUE_STATES = ("owed", "in_progress", "done", "late")

ITEM_LABELS = {
    ItemState.OWED: _l("Owed"),
    ItemState.IN_PRODUCTION: _l("Being prepared"),
    ItemState.SHIPPED: _l("Shipped"),
    ItemState.RECEIVED: _l("Received"),
    ItemState.RETURNED: _l("Returned to us"),
}
# A survey's or proof's mail that the donor's mail server refused (ReminderMail.refused, a
# mail.REFUSAL_KINDS code), as its donor reads it in the readable data export (given at init_app).
REFUSAL_LABELS = {
    "address": _l("Refused by your mail server: the address"),
    "message": _l("Refused by your mail server: the message"),
    "unsendable": _l("Not sent: it could not be written to this address"),
}
# A credits proof's state as its donor reads it (the rewards table; the readable data export, given
# at init_app through donor_data.describe_codes, as ITEM_LABELS is).
PROOF_LABELS = {
    ProofState.PENDING: _l("Proof to approve"),
    ProofState.APPROVED: _l("Approved"),
    ProofState.CHANGES: _l("Changes asked"),
}
# A credits proof's section (credits.SECTIONS) as the donor's proof page names it.
SECTION_LABELS = {"executive_producers": _l("Executive Producers"), "supporters": _l("Supporters")}


def _url(*endpoints: str, **values) -> str | None:
    """The first of these pages that exists (some belong to components that land separately)."""
    for endpoint in endpoints:
        try:
            return url_for(endpoint, **values)
        except BuildError:
            continue
    return None


def _step(label: str, url: str | None, kind: str) -> dict | None:
    return {"label": label, "url": url, "kind": kind} if url else None


def rewards_statement(user: User) -> dict:
    """Everything the account page's "Your rewards" section shows. The donor's physical items are
    made on the way (fulfilment.sync_items): the caller commits them."""
    campaign = current_campaign()
    standing = donor_entitlements(user, campaign)
    items = {row["reward"].key: row for row in fulfilment.donor_items(user, campaign)}
    address = fulfilment.get_address(user.id)
    line, waiting_name = credits.printed_line_for(user, campaign)
    proof_open = credits.proof_open(campaign)
    downloadable = downloadable_reward_keys(r["key"] for r in standing["rewards"]
                                            if r["kind"] == RewardKind.DIGITAL and r["status"] != "revoked")
    window = screening.window()  # the early-access reward streams only inside it (media.screening)
    unsubscribed = mail_prefs.opted_out(user.id) if any(r["kind"] == RewardKind.UPDATES
                                                        for r in standing["rewards"]) else set()
    rows = []
    for r in standing["rewards"]:
        if r["status"] == "revoked":
            continue
        row = {"key": r["key"], "title": r["title"], "kind": r["kind"], "state": _("Yours"), "css": "paid",
               "step": None, "item": None, "detail": "", "link": None, "link_label": None}
        if r["kind"] == RewardKind.PHYSICAL:
            row.update(_physical_row(items.get(r["key"]), address))
        elif r["kind"] == RewardKind.CREDIT:
            row.update(_credit_row(r["key"], line, proof_open, waiting_name))
        elif window is not None and r["key"] == window.reward and (window.state() != "open"
                                                                   or r["key"] in downloadable):
            row.update(_screening_row(window))
        elif r["kind"] == RewardKind.DIGITAL and r["key"] in downloadable:
            row.update(state=_("In your downloads"), link=_url("site.account", _anchor="downloads"))
        elif r["kind"] == RewardKind.DIGITAL:
            row.update(state=_("Not published yet"), css="pending",
                       detail=_("It appears in your downloads as soon as the producers publish it."))
        elif r["kind"] == RewardKind.UPDATES and r["key"] in unsubscribed:  # mail_prefs: one-click too
            row.update(state=_("Unsubscribed"), css="pending",
                       detail=_("You unsubscribed from these emails. To get them again, tick them under "
                                "“Mail from us” on this page."),
                       link=_url("site.account", _anchor="mail"), link_label=_("Subscribe again"))
        elif r["kind"] == RewardKind.UPDATES:
            row["state"] = _("By email")
        elif r["status"] == EntitlementStatus.FULFILLED:
            row.update(state=_("Done"), css="paid")
        else:
            row.update(_service_row(user, r["key"], campaign))
        rows.append(row)
    steps = list({row["step"]["url"]: row["step"] for row in rows if row["step"]}.values())
    refusal = fulfilment.address_refusal(user.id)
    return {"rows": rows, "steps": steps, "address": address, "line": line, "waiting_name": waiting_name,
            "address_editable": refusal is None, "address_refusal": refusal,
            "has_physical": any(row["kind"] == RewardKind.PHYSICAL for row in rows),
            "opted_out": standing["rewards_opt_out"]}


def _screening_row(window: screening.Window) -> dict:
    """The early-access reward: the film streams in the donor's downloads only while the screening
    window is open (media.screening), so before and after it the row says when, not "In your
    downloads"."""
    state = window.state()
    if state == "before":
        return {"state": _("Not open yet"), "css": "pending",
                "detail": _("The screening opens %(opens)s and runs until %(closes)s: watch it in your downloads "
                            "then.", opens=format_when(window.opens), closes=format_when(window.closes))}
    if state == "after":
        return {"state": _("Closed"), "css": "paid",
                "detail": _("The screening closed on %(closes)s.", closes=format_when(window.closes))}
    return {"state": _("Open now"), "css": "paid",
            "detail": _("The screening is open until %(closes)s.", closes=format_when(window.closes)),
            "link": _url("site.account", _anchor="downloads"), "link_label": _("Watch it")}


def _physical_row(row: dict | None, address) -> dict:
    if row is None:
        return {"state": _("Owed"), "css": "pending"}
    item = row["item"]
    out = {"item": item, "state": str(ITEM_LABELS[item.state]), "css": "pending"}
    if item.state == ItemState.OWED:
        out["detail"] = _("It does not exist yet: we send it once it does.") if not row["available"] else \
            _("Ready soon: we are preparing the parcels.")
    elif item.state == ItemState.SHIPPED:
        out.update(css="processing", detail=_("Tracking: %(number)s", number=item.tracking))
        out["step"] = _step(_("Confirm you received it"), url_for("site.account", _anchor=f"item-{item.id}"),
                            "received")
    elif item.state == ItemState.RECEIVED:
        out["css"] = "paid"
    elif item.state == ItemState.RETURNED:
        out.update(css="failed", detail=_("The parcel came back: check your address."))
    if item.state in (ItemState.OWED, ItemState.IN_PRODUCTION, ItemState.RETURNED) and address is None:
        out["step"] = _step(_("Give your shipping address"), url_for("fulfil.address"), "address")
    return out


def _credit_row(key: str, line, proof_open: bool, waiting_name: str | None = None) -> dict:
    """`line`: what the film prints (credits.printed_line_for); `waiting_name`: the donor's name
    the locked credits do not print (yet), which the producers decide on."""
    waits = _("The credits are locked for the film: your name “%(name)s” is with the producers, "
              "who decide whether it can still go in.", name=waiting_name) if waiting_name else ""
    if line is None:
        return {"state": _("Not listed"), "css": "pending",
                "detail": waits or _("You are anonymous or gave no credit name."),
                "step": None}
    if waits:
        return {"state": _("Listed"), "css": "paid", "step": None,
                "detail": _("The film prints “%(name)s”.", name=line.name) + " " + waits}
    detail = f"“{line.name}”"
    if line.proof == ProofState.APPROVED:
        return {"state": str(PROOF_LABELS[ProofState.APPROVED]), "css": "paid", "detail": detail}
    if not proof_open:
        return {"state": _("Listed"), "css": "paid", "detail": detail}
    label = _("Confirm your Executive Producer credit") if line.section == "executive_producers" else \
        _("Approve your line in the credits")
    state = str(PROOF_LABELS[ProofState.CHANGES if line.proof == ProofState.CHANGES else ProofState.PENDING])
    return {"state": state, "css": "pending", "detail": detail,
            "step": _step(label, url_for("fulfil.proof"), "proof")}


def _service_row(user: User, key: str, campaign: Campaign) -> dict:
    """Questions, invitations and the $2000 thread are rewards-comms' (its pages and states): the
    statement reads their state and links to them."""
    if "question" in key:
        rows = dict(db.session.execute(
            sa.select(Question.state, sa.func.count(Question.id))
            .where(Question.user_id == user.id, Question.campaign_id == campaign.id)
            .group_by(Question.state)).all())
        asked, answered = sum(rows.values()), rows.get(QuestionState.ANSWERED, 0)
        url = _url("comms.questions")
        if not asked:
            return {"state": _("Open"), "css": "pending", "step": _step(_("Ask your questions"), url, "question")}
        return {"state": _("%(answered)s of %(asked)s answered", answered=answered, asked=asked),
                "css": "paid" if answered == asked else "processing", "link": url}
    if key == "by-arrangement":
        return {"state": _("By arrangement"), "css": "pending",
                "step": _step(_("Write to the producers"), _url("comms.thread"), "thread")}
    inv = db.session.scalar(
        sa.select(Invitation).join(Experience, Experience.id == Invitation.experience_id)
        .where(Invitation.user_id == user.id, Experience.reward_key == key, Experience.campaign_id == campaign.id)
        .order_by(Invitation.id.desc()).limit(1))
    status = inv.status if inv is not None else None
    if inv is not None and invitations.place_state(inv) == invitations.DISPLACED:  # comms' rule of places
        return {"state": _("Your time filled up"), "css": "pending",
                "step": _step(_("Choose another time"), _url("comms.invitations"), "rsvp")}
    if status is None:
        has_experience = db.session.scalar(sa.select(sa.func.count(Experience.id)).where(
            Experience.reward_key == key, Experience.campaign_id == campaign.id))
        if not has_experience:
            return {"state": _("Invitation to come"), "css": "pending", "detail": _("We will propose dates.")}
        status = RsvpStatus.INVITED
    if status == RsvpStatus.INVITED:
        return {"state": _("Invited"), "css": "pending",
                "step": _step(_("Answer the invitation (RSVP)"), _url("comms.invitations"), "rsvp")}
    return {"state": _("Coming") if status == RsvpStatus.ACCEPTED else _("Declined"),
            "css": "paid" if status == RsvpStatus.ACCEPTED else "pending", "link": _url("comms.invitations")}


# ---------------------------------------------------------------- producers' queues

_NOT_JOINED = sa.null()


def _category_exprs(now: datetime, *, status=Entitlement.status, item_state=FulfilmentItem.state,
                    proof_state=CreditProof.state, deadline=CreditsState.proof_deadline) -> dict:
    """0/1 SQL expressions per queue state. CASE, not NOT(...): the outer joins give NULLs, and
    NOT NULL is NULL in SQL, which would drop rows from every state. The columns the rule reads
    (an entitlement's status, its item's state, the donor's proof's state, the credits' deadline;
    the reward's kind and due date) are the tables' own unless given: the counts read them from
    holders grouped first (_counts), and give _NOT_JOINED for what a kind's state never reads."""
    kind = Reward.kind
    done = sa.or_(
        kind.in_([RewardKind.DIGITAL, RewardKind.UPDATES]),
        sa.and_(kind == RewardKind.PHYSICAL, item_state == ItemState.RECEIVED),
        sa.and_(kind == RewardKind.CREDIT, proof_state == ProofState.APPROVED),
        sa.and_(kind.in_([RewardKind.SERVICE, RewardKind.CUSTOM]), status == EntitlementStatus.FULFILLED),
    )
    started = sa.or_(
        sa.and_(kind == RewardKind.PHYSICAL,
                item_state.in_([ItemState.IN_PRODUCTION, ItemState.SHIPPED, ItemState.RETURNED])),
        sa.and_(kind == RewardKind.CREDIT, proof_state.in_([ProofState.PENDING, ProofState.CHANGES])),
    )
    due = sa.case((kind == RewardKind.CREDIT, deadline), else_=RewardSchedule.due_at)
    return {
        "owed": sa.case((done, 0), (started, 0), else_=1),
        "in_progress": sa.case((done, 0), (started, 1), else_=0),
        "done": sa.case((done, 1), else_=0),
        "late": sa.case((done, 0), (sa.and_(due.is_not(None), due < now), 1), else_=0),
    }


# Held, in the words of the entitlements' partial index (rewards/models.py), so that it serves
# a reward's page of holders in their order and their counts.
HELD = sa.text(f"entitlements.{ENTITLEMENT_HELD_SQL}")
# A credit reward is owed only to the donors the credits print (rewards/privacy.py's credited_sql,
# as the credits ask it: a public name, rewards kept): an anonymous donor, or one without a credit
# name, holds the reward but has no line to approve, so nothing is ever owed to them, late or done.
LISTED = privacy.credited_sql(DonorProfile)
# The counts per reward: one aggregate per kind whose state reads another table, joining only that
# table (a physical reward's items, a credit's proofs), and one for the other rewards, whose state
# is their entitlement's. README, "The producers' and the partner's pages at a million donations".
COUNTED_APART = ((RewardKind.PHYSICAL, True, False), (RewardKind.CREDIT, False, True))


def _queue_from(campaign: Campaign):
    """A reward's holders with all their state reads (its page: queue_page); a credit reward's
    only those the credits print (LISTED)."""
    return (sa.select(Entitlement.id).select_from(Entitlement)
            .join(Reward, Reward.id == Entitlement.reward_id)
            .outerjoin(FulfilmentItem, FulfilmentItem.entitlement_id == Entitlement.id)
            .outerjoin(CreditProof, CreditProof.user_id == Entitlement.user_id)
            .outerjoin(RewardSchedule, RewardSchedule.reward_id == Reward.id)
            .outerjoin(CreditsState, CreditsState.campaign_id == Reward.campaign_id)
            .outerjoin(DonorProfile, DonorProfile.user_id == Entitlement.user_id)
            .where(Reward.campaign_id == campaign.id, HELD,
                   sa.or_(Reward.kind != RewardKind.CREDIT, LISTED)))


def _counts(campaign: Campaign, now: datetime, reward_ids: list[int], items: bool, proofs: bool) -> dict:
    """{reward id: row of the sums per queue state} of these rewards. The holders are grouped
    first by what their state reads (reward, status, and the item's or the proof's state if
    `items`, `proofs`: one of each per holder at most, so leaving one out changes no count), then
    the rule is applied once per group, weighted by its size. The rewards are named by id: joined
    to the holders, the rewards table (16 rows, which never reach autovacuum's threshold to be
    analysed) made PostgreSQL expect 20,000 holders for 817,000 and look up each one's item by its
    index, one at a time (9 to 30 s at a million donations)."""
    parts = [Entitlement.reward_id, Entitlement.status]
    stmt = sa.select().select_from(Entitlement)
    if items:
        parts.append(FulfilmentItem.state.label("item_state"))
        stmt = stmt.outerjoin(FulfilmentItem, FulfilmentItem.entitlement_id == Entitlement.id)
    if proofs:  # the credit rewards: their holders the credits print (LISTED) alone
        parts.append(CreditProof.state.label("proof_state"))
        stmt = (stmt.outerjoin(CreditProof, CreditProof.user_id == Entitlement.user_id)
                .join(DonorProfile, DonorProfile.user_id == Entitlement.user_id).where(LISTED))
    groups = (stmt.add_columns(*parts, sa.func.count().label("n"))
              .where(Entitlement.reward_id.in_(reward_ids), HELD).group_by(*parts).subquery("holders"))
    exprs = _category_exprs(now, status=groups.c.status,
                            item_state=groups.c.item_state if items else _NOT_JOINED,
                            proof_state=groups.c.proof_state if proofs else _NOT_JOINED,
                            deadline=CreditsState.proof_deadline if proofs else _NOT_JOINED)
    stmt = (sa.select(groups.c.reward_id, *[sa.func.sum(expr * groups.c.n).label(name) for name, expr in exprs.items()])
            .select_from(groups).join(Reward, Reward.id == groups.c.reward_id)
            .outerjoin(RewardSchedule, RewardSchedule.reward_id == groups.c.reward_id))
    if proofs:
        stmt = stmt.outerjoin(CreditsState, CreditsState.campaign_id == campaign.id)
    return {row.reward_id: row for row in db.session.execute(stmt.group_by(groups.c.reward_id))}


@dataclass
class Queue:
    reward: Reward
    tier_name: str
    counts: dict[str, int]
    due_at: datetime | None
    available_at: datetime | None

    @property
    def total(self) -> int:
        return self.counts["owed"] + self.counts["in_progress"] + self.counts["done"]


def queues(campaign: Campaign, now: datetime | None = None, kinds=None) -> list[Queue]:
    """One row per reward with its counts: a fixed few aggregate queries (COUNTED_APART, and one
    for the rest), however many donors. It writes nothing: the items are made with their
    entitlements (fulfilment.py). `kinds`: only the rewards of these kinds (the dashboard's
    hand-delivered ones), whose holders alone are then counted."""
    now = now or utcnow()
    only = Reward.kind.in_(list(kinds)) if kinds is not None else sa.true()
    rewards = db.session.execute(
        sa.select(Reward, Tier.name, RewardSchedule.due_at, RewardSchedule.available_at)
        .join(Tier, Tier.id == Reward.tier_id)
        .outerjoin(RewardSchedule, RewardSchedule.reward_id == Reward.id)
        .where(Reward.campaign_id == campaign.id, only).order_by(Tier.min_amount, Reward.position)).all()
    counts = {}
    apart = {kind for kind, _items, _proofs in COUNTED_APART}
    for kind, items, proofs in COUNTED_APART:
        ids = [reward.id for reward, *_rest in rewards if reward.kind == kind]
        if ids:
            counts.update(_counts(campaign, now, ids, items, proofs))
    rest = [reward.id for reward, *_rest in rewards if reward.kind not in apart]
    if rest:
        counts.update(_counts(campaign, now, rest, items=False, proofs=False))
    out = []
    for reward, tier_name, due_at, available_at in rewards:
        row = counts.get(reward.id)
        out.append(Queue(reward, tier_name, {name: int(getattr(row, name) or 0) if row else 0 for name in QUEUE_STATES},
                         due_at, available_at))
    return out


def queue_page(campaign: Campaign, reward_key: str, state: str | None, *, after: str | None = None,
               before: str | None = None, now: datetime | None = None, size: int | None = None) -> dict:
    """One reward's holders in the order they came (granted_at, then the entitlement), filtered by
    queue state, PAGE_SIZE a page unless `size` says: the first page, the page past the cursor
    `after`, or the page before `before` (keyset.read: a page deep in the list costs what the
    first does). `next` and `previous`: the cursors of the pages either side, None at an end."""
    size = size or PAGE_SIZE

    reward = db.session.scalar(sa.select(Reward).where(Reward.campaign_id == campaign.id, Reward.key == reward_key))
    if reward is None:
        raise NotFoundError(_("No such reward."))
    if state and state not in QUEUE_STATES:
        raise ValidationError(_("state: one of %(choices)s.", choices=", ".join(QUEUE_STATES)), code="invalid_state")
    now = now or utcnow()
    cats = _category_exprs(now)
    stmt = (_queue_from(campaign).with_only_columns(
                Entitlement, User.email, FulfilmentItem, CreditProof.state,
                ShippingAddress.user_id.is_not(None).label("has_address"),
                *[expr.label(name) for name, expr in cats.items()])
            .join(User, User.id == Entitlement.user_id)
            # A join (one address per donor, its key), not EXISTS: PostgreSQL hashed every address
            # for that subquery before reading the page's 50 rows (130 ms a page at a million donations).
            .outerjoin(ShippingAddress, ShippingAddress.user_id == Entitlement.user_id)
            .where(Entitlement.reward_id == reward.id))
    if state:
        stmt = stmt.where(cats[state] == 1)
    page = keyset.read(stmt, Entitlement.granted_at, Entitlement.id, lambda r: (r[0].granted_at, r[0].id),
                       size=size, after=after, before=before)
    items = [{"entitlement": r[0], "email": r[1], "item": r[2], "proof": r[3].value if r[3] else None,
              "has_address": bool(r.has_address),
              "state": "done" if r.done == 1 else "in_progress" if r.in_progress == 1 else "owed",
              "late": r.late == 1}
             for r in page.rows]
    return {"reward": reward, "rows": items, "state": state, "next": page.next, "previous": page.previous,
            "first": page.first, "cursor": {"after": after, "before": before}}
