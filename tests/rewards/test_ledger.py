"""The ledger: offline donations and payouts through the same services, derived totals, the check."""
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filmfund.errors import ConflictError, ValidationError
from filmfund.extensions import db
from filmfund.rewards import ledger, ledger_check
from filmfund.rewards.campaign import campaign_summary, load_campaign
from filmfund.rewards.campaign_file import MAX_AMOUNT
from filmfund.rewards.payments import partner_statement, record_payout, reverse_payout
from filmfund.rewards.models import Donation, LedgerEntry
from filmfund.rewards.webhooks import complete_test_checkout
from tests.helpers import make_pledge, record_offline

from . import money_model
from .conftest import charge_obj, dispute_obj, replay_against_model, session_obj, start_books_afresh


def test_offline_donation_and_payout(campaign):
    record_offline("cash@example.org", 12345, date(2026, 11, 1), note="screening in Paris",
                                     credit_name="Jean", recorded_by="producer@example.org")
    d = db.session.scalar(sa.select(Donation))
    assert (d.source, d.received_at) == ("offline", datetime(2026, 11, 1, 12, tzinfo=timezone.utc))
    statement = partner_statement(campaign)
    assert statement == {"currency": "usd", "share_bps": 2000, "gross": 12345, "refunded": 0, "net": 12345,
                         "share_due": 2469, "paid_out": 0, "balance": 2469, "test_money": True}
    record_payout(2000, date(2026, 11, 20), "SEPA-0042", "producer@example.org")
    db.session.commit()
    assert ledger.raised_by_day(campaign.id) == [(date(2026, 11, 1), 12345)]
    assert partner_statement(campaign)["paid_out"] == 2000
    assert partner_statement(campaign)["balance"] == 469
    with pytest.raises(ConflictError):
        record_payout(470, date(2026, 11, 21), "too much", "producer@example.org")
    groups = db.session.scalars(sa.select(LedgerEntry.event_kind).distinct()).all()
    assert set(groups) == {"offline_donation", "payout"}
    assert ledger_check.check_ledger() == []


@pytest.mark.parametrize("kwargs", [dict(amount=0), dict(amount="10"), dict(amount=50),
                                    dict(amount=1000, note="x" * 501),
                                    dict(amount=1000, received_on=datetime(2026, 1, 1))])
def test_offline_donation_refuses_bad_input(campaign, kwargs):
    with pytest.raises(ValidationError):
        record_offline("cash@example.org", **kwargs)
    assert db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))) == 0


@pytest.mark.parametrize("amount, reference", [(0, "ref"), (-5, "ref"), (1.5, "ref"), (100, ""), (100, "x" * 201)])
def test_payout_refuses_bad_input(campaign, amount, reference):
    record_offline("cash@example.org", 100000)
    with pytest.raises(ValidationError):
        record_payout(amount, date(2026, 11, 20), reference, "p@example.org")


def test_refund_after_payout_shows_a_negative_balance(campaign, stripe_events, pledge):
    p = pledge(10000)
    stripe_events.send("checkout.session.completed", session_obj(p.id, 10000))
    record_payout(2000, date(2026, 11, 20), "SEPA-1", "p@example.org")
    db.session.commit()
    stripe_events.send("charge.refunded", charge_obj(f"pi_{p.id}", 10000, 10000))
    statement = partner_statement(campaign)
    assert (statement["share_due"], statement["paid_out"], statement["balance"]) == (0, 2000, -2000)
    assert ledger_check.check_ledger() == []


def test_totals_and_donors(campaign, stripe_events, pledge):
    a1, a2, b = pledge(3000, "a@example.org"), pledge(2000, "a@example.org"), pledge(700, "b@example.org")
    for p in (a1, a2, b):
        stripe_events.send("checkout.session.completed", session_obj(p.id, p.amount, email=p.email))
    stripe_events.send("charge.dispute.closed", dispute_obj(f"pi_{b.id}", 700, "lost"))
    summary = campaign_summary(campaign)
    assert (summary["raised"], summary["donors"]) == (5000, 1)  # b's net is 0: not a donor
    [(day, net)] = ledger.raised_by_day(campaign.id)
    assert net == 5000 and day == datetime.now(timezone.utc).date()


def _tamper(sql: str):
    db.session.execute(sa.text(sql))
    db.session.commit()


