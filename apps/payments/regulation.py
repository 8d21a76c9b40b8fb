"""Which legal regime a plan falls under in France, and the usury cap it must respect.

Code de la consommation, article L312-4 4°: a credit repaid within three months, with no
interest and no charges or only negligible ones, is outside the consumer-credit regime.
Anything longer or dearer is a consumer credit: a 14-day withdrawal right, a solvency check
before lending, and the usury cap (articles L314-6 ff.): its APR may not exceed the
threshold the Banque de France publishes each quarter for its band of credit amount
(up to 3,000 EUR, up to 6,000 EUR, above).

What counts as "negligible" is not defined by the law; the threshold is a setting
(``CREDIT_NEGLIGIBLE_COST_BPS``), 0 by default: any charge makes the plan a credit.

Pure functions; the service reads the usury table (payments.UsuryRate) and passes it in.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from apps.common.dates import add_months
from apps.common.money import BPS_PER_UNIT
from apps.payments.plans import Plan

EXEMPT_MAX_MONTHS = 3


class CreditRegime(enum.StrEnum):
    EXEMPT = "exempt"  # outside the consumer-credit regime (L312-4 4°)
    CONSUMER_CREDIT = "consumer_credit"


@dataclass(frozen=True, slots=True)
class UsuryBand:
    """One line of a quarter's table: credits up to `max_credit_amount` cents (None: any)."""

    effective_from: date
    max_credit_amount: int | None
    rate_bps: int


def credit_regime(plan: Plan, *, negligible_cost_bps: int) -> CreditRegime:
    """The regime of a plan: exempt when repaid within 3 months at a negligible cost."""
    within_three_months = plan.last_due_date <= add_months(plan.purchase_date, EXEMPT_MAX_MONTHS)
    negligible_cost = plan.customer_interest == 0 and (
        plan.customer_total_cost_amount * BPS_PER_UNIT
        <= negligible_cost_bps * plan.purchase_amount  # exact: a cent of fee is not 0 bps
    )
    if within_three_months and negligible_cost:
        return CreditRegime.EXEMPT
    return CreditRegime.CONSUMER_CREDIT


def credit_amount(plan: Plan) -> int:
    """What the customer borrows: the purchase less what is paid on the purchase day."""
    return plan.purchase_amount - plan.amount_due_at_purchase


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def usury_cap_bps(bands: Sequence[UsuryBand], *, amount: int, on: date) -> int | None:
    """The usury threshold for a credit of `amount` cents granted on `on`: the narrowest
    band holding the amount in the table of the quarter containing `on`.

    None when that quarter's table is missing: a threshold is published for each quarter,
    and applying a stale one could break the law either way, so the caller refuses.
    """
    quarter = quarter_start(on)
    candidates = [
        band
        for band in bands
        if band.effective_from == quarter
        and (band.max_credit_amount is None or amount <= band.max_credit_amount)
    ]
    if not candidates:
        return None
    return min(candidates, key=_band_order).rate_bps


def _band_order(band: UsuryBand) -> tuple[bool, int]:
    # The narrowest band that holds the amount: bounded bands first, smallest bound first.
    return (band.max_credit_amount is None, band.max_credit_amount or 0)
