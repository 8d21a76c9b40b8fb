"""Payments as the merchant API changes them: create, edit, cancel, trigger, expire.
Also the merchant's reports: potential-fraud flags and business events. Orders are in
``services.orders``, payment links by SMS in ``services.sms_links``.

Every service is keyword-only, takes ``now`` and runs in one transaction. ``data`` arguments
are request bodies the API has already checked for shape (payment_serializers.py); what
depends on the merchant, its fee plans or the payment's state is checked here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from apps.common.dates import business_date
from apps.common.errors import DomainError
from apps.common.money import to_cents, to_money
from apps.merchants.models import FeePlan, Merchant
from apps.payments.eligibility import IN_STORE, ONLINE, Eligibility, PlanQuery
from apps.payments.models import (
    CANCELLABLE_STATES,
    BusinessEvent,
    Customer,
    Instalment,
    Order,
    Payment,
    PaymentEvent,
    PaymentState,
    PotentialFraudFlag,
)
from apps.payments.selectors import eligibility_check
from apps.payments.services.deny_list import deny_list_add_for_payment
from apps.payments.services.inserts import Insert, inserts_run
from apps.payments.services.orders import order_rows
from apps.payments.services.transitions import (
    payment_event_record,
    payment_lock,
    payment_transition,
)

POS_ORIGINS = frozenset({"pos", "pos_device", "pos_link", "pos_sms"})
# What the merchant may change on a payment once created (POST /v1/payments/{id}).
EDITABLE_FIELDS = (
    "custom_data",
    "return_url",
    "customer_cancel_url",
    "failure_return_url",
    "ipn_callback_url",
    "locale",
    "shipping_address",
    "billing_address",
    "cart",
)
# The plan is priced once, at creation: these never change afterwards.
PLAN_FIELDS = ("purchase_amount", "installments_count", "deferred_days", "deferred_months")
CUSTOMER_EDITABLE = ("first_name", "last_name", "email", "phone")
# Eligibility's reasons -> the request field they are about.
REASON_FIELDS = {
    "plan": "payment.installments_count",
    "purchase_amount": "payment.purchase_amount",
    "billing_address": "payment.billing_address.country",
    "shipping_address": "payment.shipping_address.country",
    "cart": "payment.cart",
    "annual_interest_rate": "payment.installments_count",
}


# --- errors ----------------------------------------------------------------------------


class PaymentRequestInvalid(DomainError):
    """A change this payment cannot take (its plan, its customer once accepted, a phone
    it does not have): answered like a validation error (400), naming each field."""

    code = "validation_error"
    http_status = 400

    def __init__(self, errors: list[dict[str, Any]]):
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        super().__init__(f"Invalid request. {summary}", errors=errors)


def invalid(field: str, message: str, code: str = "invalid_value") -> PaymentRequestInvalid:
    return PaymentRequestInvalid([{"field": field, "error_code": code, "message": str(message)}])


class PaymentNotEligible(DomainError):
    """A well-formed payment this merchant may not create: no such plan for it, an amount
    outside the plan's bounds, a country Tranche does not serve, an excluded category, a
    credit above the usury cap, an inactive account. 403, not 400: the same request is
    fine for another merchant (or after a change of fee plans), so it is a refusal, not a
    malformed request. ``errors`` names each field, as a validation error does."""

    code = "merchant_cant_create_payments"
    http_status = 403

    def __init__(self, errors: list[dict[str, Any]]):
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        super().__init__(f"This payment cannot be created. {summary}", errors=errors)


class PaymentStateConflict(DomainError):
    """The payment's state does not allow it (cancel an accepted payment, text the link of
    a stopped one, trigger a payment without deferred trigger)."""

    code = "invalid_payment_state"
    http_status = 409


# --- creation --------------------------------------------------------------------------


def payment_create(
    *,
    merchant: Merchant,
    livemode: bool,
    data: dict[str, Any],
    now,
    staff_member: str = "",
    terminal_name: str = "",
    expires_at: datetime | None = None,
) -> Payment:
    """A payment for a purchase, its plan priced once and written as instalment rows.

    The plan is the merchant's fee plan for the requested instalments and deferral in the
    channel of the payment's origin (online or in store), re-checked with eligibility's
    rules (amount bounds, countries, excluded categories, usury): a purchase that is not
    eligible is refused (``PaymentNotEligible``) naming the field. The customer is found
    by email in this mode (or created; names filled in where still blank); the payment
    keeps its own copy of what the merchant sent about them.

    Everything is written in one statement (services/inserts.py), atomic by itself: the
    customer, the payment, its instalments, its orders and a "created" event. The returned
    payment carries ``instalment_rows`` and ``current_orders`` for ``payment_to_json``.

    In-store sales (apps.pos, remote sales) name the ``staff_member`` and ``terminal_name``
    for reconciliation, and may set ``expires_at`` (the in-store session's own expiry).
    """
    if not merchant.is_active:
        raise PaymentNotEligible(
            [
                {
                    "field": "merchant",
                    "error_code": "merchant_cant_create_payments",
                    "message": _("This merchant account is not active: it cannot create payments."),
                }
            ]
        )
    body = data["payment"]
    origin = body.get("origin") or Payment.Origin.ONLINE
    answer = _eligibility(merchant=merchant, body=body, origin=origin, now=now)
    plan = answer.plan
    deferred_trigger = body.get("deferred") == "trigger"
    if deferred_trigger:
        _check_trigger_allowed(merchant=merchant, body=body, origin=origin)
    customer_data = _customer_data(data.get("customer"))
    customer = Customer(
        livemode=livemode,
        email=customer_data.get("email") or "",
        first_name=(customer_data.get("first_name") or "")[:100],
        last_name=(customer_data.get("last_name") or "")[:100],
        created_at=now,
        updated_at=now,
    )
    expires_after = body.get("expires_after") or merchant.payment_expiry_minutes
    # A customer paying at the counter stays on Tranche's pages: the merchant's website
    # URLs (its defaults) would send them away from the shop.
    in_shop = origin == Payment.Origin.POS_DEVICE
    payment = Payment(
        merchant=merchant,
        livemode=livemode,
        state=PaymentState.NOT_STARTED,
        installments_count=body.get("installments_count") or 3,
        deferred_days=body.get("deferred_days") or 0,
        deferred_months=body.get("deferred_months") or 0,
        purchase_amount=to_money(plan.purchase_amount),
        customer_fee=to_money(plan.customer_fee),
        customer_interest=to_money(plan.customer_interest),
        merchant_fee=to_money(plan.merchant_fee),
        annual_interest_rate=answer.annual_interest_rate,
        purchase_date=plan.purchase_date,
        return_url=body.get("return_url") or ("" if in_shop else merchant.return_url),
        customer_cancel_url=body.get("customer_cancel_url")
        or ("" if in_shop else merchant.customer_cancel_url),
        failure_return_url=body.get("failure_return_url") or "",
        ipn_callback_url=body.get("ipn_callback_url") or merchant.ipn_callback_url,
        custom_data=body.get("custom_data") or {},
        locale=body.get("locale") or "",
        origin=origin,
        customer_data=customer_data,
        billing_address=body.get("billing_address"),
        shipping_address=body.get("shipping_address"),
        shipping_info=body.get("shipping_info"),
        cart=body.get("cart"),
        website_customer_details=data.get("website_customer_details"),
        deferred_trigger=deferred_trigger,
        deferred_trigger_description=(body.get("deferred_description") or "")
        if deferred_trigger
        else "",
        created_at=now,
        updated_at=now,
        expires_at=expires_at or now + timedelta(minutes=expires_after),
        staff_member=staff_member[:150],
        terminal_name=terminal_name[:100],
    )
    instalments = [
        Instalment(
            payment=payment,
            number=number,
            due_date=item.due_date,
            purchase_amount=to_money(item.purchase_amount),
            original_purchase_amount=to_money(item.purchase_amount),
            customer_fee=to_money(item.customer_fee),
            customer_interest=to_money(item.customer_interest),
            state=Instalment.State.PENDING,
        )
        for number, item in enumerate(plan.instalments, start=1)
    ]
    orders = order_rows(payment=payment, orders=_orders_in(data), now=now)
    event = PaymentEvent(
        payment=payment,
        kind="created",
        to_state=payment.state,
        detail={"orders": len(orders)} if orders else {},
        created_at=now,
    )
    _payment_write(customer, payment, instalments, orders, event)
    return payment


_CUSTOMER_FIELDS = [f for f in Customer._meta.concrete_fields]
# Same email in the same mode: the existing customer, names filled in where still blank.
# It always updates (so it always returns the row, even when a concurrent first payment of
# that email inserted it a moment ago); updated_at moves only when a name was filled in.
_CUSTOMER_BY_EMAIL = """
 ON CONFLICT (livemode, email) WHERE NOT (email = '') DO UPDATE SET
    first_name = CASE WHEN payments_customer.first_name = ''
        THEN EXCLUDED.first_name ELSE payments_customer.first_name END,
    last_name = CASE WHEN payments_customer.last_name = ''
        THEN EXCLUDED.last_name ELSE payments_customer.last_name END,
    updated_at = CASE
        WHEN (payments_customer.first_name = '' AND EXCLUDED.first_name <> '')
          OR (payments_customer.last_name = '' AND EXCLUDED.last_name <> '')
        THEN EXCLUDED.updated_at ELSE payments_customer.updated_at END"""


def _payment_write(
    customer: Customer,
    payment: Payment,
    instalments: list[Instalment],
    orders: list[Order],
    event: PaymentEvent,
) -> None:
    """Write a new payment's rows in one statement and give the instances their ids."""
    returning_customer = ", ".join(f.column for f in _CUSTOMER_FIELDS)
    inserts = [
        Insert(
            "customer",
            [customer],
            returning=returning_customer,
            suffix=_CUSTOMER_BY_EMAIL if customer.email else "",
        ),
        Insert("payment", [payment], references={"customer_id": "customer"}),
        Insert(
            "instalments",
            instalments,
            references={"payment_id": "payment"},
            returning="id, number",
        ),
        Insert("event", [event], references={"payment_id": "payment"}),
    ]
    orders_ids = "ARRAY[]::bigint[]"
    if orders:
        inserts.append(Insert("orders", orders, references={"payment_id": "payment"}))
        orders_ids = "ARRAY(SELECT id FROM orders ORDER BY id)"
    final = (
        "SELECT payment.id, ARRAY(SELECT id FROM instalments ORDER BY number), "  # noqa: S608
        f"{orders_ids}, (SELECT id FROM event), customer.* FROM payment, customer"
    )
    row = inserts_run(inserts, final)
    payment_id, instalment_ids, order_ids, event_id, *customer_values = row
    saved = Customer.from_db("default", [f.attname for f in _CUSTOMER_FIELDS], customer_values)
    payment.pk = payment_id
    payment.customer = saved
    event.pk = event_id
    for rows, ids in ((instalments, instalment_ids), (orders, order_ids)):
        for instance, pk in zip(rows, ids, strict=True):
            instance.pk = pk
    for instance in (payment, event, *instalments, *orders):
        instance._state.adding = False
        instance._state.db = "default"
    payment.instalment_rows = instalments
    payment.current_orders = orders


def _eligibility(*, merchant: Merchant, body: dict, origin: str, now) -> Eligibility:
    query = PlanQuery(
        purchase_amount=body["purchase_amount"],
        installments_count=body.get("installments_count") or 3,
        deferred_days=body.get("deferred_days") or 0,
        deferred_months=body.get("deferred_months") or 0,
    )
    categories = [
        category
        for item in ((body.get("cart") or {}).get("items") or [])
        if isinstance(item, dict)
        for category in (item.get("categories") or [])
    ]
    [answer] = eligibility_check(
        merchant=merchant,
        purchase_amount=query.purchase_amount,
        queries=[query],
        purchase_date=business_date(now),
        channel=IN_STORE if origin in POS_ORIGINS else ONLINE,
        billing_country=_country(body.get("billing_address")),
        shipping_country=_country(body.get("shipping_address")),
        cart_categories=categories,
    )
    if answer.eligible:
        return answer
    raise PaymentNotEligible(
        [
            {
                "field": REASON_FIELDS.get(reason, f"payment.{reason}"),
                "error_code": "merchant_cant_create_payments"
                if reason == "merchant"
                else "invalid_value",
                "message": _reason_message(reason, code, answer.constraints.get(reason, {})),
            }
            for reason, code in answer.reasons.items()
        ]
    )


def _reason_message(reason: str, code: str, constraint: dict) -> str:
    if reason == "merchant":
        return _("This merchant account is not active: it cannot create payments.")
    if reason == "plan":
        allowed = ", ".join(constraint.get("allowed", [])) or _("none")
        return _("No such plan is offered for this payment's origin. Plans offered: %s.") % (
            allowed
        )
    if reason == "purchase_amount":
        return _("This plan takes purchases from %(minimum)s to %(maximum)s cents.") % constraint
    if reason in ("billing_address", "shipping_address"):
        return _("Tranche does not serve this country (served: %s).") % ", ".join(
            constraint.get("countries", [])
        )
    if reason == "cart":
        return _("The cart holds categories this merchant excludes: %s.") % ", ".join(
            constraint.get("excluded_categories", [])
        )
    if code == "above_usury_cap":
        return _("This plan's APR would be above the legal maximum (%s bps) for this amount.") % (
            constraint.get("maximum")
        )
    if code == "usury_rate_unknown":
        return _("This credit plan cannot be sold until this quarter's usury rates are known.")
    return _("Not eligible: %s.") % code


def _country(address: dict | None) -> str | None:
    country = (address or {}).get("country")
    return country.strip().upper() or None if isinstance(country, str) else None


def _check_trigger_allowed(*, merchant: Merchant, body: dict, origin: str) -> None:
    """ "Pay on shipment" needs a fee plan that allows it (deferred_trigger_limit_days)."""
    limit = (
        FeePlan.objects.filter(
            merchant=merchant,
            kind=FeePlan.Kind.POS if origin in POS_ORIGINS else FeePlan.Kind.GENERAL,
            installments_count=body.get("installments_count") or 3,
            deferred_days=body.get("deferred_days") or 0,
            deferred_months=body.get("deferred_months") or 0,
        )
        .values_list("deferred_trigger_limit_days", flat=True)
        .first()
    )
    if limit is None:
        message = _("This plan cannot be deferred until shipment.")
        raise PaymentNotEligible(
            [{"field": "payment.deferred", "error_code": "invalid_value", "message": message}]
        )


def _customer_data(customer: dict | None) -> dict[str, Any]:
    """What the merchant sent about the customer, as stored on the payment (JSON)."""
    if not customer:
        return {}
    stored = dict(customer)
    if stored.get("email"):
        stored["email"] = stored["email"].strip().lower()
    return stored


def _orders_in(data: dict) -> list[dict]:
    orders = list(data.get("orders") or [])
    if data.get("order"):
        orders.insert(0, data["order"])
    return orders


# --- edits -----------------------------------------------------------------------------


@transaction.atomic
def payment_update(*, payment: Payment, data: dict[str, Any], now) -> Payment:
    """Change what the merchant may change after creation: ``custom_data`` (replaced), the
    URLs, locale, addresses and cart; the customer's name, email and phone until the
    payment is accepted. The plan and the amount are fixed at creation: sending them with
    another value is refused (the same value is accepted, so a client may echo them)."""
    locked = payment_lock(payment_id=payment.pk)
    body = data.get("payment") or {}
    errors = [
        {
            "field": f"payment.{name}",
            "error_code": "invalid_value",
            "message": _("The plan and the amount cannot be changed once a payment is created."),
        }
        for name in PLAN_FIELDS
        if name in body and body[name] != _plan_value(locked, name)
    ]
    customer = data.get("customer")
    if customer and locked.accepted_at is not None:
        errors.append(
            {
                "field": "customer",
                "error_code": "invalid_value",
                "message": _("The customer cannot be changed once the payment is accepted."),
            }
        )
    if errors:
        raise PaymentRequestInvalid(errors)
    changed = [name for name in EDITABLE_FIELDS if name in body]
    for name in changed:
        value = body[name]
        if name == "custom_data":
            value = value or {}
        elif name.endswith("_url") or name == "locale":
            value = value or ""
        setattr(locked, name, value)
    if customer:
        merged = dict(locked.customer_data)
        for name in CUSTOMER_EDITABLE:
            if name in customer:
                merged[name] = customer[name]
        locked.customer_data = _customer_data(merged)
        changed.append("customer_data")
    locked.updated_at = now
    locked.save(update_fields=[*changed, "updated_at"])
    payment_event_record(locked, kind="updated", now=now, detail={"fields": changed})
    return locked


def _plan_value(payment: Payment, name: str) -> int:
    value = getattr(payment, name)
    return to_cents(value) if name == "purchase_amount" else value


@transaction.atomic
def payment_cancel(*, payment: Payment, now) -> Payment:
    """Stop a payment nothing has been charged on (the merchant's cancel). Cancelling a
    payment its merchant already cancelled answers it again; any other state is a
    conflict (an accepted payment is refunded, not cancelled)."""
    locked = payment_lock(payment_id=payment.pk)
    if locked.state == PaymentState.STOPPED and locked.cancelled_at is not None:
        return locked
    if locked.state not in CANCELLABLE_STATES:
        raise PaymentStateConflict(
            _("This payment cannot be cancelled: it is %(state)s.") % {"state": locked.state}
        )
    if locked.charges.filter(status__in=["pending", "unknown"]).exists():
        raise PaymentStateConflict(
            _("The customer is paying this payment right now; it cannot be cancelled.")
        )
    locked.cancelled_at = now
    return payment_transition(
        locked, PaymentState.STOPPED, now=now, kind="cancelled", extra_fields=("cancelled_at",)
    )


@transaction.atomic
def payment_trigger(*, payment: Payment, now) -> Payment:
    """Start a "pay on shipment" plan (created with ``deferred: "trigger"``): the merchant
    says the goods are on their way. Once only; a second call answers the payment."""
    locked = payment_lock(payment_id=payment.pk)
    if not locked.deferred_trigger:
        raise PaymentStateConflict(
            _("This payment was not created with deferred: trigger; there is nothing to trigger.")
        )
    if locked.deferred_trigger_applied_at is not None:
        return locked
    if locked.state == PaymentState.STOPPED:
        raise PaymentStateConflict(_("This payment is stopped."))
    locked.deferred_trigger_applied_at = now
    locked.updated_at = now
    locked.save(update_fields=["deferred_trigger_applied_at", "updated_at"])
    payment_event_record(locked, kind="trigger_applied", now=now)
    return locked


@transaction.atomic
def payment_expire(*, payment_id: int, now: datetime) -> Payment:
    """Stop one payment still waiting for its customer, now (an in-store session that
    expired). A payment accepted, stopped, or with a checkout charge in flight is left as
    it is and returned: the caller reads its state."""
    locked = payment_lock(payment_id=payment_id)
    if locked.state not in CANCELLABLE_STATES or locked.expired_at is not None:
        return locked
    if locked.charges.filter(status__in=["pending", "unknown"]).exists():
        return locked
    locked.expired_at = now
    return payment_transition(
        locked, PaymentState.STOPPED, now=now, kind="expired", extra_fields=("expired_at",)
    )


def payments_expire(*, now: datetime, batch_size: int = 500) -> int:
    """Stop every payment still waiting for its customer whose time is up (``expires_at``),
    in batches of ``batch_size``, one transaction each. Workers running at the same time
    claim different rows (SKIP LOCKED) and a rerun finds nothing left: safe to run twice
    and concurrently. Returns how many payments expired. Not-ready payments expire too
    (the expiry index covers them)."""
    total = 0
    while True:
        with transaction.atomic():
            batch = list(
                Payment.objects.select_for_update(skip_locked=True)
                .filter(
                    state__in=list(CANCELLABLE_STATES),
                    expired_at__isnull=True,
                    expires_at__lte=now,
                )
                # A checkout charge in doubt may have gone through: it is settled first
                # (settle_charges_in_doubt), and the payment accepted or expired after.
                .exclude(charges__status__in=["pending", "unknown"])
                .order_by("expires_at")[:batch_size]
            )
            for payment in batch:
                payment.expired_at = now
                payment_transition(
                    payment,
                    PaymentState.STOPPED,
                    now=now,
                    kind="expired",
                    extra_fields=("expired_at",),
                )
        total += len(batch)
        if len(batch) < batch_size:
            return total


# --- what merchants report -------------------------------------------------------------


@transaction.atomic
def potential_fraud_flag(*, payment: Payment, reason: str, now) -> PotentialFraudFlag:
    """Record a merchant's report that a payment looks wrong (plugins send
    ``amount_mismatch`` or ``state_error``, sometimes with details); it feeds the deny list."""
    with transaction.atomic():
        flag = PotentialFraudFlag.objects.create(
            payment=payment, reason=reason or "", created_at=now
        )
        payment_event_record(payment, kind="potential_fraud", now=now, detail={"reason": reason})
        # The customer's email, phone, card and device go on the deny list (operators may
        # take them off in the admin).
        deny_list_add_for_payment(
            payment=payment,
            source="fraud_flag",
            note=f"Flagged by the merchant: {reason}"[:500],
            now=now,
        )
    return flag


def business_event_record(
    *, merchant: Merchant, livemode: bool, data: dict[str, Any], now
) -> BusinessEvent:
    """Store what a shop reports about its checkout (cart initiated, order confirmed)."""
    return BusinessEvent.objects.create(
        merchant=merchant,
        livemode=livemode,
        event_type=data["event_type"],
        data=data,
        created_at=now,
    )
