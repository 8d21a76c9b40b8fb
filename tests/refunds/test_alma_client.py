"""Alma's official Python client (PyPI alma-client) refunding against a real Tranche server:
``payments.refund`` partially, then fully (``full_refund=True``), and too much."""

from datetime import UTC, datetime

import pytest
from alma_client import Client
from alma_client.entities import Payment
from alma_client.entities.installment import InstallmentState
from alma_client.entities.payment import PaymentState
from alma_client.request import RequestError

from apps.common.money import to_cents
from apps.payments.models import Payment as StoredPayment
from apps.refunds.models import Refund
from tests.schedules.builders import accepted

BOUGHT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def alma(live_server, shop):
    return Client.with_api_key(shop.test_key, api_root=live_server.url)


@pytest.fixture
def bought(shop):
    """400 EUR in 4, the first 100 EUR charged."""
    return accepted(shop, when=BOUGHT, installments_count=4, amount=40_000)


def test_the_official_client_refunds_partially_then_fully(alma, bought):
    partial = alma.payments.refund(bought.public_id, 5000, merchant_reference="R-1")
    complete = alma.payments.refund(bought.public_id, 0, full_refund=True)

    assert isinstance(partial, Payment)
    assert len(partial.refunds) == 1
    assert partial.refunds[0].id.startswith("refund_")
    assert partial.refunds[0].amount == 5000
    assert partial.refunds[0].merchant_reference == "R-1"
    assert partial.amount_already_refunded == 5000
    assert partial.is_completely_refunded is False
    assert partial.state == PaymentState.IN_PROGRESS
    assert [i.purchase_amount for i in partial.payment_plan] == [10_000, 10_000, 10_000, 5_000]
    assert [i.original_purchase_amount for i in partial.payment_plan] == [10_000] * 4

    assert [r.amount for r in complete.refunds] == [5000, 35_000]
    assert sum(r.amount for r in complete.refunds) == complete.purchase_amount == 40_000
    assert complete.refunds[1].payment_refund_amount == 10_000  # the first instalment, by card
    assert complete.amount_already_refunded == 40_000
    assert complete.is_completely_refunded is True
    assert complete.state == PaymentState.PAID
    assert {i.state for i in complete.payment_plan} == {InstallmentState.PAID}
    stored = StoredPayment.objects.get(pk=bought.pk)
    assert to_cents(stored.amount_refunded) == 40_000
    assert Refund.objects.filter(payment=stored).count() == 2


def test_the_official_client_gets_a_400_naming_the_maximum_for_too_much(alma, bought):
    alma.payments.refund(bought.public_id, 30_000)

    with pytest.raises(RequestError) as too_much:
        alma.payments.refund(bought.public_id, 10_001)

    assert too_much.value.response.status_code == 400
    body = too_much.value.response.json
    assert body["errors"][0]["field"] == "amount"
    assert body["errors"][0]["maximum"] == 10_000
    assert "amount" in str(too_much.value)
    assert alma.payments.fetch(bought.public_id).amount_already_refunded == 30_000


def test_the_official_client_gets_a_404_refunding_an_unknown_payment(alma):
    with pytest.raises(RequestError) as error:
        alma.payments.refund("payment_" + "0" * 34, 100)

    assert error.value.response.status_code == 404
