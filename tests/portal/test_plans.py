"""The portal's plans, a plan's page (instalments, receipts, credit notes, history) and the
receipts list, in English and French; and that a customer only ever reaches their own."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import translation
from django.utils.translation import gettext

from apps.payments.models import Instalment, Payment, PaymentEvent
from apps.schedules.models import Receipt
from apps.schedules.portal.views.plans import card_display, event_label
from apps.schedules.receipts import receipt_render
from apps.schedules.services.debits import debit_run
from tests.payments.builders import payment_create_for
from tests.portal.helpers import CAMILLE, DOMINIQUE, plan_for, sign_in
from tests.refunds.builders import refunded
from tests.schedules.builders import LATER_DECLINED

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # 4 x 100 EUR: Nov 2, Dec 2, Jan 2, Feb 2
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SECOND_DEBIT = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # 10:00 in Paris, after the 8:00 run
REFUNDED = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
LOOKED = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
NBSP = "\u00a0"


@pytest.fixture(autouse=True)
def _receipts_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": True},
        },
    }


def signed_in_as(customer, *, when: datetime = NOW, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    with time_machine.travel(when, tick=False):  # the session row expires from then
        sign_in(client, customer, when=when)
    return client


def get(client: Client, path: str, *, when: datetime = NOW):
    with time_machine.travel(when, tick=False):
        return client.get(path)


def text_of(response) -> str:
    return response.content.decode()


def compact(html: str) -> str:
    """The page's text with tags gone and spaces squeezed, to read it as a person would."""
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def second_debited_with_receipt(payment: Payment) -> Receipt:
    """Run the debits of December 2 (every plan bought on November 2) and render the
    receipt of ``payment``'s second instalment."""
    with time_machine.travel(SECOND_DEBIT, tick=False):
        assert debit_run(now=SECOND_DEBIT).succeeded >= 1
    receipt = Receipt.objects.get(payment=payment, instalment__number=2)
    return receipt_render(number=receipt.number, now=SECOND_DEBIT)


def live_plan(shop, person: dict) -> Payment:
    """A live-mode plan for ``person``, marked accepted (the sandbox tokenises test cards
    only: the charge and the ledger are left out, which these pages do not read)."""
    payment = payment_create_for(shop, livemode=True, customer=dict(person), now=BOUGHT)
    Payment.objects.filter(pk=payment.pk).update(accepted_at=BOUGHT, state="in_progress")
    return Payment.objects.get(pk=payment.pk)


# --- the list of plans ----------------------------------------------------------------------


def test_the_plans_page_lists_every_plan_of_the_customer_at_every_merchant(shop, other_shop):
    first = plan_for(shop, CAMILLE, when=BOUGHT)
    second = plan_for(
        other_shop, CAMILLE, when=BOUGHT + timedelta(days=1), amount=30_000, installments_count=3
    )
    plan_for(shop, DOMINIQUE, when=BOUGHT)
    assert first.customer_id == second.customer_id

    page = get(signed_in_as(first.customer), "/portal/")

    assert page.status_code == 200
    html = text_of(page)
    text = compact(html)
    assert html.count('data-testid="plan-card"') == 2
    # Newest first.
    assert text.index(other_shop.merchant.legal_name) < text.index(shop.merchant.legal_name)
    assert f'href="/portal/plans/{first.public_id}"' in html
    assert f'href="/portal/plans/{second.public_id}"' in html
    assert "€400.00" in text and "Pay in 4 instalments" in text
    assert "€100.00 paid of €400.00" in text
    assert "Next: €100.00 on December 2, 2026" in text
    assert "€300.00" in text and "€100.00 paid of €300.00" in text
    assert "Next: €100.00 on December 3, 2026" in text
    assert text.count("On schedule") == 2
    assert 'aria-valuenow="25"' in html and 'aria-valuenow="33"' in html
    assert "Dominique" not in text and "dominique" not in html


