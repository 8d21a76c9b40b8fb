"""The merchant's orders on a payment: added, replaced (the old ones kept, detached),
edited, their status and shipment as the shop reports them."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.payments.models import Order, Payment
from apps.payments.services.transitions import payment_event_record, payment_lock

ORDER_FIELDS = ("merchant_reference", "merchant_url", "customer_url", "comment", "data")


def order_rows(*, payment: Payment, orders: list[dict[str, Any]], now) -> list[Order]:
    """Unsaved Order instances for a payment, from the orders a merchant sent."""
    return [
        Order(
            payment=payment,
            merchant_id=payment.merchant_id,
            livemode=payment.livemode,
            merchant_reference=order.get("merchant_reference"),
            merchant_url=order.get("merchant_url"),
            customer_url=order.get("customer_url"),
            comment=order.get("comment"),
            data=order.get("data") or {},
            created_at=now,
            updated_at=now,
        )
        for order in orders
    ]


def orders_create(*, payment: Payment, orders: list[dict[str, Any]], now) -> list[Order]:
    """New order rows on a payment (inside the caller's transaction), oldest first."""
    return Order.objects.bulk_create(order_rows(payment=payment, orders=orders, now=now))


def _current(payment: Payment) -> list[Order]:
    return list(payment.orders.filter(detached_at__isnull=True).order_by("created_at", "id"))


@transaction.atomic
def orders_append(*, payment: Payment, orders: list[dict[str, Any]], now) -> list[Order]:
    """Add orders to a payment (none: nothing changes); returns all its current orders,
    oldest first (Alma's PHP client takes the last one as the order just added)."""
    locked = payment_lock(payment_id=payment.pk)
    if orders:
        added = orders_create(payment=locked, orders=orders, now=now)
        payment_event_record(
            locked, kind="orders_added", now=now, detail={"orders": [o.public_id for o in added]}
        )
    return _current(locked)


@transaction.atomic
def orders_replace(*, payment: Payment, orders: list[dict[str, Any]], now) -> list[Order]:
    """Set a payment's orders to ``orders`` (none: the payment has no order left). The
    orders they replace are detached, not deleted: their shipment and status history stays
    on record."""
    locked = payment_lock(payment_id=payment.pk)
    detached = list(
        locked.orders.filter(detached_at__isnull=True).values_list("public_id", flat=True)
    )
    locked.orders.filter(detached_at__isnull=True).update(detached_at=now, updated_at=now)
    added = orders_create(payment=locked, orders=orders, now=now)
    payment_event_record(
        locked,
        kind="orders_replaced",
        now=now,
        detail={"detached": detached, "orders": [o.public_id for o in added]},
    )
    return added


@transaction.atomic
def order_update(*, order: Order, data: dict[str, Any], now) -> Order:
    """Change the fields of an order the merchant sent (those given; ``data`` replaced)."""
    locked = Order.objects.select_for_update().select_related("payment").get(pk=order.pk)
    changed = [name for name in ORDER_FIELDS if name in data]
    for name in changed:
        value = data[name]
        setattr(locked, name, (value or {}) if name == "data" else value)
    locked.updated_at = now
    locked.save(update_fields=[*changed, "updated_at"])
    return locked


@transaction.atomic
def order_status_record(*, order: Order, status: str, is_shipped: bool | None, now) -> Order:
    """The shop's status of an order (its own words, e.g. "shipped") and whether it has
    shipped, as the shop's order workflow moves."""
    locked = Order.objects.select_for_update().select_related("payment").get(pk=order.pk)
    locked.status = status
    if is_shipped is not None:
        locked.is_shipped = is_shipped
    locked.updated_at = now
    locked.save(update_fields=["status", "is_shipped", "updated_at"])
    payment_event_record(
        locked.payment,
        kind="order_status",
        now=now,
        detail={"order": locked.public_id, "status": status, "is_shipped": is_shipped},
    )
    return locked


@transaction.atomic
def order_shipment_record(
    *,
    order: Order,
    carrier: str | None,
    tracking_number: str | None,
    tracking_url: str | None,
    now,
) -> Order:
    """An order's parcel: carrier and tracking, as the shop reports it (a later report
    replaces the earlier one; each is in the payment's history)."""
    locked = Order.objects.select_for_update().select_related("payment").get(pk=order.pk)
    locked.carrier = carrier
    locked.tracking_number = tracking_number
    locked.tracking_url = tracking_url
    locked.is_shipped = True
    locked.updated_at = now
    locked.save(
        update_fields=["carrier", "tracking_number", "tracking_url", "is_shipped", "updated_at"]
    )
    payment_event_record(
        locked.payment,
        kind="order_shipped",
        now=now,
        detail={
            "order": locked.public_id,
            "carrier": carrier,
            "tracking_number": tracking_number,
        },
    )
    return locked
