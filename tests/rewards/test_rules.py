"""Property tests of the money rules (pure functions, no database)."""
from dataclasses import dataclass
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from filmfund.rewards import rules

from . import money_model

AMOUNTS = st.integers(min_value=1, max_value=10**8)
BPS = st.integers(min_value=0, max_value=10000)


@settings(max_examples=2000)
@given(st.integers(min_value=0, max_value=10**12), BPS)
def test_share_due_is_round_half_up(net, bps):
    assert rules.share_due(net, bps) == money_model.share_due(net, bps)
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
    """The ledger's bookkeeping with the implementation's rules: each event books the change of the
    donation's counted refund, and the partner-share entry `rules.share_allocation` gives for it.
    Yields (net, allocations so far) after each event."""
    amounts, refunded, lost, booked_refund = {}, {}, {}, {}
    allocations, net = [], 0
    for index, kind, value in events:
        if kind == "gift":
            amounts[index] = value
        elif kind == "refund":
            refunded[index] = rules.reported_refund([(0, refunded.get(index, 0)), (0, value)], [])
        else:
            lost[index] = value == "lost"
        if index in amounts:  # the payment is known: what waited for it applies now
            changes = [amounts[index]] if kind == "gift" else []
            target = rules.counted_refund(amounts[index], refunded.get(index, 0), lost.get(index, False))
            changes.append(booked_refund.get(index, 0) - target)
            booked_refund[index] = target
            for change in filter(None, changes):
                allocations.append(rules.share_allocation(net, net + change, bps))
                net += change
        yield net, list(allocations)


def model_moments(events, bps):
    """What the contract says after each event (tests/rewards/money_model.py: no filmfund code)."""
    books = money_model.Ledger()
    for index, kind, value in events:
        books.apply(index, {"gift": "paid", "refund": "refunded", "dispute": "dispute"}[kind], value)
        yield books.net, money_model.share_due(books.net, bps)


@settings(max_examples=600, deadline=None)
@given(donation_histories(), BPS)
def test_allocations_add_up_to_the_models_share_at_every_moment(events, bps):
    for (net, allocations), (model_net, model_share) in zip(replay(events, bps), model_moments(events, bps),
                                                             strict=True):
        assert net == model_net >= 0
        assert sum(allocations) == model_share
        # Reversals never exceed what was allocated.
        assert sum(a for a in allocations if a < 0) >= -sum(a for a in allocations if a > 0)


@settings(max_examples=200, deadline=None)
@given(donation_histories(), BPS, st.randoms())
def test_any_order_ends_at_the_models_net_and_share(events, bps, rnd):
    shuffled = list(events)
    rnd.shuffle(shuffled)
    *_, (net, allocations) = replay(shuffled, bps)
    *_, (model_net, model_share) = model_moments(events, bps)  # the model in the original order
    assert (net, sum(allocations)) == (model_net, model_share)


@settings(max_examples=400)
@given(AMOUNTS, st.lists(st.integers(min_value=0, max_value=10**8), max_size=10))
def test_cumulative_refund_never_goes_back(amount, reports):
    """Without a refund Stripe says failed, a late, smaller report never undoes a larger one."""
    known, seen = 0, []
    for at, report in enumerate(reports):
        seen.append((at, report))
        merged = rules.reported_refund(seen, [])
        assert merged >= known and merged >= report
        known = merged
    assert rules.counted_refund(amount, known, True) == amount
    assert rules.counted_refund(amount, known, False) == min(amount, known)


@dataclass
class T:
    min_amount: int


TIERS = [T(m) for m in money_model.TIER_MINIMUMS]


@settings(max_examples=400)
@given(st.integers(min_value=-10**6, max_value=10**8))
def test_tier_is_highest_within_total(total):
    tier = rules.tier_for(TIERS, total)
    reached = rules.tiers_reached(TIERS, total)
    assert (tier.min_amount if tier else None) == money_model.tier(total)
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
