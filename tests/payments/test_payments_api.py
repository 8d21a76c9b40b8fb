"""The merchant Payments API (contract sections 2 and 3): create, fetch, list, edit,
cancel, trigger, potential fraud, SMS links and business events, with every error path."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.merchants.models import FeePlan, Merchant
from apps.payments.api.payment_serializers import (
    AddressSerializer,
    CustomerSerializer,
    InstalmentSerializer,
    OrderSerializer,
    PaymentSerializer,
)
from apps.payments.models import (
    BusinessEvent,
    Customer,
    Instalment,
    Payment,
    PaymentEvent,
    PaymentState,
    PotentialFraudFlag,
)
from apps.verification.models import SmsMessage
from tests.conftest import make_shop
from tests.payments.builders import ADDRESS, create_request, payment_create_for

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
# 31 January: the later instalments fall on month ends (28 Feb, 31 Mar); Q1 2026's usury
# rates are in the table.
PURCHASE_MOMENT = datetime(2026, 1, 31, 10, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def _purchase_day():
    with time_machine.travel(PURCHASE_MOMENT, tick=False):
        yield


def create(client, body=None, **headers):
    return client.post("/v1/payments", body or create_request(), format="json", **headers)


def field_errors(response) -> dict[str, str]:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error_code"] == "validation_error"
    assert body["message"]
    return {error["field"]: error["error_code"] for error in body["errors"]}


def refusal_errors(response) -> dict[str, str]:
    """A well-formed payment the merchant may not create: 403, naming the fields."""
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error_code"] == "merchant_cant_create_payments"
    assert body["message"]
    return {error["field"]: error["error_code"] for error in body["errors"]}


def stored(payment_json) -> Payment:
    return Payment.objects.get(public_id=payment_json["id"])


# --- create -------------------------------------------------------------------------------


def test_creating_a_payment_answers_it_with_its_plan_and_orders(shop):
    response = create(shop.client())

    assert response.status_code == 200
    payment = response.json()
    assert payment["id"].startswith("payment_") and len(payment["id"]) == len("payment_") + 34
    assert payment["state"] == "not_started"
    assert payment["kind"] == "P3X"
    assert payment["purchase_amount"] == 45000
    assert [i["purchase_amount"] for i in payment["payment_plan"]] == [15000, 15000, 15000]
    assert {i["state"] for i in payment["payment_plan"]} == {"pending"}
    assert payment["amount_left_to_pay"] == 45000
    assert payment["url"] == f"{settings.PUBLIC_BASE_URL}/checkout/{payment['id']}"
    assert payment["return_url"] == f"https://shop.example/return?pid={payment['id']}"
    assert payment["ipn_callback_url"] == f"https://shop.example/ipn?pid={payment['id']}"
    assert payment["custom_data"] == {"cart_id": "42"}
    assert [o["merchant_reference"] for o in payment["orders"]] == ["A-1001"]
    assert payment["orders"][0]["payment"] == payment["id"]
    assert payment["merchant_id"] == shop.merchant.public_id
    assert payment["merchant_name"] == shop.merchant.legal_name
    assert payment["customer"]["email"] == "camille.martin@example.com"
    assert payment["customer"]["id"].startswith("customer_")


def test_the_answer_has_exactly_the_documented_fields(shop):
    body = create_request(customer={"email": "a@b.example", "addresses": [ADDRESS]})

    payment = create(shop.client(), body).json()

    assert list(payment) == list(PaymentSerializer().fields)
    assert list(payment["payment_plan"][0]) == list(InstalmentSerializer().fields)
    assert list(payment["orders"][0]) == list(OrderSerializer().fields)
    assert list(payment["customer"]) == list(CustomerSerializer().fields)
    assert set(payment["shipping_address"]) == set(AddressSerializer().fields)
    assert set(payment["customer"]["addresses"][0]) == set(AddressSerializer().fields)


def test_ints_are_never_null_and_custom_data_never_null(shop):
    body = {"payment": {"purchase_amount": 45000}}

    payment = create(shop.client(), body).json()

    for name in ("customer_fee", "customer_interest", "deferred_days", "deferred_months",
                 "amount_already_refunded", "installments_count"):  # fmt: skip
        assert isinstance(payment[name], int), name
    assert payment["custom_data"] == {}
    assert payment["expired_at"] is None


def test_the_plan_is_written_once_as_instalment_rows(shop):
    payment = stored(create(shop.client()).json())

    rows = list(Instalment.objects.filter(payment=payment).order_by("number"))

    assert [r.number for r in rows] == [1, 2, 3]
    assert [r.original_purchase_amount.amount for r in rows] == [150, 150, 150]
    assert [r.due_date.isoformat() for r in rows] == ["2026-01-31", "2026-02-28", "2026-03-31"]
    assert payment.purchase_date.isoformat() == "2026-01-31"
    assert PaymentEvent.objects.filter(payment=payment, kind="created").count() == 1


def test_due_dates_are_noon_in_paris_on_each_due_day(shop):
    plan = create(shop.client()).json()["payment_plan"]

    assert [datetime.fromtimestamp(i["due_date"], PARIS) for i in plan] == [
        datetime(2026, 1, 31, 12, tzinfo=PARIS),
        datetime(2026, 2, 28, 12, tzinfo=PARIS),
        datetime(2026, 3, 31, 12, tzinfo=PARIS),
    ]


def test_the_plan_matches_what_eligibility_announced(shop):
    client = shop.client()
    announced = client.post(
        "/v2/payments/eligibility",
        {"purchase_amount": 100000, "queries": [{"installments_count": 10}]},
        format="json",
    ).json()[0]

    payment = create(client, create_request(purchase_amount=100000, installments_count=10)).json()

    assert payment["annual_interest_rate"] == announced["annual_interest_rate"] > 0
    assert payment["customer_interest"] == announced["customer_interest"] > 0
    assert [(i["due_date"], i["total_amount"]) for i in payment["payment_plan"]] == [
        (i["due_date"], i["total_amount"]) for i in announced["payment_plan"]
    ]


def test_the_merchant_fee_includes_french_vat(shop):
    payment = create(shop.client()).json()  # 3x: 350 bps of 450 EUR

    assert payment["merchant_target_fee"] == 1575
    assert payment["fees"] == {"merchant": {"total": 1575, "total_excluding_tax": 1313, "tax": 262}}


def test_only_the_purchase_amount_is_required_and_the_merchant_defaults_apply(shop):
    Merchant.objects.filter(pk=shop.merchant.pk).update(
        return_url="https://shop.example/default-return",
        ipn_callback_url="https://shop.example/default-ipn",
        payment_expiry_minutes=90,
    )
    shop.merchant.refresh_from_db()

    payment = create(shop.client(), {"payment": {"purchase_amount": 30000}}).json()

    assert payment["installments_count"] == 3
    assert payment["return_url"].startswith("https://shop.example/default-return?pid=")
    assert payment["ipn_callback_url"].startswith("https://shop.example/default-ipn?pid=")
    assert payment["customer_cancel_url"] is None
    assert payment["orders"] == []
    assert stored(payment).expires_at == timezone.now() + timedelta(minutes=90)


def test_expires_after_is_in_minutes(shop):
    payment = create(shop.client(), create_request(expires_after=20)).json()

    assert stored(payment).expires_at == timezone.now() + timedelta(minutes=20)


def test_a_url_with_a_query_keeps_it_and_gets_pid(shop):
    body = create_request(return_url="https://shop.example/index.php?fc=module&module=alma")

    payment = create(shop.client(), body).json()

    assert payment["return_url"] == (
        f"https://shop.example/index.php?fc=module&module=alma&pid={payment['id']}"
    )


def test_a_url_with_a_bracket_in_its_host_is_refused_not_a_server_error(shop):
    body = create_request(ipn_callback_url="http://[a")

    response = shop.client().post("/v1/payments", body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "payment.ipn_callback_url"


def test_a_pay_later_plan(shop):
    body = create_request(installments_count=1, deferred_days=30)

    payment = create(shop.client(), body).json()

    assert payment["kind"] == "PAY_LATER"
    assert len(payment["payment_plan"]) == 1
    assert payment["payment_plan"][0]["time_delta_from_start"] == {"days": 30, "months": 0}
    due = datetime.fromtimestamp(payment["payment_plan"][0]["due_date"], PARIS).date()
    assert due.isoformat() == "2026-03-02"


def test_an_in_store_payment_uses_the_in_store_plans(shop):
    online = create(shop.client(), create_request(installments_count=5))
    in_store = create(shop.client(), create_request(installments_count=5, origin="pos_device"))

    assert refusal_errors(online) == {"payment.installments_count": "invalid_value"}
    assert in_store.status_code == 200
    assert in_store.json()["origin"] == "pos_device"


def test_orders_come_from_order_and_orders(shop):
    body = create_request(
        order={"merchant_reference": "A-1"},
        orders=[{"merchant_reference": "A-2", "data": {"k": [1, 2]}}, {"comment": "gift"}],
    )

    orders = create(shop.client(), body).json()["orders"]

    assert [o["merchant_reference"] for o in orders] == ["A-1", "A-2", None]
    assert orders[1]["data"] == {"k": [1, 2]}
    assert orders[2]["comment"] == "gift"


def test_the_cart_and_unknown_keys_are_kept_as_sent(shop):
    cart = {
        "items": [{"sku": "S1", "title": "Lamp", "quantity": 1, "unit_price": 45000,
                   "line_price": 45000, "categories": ["home"], "brand_new_field": "x"}],
        "discounts": [],
    }  # fmt: skip
    body = create_request(cart=cart, preferred_payment_method="card")
    body["something_new"] = {"a": 1}

    payment = create(shop.client(), body).json()

    assert payment["cart"] == cart


def test_phone_numbers_are_stored_in_e164(shop):
    body = create_request(customer={"email": "x@y.example", "phone": "06 12 34 56 78"})

    payment = create(shop.client(), body).json()

    assert payment["customer"]["phone"] == "+33612345678"


# --- the customer -------------------------------------------------------------------------


def test_the_same_email_in_the_same_mode_is_the_same_customer(shop):
    first = create(shop.client(), create_request(customer={"email": "Lea@Example.com"})).json()
    second = create(shop.client(), create_request(customer={"email": "lea@example.com"})).json()
    live = create(
        shop.client(live=True), create_request(customer={"email": "lea@example.com"})
    ).json()

    assert first["customer"]["id"] == second["customer"]["id"]
    assert live["customer"]["id"] != first["customer"]["id"]
    assert Customer.objects.get(public_id=first["customer"]["id"]).email == "lea@example.com"


def test_without_an_email_each_payment_has_its_own_customer(shop):
    first = create(shop.client(), create_request(customer={"first_name": "A"})).json()
    second = create(shop.client(), create_request(customer=None)).json()

    assert first["customer"]["id"] != second["customer"]["id"]


def test_names_are_filled_in_only_where_blank(shop):
    create(shop.client(), create_request(customer={"email": "n@example.com", "last_name": "Roy"}))
    create(
        shop.client(),
        create_request(customer={"email": "n@example.com", "first_name": "Noa", "last_name": "X"}),
    )

    customer = Customer.objects.get(email="n@example.com")
    assert (customer.first_name, customer.last_name) == ("Noa", "Roy")


def test_a_merchant_reads_only_what_it_sent_about_a_customer(shop, other_shop):
    create(shop.client(), create_request(customer={"email": "s@example.com", "first_name": "Sam"}))

    other = create(other_shop.client(), create_request(customer={"email": "s@example.com"})).json()

    assert other["customer"]["first_name"] is None


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payment_fields", "expected"),
    [
        ({"purchase_amount": 100}, {"payment.purchase_amount": "invalid_value"}),
        ({"purchase_amount": 300000}, {"payment.purchase_amount": "invalid_value"}),
        ({"installments_count": 7}, {"payment.installments_count": "invalid_value"}),
        (
            {"installments_count": 1, "deferred_days": 15, "deferred_months": 1},
            {"payment.installments_count": "invalid_value"},
        ),
        (
            {"billing_address": {"country": "US"}},
            {"payment.billing_address.country": "invalid_value"},
        ),
        (
            {"shipping_address": {"country": "JP"}},
            {"payment.shipping_address.country": "invalid_value"},
        ),
    ],
)
def test_a_purchase_that_is_not_eligible_is_refused_naming_the_field(
    shop, payment_fields, expected
):
    response = create(shop.client(), create_request(**payment_fields))

    assert refusal_errors(response) == expected
    assert not Payment.objects.exists()


def test_an_excluded_category_is_refused(shop):
    Merchant.objects.filter(pk=shop.merchant.pk).update(excluded_categories=["Weapons"])
    shop.merchant.refresh_from_db()
    cart = {"items": [{"title": "Knife", "categories": ["weapons"]}]}

    response = create(shop.client(), create_request(cart=cart))

    assert refusal_errors(response) == {"payment.cart": "invalid_value"}


def test_a_credit_above_the_usury_cap_is_refused(shop):
    FeePlan.objects.filter(merchant=shop.merchant, installments_count=12, kind="general").update(
        customer_lending_rate=3000
    )

    response = create(shop.client(), create_request(purchase_amount=100000, installments_count=12))

    assert refusal_errors(response) == {"payment.installments_count": "invalid_value"}
    assert "APR" in response.json()["errors"][0]["message"]


def test_a_disallowed_plan_is_refused(shop):
    FeePlan.objects.filter(merchant=shop.merchant, installments_count=3, kind="general").update(
        allowed=False
    )

    response = create(shop.client())

    assert refusal_errors(response) == {"payment.installments_count": "invalid_value"}


@pytest.mark.parametrize(
    ("body_change", "field", "code"),
    [
        (lambda b: b.pop("payment"), "payment", "missing_field"),
        (lambda b: b["payment"].pop("purchase_amount"), "payment.purchase_amount", "missing_field"),
        (lambda b: b["payment"].update(purchase_amount="45000"), "payment.purchase_amount",
         "invalid_type"),
        (lambda b: b["payment"].update(purchase_amount=450.0), "payment.purchase_amount",
         "invalid_type"),
        (lambda b: b["payment"].update(purchase_amount=True), "payment.purchase_amount",
         "invalid_type"),
        (lambda b: b["payment"].update(purchase_amount=0), "payment.purchase_amount",
         "invalid_value"),
        (lambda b: b["payment"].update(installments_count=13), "payment.installments_count",
         "invalid_value"),
        (lambda b: b["payment"].update(return_url="ftp://shop.example/r"), "payment.return_url",
         "invalid_value"),
        (lambda b: b["payment"].update(ipn_callback_url="javascript:alert(1)"),
         "payment.ipn_callback_url", "invalid_value"),
        (lambda b: b["payment"].update(return_url="https://x.example/" + "a" * 1000),
         "payment.return_url", "too_long"),
        (lambda b: b["payment"].update(custom_data=["a"]), "payment.custom_data",
         "invalid_type"),
        (lambda b: b["payment"].update(locale="fr FR!"), "payment.locale", "invalid_value"),
        (lambda b: b["payment"].update(origin="mars"), "payment.origin", "invalid_value"),
        (lambda b: b["payment"].update(expires_after=0), "payment.expires_after",
         "invalid_value"),
        (lambda b: b["payment"].update(expires_after=43201), "payment.expires_after",
         "invalid_value"),
        (lambda b: b["payment"].update(capture_method="manual"), "payment.capture_method",
         "invalid_value"),
        (lambda b: b["payment"]["shipping_address"].update(country="XX"),
         "payment.shipping_address.country", "invalid_value"),
        (lambda b: b["payment"].update(cart={"items": [{"title": "t" * 501}]}),
         "payment.cart.items.0.title", "too_long"),
        (lambda b: b["payment"].update(cart={"items": [{"quantity": "2"}]}),
         "payment.cart.items.0.quantity", "invalid_type"),
        (lambda b: b["customer"].update(email="not-an-email"), "customer.email",
         "invalid_value"),
        (lambda b: b["customer"].update(phone="12"), "customer.phone", "invalid_value"),
        (lambda b: b["customer"].update(birth_date="17/05/1990"), "customer.birth_date",
         "invalid_value"),
        (lambda b: b["customer"].update(birth_date="1990-02-30"), "customer.birth_date",
         "invalid_value"),
        (lambda b: b["customer"].update(first_name=["A"]), "customer.first_name",
         "invalid_type"),
        (lambda b: b.update(order={"merchant_reference": "r" * 201}),
         "order.merchant_reference", "too_long"),
        (lambda b: b.update(orders=[{}, {"merchant_url": "file:///etc/passwd"}]),
         "orders.1.merchant_url", "invalid_value"),
    ],
)  # fmt: skip
def test_a_bad_field_is_named_in_a_400(shop, body_change, field, code):
    body = create_request()
    body_change(body)

    response = create(shop.client(), body)

    assert field_errors(response) == {field: code}
    assert not Payment.objects.exists()


def test_a_body_that_is_not_an_object_is_a_400(shop):
    response = shop.client().post("/v1/payments", [1, 2], format="json")

    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_error"


def test_a_deferred_trigger_needs_a_plan_that_allows_it(shop):
    body = create_request(deferred="trigger", deferred_description="At shipment")

    refused = create(shop.client(), body)
    FeePlan.objects.filter(merchant=shop.merchant, installments_count=3, kind="general").update(
        deferred_trigger_limit_days=30
    )
    accepted = create(shop.client(), body)

    assert refusal_errors(refused) == {"payment.deferred": "invalid_value"}
    assert accepted.json()["deferred_trigger"] is True
    assert accepted.json()["deferred_trigger_description"] == "At shipment"
    assert accepted.json()["deferred_trigger_applied"] is None


# --- auth, status, scoping, idempotency ---------------------------------------------------


def test_without_a_key_or_with_a_bad_one_it_is_a_401(shop, anonymous):
    anonymous_response = create(anonymous)
    anonymous.credentials(HTTP_AUTHORIZATION="Alma-Auth sk_test_" + "x" * 24)
    bad_key = create(anonymous)

    assert anonymous_response.status_code == bad_key.status_code == 401
    assert bad_key.json()["error_code"] == "unauthorized"


@pytest.mark.parametrize("status", [Merchant.Status.PENDING, Merchant.Status.SUSPENDED])
def test_an_inactive_merchant_gets_a_403(status):
    inactive = make_shop(status=status)

    response = create(inactive.client())

    assert response.status_code == 403
    assert response.json()["error_code"] == f"merchant_{status}"


def test_the_service_refuses_an_inactive_merchant_itself(db):
    pending = make_shop(status=Merchant.Status.PENDING)

    with pytest.raises(Exception) as error:
        payment_create_for(pending)

    assert error.value.extra["errors"][0]["error_code"] == "merchant_cant_create_payments"


def test_another_merchants_payment_is_not_found(shop, other_shop):
    payment = create(shop.client()).json()

    response = other_shop.client().get(f"/v1/payments/{payment['id']}")

    assert response.status_code == 404
    assert response.json() == {
        "error_code": "not_found",
        "message": f"No payment with id {payment['id']!r}.",
        "object_type": "payment",
        "value": payment["id"],
    }


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("post", ""),
        ("get", "/orders"),
        ("put", "/orders"),
        ("post", "/orders"),
        ("post", "/potential-fraud"),
        ("put", "/cancel"),
        ("post", "/trigger"),
        ("post", "/send-sms"),
        ("post", "/orders/A-1001/status"),
    ],
)
def test_a_test_key_never_reaches_a_live_payment_nor_another_merchant(
    shop, other_shop, method, suffix
):
    live = payment_create_for(shop, livemode=True)
    body = {"orders": [{}], "status": "shipped"}

    test_key = getattr(shop.client(), method)(
        f"/v1/payments/{live.public_id}{suffix}", body, format="json"
    )
    other = getattr(other_shop.client(live=True), method)(
        f"/v1/payments/{live.public_id}{suffix}", body, format="json"
    )

    assert test_key.status_code == other.status_code == 404
    assert test_key.json()["object_type"] == "payment"


def test_ids_work_with_or_without_their_prefix(shop):
    payment = create(shop.client()).json()

    bare = shop.client().get(f"/v1/payments/{payment['id'].removeprefix('payment_')}")

    assert bare.status_code == 200
    assert bare.json()["id"] == payment["id"]


def test_an_idempotency_key_replays_the_first_answer(shop):
    client = shop.client()

    first = create(client, HTTP_IDEMPOTENCY_KEY="create-1")
    again = create(client, HTTP_IDEMPOTENCY_KEY="create-1")
    other_body = create(client, create_request(purchase_amount=50000),
                        HTTP_IDEMPOTENCY_KEY="create-1")  # fmt: skip

    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert other_body.status_code == 422
    assert Payment.objects.count() == 1


def test_without_an_idempotency_key_each_call_creates_a_payment(shop):
    create(shop.client())
    create(shop.client())

    assert Payment.objects.count() == 2


# --- fetch and list -----------------------------------------------------------------------


def test_fetching_answers_what_creation_answered(shop):
    created = create(shop.client()).json()

    fetched = shop.client().get(f"/v1/payments/{created['id']}").json()

    assert fetched == created


def test_an_unknown_payment_is_a_404(shop):
    response = shop.client().get("/v1/payments/payment_" + "0" * 34)

    assert response.status_code == 404
    assert response.json()["object_type"] == "payment"


def make_payments(shop, count: int, **fields) -> list[str]:
    ids = []
    for minute in range(count):
        with time_machine.travel(PURCHASE_MOMENT + timedelta(minutes=minute), tick=False):
            ids.append(payment_create_for(shop, **fields).public_id)
    return ids


def test_the_list_is_newest_first_and_pages_with_starting_after(shop):
    ids = make_payments(shop, 5)
    client = shop.client()

    first = client.get("/v1/payments?limit=2").json()
    second = client.get(f"/v1/payments?limit=2&starting_after={first['data'][-1]['id']}").json()
    bare_cursor = second["data"][-1]["id"].removeprefix("payment_")
    last = client.get(f"/v1/payments?limit=2&starting_after={bare_cursor}").json()
    after_end = client.get(f"/v1/payments?limit=2&starting_after={ids[0]}").json()

    newest_first = ids[::-1]
    assert [p["id"] for p in first["data"]] == newest_first[:2] and first["has_more"]
    assert [p["id"] for p in second["data"]] == newest_first[2:4] and second["has_more"]
    assert [p["id"] for p in last["data"]] == newest_first[4:] and not last["has_more"]
    assert after_end == {"data": [], "has_more": False}


def test_payments_created_in_the_same_instant_page_without_loss(shop):
    ids = [payment_create_for(shop).public_id for _ in range(5)]  # the clock is frozen
    client = shop.client()

    seen, cursor = [], ""
    for _ in range(5):
        page = client.get(f"/v1/payments?limit=2{cursor}").json()
        seen += [p["id"] for p in page["data"]]
        if not page["has_more"]:
            break
        cursor = f"&starting_after={page['data'][-1]['id']}"

    assert sorted(seen) == sorted(ids)
    assert len(seen) == 5


def test_the_list_defaults_to_20(shop):
    make_payments(shop, 21)

    page = shop.client().get("/v1/payments").json()

    assert len(page["data"]) == 20
    assert page["has_more"] is True


def test_an_unknown_cursor_gives_an_empty_last_page(shop):
    make_payments(shop, 2)

    page = shop.client().get("/v1/payments?starting_after=payment_nope").json()

    assert page == {"data": [], "has_more": False}


def test_the_list_filters_by_states(shop):
    keep, stop, other = make_payments(shop, 3)
    Payment.objects.filter(public_id=stop).update(state=PaymentState.STOPPED)
    Payment.objects.filter(public_id=other).update(state=PaymentState.PAID)

    both = shop.client().get("/v1/payments?state=not_started,stopped").json()
    paid = shop.client().get("/v1/payments?state=paid").json()

    assert [p["id"] for p in both["data"]] == [stop, keep]
    assert [p["id"] for p in paid["data"]] == [other]


@pytest.mark.parametrize(
    "query", ["limit=101", "limit=0", "limit=abc", "limit=-1", "state=lost", "state=paid,"]
)
def test_a_bad_list_query_is_a_400_naming_the_parameter(shop, query):
    response = shop.client().get(f"/v1/payments?{query}")

    assert list(field_errors(response)) == [query.split("=")[0]]


def test_the_list_shows_only_the_merchants_payments_in_the_keys_mode(shop, other_shop):
    mine = make_payments(shop, 1)
    payment_create_for(shop, livemode=True)
    payment_create_for(other_shop)

    page = shop.client().get("/v1/payments").json()

    assert [p["id"] for p in page["data"]] == mine


def test_list_items_are_whole_payments_with_what_the_cli_reads(shop):
    make_payments(shop, 1)

    item = shop.client().get("/v1/payments").json()["data"][0]

    assert list(item) == list(PaymentSerializer().fields)
    assert item["amount_left_to_pay"] == 45000
    assert item["origin"] == "online"
    assert isinstance(item["updated"], int)


def test_the_list_costs_the_same_queries_for_2_or_12_payments(shop):
    client = shop.client()
    make_payments(shop, 2)
    client.get("/v1/payments")  # warm the key cache
    with CaptureQueriesContext(connection) as small:
        client.get("/v1/payments")
    make_payments(shop, 10)

    with CaptureQueriesContext(connection) as large:
        assert len(client.get("/v1/payments").json()["data"]) == 12

    assert len(large.captured_queries) == len(small.captured_queries) <= 4


# --- edit ---------------------------------------------------------------------------------


def edit(shop, payment_id, body, **headers):
    return shop.client().post(f"/v1/payments/{payment_id}", body, format="json", **headers)


def test_editing_replaces_custom_data_and_changes_urls_and_addresses(shop):
    payment = create(shop.client()).json()

    response = edit(
        shop,
        payment["id"],
        {
            "payment": {
                "custom_data": {"id_order": 7},
                "return_url": "https://shop.example/new-return",
                "locale": "en",
                "shipping_address": {"city": "Lyon", "country": "fr"},
            }
        },
    )

    edited = response.json()
    assert response.status_code == 200
    assert edited["custom_data"] == {"id_order": 7}
    assert edited["return_url"] == f"https://shop.example/new-return?pid={payment['id']}"
    assert edited["ipn_callback_url"] == payment["ipn_callback_url"]
    assert edited["locale"] == "en"
    assert edited["shipping_address"]["city"] == "Lyon"
    assert edited["shipping_address"]["country"] == "FR"
    assert edited["billing_address"] == payment["billing_address"]
    assert edited["payment_plan"] == payment["payment_plan"]
    assert PaymentEvent.objects.filter(payment__public_id=payment["id"], kind="updated").count()


def test_editing_the_customer_before_acceptance(shop):
    payment = create(shop.client()).json()

    edited = edit(
        shop, payment["id"], {"customer": {"first_name": "Léa", "phone": "07 81 23 45 67"}}
    ).json()

    assert edited["customer"]["first_name"] == "Léa"
    assert edited["customer"]["phone"] == "+33781234567"
    assert edited["customer"]["last_name"] == "Martin"


def test_the_customer_cannot_be_edited_once_accepted(shop):
    payment = create(shop.client()).json()
    Payment.objects.filter(public_id=payment["id"]).update(
        state=PaymentState.IN_PROGRESS, accepted_at=timezone.now()
    )

    response = edit(shop, payment["id"], {"customer": {"first_name": "Eve"}})

    assert field_errors(response) == {"customer": "invalid_value"}


def test_the_plan_cannot_be_edited_but_may_be_echoed(shop):
    payment = create(shop.client()).json()

    changed = edit(
        shop, payment["id"], {"payment": {"purchase_amount": 1, "installments_count": 4}}
    )
    echoed = edit(shop, payment["id"], {"payment": {"purchase_amount": 45000}})

    assert field_errors(changed) == {
        "payment.purchase_amount": "invalid_value",
        "payment.installments_count": "invalid_value",
    }
    assert echoed.status_code == 200


def test_a_bad_edit_is_named(shop):
    payment = create(shop.client()).json()

    response = edit(shop, payment["id"], {"payment": {"custom_data": "x", "return_url": "nope"}})

    assert field_errors(response) == {
        "payment.custom_data": "invalid_type",
        "payment.return_url": "invalid_value",
    }


def test_an_edit_of_another_merchants_payment_is_a_404(shop, other_shop):
    payment = create(shop.client()).json()

    response = edit(other_shop, payment["id"], {"payment": {"custom_data": {}}})

    assert response.status_code == 404
    assert stored(payment).custom_data == {"cart_id": "42"}


# --- cancel, trigger ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "post"])
def test_cancelling_stops_the_payment(shop, method):
    payment = create(shop.client()).json()

    response = getattr(shop.client(), method)(f"/v1/payments/{payment['id']}/cancel")

    assert response.status_code == 200
    assert response.json()["state"] == "stopped"
    assert response.json()["amount_left_to_pay"] == 0
    assert response.json()["processing_status"] == "canceled"
    assert stored(payment).cancelled_at == timezone.now()


def test_cancelling_twice_answers_the_cancelled_payment(shop):
    payment = create(shop.client()).json()
    shop.client().put(f"/v1/payments/{payment['id']}/cancel")

    again = shop.client().put(f"/v1/payments/{payment['id']}/cancel")

    assert again.status_code == 200
    assert again.json()["state"] == "stopped"
    assert PaymentEvent.objects.filter(payment__public_id=payment["id"], kind="cancelled").count()


@pytest.mark.parametrize("state", [PaymentState.IN_PROGRESS, PaymentState.PAID])
def test_an_accepted_payment_cannot_be_cancelled(shop, state):
    payment = create(shop.client()).json()
    Payment.objects.filter(public_id=payment["id"]).update(state=state)

    response = shop.client().put(f"/v1/payments/{payment['id']}/cancel")

    assert response.status_code == 409
    assert response.json()["error_code"] == "invalid_payment_state"


def test_an_expired_payment_cannot_be_cancelled(shop):
    payment = create(shop.client(), create_request(expires_after=5)).json()
    from apps.payments.services.payments import payments_expire

    payments_expire(now=timezone.now() + timedelta(minutes=6))

    response = shop.client().put(f"/v1/payments/{payment['id']}/cancel")
    fetched = shop.client().get(f"/v1/payments/{payment['id']}").json()

    assert response.status_code == 409
    assert fetched["expired_at"] == int((timezone.now() + timedelta(minutes=6)).timestamp())


def test_trigger_is_refused_for_a_payment_without_deferred_trigger(shop):
    payment = create(shop.client()).json()

    response = shop.client().post(f"/v1/payments/{payment['id']}/trigger")

    assert response.status_code == 409


def test_trigger_applies_once(shop):
    FeePlan.objects.filter(merchant=shop.merchant, installments_count=3, kind="general").update(
        deferred_trigger_limit_days=30
    )
    payment = create(shop.client(), create_request(deferred="trigger")).json()

    first = shop.client().post(f"/v1/payments/{payment['id']}/trigger").json()
    with time_machine.travel(PURCHASE_MOMENT + timedelta(hours=1), tick=False):
        second = shop.client().post(f"/v1/payments/{payment['id']}/trigger").json()

    assert first["deferred_trigger_applied"] == int(timezone.now().timestamp())
    assert second["deferred_trigger_applied"] == first["deferred_trigger_applied"]


# --- potential fraud, SMS, business events ------------------------------------------------


def test_a_potential_fraud_report_is_recorded(shop):
    payment = create(shop.client()).json()

    with_reason = shop.client().post(
        f"/v1/payments/{payment['id']}/potential-fraud",
        {"reason": "amount_mismatch - order: 12€ vs payment: 450€"},
        format="json",
    )
    without_body = shop.client().post(f"/v1/payments/{payment['id']}/potential-fraud")

    assert with_reason.status_code == without_body.status_code == 200
    assert with_reason.json() == {}
    assert sorted(PotentialFraudFlag.objects.values_list("reason", flat=True)) == [
        "",
        "amount_mismatch - order: 12€ vs payment: 450€",
    ]
    assert PaymentEvent.objects.filter(kind="potential_fraud").count() == 2


def test_a_potential_fraud_reason_must_be_a_short_string(shop):
    payment = create(shop.client()).json()

    response = shop.client().post(
        f"/v1/payments/{payment['id']}/potential-fraud", {"reason": 3}, format="json"
    )

    assert field_errors(response) == {"reason": "invalid_type"}


def send_sms(shop, payment_id):
    return shop.client().post(f"/v1/payments/{payment_id}/send-sms")


def test_send_sms_texts_the_payment_link_in_the_payments_language(shop):
    french = create(shop.client()).json()
    english = create(shop.client(), create_request(locale="en_GB")).json()

    first = send_sms(shop, french["id"])
    second = send_sms(shop, french["id"])
    send_sms(shop, english["id"])

    assert first.status_code == second.status_code == 200
    assert first.json() == {}
    texts = dict(SmsMessage.objects.filter(key__contains=french["id"]).values_list("key", "text"))
    assert set(texts) == {f"payment:{french['id']}:link:1", f"payment:{french['id']}:link:2"}
    text = texts[f"payment:{french['id']}:link:1"]
    assert text.startswith(shop.merchant.legal_name)
    assert "450,00 €" in text and french["url"] in text
    message = SmsMessage.objects.get(key__contains=english["id"])
    assert message.phone == "+33612345678"
    assert "€450.00" in message.text and "3 instalments" in message.text
    assert message.livemode is False


def test_send_sms_is_refused_when_the_merchant_has_not_enabled_it(shop):
    Merchant.objects.filter(pk=shop.merchant.pk).update(sms_payment_links=False)
    payment = create(shop.client()).json()

    response = send_sms(shop, payment["id"])

    assert response.status_code == 403
    assert response.json()["error_code"] == "sms_not_enabled"
    assert not SmsMessage.objects.exists()


def test_send_sms_needs_a_customer_phone(shop):
    payment = create(shop.client(), create_request(customer={"email": "np@example.com"})).json()

    response = send_sms(shop, payment["id"])

    assert field_errors(response) == {"customer.phone": "missing_field"}


def test_send_sms_refuses_a_landline(shop):
    body = create_request(customer={"email": "l@example.com", "phone": "01 42 68 53 00"})
    payment = create(shop.client(), body).json()

    response = send_sms(shop, payment["id"])

    assert field_errors(response) == {"customer.phone": "invalid_value"}


def test_send_sms_is_a_409_once_the_payment_cannot_be_paid(shop):
    payment = create(shop.client()).json()
    shop.client().put(f"/v1/payments/{payment['id']}/cancel")

    response = send_sms(shop, payment["id"])

    assert response.status_code == 409


def test_business_events_are_stored(shop):
    response = shop.client().post(
        "/v1/me/business-events",
        {"event_type": "order_confirmed", "is_alma_p1x": False, "is_alma_bnpl": True,
         "was_bnpl_eligible": True, "order_id": 12, "cart_id": "c-9",
         "alma_payment_id": "payment_x"},
        format="json",
    )  # fmt: skip

    assert response.status_code == 204
    event = BusinessEvent.objects.get()
    assert (event.event_type, event.livemode, event.merchant_id) == (
        "order_confirmed",
        False,
        shop.merchant.pk,
    )
    assert event.data["order_id"] == 12


def test_a_business_event_needs_a_type(shop):
    response = shop.client().post("/v1/me/business-events", {"cart_id": 3}, format="json")

    assert field_errors(response) == {"event_type": "missing_field"}
