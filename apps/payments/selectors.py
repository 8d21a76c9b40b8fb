"""Reads for the payments API and pages: eligibility and what it depends on."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from django.conf import settings

from apps.common.config_cache import config_cache
from apps.common.money import to_cents
from apps.merchants.models import FeePlan, Merchant
from apps.merchants.selectors import fee_plans_list
from apps.payments.eligibility import (
    ONLINE,
    Circumstances,
    Eligibility,
    Offer,
    PlanIdentity,
    PlanQuery,
    check_eligibility,
    discover_eligible,
    index_offers,
)
from apps.payments.models import UsuryRate
from apps.payments.plans import PlanTerms
from apps.payments.regulation import UsuryBand


def merchant_offers(*, merchant: Merchant) -> dict[PlanIdentity, Offer]:
    """A merchant's fee plans as eligibility reads them, from the config cache: a warm
    eligibility call reads no fee plan from the database."""
    return config_cache.get(
        ("offers", merchant.pk),
        lambda: index_offers(_offer(plan) for plan in fee_plans_list(merchant=merchant)),
    )


def _offer(plan: FeePlan) -> Offer:
    return Offer(
        kind=plan.kind,
        allowed=plan.allowed,
        available_online=plan.available_online,
        available_in_pos=plan.available_in_pos,
        min_purchase_amount=to_cents(plan.min_purchase_amount),
        max_purchase_amount=to_cents(plan.max_purchase_amount),
        terms=PlanTerms(
            installments_count=plan.installments_count,
            deferred_days=plan.deferred_days,
            deferred_months=plan.deferred_months,
            customer_fee_variable=plan.customer_fee_variable,
            customer_fee_fixed=to_cents(plan.customer_fee_fixed),
            customer_lending_rate=plan.customer_lending_rate,
            merchant_fee_variable=plan.merchant_fee_variable,
            merchant_fee_fixed=to_cents(plan.merchant_fee_fixed),
        ),
    )


def usury_bands() -> tuple[UsuryBand, ...]:
    """The usury table, from the config cache."""
    return config_cache.get(("usury_bands",), _load_usury_bands)


def _load_usury_bands() -> tuple[UsuryBand, ...]:
    return tuple(
        UsuryBand(
            effective_from=rate.effective_from,
            max_credit_amount=(
                None if rate.max_credit_amount is None else to_cents(rate.max_credit_amount)
            ),
            rate_bps=rate.rate_bps,
        )
        for rate in UsuryRate.objects.all()
    )


def eligibility_check(
    *,
    merchant: Merchant,
    purchase_amount: int,
    queries: list[PlanQuery] | None,
    purchase_date: date,
    channel: str = ONLINE,
    billing_country: str | None = None,
    shipping_country: str | None = None,
    cart_categories: Iterable[str] = (),
) -> list[Eligibility]:
    """One answer per query, in order; with no queries, the eligible plans (discovery)."""
    offers = merchant_offers(merchant=merchant)
    circumstances = Circumstances(
        purchase_date=purchase_date,
        merchant_active=merchant.is_active,
        channel=channel,
        billing_country=billing_country,
        shipping_country=shipping_country,
        cart_categories=frozenset(cart_categories),
        excluded_categories=frozenset(merchant.excluded_categories),
        served_countries=frozenset(settings.SERVED_COUNTRIES),
        usury_bands=usury_bands(),
        negligible_cost_bps=settings.CREDIT_NEGLIGIBLE_COST_BPS,
    )
    if queries is None:
        return discover_eligible(purchase_amount, offers=offers, circumstances=circumstances)
    return [
        check_eligibility(query, offers=offers, circumstances=circumstances) for query in queries
    ]
