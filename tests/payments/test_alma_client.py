"""Alma's official Python client (PyPI alma-client 3.0.2) against a real Tranche server:
contract 9.2, steps 5 to 9 and 12 (create, fetch, list and page, update, orders on a
payment, the merchant's orders, potential fraud, SMS link)."""

import pytest
from alma_client import Client
from alma_client.entities import Order, Payment
from alma_client.entities.installment import InstallmentState
from alma_client.entities.payment import PaymentState
from alma_client.request import RequestError

from apps.payments.models import PotentialFraudFlag
from apps.verification.models import SmsMessage

CREATE = {
    "payment": {
        "purchase_amount": 45000,
        "installments_count": 3,
        "return_url": "https://shop.example/return",
        "customer_cancel_url": "https://shop.example/cancel",
        "ipn_callback_url": "https://shop.example/ipn",
        "custom_data": {"cart_id": "42"},
        "shipping_address": {"line1": "1 rue de la Paix", "postal_code": "75002",
                             "city": "Paris", "country": "FR"},
        "locale": "fr",
    },
    "customer": {"first_name": "Camille", "last_name": "Martin",
                 "email": "camille@example.com", "phone": "06 12 34 56 78"},
    "order": {"merchant_reference": "A-1"},
}  # fmt: skip


@pytest.fixture
def alma(live_server, shop):
    return Client.with_api_key(shop.test_key, api_root=live_server.url)


@pytest.fixture
def payment(alma) -> Payment:
    return alma.payments.create(CREATE)


def test_the_official_client_creates_a_payment(payment):
    assert payment.state == PaymentState.NOT_STARTED
    assert len(payment.payment_plan) == 3
    assert {i.state for i in payment.payment_plan} == {InstallmentState.PENDING}
    assert sum(i.total_amount for i in payment.payment_plan) == 45000
    assert payment.orders[0].merchant_reference == "A-1"
    assert payment.custom_data == {"cart_id": "42"}
    assert payment.customer["phone"] == "+33612345678"
    assert payment.return_url.endswith(f"?pid={payment.id}")


def test_the_official_client_fetches_and_pages_through_payments(alma, payment):
    second = alma.payments.create(CREATE)

    fetched = alma.payments.fetch(payment.id)
    page = alma.payments.fetch_all(limit=1, states=["not_started"])
    next_page = page.next_page()
    end = next_page.next_page()

    assert fetched.id == payment.id and fetched.state == PaymentState.NOT_STARTED
    assert [p.id for p in page] == [second.id]
    assert [p.id for p in next_page] == [payment.id]
    assert len(end) == 0


def test_the_official_client_updates_custom_data(alma, payment):
    updated = alma.payments.update(
        payment.id, {"payment": {"custom_data": {"cart_id": "42", "id_order": 7}}}
    )

    assert updated.custom_data == {"cart_id": "42", "id_order": 7}
    assert alma.payments.fetch(payment.id).custom_data == {"cart_id": "42", "id_order": 7}


def test_the_official_client_adds_sets_and_gets_orders(alma, payment):
    added = alma.payments.add_orders_to(payment.id, {"merchant_reference": "A-2"})
    replaced = alma.payments.set_orders_for(
        payment.id, [{"merchant_reference": "B-1"}, {"merchant_reference": "B-2"}]
    )
    listed = alma.payments.get_orders_for(payment.id)

    assert all(isinstance(order, Order) for order in added + replaced + listed)
    assert [o.merchant_reference for o in added] == ["A-1", "A-2"]
    assert [o.merchant_reference for o in replaced] == ["B-1", "B-2"]
    assert [o.id for o in listed] == [o.id for o in replaced]


def test_the_official_client_reads_and_updates_the_merchants_orders(alma, payment):
    alma.payments.add_orders_to(payment.id, {"merchant_reference": "A-2"})

    page = alma.orders.fetch_all(limit=1)
    rest = page.next_page()
    fetched = alma.orders.fetch(page[0].id)
    updated = alma.orders.update(page[0].id, {"comment": "x"})
    by_reference = alma.orders.fetch_all(merchant_reference="A-1")

    assert [o.merchant_reference for o in page] == ["A-2"]
    assert [o.merchant_reference for o in rest] == ["A-1"]
    assert fetched.payment == payment.id
    assert updated.comment == "x"
    assert [o.merchant_reference for o in by_reference] == ["A-1"]


def test_the_official_client_flags_a_potential_fraud(alma, payment):
    alma.payments.flag_as_potential_fraud(payment.id, reason="amount_mismatch")
    alma.payments.flag_as_potential_fraud(payment.id)

    assert sorted(PotentialFraudFlag.objects.values_list("reason", flat=True)) == [
        "",
        "amount_mismatch",
    ]


def test_the_official_client_sends_the_payment_link_by_sms(alma, payment):
    alma.payments.send_sms(payment.id)

    message = SmsMessage.objects.get()
    assert message.phone == "+33612345678"
    assert payment.url in message.text


def test_the_official_client_gets_a_404_for_an_unknown_payment(alma):
    with pytest.raises(RequestError) as error:
        alma.payments.fetch("payment_" + "0" * 34)

    assert error.value.response.status_code == 404
    assert "No payment with id" in str(error.value)


def test_the_official_client_gets_our_message_on_a_bad_payment(alma):
    with pytest.raises(RequestError) as malformed:
        alma.payments.create({"payment": {"purchase_amount": "450"}})
    with pytest.raises(RequestError) as not_eligible:
        alma.payments.create({"payment": {"purchase_amount": 100}})

    assert malformed.value.response.status_code == 400
    assert "payment.purchase_amount" in str(malformed.value)
    assert not_eligible.value.response.status_code == 403
    assert "payment.purchase_amount" in str(not_eligible.value)
