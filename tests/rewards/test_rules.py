"""Property tests of the money rules (pure functions, no database)."""
from dataclasses import dataclass
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from filmfund.rewards import rules

AMOUNTS = st.integers(min_value=1, max_value=10**8)
BPS = st.integers(min_value=0, max_value=10000)


def exact_half_up(net: int, bps: int) -> int:
    x = Fraction(net * bps, 10000)
    return int(x + Fraction(1, 2)) if x >= 0 else 0  # floor(x + 1/2)


@settings(max_examples=2000)
@given(st.integers(min_value=0, max_value=10**12), BPS)
def test_share_due_is_round_half_up(net, bps):
    assert rules.share_due(net, bps) == exact_half_up(net, bps)
    assert abs(rules.share_due(net, bps) - Fraction(net * bps, 10000)) <= Fraction(1, 2)


def test_share_due_examples():
    assert rules.share_due(5000, 2000) == 1000
    assert rules.share_due(1, 2000) == 0          # 0.2 rounds down
    assert rules.share_due(3, 2000) == 1          # 0.6 rounds up
    assert rules.share_due(25, 2000) == 5
    assert rules.share_due(1, 5000) == 1          # exactly half rounds up
    assert rules.share_due(0, 2000) == 0


@st.composite
def donation_histories(draw):
    """Donations with 0-10 partial refunds each (cumulative amount_refunded as Stripe reports it),
    maybe a dispute lost or won, all interleaved in a random order."""
    events = []
    for index in range(draw(st.integers(min_value=1, max_value=6))):
        amount = draw(AMOUNTS)
        cumulative = sorted(draw(st.lists(st.integers(min_value=0, max_value=amount), max_size=10)))
        dispute = draw(st.sampled_from([None, "won", "lost"]))
        events.append((index, "gift", amount))
        events += [(index, "refund", c) for c in cumulative]
        if dispute:
            events.append((index, "dispute", dispute))
    order = draw(st.permutations(range(len(events))))
    return [events[i] for i in order]


def replay(events, bps):
    """A straight model of the ledger: each event books its net change and the running-difference share."""
    amounts, refunded, lost = {}, {}, {}
    booked_refund, allocations = {}, []
    net = 0
    for index, kind, value in events:
        if kind == "gift":
            amounts[index] = value
        elif kind == "refund":
            refunded[index] = rules.merged_refund(refunded.get(index, 0), value)
        else:
            lost[index] = value == "lost"
        if index not in amounts:
            continue  # the payment is not known yet: kept until it arrives, then applied
        changes = [amounts[index]] if kind == "gift" else []
        target = rules.counted_refund(amounts[index], refunded.get(index, 0), lost.get(index, False))
        changes.append(booked_refund.get(index, 0) - target)
        booked_refund[index] = target
        for change in filter(None, changes):
            allocations.append(rules.share_allocation(net, net + change, bps))
            net += change
    return amounts, refunded, lost, net, allocations


@settings(max_examples=600, deadline=None)
@given(donation_histories(), BPS)
def test_allocations_always_sum_to_share_due(events, bps):
    amounts, refunded, lost, net, allocations = replay(events, bps)
    gross = sum(amounts.values())
    counted = sum(rules.counted_refund(a, refunded.get(i, 0), lost.get(i, False)) for i, a in amounts.items())
    assert net == gross - counted >= 0
    assert sum(allocations) == rules.share_due(net, bps)
    # The partner's share never drifts a cent from the exact fraction.
    assert abs(sum(allocations) - Fraction(net * bps, 10000)) <= Fraction(1, 2)
    # Reversals never exceed what was allocated.
    assert sum(a for a in allocations if a < 0) >= -sum(a for a in allocations if a > 0)


@settings(max_examples=200, deadline=None)
@given(donation_histories(), BPS, st.randoms())
def test_order_does_not_change_the_result(events, bps, rnd):
    shuffled = list(events)
    rnd.shuffle(shuffled)
    first, second = replay(events, bps), replay(shuffled, bps)
    assert first[3] == second[3]
    assert sum(first[4]) == sum(second[4])


@settings(max_examples=400)
@given(AMOUNTS, st.lists(st.integers(min_value=0, max_value=10**8), max_size=10))
def test_cumulative_refund_never_goes_back(amount, reports):
    known = 0
    for report in reports:
        merged = rules.merged_refund(known, report)
        assert merged >= known and merged >= report
        known = merged
    assert rules.counted_refund(amount, known, True) == amount
    assert rules.counted_refund(amount, known, False) == min(amount, known)


@dataclass
class T:
    min_amount: int


TIERS = [T(m) for m in (100, 1500, 3000, 5000, 10000, 25000, 50000, 75000, 100000, 200000)]


@settings(max_examples=400)
@given(st.integers(min_value=-10**6, max_value=10**8))
def test_tier_is_highest_within_total(total):
    tier = rules.tier_for(TIERS, total)
    reached = rules.tiers_reached(TIERS, total)
    if total < 100:
        assert tier is None and reached == []
    else:
        assert tier.min_amount <= total
        assert all(t.min_amount > total for t in TIERS if t.min_amount > tier.min_amount)
        assert reached[-1] is tier and len(reached) == TIERS.index(tier) + 1


def test_tier_boundaries():
    assert rules.tier_for(TIERS, 99) is None
    assert rules.tier_for(TIERS, 100).min_amount == 100
    assert rules.tier_for(TIERS, 1499).min_amount == 100
    assert rules.tier_for(TIERS, 200000).min_amount == 200000
