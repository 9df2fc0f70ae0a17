"""The end credits: who is listed and how, each donor's proof of their line, the freeze at
picture lock and the export (csv, txt); the rendered roll is fulfil/roll.py's.

Sections, in this order: `executive_producers` (holders of a credit reward above the first one:
the $500 tier and up), then `supporters` (holders of the first credit reward). A line is the
donor's credit name from their profile, or the wording they approved for it; donors who are
anonymous, opted out of rewards or gave no credit name never appear, nor does a legal name or
an email, nor a donor without money in the installation's money mode (test money never puts a
name in a live installation's credits). Once frozen, the export gives the frozen list, and every difference from the live
list is flagged for the producers.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone

import sqlalchemy as sa
from flask_babel import gettext as _

from filmfund import csvsafe
from filmfund.fulfil.fulfilment import clean_text, due_for_reminder, opted_out_of_reminders, send_reminder_mail
from filmfund.fulfil.tokens import mailed_link, make_token
from filmfund.rewards.texts import campaign_title
from filmfund.i18n import for_donor, format_day
from filmfund.auth.models import User
from filmfund.db import utcnow
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.audit import record_audit
from filmfund.fulfil.models import CreditProof, CreditsState, ProofState, ReminderMail
from filmfund.rewards import holdings, privacy
from filmfund.rewards.models import (
    Campaign,
    DonorProfile,
    Entitlement,
    Reward,
    RewardKind,
    Tier,
)

SECTIONS = ("executive_producers", "supporters")
HEADINGS = {"executive_producers": "Executive Producers", "supporters": "Supporters"}
LINE_MAX = 120


@dataclass(frozen=True)
class CreditLine:
    user_id: int
    section: str
    name: str                  # what the credits print
    credit_name: str           # the profile's credit name
    proof: str                 # approved, pending, changes_requested, stale (approved for another name), none


# ---------------------------------------------------------------- who, and under which name

def _credit_rewards(campaign: Campaign) -> tuple[int | None, list[int]]:
    """(the supporters' credit reward, the executive producers' credit rewards): credit rewards
    by tier, the first for supporters, any above it for executive producers."""
    ids = list(db.session.scalars(
        sa.select(Reward.id).join(Tier, Tier.id == Reward.tier_id)
        .where(Reward.campaign_id == campaign.id, Reward.kind == RewardKind.CREDIT)
        .order_by(Tier.min_amount, Reward.position)))
    return (ids[0] if ids else None), ids[1:]


def _names_query(campaign: Campaign):
    """(user_id, credit_name) of donors who may appear: filmfund.rewards.privacy says who is
    credited (a public name, rewards kept) and under which name."""
    return (sa.select(DonorProfile.user_id, privacy.public_name_sql().label("credit_name"))
            .where(privacy.credited_sql())
            .subquery())


def donor_credit_name(user_id: int) -> str | None:
    """The donor's credit name as the credits would print it (None if anonymous or not given)."""
    return privacy.public_name_of(user_id)


def _credited(campaign: Campaign):
    """SQL, a subquery: (user_id, credit_name, exec) of every donor the credits list, or None when
    the campaign has no credit reward."""
    base, exec_ids = _credit_rewards(campaign)
    if base is None:
        return None
    names = _names_query(campaign)
    # Semi-joins and one outer join, not a subquery per donor: each list (the credit holders, the
    # executive producers, the donors with money) is read once and hashed, so a page of the credits
    # costs one pass over the names (per-donor EXISTS and net lookups took 9 s at a million donations).
    holders = sa.select(Entitlement.user_id).where(Entitlement.reward_id.in_([base, *exec_ids]), holdings.HELD)
    execs = (sa.select(Entitlement.user_id).where(Entitlement.reward_id.in_(exec_ids or [-1]), holdings.HELD)
             .group_by(Entitlement.user_id).subquery("execs"))
    # Only money of the installation's mode counts: a donor who gave only test money never
    # appears in a live installation's credits (nor live-only donors in a test one).
    donors = holdings.donors_sql(campaign.id)
    return (sa.select(names.c.user_id, names.c.credit_name, execs.c.user_id.is_not(None).label("exec"))
            .outerjoin(execs, execs.c.user_id == names.c.user_id)
            .where(names.c.user_id.in_(holders), names.c.user_id.in_(donors)).subquery("credited"))


