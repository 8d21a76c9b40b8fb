"""The operators' page of payments in default: closing a collection, after a confirmation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from apps.payments.models import Instalment, Payment, PaymentEvent
from apps.schedules.models import SupportRequest
from tests.schedules.builders import accepted

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)
CHANGELIST = "admin:schedules_defaultedpayment_changelist"


def in_default(shop) -> Payment:
    payment = accepted(shop, when=BOUGHT)
    Payment.objects.filter(pk=payment.pk).update(state="default")
    payment.instalments.exclude(number=1).update(state="claimed", next_debit_at=None)
    return payment


def test_the_page_lists_only_payments_in_default(shop, admin_client):
    defaulted = in_default(shop)
    running = accepted(shop, when=BOUGHT)

    page = admin_client.get(reverse(CHANGELIST))

    assert page.status_code == 200
    assert defaulted.public_id in page.text
    assert running.public_id not in page.text


def test_closing_asks_first_then_covers_the_claimed_instalments(shop, admin_client):
    payment = in_default(shop)
    chosen = {"action": "close_collection", ACTION_CHECKBOX_NAME: [payment.pk]}

    asked = admin_client.post(reverse(CHANGELIST), chosen)

    assert asked.status_code == 200
    assert "cannot be undone" in asked.text or "irréversible" in asked.text
    assert Payment.objects.get(pk=payment.pk).state == "default"

    done = admin_client.post(
        reverse(CHANGELIST), {**chosen, "confirmed": "yes", "note": "Recovered by the agency"}
    )

    assert done.status_code == 302
    assert Payment.objects.get(pk=payment.pk).state == "collection_done"
    states = sorted(Instalment.objects.filter(payment=payment).values_list("state", flat=True))
    assert states == ["covered", "covered", "covered", "paid"]
    event = PaymentEvent.objects.get(payment=payment, kind="collection_done")
    assert event.detail == {"covered": 3, "note": "Recovered by the agency"}


# --- support requests ---------------------------------------------------------------------

SUPPORT_CHANGELIST = "admin:schedules_supportrequest_changelist"


def support_request(**fields) -> SupportRequest:
    values = {
        "kind": "contact",
        "livemode": False,
        "email": "camille.martin@example.com",
        "message": "Where is my parcel?",
        "created_at": BOUGHT,
    }
    return SupportRequest.objects.create(**(values | fields))


def test_operators_find_support_requests_by_kind_status_and_email(admin_client):
    question = support_request()
    deletion = support_request(kind="deletion", email="dominique@example.com")

    by_kind = admin_client.get(reverse(SUPPORT_CHANGELIST), {"kind__exact": "deletion"})
    by_email = admin_client.get(reverse(SUPPORT_CHANGELIST), {"q": "camille.martin@example.com"})

    assert by_kind.status_code == by_email.status_code == 200
    assert deletion.public_id in by_kind.text and question.public_id not in by_kind.text
    assert question.public_id in by_email.text and deletion.public_id not in by_email.text


def test_mark_done_and_close_record_who_handled_the_requests_and_when(admin_client, admin_user):
    first, second = support_request(), support_request(kind="correction")

    response = admin_client.post(
        reverse(SUPPORT_CHANGELIST),
        {"action": "mark_done", ACTION_CHECKBOX_NAME: [first.pk, second.pk]},
    )
    admin_client.post(
        reverse(SUPPORT_CHANGELIST), {"action": "close", ACTION_CHECKBOX_NAME: [second.pk]}
    )

    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.handled_by) == ("done", admin_user)
    assert first.handled_at is not None
    assert (second.status, second.handled_by) == ("closed", admin_user)


def test_operators_set_the_status_and_a_note_but_not_what_the_customer_wrote(
    admin_client, admin_user
):
    request = support_request()
    url = reverse("admin:schedules_supportrequest_change", args=[request.pk])

    response = admin_client.post(
        url,
        {
            "status": "done",
            "operator_note": "Answered by email.",
            "message": "Changed by an operator",
            "email": "someone@else.example",
        },
    )

    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == "done"
    assert request.operator_note == "Answered by email."
    assert request.handled_by == admin_user and request.handled_at is not None
    assert request.message == "Where is my parcel?"
    assert request.email == "camille.martin@example.com"
