"""The posting recipes and the posting rules, as pure values (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from apps.ledger import recipes
from apps.ledger.models import AccountKind as K
from apps.ledger.postings import (
    AccountRef,
    InvalidLegAmount,
    LedgerError,
    LegSpec,
    PostingSpec,
    UnbalancedPosting,
    check_legs,
    credit,
    debit,
    reversal_legs,
)

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
M = 42  # a merchant id
PAY = "pay_123"


def legs_of(spec: PostingSpec) -> list[tuple[str, int | None, str, int]]:
    """The spec's legs as (kind, merchant, reference, signed cents), sorted."""
    return sorted(
        (str(leg.account.kind), leg.account.merchant_id, leg.account.reference, leg.cents)
        for leg in spec.legs
    )


def expected(*legs: tuple[str, int | None, str, int]) -> list[tuple[str, int | None, str, int]]:
    return sorted((str(kind), merchant, ref, cents) for kind, merchant, ref, cents in legs)


def assert_balanced(spec: PostingSpec) -> None:
    assert len(spec.legs) >= 2
    assert sum(leg.cents for leg in spec.legs) == 0
    assert all(isinstance(leg.cents, int) and leg.cents != 0 for leg in spec.legs)


# --------------------------------------------------------------------------- payment_captured


def captured(**overrides):
    args = {
        "merchant_id": M,
        "livemode": False,
        "payment_id": PAY,
        "purchase_cents": 30000,
        "first_principal_cents": 10000,
        "customer_fee_cents": 300,
        "interest_cents": 150,
        "merchant_fee_cents": 900,
        "processor_reference": "ch_1",
        "effective_at": NOW,
    }
    args.update(overrides)
    return recipes.payment_captured(**args)


def test_payment_captured_legs():
    spec = captured()
    assert legs_of(spec) == expected(
        (K.PROCESSOR_CLEARING, M, "", 10000 + 300 + 150),
        (K.CUSTOMER_RECEIVABLE, M, PAY, 20000),
        (K.MERCHANT_BALANCE, M, "", -(30000 - 900)),
        (K.MERCHANT_FEE_REVENUE, M, "", -900),
        (K.CUSTOMER_FEE_REVENUE, M, "", -300),
        (K.INTEREST_REVENUE, M, "", -150),
    )
    assert_balanced(spec)
    assert spec.kind == "payment_captured"
    assert spec.source == "payment"
    assert spec.idempotency_key == f"{PAY}:captured"
    assert spec.merchant_id == M
    assert spec.reference == PAY
    assert spec.processor_reference == "ch_1"
    assert spec.effective_at == NOW
    assert spec.livemode is False
    assert spec.currency == "EUR"
    assert spec.reverses_id is None


def test_payment_captured_livemode_is_carried():
    assert captured(livemode=True).livemode is True


def test_payment_captured_pay_later_leaves_zero_legs_out():
    spec = captured(
        first_principal_cents=0,
        customer_fee_cents=0,
        interest_cents=0,
        merchant_fee_cents=0,
        processor_reference="",
    )
    assert legs_of(spec) == expected(
        (K.CUSTOMER_RECEIVABLE, M, PAY, 30000),
        (K.MERCHANT_BALANCE, M, "", -30000),
    )
    assert_balanced(spec)
    assert spec.processor_reference == ""


def test_payment_captured_pay_later_with_merchant_fee():
    spec = captured(
        first_principal_cents=0, customer_fee_cents=0, interest_cents=0, processor_reference=""
    )
    assert legs_of(spec) == expected(
        (K.CUSTOMER_RECEIVABLE, M, PAY, 30000),
        (K.MERCHANT_BALANCE, M, "", -29100),
        (K.MERCHANT_FEE_REVENUE, M, "", -900),
    )


def test_payment_captured_paid_in_full_has_no_receivable():
    spec = captured(first_principal_cents=30000, customer_fee_cents=0, interest_cents=0)
    assert legs_of(spec) == expected(
        (K.PROCESSOR_CLEARING, M, "", 30000),
        (K.MERCHANT_BALANCE, M, "", -29100),
        (K.MERCHANT_FEE_REVENUE, M, "", -900),
    )
    assert_balanced(spec)


