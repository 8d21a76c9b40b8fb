"""Payments and orders (contract sections 2, 3 and 8): one method per operation, each
parsing its input, making one call into services or selectors, and answering JSON.

Every read and write is scoped to the calling key's merchant and mode (the selectors
filter by both): another merchant's id, or the other mode's, is a 404.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from apps.merchants.api.base import MerchantAPIView
from apps.payments import selectors
from apps.payments.api.payment_serializers import (
    BusinessEventSerializer,
    EmptySerializer,
    OrderEditSerializer,
    OrderListQuerySerializer,
    OrderPageSerializer,
    OrderSerializer,
    OrderShipmentSerializer,
    OrderStatusSerializer,
    PaymentCreateSerializer,
    PaymentEditSerializer,
    PaymentListQuerySerializer,
    PaymentOrdersSerializer,
    PaymentPageSerializer,
    PaymentSerializer,
    PotentialFraudSerializer,
    order_list,
    order_to_json,
    payment_to_json,
    validated,
)
from apps.payments.services import orders as order_services
from apps.payments.services import payments as payment_services
from apps.payments.services import pos_acceptance, sms_links

PAYMENTS = ["payments"]
ORDERS = ["orders"]
DEFAULT_LIMIT = 20
ERROR = {"$ref": "#/components/schemas/Error"}  # added by apps.common.api.schema's hook
CREATE_EXAMPLE = {
    "payment": {
        "purchase_amount": 45000,
        "installments_count": 3,
        "return_url": "https://shop.example/alma/return",
        "ipn_callback_url": "https://shop.example/alma/ipn",
        "custom_data": {"cart_id": "42"},
        "locale": "fr",
        "shipping_address": {
            "line1": "1 rue de la Paix",
            "postal_code": "75002",
            "city": "Paris",
            "country": "FR",
        },
    },
    "customer": {
        "first_name": "Camille",
        "last_name": "Martin",
        "email": "camille@example.com",
        "phone": "+33612345678",
    },
    "order": {"merchant_reference": "A-1001"},
}


class PaymentsAPIView(MerchantAPIView):
    """A merchant endpoint about payments: ``self.scope`` is what selectors filter by."""

    @property
    def scope(self) -> dict:
        return {"merchant": self.merchant, "livemode": self.request.auth.livemode}

    def body(self, serializer_class) -> dict:
        return validated(serializer_class, self.request.data)

    def query(self, serializer_class) -> dict:
        return validated(serializer_class, self.request.query_params)

    def payment_for_update(self, payment_id: str):
        return selectors.payment_for_update(**self.scope, payment_id=payment_id)

    def payment_json(self, payment) -> dict:
        return payment_to_json(selectors.payment_with_details(payment=payment))


class PaymentsView(PaymentsAPIView):
    @extend_schema(
        operation_id="payments_create",
        request=PaymentCreateSerializer,
        responses={200: PaymentSerializer},
        tags=PAYMENTS,
        examples=[OpenApiExample("3 instalments", value=CREATE_EXAMPLE, request_only=True)],
    )
    def post(self, request):
        """Create a payment: the plan is priced now and the customer pays at `url`.

        A malformed body is a 400 `validation_error`; a well-formed purchase this merchant
        cannot sell (no such plan for its origin, an amount outside the plan's bounds, a
        country not served, an excluded category, a credit above the usury rate) is a 403
        `merchant_cant_create_payments`; both name each field in `errors`."""
        data = self.body(PaymentCreateSerializer)
        payment = payment_services.payment_create(
            merchant=self.merchant, livemode=request.auth.livemode, data=data, now=timezone.now()
        )
        return Response(payment_to_json(payment))

    @extend_schema(
        operation_id="payments_list",
        parameters=[PaymentListQuerySerializer],
        responses=PaymentPageSerializer,
        tags=PAYMENTS,
    )
    def get(self, request):
        """The merchant's payments in the key's mode, newest first."""
        query = self.query(PaymentListQuerySerializer)
        page = selectors.payments_page(
            **self.scope,
            limit=query.get("limit", DEFAULT_LIMIT),
            starting_after=query.get("starting_after"),
            states=query["state"].split(",") if query.get("state") else None,
        )
        return Response(
            {"data": [payment_to_json(p) for p in page.items], "has_more": page.has_more}
        )


class PaymentView(PaymentsAPIView):
    @extend_schema(operation_id="payments_fetch", responses=PaymentSerializer, tags=PAYMENTS)
    def get(self, request, payment_id: str):
        """One payment."""
        return Response(payment_to_json(selectors.payment_get(**self.scope, payment_id=payment_id)))

    @extend_schema(
        operation_id="payments_update",
        request=PaymentEditSerializer,
        responses=PaymentSerializer,
        tags=PAYMENTS,
        examples=[
            OpenApiExample(
                "Your order id",
                value={"payment": {"custom_data": {"id_order": 7}}},
                request_only=True,
            )
        ],
    )
    def post(self, request, payment_id: str):
        """Edit a payment: custom_data (replaced), URLs, locale, addresses, cart; the
        customer's name, email and phone until it is accepted. The plan cannot change."""
        data = self.body(PaymentEditSerializer)
        payment = payment_services.payment_update(
            payment=self.payment_for_update(payment_id), data=data, now=timezone.now()
        )
        return Response(self.payment_json(payment))


