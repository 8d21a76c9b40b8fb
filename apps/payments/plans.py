"""Payment plans to the cent: due dates, principal, customer fee, interest and merchant fee.

Pure functions over integer cents and calendar dates; no ORM, no clock.

The rules (product.md, "Plans"):

- Due dates are calendar days in Europe/Paris. The first instalment of a split plan is due on
  the purchase day; the others monthly on the purchase's day of month, clamped to the month's
  end and always counted from the purchase (31 Jan -> 28/29 Feb -> 31 Mar, never 28 Mar). A
  deferred plan's single instalment is due `deferred_days` days or `deferred_months` months
  after the purchase.
- The principal is split evenly in cents; the remainder goes on the first instalment.
- The customer fee (variable basis points of the purchase + fixed cents) is paid with the
  first instalment.
- Interest, for a plan with a lending rate, is a standard amortisation with level payments
  ("échéances constantes") at a monthly rate of rate/12, the first payment on the purchase day
  (an annuity due): the level payment is P * q^(n-1) / sum(b^k * q^(n-1-k)) with b = 120000 and
  q = 120000 + rate in basis points, rounded down to the cent; each later instalment carries
  the interest on the balance still owed over the month before it (rounded half up), the rest
  of the level payment is principal, and the rounding remainder of the principal goes on the
  first instalment. A one-instalment deferred plan with a lending rate bears simple interest
  over the deferral (days/365 or months/12). Everything is integer arithmetic.
- The merchant fee (variable basis points + fixed cents) is kept from the merchant's payout.

Invariant, checked by property tests: the instalments add up exactly to purchase amount +
customer fee + interest, none is negative, and due dates strictly increase.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, timedelta
from typing import NamedTuple

from apps.common.dates import add_months
from apps.common.money import BPS_PER_UNIT, fee_cents, round_half_up_div, split_evenly

MAX_INSTALMENTS = 12
MONTHS_PER_YEAR = 12
DAYS_PER_YEAR = 365
# A monthly rate of rate_bps / 12 as the fraction rate_bps / MONTHLY_RATE_DENOMINATOR.
MONTHLY_RATE_DENOMINATOR = MONTHS_PER_YEAR * BPS_PER_UNIT


@dataclass(frozen=True, slots=True)
class PlanTerms:
    """What a fee plan says about a plan's shape and price (amounts in cents, rates in bps)."""

    installments_count: int
    deferred_days: int = 0
    deferred_months: int = 0
    customer_fee_variable: int = 0
    customer_fee_fixed: int = 0
    customer_lending_rate: int = 0
    merchant_fee_variable: int = 0
    merchant_fee_fixed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.installments_count <= MAX_INSTALMENTS:
            raise ValueError(f"installments_count must be 1..{MAX_INSTALMENTS}")
        if min(self.deferred_days, self.deferred_months) < 0:
            raise ValueError("deferrals cannot be negative")
        if self.deferred_days and self.deferred_months:
            raise ValueError("a plan defers by days or by months, not both")
        if self.is_deferred and self.installments_count != 1:
            raise ValueError("a deferred plan has exactly one instalment")
        if (
            min(
                self.customer_fee_variable,
                self.customer_fee_fixed,
                self.customer_lending_rate,
                self.merchant_fee_variable,
                self.merchant_fee_fixed,
            )
            < 0
        ):
            raise ValueError("fees and rates cannot be negative")

    @property
    def is_deferred(self) -> bool:
        return bool(self.deferred_days or self.deferred_months)


class ScheduledInstalment(NamedTuple):  # a tuple: plans make thousands a second
    due_date: date
    purchase_amount: int
    customer_fee: int
    customer_interest: int

    @property
    def total_amount(self) -> int:
        return self.purchase_amount + self.customer_fee + self.customer_interest