def test_payment_captured_merchant_fee_equal_to_purchase_leaves_no_merchant_leg():
    spec = captured(merchant_fee_cents=30000)
    kinds = {kind for kind, *_ in legs_of(spec)}
    assert K.MERCHANT_BALANCE not in kinds
    assert_balanced(spec)


@pytest.mark.parametrize("bad", [0, -1, 1.5, 100.0, True, False, "100", None])
def test_payment_captured_refuses_a_purchase_that_is_not_positive_cents(bad):
    with pytest.raises(InvalidLegAmount, match="purchase_cents"):
        captured(purchase_cents=bad)


@pytest.mark.parametrize(
    "field",
    ["first_principal_cents", "customer_fee_cents", "interest_cents", "merchant_fee_cents"],
)
@pytest.mark.parametrize("bad", [-1, 1.0, True, "1"])
def test_payment_captured_refuses_bad_parts(field, bad):
    with pytest.raises(InvalidLegAmount, match=field):
        captured(**{field: bad})


def test_payment_captured_refuses_first_principal_above_purchase():
    with pytest.raises(InvalidLegAmount, match="principal exceeds the purchase"):
        captured(first_principal_cents=30001)


def test_payment_captured_refuses_merchant_fee_above_purchase():
    with pytest.raises(InvalidLegAmount, match="merchant fee exceeds the purchase"):
        captured(merchant_fee_cents=30001)


@pytest.mark.parametrize(
    "parts",
    [
        {"first_principal_cents": 1, "customer_fee_cents": 0, "interest_cents": 0},
        {"first_principal_cents": 0, "customer_fee_cents": 1, "interest_cents": 0},
        {"first_principal_cents": 0, "customer_fee_cents": 0, "interest_cents": 1},
    ],
)
def test_payment_captured_refuses_captured_money_without_processor_reference(parts):
    with pytest.raises(InvalidLegAmount, match="processor's reference"):
        captured(processor_reference="", **parts)


# ------------------------------------------------------------------------ instalment_collected


def collected(**overrides):
    args = {
        "merchant_id": M,
        "livemode": True,
        "payment_id": PAY,
        "instalment_id": "inst_2",
        "principal_cents": 10000,
        "interest_cents": 120,
        "customer_fee_cents": 50,
        "processor_reference": "ch_2",
        "effective_at": NOW,
    }
    args.update(overrides)
    return recipes.instalment_collected(**args)


def test_instalment_collected_legs():
    spec = collected()
    assert legs_of(spec) == expected(
        (K.PROCESSOR_CLEARING, M, "", 10170),
        (K.CUSTOMER_RECEIVABLE, M, PAY, -10000),
        (K.INTEREST_REVENUE, M, "", -120),
        (K.CUSTOMER_FEE_REVENUE, M, "", -50),
    )
    assert_balanced(spec)
    assert spec.kind == "instalment_collected"
    assert spec.source == "instalment"
    assert spec.idempotency_key == "inst_2:collected"
    assert spec.reference == PAY
    assert spec.merchant_id == M
    assert spec.processor_reference == "ch_2"
    assert spec.livemode is True


def test_instalment_collected_principal_only_leaves_zero_legs_out():
    spec = recipes.instalment_collected(
        merchant_id=M,
        livemode=False,
        payment_id=PAY,
        instalment_id="inst_3",
        principal_cents=10000,
        processor_reference="ch_3",
        effective_at=NOW,
    )
    assert legs_of(spec) == expected(
        (K.PROCESSOR_CLEARING, M, "", 10000),
        (K.CUSTOMER_RECEIVABLE, M, PAY, -10000),
    )


def test_instalment_collected_late_fee_only():
    spec = collected(principal_cents=0, interest_cents=0, customer_fee_cents=1500)
    assert legs_of(spec) == expected(
        (K.PROCESSOR_CLEARING, M, "", 1500),
        (K.CUSTOMER_FEE_REVENUE, M, "", -1500),
    )


def test_instalment_collected_refuses_nothing_collected():
    with pytest.raises(InvalidLegAmount, match="total"):
        collected(principal_cents=0, interest_cents=0, customer_fee_cents=0)


