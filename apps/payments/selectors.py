"""Reads for the payments API and pages: eligibility and what it depends on; payments and
orders, always scoped to one merchant and one mode."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db.models import Prefetch, Q, QuerySet

from apps.common.config_cache import config_cache
from apps.common.errors import NotFound
from apps.common.ids import with_prefix
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
from apps.payments.models import Instalment, Order, Payment, UsuryRate
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


# --- payments and orders, always scoped to one merchant and one mode ----------------------


def _current_orders() -> Prefetch:
    return Prefetch(
        "orders",
        queryset=Order.objects.filter(detached_at__isnull=True).order_by("created_at", "id"),
        to_attr="current_orders",
    )


def _payments(*, merchant: Merchant, livemode: bool) -> QuerySet[Payment]:
    """A merchant's payments in one mode, with what ``payment_to_json`` reads."""
    return (
        Payment.objects.filter(merchant=merchant, livemode=livemode)
        .select_related("customer", "merchant")
        .prefetch_related(
            Prefetch(
                "instalments",
                queryset=Instalment.objects.order_by("number"),
                to_attr="instalment_rows",
            ),
            _current_orders(),
        )
    )


def payment_get(*, merchant: Merchant, livemode: bool, payment_id: str) -> Payment:
    """One of the merchant's payments in this mode by public id (with or without its
    prefix); any other id (another merchant's, the other mode's) is not found."""
    public_id = with_prefix("payment", payment_id)
    payment = _payments(merchant=merchant, livemode=livemode).filter(public_id=public_id).first()
    if payment is None:
        raise NotFound("payment", payment_id)
    return payment


def payment_for_update(*, merchant: Merchant, livemode: bool, payment_id: str) -> Payment:
    """The payment row only (services lock and reread it), scoped like ``payment_get``."""
    public_id = with_prefix("payment", payment_id)
    payment = (
        Payment.objects.filter(merchant=merchant, livemode=livemode, public_id=public_id)
        .select_related("merchant")
        .first()
    )
    if payment is None:
        raise NotFound("payment", payment_id)
    return payment


def payment_with_details(*, payment: Payment) -> Payment:
    """A payment reread with everything ``payment_to_json`` reads (after a service)."""
    return _payments(merchant=payment.merchant, livemode=payment.livemode).get(pk=payment.pk)


@dataclass(frozen=True)
class Page:
    items: list
    has_more: bool


def _keyset_page(queryset: QuerySet, *, cursor, limit: int) -> Page:
    """Newest first by (created_at, id): the rows after ``cursor`` (a row or None),
    ``limit`` of them, without OFFSET."""
    if cursor is not None:
        queryset = queryset.filter(
            Q(created_at__lt=cursor.created_at) | Q(created_at=cursor.created_at, id__lt=cursor.id)
        )
    rows = list(queryset.order_by("-created_at", "-id")[: limit + 1])
    return Page(items=rows[:limit], has_more=len(rows) > limit)


def payments_page(
    *,
    merchant: Merchant,
    livemode: bool,
    limit: int,
    starting_after: str | None = None,
    states: list[str] | None = None,
) -> Page:
    """A page of the merchant's payments, newest first. An unknown cursor (or one from
    another merchant or mode) gives an empty last page, as clients expect at the end."""
    cursor = None
    if starting_after:
        cursor = (
            Payment.objects.filter(
                merchant=merchant,
                livemode=livemode,
                public_id=with_prefix("payment", starting_after),
            )
            .only("id", "created_at")
            .first()
        )
        if cursor is None:
            return Page(items=[], has_more=False)
    payments = _payments(merchant=merchant, livemode=livemode)
    if states:
        payments = payments.filter(state__in=states)
    return _keyset_page(payments, cursor=cursor, limit=limit)


def _orders(*, merchant: Merchant, livemode: bool) -> QuerySet[Order]:
    return Order.objects.filter(merchant=merchant, livemode=livemode).select_related("payment")


def order_get(*, merchant: Merchant, livemode: bool, order_id: str) -> Order:
    """One of the merchant's orders in this mode (replaced ones too: they stay readable)."""
    order = (
        _orders(merchant=merchant, livemode=livemode)
        .filter(public_id=with_prefix("order", order_id))
        .first()
    )
    if order is None:
        raise NotFound("order", order_id)
    return order


def orders_page(
    *,
    merchant: Merchant,
    livemode: bool,
    limit: int,
    starting_after: str | None = None,
    merchant_reference: str | None = None,
) -> Page:
    """A page of the merchant's current orders (not the replaced ones), newest first."""
    cursor = None
    if starting_after:
        cursor = (
            Order.objects.filter(
                merchant=merchant, livemode=livemode, public_id=with_prefix("order", starting_after)
            )
            .only("id", "created_at")
            .first()
        )
        if cursor is None:
            return Page(items=[], has_more=False)
    orders = _orders(merchant=merchant, livemode=livemode).filter(detached_at__isnull=True)
    if merchant_reference is not None:
        orders = orders.filter(merchant_reference=merchant_reference)
    return _keyset_page(orders, cursor=cursor, limit=limit)


def payment_orders(*, payment: Payment) -> list[Order]:
    """A payment's current orders, oldest first."""
    return list(payment.orders.filter(detached_at__isnull=True).order_by("created_at", "id"))


def payment_order_by_reference(*, payment: Payment, merchant_reference: str) -> Order:
    """The payment's latest current order with this reference."""
    order = (
        payment.orders.filter(detached_at__isnull=True, merchant_reference=merchant_reference)
        .order_by("-created_at", "-id")
        .first()
    )
    if order is None:
        raise NotFound("order", merchant_reference)
    return order
