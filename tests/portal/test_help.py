"""Help and the public pages (help, contact, how it works, privacy, terms): French and
English, signed out and signed in; the contact form's checks, its honeypot and its ticket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from apps.common.models import OutgoingEmail
from apps.schedules.models import SupportRequest
from tests.portal.helpers import CAMILLE, DOMINIQUE, plan_for, sign_in

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
PAGES = {
    "portal:help": "Help",
    "portal:contact": "Contact us",
    "portal:how-it-works": "How Tranche works",
    "portal:privacy": "Privacy policy",
    "portal:terms": "Terms of use",
}
MESSAGE = {
    "name": "Alex Petit",
    "email": "alex.petit@example.com",
    "subject": "refund",
    "message": "I returned my shoes last week.",
    "website": "",
}


@pytest.fixture(autouse=True)
def _now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def camille_plan(shop):
    return plan_for(shop, CAMILLE, when=BOUGHT)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_public_pages_open_signed_out_in_both_languages(client, language):
    for name, title in PAGES.items():
        page = client.get(reverse(name), HTTP_ACCEPT_LANGUAGE=language)

        assert page.status_code == 200, name
        assert f'<html lang="{language}">' in page.text
        with translation.override(language):
            assert f"<title>{gettext(title)} · Tranche</title>" in page.text, name
            assert gettext("Sign out") not in page.text  # no portal navigation


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_public_pages_show_the_navigation_to_a_signed_in_customer(
    client, camille_plan, language
):
    sign_in(client, camille_plan.customer, when=NOW)

    for name in PAGES:
        page = client.get(reverse(name), HTTP_ACCEPT_LANGUAGE=language)

        assert page.status_code == 200, name
        assert reverse("portal:sign-out") in page.text, name
        assert reverse("portal:data") in page.text, name


def test_the_help_page_states_the_rules_as_the_settings_set_them(client, settings):
    settings.POSTPONE_MAX_DAYS = 10
    settings.DUNNING_RETRY_DAYS = [2, 4]
    settings.DUNNING_CONTACT_FROM_DAYS = 6
    settings.DUNNING_DEFAULT_AFTER_DAYS = 12

    page = client.get(reverse("portal:help"), **EN)

    assert "up to 10 days later" in page.text
    assert "once per instalment" in page.text
    assert "3 days before each debit" in page.text
    assert "on days 2 and 4 after the due date" in page.text
    assert "From day 6" in page.text
    assert "After 12 days" in page.text


def test_the_privacy_policy_states_what_deletion_keeps_and_how_to_complain(client):
    page = client.get(reverse("portal:privacy"), **EN)

    assert "L123-22" in page.text
    assert "10 years" in page.text
    assert "5 years (anti-money-laundering rules)" in page.text
    assert "30 days after the check" in page.text
    assert "CNIL" in page.text


# --- the contact form ---------------------------------------------------------------------


def test_a_visitor_sends_a_message_that_becomes_a_ticket(client):
    response = client.post(reverse("portal:contact"), MESSAGE, **EN)

    assert response.status_code == 303
    assert response["Location"] == f"{reverse('portal:contact')}?sent=1"
    ticket = SupportRequest.objects.get()
    assert ticket.kind == "contact" and ticket.status == "open"
    assert ticket.customer is None and ticket.livemode is True
    assert ticket.name == "Alex Petit"
    assert ticket.email == "alex.petit@example.com"
    assert ticket.message == "A return or a refund\n\nI returned my shoes last week."
    received = OutgoingEmail.objects.get(key=f"support:{ticket.public_id}:received")
    assert received.to == "alex.petit@example.com"
    assert OutgoingEmail.objects.filter(key=f"support:{ticket.public_id}:notice").exists()
    thanks = client.get(response["Location"], **EN)
    assert 'data-testid="contact-sent"' in thanks.text
    assert ticket.public_id in thanks.text


def test_sending_the_same_message_twice_makes_one_ticket(client):
    client.post(reverse("portal:contact"), MESSAGE, **EN)
    client.post(reverse("portal:contact"), MESSAGE, **EN)

    assert SupportRequest.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("email", "not-an-email", "Enter a valid email address."),
        ("email", "", "This field is required."),
        ("message", "", "This field is required."),
        ("name", "", "This field is required."),
        ("subject", "complaint", "Select a valid choice."),
        ("message", "x" * 4001, "Ensure this value has at most 4000 characters"),
    ],
)
def test_the_contact_form_explains_what_is_wrong(client, field, value, error):
    response = client.post(reverse("portal:contact"), {**MESSAGE, field: value}, **EN)

    assert response.status_code == 400
    assert error in response.text
    assert not SupportRequest.objects.exists()


def test_a_bot_filling_the_hidden_field_is_thanked_and_nothing_is_sent(client):
    response = client.post(
        reverse("portal:contact"), {**MESSAGE, "website": "https://spam.example"}, **EN
    )

    assert response.status_code == 303
    assert response["Location"].endswith("?sent=1")
    assert not SupportRequest.objects.exists()
    assert not OutgoingEmail.objects.exists()


def test_one_address_cannot_be_sent_more_than_three_messages_an_hour(client):
    for number in range(3):
        client.post(reverse("portal:contact"), {**MESSAGE, "message": f"Message {number}"}, **EN)

    fourth = client.post(reverse("portal:contact"), {**MESSAGE, "message": "Again"}, **EN)

    assert fourth.status_code == 400
    assert "You have sent us several messages in the last hour" in fourth.text
    assert SupportRequest.objects.count() == 3
    with time_machine.travel(NOW + timedelta(hours=1, minutes=1), tick=False):
        later = client.post(reverse("portal:contact"), {**MESSAGE, "message": "Later"}, **EN)
    assert later.status_code == 303
    assert SupportRequest.objects.count() == 4


def test_a_signed_in_customer_is_prefilled_and_names_one_of_their_plans(client, camille_plan):
    customer = camille_plan.customer
    sign_in(client, customer, when=NOW)

    form = client.get(reverse("portal:contact"), **EN)
    response = client.post(
        reverse("portal:contact"),
        {**MESSAGE, "email": customer.email, "plan": camille_plan.public_id},
        **EN,
    )

    assert f'value="{customer.email}"' in form.text
    assert camille_plan.merchant.legal_name in form.text
    assert response.status_code == 303
    ticket = SupportRequest.objects.get()
    assert ticket.customer == customer
    assert ticket.payment == camille_plan
    assert ticket.livemode is False


def test_a_customer_cannot_name_someone_elses_plan(client, camille_plan, other_shop):
    theirs = plan_for(other_shop, DOMINIQUE, when=BOUGHT)
    sign_in(client, camille_plan.customer, when=NOW)

    response = client.post(reverse("portal:contact"), {**MESSAGE, "plan": theirs.public_id}, **EN)

    assert response.status_code == 400
    assert "Select a valid choice." in response.text
    assert theirs.merchant.legal_name not in response.text
    assert not SupportRequest.objects.exists()