@pytest.mark.parametrize("field", ["principal_cents", "interest_cents", "customer_fee_cents"])
@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_instalment_collected_refuses_bad_parts(field, bad):
    with pytest.raises(InvalidLegAmount, match=field):
        collected(**{field: bad})


def test_instalment_collected_refuses_missing_processor_reference():
    with pytest.raises(InvalidLegAmount, match="processor's reference"):
        collected(processor_reference="")


# ------------------------------------------------------------------------------ refund_issued


def refund(**overrides):
    args = {
        "merchant_id": M,
        "livemode": False,
        "payment_id": PAY,
        "refund_id": "ref_1",
        "receivable_cancelled_cents": 20000,
        "to_card_cents": 10000,
        "customer_fee_refunded_cents": 300,
        "interest_refunded_cents": 150,
        "effective_at": NOW,
    }
    args.update(overrides)
    return recipes.refund_issued(**args)


def test_refund_issued_full_refund_legs():
    spec = refund()
    assert legs_of(spec) == expected(
        (K.MERCHANT_BALANCE, M, "", 30000),
        (K.CUSTOMER_FEE_REVENUE, M, "", 300),
        (K.INTEREST_REVENUE, M, "", 150),
        (K.CUSTOMER_RECEIVABLE, M, PAY, -20000),
        (K.REFUNDS_PAYABLE, M, "", -(10000 + 300 + 150)),
    )
    assert_balanced(spec)
    assert spec.kind == "refund_issued"
    assert spec.source == "refund"
    assert spec.idempotency_key == "ref_1:issued"
    assert spec.reference == PAY
    assert spec.memo == "ref_1"
    assert spec.merchant_id == M
    assert spec.processor_reference == ""


def test_refund_issued_receivable_only_owes_nothing_to_the_card():
    spec = refund(
        receivable_cancelled_cents=5000,
        to_card_cents=0,
        customer_fee_refunded_cents=0,
        interest_refunded_cents=0,
    )
    assert legs_of(spec) == expected(
        (K.MERCHANT_BALANCE, M, "", 5000),
        (K.CUSTOMER_RECEIVABLE, M, PAY, -5000),
    )


def test_refund_issued_on_a_written_off_payment_reduces_the_credit_loss():
    spec = refund(
        receivable_cancelled_cents=0,
        written_off_cancelled_cents=4000,
        to_card_cents=1000,
        customer_fee_refunded_cents=0,
        interest_refunded_cents=0,
    )
    assert legs_of(spec) == expected(
        (K.MERCHANT_BALANCE, M, "", 5000),
        (K.CREDIT_LOSSES, M, "", -4000),
        (K.REFUNDS_PAYABLE, M, "", -1000),
    )


def test_refund_issued_to_card_only():
    spec = refund(
        receivable_cancelled_cents=0,
        to_card_cents=2500,
        customer_fee_refunded_cents=0,
        interest_refunded_cents=0,
    )
    assert legs_of(spec) == expected(
        (K.MERCHANT_BALANCE, M, "", 2500),
        (K.REFUNDS_PAYABLE, M, "", -2500),
    )


def test_refund_sent_to_card_moves_what_is_owed_back_through_clearing():
    spec = recipes.refund_sent_to_card(
        merchant_id=M,
        livemode=False,
        payment_id=PAY,
        refund_id="ref_1",
        part=2,
        cents=2500,
        processor_reference="re_9",
        effective_at=NOW,
    )
    assert legs_of(spec) == expected(
        (K.REFUNDS_PAYABLE, M, "", 2500),
        (K.PROCESSOR_CLEARING, M, "", -2500),
    )
    assert (spec.kind, spec.source, spec.idempotency_key) == (
        "refund_to_card",
        "refund",
        "ref_1:card:2",
    )
    assert spec.processor_reference == "re_9"
    assert spec.memo == "ref_1"


def test_refund_sent_to_card_refuses_a_missing_processor_reference():
    with pytest.raises(InvalidLegAmount, match="refund reference"):
        recipes.refund_sent_to_card(
            merchant_id=M,
            livemode=False,
            payment_id=PAY,
            refund_id="ref_1",
            part=1,
            cents=100,
            processor_reference="",
            effective_at=NOW,
        )


def test_refund_issued_refuses_nothing_refunded():
    with pytest.raises(InvalidLegAmount, match="refunded amount"):
        refund(receivable_cancelled_cents=0, to_card_cents=0)