def _lines_stmt(campaign: Campaign):
    credited = _credited(campaign)
    if credited is None:
        return None
    return (sa.select(credited.c.user_id, credited.c.credit_name, credited.c.exec, CreditProof)
            .outerjoin(CreditProof, CreditProof.user_id == credited.c.user_id))


def _line(user_id: int, credit_name: str, exec_: bool, proof: CreditProof | None) -> CreditLine:
    section = "executive_producers" if exec_ else "supporters"
    if proof is None:
        state, name = "none", credit_name
    elif proof.credit_name != credit_name or proof.section != section:
        state, name = "stale", credit_name  # the name (or tier) changed since the donor approved
    else:
        state = proof.state.value
        name = proof.line if proof.state == ProofState.APPROVED else credit_name
    return CreditLine(user_id, section, name, credit_name, state)


# The order of the credits: executive producers first, then supporters; within a section by name,
# its ASCII letters' case aside, then by the name's code points, then by donor. The same order in
# SQL (_ordered: what the page pages and the CSV streams) and in Python (line_key); both
# databases fold only ASCII letters (SQLite's lower(), PostgreSQL's under the "C" collation).
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def line_key(line: CreditLine) -> tuple:
    """Python form of the order _ordered gives in SQL (the tests check they agree)."""
    return (SECTIONS.index(line.section), line.name.translate(_ASCII_LOWER), line.name, line.user_id)


def _code_points(text):
    """`text` compared by code points on either database (SQLite's default; PostgreSQL's "C")."""
    if db.session.get_bind().dialect.name == "postgresql":
        return text.collate("C")
    return text


def _ordered(campaign: Campaign):
    """(statement of every live line's columns for _line, with its printed name in SQL, and the
    order's columns), or None when the campaign has no credit reward."""
    credited = _credited(campaign)
    if credited is None:
        return None
    section = sa.case((credited.c.exec, SECTIONS[0]), else_=SECTIONS[1])
    approved = sa.and_(CreditProof.user_id.is_not(None), CreditProof.credit_name == credited.c.credit_name,
                       CreditProof.section == section, CreditProof.state == ProofState.APPROVED)
    name = _code_points(sa.case((approved, CreditProof.line), else_=credited.c.credit_name))
    order = (sa.case((credited.c.exec, 0), else_=1), sa.func.lower(name), name, credited.c.user_id)
    stmt = (sa.select(credited.c.user_id, credited.c.credit_name, credited.c.exec, CreditProof)
            .outerjoin(CreditProof, CreditProof.user_id == credited.c.user_id))
    return stmt, order


def _live_parts(campaign: Campaign, chunk: int = 2000):
    """The live lines in the credits' order, a list per chunk read from the database."""
    found = _ordered(campaign)
    if found is None:
        return
    stmt, order = found
    for part in db.session.execute(stmt.order_by(*order).execution_options(yield_per=chunk)).partitions():
        yield [_line(uid, name, bool(exec_), proof) for uid, name, exec_, proof in part]


def iter_live_lines(campaign: Campaign, chunk: int = 2000):
    """The live lines in the credits' order, read from the database a chunk at a time."""
    for part in _live_parts(campaign, chunk):
        yield from part


def iter_live_names(campaign: Campaign, beyond_ascii: bool = False, chunk: int = 2000):
    """The printed names of the live lines in the credits' order, read a chunk at a time, and only
    the names (no proof row per line); `beyond_ascii`: only the names with a character outside
    printable ASCII (the only ones a font can lack, for the roll's check: a small part of a million)."""
    found = _ordered(campaign)
    if found is None:
        return
    stmt, order = found
    name = order[2]
    stmt = stmt.with_only_columns(name)
    if beyond_ascii:
        stmt = stmt.where(name.regexp_match("[^ -~]"))
    for part in db.session.execute(stmt.order_by(*order).execution_options(yield_per=chunk)).partitions():
        yield from (row[0] for row in part)


def live_lines(campaign: Campaign) -> list[CreditLine]:
    """The credits as they stand now: executive producers first, then supporters, by name."""
    return list(iter_live_lines(campaign))


def _encode_after(line: CreditLine) -> str:
    raw = json.dumps([SECTIONS.index(line.section), line.name, line.user_id], ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def _decode_after(after: str) -> tuple[int, str, int] | None:
    """A page's starting point as the previous page gave it; None (the first page) for anything else."""
    try:
        rank, name, user_id = json.loads(base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)))
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    if not (isinstance(rank, int) and isinstance(name, str) and isinstance(user_id, int)
            and 0 <= rank < len(SECTIONS) and 0 <= user_id < 2**31 and len(name) <= 1000):
        return None
    return rank, name, user_id


