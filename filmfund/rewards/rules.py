"""The money rules of the contract, as pure functions (no database): easy to property-test.

- net = gross - refunded (what a lost dispute took counts as refunded);
- share_due = net * share_bps / 10000, rounded half up to the cent, at every moment;
- every money event allocates share_due(net_after) - share_due(net_before) to the partner, so
  the allocations telescope: whatever the order of events, they sum to exactly share_due(net);
- a donor's tier is the highest tier whose min_amount is at most their lifetime net.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple, Protocol, Sequence, TypeVar


class HasMinAmount(Protocol):
    min_amount: int


T = TypeVar("T", bound=HasMinAmount)


def share_due(net: int, share_bps: int) -> int:
    """Round half up of net * bps / 10000 in integer arithmetic (net is never negative)."""
    if net < 0:
        raise ValueError("net cannot be negative")
    if not 0 <= share_bps <= 10000:
        raise ValueError("share_bps must be within 0..10000")
    return (net * share_bps * 2 + 10000) // 20000


def share_allocation(net_before: int, net_after: int, share_bps: int) -> int:
    """The partner-share entry of one money event (negative when money went back)."""
    return share_due(net_after, share_bps) - share_due(net_before, share_bps)


def tier_for(tiers: Sequence[T], total: int) -> T | None:
    """The highest tier whose min_amount is at most `total`, or None."""
    best = None
    for tier in tiers:
        if tier.min_amount <= total and (best is None or tier.min_amount > best.min_amount):
            best = tier
    return best


def tiers_reached(tiers: Sequence[T], total: int) -> list[T]:
    """Tiers are cumulative: the donor's tier and every tier below it."""
    return sorted((t for t in tiers if t.min_amount <= total), key=lambda t: t.min_amount)


def replacement_refusal(tier_min: int | None, replaced_tier_min: int | None, both_physical: bool,
                        replaced_by_another: bool) -> str | None:
    """Why a reward cannot take the place of another (`replaces`: "the DVD signed" for "the DVD"),
    or None. The other is of a lower tier (a donor who reaches this one reaches it too: that is when
    one of the two is sent, not both), both are physical (one parcel instead of two; a digital
    reward keeps what was published to its holders), and no other reward takes its place. The
    campaign file and the campaign editor both ask this; each says the refusal in its own words.
    Codes: "not_lower", "not_physical", "replaced_already"."""
    if tier_min is None or replaced_tier_min is None or replaced_tier_min >= tier_min:
        return "not_lower"
    if not both_physical:
        return "not_physical"
    if replaced_by_another:
        return "replaced_already"
    return None


def counted_refund(amount: int, amount_refunded: int, dispute_lost: bool, disputed: int | None = None) -> int:
    """What counts as refunded on one donation: its refunds, plus what a lost dispute took (the
    dispute's `amount`: the cardholder may dispute part of a gift; unknown, the whole donation),
    never beyond the donation."""
    taken = (amount if disputed is None else disputed) if dispute_lost else 0
    return min(amount, amount_refunded + taken)


class RefundFailure(NamedTuple):
    """One refund Stripe said failed (or was canceled) after it was made: its money went back."""

    refund_id: str
    amount: int
    failed_at: int              # when Stripe said so (the event's `created`, unix seconds)
    created: int | None = None  # when the refund was made, if Stripe said


def reported_refund(totals: Iterable[tuple[int, int]], failures: Iterable[RefundFailure]) -> int:
    """What Stripe's reports say is refunded on one charge, whatever the order they came in.

    `totals` are (when, amount_refunded) as the charge reported them, cumulative: a late, smaller
    one never undoes a larger one. Only a refund that Stripe says failed comes out: out of every
    total that held it, i.e. one reported after the refund was made (when its `created` is known)
    and not after it failed, and that is large enough to hold it (within the same second Stripe's
    times cannot tell before from after). The answer is the largest total so corrected."""
    first: dict[str, RefundFailure] = {}
    for failure in failures:  # one refund may be reported failed by several events: the earliest counts
        known = first.get(failure.refund_id)
        if known is None or failure.failed_at < known.failed_at:
            first[failure.refund_id] = failure
    failed = sorted(first.values(), key=lambda f: (f.failed_at, f.refund_id))
    best = 0
    for at, total in totals:
        left = total
        for f in failed:
            if at <= f.failed_at and (f.created is None or f.created <= at) and f.amount <= left:
                left -= f.amount
        best = max(best, left)
    return best


def percent_of_goal(raised: int, goal: int) -> int:
    """How much of the goal is raised, in whole percent, rounded down (never overstated) and not
    capped: $86,340 of a $4,000 goal is 2158%. The campaign page and the dashboard both show this;
    only the bar that draws it stops at its end."""
    if goal <= 0:
        return 0
    return max(raised, 0) * 100 // goal