@pytest.mark.parametrize(
    "field",
    [
        "receivable_cancelled_cents",
        "written_off_cancelled_cents",
        "to_card_cents",
        "customer_fee_refunded_cents",
        "interest_refunded_cents",
    ],
)
@pytest.mark.parametrize("bad", [-1, 0.5, True])
def test_refund_issued_refuses_bad_parts(field, bad):
    with pytest.raises(InvalidLegAmount, match=field):
        refund(**{field: bad})


# -------------------------------------------------------------------- write-offs and recovery


def test_receivable_written_off_legs():
    spec = recipes.receivable_written_off(
        merchant_id=M, livemode=True, payment_id=PAY, cents=7000, effective_at=NOW
    )
    assert legs_of(spec) == expected(
        (K.CREDIT_LOSSES, M, "", 7000),
        (K.CUSTOMER_RECEIVABLE, M, PAY, -7000),
    )
    assert_balanced(spec)
    assert (spec.kind, spec.source, spec.idempotency_key) == (
        "receivable_written_off",
        "payment",
        f"{PAY}:written_off",
    )
    assert spec.reference == PAY
    assert spec.merchant_id == M
    assert spec.livemode is True
    # Merchant untouched.
    assert K.MERCHANT_BALANCE not in {kind for kind, *_ in legs_of(spec)}


def test_written_off_recovered_legs():
    spec = recipes.written_off_recovered(
        merchant_id=M,
        livemode=False,
        payment_id=PAY,
        collection_id="col_9",
        cents=2500,
        processor_reference="ch_9",
        effective_at=NOW,
    )
    assert legs_of(spec) == expected(
        (K.PROCESSOR_CLEARING, M, "", 2500),
        (K.CREDIT_LOSSES, M, "", -2500),
    )
    assert_balanced(spec)
    assert (spec.kind, spec.source, spec.idempotency_key) == (
        "written_off_recovered",
        "collection",
        "col_9:recovered",
    )
    assert spec.reference == PAY
    assert spec.processor_reference == "ch_9"


@pytest.mark.parametrize("bad", [0, -5, 1.0, True])
def test_write_off_and_recovery_refuse_bad_amounts(bad):
    with pytest.raises(InvalidLegAmount, match="cents"):
        recipes.receivable_written_off(
            merchant_id=M, livemode=False, payment_id=PAY, cents=bad, effective_at=NOW
        )
    with pytest.raises(InvalidLegAmount, match="cents"):
        recipes.written_off_recovered(
            merchant_id=M,
            livemode=False,
            payment_id=PAY,
            collection_id="col_1",
            cents=bad,
            processor_reference="ch",
            effective_at=NOW,
        )


# ------------------------------------------------------------------------------------ payouts

PAYOUT_CASES = [
    (
        recipes.payout_sent,
        "payout_sent",
        "po_1:sent",
        [(K.MERCHANT_BALANCE, M, "", 5000), (K.PAYOUTS_IN_TRANSIT, M, "", -5000)],
    ),
    (
        recipes.payout_paid,
        "payout_paid",
        "po_1:paid",
        [(K.PAYOUTS_IN_TRANSIT, M, "", 5000), (K.BANK, None, "", -5000)],
    ),
    (
        recipes.payout_failed,
        "payout_failed",
        "po_1:failed",
        [(K.PAYOUTS_IN_TRANSIT, M, "", 5000), (K.MERCHANT_BALANCE, M, "", -5000)],
    ),
]


@pytest.mark.parametrize(("recipe", "kind", "key", "legs"), PAYOUT_CASES)
def test_payout_recipes(recipe, kind, key, legs):
    spec = recipe(merchant_id=M, livemode=True, payout_id="po_1", cents=5000, effective_at=NOW)
    assert legs_of(spec) == expected(*legs)
    assert_balanced(spec)
    assert spec.kind == kind
    assert spec.source == "payout"
    assert spec.idempotency_key == key
    assert spec.reference == "po_1"
    assert spec.merchant_id == M
    assert spec.livemode is True