def test_the_plans_page_speaks_french_by_default(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)

    page = get(signed_in_as(payment.customer, language="fr"), "/portal/")

    html = text_of(page)
    text = compact(html)
    assert '<html lang="fr">' in html
    with translation.override("fr"):
        assert gettext("My plans") in text
        assert gettext("Pay in %(count)d instalments") % {"count": 4} in text
        assert (
            gettext("Next: %(amount)s on %(date)s")
            % {"amount": f"100,00{NBSP}€", "date": "2 décembre 2026"}
            in text
        )
    assert f"400,00{NBSP}€" in text


def test_a_customer_without_a_plan_sees_an_empty_state_and_how_tranche_works(shop):
    payment = payment_create_for(shop, customer=dict(CAMILLE), now=BOUGHT)  # never paid

    page = get(signed_in_as(payment.customer), "/portal/")

    html = text_of(page)
    assert 'data-testid="no-plans"' in html
    assert "You have no plans with Tranche yet." in compact(html)
    assert 'href="/how-it-works"' in html
    assert 'data-testid="plan-card"' not in html


def test_the_plans_page_reads_a_fixed_number_of_queries_however_many_plans(shop, other_shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    client = signed_in_as(payment.customer)
    with CaptureQueriesContext(connection) as one:
        get(client, "/portal/")
    for day in (1, 2, 3):
        plan_for(other_shop, CAMILLE, when=BOUGHT + timedelta(days=day))

    with CaptureQueriesContext(connection) as four:
        page = get(client, "/portal/")

    assert text_of(page).count('data-testid="plan-card"') == 4
    assert len(four) == len(one)


def test_pages_of_the_portal_need_a_signed_in_customer(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    client = Client()

    for path in (
        "/portal/",
        f"/portal/plans/{payment.public_id}",
        "/portal/receipts",
        f"/portal/plans/{payment.public_id}/receipts/R1.pdf",
    ):
        response = get(client, path)
        assert response.status_code == 302
        assert response.url.startswith("/portal/sign-in?next=")


# --- a plan's page --------------------------------------------------------------------------


def test_the_plan_page_shows_each_instalment_its_receipts_credit_notes_and_history(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT, locale="en")
    receipt = second_debited_with_receipt(payment)
    Instalment.objects.filter(payment=payment, number=3).update(
        postponed_from="2027-01-02", due_date="2027-01-15", postponements=1
    )
    refund = refunded(payment, amount=10_000, when=REFUNDED)  # cancels instalment 4
    credit_note = receipt_render(number=refund.credit_note_number, now=REFUNDED)
    client = signed_in_as(payment.customer, when=LOOKED)

    page = get(client, f"/portal/plans/{payment.public_id}", when=LOOKED)

    assert page.status_code == 200
    html = text_of(page)
    text = compact(html)
    assert shop.merchant.legal_name in text and "A-1001" in text
    assert f"{card_display(payment.card)} · Change card" in text
    assert f'href="/portal/plans/{payment.public_id}/card"' in html

    def row(number: int) -> str:
        start = html.index(">", html.index(f'data-testid="instalment-{number}"')) + 1
        return compact(html[start : html.index("</tr>", start)])

    assert row(1).startswith("1 of 4 November 2, 2026 €100.00 Paid November 2, 2026")
    assert row(2).startswith("2 of 4 December 2, 2026 €100.00 Paid December 2, 2026")
    assert f"Receipt {receipt.number} (PDF)" in row(2)
    assert row(3).startswith("3 of 4 January 15, 2027 moved from January 2, 2027 €100.00 Scheduled")
    assert "Postpone" in row(3) and "Pay early" in row(3)
    assert "Cancelled (refund)" in row(4) and "Postpone" not in row(4)
    assert "Postpone" not in row(1) + row(2)
    postpone = f'href="/portal/plans/{payment.public_id}/instalments/3/postpone"'
    assert postpone in html
    assert f'href="/portal/plans/{payment.public_id}/pay?instalment=3"' in html
    assert f'href="/portal/plans/{payment.public_id}/pay?all=1"' in html
    assert "Pay everything left (€100.00)" in text
    assert "Left to pay €100.00" in text

    receipts = compact(html[html.index('id="receipts"') : html.index('id="history-title"')])
    assert f"Receipt {receipt.number} Instalment 2 of 4" in receipts
    assert f"Credit note {credit_note.number} Refund from {shop.merchant.legal_name}" in receipts
    assert receipts.index(receipt.number) < receipts.index(credit_note.number)
    history = compact(html[html.index('id="history-title"') :])
    assert "November 2, 2026 Purchase accepted, first payment made" in history
    assert "December 2, 2026 Instalment 2 paid: €100.00" in history
    assert "December 5, 2026 Refund from the merchant: €100.00" in history
    assert "charge_started" not in html and "state_changed" not in html

    for document in (receipt, credit_note):
        download = get(
            client,
            f"/portal/plans/{payment.public_id}/receipts/{document.number}.pdf",
            when=LOOKED,
        )
        assert download.status_code == 200
        assert download["Content-Type"] == "application/pdf"
        assert download.content.startswith(b"%PDF")
        assert download["Cache-Control"] == "private, no-store"


def test_a_failed_debit_shows_the_instalment_late_and_the_plan_late(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT, card_number=LATER_DECLINED)
    with time_machine.travel(SECOND_DEBIT, tick=False):
        assert debit_run(now=SECOND_DEBIT).failed == 1

    page = get(
        signed_in_as(payment.customer, when=LOOKED),
        f"/portal/plans/{payment.public_id}",
        when=LOOKED,
    )

    html = text_of(page)
    start = html.index(">", html.index('data-testid="instalment-2"')) + 1
    second = compact(html[start : html.index("</tr>", start)])
    assert "Payment failed Late" in second and "Pay early" in second
    assert 'data-testid="plan-state">Late<' in html
    assert "Instalment 2 could not be debited" in compact(html)


def test_the_plan_page_in_french(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)

    page = get(signed_in_as(payment.customer, language="fr"), f"/portal/plans/{payment.public_id}")

    text = compact(text_of(page))
    with translation.override("fr"):
        assert gettext("%(number)d of %(count)d") % {"number": 2, "count": 4} in text
        assert gettext("Schedule") in text and gettext("History") in text
    assert f"2 décembre 2026 100,00{NBSP}€" in text


def test_a_receipt_not_rendered_yet_says_so_and_is_not_downloadable(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT, locale="en")
    with time_machine.travel(SECOND_DEBIT, tick=False):
        debit_run(now=SECOND_DEBIT)
    receipt = Receipt.objects.get(payment=payment)
    client = signed_in_as(payment.customer, when=LOOKED)

    page = get(client, f"/portal/plans/{payment.public_id}", when=LOOKED)
    download = get(
        client, f"/portal/plans/{payment.public_id}/receipts/{receipt.number}.pdf", when=LOOKED
    )

    assert "Being prepared" in compact(text_of(page))
    assert download.status_code == 404


# --- the receipts list ----------------------------------------------------------------------


def test_the_receipts_page_lists_receipts_and_credit_notes_of_every_plan_newest_first(
    shop, other_shop
):
    payment = plan_for(shop, CAMILLE, when=BOUGHT, locale="en")
    plan_for(other_shop, CAMILLE, when=BOUGHT + timedelta(days=1))  # no receipt yet
    theirs = plan_for(shop, DOMINIQUE, when=BOUGHT)
    receipt = second_debited_with_receipt(payment)
    refund = refunded(payment, amount=5_000, when=REFUNDED)
    their_receipt = Receipt.objects.get(payment=theirs, instalment__number=2)

    page = get(signed_in_as(payment.customer, when=LOOKED), "/portal/receipts", when=LOOKED)

    html = text_of(page)
    text = compact(html)
    assert text.index(refund.credit_note_number) < text.index(receipt.number)
    assert (
        f"December 5, 2026 {shop.merchant.legal_name} Credit note {refund.credit_note_number}"
        in text
    )
    assert "€50.00" in text
    assert f"December 2, 2026 {shop.merchant.legal_name} Receipt {receipt.number}" in text
    assert f'href="/portal/plans/{payment.public_id}/receipts/{receipt.number}.pdf"' in html
    assert "Being prepared" in text  # the credit note is not rendered in this test
    assert their_receipt.number not in html


def test_the_receipts_page_has_an_empty_state(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)

    page = get(signed_in_as(payment.customer), "/portal/receipts")

    assert 'data-testid="no-receipts"' in text_of(page)
    assert "No receipts yet." in compact(text_of(page))


# --- only one's own -------------------------------------------------------------------------


def test_another_customers_plan_receipt_and_action_urls_are_not_found(shop, other_shop):
    mine = plan_for(shop, CAMILLE, when=BOUGHT)
    theirs = plan_for(other_shop, DOMINIQUE, when=BOUGHT)
    their_receipt = second_debited_with_receipt(theirs)
    client = signed_in_as(mine.customer, when=LOOKED)

    paths = [
        f"/portal/plans/{theirs.public_id}",
        f"/portal/plans/{theirs.public_id}/receipts/{their_receipt.number}.pdf",
        f"/portal/plans/{mine.public_id}/receipts/{their_receipt.number}.pdf",
        f"/portal/plans/{theirs.public_id}/pay",
        f"/portal/plans/{theirs.public_id}/pay?all=1",
        f"/portal/plans/{theirs.public_id}/instalments/3/postpone",
        f"/portal/plans/{theirs.public_id}/instalments/3/longer",
        f"/portal/plans/{theirs.public_id}/card",
        "/portal/plans/payment_doesnotexist",
    ]
    answers = {path: get(client, path, when=LOOKED).status_code for path in paths}

    assert answers == dict.fromkeys(paths, 404)
    assert get(client, f"/portal/plans/{mine.public_id}", when=LOOKED).status_code == 200
    assert their_receipt.number not in text_of(get(client, "/portal/receipts", when=LOOKED))


def test_a_test_mode_customer_never_sees_the_live_plans_of_the_same_email(shop):
    test_plan = plan_for(shop, CAMILLE, when=BOUGHT)
    live = live_plan(shop, CAMILLE)
    assert live.customer_id != test_plan.customer_id

    as_test = signed_in_as(test_plan.customer)
    as_live = signed_in_as(live.customer)

    test_list = text_of(get(as_test, "/portal/"))
    live_list = text_of(get(as_live, "/portal/"))
    assert test_plan.public_id in test_list and live.public_id not in test_list
    assert live.public_id in live_list and test_plan.public_id not in live_list
    assert get(as_test, f"/portal/plans/{live.public_id}").status_code == 404
    assert get(as_live, f"/portal/plans/{test_plan.public_id}").status_code == 404
    assert "Test mode: no real money moves." in test_list
    assert "Test mode: no real money moves." not in live_list


@pytest.mark.parametrize(
    ("kind", "detail", "label"),
    [
        (
            "instalment_postponed",
            {"number": 3, "from": "2027-01-02", "to": "2027-01-15"},
            "Instalment 3 moved from January 2, 2027 to January 15, 2027",
        ),
        ("instalment_paid", {"number": 2, "amount": 10_000}, "Instalment 2 paid: €100.00"),
        (
            "instalment_paid",
            {"number": 4, "amount": 9_950, "early": True},
            "Instalment 4 paid early: €99.50",
        ),
        ("longer_delay_requested", {"number": 2}, "Longer delay asked for instalment 2"),
        ("card_replaced", {"old": "card_a", "new": "card_b"}, "Card changed"),
        (
            "early_payment_failed",
            {"code": "insufficient_funds"},
            "An early payment did not go through",
        ),
        ("paid_off", {}, "Nothing left to pay"),
        ("charge_started", {"charge": "k"}, None),
        ("early_payment_started", {"charge": "k"}, None),
        ("notification_skipped", {}, None),
    ],
)
def test_history_lines_speak_the_customers_words_and_hide_internal_events(kind, detail, label):
    with translation.override("en"):
        assert event_label(PaymentEvent(kind=kind, detail=detail)) == label