def live_page(campaign: Campaign, after: str | None = None, limit: int = 200) -> dict:
    """One page of the live lines in the credits' order, from after the line `after` names (the
    previous page's `next`): keyset, so a supporter arriving between two pages never repeats a
    name. `{"lines": [...], "next": starting point of the next page or None}`."""
    found = _ordered(campaign)
    if found is None:
        return {"lines": [], "next": None}
    stmt, order = found
    start = _decode_after(after) if after else None
    if start is not None:
        rank, name, user_id = start
        text = _code_points(sa.literal(name, sa.String()))
        stmt = stmt.where(sa.tuple_(*order) > sa.tuple_(sa.literal(rank, sa.Integer()), sa.func.lower(text), text,
                                                       sa.literal(user_id, sa.Integer())))
    rows = db.session.execute(stmt.order_by(*order).limit(limit + 1)).all()
    lines = [_line(uid, name, bool(exec_), proof) for uid, name, exec_, proof in rows[:limit]]
    return {"lines": lines, "next": _encode_after(lines[-1]) if len(rows) > limit else None}


def live_summary(campaign: Campaign) -> dict:
    """How many live lines there are, in all and by proof state (the credits page's counts), in SQL."""
    counts = dict.fromkeys(("approved", "pending", "changes_requested", "stale", "none"), 0)
    credited = _credited(campaign)
    if credited is not None:
        section = sa.case((credited.c.exec, SECTIONS[0]), else_=SECTIONS[1])
        state = sa.case((CreditProof.user_id.is_(None), "none"),
                        (sa.or_(CreditProof.credit_name != credited.c.credit_name, CreditProof.section != section),
                         "stale"),
                        else_=sa.cast(CreditProof.state, sa.String()))
        for proof, n in db.session.execute(
                sa.select(state, sa.func.count()).select_from(credited)
                .outerjoin(CreditProof, CreditProof.user_id == credited.c.user_id).group_by(state)):
            counts[str(proof)] = int(n)
    return {"total": sum(counts.values()), "proofs": counts}


def line_for(user: User, campaign: Campaign) -> CreditLine | None:
    """This donor's line, if they appear in the credits."""
    stmt = _lines_stmt(campaign)
    if stmt is None:
        return None
    names = stmt.selected_columns
    row = db.session.execute(stmt.where(names[0] == user.id)).first()
    return _line(row[0], row[1], bool(row[2]), row[3]) if row else None


def printed_line_for(user: User, campaign: Campaign) -> tuple[CreditLine | None, str | None]:
    """What the film prints for this donor, and a name of theirs it does not print yet: before the
    freeze, their live line (nothing waiting); once frozen, their frozen line (None if they were not
    in it, or have withdrawn since), and their live name when it differs from it, which goes to the
    producers (changes_since_freeze) and is printed only if they freeze again. A donor must never
    be shown a name as theirs in the film that the film's list does not hold."""
    live = line_for(user, campaign)
    if not credits_frozen(campaign):
        return live, None
    row = _frozen_row_of(campaign, user.id)
    if row is not None and privacy.withdrawn_from_credits([user.id]):
        row = None
    printed = None if row is None else CreditLine(user.id, row[0], row[1], live.credit_name if live else row[1],
                                                  live.proof if live and live.name == row[1] else "none")
    waiting = live.name if live is not None and (printed is None or live.name != printed.name) else None
    return printed, waiting


def why_no_line(user: User, campaign: Campaign) -> str:
    """Why the credits print nothing for this donor, as the homes of the rules say it: declined
    rewards ("opted_out", privacy); holds no credit reward, since some of their money went back
    ("refunded", holdings); anonymous or erased ("anonymous"), no credit name ("no_name")
    (privacy); else "none" (no credit reward, no money in this money mode)."""
    why = privacy.not_credited_because(privacy.profile_of(user.id))
    if why == "opted_out":
        return why
    credit_keys = set(db.session.scalars(sa.select(Reward.key).where(Reward.campaign_id == campaign.id,
                                                                     Reward.kind == RewardKind.CREDIT)))
    if not credit_keys & holdings.held_keys(user.id, campaign.id):
        return "refunded" if holdings.is_refunded_donor(user.id, campaign.id) else "none"
    if why == "erased":
        return "anonymous"
    return why or "none"