@pytest.mark.parametrize("recipe", [case[0] for case in PAYOUT_CASES])
@pytest.mark.parametrize("bad", [0, -1, 50.0, True])
def test_payout_recipes_refuse_bad_amounts(recipe, bad):
    with pytest.raises(InvalidLegAmount, match="cents"):
        recipe(merchant_id=M, livemode=False, payout_id="po_1", cents=bad, effective_at=NOW)


def test_payout_stages_have_distinct_keys_under_one_source():
    specs = [
        case[0](merchant_id=M, livemode=False, payout_id="po_7", cents=1, effective_at=NOW)
        for case in PAYOUT_CASES
    ]
    assert {spec.source for spec in specs} == {"payout"}
    assert len({spec.idempotency_key for spec in specs}) == 3


# ---------------------------------------------------------------------------- processor_settled


def test_processor_settled_legs():
    spec = recipes.processor_settled(
        livemode=True,
        settlement_date=date(2025, 3, 13),
        cents_by_merchant={7: 10000, 3: -2500, 9: 0},
        processor_reference="st_1",
        effective_at=NOW,
    )
    assert legs_of(spec) == expected(
        (K.PROCESSOR_CLEARING, 7, "", -10000),
        (K.PROCESSOR_CLEARING, 3, "", 2500),
        (K.BANK, None, "", 7500),
    )
    assert_balanced(spec)
    assert spec.kind == "processor_settled"
    assert spec.source == "settlement"
    assert spec.idempotency_key == "2025-03-13:st_1"
    assert spec.merchant_id is None
    assert spec.processor_reference == "st_1"
    assert spec.livemode is True


def test_processor_settled_net_zero_day_leaves_the_bank_out():
    spec = recipes.processor_settled(
        livemode=False,
        settlement_date=date(2025, 3, 13),
        cents_by_merchant={1: 500, 2: -500},
        processor_reference="st_2",
        effective_at=NOW,
    )
    assert legs_of(spec) == expected(
        (K.PROCESSOR_CLEARING, 1, "", -500),
        (K.PROCESSOR_CLEARING, 2, "", 500),
    )


def test_processor_settled_net_negative_day_debits_clearing_and_credits_bank():
    spec = recipes.processor_settled(
        livemode=False,
        settlement_date=date(2025, 3, 13),
        cents_by_merchant={1: -800},
        processor_reference="st_3",
        effective_at=NOW,
    )
    assert legs_of(spec) == expected(
        (K.PROCESSOR_CLEARING, 1, "", 800),
        (K.BANK, None, "", -800),
    )


@pytest.mark.parametrize("amounts", [{}, {1: 0}, {1: 0, 2: 0}])
def test_processor_settled_refuses_a_day_with_nothing_settled(amounts):
    with pytest.raises(UnbalancedPosting):
        recipes.processor_settled(
            livemode=False,
            settlement_date=date(2025, 3, 13),
            cents_by_merchant=amounts,
            processor_reference="st_4",
            effective_at=NOW,
        )


@pytest.mark.parametrize("bad", [12.5, 100.0, True, "100"])
def test_processor_settled_refuses_amounts_that_are_not_integer_cents(bad):
    with pytest.raises(InvalidLegAmount, match="integer cents"):
        recipes.processor_settled(
            livemode=False,
            settlement_date=date(2025, 3, 13),
            cents_by_merchant={1: bad},
            processor_reference="st_5",
            effective_at=NOW,
        )


def test_processor_settled_refuses_a_bool_amount_as_a_ledger_error():
    with pytest.raises(InvalidLegAmount):
        recipes.processor_settled(
            livemode=False,
            settlement_date=date(2025, 3, 13),
            cents_by_merchant={1: 500, 2: True},
            processor_reference="st_6",
            effective_at=NOW,
        )


# ------------------------------------------------------------------------------------ reserves