@dataclass(frozen=True, slots=True)
class Plan:
    purchase_amount: int
    purchase_date: date
    instalments: tuple[ScheduledInstalment, ...]
    merchant_fee: int

    @property
    def customer_fee(self) -> int:
        return sum(i.customer_fee for i in self.instalments)

    @property
    def customer_interest(self) -> int:
        return sum(i.customer_interest for i in self.instalments)

    @property
    def customer_total_cost_amount(self) -> int:
        """What the plan costs the customer on top of the purchase: fees and interest."""
        return self.customer_fee + self.customer_interest

    @property
    def customer_total_cost_bps(self) -> int:
        """That cost in basis points of the purchase amount, rounded half up."""
        return round_half_up_div(
            self.customer_total_cost_amount * BPS_PER_UNIT, self.purchase_amount
        )

    @property
    def total_amount(self) -> int:
        return sum(i.total_amount for i in self.instalments)

    @property
    def last_due_date(self) -> date:
        return self.instalments[-1].due_date

    @property
    def amount_due_at_purchase(self) -> int:
        """Principal paid on the purchase day (what is not lent)."""
        return sum(i.purchase_amount for i in self.instalments if i.due_date == self.purchase_date)


def due_dates(terms: PlanTerms, purchase_date: date) -> tuple[date, ...]:
    """Each instalment's due date (see the module's rules)."""
    return _due_dates(
        terms.installments_count, terms.deferred_days, terms.deferred_months, purchase_date
    )


@functools.lru_cache(maxsize=1024)
def _due_dates(count: int, days: int, months: int, purchase_date: date) -> tuple[date, ...]:
    # Every purchase of a day shares its plans' dates: compute them once.
    if days:
        return (purchase_date + timedelta(days=days),)
    return tuple(add_months(purchase_date, months + k) for k in range(count))


def compute_plan(*, purchase_amount: int, terms: PlanTerms, purchase_date: date) -> Plan:
    """The plan for a purchase of `purchase_amount` cents made on `purchase_date`."""
    if isinstance(purchase_amount, bool) or not isinstance(purchase_amount, int):
        raise TypeError("purchase_amount must be an int of cents")
    if purchase_amount <= 0:
        raise ValueError("purchase_amount must be positive")
    dates = due_dates(terms, purchase_date)
    principal, interest = _principal_and_interest(purchase_amount, terms)
    customer_fee = fee_cents(
        purchase_amount,
        variable_bps=terms.customer_fee_variable,
        fixed_cents=terms.customer_fee_fixed,
    )
    instalments = tuple(
        ScheduledInstalment(
            due_date=due,
            purchase_amount=principal[k],
            customer_fee=customer_fee if k == 0 else 0,
            customer_interest=interest[k],
        )
        for k, due in enumerate(dates)
    )
    merchant_fee = fee_cents(
        purchase_amount,
        variable_bps=terms.merchant_fee_variable,
        fixed_cents=terms.merchant_fee_fixed,
    )
    return Plan(
        purchase_amount=purchase_amount,
        purchase_date=purchase_date,
        instalments=instalments,
        merchant_fee=merchant_fee,
    )


def _principal_and_interest(amount: int, terms: PlanTerms) -> tuple[list[int], list[int]]:
    count, rate = terms.installments_count, terms.customer_lending_rate
    if rate == 0:
        return split_evenly(amount, count), [0] * count
    if count == 1:
        if terms.deferred_months:
            interest = round_half_up_div(
                amount * rate * terms.deferred_months, MONTHLY_RATE_DENOMINATOR
            )
        else:
            interest = round_half_up_div(
                amount * rate * terms.deferred_days, DAYS_PER_YEAR * BPS_PER_UNIT
            )
        return [amount], [interest]
    return _amortise(amount, count, rate)


def _amortise(amount: int, count: int, rate_bps: int) -> tuple[list[int], list[int]]:
    """Level payments, first one on the purchase day (see the module's docstring)."""
    base, growth = MONTHLY_RATE_DENOMINATOR, MONTHLY_RATE_DENOMINATOR + rate_bps
    numerator = amount * growth ** (count - 1)
    denominator = sum(base**k * growth ** (count - 1 - k) for k in range(count))
    # Rounded down, so the later instalments never repay more than is owed and the
    # remainder on the first is a few cents more, never less.
    payment = numerator // denominator
    balance = amount - payment
    principal, interest = [0], [0]
    for _ in range(1, count):
        month_interest = round_half_up_div(balance * rate_bps, MONTHLY_RATE_DENOMINATOR)
        # Never more than is owed: with a few cents and a high rate, rounding the payment
        # and the interest separately could otherwise repay more than was lent.
        month_principal = max(0, min(payment - month_interest, balance))
        balance -= month_principal
        principal.append(month_principal)
        interest.append(month_interest)
    principal[0] = amount - sum(principal)
    return principal, interest
