"""The contract's money rules written again for the tests, from ../shared/contract.md ("Money
rules") and Stripe's event semantics, without calling filmfund: the property tests compare what the
implementation books with what this model says, at every moment of a history.

- net = gross - refunded, what a lost dispute took counting as refunded (the dispute's amount, which
  may be part of the gift; the whole gift when unknown), on top of the refunds, never beyond the gift;
- share_due = net * share_bps / 10000, rounded half up to the cent (decimal arithmetic here,
  not the implementation's integer trick);
- a donor's tier: the highest tier whose min_amount is at most their lifetime net.

Stripe reports a charge's `amount_refunded` cumulatively, and delivers events in any order: a
refund or dispute known before its payment counts from the moment the payment is known. A refund
may fail after it was made (a closed card): Stripe says so of that refund, and its money is back.
So a refund counts once a report of the charge holds it, until Stripe says it failed: the books
hold the largest of the reports, each without the refunds Stripe has said failed. (The model knows
which refunds each report holds; the implementation only sees totals and times.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext

# The bundled campaign's tiers (filmfund/campaigns/living-with-dead-hearts.toml), in cents.
TIER_MINIMUMS = (100, 1500, 3000, 5000, 10000, 25000, 50000, 75000, 100000, 200000)
SHARE_BPS = 2000  # the bundled campaign's partner share: 20 %


def share_due(net: int, share_bps: int = SHARE_BPS) -> int:
    with localcontext() as ctx:
        ctx.prec = 60
        return int((Decimal(net) * share_bps / 10000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def tier(net: int, minimums=TIER_MINIMUMS) -> int | None:
    """The min_amount of the donor's tier, or None below the lowest."""
    reached = [m for m in minimums if m <= net]
    return max(reached) if reached else None


@dataclass
class Payment:
    amount: int | None = None  # None until the payment itself is known
    # Each report of the charge: its total, or the refunds it holds ({refund id: amount}).
    reports: list = field(default_factory=list)
    failed: set = field(default_factory=set)  # the refunds Stripe said failed
    dispute: str | None = None  # None, "open", "won" or "lost"
    dispute_amount: int | None = None  # what the dispute is about; None: the whole gift

    @property
    def reported_refund(self) -> int:
        best = 0
        for report in self.reports:
            if isinstance(report, dict):
                report = sum(amount for refund, amount in report.items() if refund not in self.failed)
            best = max(best, report)
        return best

    @property
    def refunded(self) -> int:
        if self.amount is None:
            return 0
        taken = 0
        if self.dispute == "lost":
            taken = self.amount if self.dispute_amount is None else self.dispute_amount
        return min(self.amount, self.reported_refund + taken)


@dataclass
class Ledger:
    """What the books must say after each event, whatever the order of arrival."""

    payments: dict[str, Payment] = field(default_factory=dict)

    def apply(self, key: str, kind: str, value) -> None:
        payment = self.payments.setdefault(key, Payment())
        if kind == "paid":
            if payment.amount is None:  # a redelivered payment counts once
                payment.amount = value
        elif kind == "refunded":  # Stripe's cumulative amount_refunded, or the refunds it holds {id: amount}
            payment.reports.append(value)
        elif kind == "refund_failed":  # the id of a refund Stripe says failed
            payment.failed.add(value)
        elif kind == "dispute":  # a status, or (status, the dispute's amount)
            status, amount = value if isinstance(value, tuple) else (value, None)
            if status == "open":
                payment.dispute = payment.dispute or "open"
            else:
                payment.dispute = status
            if amount is not None and (status != "open" or payment.dispute_amount is None):
                payment.dispute_amount = amount
        else:
            raise ValueError(kind)

    @property
    def gross(self) -> int:
        return sum(p.amount for p in self.payments.values() if p.amount is not None)

    @property
    def refunded(self) -> int:
        return sum(p.refunded for p in self.payments.values())

    @property
    def net(self) -> int:
        return self.gross - self.refunded

    def share_due(self, share_bps: int = SHARE_BPS) -> int:
        return share_due(self.net, share_bps)


@dataclass
class MonthlyGift:
    """A monthly gift, from the contract (`interval: "month"`, `/api/v1/me/subscriptions`) and
    Stripe's event semantics: each paid invoice is one payment keyed by its invoice, however often
    and in whatever order it is delivered; the completed Checkout Session of a subscription moves
    no money (its first month is the first invoice); a failed invoice moves none either. The state
    is `canceled` for good once the subscription is deleted or cancelled, otherwise what the latest
    event (by Stripe's `created` time) said: `active` after a paid invoice, `past_due` after a
    failed one, or the subscription's own status."""

    books: Ledger = field(default_factory=Ledger)
    state: str | None = None
    state_at: int = -1

    def apply(self, kind: str, key: str | None = None, value=None, created: int = 0) -> None:
        if kind == "session_completed":
            self.state = self.state or "active"
            return
        if kind == "invoice_paid":
            self.books.apply(key, "paid", value)
            self._state("active", created)
        elif kind == "invoice_failed":
            if self.state is not None:
                self._state("past_due", created)
        elif kind == "subscription_updated":
            self._state(value, created)
        elif kind == "subscription_deleted":
            self.state = "canceled"
        elif kind == "refunded":
            self.books.apply(key, "refunded", value)
        else:
            raise ValueError(kind)

    def _state(self, state: str, created: int) -> None:
        if self.state == "canceled":
            return
        if self.state is None or created >= self.state_at:
            self.state, self.state_at = state, created


@dataclass
class PartnerPayouts:
    """What the partner has been paid, in the way Open Collective corrects money: a payout recorded
    by mistake is taken back by a reversal of its whole amount, once, and never edited; so
    paid_out = the payouts - the payouts reversed, and the balance due = share_due - paid_out.
    A second reversal of the same payout changes nothing (the books refuse it)."""

    payouts: dict = field(default_factory=dict)  # key -> amount
    reversed: set = field(default_factory=set)

    def pay(self, key, amount: int) -> None:
        self.payouts[key] = amount

    def reverse(self, key) -> bool:
        """True if the reversal counts, False if the books must refuse it."""
        if key not in self.payouts or key in self.reversed:
            return False
        self.reversed.add(key)
        return True

    @property
    def paid_out(self) -> int:
        return sum(self.payouts.values()) - sum(self.payouts[k] for k in self.reversed)
