from datetime import UTC, datetime

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django_q.conf import Conf

from apps.common.emails import email_content
from apps.common.models import OutgoingEmail
from apps.common.money import display_eur
from apps.payments.emails import email_language, payment_confirmation_emails_queue
from apps.payments.models import Card, Checkout, Instalment
from tests.payments.builders import payment_create_for

NOW = datetime(2026, 3, 12, 10, 0, tzinfo=UTC)


@pytest.fixture
def tasks_run_at_once(monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)


def confirmed(shop, **fields):
    """A 200.01 EUR payment in 3 (66.67 each, no customer fee), its first instalment paid."""
    with time_machine.travel(NOW, tick=False):
        payment = payment_create_for(shop, purchase_amount=20001, installments_count=3, **fields)
    payment.instalments.filter(number=1).update(state=Instalment.State.PAID, paid_at=NOW)
    card = Card.objects.create(
        customer=payment.customer,
        livemode=payment.livemode,
        processor_token=f"tok_{payment.public_id}",
        bin="42424242",
        last4="4242",
        brand=Card.Brand.VISA,
        funding="debit",
        issuer_country="FR",
        exp_month=12,
        exp_year=2030,
        created_at=NOW,
    )
    payment.card = card
    payment.save(update_fields=["card"])
    return payment


def queue_for(payment):
    with transaction.atomic():
        return payment_confirmation_emails_queue(payment=payment, now=NOW)


def test_the_customer_and_the_merchant_each_get_one_email_after_commit(
    shop, tasks_run_at_once, django_capture_on_commit_callbacks
):
    payment = confirmed(shop, locale="en")

    with django_capture_on_commit_callbacks(execute=True):
        queue_for(payment)
        queue_for(payment)  # deciding twice queues nothing more

    assert OutgoingEmail.objects.filter(key__contains=payment.public_id).count() == 2
    assert sorted(message.to[0] for message in mail.outbox) == sorted(
        ["camille.martin@example.com", shop.merchant.contact_email]
    )


def test_the_customer_confirmation_in_english_shows_the_whole_schedule(shop):
    payment = confirmed(shop, locale="en-GB")

    customer, _merchant = queue_for(payment)
    text, html = email_content(customer)

    legal_name = shop.merchant.legal_name
    assert customer.to == "camille.martin@example.com"
    assert customer.subject == f"Your payment to {legal_name} is confirmed"
    instalment_dates = [i.due_date for i in payment.instalments.order_by("number")]
    for number, due in enumerate(instalment_dates, start=1):
        spelled = f"{due:%B} {due.day}, {due.year}"
        assert f"- {number} of 3 {'(paid)' if number == 1 else ''}".rstrip() in text
        assert spelled in text
        assert spelled in html
    assert text.count("€66.67") == 3
    assert "Total: €200.01" in text
    assert "Visa •••• 4242" in text
    link = f"http://127.0.0.1:8000/checkout/{payment.public_id}"
    assert link in text
    assert f'href="{link}"' in html
    assert '<html lang="en">' in html
    assert "Test mode" in text  # a test-mode payment says so


def test_the_customer_confirmation_in_french_uses_french_dates_and_amounts(shop):
    payment = confirmed(shop, locale="fr")

    customer, _merchant = queue_for(payment)
    text, html = email_content(customer)

    assert text.count("66,67\u00a0€") == 3
    assert "200,01\u00a0€" in text
    first_due = payment.instalments.get(number=1).due_date
    assert first_due.month == 3
    assert f"{first_due.day} mars {first_due.year}" in text
    assert '<html lang="fr">' in html


def test_the_checkout_email_comes_before_the_one_the_merchant_sent(shop):
    payment = confirmed(shop, locale="fr")
    Checkout.objects.create(
        payment=payment, email="typed.at.checkout@example.org", created_at=NOW, updated_at=NOW
    )

    customer, _merchant = queue_for(payment)

    assert customer.to == "typed.at.checkout@example.org"


def test_without_any_customer_email_only_the_merchant_is_told(shop):
    payment = confirmed(shop, customer=None)

    [merchant] = queue_for(payment)

    assert merchant.to == shop.merchant.contact_email
    assert payment.events.filter(kind="confirmation_email_skipped").count() == 1


def test_the_merchant_notice_names_the_payment_its_orders_and_the_customer(shop):
    payment = confirmed(shop, locale="en", order={"merchant_reference": "CMD-2026-0042"})

    _customer, merchant = queue_for(payment)
    text, html = email_content(merchant)

    assert merchant.to == shop.merchant.contact_email
    assert payment.public_id in merchant.subject
    assert "CMD-2026-0042" in text
    assert "Camille Martin" in text
    assert "200,01\u00a0€" in text  # merchants read French
    assert "CMD-2026-0042" in html


@pytest.mark.parametrize(
    ("locale", "language"),
    [("fr", "fr"), ("fr_FR", "fr"), ("en", "en"), ("en-US", "en"), ("", "fr"), ("de", "fr")],
)
def test_the_email_language_follows_the_payment_locale(locale, language):
    assert email_language(locale) == language


def test_amounts_are_written_the_way_each_language_writes_them():
    from django.utils import translation

    with translation.override("fr"):
        assert display_eur(6667) == "66,67\u00a0€"
        assert display_eur(123456) == "1\u00a0234,56\u00a0€"
    with translation.override("en"):
        assert display_eur(123456) == "€1,234.56"
