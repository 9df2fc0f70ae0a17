"""A submission is done once: the one home of "this form was already sent".

A double click, or a browser that sends a form again after a timeout or on reload, must not book an
expense, a payout or an offline gift twice (the ledger is append-only: a second payout cannot be
taken back). A page puts a one-time token in its form (`new_token`); an API client sends an
Idempotency-Key header. The caller runs its use case through `run`, in its one transaction: the
token is claimed first (a row whose primary key is the token hashed with what it is for and who sent
it), so a second submission, even one racing the first, finds it and gets `AlreadyDone` with what
the first one made, having written nothing. The same token with other values is refused.

A form always carries its token, so a form sent without one (a page saved before tokens, a resend of
such a page, a hand-made POST) is refused with `MissingToken`, having written nothing: nothing
would tell its repetitions apart, and a payout or a gift booked twice cannot be taken back. The
page comes back with what was typed and a fresh token, so sending it again is one click. An API
client's Idempotency-Key stays optional (the contract): a call without one is done as it comes.
Any component's use case runs through it (the dashboard's payout, payout-reversal and
offline-gift forms, the books' expense form and API): it only keys their answer by a token.

A token is bound to the object its form acts on, as the form's URL names it (`/payouts/7/reverse`:
the view's arguments, `request.view_args`), whichever view runs the use case: a page lists one
reversal form per payout, all with the page's one token, and reversing payout 7 then payout 8 from
it (the Back button, a form sent to a new tab) are two submissions, each done once, where the
second used to be refused as "already sent with other values". The page's forms that do different
things are told apart by their purpose (another row each). A form whose URL names nothing (the
payout, the offline gift, the expense) is keyed as before.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import datetime
from typing import Callable, TypeVar

import sqlalchemy as sa
from flask import has_request_context, request
from flask_babel import gettext as _
from sqlalchemy.orm import Mapped, mapped_column

from filmfund.db import utcnow
from filmfund.errors import ConflictError, ValidationError
from filmfund.extensions import db

T = TypeVar("T")


class FormSubmission(db.Model):
    """A form (or an API call with an Idempotency-Key) that was done: its token, hashed with what it
    was for and who sent it, and what it made (filmfund/once.py). The primary key is the guard: a
    second submission of the same token, even one racing the first, cannot insert it again.

    `fingerprint` is a hash of the values sent, so a token sent again with other values is told
    apart from a double click. Rows are kept: a few bytes per form a producer sends."""

    __tablename__ = "form_submissions"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(sa.String(32))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    # The id of what it made (an expense, a payout, a donation): set in the same transaction.
    result_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# An Idempotency-Key, the pledges' and the expenses' (rewards/api.py, books/api.py), and a form's
# token: printable ASCII, no surrounding spaces, 1 to 128 characters.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,126}[\x21-\x7e])?$"
TOKEN_RE = re.compile(IDEMPOTENCY_KEY_PATTERN)


class AlreadyDone(ConflictError):
    """This submission was done before: `result_id` names what it made. The caller rolls back
    (nothing of this attempt is kept) and answers as the first one did."""

    code = "already_done"

    def __init__(self, result_id: int | None):
        super().__init__(_("This form was already sent: it is recorded once."), code="already_done")
        self.result_id = result_id


class MissingToken(ValidationError):
    """A form sent without its one-time token: refused, nothing written (the caller shows the form
    again, with what was typed and a fresh token)."""

    def __init__(self):
        super().__init__(_("This form came without its one-time key: nothing was recorded, so that it cannot "
                           "count twice. Check the values and send it again."), code="missing_form_token")


def new_token() -> str:
    """A token for one rendering of a form (in a hidden field named `once`)."""
    return secrets.token_urlsafe(18)


def _key(purpose: str, user_id: int, token: str, about: str = "") -> str:
    # Scoped to the sender, the form and the object it acts on: another producer's key, another
    # form's, or the same page's form for another payout, is another row.
    scope = f"{purpose}\n{user_id}\n{token}" + (f"\n{about}" if about else "")
    return hashlib.sha256(scope.encode()).hexdigest()


def _object_of_request() -> str:
    """What the request's URL names (`{"payout_id": 7}`), as text; "" when nothing (or no request):
    the object a token is bound to, whichever view runs the use case."""
    if not has_request_context() or not request.view_args:
        return ""
    return json.dumps(request.view_args, sort_keys=True, default=str)


def _fingerprint(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def run(purpose: str, user_id: int, token: str | None, values: dict, action: Callable[[], T], *,
        header: bool = False) -> T:
    """Do `action` (a use case returning what it made, with an `id`) once for this token. `values`
    are what was sent (parsed): the same token with other values is a ConflictError. `header`: the
    token is an API client's Idempotency-Key (the messages name it), which may be left out; a form's
    token may not (MissingToken)."""
    token = token.strip() if isinstance(token, str) else None
    if not token:
        if not header:
            raise MissingToken()
        return action()
    if not TOKEN_RE.match(token):
        raise ValidationError(_("Idempotency-Key: 1 to 128 characters.") if header
                              else _("This form is out of date: reload the page and send it again."),
                              code="invalid_idempotency_key")
    key, fingerprint = _key(purpose, user_id, token, _object_of_request()), _fingerprint(values)
    _refuse_if_done(db.session.get(FormSubmission, key), fingerprint, header)
    claim = FormSubmission(key=key, purpose=purpose, fingerprint=fingerprint)
    try:
        with db.session.begin_nested():  # only the claim is undone if the same token raced in
            db.session.add(claim)
    except sa.exc.IntegrityError:  # the other submission committed first (PostgreSQL waited for it)
        _refuse_if_done(db.session.get(FormSubmission, key, populate_existing=True), fingerprint, header)
        raise
    result = action()
    claim.result_id = result.id
    db.session.flush()
    return result


def _refuse_if_done(done: FormSubmission | None, fingerprint: str, header: bool) -> None:
    if done is None:
        return
    if done.fingerprint != fingerprint:
        raise ConflictError(_("This Idempotency-Key was used for a request with other values.") if header
                            else _("This form was already sent with other values: reload the page to "
                                   "record another."), code="idempotency_conflict")
    raise AlreadyDone(done.result_id)
