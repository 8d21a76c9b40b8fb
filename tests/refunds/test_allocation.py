"""Where a refund goes (``apps.refunds.allocation``): pure arithmetic, no database.

Table tests of each rule, then Hypothesis properties over any schedule state and any
sequence of refunds (and debits between them), each allocation applied to the position
before the next one is made."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.refunds.allocation import (
    IN_FLIGHT,
    OWED,
    PAID,
    WRITTEN_OFF,
    Allocation,
    CardPart,
    ChargePosition,
    InstalmentCut,
    InstalmentPosition,
    Position,
    RefundAmountInvalid,
    RefundCannotReachCard,
    RefundWaitForDebit,
    allocate,
    check_amount,
)


def row(number, status, principal, fee=0, interest=0) -> InstalmentPosition:
    return InstalmentPosition(
        number=number, status=status, principal=principal, fee=fee, interest=interest
    )


def four(statuses=(PAID, OWED, OWED, OWED), fee=900, interest=0) -> Position:
    """400 EUR in 4: 100 EUR each, the customer fee on the first; one charge per paid one
    (newest first)."""
    rows = tuple(
        row(n, status, 10_000, fee if n == 1 else 0, interest if n > 1 else 0)
        for n, status in enumerate(statuses, start=1)
    )
    charges = tuple(
        ChargePosition(key=f"ch{r.number}", amount=r.principal + r.fee + r.interest)
        for r in reversed(rows)
        if r.status == PAID
    )
    return Position(purchase=40_000, refunded=0, instalments=rows, charges=charges)


def cut(number, principal, fee=0, interest=0, *, cancelled, written_off=False) -> InstalmentCut:
    return InstalmentCut(
        number=number,
        principal=principal,
        fee=fee,
        interest=interest,
        written_off=written_off,
        cancelled=cancelled,
    )


# --- what the customer still owes, from the last instalment ----------------------------------


def test_a_refund_cancels_the_last_instalment_first():
    allocation = allocate(four(), amount=4_000)

    assert allocation.cuts == (cut(4, 4_000, cancelled=False),)
    assert allocation.to_card == 0
    assert allocation.card_parts == ()
    assert allocation.owed_cancelled == 4_000
    assert not allocation.full


def test_a_refund_moves_backwards_and_stops_when_the_amount_is_used():
    allocation = allocate(four(), amount=15_000)

    assert allocation.cuts == (cut(4, 10_000, cancelled=True), cut(3, 5_000, cancelled=False))
    assert allocation.to_card == 0


def test_a_refund_of_exactly_one_instalment_touches_no_other():
    allocation = allocate(four(), amount=10_000)

    assert allocation.cuts == (cut(4, 10_000, cancelled=True),)


def test_a_whole_instalment_cancelled_loses_its_fee_and_interest_a_reduced_one_keeps_them():
    position = Position(
        purchase=30_000,
        refunded=0,
        instalments=(
            row(1, PAID, 10_000, fee=300, interest=0),
            row(2, OWED, 10_000, fee=0, interest=150),
            row(3, OWED, 10_000, fee=0, interest=80),
        ),
        charges=(ChargePosition("ch1", 10_300),),
    )

    allocation = allocate(position, amount=12_000)

    assert allocation.cuts == (
        cut(3, 10_000, interest=80, cancelled=True),
        cut(2, 2_000, cancelled=False),
    )
    assert (allocation.fee_refunded, allocation.interest_refunded) == (0, 0)


def test_paid_instalments_are_skipped_whatever_their_number():
    position = four(statuses=(PAID, OWED, PAID, OWED))

    allocation = allocate(position, amount=15_000)

    assert allocation.cuts == (cut(4, 10_000, cancelled=True), cut(2, 5_000, cancelled=False))


def test_an_incident_instalment_in_dunning_is_owed_and_cancelled_like_the_others():
    position = four(statuses=(PAID, OWED, OWED, OWED))  # instalment 2 declined: still owed

    allocation = allocate(position, amount=30_000)

    assert [c.number for c in allocation.cuts] == [4, 3, 2]
    assert all(c.cancelled for c in allocation.cuts)
    assert allocation.to_card == 0


# --- beyond what is owed: the card, newest charge first ---------------------------------------


def test_beyond_what_is_owed_goes_back_to_the_newest_charge():
    position = four(statuses=(PAID, PAID, OWED, OWED), fee=0)

    allocation = allocate(position, amount=25_000)

    assert allocation.owed_cancelled == 20_000
    assert allocation.to_card == 5_000
    assert allocation.card_parts == (CardPart("ch2", 5_000),)
    assert allocation.back_to_card == 5_000


def test_a_card_refund_is_split_across_charges_when_one_is_not_enough():
    position = four(statuses=(PAID, PAID, PAID, OWED), fee=0)

    allocation = allocate(position, amount=35_000)

    assert allocation.to_card == 25_000
    assert allocation.card_parts == (
        CardPart("ch3", 10_000),
        CardPart("ch2", 10_000),
        CardPart("ch1", 5_000),
    )


def test_what_earlier_refunds_took_from_a_charge_is_not_taken_again():
    position = dataclasses.replace(
        four(statuses=(PAID, PAID, PAID, PAID), fee=0),
        refunded=6_000,
        charges=(
            ChargePosition("ch4", 10_000, refunded=6_000),
            ChargePosition("ch3", 10_000),
            ChargePosition("ch2", 10_000),
            ChargePosition("ch1", 10_000),
        ),
    )

    allocation = allocate(position, amount=7_000)

    assert allocation.card_parts == (CardPart("ch4", 4_000), CardPart("ch3", 3_000))


def test_a_partial_refund_all_to_the_card_keeps_the_fees():
    position = four(statuses=(PAID, PAID, PAID, PAID), fee=900)

    allocation = allocate(position, amount=39_999)

    assert not allocation.full
    assert (allocation.fee_refunded, allocation.interest_refunded) == (0, 0)
    assert allocation.back_to_card == 39_999


def test_a_full_refund_gives_back_the_fees_and_interest_the_customer_paid():
    position = four(statuses=(PAID, PAID, OWED, OWED), fee=900, interest=120)

    allocation = allocate(position, amount=None)

    assert allocation.full
    assert allocation.amount == 40_000
    assert allocation.cuts == (
        cut(4, 10_000, interest=120, cancelled=True),
        cut(3, 10_000, interest=120, cancelled=True),
    )
    assert allocation.to_card == 20_000
    assert allocation.fee_refunded == 900
    assert allocation.interest_refunded == 120  # the interest paid with instalment 2
    assert allocation.back_to_card == 21_020
    assert allocation.card_parts == (CardPart("ch2", 10_120), CardPart("ch1", 10_900))


def test_refunding_exactly_what_is_left_is_a_full_refund():
    position = four(statuses=(PAID, OWED, OWED, OWED), fee=900)

    allocation = allocate(position, amount=40_000)

    assert allocation.full
    assert allocation.fee_refunded == 900
    assert allocation.card_parts == (CardPart("ch1", 10_900),)


def test_the_last_cent_after_partial_refunds_is_full_and_returns_the_fees():
    position = dataclasses.replace(
        four(statuses=(PAID, PAID, PAID, PAID), fee=900),
        refunded=39_999,
        charges=(
            ChargePosition("ch4", 10_000, refunded=10_000),
            ChargePosition("ch3", 10_000, refunded=10_000),
            ChargePosition("ch2", 10_000, refunded=10_000),
            ChargePosition("ch1", 10_900, refunded=9_999),
        ),
    )

    allocation = allocate(position, amount=1)

    assert allocation.full
    assert allocation.back_to_card == 901
    assert allocation.card_parts == (CardPart("ch1", 901),)


def test_a_pay_later_payment_not_yet_charged_has_nothing_to_give_back_to_a_card():
    position = Position(
        purchase=20_000, refunded=0, instalments=(row(1, OWED, 20_000, fee=400),), charges=()
    )

    allocation = allocate(position, amount=None)

    assert allocation.cuts == (cut(1, 20_000, fee=400, cancelled=True),)
    assert allocation.to_card == 0
    assert allocation.fee_refunded == 0  # the fee was never paid: cancelled with its instalment
    assert allocation.card_parts == ()


def test_a_refund_the_charges_cannot_take_is_refused():
    position = dataclasses.replace(four(statuses=(PAID, OWED, OWED, OWED)), charges=())

    with pytest.raises(RefundCannotReachCard):
        allocate(position, amount=35_000)


# --- written off, in flight -----------------------------------------------------------------


def test_written_off_instalments_are_cancelled_as_written_off():
    position = four(statuses=(PAID, OWED, WRITTEN_OFF, WRITTEN_OFF), fee=0)

    allocation = allocate(position, amount=25_000)

    assert allocation.cuts == (
        cut(4, 10_000, cancelled=True, written_off=True),
        cut(3, 10_000, cancelled=True, written_off=True),
        cut(2, 5_000, cancelled=False),
    )
    assert allocation.written_off_cancelled == 20_000
    assert allocation.owed_cancelled == 5_000


def test_an_instalment_being_debited_blocks_the_refund():
    with pytest.raises(RefundWaitForDebit) as error:
        allocate(four(statuses=(PAID, IN_FLIGHT, OWED, OWED)), amount=1_000)

    assert error.value.http_status == 409


# --- bad amounts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount", [0, -1, -5, 12.5, 100.0, "100", True, False, 40_001, 10**12, [1], object()]
)
def test_a_bad_amount_is_refused_naming_amount_and_the_maximum(amount):
    with pytest.raises(RefundAmountInvalid) as error:
        allocate(four(), amount=amount)

    assert error.value.http_status == 400
    assert error.value.code == "validation_error"
    [entry] = error.value.extra["errors"]
    assert entry["field"] == "amount"
    assert entry["maximum"] == 40_000
    assert entry["message"]


def test_the_maximum_is_what_is_left_after_earlier_refunds():
    position = dataclasses.replace(four(), refunded=30_000)

    with pytest.raises(RefundAmountInvalid) as error:
        check_amount(position, 10_001)

    assert error.value.extra["maximum"] == 10_000
    assert check_amount(position, 10_000) == 10_000
    assert check_amount(position, None) == 10_000


def test_nothing_left_refuses_every_amount_even_none():
    position = dataclasses.replace(four(), refunded=40_000)

    for amount in (None, 1):
        with pytest.raises(RefundAmountInvalid) as error:
            allocate(position, amount=amount)
        assert error.value.extra["maximum"] == 0


def test_a_bad_amount_is_refused_before_a_debit_in_flight_is_looked_at():
    with pytest.raises(RefundAmountInvalid):
        allocate(four(statuses=(PAID, IN_FLIGHT, OWED, OWED)), amount=0)


# --- properties -----------------------------------------------------------------------------


@dataclasses.dataclass
class Customer:
    """A payment as the customer lives it: the position a refund sees, plus what was
    refunded of the fees so far."""

    position: Position
    fees_refunded: int = 0
    charge_count: int = 0

    def pays(self) -> int:
        """What the customer pays in the end: what the cards were charged less what went
        back to them, plus everything still owed (fees and interest included)."""
        cards = sum(charge.amount - charge.refunded for charge in self.position.charges)
        owed = sum(
            r.principal + r.fee + r.interest
            for r in self.position.instalments
            if r.status in (OWED, WRITTEN_OFF)
        )
        return cards + owed

    def fees_kept(self) -> int:
        fees = sum(r.fee + r.interest for r in self.position.instalments)
        return fees - self.fees_refunded

    def pay_next(self) -> None:
        """A debit: the first instalment owed is charged (a new, newest charge)."""
        owed = [r for r in self.position.instalments if r.status == OWED]
        if not owed:
            return
        paid = owed[0]
        self.charge_count += 1
        charge = ChargePosition(
            key=f"debit{self.charge_count}", amount=paid.principal + paid.fee + paid.interest
        )
        rows = tuple(
            dataclasses.replace(r, status=PAID) if r.number == paid.number else r
            for r in self.position.instalments
        )
        if charge.amount == 0:
            self.position = dataclasses.replace(self.position, instalments=rows)
            return
        self.position = dataclasses.replace(
            self.position, instalments=rows, charges=(charge, *self.position.charges)
        )

    def apply(self, allocation: Allocation) -> None:
        """The refund as ``services.refund_open`` records it."""
        cuts = {c.number: c for c in allocation.cuts}
        rows = []
        for r in self.position.instalments:
            c = cuts.get(r.number)
            if c is not None:
                r = dataclasses.replace(
                    r,
                    principal=r.principal - c.principal,
                    fee=r.fee - c.fee,
                    interest=r.interest - c.interest,
                    status=PAID if c.cancelled else r.status,
                )
            rows.append(r)
        parts = {p.charge_key: p.amount for p in allocation.card_parts}
        charges = tuple(
            dataclasses.replace(ch, refunded=ch.refunded + parts.get(ch.key, 0))
            for ch in self.position.charges
        )
        self.position = dataclasses.replace(
            self.position,
            refunded=self.position.refunded + allocation.amount,
            instalments=tuple(rows),
            charges=charges,
        )
        self.fees_refunded += allocation.fee_refunded + allocation.interest_refunded


@st.composite
def schedules(draw) -> Customer:
    """Any schedule state: 1 to 12 instalments, each owed, written off or paid (in any
    order: dunning, default, pay-now-then-debits), with fees and interest, and one card
    charge per paid instalment (or one charge for several, like a payment in full)."""
    count = draw(st.integers(1, 12))
    rows = []
    for number in range(1, count + 1):
        rows.append(
            row(
                number,
                draw(st.sampled_from([PAID, OWED, WRITTEN_OFF])),
                draw(st.integers(1, 200_000)),
                fee=draw(st.integers(0, 5_000)) if number == 1 or draw(st.booleans()) else 0,
                interest=draw(st.integers(0, 3_000)),
            )
        )
    paid = [r for r in rows if r.status == PAID]
    amounts = [r.principal + r.fee + r.interest for r in paid]
    if len(amounts) > 1 and draw(st.booleans()):
        amounts = [sum(amounts)]  # paid at once by one charge
    charges = tuple(
        ChargePosition(key=f"ch{i}", amount=amount) for i, amount in enumerate(amounts)
    )[::-1]  # newest first
    position = Position(
        purchase=sum(r.principal for r in rows),
        refunded=0,
        instalments=tuple(rows),
        charges=charges,
    )
    return Customer(position=position)


# A step: ("refund", fraction of what is left in ppm or None for everything) or ("debit",).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("refund"), st.none() | st.integers(1, 1_000_000)),
        st.tuples(st.just("refund_cents"), st.integers(1, 3)),
        st.tuples(st.just("debit")),
    ),
    min_size=1,
    max_size=12,
)


def amount_for(step, position: Position) -> int | None:
    if step[0] == "refund_cents":
        return min(step[1], position.refundable)
    if step[1] is None:
        return None
    return max(1, position.refundable * step[1] // 1_000_000)


@settings(max_examples=400, deadline=None)
@given(customer=schedules(), steps=steps)
def test_no_sequence_of_refunds_breaks_the_customer_or_the_cards(customer, steps):
    purchase = customer.position.purchase
    charged = {charge.key: charge.amount for charge in customer.position.charges}
    for step in steps:
        if step[0] == "debit":
            customer.pay_next()
            charged.update({c.key: c.amount for c in customer.position.charges})
            continue
        before = customer.position
        if before.refundable == 0:
            with pytest.raises(RefundAmountInvalid):
                allocate(before, amount=None)
            continue
        amount = amount_for(step, before)

        allocation = allocate(before, amount=amount)
        customer.apply(allocation)

        after = customer.position
        # The amount is all accounted for: cancelled or back to the card.
        assert allocation.amount == sum(c.principal for c in allocation.cuts) + allocation.to_card
        assert allocation.amount == (before.refundable if amount is None else amount)
        assert allocation.full == (after.refundable == 0)
        # Only what was owed is cut, from the last instalment backwards; only the earliest
        # cut may be partial, and cancelling what is owed comes before the card.
        owed_before = {r.number: r for r in before.instalments if r.status in (OWED, WRITTEN_OFF)}
        numbers = [c.number for c in allocation.cuts]
        assert set(numbers) <= set(owed_before)
        assert numbers == sorted(numbers, reverse=True)
        assert numbers == sorted(owed_before, reverse=True)[: len(numbers)]
        assert all(c.cancelled for c in allocation.cuts[:-1])
        assert all(c.written_off == (owed_before[c.number].status == WRITTEN_OFF)
                   for c in allocation.cuts)  # fmt: skip
        if allocation.to_card:
            assert all(r.status == PAID for r in after.instalments)
        # Nothing goes negative; nothing refunded beyond the purchase.
        for r in after.instalments:
            assert r.principal >= 0 and r.fee >= 0 and r.interest >= 0
        assert 0 < after.refunded <= purchase
        # Each charge gives back at most what it took, newest first.
        for charge in after.charges:
            assert 0 <= charge.refunded <= charged[charge.key]
        parts = [p.charge_key for p in allocation.card_parts]
        keys = [c.key for c in before.charges]
        assert parts == [k for k in keys if k in parts]
        assert sum(p.amount for p in allocation.card_parts) == allocation.back_to_card
        assert all(p.amount > 0 for p in allocation.card_parts)
        # The customer never pays more than the purchase less refunds plus the fees kept.
        # (To the cent: what the cards took back and what was cancelled is exactly what was
        # refunded, plus the fees given back.)
        assert customer.pays() == after.purchase - after.refunded + customer.fees_kept()
        assert customer.pays() >= 0
    # Once everything is refunded, the customer has paid nothing and owes nothing.
    if customer.position.refundable == 0:
        assert customer.pays() == 0
        assert all(r.status == PAID and r.principal >= 0 for r in customer.position.instalments)


@settings(max_examples=200, deadline=None)
@given(customer=schedules(), data=st.data())
def test_a_refund_never_exceeds_what_is_left_and_a_refused_one_names_it(customer, data):
    position = customer.position
    amount = data.draw(st.integers(-10, position.refundable + 10))

    if 1 <= amount <= position.refundable:
        assert allocate(position, amount=amount).amount == amount
    else:
        with pytest.raises(RefundAmountInvalid) as error:
            allocate(position, amount=amount)
        assert error.value.extra["maximum"] == position.refundable
