"""Whether a purchase may be paid with a plan, and why not: pure, no ORM, no clock.

A query names a plan (instalments, deferral) and an amount; the answer is eligible with the
computed plan and its APR, or not eligible with every reason that applies
and the constraint behind each, under stable codes (the API shows them as they are):

========================  =====================  =============================================
reason key                code                   constraint
========================  =====================  =============================================
``merchant``              ``not_active``         ``{}``
``plan``                  ``not_allowed``        ``{"allowed": ["general_3_0_0", ...]}``
``purchase_amount``       ``invalid_value``      ``{"minimum": cents, "maximum": cents}``
``billing_address``       ``country_not_served`` ``{"countries": ["BE", "FR", ...]}``
``shipping_address``      ``country_not_served`` ``{"countries": [...]}``
``cart``                  ``excluded_category``  ``{"excluded_categories": [...]}``
``annual_interest_rate``  ``above_usury_cap``    ``{"maximum": bps}``
``annual_interest_rate``  ``usury_rate_unknown``  ``{"maximum": null}``: a consumer credit while
                                                 the usury table lacks the current quarter
========================  =====================  =============================================
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from apps.payments.apr import annual_percentage_rate_bps
from apps.payments.plans import Plan, PlanTerms, compute_plan
from apps.payments.regulation import (
    CreditRegime,
    UsuryBand,
    credit_amount,
    credit_regime,
    usury_cap_bps,
)

ONLINE = "general"
IN_STORE = "pos"
PlanIdentity = tuple[str, int, int, int]  # (kind, installments, deferred days, months)


@dataclass(frozen=True, slots=True)
class Offer:
    """A merchant's fee plan as eligibility sees it."""

    kind: str
    allowed: bool
    available_online: bool
    available_in_pos: bool
    min_purchase_amount: int
    max_purchase_amount: int
    terms: PlanTerms

    @property
    def identity(self) -> PlanIdentity:
        t = self.terms
        return (self.kind, t.installments_count, t.deferred_days, t.deferred_months)

    @property
    def key(self) -> str:
        return "_".join(str(part) for part in self.identity)

    def sold_through(self, channel: str) -> bool:
        if not self.allowed or self.kind != channel:
            return False
        return self.available_in_pos if channel == IN_STORE else self.available_online


@dataclass(frozen=True, slots=True)
class PlanQuery:
    purchase_amount: int
    installments_count: int
    deferred_days: int = 0
    deferred_months: int = 0


@dataclass(frozen=True, slots=True)
class Circumstances:
    """Everything about the merchant and the purchase that eligibility depends on."""

    purchase_date: date
    merchant_active: bool
    channel: str = ONLINE
    billing_country: str | None = None
    shipping_country: str | None = None
    cart_categories: frozenset[str] = frozenset()
    excluded_categories: frozenset[str] = frozenset()
    served_countries: frozenset[str] = frozenset()
    usury_bands: tuple[UsuryBand, ...] = ()
    negligible_cost_bps: int = 0


@dataclass(frozen=True, slots=True)
class Eligibility:
    query: PlanQuery
    plan: Plan | None = None
    annual_interest_rate: int = 0
    reasons: dict[str, str] = field(default_factory=dict)
    constraints: dict[str, dict] = field(default_factory=dict)

    @property
    def eligible(self) -> bool:
        return not self.reasons


def check_eligibility(
    query: PlanQuery, *, offers: Mapping[PlanIdentity, Offer], circumstances: Circumstances
) -> Eligibility:
    """The answer to one query (see the module's table of reasons)."""
    c = circumstances
    reasons: dict[str, str] = {}
    constraints: dict[str, dict] = {}
    if not c.merchant_active:
        reasons["merchant"], constraints["merchant"] = "not_active", {}
    identity = (c.channel, query.installments_count, query.deferred_days, query.deferred_months)
    offer = offers.get(identity)
    if offer is None or not offer.sold_through(c.channel):
        reasons["plan"] = "not_allowed"
        allowed = sorted(o.key for o in offers.values() if o.sold_through(c.channel))
        constraints["plan"] = {"allowed": allowed}
        return Eligibility(query=query, reasons=reasons, constraints=constraints)

    amount = query.purchase_amount
    if not offer.min_purchase_amount <= amount <= offer.max_purchase_amount:
        reasons["purchase_amount"] = "invalid_value"
        constraints["purchase_amount"] = {
            "minimum": offer.min_purchase_amount,
            "maximum": offer.max_purchase_amount,
        }
    for where, country in (("billing_address", c.billing_country),
                           ("shipping_address", c.shipping_country)):  # fmt: skip
        if country is not None and country not in c.served_countries:
            reasons[where] = "country_not_served"
            constraints[where] = {"countries": sorted(c.served_countries)}
    excluded = _excluded(c.cart_categories, c.excluded_categories)
    if excluded:
        reasons["cart"] = "excluded_category"
        constraints["cart"] = {"excluded_categories": excluded}

    plan, apr = priced_plan(amount, offer.terms, c.purchase_date)
    if (
        credit_regime(plan, negligible_cost_bps=c.negligible_cost_bps)
        is CreditRegime.CONSUMER_CREDIT
    ):
        cap = usury_cap_bps(c.usury_bands, amount=credit_amount(plan), on=c.purchase_date)
        if cap is None:
            reasons["annual_interest_rate"] = "usury_rate_unknown"
            constraints["annual_interest_rate"] = {"maximum": None}
        elif apr > cap:
            reasons["annual_interest_rate"] = "above_usury_cap"
            constraints["annual_interest_rate"] = {"maximum": cap}
    if reasons:
        return Eligibility(query=query, reasons=reasons, constraints=constraints)
    return Eligibility(query=query, plan=plan, annual_interest_rate=apr)


def discover_eligible(
    purchase_amount: int, *, offers: Mapping[PlanIdentity, Offer], circumstances: Circumstances
) -> list[Eligibility]:
    """Every plan sold through the channel that this purchase is eligible for."""
    answers = (
        check_eligibility(
            PlanQuery(purchase_amount, *offer.identity[1:]),
            offers=offers,
            circumstances=circumstances,
        )
        for offer in offers.values()
        if offer.sold_through(circumstances.channel)
    )
    return [answer for answer in answers if answer.eligible]


@functools.lru_cache(maxsize=8192)
def priced_plan(amount: int, terms: PlanTerms, purchase_date: date) -> tuple[Plan, int]:
    """A plan and its APR. Plans are immutable values of their inputs, and shops ask for
    the same prices all day (every view of a product page), so each process keeps the last
    few thousand."""
    plan = compute_plan(purchase_amount=amount, terms=terms, purchase_date=purchase_date)
    return plan, plan_apr_bps(plan)


def plan_apr_bps(plan: Plan) -> int:
    """The plan's APR (TAEG): the purchase lent on the purchase day, repaid by instalments."""
    return annual_percentage_rate_bps(
        drawdowns=[(plan.purchase_date, plan.purchase_amount)],
        repayments=[(i.due_date, i.total_amount) for i in plan.instalments],
    )


def index_offers(offers: Iterable[Offer]) -> dict[PlanIdentity, Offer]:
    return {offer.identity: offer for offer in offers}


def _excluded(cart: Iterable[str], excluded: Sequence[str] | frozenset[str]) -> list[str]:
    wanted = {category.casefold() for category in excluded}
    return sorted({category for category in cart if category.casefold() in wanted})