def test_reserve_held_and_released_legs():
    held = recipes.reserve_held(
        merchant_id=M, livemode=False, reserve_id="rsv_1", cents=4000, effective_at=NOW
    )
    released = recipes.reserve_released(
        merchant_id=M, livemode=False, reserve_id="rsv_1", cents=4000, effective_at=NOW
    )
    assert legs_of(held) == expected(
        (K.MERCHANT_BALANCE, M, "", 4000),
        (K.MERCHANT_RESERVE, M, "", -4000),
    )
    assert legs_of(released) == expected(
        (K.MERCHANT_RESERVE, M, "", 4000),
        (K.MERCHANT_BALANCE, M, "", -4000),
    )
    for spec in (held, released):
        assert_balanced(spec)
        assert spec.source == "reserve"
        assert spec.reference == "rsv_1"
        assert spec.merchant_id == M
    assert (held.kind, held.idempotency_key) == ("reserve_held", "rsv_1:held")
    assert (released.kind, released.idempotency_key) == ("reserve_released", "rsv_1:released")


@pytest.mark.parametrize("recipe", [recipes.reserve_held, recipes.reserve_released])
@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_reserve_recipes_refuse_bad_amounts(recipe, bad):
    with pytest.raises(InvalidLegAmount, match="cents"):
        recipe(merchant_id=M, livemode=False, reserve_id="rsv_1", cents=bad, effective_at=NOW)


# ------------------------------------------------------------------ idempotency across recipes


def test_every_recipe_is_deterministic_and_names_its_event():
    """The same event gives the same (source, key); different events give different keys."""

    def all_specs(suffix: str) -> list[PostingSpec]:
        pay = f"pay_{suffix}"
        return [
            captured(payment_id=pay),
            collected(payment_id=pay, instalment_id=f"inst_{suffix}"),
            refund(payment_id=pay, refund_id=f"ref_{suffix}"),
            recipes.receivable_written_off(
                merchant_id=M, livemode=False, payment_id=pay, cents=1, effective_at=NOW
            ),
            recipes.written_off_recovered(
                merchant_id=M,
                livemode=False,
                payment_id=pay,
                collection_id=f"col_{suffix}",
                cents=1,
                processor_reference="ch",
                effective_at=NOW,
            ),
            recipes.payout_sent(
                merchant_id=M, livemode=False, payout_id=f"po_{suffix}", cents=1, effective_at=NOW
            ),
            recipes.processor_settled(
                livemode=False,
                settlement_date=date(2025, 3, 13),
                cents_by_merchant={M: 1},
                processor_reference=f"st_{suffix}",
                effective_at=NOW,
            ),
            recipes.reserve_held(
                merchant_id=M, livemode=False, reserve_id=f"rsv_{suffix}", cents=1, effective_at=NOW
            ),
        ]

    first, again, other = all_specs("a"), all_specs("a"), all_specs("b")
    assert first == again
    keys = [(spec.source, spec.idempotency_key) for spec in first]
    assert len(set(keys)) == len(keys)
    assert not set(keys) & {(spec.source, spec.idempotency_key) for spec in other}
    for spec in first + other:
        assert_balanced(spec)


def test_capture_and_write_off_of_one_payment_do_not_share_a_key():
    write_off = recipes.receivable_written_off(
        merchant_id=M, livemode=False, payment_id=PAY, cents=1, effective_at=NOW
    )
    assert write_off.source == captured().source == "payment"
    assert write_off.idempotency_key != captured().idempotency_key


# ------------------------------------------------------------------------------ posting rules

MB = AccountRef(K.MERCHANT_BALANCE, M)
CLEARING = AccountRef(K.PROCESSOR_CLEARING, M)
RECEIVABLE = AccountRef(K.CUSTOMER_RECEIVABLE, M, PAY)
BANK = AccountRef(K.BANK)


def test_debit_and_credit_signs():
    assert debit(MB, 100) == LegSpec(MB, 100)
    assert credit(MB, 100) == LegSpec(MB, -100)


def test_check_legs_accepts_balanced_legs():
    check_legs((debit(CLEARING, 100), credit(MB, 60), credit(BANK, 40)))


@pytest.mark.parametrize("legs", [(), (LegSpec(MB, 100),)])
def test_check_legs_refuses_fewer_than_two_legs(legs):
    with pytest.raises(UnbalancedPosting, match="at least two legs"):
        check_legs(legs)


def test_check_legs_refuses_a_zero_leg():
    with pytest.raises(InvalidLegAmount, match="zero"):
        check_legs((debit(CLEARING, 100), credit(MB, 100), LegSpec(BANK, 0)))


def test_check_legs_refuses_unbalanced_legs():
    with pytest.raises(UnbalancedPosting, match="sum to 1 cents"):
        check_legs((debit(CLEARING, 101), credit(MB, 100)))