def _frozen_row_of(campaign: Campaign, user_id: int) -> tuple[str, str] | None:
    """This donor's line in the frozen list (section, name), found by the database in the stored
    JSON: a donor's page does not read and parse the whole list (216,000 lines, 8.7 MB, 140 ms of
    Python at a million donations) to find one line. None if not in it, or erased (no name)."""
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        rows = sa.func.json_array_elements(sa.cast(CreditsState.frozen_lines, sa.JSON)).table_valued("value")
        item = lambda i: rows.c.value.op("->>")(i)  # noqa: E731 - the i-th field, as text
        owner = sa.cast(item(2), sa.BigInteger)
    else:
        rows = sa.func.json_each(CreditsState.frozen_lines).table_valued("value")
        item = lambda i: sa.func.json_extract(rows.c.value, f"$[{i}]")  # noqa: E731
        owner = item(2)
    found = db.session.execute(
        sa.select(item(0), item(1)).select_from(CreditsState).join(rows, sa.true())
        .where(CreditsState.campaign_id == campaign.id, CreditsState.frozen_at.is_not(None),
               owner == user_id)
        .limit(1)).first()
    return (found[0], found[1]) if found is not None and found[1] else None


def credits_frozen(campaign: Campaign) -> bool:
    """Picture lock: the credits' list is frozen (a later change to a name waits for the producers)."""
    state = credits_state(campaign)
    return state is not None and state.frozen_at is not None


# ---------------------------------------------------------------- proofs

def _state(campaign: Campaign) -> CreditsState:
    state = db.session.get(CreditsState, campaign.id)
    if state is None:
        state = CreditsState(campaign_id=campaign.id)
        db.session.add(state)
        db.session.flush()
    return state


def credits_state(campaign: Campaign) -> CreditsState | None:
    return db.session.get(CreditsState, campaign.id)


def proof_deadline(campaign: Campaign) -> datetime | None:
    state = credits_state(campaign)
    return state.proof_deadline if state else None


def proof_deadline_day(campaign: Campaign) -> date | None:
    """The day the producers gave as the deadline (the proofs close at its end, UTC), as every
    donor is asked it: the same day in any language and zone. Moved to Beijing time, its end is
    the next morning, and a Chinese proof asked for a day later than the English one."""
    deadline = proof_deadline(campaign)
    if deadline is None:
        return None
    return (deadline.astimezone(timezone.utc) if deadline.tzinfo else deadline).date()


def proof_open(campaign: Campaign, now: datetime | None = None) -> bool:
    if credits_frozen(campaign):
        return False
    state = credits_state(campaign)
    deadline = state.proof_deadline if state else None
    return deadline is None or (now or utcnow()) <= deadline


def approve_proof(user: User, campaign: Campaign, *, wording: str | None = None) -> CreditProof:
    """The donor approves their line as shown; an executive producer may give its exact wording
    (their credit name stays what it is: the wording is this credit's). The caller commits."""
    line = line_for(user, campaign)
    if line is None:
        raise NotFoundError(_("You have no line in the credits (anonymous, no credit name, or no credit reward)."))
    if not proof_open(campaign):
        raise ConflictError(_("The credits are closed for changes: write to the producers."), code="proof_closed")
    text = line.credit_name
    if wording is not None and line.section == "executive_producers":
        text = clean_text(wording, "wording", LINE_MAX, keep_spaces=True)
        if not text:  # the box came filled with her name: an empty one is a slip, not a wish to print it
            raise ValidationError(_("wording: type your credit as it should be printed (your credit name is %(name)s).",
                                    name=line.credit_name), code="invalid_field")
    proof = db.session.get(CreditProof, user.id)
    if proof is None:
        proof = CreditProof(user_id=user.id)
        db.session.add(proof)
    proof.state, proof.section, proof.line, proof.credit_name = (ProofState.APPROVED, line.section, text,
                                                                 line.credit_name)
    proof.note, proof.approved_at = "", utcnow()
    return proof


def erase_proof(user: User) -> None:
    """Receiver of rewards' `donor_erasing`: the donor's approved or disputed line (its wording,
    their name) goes with the rest of their personal data."""
    db.session.execute(sa.delete(CreditProof).where(CreditProof.user_id == user.id))