@pytest.mark.parametrize("tampering, breach", [
    ("UPDATE ledger_entries SET amount = amount + 1 WHERE entry_kind = 'partner_share' AND id = "
     "(SELECT MIN(id) FROM ledger_entries WHERE entry_kind = 'partner_share')", "partner share"),
    ("UPDATE ledger_entries SET amount = amount - 1 WHERE entry_kind = 'gift' AND id = "
     "(SELECT MIN(id) FROM ledger_entries WHERE entry_kind = 'gift')", "gift entries"),
    ("DELETE FROM ledger_entries WHERE entry_kind = 'refund'", "counted refund"),
    ("UPDATE donations SET amount_refunded = 0", "counted refund"),
    ("UPDATE entitlements SET status = 'revoked'", "due but not granted"),
    ("UPDATE payouts SET amount = 1", "payouts"),
    ("UPDATE campaign_totals SET net = net + 1 WHERE livemode = false", "test campaign total net"),
    ("UPDATE campaign_totals SET donors = 0", "campaign total donors"),
    ("UPDATE campaign_totals SET paid_out = 0", "campaign total paid_out"),
    ("UPDATE donor_totals SET refunded = 0, net = gross", "donor total of user"),
    ("DELETE FROM donor_totals", "donor total of user"),
    ("UPDATE daily_totals SET share = share - 1", "day"),
    ("UPDATE ledger_entries SET livemode = true WHERE entry_kind = 'refund'", "mix test and live money"),
])
def test_ledger_check_finds_tampering(campaign, stripe_events, pledge, runner, tampering, breach):
    p = pledge(10000)
    stripe_events.send("checkout.session.completed", session_obj(p.id, 10000))
    stripe_events.send("charge.refunded", charge_obj(f"pi_{p.id}", 10000, 3000))
    record_payout(100, date(2026, 11, 20), "SEPA-1", "p@example.org")
    db.session.commit()
    ok = runner.invoke(args=["ledger", "check"])
    assert ok.exit_code == 0 and "ledger ok" in ok.output
    _tamper(tampering)
    result = runner.invoke(args=["ledger", "check"])
    assert result.exit_code == 1
    assert breach in result.output


def test_database_refuses_wrong_signs(campaign, stripe_events, pledge):
    p = pledge(1000)
    stripe_events.send("checkout.session.completed", session_obj(p.id, 1000))
    with pytest.raises(sa.exc.IntegrityError):
        _tamper("UPDATE ledger_entries SET amount = -amount WHERE entry_kind = 'gift'")
    db.session.rollback()
    with pytest.raises(sa.exc.IntegrityError):
        _tamper("UPDATE donations SET amount_refunded = amount + 1")


@st.composite
def histories(draw):
    payments = []
    for _ in range(draw(st.integers(1, 4))):
        amount = draw(st.integers(100, MAX_AMOUNT))  # up to the largest gift a pledge takes
        refunds = draw(st.lists(st.integers(0, amount), max_size=4))
        disputes = draw(st.sampled_from([[], ["open"], ["won"], ["lost"], ["open", "won"], ["open", "lost"]]))
        payments.append((amount, refunds, disputes))
    return payments, draw(st.randoms())


def _partner_share_entries() -> int:
    return db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.entry_kind.in_(["partner_share", "partner_share_reversal"])))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(case=histories())
def test_ledger_matches_the_contract_model_at_every_moment(app, campaign, stripe_events, case):
    """Payments, cumulative refunds and disputes of one donor, shuffled, each booked by the worker:
    after every event the books say what the contract's rules say (tests/rewards/money_model.py,
    which computes them without the implementation): the net, the share due rounded half up, the
    partner-share entries adding up to it exactly, and the donor's tier."""
    payments, rnd = case
    start_books_afresh()  # each example starts from empty books
    events = []
    for amount, refunds, disputes in payments:
        p = make_pledge(amount, email="prop@example.org")
        pi = f"pi_{p.id}"
        events.append((pi, "paid", amount, ("checkout.session.completed", session_obj(p.id, amount, pi=pi))))
        events += [(pi, "refunded", r, ("charge.refunded", charge_obj(pi, amount, r))) for r in refunds]
        for status in disputes:
            kind = "charge.dispute.created" if status == "open" else "charge.dispute.closed"
            events.append((pi, "dispute", status, (kind, dispute_obj(pi, amount, status if status != "open"
                                                                        else "needs_response"))))
    rnd.shuffle(events)

    def share_entries_add_up(books) -> None:  # the partner-share entries sum to exactly the share due
        assert _partner_share_entries() == money_model.share_due(books.net)

    replay_against_model(stripe_events, campaign, events, "prop@example.org", money_model, also=share_entries_add_up)


