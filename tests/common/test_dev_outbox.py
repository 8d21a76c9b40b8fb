"""The developer outbox page: the latest emails and SMS, and one email's text and HTML."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from apps.common.models import OutgoingEmail
from apps.verification.models import SmsMessage
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/dev/outbox"
CREATED = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
CONTEXT = {
    "payment_id": "payment_123",
    "purchase_amount": "100,00 €",
    "customer_name": "Ada & Co <script>",
    "order_references": ["A-1"],
    "plan": "Paiement en 2 fois",
    "instalments": [{"label": "1 sur 2", "date": "4 mai 2026", "amount": "50,00 €"}],
    "total": "100,00 €",
    "livemode": True,
    "dashboard_link": "https://tranche.example/dashboard",
}


@pytest.fixture
def staff_client(client, settings):
    settings.DEBUG = False
    client.force_login(UserFactory(is_staff=True))
    return client


def sent_email(number: int = 1, **fields) -> OutgoingEmail:
    values = {
        "key": f"payment:{number}:paid",
        "to": f"customer{number}@example.com",
        "subject": f"Instalment {number} received",
        "template": "emails/schedules/debit_succeeded",
        "language": "en",
        "text": f"Hello, instalment {number} is paid.",
        "html": f"<p>Hello, instalment <b>{number}</b> is paid.</p>",
        "created_at": CREATED + timedelta(minutes=number),
        "sent_at": CREATED + timedelta(minutes=number, seconds=5),
        "attempts": 1,
    }
    return OutgoingEmail.objects.create(**(values | fields))


def unsent_email(**fields) -> OutgoingEmail:
    values = {
        "key": "payment:payment_123:accepted:merchant",
        "to": "owner@shop.example",
        "subject": "New payment payment_123 accepted",
        "template": "emails/payment_accepted_merchant",
        "context": CONTEXT,
        "language": "en",
        "created_at": CREATED,
    }
    return OutgoingEmail.objects.create(**(values | fields))


def sms(text: str, *, minute: int = 0) -> SmsMessage:
    return SmsMessage.objects.create(
        key=f"sms:{text}",
        phone="+33612345678",
        text=text,
        livemode=False,
        status=SmsMessage.Status.NOT_SENT_TEST_MODE,
        created_at=CREATED + timedelta(minutes=minute),
    )


def email_url(email: OutgoingEmail) -> str:
    return reverse("common:dev-outbox-email", args=[email.pk])


def test_the_pages_have_named_routes():
    assert reverse("common:dev-outbox") == URL
    assert reverse("common:dev-outbox-email", args=[7]) == "/dev/outbox/email/7"


def test_the_outbox_does_not_exist_for_anonymous_visitors_outside_development(client, settings):
    settings.DEBUG = False
    email = sent_email()

    listing = client.get(URL)
    detail = client.get(email_url(email))

    assert listing.status_code == detail.status_code == 404
    assert email.subject not in listing.content.decode() + detail.content.decode()


def test_the_outbox_does_not_exist_for_a_user_who_is_not_staff(client, settings):
    settings.DEBUG = False
    email = sent_email()
    client.force_login(UserFactory(is_staff=False))

    assert client.get(URL).status_code == 404
    assert client.get(email_url(email)).status_code == 404


def test_in_development_anybody_sees_the_outbox(client, settings):
    settings.DEBUG = True
    email = sent_email()

    listing = client.get(URL)
    detail = client.get(email_url(email))

    assert listing.status_code == detail.status_code == 200
    assert email.subject in listing.content.decode()


def test_staff_see_the_latest_emails_and_text_messages_newest_first(staff_client):
    older = sent_email(1)
    newer = sent_email(
        2,
        attachments=[
            {
                "storage": "default",
                "name": "receipts/R-2026-000002.pdf",
                "filename": "receipt-R-2026-000002.pdf",
                "mimetype": "application/pdf",
            }
        ],
    )
    failing = unsent_email(
        key="payment:3:reminder",
        subject="Your instalment is due in 3 days",
        created_at=CREATED + timedelta(minutes=3),
        attempts=2,
        last_error="SMTPServerDisconnected: connection unexpectedly closed",
    )
    sms("first text", minute=1)
    sms("second text", minute=2)

    response = staff_client.get(URL, HTTP_ACCEPT_LANGUAGE="en")

    page = response.content.decode()
    assert response.status_code == 200
    assert page.index(failing.subject) < page.index(newer.subject) < page.index(older.subject)
    assert older.to in page and newer.to in page and failing.to in page
    assert "receipt-R-2026-000002.pdf" in page
    assert "receipts/R-2026-000002.pdf" not in page  # the storage path is not shown
    assert "Not sent" in page
    assert "SMTPServerDisconnected: connection unexpectedly closed" in page
    assert f'href="{email_url(newer)}"' in page
    assert page.index('id="emails"') < page.index('id="sms"')
    assert page.index('id="sms"') < page.index("second text") < page.index("first text")
    assert "Not sent (test mode)" in page


def test_the_outbox_shows_at_most_100_emails(staff_client):
    OutgoingEmail.objects.bulk_create(
        OutgoingEmail(
            key=f"bulk:{number}",
            to="customer@example.com",
            subject=f"message number {number:03d}.",
            template="emails/payment_accepted_merchant",
            created_at=CREATED + timedelta(seconds=number),
        )
        for number in range(105)
    )

    page = staff_client.get(URL).content.decode()

    assert page.count("message number") == 100
    assert "message number 104." in page
    assert "message number 004." not in page


def test_an_empty_outbox_says_so(staff_client):
    page = staff_client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "No email yet." in page
    assert "No text message yet." in page
    assert "<table>" not in page


def test_a_sent_email_shows_its_text_and_its_html_in_a_sandboxed_frame(staff_client):
    email = sent_email(
        html='<p onclick="steal()">Hello <b>Ada</b></p><script>alert(1)</script>',
        text="Hello Ada,\nyour instalment is paid.",
    )

    response = staff_client.get(email_url(email), HTTP_ACCEPT_LANGUAGE="en")

    page = response.content.decode()
    assert response.status_code == 200
    assert email.subject in page and email.to in page
    assert "Hello Ada,\nyour instalment is paid." in page
    # The message's HTML is only the frame's document, escaped in its attribute; the frame
    # runs no script and has no origin.
    escaped = (
        "&lt;p onclick=&quot;steal()&quot;&gt;Hello &lt;b&gt;Ada&lt;/b&gt;&lt;/p&gt;"
        "&lt;script&gt;alert(1)&lt;/script&gt;"
    )
    assert f'<iframe sandbox srcdoc="{escaped}"' in page
    assert "<script>alert(1)</script>" not in page
    assert "rendered now" not in page


def test_an_unsent_email_is_rendered_now_from_its_template_and_left_unchanged(staff_client):
    email = unsent_email()

    response = staff_client.get(email_url(email), HTTP_ACCEPT_LANGUAGE="en")

    page = response.content.decode()
    assert response.status_code == 200
    assert "rendered now" in page
    assert "Ada &amp; Co &lt;script&gt;" in page  # the text part, escaped in the page
    assert "<script>" not in page  # a body rendered now is marked safe: escaped anyway
    # the HTML part escaped once by its template, then once more in the srcdoc attribute
    assert "Ada &amp;amp; Co &amp;lt;script&amp;gt;" in page
    email.refresh_from_db()
    assert (email.text, email.html, email.sent_at, email.attempts) == ("", "", None, 0)


def test_an_email_whose_template_is_missing_says_why(staff_client):
    email = unsent_email(template="emails/no_such_template")

    response = staff_client.get(email_url(email), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert "TemplateDoesNotExist: emails/no_such_template.txt" in response.content.decode()


def test_an_unknown_email_is_not_found(staff_client):
    assert staff_client.get("/dev/outbox/email/999999").status_code == 404


def test_the_pages_only_answer_reads(staff_client):
    email = sent_email()

    assert staff_client.post(URL).status_code == 405
    assert staff_client.post(email_url(email)).status_code == 405


def test_the_old_sms_address_leads_to_the_sms_on_the_outbox_page(staff_client):
    response = staff_client.get(reverse("verification:sms-outbox"))

    assert reverse("verification:sms-outbox") == "/dev/sms"
    assert response.status_code == 302
    assert response["Location"] == "/dev/outbox#sms"
