"""Operators' payment pages: read-only, the merchants' potential-fraud flags, notifications
sent again."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from apps.payments.models import Notification, NotificationAttempt
from apps.payments.notifications import notification_schedule
from apps.payments.services.payments import potential_fraud_flag
from tests.conftest import make_shop
from tests.payments.builders import payment_create_for

pytestmark = pytest.mark.django_db


def test_operators_see_a_payment_with_its_flags_instalments_and_history(admin_client):
    payment = payment_create_for(make_shop())
    potential_fraud_flag(payment=payment, reason="amount_mismatch", now=timezone.now())

    page = admin_client.get(reverse("admin:payments_payment_change", args=[payment.pk]))
    flagged = admin_client.get(reverse("admin:payments_payment_changelist") + "?flagged=yes")
    flags = admin_client.get(reverse("admin:payments_potentialfraudflag_changelist"))

    assert page.status_code == 200
    assert "amount_mismatch" in page.content.decode()
    assert page.content.decode().count(payment.public_id) >= 1
    assert list(flagged.context["cl"].result_list) == [payment]
    assert [flag.reason for flag in flags.context["cl"].result_list] == ["amount_mismatch"]


def test_payments_cannot_be_edited_or_deleted_in_the_admin(admin_client):
    payment = payment_create_for(make_shop())

    change = admin_client.post(
        reverse("admin:payments_payment_change", args=[payment.pk]), {"state": "paid"}
    )
    delete = admin_client.get(reverse("admin:payments_payment_delete", args=[payment.pk]))

    payment.refresh_from_db()
    assert payment.state == "not_started"
    assert change.status_code == 403
    assert delete.status_code == 403


def test_an_operator_may_send_a_notification_again(
    admin_client, django_capture_on_commit_callbacks
):
    payment = payment_create_for(make_shop())
    notification = notification_schedule(payment=payment, event="accepted", now=timezone.now())
    Notification.objects.filter(pk=notification.pk).update(status="failed", next_attempt_at=None)

    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            reverse("admin:payments_notification_changelist"),
            {"action": "send_again", ACTION_CHECKBOX_NAME: [notification.pk]},
        )

    notification.refresh_from_db()
    assert response.status_code == 302
    assert notification.status == "pending"
    assert notification.next_attempt_at is not None
    assert callbacks  # the attempt is queued after commit
    assert not NotificationAttempt.objects.exists()
