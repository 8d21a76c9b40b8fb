"""Reads for the payments API and pages: eligibility and what it depends on; payments and
orders, always scoped to one merchant and one mode."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Lower, Upper

from apps.common.config_cache import config_cache
from apps.common.errors import NotFound
from apps.common.ids import is_well_formed, with_prefix
from apps.common.keyset import rows_after
from apps.common.money import to_cents, to_money
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
from apps.payments.models import (
    Customer,
    Instalment,
    Notification,
    NotificationAttempt,
    Order,
    Payment,
    PaymentEvent,
    PotentialFraudFlag,
    UsuryRate,
)
from apps.payments.plans import PlanTerms
from apps.payments.regulation import UsuryBand
from apps.verification.phones import phone_e164


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
            # apps.refunds' rows, by the reverse relation (payments does not import them).
            Prefetch("refunds", to_attr="refund_rows"),
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
        queryset = rows_after(
            queryset, field="created_at", value=cursor.created_at, pk=cursor.id, descending=True
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


# --- the dashboard's payment list ---------------------------------------------------------

SORTS = {
    # name -> (column, descending)
    "-created": ("created_at", True),
    "created": ("created_at", False),
    "-amount": ("purchase_amount", True),
    "amount": ("purchase_amount", False),
}
PHONE_LIKE = re.compile(r"^\+?[\d .()-]{6,}$")


@dataclass(frozen=True)
class PaymentFilters:
    """What the dashboard's list is narrowed to; every field optional."""

    search: str = ""
    states: tuple[str, ...] = ()
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    plans: tuple[str, ...] = ()  # "1".."12" instalments, or "later"
    origin: str = ""  # "online", "pos" (every in-store channel) or one Payment.Origin
    amount_min_cents: int | None = None
    amount_max_cents: int | None = None
    sort: str = "-created"


def search_kind(term: str) -> str:
    """How the list reads a search term: a payment id, an email, a phone, or a name or
    order reference (tried both)."""
    if term.startswith("payment_") or is_well_formed("payment", f"payment_{term}"):
        return "payment_id"
    if "@" in term:
        return "email"
    if PHONE_LIKE.match(term) and sum(char.isdigit() for char in term) >= 6:
        return "phone"
    return "text"


def _search(payments: QuerySet[Payment], *, merchant: Merchant, livemode: bool, term: str):
    """Narrow to the payments matching ``term``, on this merchant's own data only (the
    customer details it sent, its orders), each through an index."""
    kind = search_kind(term)
    if kind == "payment_id":
        return payments.filter(public_id=with_prefix("payment", term))
    if kind == "email":
        return payments.annotate(_email=Lower(KeyTextTransform("email", "customer_data"))).filter(
            _email=term.lower()
        )
    if kind == "phone":
        sent = Q(customer_data__phone=term)
        e164 = phone_e164(term)
        if e164:
            confirmed = Customer.objects.filter(livemode=livemode, phone=e164).values("pk")
            sent |= Q(customer_data__phone=e164) | Q(customer__in=confirmed)
        return payments.filter(sent)
    words = term.split()
    by_reference = Order.objects.filter(
        merchant=merchant, livemode=livemode, merchant_reference=term
    ).values("payment_id")
    by_name = Q(_last_name__startswith=words[-1].upper())
    if len(words) > 1:
        by_name &= Q(customer_data__first_name__istartswith=words[0])
    return payments.annotate(
        _last_name=Upper(KeyTextTransform("last_name", "customer_data"))
    ).filter(Q(id__in=by_reference) | by_name)


