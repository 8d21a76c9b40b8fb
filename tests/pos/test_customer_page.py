"""The customer's page behind the SMS link (/p/<code>): the plans, the hand-over to the hosted
checkout, and the pages of a sale that is over."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.common.money import to_cents
from apps.payments.models import Checkout, Payment
from apps.pos import services
from apps.pos.models import PosSession
from tests.payments.test_checkout import finish, pay_up_to_code
from tests.pos.helpers import PHONE_E164, started

pytestmark = pytest.mark.django_db

State = PosSession.State


def page_url(session: PosSession) -> str:
    return reverse("pos:customer", args=[session.link_code])


def checkout_url(payment: Payment) -> str:
    return reverse("payments:checkout", args=[payment.public_id])


def test_the_short_link_in_the_sms_opens_this_page(shop):
    session = started(shop)

    assert services.short_url(session).endswith(page_url(session))
    response = Client().get(page_url(session))

    assert response.status_code == 200


def test_the_page_offers_2x_3x_4x_and_pay_later_for_300_euros(shop):
    session = started(shop, amount_cents=30000)

    response = Client().get(page_url(session))

    assert response.status_code == 200
    keys = [choice.key for choice in response.context["choices"]]
    assert {"2_0_0", "3_0_0", "4_0_0"} <= set(keys)
    assert any(key.startswith("1_") for key in keys)  # pay later (15 or 30 days)
    assert keys == sorted(keys, key=lambda k: (k.startswith("1_"), k))  # splits first
    html = response.content.decode()
    for key in keys:
        assert f'name="plan" value="{key}"' in html
    assert response.context["selected"] == "3_0_0"
    assert 'value="3_0_0" checked' in html


def test_each_schedule_adds_up_to_the_amount_plus_its_fees(shop):
    session = started(shop, amount_cents=30000)

    choices = Client().get(page_url(session)).context["choices"]

    for choice in choices:
        assert sum(line.amount for line in choice.schedule) == choice.total
        assert choice.total == 30000 + choice.customer_fee + choice.customer_interest
        assert choice.total_cost == choice.customer_fee + choice.customer_interest
    by_key = {choice.key: choice for choice in choices}
    assert len(by_key["3_0_0"].schedule) == 3
    assert by_key["3_0_0"].schedule[0].today
    assert not any(line.today for line in by_key["3_0_0"].schedule[1:])
    deferred = next(choice for choice in choices if choice.deferred)
    assert len(deferred.schedule) == 1 and not deferred.schedule[0].today


def test_the_page_shows_the_merchant_the_amount_and_the_expiry(shop):
    session = started(shop, amount_cents=30000)

    html = Client().get(page_url(session)).content.decode()

    assert shop.merchant.legal_name in html
    assert "300,00\u00a0€" in html
    expiry = timezone.localtime(session.expires_at).strftime("%H:%M")
    assert 'data-testid="expiry">' in html and expiry in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert f'action="{page_url(session)}"' in html


def test_opening_the_link_tells_the_terminal_the_customer_is_on_it(shop):
    session = started(shop)
    assert session.state == State.LINK_SENT

    Client().get(page_url(session))

    session.refresh_from_db()
    assert session.state == State.CUSTOMER_IN_PROGRESS
    assert session.opened_at is not None
    assert session.payment_id is None


def test_choosing_3x_creates_the_payment_and_goes_to_the_hosted_checkout(shop):
    session = started(shop, amount_cents=30000)
    client = Client()
    client.get(page_url(session))

    response = client.post(page_url(session), {"plan": "3_0_0"})

    session.refresh_from_db()
    payment = session.payment
    assert response.status_code == 303
    assert response["Location"] == checkout_url(payment)
    assert session.state == State.CUSTOMER_IN_PROGRESS
    assert payment.installments_count == 3
    assert payment.origin == Payment.Origin.POS_DEVICE
    assert to_cents(payment.purchase_amount) == 30000
    assert payment.staff_member == "Léa"
    assert payment.locale == "fr"
    assert payment.instalments.count() == 3


def test_the_checkout_after_the_choice_has_the_customers_phone_prefilled(shop):
    session = started(shop)
    client = Client()

    response = client.post(page_url(session), {"plan": "3_0_0"}, follow=True)

    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["phone"] == PHONE_E164
    assert f'value="{PHONE_E164}"' in response.content.decode()
    assert Checkout.objects.get(payment__pos_session=session).phone == PHONE_E164


def test_once_the_payment_exists_the_link_leads_to_its_checkout(shop):
    session = started(shop)
    client = Client()
    client.post(page_url(session), {"plan": "2_0_0"})
    payment = PosSession.objects.get(pk=session.pk).payment

    again = client.get(page_url(session))
    double_tap = client.post(page_url(session), {"plan": "4_0_0"})

    assert again.status_code == 303 and again["Location"] == checkout_url(payment)
    assert double_tap.status_code == 303 and double_tap["Location"] == checkout_url(payment)
    assert Payment.objects.filter(pos_session=session).count() == 1
    assert Payment.objects.get(pk=payment.pk).installments_count == 2


def test_a_plan_that_is_not_offered_is_refused_with_a_message(shop):
    session = started(shop, amount_cents=30000)

    response = Client().post(page_url(session), {"plan": "13_0_0"})

    session.refresh_from_db()
    assert response.status_code == 400
    assert session.payment_id is None
    assert 'role="alert"' in response.content.decode()
    assert response.context["errors"]
    assert response.context["choices"]  # the plans are shown again


def test_a_missing_plan_is_refused_too(shop):
    session = started(shop)

    response = Client().post(page_url(session), {})

    assert response.status_code == 400
    assert PosSession.objects.get(pk=session.pk).payment_id is None


def test_the_form_needs_its_csrf_token(shop):
    session = started(shop)

    response = Client(enforce_csrf_checks=True).post(page_url(session), {"plan": "3_0_0"})

    assert response.status_code == 403
    assert PosSession.objects.get(pk=session.pk).payment_id is None


@pytest.mark.parametrize("code", ["AAAAAAAAAA", "not-a-code", "x" * 40])
def test_an_unknown_link_is_a_friendly_404(code, db):
    response = Client().get(f"/p/{code}")

    assert response.status_code == 404
    assert 'data-state="not_found"' in response.content.decode()
    assert response["X-Robots-Tag"] == "noindex, nofollow"


def test_an_expired_link_says_so(shop):
    session = started(shop)
    client = Client()

    with time_machine.travel(session.expires_at + timedelta(seconds=1)):
        response = client.get(page_url(session))
        post = client.post(page_url(session), {"plan": "3_0_0"})

    session.refresh_from_db()
    assert response.status_code == 410
    assert 'data-state="expired"' in response.content.decode()
    assert session.state == State.EXPIRED
    assert post.status_code == 410
    assert session.payment_id is None


def test_a_link_expiring_after_the_choice_stops_the_payment(shop):
    session = started(shop)
    client = Client()
    client.post(page_url(session), {"plan": "3_0_0"})

    with time_machine.travel(session.expires_at + timedelta(minutes=1)):
        response = client.get(page_url(session))

    session.refresh_from_db()
    assert response.status_code == 410
    assert 'data-state="expired"' in response.content.decode()
    assert session.payment.expired_at is not None


def test_a_cancelled_sale_says_the_shop_cancelled_it(shop):
    session = started(shop)
    services.session_cancel(session_id=session.pk, now=timezone.now())
    client = Client()

    response = client.get(page_url(session))
    post = client.post(page_url(session), {"plan": "3_0_0"})

    assert response.status_code == 410
    assert 'data-state="cancelled"' in response.content.decode()
    assert post.status_code == 410
    assert PosSession.objects.get(pk=session.pk).payment_id is None


def test_a_sale_cancelled_while_the_customer_chooses_is_refused_with_a_message(shop):
    session = started(shop)
    client = Client()
    client.get(page_url(session))
    services.session_cancel(session_id=session.pk, now=timezone.now())

    response = client.post(page_url(session), {"plan": "3_0_0"})

    assert response.status_code == 410
    assert 'data-state="cancelled"' in response.content.decode()
    assert PosSession.objects.get(pk=session.pk).payment_id is None


@pytest.mark.parametrize("livemode", [False, True])
def test_test_and_live_sessions_both_work(shop, livemode):
    session = started(shop, livemode=livemode)
    client = Client()

    page = client.get(page_url(session))
    chosen = client.post(page_url(session), {"plan": "3_0_0"})

    session.refresh_from_db()
    assert page.status_code == 200
    assert ("test-banner" in page.content.decode()) is not livemode
    assert chosen.status_code == 303
    assert session.payment.livemode is livemode


def test_a_paid_session_shows_the_checkouts_confirmation(shop):
    session = started(shop)
    client = Client()
    client.post(page_url(session), {"plan": "3_0_0"})
    payment = PosSession.objects.get(pk=session.pk).payment
    finish(client, pay_up_to_code(client, payment))

    response = client.get(page_url(session), follow=True)

    session.refresh_from_db()
    assert session.state == State.PAID
    assert response.redirect_chain == [(checkout_url(payment), 303)]
    assert response.templates[0].name == "payments/checkout_done.html"


def test_the_page_is_in_french_by_default_and_in_english_on_request(shop):
    session = started(shop)
    client = Client()

    french = client.get(page_url(session))
    switch = client.get(page_url(session) + "?lang=en")
    english = client.get(page_url(session))
    client.post(page_url(session), {"plan": "3_0_0"})

    assert '<html lang="fr">' in french.content.decode()
    assert switch.status_code == 303 and switch["Location"] == page_url(session)
    html = english.content.decode()
    assert '<html lang="en">' in html
    assert re.search(r"Pay €300\.00 at .+ in instalments", html)
    assert ">Continue</button>" in html
    assert PosSession.objects.get(pk=session.pk).payment.locale == "en"


def test_an_unsupported_language_is_ignored(shop):
    session = started(shop)

    response = Client().get(page_url(session) + "?lang=xx")

    assert response.status_code == 200
    assert '<html lang="fr">' in response.content.decode()


def test_the_page_is_never_cached_nor_indexed_and_keeps_its_link_to_itself(shop):
    session = started(shop)

    response = Client().get(page_url(session))

    assert "no-cache" in response["Cache-Control"] and "no-store" in response["Cache-Control"]
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    html = response.content.decode()
    assert '<meta name="referrer" content="same-origin">' in html
    assert '<meta name="robots" content="noindex, nofollow">' in html


@time_machine.travel("2026-02-10 10:00Z")  # a quarter whose usury table is in the database
def test_a_plan_with_a_customer_fee_shows_it_and_its_schedule_includes_it(shop):
    shop.merchant.fee_plans.filter(kind="pos", installments_count=3).update(
        customer_fee_variable=150  # 1.5 % of the purchase, paid with the first instalment
    )
    session = started(shop, amount_cents=30000)

    response = Client().get(page_url(session))

    three = next(choice for choice in response.context["choices"] if choice.key == "3_0_0")
    assert three.customer_fee == 450
    assert [line.amount for line in three.schedule] == [10450, 10000, 10000]
    assert three.total == 30450 == sum(line.amount for line in three.schedule)
    assert three.annual_interest_rate > 0  # the fee is a cost of the credit: the APR says so
    html = response.content.decode()
    assert "104,50\u00a0€" in html and "304,50\u00a0€" in html
