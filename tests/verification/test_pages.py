"""The SMS on the dev outbox page (apps/common) and the operators' read-only admin of checks
and messages."""

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.verification import services
from apps.verification.models import SmsMessage
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PHONE = "+33612345678"
URL = "/dev/outbox"  # the old /dev/sms redirects there (tests/common/test_dev_outbox.py)


def start(*, livemode: bool):
    return services.phone_check_start(
        phone=PHONE,
        livemode=livemode,
        purpose="checkout",
        subject="s",
        language="en",
        now=timezone.now(),
    )


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True))
    return client


def test_the_old_outbox_address_keeps_its_name_and_leads_to_the_sms(client):
    response = client.get(reverse("verification:sms-outbox"))

    assert response.status_code == 302
    assert response["Location"] == f"{URL}#sms"


def test_the_outbox_page_does_not_exist_for_anonymous_visitors_outside_development(
    client, settings
):
    settings.DEBUG = False
    start(livemode=False)

    response = client.get(URL)

    assert response.status_code == 404
    assert b"Tranche: your code" not in response.content


def test_the_outbox_page_does_not_exist_for_a_merchant_outside_development(client, settings):
    settings.DEBUG = False
    client.force_login(UserFactory(is_staff=False))

    assert client.get(URL).status_code == 404


def test_staff_see_the_latest_messages_newest_first(staff_client, settings):
    settings.DEBUG = False
    first = start(livemode=False)
    second = start(livemode=False)

    response = staff_client.get(URL, HTTP_ACCEPT_LANGUAGE="en")

    page = response.content.decode()
    assert response.status_code == 200
    assert f"your code is {second.test_code}" in page
    assert page.index(f"your code is {second.test_code}") < page.index(
        f"your code is {first.test_code}"
    )
    assert PHONE in page
    assert "Not sent (test mode)" in page


def test_a_live_message_shows_a_masked_number_and_no_code(
    staff_client, settings, django_capture_on_commit_callbacks
):
    settings.DEBUG = False
    with django_capture_on_commit_callbacks(execute=False):
        start(livemode=True)

    page = staff_client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "+33 6 •• •• •• 78" in page
    assert PHONE not in page
    assert "your code is ••••••" in page
    assert "Queued" in page


def test_in_development_anybody_sees_the_outbox(client, settings):
    settings.DEBUG = True
    check = start(livemode=False)

    response = client.get(URL)

    assert response.status_code == 200
    assert check.test_code in response.content.decode()


def test_the_outbox_page_shows_at_most_100_messages(staff_client):
    now = timezone.now()
    SmsMessage.objects.bulk_create(
        SmsMessage(
            key=f"k{i}",
            phone=PHONE,
            text=f"message number {i:03d}.",
            livemode=False,
            status=SmsMessage.Status.NOT_SENT_TEST_MODE,
            created_at=now,
        )
        for i in range(105)
    )

    page = staff_client.get(URL).content.decode()

    assert page.count("message number") == 100
    assert "message number 104." in page
    assert "message number 004." not in page


def test_an_empty_outbox_says_so(staff_client):
    page = staff_client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "No text message yet." in page
    assert "<table>" not in page


def test_the_admin_never_shows_a_code_hash_and_shows_test_codes_only(admin_client):
    test_check = start(livemode=False)
    live_check = start(livemode=True)  # its SMS stays queued: no commit in this test

    test_page = admin_client.get(
        reverse("admin:verification_phonecheck_change", args=[test_check.pk])
    ).content.decode()
    live_page = admin_client.get(
        reverse("admin:verification_phonecheck_change", args=[live_check.pk])
    ).content.decode()

    assert test_check.code_hash not in test_page
    assert live_check.code_hash not in live_page
    assert test_check.test_code in test_page


def test_the_admin_never_shows_the_sealed_text_of_a_live_message(
    admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        start(livemode=True)
    message = SmsMessage.objects.get()

    page = admin_client.get(
        reverse("admin:verification_smsmessage_change", args=[message.pk])
    ).content.decode()

    assert message.sealed_text
    assert message.sealed_text not in page
    assert "your code is ••••••" in page


def test_the_admin_lists_are_read_only(admin_client):
    start(livemode=False)

    phone_checks = admin_client.get(reverse("admin:verification_phonecheck_changelist"))
    messages = admin_client.get(reverse("admin:verification_smsmessage_changelist"))

    assert phone_checks.status_code == messages.status_code == 200
    assert admin_client.get(reverse("admin:verification_smsmessage_add")).status_code == 403
    assert admin_client.get(reverse("admin:verification_phonecheck_add")).status_code == 403