def dashboard_payments_page(
    *,
    merchant: Merchant,
    livemode: bool,
    filters: PaymentFilters,
    after: str | None = None,
    limit: int = 25,
) -> Page:
    """A page of the merchant's payments in one mode for the dashboard's list: filtered,
    searched, sorted by date or amount, and cut after the row ``after`` (a payment's public
    id: keyset pagination, so a deep page costs what the first one does). Each row carries
    ``next_due_date`` (the first unpaid instalment's date). An unknown ``after`` gives the
    first page."""
    column, descending = SORTS.get(filters.sort, SORTS["-created"])
    payments = Payment.objects.filter(merchant=merchant, livemode=livemode)
    if filters.search:
        payments = _search(payments, merchant=merchant, livemode=livemode, term=filters.search)
    if filters.states:
        payments = payments.filter(state__in=filters.states)
    if filters.created_from:
        payments = payments.filter(created_at__gte=filters.created_from)
    if filters.created_before:
        payments = payments.filter(created_at__lt=filters.created_before)
    if filters.plans:
        plans = Q()
        for plan in filters.plans:
            if plan == "later":
                plans |= Q(deferred_days__gt=0) | Q(deferred_months__gt=0)
            else:
                plans |= Q(installments_count=int(plan), deferred_days=0, deferred_months=0)
        payments = payments.filter(plans)
    if filters.origin == "online":
        payments = payments.filter(origin__in=ONLINE_ORIGINS)
    elif filters.origin == "pos":
        payments = payments.exclude(origin__in=ONLINE_ORIGINS)
    elif filters.origin in Payment.Origin.values:  # one in-store channel: pos_device...
        payments = payments.filter(origin=filters.origin)
    if filters.amount_min_cents is not None:
        payments = payments.filter(purchase_amount__gte=to_money(filters.amount_min_cents))
    if filters.amount_max_cents is not None:
        payments = payments.filter(purchase_amount__lte=to_money(filters.amount_max_cents))
    if after:
        cursor = (
            Payment.objects.filter(
                merchant=merchant, livemode=livemode, public_id=with_prefix("payment", after)
            )
            .values(column, "id")
            .first()
        )
        if cursor is not None:
            payments = rows_after(
                payments, field=column, value=cursor[column], pk=cursor["id"], descending=descending
            )
    next_due = (
        Instalment.objects.filter(payment=OuterRef("pk"), state=Instalment.State.PENDING)
        .order_by("number")
        .values("due_date")[:1]
    )
    order = [f"-{column}", "-id"] if descending else [column, "id"]
    rows = list(
        payments.select_related("customer")
        .only(*LIST_FIELDS)
        .annotate(next_due_date=Subquery(next_due))
        .order_by(*order)[: limit + 1]
    )
    return Page(items=rows[:limit], has_more=len(rows) > limit)


ONLINE_ORIGINS = ("online", "online_in_page")
# What a row of the list shows (reading only these makes each row cheaper to build).
LIST_FIELDS = (
    "public_id",
    "state",
    "origin",
    "created_at",
    "purchase_amount",
    "purchase_amount_currency",
    "installments_count",
    "deferred_days",
    "deferred_months",
    "customer_data",
    "customer__email",
    "customer__first_name",
    "customer__last_name",
)


def dashboard_payment(*, merchant: Merchant, livemode: bool, payment_id: str) -> Payment:
    """One payment of this merchant in this mode with everything its dashboard page shows:
    instalments, orders (replaced ones too), events, notifications and their attempts,
    fraud flags, receipts are read by the schedules app. Another merchant's or the other
    mode's id is not found."""
    payment = (
        Payment.objects.filter(
            merchant=merchant, livemode=livemode, public_id=with_prefix("payment", payment_id)
        )
        .select_related("customer", "card")
        .prefetch_related(
            Prefetch("instalments", queryset=Instalment.objects.order_by("number")),
            Prefetch("orders", queryset=Order.objects.order_by("created_at", "id")),
            Prefetch("events", queryset=PaymentEvent.objects.order_by("created_at", "id")),
            Prefetch(
                "notifications",
                queryset=Notification.objects.order_by("created_at", "id").prefetch_related(
                    Prefetch(
                        "attempt_rows",
                        queryset=NotificationAttempt.objects.order_by("number"),
                    )
                ),
            ),
            Prefetch("fraud_flags", queryset=PotentialFraudFlag.objects.order_by("created_at")),
            # apps.refunds' rows and the schedules' receipts (their credit notes), by the
            # reverse relations (payments imports neither); the page orders them.
            "refunds",
            "refunds__requested_by",
            "receipts",
        )
        .first()
    )
    if payment is None:
        raise NotFound("payment", payment_id)
    return payment
