"""What the customer receives about a refund: the credit note (a numbered PDF) and the email
that carries it, recorded with the refund and sent once the PDF exists, never twice."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from django_q.conf import Conf

from apps.common.emails import email_content
from apps.common.models import OutgoingEmail
from apps.merchants.models import FeePlan
from apps.payments.models import Card, Checkout, Customer, Payment
from apps.schedules.models import Receipt
from apps.schedules.receipts import receipt_document, receipt_file_name, receipt_pdf
from apps.schedules.services.recording import receipt_numbers_next
from apps.schedules.tasks import render_receipts
from tests.refunds.builders import refunded
from tests.schedules.builders import accepted
from tests.schedules.test_receipts import pdf_fonts, receipt_text

pytestmark = pytest.mark.django_db

NBSP = "\u00a0"
BOUGHT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # 4 x 100 EUR: Mar 2, Apr 2, May 2, Jun 2
LATER = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def storage_dir(settings, tmp_path):
    location = tmp_path / "receipts"
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location), "allow_overwrite": True},
        },
    }
    return location


def bought(shop, *, locale: str = "fr") -> Payment:
    return accepted(shop, when=BOUGHT, installments_count=4, amount=40_000, locale=locale)


def credit_note_of(refund) -> Receipt:
    return Receipt.objects.get(number=refund.credit_note_number)


def card_of(payment: Payment) -> str:
    card = payment.card
    return f"{Card.Brand(card.brand).label} •••• {card.last4}"


def email_of(refund) -> OutgoingEmail:
    return OutgoingEmail.objects.get(key=f"refund:{refund.public_id}:customer")


# --- recorded with the refund ---------------------------------------------------------------


def test_a_partial_refund_queues_one_credit_note_and_one_email_with_it_attached(shop):
    payment = bought(shop)

    refund = refunded(payment, amount=15_000, when=LATER)

    [credit_note] = Receipt.objects.filter(payment=payment, kind=Receipt.Kind.CREDIT_NOTE)
    assert re.fullmatch(r"TEST-C2026-\d{7}", credit_note.number)
    assert refund.credit_note_number == credit_note.number
    assert credit_note.instalment_id is None and credit_note.charge_id is None
    assert credit_note.created_at == LATER and credit_note.rendered_at is None
    assert credit_note.data["refund_id"] == refund.public_id
    assert credit_note.data["amount_cents"] == 15_000
    assert credit_note.data["cancelled_cents"] == 15_000
    assert credit_note.data["to_card_cents"] == 0
    assert credit_note.data["language"] == "fr"
    assert [row["amount_cents"] for row in credit_note.data["remaining"]] == [10_000, 5_000]
    [email] = OutgoingEmail.objects.filter(key__startswith=f"refund:{refund.public_id}")
    assert email.key == f"refund:{refund.public_id}:customer"
    assert credit_note.email_key == email.key
    assert email.to == payment.customer.email == "camille.martin@example.com"
    assert email.language == "fr"
    assert email.template == "emails/refunds/refund_customer"
    assert email.attachments == [
        {
            "storage": "receipts",
            "name": receipt_file_name(credit_note),
            "filename": f"{credit_note.number}.pdf",
            "mimetype": "application/pdf",
        }
    ]
    assert email.sent_at is None  # waits for the PDF


def test_credit_notes_take_their_numbers_from_the_receipts_sequence(shop):
    payment = bought(shop)
    (before,) = receipt_numbers_next(1, livemode=False, year=2026)

    refund = refunded(payment, amount=1_000, when=LATER)
    (after,) = receipt_numbers_next(1, livemode=False, year=2026)

    def sequence(number: str) -> int:
        return int(number.rsplit("-", 1)[1])

    assert before.startswith("TEST-R2026-") and after.startswith("TEST-R2026-")
    assert refund.credit_note_number.startswith("TEST-C2026-")
    assert sequence(before) + 1 == sequence(refund.credit_note_number) == sequence(after) - 1
    (live,) = receipt_numbers_next(1, livemode=True, year=2027, prefix="C")
    assert re.fullmatch(r"C2027-\d{7}", live)


def test_a_partial_refund_email_says_what_is_no_longer_owed_and_the_schedule_left(shop):
    payment = bought(shop, locale="en")

    refund = refunded(payment, amount=15_000, when=LATER)

    text, html = email_content(email_of(refund))
    assert "Boutique" in text and "refunded €150.00 of your purchase." in text
    assert "You no longer owe €150.00" in text
    assert "goes back to your card" not in text
    assert "- 2 of 4: April 2, 2026, €100.00" in text
    assert "- 3 of 4: May 2, 2026, €50.00" in text
    assert "4 of 4" not in text
    assert f"Your credit note {refund.credit_note_number} is attached." in text
    assert f"Refund reference: {refund.public_id}" in text
    assert "/portal/link/" in text and payment.public_id in text
    assert "€50.00" in html and refund.credit_note_number in html


def test_a_full_refund_email_says_nothing_is_left_to_pay_and_what_goes_back_to_the_card(shop):
    payment = bought(shop, locale="en")

    refund = refunded(payment, amount=None, when=LATER)

    text, html = email_content(email_of(refund))
    assert "refunded your whole purchase: €400.00." in text
    assert "You no longer owe €300.00" in text
    assert f"€100.00 goes back to your card {card_of(payment)}." in text
    assert "within a few business days" in text
    assert "Nothing is left to pay." in text
    assert "Still to come" not in text
    assert "Nothing is left to pay." in html
    assert f"€100.00 goes back to your card {card_of(payment)}." in html


def test_the_subject_is_in_the_payments_language(shop):
    english = bought(shop, locale="en")
    french = bought(shop, locale="fr")

    refund_en = refunded(english, amount=15_000, when=LATER)
    refund_fr = refunded(french, amount=15_000, when=LATER)

    merchant = shop.merchant.legal_name
    assert email_of(refund_en).subject == f"Refund from {merchant}: €150.00"
    assert email_of(refund_en).language == "en"
    with translation.override("fr"):
        expected = gettext("Refund from %(merchant)s: %(amount)s") % {
            "merchant": merchant,
            "amount": f"150,00{NBSP}€",
        }
    assert email_of(refund_fr).subject == " ".join(expected.split())  # one line, plain spaces
    assert email_of(refund_fr).language == "fr"
    text, _html = email_content(email_of(refund_fr))
    assert f"150,00{NBSP}€" in text and "2 avril 2026" in text


def test_a_customer_without_an_email_address_gets_a_credit_note_and_no_email(shop):
    payment = bought(shop)
    Checkout.objects.filter(payment=payment).update(email="")
    Customer.objects.filter(pk=payment.customer_id).update(email="")
    Payment.objects.filter(pk=payment.pk).update(customer_data={})
    payment = Payment.objects.get(pk=payment.pk)

    refund = refunded(payment, amount=15_000, when=LATER)

    credit_note = credit_note_of(refund)
    assert credit_note.kind == Receipt.Kind.CREDIT_NOTE
    assert credit_note.email_key == ""
    assert not OutgoingEmail.objects.filter(key__startswith=f"refund:{refund.public_id}").exists()
    assert render_receipts([credit_note.number]) == 1
    assert mail.outbox == []
    credit_note.refresh_from_db()
    assert credit_note.rendered_at is not None


# --- the PDF --------------------------------------------------------------------------------


def test_the_credit_note_says_its_number_the_amounts_and_the_schedule_left(shop):
    payment = bought(shop, locale="en")
    refund = refunded(payment, amount=15_000, when=LATER, merchant_reference="RMA-7")

    text = receipt_text(credit_note_of(refund).data)

    assert f"Credit note {refund.credit_note_number}" in text
    assert "€150.00" in text
    assert "Amount refunded by the merchant" in text
    assert "Cancelled from what you still owed: €150.00" in text
    assert "Back to your card" not in text
    assert shop.merchant.legal_name in text
    assert "Order reference: A-1001" in text
    assert "Customer: Camille Martin" in text
    assert f"Payment reference: {payment.public_id}" in text
    assert f"Refund reference: {refund.public_id}" in text
    assert "Merchant's refund reference: RMA-7" in text
    assert "Refunded on: March 5, 2026" in text
    assert "2 of 4 – April 2, 2026 – €100.00" in text
    assert "3 of 4 – May 2, 2026 – €50.00" in text
    assert "4 of 4" not in text
    assert "Test mode" in text


def test_a_full_refunds_credit_note_says_what_goes_back_to_the_card_and_nothing_is_left(shop):
    payment = bought(shop, locale="en")
    refund = refunded(payment, amount=None, when=LATER)

    text = receipt_text(credit_note_of(refund).data)

    assert "€400.00" in text
    assert "Amount refunded by the merchant: the whole purchase" in text
    assert "Cancelled from what you still owed: €300.00" in text
    assert f"Back to your card {card_of(payment)}: €100.00" in text
    assert "Nothing is left to pay." in text
    assert "of 4 –" not in text


def test_completing_a_refund_on_a_plan_with_fees_gives_the_rest_and_the_fees_back(shop):
    FeePlan.objects.filter(merchant=shop.merchant, kind="general", installments_count=4).update(
        customer_fee_variable=232  # 9.28 EUR, paid with the first instalment
    )
    payment = bought(shop, locale="en")
    refunded(payment, amount=15_000, when=LATER)

    refund = refunded(payment, amount=None, when=LATER)

    text = receipt_text(credit_note_of(refund).data)
    assert "€250.00" in text
    assert "Amount refunded by the merchant: the rest of the purchase" in text
    assert "Cancelled from what you still owed: €150.00" in text
    assert f"Back to your card {card_of(payment)}: €100.00" in text
    assert "Customer fees and interest given back to your card: €9.28" in text
    email, _html = email_content(email_of(refund))
    assert "refunded the rest of your purchase: €250.00." in email
    assert f"€109.28 goes back to your card {card_of(payment)}." in email
    assert "This includes €9.28 of customer fees and interest given back." in email
    assert "Nothing is left to pay." in email


def test_a_french_credit_note_formats_amounts_and_dates_in_french(shop):
    payment = bought(shop, locale="fr")
    refund = refunded(payment, amount=15_000, when=LATER)

    text = receipt_text(credit_note_of(refund).data)

    assert refund.credit_note_number in text
    assert f"150,00{NBSP}€" in text
    assert f"2 avril 2026 – 100,00{NBSP}€" in text
    assert f"2 mai 2026 – 50,00{NBSP}€" in text
    assert "5 mars 2026" in text


def test_a_credit_note_is_one_a4_page_in_the_shipped_font_only(shop):
    payment = accepted(shop, when=BOUGHT, installments_count=12, amount=120_000, locale="en")
    refund = refunded(payment, amount=5_000, when=LATER, merchant_reference="R" * 60)
    data = credit_note_of(refund).data

    (page,) = receipt_document(data).pages

    assert (round(page.width * 25.4 / 96), round(page.height * 25.4 / 96)) == (210, 297)
    assert len(data["remaining"]) == 11
    assert pdf_fonts(receipt_pdf(data)) == {"Tranche-Receipt-Sans", "Tranche-Receipt-Sans-Bold"}


# --- sent after commit, once ------------------------------------------------------------------


def test_the_email_goes_with_the_pdf_after_commit_and_a_rerun_sends_nothing_more(
    shop, storage_dir, monkeypatch, django_capture_on_commit_callbacks
):
    payment = bought(shop, locale="en")
    mail.outbox.clear()
    monkeypatch.setattr(Conf, "SYNC", True)  # tasks queued after commit run at once

    with django_capture_on_commit_callbacks(execute=True):
        refund = refunded(payment, amount=15_000, when=LATER)

    credit_note = credit_note_of(refund)
    [message] = [m for m in mail.outbox if m.subject.startswith("Refund from")]
    assert len(mail.outbox) == 1
    assert message.to == ["camille.martin@example.com"]
    assert message.subject == f"Refund from {shop.merchant.legal_name}: €150.00"
    [(filename, content, mimetype)] = message.attachments
    assert filename == f"{credit_note.number}.pdf" and mimetype == "application/pdf"
    assert content.startswith(b"%PDF-")
    assert (storage_dir / receipt_file_name(credit_note)).read_bytes() == content
    assert email_of(refund).sent_at is not None

    assert render_receipts([credit_note.number]) == 1

    assert len(mail.outbox) == 1
    assert [p.name for p in storage_dir.rglob("*.pdf") if "C2026" in p.name] == [
        f"{credit_note.number}.pdf"
    ]


def test_rendering_sends_the_email_once_when_run_twice(shop):
    payment = bought(shop, locale="en")
    refund = refunded(payment, amount=15_000, when=LATER)
    mail.outbox.clear()

    render_receipts([refund.credit_note_number])
    render_receipts([refund.credit_note_number])

    [message] = mail.outbox
    assert message.subject.startswith("Refund from")
    [(filename, content, _mimetype)] = message.attachments
    assert filename == f"{refund.credit_note_number}.pdf" and content.startswith(b"%PDF-")


# --- downloads ------------------------------------------------------------------------------


def test_the_merchant_downloads_the_credit_note_from_the_dashboard(shop, other_shop):
    payment = bought(shop)
    refund = refunded(payment, amount=15_000, when=LATER)
    render_receipts([refund.credit_note_number])
    url = reverse(
        "schedules:dashboard-receipt", args=[payment.public_id, refund.credit_note_number]
    )
    owner, stranger = Client(), Client()
    owner.force_login(shop.owner)
    stranger.force_login(other_shop.owner)

    response = owner.get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert f'filename="{refund.credit_note_number}.pdf"' in response["Content-Disposition"]
    assert stranger.get(url).status_code == 404