def erase_frozen_lines(user: User) -> None:
    """Receiver of rewards' `donor_erasing`: the donor's frozen lines lose their name (privacy
    beats the picture lock; the stored list keeps no erased name). Each keeps its place and its
    donor's id, so that the producers still see a line was taken out (withdrawn_since_freeze) and
    the roll is rendered again (filmfund.fulfil.roll.erase_from_roll)."""
    for state in db.session.scalars(sa.select(CreditsState).where(CreditsState.frozen_lines.is_not(None))):
        rows = json.loads(state.frozen_lines)
        if any(len(r) > 2 and r[2] == user.id and r[1] for r in rows):
            state.frozen_lines = json.dumps([[r[0], "", r[2]] if len(r) > 2 and r[2] == user.id else r for r in rows],
                                            ensure_ascii=False)
    db.session.flush()


def in_credits(user: User, campaign: Campaign) -> bool:
    """Whether this donor has a line in the live list or one in the frozen list (withdrawn or not):
    a roll rendered from either may show them."""
    rows = _frozen_rows(campaign) or []
    return any(len(r) > 2 and r[2] == user.id for r in rows) or line_for(user, campaign) is not None


def request_changes(user: User, campaign: Campaign, note: str) -> CreditProof:
    """The donor says the line is wrong (the producers read the note). The caller commits."""
    line = line_for(user, campaign)
    if line is None:
        raise NotFoundError(_("You have no line in the credits (anonymous, no credit name, or no credit reward)."))
    if not proof_open(campaign):
        raise ConflictError(_("The credits are closed for changes: write to the producers."), code="proof_closed")
    note = clean_text(note, "note", 500)
    if not note:
        raise ValidationError(_("%(field)s: say what should change.", field="note"), code="invalid_field")
    proof = db.session.get(CreditProof, user.id) or CreditProof(user_id=user.id)
    db.session.add(proof)
    proof.state, proof.section, proof.line, proof.credit_name = (ProofState.CHANGES, line.section, line.name,
                                                                 line.credit_name)
    proof.note, proof.approved_at = note, None
    return proof


def set_proof_deadline(campaign: Campaign, deadline: datetime | None) -> CreditsState:
    """The day the proofs close (None: open until the freeze). The caller commits."""
    state = _state(campaign)
    state.proof_deadline = deadline
    record_audit("credits.deadline", f"campaign:{campaign.slug}",
                 {"proof_deadline": deadline.isoformat() if deadline else None})
    return state


def proof_link(user: User) -> str:
    return mailed_link("fulfil.survey", token=make_token(user.id, "survey"))


def proofs_due(campaign: Campaign, now: datetime | None = None) -> list[CreditLine]:
    """The lines whose donor has not approved them, while the proofs are open (none after the
    deadline or the freeze): whom send_proof is for."""
    if not proof_open(campaign, now or utcnow()):
        return []
    return [line for line in live_lines(campaign) if line.proof != "approved"]


def send_proof(campaign: Campaign, line: CreditLine, now: datetime) -> bool:
    """Mail the donor a link to their proof, or a reminder of it, if one is due and they did not
    opt out of reminders (the `reminders` mail topic); the mail is recorded. True if mailed. The
    caller commits each mail before the next (filmfund.fulfil.tasks.proof_mailing)."""
    if opted_out_of_reminders(line.user_id) or not due_for_reminder(line.user_id, "credit_proof", now):
        return False
    deadline = proof_deadline_day(campaign)
    user = db.session.get(User, line.user_id)
    with for_donor(user.id):
        ask = (_("Please confirm it by %(day)s, or tell us what to change:", day=format_day(deadline)) if deadline
               else _("Please confirm it, or tell us what to change:"))
        send_reminder_mail(user, _("Check your name in the film's credits"),
                           _("Your name will appear in the end credits of “%(title)s” as:",
                             title=campaign_title(campaign))
                           + f"\n\n    {line.name}\n\n" + ask + f"\n\n{proof_link(user)}\n")
    db.session.add(ReminderMail(user_id=user.id, kind="credit_proof", sent_at=now))
    return True


# ---------------------------------------------------------------- freeze and export

def freeze(campaign: Campaign, actor_label: str) -> CreditsState:
    """Picture lock: the list as it stands is what the film prints. Freezing again takes the live
    list as the new frozen one (after the producers dealt with the flagged changes). Each line keeps
    its donor's id, so that a later anonymity request or erasure can take it out (privacy beats the
    lock). The caller commits."""
    state = _state(campaign)
    refreeze = state.frozen_at is not None
    state.frozen_lines = json.dumps([[l.section, l.name, l.user_id] for l in live_lines(campaign)],
                                    ensure_ascii=False)
    state.frozen_at, state.frozen_by = utcnow(), actor_label
    record_audit("credits.freeze", f"campaign:{campaign.slug}",
                 {"lines": len(json.loads(state.frozen_lines)), "refreeze": refreeze})
    return state