@pytest.mark.parametrize("bad", [1.0, 0.5, True, "1", None])
def test_check_legs_refuses_amounts_that_are_not_int(bad):
    with pytest.raises(InvalidLegAmount, match="integer cents"):
        check_legs((LegSpec(CLEARING, bad), LegSpec(MB, -1)))


def spec_with(legs, **overrides) -> PostingSpec:
    args = {
        "kind": "test",
        "source": "test",
        "idempotency_key": "k1",
        "livemode": False,
        "effective_at": NOW,
        "legs": legs,
    }
    args.update(overrides)
    return PostingSpec(**args)


def test_posting_spec_checks_its_legs():
    with pytest.raises(UnbalancedPosting):
        spec_with((debit(CLEARING, 100), credit(MB, 99)))
    with pytest.raises(InvalidLegAmount):
        spec_with((debit(CLEARING, 0), credit(MB, 0)))
    spec = spec_with((debit(CLEARING, 100), credit(MB, 100)))
    assert spec.currency == "EUR"


@pytest.mark.parametrize("field", ["source", "idempotency_key"])
def test_posting_spec_needs_a_source_and_a_key(field):
    with pytest.raises(LedgerError, match="source and an idempotency key"):
        spec_with((debit(CLEARING, 100), credit(MB, 100)), **{field: ""})


def test_posting_spec_is_frozen():
    spec = spec_with((debit(CLEARING, 100), credit(MB, 100)))
    with pytest.raises(AttributeError):
        spec.idempotency_key = "other"  # type: ignore[misc]


def test_account_ref_ownership():
    # Per merchant kinds need a merchant and no reference.
    for kind in K:
        if kind in (K.BANK, K.CUSTOMER_RECEIVABLE):
            continue
        assert AccountRef(kind, M).merchant_id == M
        with pytest.raises(LedgerError, match="belongs to a merchant"):
            AccountRef(kind)
        with pytest.raises(LedgerError, match="reference"):
            AccountRef(kind, M, "pay_1")
    # The bank is platform-wide.
    assert AccountRef(K.BANK).merchant_id is None
    with pytest.raises(LedgerError, match="belongs to no merchant"):
        AccountRef(K.BANK, M)
    with pytest.raises(LedgerError, match="reference"):
        AccountRef(K.BANK, None, "x")
    # A receivable is per payment: a merchant and a reference.
    assert AccountRef(K.CUSTOMER_RECEIVABLE, M, PAY).reference == PAY
    with pytest.raises(LedgerError, match="reference"):
        AccountRef(K.CUSTOMER_RECEIVABLE, M)
    with pytest.raises(LedgerError, match="belongs to a merchant"):
        AccountRef(K.CUSTOMER_RECEIVABLE, None, PAY)


def test_account_ref_key_and_equality():
    assert MB.key(livemode=False, currency="EUR") == f"test:EUR:merchant_balance:m{M}"
    assert RECEIVABLE.key(livemode=True, currency="EUR") == (
        f"live:EUR:customer_receivable:m{M}:{PAY}"
    )
    assert BANK.key(livemode=True, currency="EUR") == "live:EUR:bank"
    assert AccountRef(K.MERCHANT_BALANCE, M) == MB
    assert len({MB, AccountRef(K.MERCHANT_BALANCE, M), CLEARING}) == 2


def test_reversal_legs_mirror_the_legs():
    legs = (debit(CLEARING, 450), debit(RECEIVABLE, 100), credit(MB, 500), credit(BANK, 50))
    mirrored = reversal_legs(legs)
    assert mirrored == (
        LegSpec(CLEARING, -450),
        LegSpec(RECEIVABLE, -100),
        LegSpec(MB, 500),
        LegSpec(BANK, 50),
    )
    check_legs(mirrored)
    assert reversal_legs(mirrored) == legs


def test_reversal_of_every_recipe_balances():
    spec = captured()
    mirrored = reversal_legs(spec.legs)
    check_legs(mirrored)
    assert [leg.account for leg in mirrored] == [leg.account for leg in spec.legs]
    assert [leg.cents for leg in mirrored] == [-leg.cents for leg in spec.legs]