class PaymentOrdersView(PaymentsAPIView):
    """A payment's orders. Answers are the payment's current orders, oldest first."""

    @extend_schema(
        operation_id="payment_orders_list", responses=OrderSerializer(many=True), tags=ORDERS
    )
    def get(self, request, payment_id: str):
        payment = self.payment_for_update(payment_id)
        orders = selectors.payment_orders(payment=payment)
        return Response([order_to_json(o, payment_id=payment.public_id) for o in orders])

    @extend_schema(
        operation_id="payment_orders_add",
        request=PaymentOrdersSerializer,
        responses=OrderSerializer(many=True),
        tags=ORDERS,
    )
    def put(self, request, payment_id: str):
        """Add orders (`order` or `orders`) to the payment."""
        orders = order_list(self.body(PaymentOrdersSerializer))
        payment = self.payment_for_update(payment_id)
        current = order_services.orders_append(payment=payment, orders=orders, now=timezone.now())
        return Response([order_to_json(o, payment_id=payment.public_id) for o in current])

    @extend_schema(
        operation_id="payment_orders_replace",
        request=PaymentOrdersSerializer,
        responses=OrderSerializer(many=True),
        tags=ORDERS,
    )
    def post(self, request, payment_id: str):
        """Replace the payment's orders; the replaced ones are kept on record, detached."""
        orders = order_list(self.body(PaymentOrdersSerializer))
        payment = self.payment_for_update(payment_id)
        current = order_services.orders_replace(payment=payment, orders=orders, now=timezone.now())
        return Response([order_to_json(o, payment_id=payment.public_id) for o in current])


class PaymentOrderStatusView(PaymentsAPIView):
    @extend_schema(
        operation_id="payment_order_status",
        request=OrderStatusSerializer,
        responses=EmptySerializer,
        tags=ORDERS,
    )
    def post(self, request, payment_id: str, merchant_reference: str):
        """Your status of the payment's order with this reference."""
        data = self.body(OrderStatusSerializer)
        payment = self.payment_for_update(payment_id)
        order = selectors.payment_order_by_reference(
            payment=payment, merchant_reference=merchant_reference
        )
        order_services.order_status_record(
            order=order,
            status=data["status"],
            is_shipped=data.get("is_shipped"),
            now=timezone.now(),
        )
        return Response({})


class PotentialFraudView(PaymentsAPIView):
    @extend_schema(
        operation_id="payments_potential_fraud",
        request=PotentialFraudSerializer,
        responses=EmptySerializer,
        tags=PAYMENTS,
    )
    def post(self, request, payment_id: str):
        """Report that a payment looks wrong (amount or state mismatch): recorded."""
        data = self.body(PotentialFraudSerializer)
        payment_services.potential_fraud_flag(
            payment=self.payment_for_update(payment_id),
            reason=data.get("reason") or "",
            now=timezone.now(),
        )
        return Response({})


