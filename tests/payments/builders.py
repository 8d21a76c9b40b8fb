"""Payments for tests, made the way the API makes them (through ``payment_create``).

    payment = payment_create_for(shop)                          # 450 EUR in 3, test mode
    payment = payment_create_for(shop, purchase_amount=20000, installments_count=4)
    payment = payment_create_for(shop, livemode=True, customer={"email": "a@b.example"})
    payment = payment_create_for(shop, deferred_days=30, installments_count=1)

Keyword arguments that are not listed below go into the request's ``payment`` object.
The returned payment carries ``instalment_rows`` and ``current_orders``, as the service
returns it; reread it (``Payment.objects.get(pk=...)``) after changing it elsewhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from apps.payments.models import Payment
from apps.payments.services.payments import payment_create

DEFAULT_CUSTOMER = {
    "first_name": "Camille",
    "last_name": "Martin",
    "email": "camille.martin@example.com",
    "phone": "+33612345678",
}
ADDRESS = {
    "first_name": "Camille",
    "last_name": "Martin",
    "line1": "12 rue de la Paix",
    "postal_code": "75002",
    "city": "Paris",
    "country": "FR",
}
_DEFAULT = object()


def payment_body(**payment_fields: Any) -> dict[str, Any]:
    """The ``payment`` object of a create request: 450 EUR in 3 instalments by default."""
    return {
        "purchase_amount": 45000,
        "installments_count": 3,
        "return_url": "https://shop.example/return",
        "customer_cancel_url": "https://shop.example/cancel",
        "ipn_callback_url": "https://shop.example/ipn",
        "custom_data": {"cart_id": "42"},
        "locale": "fr",
        "shipping_address": dict(ADDRESS),
        "billing_address": dict(ADDRESS),
        **payment_fields,
    }


def create_request(
    *,
    customer: Any = _DEFAULT,
    order: Any = _DEFAULT,
    orders: list[dict] | None = None,
    **payment_fields: Any,
) -> dict[str, Any]:
    """A whole POST /v1/payments body (what the API's serializer would pass on)."""
    body: dict[str, Any] = {
        "payment": payment_body(**payment_fields),
        "customer": dict(DEFAULT_CUSTOMER) if customer is _DEFAULT else customer,
        "order": {"merchant_reference": "A-1001"} if order is _DEFAULT else order,
    }
    if orders is not None:
        body["orders"] = orders
    return body


def payment_create_for(
    shop,
    *,
    livemode: bool = False,
    now: datetime | None = None,
    customer: Any = _DEFAULT,
    order: Any = _DEFAULT,
    orders: list[dict] | None = None,
    **payment_fields: Any,
) -> Payment:
    """A payment of ``shop`` (a tests.conftest.Shop, or a Merchant) created by the service.

    ``customer=None`` / ``order=None`` leave them out; ``now`` defaults to the current
    (possibly travelled) time.
    """
    merchant = getattr(shop, "merchant", shop)
    return payment_create(
        merchant=merchant,
        livemode=livemode,
        data=create_request(customer=customer, order=order, orders=orders, **payment_fields),
        now=now or timezone.now(),
    )