def test_test_checkout_refund_outcome(campaign, pledge):
    p = pledge(2500)
    complete_test_checkout(p.id, "paid")
    complete_test_checkout(p.id, "refunded")
    assert partner_statement(campaign)["net"] == 0
    assert ledger_check.check_ledger() == []


def test_test_and_live_money_never_mix(app, campaign, runner):
    """The installation's money mode decides what is booked and shown: test money (no key, a test
    key) and live money (a live key) keep their own totals, and each mode's check passes."""
    from filmfund.rewards import ledger

    assert ledger.money_mode() is False
    record_offline("test@example.org", 5000)
    app.config.update(STRIPE_SECRET_KEY="sk_live_not_a_real_key", STRIPE_TEST_MODE=False)
    assert ledger.money_mode() is True
    assert partner_statement(campaign)["net"] == 0  # the test money is not live money
    assert campaign_summary(campaign)["raised"] == 0
    live = record_offline("live@example.org", 7000)
    assert live.livemode is True
    record_payout(1000, date(2026, 11, 20), "SEPA-L", "p@example.org")
    db.session.commit()
    assert partner_statement(campaign) | {} == {
        "currency": "usd", "share_bps": 2000, "gross": 7000, "refunded": 0, "net": 7000, "share_due": 1400,
        "paid_out": 1000, "balance": 400, "test_money": False}
    assert campaign_summary(campaign)["donors"] == 1
    # Entitlements follow the money of the installation's mode: `campaign load` re-derives them.
    assert any("beyond the donor's tier" in b for b in ledger_check.check_ledger())
    load_campaign()
    db.session.commit()
    assert ledger_check.check_ledger() == []
    app.config.update(STRIPE_SECRET_KEY=None, STRIPE_TEST_MODE=True)
    assert partner_statement(campaign)["net"] == 5000
    assert partner_statement(campaign)["paid_out"] == 0
    modes = dict(db.session.execute(sa.select(LedgerEntry.entry_kind, LedgerEntry.livemode)
                                    .where(LedgerEntry.entry_kind == "payout")).all())
    assert modes == {"payout": True}
    load_campaign()
    db.session.commit()
    result = runner.invoke(args=["ledger", "check"])
    assert result.exit_code == 0, result.output


def test_ledger_check_keeps_its_result(campaign, runner):
    from filmfund.rewards.ledger_check import last_check

    record_offline("cash@example.org", 4000)
    assert runner.invoke(args=["ledger", "check"]).exit_code == 0
    check = last_check()
    assert (check.ok, check.breach_count, check.trigger, check.entries) == (True, 0, "cli", 2)
    _tamper("UPDATE campaign_totals SET gross = gross + 5 WHERE livemode = false")
    assert runner.invoke(args=["ledger", "check"]).exit_code == 1
    check = last_check()
    assert (check.ok, check.breach_count) == (False, 1) and "campaign total gross" in check.breaches


def _entries_of_payout(payout_id: int) -> list[tuple]:
    return [tuple(r) for r in db.session.execute(
        sa.select(LedgerEntry.event_kind, LedgerEntry.entry_kind, LedgerEntry.amount, LedgerEntry.group_id)
        .where(LedgerEntry.payout_id == payout_id).order_by(LedgerEntry.id))]