class PaymentCancelView(PaymentsAPIView):
    def cancel(self, payment_id: str) -> Response:
        payment = payment_services.payment_cancel(
            payment=self.payment_for_update(payment_id), now=timezone.now()
        )
        return Response(self.payment_json(payment))

    @extend_schema(
        operation_id="payments_cancel", request=None, responses=PaymentSerializer, tags=PAYMENTS
    )
    def put(self, request, payment_id: str):
        """Cancel a payment nothing was charged on yet (`stopped`). Cancelling it again
        answers the payment; a payment in any other state is a 409."""
        return self.cancel(payment_id)

    @extend_schema(
        operation_id="payments_cancel_post",
        request=None,
        responses=PaymentSerializer,
        tags=PAYMENTS,
    )
    def post(self, request, payment_id: str):
        """The same as PUT."""
        return self.cancel(payment_id)


class PaymentTriggerView(PaymentsAPIView):
    @extend_schema(
        operation_id="payments_trigger", request=None, responses=PaymentSerializer, tags=PAYMENTS
    )
    def post(self, request, payment_id: str):
        """Start a "pay on shipment" plan (created with `deferred: "trigger"`); 409 for
        any other payment."""
        payment = payment_services.payment_trigger(
            payment=self.payment_for_update(payment_id), now=timezone.now()
        )
        return Response(self.payment_json(payment))


class PaymentSendSmsView(PaymentsAPIView):
    @extend_schema(
        operation_id="payments_send_sms",
        request=None,
        responses={200: EmptySerializer},
        tags=PAYMENTS,
    )
    def post(self, request, payment_id: str):
        """Text the payment's link to the customer's phone. 403 when SMS links are not
        enabled for the merchant, 409 when the payment can no longer be paid."""
        sms_links.payment_send_sms(payment=self.payment_for_update(payment_id), now=timezone.now())
        return Response({})


class OrdersView(PaymentsAPIView):
    @extend_schema(
        operation_id="orders_list",
        parameters=[OrderListQuerySerializer],
        responses=OrderPageSerializer,
        tags=ORDERS,
    )
    def get(self, request):
        """The merchant's orders in the key's mode, newest first (replaced ones left out)."""
        query = self.query(OrderListQuerySerializer)
        page = selectors.orders_page(
            **self.scope,
            limit=query.get("limit", DEFAULT_LIMIT),
            starting_after=query.get("starting_after"),
            merchant_reference=query.get("merchant_reference"),
        )
        return Response({"data": [order_to_json(o) for o in page.items], "has_more": page.has_more})


class OrderView(PaymentsAPIView):
    def update(self, order_id: str) -> Response:
        data = self.body(OrderEditSerializer)
        order = order_services.order_update(
            order=selectors.order_get(**self.scope, order_id=order_id),
            data=data,
            now=timezone.now(),
        )
        return Response(order_to_json(order))

    @extend_schema(operation_id="orders_fetch", responses=OrderSerializer, tags=ORDERS)
    def get(self, request, order_id: str):
        """One order."""
        return Response(order_to_json(selectors.order_get(**self.scope, order_id=order_id)))

    @extend_schema(
        operation_id="orders_update",
        request=OrderEditSerializer,
        responses=OrderSerializer,
        tags=ORDERS,
    )
    def put(self, request, order_id: str):
        """Change an order's fields (those sent)."""
        return self.update(order_id)

    @extend_schema(
        operation_id="orders_update_post",
        request=OrderEditSerializer,
        responses=OrderSerializer,
        tags=ORDERS,
    )
    def post(self, request, order_id: str):
        """The same as PUT (Alma's PHP client 2 uses POST)."""
        return self.update(order_id)


class OrderShipmentView(PaymentsAPIView):
    @extend_schema(
        operation_id="orders_shipment",
        request=OrderShipmentSerializer,
        responses=OrderSerializer,
        tags=ORDERS,
    )
    def post(self, request, order_id: str):
        """The order's parcel: carrier and tracking."""
        data = self.body(OrderShipmentSerializer)
        order = order_services.order_shipment_record(
            order=selectors.order_get(**self.scope, order_id=order_id),
            carrier=data.get("carrier") or None,
            tracking_number=data.get("tracking_number") or None,
            tracking_url=data.get("tracking_url") or None,
            now=timezone.now(),
        )
        return Response(order_to_json(order))


