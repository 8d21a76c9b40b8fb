"""Orders (contract section 8, endpoints #11, #14, #15, #16, #22): a payment's orders
added, replaced and listed; the merchant's orders listed, read and edited; status and
shipment reports."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from apps.payments.api.payment_serializers import OrderSerializer
from apps.payments.models import Order, PaymentEvent
from tests.payments.builders import payment_create_for

pytestmark = pytest.mark.django_db

MOMENT = datetime(2026, 1, 31, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(MOMENT, tick=False) as traveller:
        yield traveller


@pytest.fixture
def payment(shop):
    return payment_create_for(shop, order={"merchant_reference": "A-1"})


def orders_url(payment) -> str:
    return f"/v1/payments/{payment.public_id}/orders"


def errors_of(response) -> dict[str, str]:
    assert response.status_code == 400, response.content
    return {error["field"]: error["error_code"] for error in response.json()["errors"]}


# --- a payment's orders -------------------------------------------------------------------


def test_put_with_one_order_appends_it_last(shop, payment, _frozen_clock):
    _frozen_clock.shift(60)
    response = shop.client().put(
        orders_url(payment),
        {"order": {"merchant_reference": "A-2", "merchant_url": "https://shop.example/admin/2",
                   "customer_url": "https://shop.example/orders/2", "comment": "second",
                   "data": {"carrier": "colissimo"}}},
        format="json",
    )  # fmt: skip

    orders = response.json()
    assert response.status_code == 200
    assert [o["merchant_reference"] for o in orders] == ["A-1", "A-2"]
    assert orders[-1]["merchant_url"] == "https://shop.example/admin/2"
    assert orders[-1]["data"] == {"carrier": "colissimo"}
    assert orders[-1]["payment"] == payment.public_id
    assert list(orders[-1]) == list(OrderSerializer().fields)


def test_put_with_a_list_of_orders_appends_them(shop, payment):
    response = shop.client().put(
        orders_url(payment),
        {"orders": [{"merchant_reference": "B-1"}, {"merchant_reference": "B-2"}]},
        format="json",
    )

    assert [o["merchant_reference"] for o in response.json()] == ["A-1", "B-1", "B-2"]


def test_post_replaces_the_orders_and_keeps_the_old_ones_detached(shop, payment):
    old = payment.current_orders[0]

    response = shop.client().post(
        orders_url(payment), {"orders": [{"merchant_reference": "C-1"}]}, format="json"
    )
    listed = shop.client().get(orders_url(payment)).json()

    assert [o["merchant_reference"] for o in response.json()] == ["C-1"]
    assert [o["merchant_reference"] for o in listed] == ["C-1"]
    old.refresh_from_db()
    assert old.detached_at is not None
    assert Order.objects.filter(payment=payment).count() == 2
    event = PaymentEvent.objects.get(payment=payment, kind="orders_replaced")
    assert event.detail["detached"] == [old.public_id]


def test_the_payment_answers_only_its_current_orders(shop, payment):
    shop.client().post(orders_url(payment), {"order": {"merchant_reference": "D-1"}}, format="json")

    fetched = shop.client().get(f"/v1/payments/{payment.public_id}").json()

    assert [o["merchant_reference"] for o in fetched["orders"]] == ["D-1"]


def test_get_lists_the_orders_oldest_first(shop, payment, _frozen_clock):
    for reference in ("A-2", "A-3"):
        _frozen_clock.shift(1)
        shop.client().put(
            orders_url(payment), {"order": {"merchant_reference": reference}}, format="json"
        )

    listed = shop.client().get(orders_url(payment)).json()

    assert [o["merchant_reference"] for o in listed] == ["A-1", "A-2", "A-3"]


@pytest.mark.parametrize("body", [{}, {"order": None, "orders": None}, {"something": 1}])
def test_put_without_orders_adds_none(shop, payment, body):
    response = shop.client().put(orders_url(payment), body, format="json")

    assert [o["merchant_reference"] for o in response.json()] == ["A-1"]
    assert not PaymentEvent.objects.filter(payment=payment, kind="orders_added").exists()


def test_post_without_orders_removes_them_all(shop, payment):
    response = shop.client().post(orders_url(payment), {"orders": []}, format="json")

    assert response.json() == []
    assert shop.client().get(f"/v1/payments/{payment.public_id}").json()["orders"] == []
    assert Order.objects.filter(payment=payment, detached_at__isnull=False).count() == 1


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"order": "A-2"}, "order", "invalid_type"),
        ({"orders": {"merchant_reference": "x"}}, "orders", "invalid_type"),
        ({"orders": [{"merchant_reference": 12}]}, "orders.0.merchant_reference", "invalid_type"),
        ({"orders": [{}] * 51}, "orders", "too_long"),
        ({"order": {"data": [1]}}, "order.data", "invalid_type"),
        ({"order": {"customer_url": "ssh://x"}}, "order.customer_url", "invalid_value"),
    ],
)
def test_bad_orders_are_named(shop, payment, body, field, code):
    response = shop.client().put(orders_url(payment), body, format="json")

    assert errors_of(response) == {field: code}


def test_another_merchant_cannot_touch_a_payments_orders(shop, other_shop, payment):
    response = other_shop.client().put(
        orders_url(payment), {"order": {"merchant_reference": "X"}}, format="json"
    )

    assert response.status_code == 404
    assert Order.objects.filter(payment=payment).count() == 1


def test_an_idempotent_put_appends_once(shop, payment):
    body = {"order": {"merchant_reference": "A-2"}}

    first = shop.client().put(orders_url(payment), body, format="json", HTTP_IDEMPOTENCY_KEY="o1")
    again = shop.client().put(orders_url(payment), body, format="json", HTTP_IDEMPOTENCY_KEY="o1")

    assert again.json() == first.json()
    assert Order.objects.filter(payment=payment).count() == 2


# --- the merchant's orders ----------------------------------------------------------------


def test_orders_are_listed_newest_first_with_pages(shop, _frozen_clock):
    references = []
    for n in range(3):
        _frozen_clock.shift(60)
        references.append(f"R-{n}")
        payment_create_for(shop, order={"merchant_reference": f"R-{n}"})
    client = shop.client()

    first = client.get("/v1/orders?limit=2").json()
    second = client.get(f"/v1/orders?limit=2&starting_after={first['data'][-1]['id']}").json()

    assert [o["merchant_reference"] for o in first["data"]] == ["R-2", "R-1"]
    assert first["has_more"] is True
    assert [o["merchant_reference"] for o in second["data"]] == ["R-0"]
    assert second["has_more"] is False
    assert first["data"][0]["payment"].startswith("payment_")


def test_orders_filter_by_merchant_reference_and_leave_replaced_ones_out(shop, payment):
    payment_create_for(shop, order={"merchant_reference": "OTHER"})
    shop.client().put(orders_url(payment), {"order": {"merchant_reference": "A-1"}}, format="json")
    shop.client().post(orders_url(payment), {"order": {"merchant_reference": "A-1"}}, format="json")

    found = shop.client().get("/v1/orders?merchant_reference=A-1").json()

    assert len(found["data"]) == 1
    assert found["data"][0]["merchant_reference"] == "A-1"


def test_orders_list_only_the_merchants_orders_in_the_keys_mode(shop, other_shop, payment):
    payment_create_for(shop, livemode=True)
    payment_create_for(other_shop)

    listed = shop.client().get("/v1/orders").json()

    assert [o["id"] for o in listed["data"]] == [payment.current_orders[0].public_id]


@pytest.mark.parametrize("query", ["limit=500", "limit=x", "merchant_reference=" + "r" * 201])
def test_a_bad_orders_query_is_a_400(shop, query):
    response = shop.client().get(f"/v1/orders?{query}")

    assert list(errors_of(response)) == [query.split("=")[0]]


def test_an_unknown_orders_cursor_gives_an_empty_page(shop, payment):
    assert shop.client().get("/v1/orders?starting_after=order_x").json() == {
        "data": [],
        "has_more": False,
    }


def test_an_order_is_read_by_id_with_or_without_prefix(shop, payment):
    order = payment.current_orders[0]

    full = shop.client().get(f"/v1/orders/{order.public_id}")
    bare = shop.client().get(f"/v1/orders/{order.public_id.removeprefix('order_')}")

    assert full.status_code == bare.status_code == 200
    assert full.json() == bare.json()
    assert full.json()["payment"] == payment.public_id


@pytest.mark.parametrize("method", ["put", "post"])
def test_an_order_is_updated_with_put_or_post(shop, payment, method, _frozen_clock):
    order = payment.current_orders[0]
    _frozen_clock.shift(30)

    response = getattr(shop.client(), method)(
        f"/v1/orders/{order.public_id}", {"comment": "x", "data": {"n": 1}}, format="json"
    )

    updated = response.json()
    assert response.status_code == 200
    assert (updated["comment"], updated["data"]) == ("x", {"n": 1})
    assert updated["merchant_reference"] == "A-1"
    assert updated["updated"] == updated["created"] + 30


def test_another_merchants_order_is_not_found(shop, other_shop, payment):
    order = payment.current_orders[0]

    read = other_shop.client().get(f"/v1/orders/{order.public_id}")
    updated = other_shop.client().put(
        f"/v1/orders/{order.public_id}", {"comment": "x"}, format="json"
    )
    live = shop.client(live=True).get(f"/v1/orders/{order.public_id}")

    assert read.status_code == updated.status_code == live.status_code == 404
    assert read.json()["object_type"] == "order"


# --- status and shipment ------------------------------------------------------------------


def test_the_status_of_a_payments_order_by_reference(shop, payment):
    response = shop.client().post(
        f"/v1/payments/{payment.public_id}/orders/A-1/status",
        {"status": "shipped", "is_shipped": True},
        format="json",
    )

    order = payment.current_orders[0]
    order.refresh_from_db()
    assert response.status_code == 200
    assert (order.status, order.is_shipped) == ("shipped", True)
    assert PaymentEvent.objects.filter(payment=payment, kind="order_status").exists()


def test_the_status_of_an_unknown_reference_is_a_404(shop, payment):
    response = shop.client().post(
        f"/v1/payments/{payment.public_id}/orders/NOPE/status", {"status": "x"}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["object_type"] == "order"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, "status", "missing_field"),
        ({"status": 3}, "status", "invalid_type"),
        ({"status": "x", "is_shipped": "yes"}, "is_shipped", "invalid_type"),
    ],
)
def test_a_bad_status_is_named(shop, payment, body, field, code):
    response = shop.client().post(
        f"/v1/payments/{payment.public_id}/orders/A-1/status", body, format="json"
    )

    assert errors_of(response) == {field: code}


def test_v2_order_status(shop, payment):
    order = payment.current_orders[0]

    response = shop.client().post(
        f"/v2/orders/{order.public_id}/status", {"status": "delivered"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["status"] == "delivered"


def test_a_shipment_is_recorded_on_the_order(shop, payment):
    order = payment.current_orders[0]

    response = shop.client().post(
        f"/v2/orders/{order.public_id}/shipment",
        {"carrier": "Colissimo", "tracking_number": "6A123",
         "tracking_url": "https://www.laposte.fr/outils/suivre-vos-envois?code=6A123"},
        format="json",
    )  # fmt: skip

    shipped = response.json()
    assert response.status_code == 200
    assert (shipped["carrier"], shipped["tracking_number"]) == ("Colissimo", "6A123")
    assert shipped["is_shipped"] is True
    fetched = shop.client().get(f"/v1/payments/{payment.public_id}").json()
    assert fetched["orders"][0]["tracking_number"] == "6A123"
    assert PaymentEvent.objects.filter(payment=payment, kind="order_shipped").exists()


def test_a_bad_tracking_url_is_named(shop, payment):
    order = payment.current_orders[0]

    response = shop.client().post(
        f"/v2/orders/{order.public_id}/shipment",
        {"carrier": "x", "tracking_url": "javascript:alert(1)"},
        format="json",
    )

    assert errors_of(response) == {"tracking_url": "invalid_value"}


def test_a_shipment_for_another_merchants_order_is_a_404(shop, other_shop, payment):
    order = payment.current_orders[0]

    response = other_shop.client().post(
        f"/v2/orders/{order.public_id}/shipment", {"carrier": "x"}, format="json"
    )

    assert response.status_code == 404


def test_order_times_move_with_updates(shop, payment, _frozen_clock):
    order = payment.current_orders[0]
    _frozen_clock.shift(timedelta(minutes=5))

    shop.client().post(f"/v2/orders/{order.public_id}/shipment", {"carrier": "x"}, format="json")

    order.refresh_from_db()
    assert order.updated_at - order.created_at == timedelta(minutes=5)