def test_a_payout_recorded_by_mistake_is_reversed_by_a_new_group_once(campaign):
    """$5,000.00 typed for $50.00 (within the balance, so it was accepted) is taken back as Open
    Collective corrects money: the payout's entry stays as it was booked, a new group holds one
    negative `payout_reversal` entry linked to it, paid_out comes back down (the figures are the
    contract model's: paid_out = payouts - reversals, balance = share_due - paid_out), the reversal
    is audited with its reason, and a second one is refused. The right amount is then recorded under
    the same bank reference."""
    from filmfund.audit import AuditEntry

    model = money_model.PartnerPayouts()
    record_offline("big@example.org", 2_500_000)  # share due: $5,000.00
    share = money_model.share_due(2_500_000)
    wrong = record_payout(500_000, date(2026, 11, 20), "XINXING-2026-11", "producer@example.org")
    db.session.commit()
    model.pay(wrong.id, 500_000)
    [(_, _, _, payout_group)] = _entries_of_payout(wrong.id)
    assert partner_statement(campaign)["balance"] == share - model.paid_out == 0

    reverse_payout(wrong.id, "typed $5,000 for $50.00", "producer@example.org")
    db.session.commit()
    assert model.reverse(wrong.id)
    entries = _entries_of_payout(wrong.id)
    assert [e[:3] for e in entries] == [("payout", "payout", 500_000), ("payout_reversal", "payout_reversal", -500_000)]
    assert entries[0][3] == payout_group and entries[1][3] != payout_group  # a group of its own
    statement = partner_statement(campaign)
    assert (statement["paid_out"], statement["balance"]) == (model.paid_out, share - model.paid_out) == (0, share)
    assert ledger_check.check_ledger() == []
    audit = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "payout.reverse"))
    assert audit.target == "XINXING-2026-11" and "typed $5,000 for $50.00" in audit.details

    assert not model.reverse(wrong.id)
    with pytest.raises(ConflictError, match="already reversed"):
        reverse_payout(wrong.id, "again", "producer@example.org")
    db.session.rollback()
    assert len(_entries_of_payout(wrong.id)) == 2

    right = record_payout(5_000, date(2026, 11, 20), "XINXING-2026-11", "producer@example.org")
    db.session.commit()
    model.pay(right.id, 5_000)
    assert partner_statement(campaign)["paid_out"] == model.paid_out == 5_000
    assert ledger_check.check_ledger() == []


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_a_reversal_needs_a_reason(campaign, reason):
    record_offline("cash@example.org", 100_000)
    payout = record_payout(1_000, date(2026, 11, 20), "SEPA-R", "p@example.org")
    db.session.commit()
    with pytest.raises(ValidationError):
        reverse_payout(payout.id, reason, "p@example.org")
    assert len(_entries_of_payout(payout.id)) == 1


@pytest.mark.parametrize("tampering, breach", [
    ("DELETE FROM ledger_entries WHERE entry_kind = 'payout_reversal'", "marked reversed"),
    ("UPDATE ledger_entries SET amount = -1 WHERE entry_kind = 'payout_reversal'", "marked reversed"),
    ("UPDATE payouts SET reversed_at = NULL", "marked reversed"),
    ("UPDATE campaign_totals SET paid_out = paid_out + 1000 WHERE livemode = false", "campaign total paid_out"),
])
def test_ledger_check_proves_paid_out_is_payouts_less_reversals(campaign, runner, tampering, breach):
    record_offline("cash@example.org", 100_000)
    payout = record_payout(1_000, date(2026, 11, 20), "SEPA-T", "p@example.org")
    record_payout(500, date(2026, 11, 21), "SEPA-U", "p@example.org")
    reverse_payout(payout.id, "wrong amount", "p@example.org")
    db.session.commit()
    assert runner.invoke(args=["ledger", "check"]).exit_code == 0
    _tamper(tampering)
    result = runner.invoke(args=["ledger", "check"])
    assert result.exit_code == 1 and breach in result.output


def test_database_refuses_a_wrong_reversal(campaign):
    """The ledger's CHECKs and its partial unique index: a reversal is negative, names its payout,
    and a payout has one at most, whatever a caller forgets."""
    record_offline("cash@example.org", 100_000)
    payout = record_payout(1_000, date(2026, 11, 20), "SEPA-D", "p@example.org")
    reverse_payout(payout.id, "wrong amount", "p@example.org")
    db.session.commit()
    row = "(campaign_id, group_id, event_kind, entry_kind, amount, currency, payout_id, livemode, created_at)"
    for values in (f"({campaign.id}, 'g1', 'payout_reversal', 'payout_reversal', 1000, 'usd', {payout.id}, false, "
                   "CURRENT_TIMESTAMP)",
                   f"({campaign.id}, 'g2', 'payout_reversal', 'payout_reversal', -1000, 'usd', NULL, false, "
                   "CURRENT_TIMESTAMP)",
                   f"({campaign.id}, 'g3', 'payout_reversal', 'payout_reversal', -1000, 'usd', {payout.id}, false, "
                   "CURRENT_TIMESTAMP)"):
        with pytest.raises(sa.exc.IntegrityError):
            _tamper(f"INSERT INTO ledger_entries {row} VALUES {values}")
        db.session.rollback()