class OrderStatusView(PaymentsAPIView):
    @extend_schema(
        operation_id="orders_status",
        request=OrderStatusSerializer,
        responses=OrderSerializer,
        tags=ORDERS,
    )
    def post(self, request, order_id: str):
        """Your status of an order (deprecated in Alma's PHP client; kept for it)."""
        data = self.body(OrderStatusSerializer)
        order = order_services.order_status_record(
            order=selectors.order_get(**self.scope, order_id=order_id),
            status=data["status"],
            is_shipped=data.get("is_shipped"),
            now=timezone.now(),
        )
        return Response(order_to_json(order))


class BusinessEventsView(PaymentsAPIView):
    @extend_schema(
        operation_id="business_events",
        request=BusinessEventSerializer,
        responses={204: None},
        tags=["merchant"],
    )
    def post(self, request):
        """What your checkout saw (cart initiated, order confirmed): stored."""
        data = self.body(BusinessEventSerializer)
        payment_services.business_event_record(
            merchant=self.merchant, livemode=request.auth.livemode, data=data, now=timezone.now()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PaymentAskAcceptanceView(PaymentsAPIView):
    @extend_schema(
        operation_id="payments_ask_acceptance",
        summary="Ask the customer to accept an in-store payment",
        responses={
            200: PaymentSerializer,
            400: OpenApiResponse(ERROR, description="No valid customer phone (`customer.phone`)."),
            403: OpenApiResponse(ERROR, description="`sms_not_enabled` for this merchant."),
            409: OpenApiResponse(
                ERROR, description="`not_a_pos_payment`: not an in-store payment."
            ),
        },
        tags=PAYMENTS,
    )
    def get(self, request, payment_id: str):
        """In store, the customer accepts the payment on their own phone. This texts them
        the payment's link, once: when the payment is still payable and they were not asked
        yet (no link SMS sent by `send-sms` or this call, and not an in-store session's
        payment, whose customer already has the short link). Asking again sends nothing and
        answers the payment, like GET /v1/payments/{id}.

        Only for in-store payments (origin `pos`, `pos_device`, `pos_link` or `pos_sms`);
        any other is a 409 `not_a_pos_payment`. SMS errors are those of `send-sms`: 403
        `sms_not_enabled`, 400 naming `customer.phone`."""
        payment = pos_acceptance.payment_ask_acceptance(
            payment=self.payment_for_update(payment_id), now=timezone.now()
        )
        return Response(self.payment_json(payment))


class PaymentChargeFirstInstallmentView(PaymentsAPIView):
    @extend_schema(
        operation_id="payments_charge_first_installment",
        summary="Charge the first instalment of an accepted in-store payment",
        request=None,
        responses={
            200: PaymentSerializer,
            402: OpenApiResponse(
                ERROR, description="`charge_declined`: the customer's bank declined."
            ),
            202: OpenApiResponse(
                ERROR,
                description="`charge_in_doubt`: the bank has not answered yet; the charge is "
                "checked and recorded shortly (ask again: never charged twice).",
            ),
            409: OpenApiResponse(
                ERROR,
                description="`payment_not_accepted` (the customer has not said yes on their "
                "phone yet), `not_a_pos_payment`, or `charge_in_progress` (a charge is in "
                "flight, its outcome not known yet: ask again in a moment).",
            ),
        },
        tags=PAYMENTS,
    )
    def post(self, request, payment_id: str):
        """The customer accepted the payment on their phone (details, card, 3-D Secure, a
        yes): answer the accepted payment (`in_progress`, or `paid` for a single
        instalment). The checkout charges the first instalment right after the yes; when
        that charge was not made (a checkout cut short), it is made now. Calling it again
        answers the payment, charging nothing more. The body is ignored.

        Before the customer's yes: 409 `payment_not_accepted`. A declined charge: 402
        `charge_declined` (the customer uses another card on their phone). Only for in-store
        payments (origin `pos`, `pos_device`, `pos_link` or `pos_sms`): 409
        `not_a_pos_payment` otherwise."""
        payment = pos_acceptance.payment_charge_first_instalment(
            payment=self.payment_for_update(payment_id), now=timezone.now()
        )
        return Response(self.payment_json(payment))
