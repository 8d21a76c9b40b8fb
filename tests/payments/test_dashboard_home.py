"""The dashboard's home page: the period's key figures and its five charts."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from apps.common.dates import BUSINESS_TZ, business_date
from apps.common.money import to_cents
from apps.ledger import recipes
from apps.ledger.services import posting_create
from apps.merchants.access import MODE_SESSION_KEY
from apps.merchants.models import Merchant
from apps.payments.dashboard_stats import (
    Period,
    collections_query,
    home_stats,
    period_days,
    sales_query,
)
from apps.payments.models import Customer, Instalment, Payment, PaymentState
from tests.conftest import make_shop
from tests.payments.builders import payment_create_for
from tests.schedules.builders import accepted

TODAY = business_date(timezone.now())


def at(days_ago: int, hour: int = 11) -> datetime:
    """A moment ``days_ago`` Paris calendar days before today (never in the future)."""
    moment = datetime.combine(TODAY - timedelta(days=days_ago), time(hour), tzinfo=BUSINESS_TZ)
    return min(moment, timezone.now() - timedelta(minutes=1))


def refused(shop, *, when: datetime, livemode: bool = False) -> Payment:
    payment = payment_create_for(shop, now=when, livemode=livemode)
    Payment.objects.filter(pk=payment.pk).update(state=PaymentState.SCORED_NO)
    return payment


def refund(payment: Payment, cents: int) -> None:
    refund_id = f"refund_{uuid.uuid4().hex[:12]}"
    posting_create(
        recipes.refund_issued(
            merchant_id=payment.merchant_id,
            livemode=payment.livemode,
            payment_id=payment.public_id,
            refund_id=refund_id,
            receivable_cancelled_cents=cents,
            to_card_cents=0,
            effective_at=timezone.now(),
        )
    )


def home(client, shop, *, live: bool = False, language: str = "en", **params):
    client.force_login(shop.owner)
    if live:
        session = client.session
        session[MODE_SESSION_KEY] = True
        session.save()
    return client.get(reverse("dashboard:home"), params, HTTP_ACCEPT_LANGUAGE=language)


@pytest.mark.django_db
def test_the_key_figures_count_the_periods_accepted_and_refused_payments(client, shop):
    accepted(shop, when=at(1), installments_count=4, amount=40_000)
    accepted(shop, when=at(3), installments_count=3, amount=30_000)
    accepted(shop, when=at(3, hour=15), installments_count=4, amount=20_000)
    refused(shop, when=at(2))
    payment_create_for(shop, now=at(2))  # left before any decision: not counted
    accepted(shop, when=at(45), installments_count=3, amount=90_000)  # before the period

    response = home(client, shop)

    stats = response.context["stats"]
    assert response.status_code == 200
    assert stats.volume_cents == 90_000
    assert stats.accepted == 3
    assert stats.refused == 1
    assert stats.average_basket_cents == 30_000
    assert stats.acceptance_bps == 7_500
    page = response.content.decode()
    assert "€900.00" in page and "€300.00" in page and "75.00 %" in page
    assert "accepted or refused" in page  # the rate is defined on the page


@pytest.mark.django_db
def test_sales_are_split_by_day_and_plan(shop):
    accepted(shop, when=at(3), installments_count=3, amount=30_000)
    accepted(shop, when=at(3, hour=15), installments_count=4, amount=20_000)
    accepted(shop, when=at(1), installments_count=4, amount=40_000)

    stats = home_stats(
        merchant_id=shop.merchant.pk, livemode=False, period=Period.ending(TODAY, days=7)
    )

    assert stats.plans == ["P3X", "P4X"]
    assert stats.sales[TODAY - timedelta(days=3)].volume_cents == {"P3X": 30_000, "P4X": 20_000}
    assert stats.sales[TODAY - timedelta(days=1)].volume_cents == {"P4X": 40_000}
    assert stats.sales[TODAY - timedelta(days=3)].accepted == 2
    assert sorted(stats.sales) == Period.ending(TODAY, days=7).days


@pytest.mark.django_db
def test_the_period_selector_widens_the_figures(client, shop):
    accepted(shop, when=at(45), installments_count=3, amount=90_000)

    thirty = home(client, shop)
    ninety = home(client, shop, days="90")

    assert thirty.context["stats"].volume_cents == 0
    assert ninety.context["stats"].volume_cents == 90_000
    assert ninety.context["days"] == 90
    assert ninety.context["stats"].period.first == TODAY - timedelta(days=89)
    assert 'aria-current="page"' in ninety.content.decode()


@pytest.mark.parametrize(
    ("raw", "days"),
    [("7", 7), ("30", 30), ("90", 90), (None, 30), ("", 30), ("abc", 30), ("0", 30),
     ("-7", 30), ("1000", 30), ("7.5", 30), (" 7", 7)],
)  # fmt: skip
def test_the_period_is_7_30_or_90_days_and_anything_else_is_30(raw, days):
    assert period_days(raw) == days


@pytest.mark.django_db
def test_a_junk_period_shows_the_30_days(client, shop):
    response = home(client, shop, days="'; DROP TABLE x; --")

    assert response.status_code == 200
    assert response.context["days"] == 30


@pytest.mark.django_db
def test_collected_and_due_count_the_instalments_due_in_the_period(shop):
    old = accepted(shop, when=at(40), installments_count=3, amount=30_000)
    recent = accepted(shop, when=at(2), installments_count=3, amount=60_000)
    period = Period.ending(TODAY, days=30)

    stats = home_stats(merchant_id=shop.merchant.pk, livemode=False, period=period)

    in_period = [
        instalment
        for instalment in Instalment.objects.filter(payment__in=[old, recent])
        if period.first <= instalment.due_date <= period.last
    ]
    assert {i.payment_id for i in in_period} == {old.pk, recent.pk}  # old's 2nd, recent's 1st
    assert stats.due_cents == sum(to_cents(i.total_amount) for i in in_period)
    assert stats.collected_cents == sum(
        to_cents(i.total_amount) for i in in_period if i.state == Instalment.State.PAID
    )
    assert 0 < stats.collected_cents < stats.due_cents
    assert sorted(stats.collections) == period.weeks
    assert all(week.weekday() == 0 for week in stats.collections)


@pytest.mark.django_db
def test_refunds_come_from_the_ledger_by_day(client, shop):
    payment = accepted(shop, when=at(1), installments_count=4, amount=40_000)
    refund(payment, 5_000)

    response = home(client, shop, days="7")

    assert response.context["stats"].refunds[TODAY] == 5_000
    assert response.context["stats"].refunded_cents == 5_000
    refunds_chart = next(b for b in response.context["charts"] if b.id == "refunds").chart
    assert not refunds_chart.empty
    assert refunds_chart.rows[-1][1] == "€50.00"
    assert 'data-value="5000"' in str(refunds_chart.svg)


@pytest.mark.django_db
def test_the_page_draws_five_accessible_charts(client, shop):
    accepted(shop, when=at(1), installments_count=4, amount=40_000)
    refused(shop, when=at(1))

    response = home(client, shop)

    blocks = response.context["charts"]
    assert [block.id for block in blocks] == [
        "volume",
        "count",
        "collections",
        "refunds",
        "acceptance",
    ]
    page = response.content.decode()
    assert page.count('role="img"') == 5
    assert page.count("<desc id=") == 5
    assert page.count('<table class="visually-hidden">') == 5
    assert "Pay in 4 instalments" in page  # the legend names the plan
    volume = blocks[0].chart
    assert volume.rows[-2][1] == "€400.00"  # yesterday, in P4X
    acceptance = blocks[4].chart
    assert acceptance.rows[-2][1] == "50.00 %"
    assert acceptance.rows[0][1] == "—"  # no decision that day
    assert "<script" not in page.split("<main", 1)[1]  # no chart library


@pytest.mark.django_db
def test_dates_on_the_axis_speak_the_users_language(client, shop):
    accepted(shop, when=at(1), installments_count=4, amount=40_000)

    english = home(client, shop, days="7", language="en")
    french = home(client, shop, days="7", language="fr")

    day = TODAY - timedelta(days=1)
    english_months = [
        "Jan.",
        "Feb.",
        "March",
        "April",
        "May",
        "June",
        "July",
        "Aug.",
        "Sept.",
        "Oct.",
        "Nov.",
        "Dec.",
    ]
    french_months = [
        "jan.",
        "fév.",
        "mars",
        "avr.",
        "mai",
        "juin",
        "juil.",
        "août",
        "sept.",
        "oct.",
        "nov.",
        "déc.",
    ]
    month = day.month - 1
    assert english.context["charts"][0].chart.rows[-2][0] == f"{day.day} {english_months[month]}"
    assert french.context["charts"][0].chart.rows[-2][0] == f"{day.day} {french_months[month]}"
    assert french["Content-Language"] == "fr"
    assert "400,00\xa0€" in french.content.decode()


@pytest.mark.django_db
def test_a_period_without_sales_says_so_and_draws_nothing(client, shop):
    response = home(client, shop)

    page = response.content.decode()
    assert response.status_code == 200
    assert "No sales yet in this period" in page
    assert response.context["charts"] == []
    assert 'role="img"' not in page


@pytest.mark.django_db
def test_the_home_page_links_to_the_account_and_payment_plans(client, shop):
    response = home(client, shop)

    assert reverse("merchants:account") in response.content.decode()


@pytest.mark.django_db
def test_a_pending_merchant_sees_the_pending_banner_at_home(client):
    pending = make_shop(status=Merchant.Status.PENDING)

    response = home(client, pending)

    assert response.status_code == 200
    assert 'class="banner warning"' in response.content.decode()


@pytest.mark.django_db
def test_only_this_merchants_payments_in_this_mode_count(client, shop, other_shop):
    accepted(other_shop, when=at(1), installments_count=4, amount=40_000)
    live = payment_create_for(shop, livemode=True, now=at(1), purchase_amount=20_000)
    Payment.objects.filter(pk=live.pk).update(state=PaymentState.IN_PROGRESS, accepted_at=at(1))
    refused(shop, when=at(1))

    test_home = home(client, shop)
    live_home = home(client, shop, live=True)

    assert test_home.context["stats"].volume_cents == 0
    assert test_home.context["stats"].refused == 1
    assert live_home.context["stats"].volume_cents == 20_000
    assert live_home.context["stats"].refused == 0


@pytest.mark.django_db
def test_the_home_page_needs_a_login(client):
    response = client.get(reverse("dashboard:home"))

    assert response.status_code == 302


@pytest.mark.django_db
def test_the_figures_read_a_range_of_payment_list_idx(shop, other_shop):
    """EXPLAIN over a few thousand payments of six merchants, made over a year. (With three,
    a 90-day range was 6 % of the table, and the planner's choice between the indexes, or a
    sequential scan, depended on the dead rows earlier tests had left.)"""
    now = timezone.now()
    customer = Customer.objects.create(livemode=False, created_at=now, updated_at=now)
    money, zero = Money(Decimal("100"), "EUR"), Money(Decimal("0"), "EUR")
    merchants = [shop.merchant, other_shop.merchant, *(make_shop().merchant for _ in range(4))]
    payments = Payment.objects.bulk_create(
        [
            Payment(
                merchant=merchant,
                livemode=n % 5 == 0,
                customer=customer,
                installments_count=1,
                purchase_amount=money,
                customer_fee=zero,
                customer_interest=zero,
                merchant_fee=zero,
                purchase_date=(now - timedelta(hours=9 * n)).date(),
                created_at=now - timedelta(hours=9 * n),
                updated_at=now,
                expires_at=now,
                accepted_at=now - timedelta(hours=9 * n),
                state=PaymentState.PAID,
            )
            for n in range(1_000, 0, -1)  # oldest first, the merchants' sales interleaved
            for merchant in merchants
        ],
        batch_size=1_000,
    )
    Instalment.objects.bulk_create(
        [
            Instalment(
                payment=payment,
                number=1,
                due_date=payment.purchase_date,
                purchase_amount=money,
                original_purchase_amount=money,
                customer_fee=zero,
                customer_interest=zero,
                state=Instalment.State.PAID,
            )
            for payment in payments
        ],
        batch_size=1_000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE payments_payment")
        cursor.execute("ANALYZE payments_instalment")

    for days in (7, 30, 90):
        period = Period.ending(TODAY, days=days)
        sales_plan = sales_query(merchant_id=shop.merchant.pk, livemode=False, period=period)
        collections_plan = collections_query(
            merchant_id=shop.merchant.pk, livemode=False, period=period
        )

        plan = sales_plan.explain()
        # A range of the merchant's payments in one mode: payment_list_idx, or the state
        # index (same leading columns; every payment here is paid, so the planner may take
        # either). Never the whole table.
        assert "Seq Scan on payments_payment" not in plan
        assert "payment_list_idx" in plan or "payment_state_list_idx" in plan
        assert "Seq Scan on payments_payment" not in collections_plan.explain()