def _frozen_rows(campaign: Campaign) -> list[list] | None:
    if not credits_frozen(campaign):
        return None
    return json.loads(credits_state(campaign).frozen_lines or "[]")


def frozen_lines(campaign: Campaign) -> list[tuple[str, str]] | None:
    """The frozen list as the film prints it now: the lines frozen at picture lock, less the donors
    no longer credited (privacy.withdrawn_from_credits: anonymity, erasure, their name withdrawn,
    rewards declined). The one reading of the stored list for what it prints. A list frozen
    before lines carried their donor (two fields) is printed as it was."""
    rows = _frozen_rows(campaign)
    if rows is None:
        return None
    withdrawn = privacy.withdrawn_from_credits(r[2] for r in rows if len(r) > 2)
    return [(r[0], r[1]) for r in rows if r[1] and (len(r) < 3 or r[2] not in withdrawn)]


def withdrawn_since_freeze(campaign: Campaign) -> list[tuple[str, str]]:
    """Frozen lines taken out by their donor's privacy since the freeze (for the producers: the
    rendered roll must be made again); an erased donor's line has no name left."""
    rows = _frozen_rows(campaign) or []
    withdrawn = privacy.withdrawn_from_credits(r[2] for r in rows if len(r) > 2)
    return [(r[0], r[1]) for r in rows if len(r) > 2 and r[2] in withdrawn]


def export_lines(campaign: Campaign) -> list[tuple[str, str]]:
    """What the credits print: the frozen list once frozen (less the withdrawn), the live list before."""
    return [line for part in _export_parts(campaign) for line in part]


def _export_parts(campaign: Campaign):
    """export_lines in parts of (section, name): the frozen list as one part once frozen, else the
    live list a chunk at a time (read as the parts are: the streamed downloads hold a chunk)."""
    frozen = frozen_lines(campaign)
    if frozen is not None:
        return [frozen]
    return ([(l.section, l.name) for l in part] for part in _live_parts(campaign))


def changes_since_freeze(campaign: Campaign) -> dict | None:
    """Lines added to or removed from the live list since the freeze (a refund, a new name, a
    donor turned anonymous): flagged for the producers. Only a privacy withdrawal is applied
    without them (see frozen_lines); None when not frozen."""
    frozen = frozen_lines(campaign)
    if frozen is None:
        return None
    live = [(l.section, l.name) for l in live_lines(campaign)]
    return {"added": sorted(set(live) - set(frozen)), "removed": sorted(set(frozen) - set(live)),
            "withdrawn": sorted(withdrawn_since_freeze(campaign))}


def export_count(campaign: Campaign) -> int:
    """How many lines export_lines holds, counted in SQL before the live list is frozen."""
    frozen = frozen_lines(campaign)
    return len(frozen) if frozen is not None else live_summary(campaign)["total"]


def stream_csv(campaign: Campaign, newline: str = "\r\n"):
    """export_lines as CSV, in pieces: the live list read a chunk at a time (a generator: nothing
    is read until its first piece is; see csvsafe.download)."""
    yield from csvsafe.stream(["section", "name"], _export_parts(campaign), newline=newline)


def render_txt(lines: list[tuple[str, str]]) -> str:
    """The credits as plain text: each section's heading, then its names, a blank line between."""
    return "".join(_txt_pieces([lines]))


def stream_txt(campaign: Campaign):
    """render_txt of export_lines, in pieces: the live list read a chunk at a time, as stream_csv
    (at a million donations the text was built whole, 61 MiB for 216,000 lines)."""
    yield from _txt_pieces(_export_parts(campaign))


def _txt_pieces(parts):
    """The text of lines in the sections' order across the parts (the live list's order; each part
    is put in it too, for a list frozen in another), one piece per part."""
    section = None
    for part in parts:
        out = []
        for line_section, name in sorted(part, key=lambda line: SECTIONS.index(line[0])):
            if line_section != section:
                out.append(("\n" if section is not None else "") + HEADINGS[line_section] + "\n")
                section = line_section
            out.append(name + "\n")
        if out:
            yield "".join(out)
