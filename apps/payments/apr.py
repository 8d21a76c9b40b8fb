"""The annual percentage rate of charge (APR, French TAEG), by the Consumer Credit Directive.

Directive 2008/48/EC, Annex I: X is the rate at which the drawdowns, discounted to the first
drawdown, equal the repayments and charges, discounted the same way:

    sum_k C_k (1 + X)^(-s_k)  =  sum_l D_l (1 + X)^(-t_l)

with times in years from the first drawdown, as Annex I, remark (a) counts them: whole
months of 1/12 year ("12 equal months"), then the days left over, divided by 365 (366 for a
year holding a 29 February). Months step as the plans' due dates do (31 Jan -> 28 Feb ->
31 Mar), so monthly instalments are whole twelfths whatever the months' lengths and a plan's
APR does not depend on the month it is bought in. X is returned in basis points, rounded
half up (0.01 %).

For a plan: the drawdown is the purchase amount on the purchase day; the repayments are the
instalments (principal, fees and interest) on their due dates. A plan paid entirely on the
purchase day lends nothing, so its APR is 0, as is a plan whose repayments equal the purchase.

The solver works on floats: X is a rate, not money, and the amounts it reads are exact
integer cents. Newton's method, kept inside a bracket that halves whenever a Newton step
would leave it, converges for every plan (property-tested).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from datetime import date

from apps.common.dates import add_months
from apps.common.money import BPS_PER_UNIT

LOWEST_RATE = -0.99
HIGHEST_RATE = 1_000.0  # 100,000 %: beyond this a plan is refused long before
TOLERANCE = 1e-12
MAX_ITERATIONS = 200


def year_fraction(start: date, end: date) -> float:
    """Years from `start` to `end` (Annex I, remark (a)): whole months of 1/12 year, then
    the days left over divided by the length of the complete year ending on `end` (365, or
    366 across a 29 February). Months step as plans do (31 Jan + 1 month = 28 Feb), so a
    monthly instalment is exactly k/12 of a year whatever the months' lengths."""
    months = (end.year - start.year) * 12 + end.month - start.month
    while months > 0 and add_months(start, months) > end:
        months -= 1
    days = (end - add_months(start, months)).days
    if days == 0:
        return months / 12
    return months / 12 + days / (end - add_months(end, -12)).days


@functools.lru_cache(maxsize=4096)
def _years_since(origin: date, day: date) -> float:
    # Plans repeat the same few dates all day long: compute each interval once.
    return year_fraction(origin, day)


def annual_percentage_rate_bps(
    *,
    drawdowns: Sequence[tuple[date, int]],
    repayments: Sequence[tuple[date, int]],
) -> int:
    """The APR in basis points of a credit given as (date, cents) flows (see the module)."""
    if not drawdowns or not repayments:
        raise ValueError("a credit has drawdowns and repayments")
    origin = min(day for day, _ in drawdowns)
    if all(day <= origin or cents == 0 for day, cents in repayments):
        return 0  # nothing is lent
    if sum(c for _, c in drawdowns) == sum(c for _, c in repayments):
        return 0  # free credit: the rate that balances equal sums is 0
    flows = [(_years_since(origin, day), -cents) for day, cents in drawdowns]
    flows += [(_years_since(origin, day), cents) for day, cents in repayments]
    rate = _solve(flows)
    return math.floor(rate * BPS_PER_UNIT + 0.5)


def _solve(flows: list[tuple[float, int]]) -> float:
    """The root of sum(amount * (1 + x)^-t) over [LOWEST_RATE, HIGHEST_RATE].

    With drawdowns first and repayments later the function decreases in x, so the bracket
    (positive at its low end, negative at its high end) always holds exactly one root.
    """

    def value_and_slope(x: float) -> tuple[float, float]:
        log_growth = math.log1p(x)
        value = slope = 0.0
        for years, amount in flows:
            discounted = amount * math.exp(-years * log_growth)
            value += discounted
            slope -= years * discounted / (1.0 + x)
        return value, slope

    low, high = LOWEST_RATE, HIGHEST_RATE
    if value_and_slope(high)[0] > 0:
        return HIGHEST_RATE  # dearer than any cap: reported at the bound
    x = 0.1
    for _ in range(MAX_ITERATIONS):
        value, slope = value_and_slope(x)
        if value > 0:
            low = x
        else:
            high = x
        step_ok = slope < 0
        next_x = x - value / slope if step_ok else (low + high) / 2
        if not low < next_x < high:
            next_x = (low + high) / 2
        if abs(next_x - x) < TOLERANCE:
            return next_x
        x = next_x
    raise ArithmeticError("the APR did not converge")  # never seen; property-tested
