"""The settings page: payment defaults, email for notifications, payout IBAN and BIC."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from apps.merchants import services
from apps.merchants.models import Membership, Merchant
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's
IBAN_FR = "FR7630006000011234567890189"
IBAN_FR_GROUPED = "FR76 3000 6000 0112 3456 7890 189"
IBAN_DE = "DE89370400440532013000"
IBAN_SA = "SA0380000000608010167519"  # valid, but Saudi Arabia is outside SEPA


def form_data(**changes) -> dict:
    data = {
        "return_url": "https://shop.example/merci",
        "customer_cancel_url": "https://shop.example/panier",
        "ipn_callback_url": "https://shop.example/ipn",
        "excluded_categories": "digital",
        "authorisation_policy": "first_instalment",
        "notification_email": "",
        "category": "",
        "listed_in_directory": "on",  # listed: ticked on the page, as merchants start
        "payout_iban": "",
        "payout_bic": "",
        "password": "",
    }
    data.update(changes)
    return data


def save(client, shop, **changes):
    client.force_login(shop.owner)
    return client.post(
        reverse("merchants:settings"), form_data(**changes), HTTP_ACCEPT_LANGUAGE="en"
    )


def stored(shop) -> Merchant:
    return Merchant.objects.get(pk=shop.merchant.pk)


def with_iban(shop, iban=IBAN_FR, bic="") -> Merchant:
    return services.merchant_payout_details_update(
        merchant=shop.merchant, iban=iban, bic=bic, now=timezone.now()
    )


def test_an_owner_sets_the_iban_with_the_password_and_it_is_stored_compact(client, shop):
    response = save(
        client,
        shop,
        payout_iban="fr76 3000 6000 0112 3456 7890 189",
        payout_bic="bnpa frpp",
        password=PASSWORD,
    )

    merchant = stored(shop)
    assert response.status_code == 302
    assert merchant.payout_iban == IBAN_FR
    assert merchant.payout_bic == "BNPAFRPP"
    event = merchant.events.get(kind="payout_details_changed")
    assert event.detail == "IBAN …0189"
    assert event.actor == shop.owner


def test_the_page_shows_the_stored_iban_grouped_by_four(client, shop):
    with_iban(shop)
    client.force_login(shop.owner)

    page = client.get(reverse("merchants:settings"))

    assert f'value="{IBAN_FR_GROUPED}"' in page.content.decode()


def test_changing_the_iban_without_the_password_is_refused_with_a_clear_message(client, shop):
    with_iban(shop)

    response = save(client, shop, payout_iban=IBAN_DE)

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "password": ["Enter your password to change the IBAN for payouts."]
    }
    assert stored(shop).payout_iban == IBAN_FR
    assert not stored(shop).events.filter(kind="settings_changed").exists()


def test_a_wrong_password_does_not_change_the_iban(client, shop):
    with_iban(shop)

    response = save(client, shop, payout_iban=IBAN_DE, password="not my password")

    assert response.context["form"].errors == {
        "password": ["Wrong password: the IBAN was not changed."]
    }
    assert stored(shop).payout_iban == IBAN_FR


def test_removing_the_iban_also_needs_the_password(client, shop):
    with_iban(shop)

    refused = save(client, shop, payout_iban="")
    removed = save(client, shop, payout_iban="", password=PASSWORD)

    assert set(refused.context["form"].errors) == {"password"}
    assert removed.status_code == 302
    assert stored(shop).payout_iban == ""
    assert stored(shop).events.filter(kind="payout_details_changed").last().detail == (
        "IBAN removed"
    )


def test_other_settings_are_saved_without_the_password_when_the_iban_stays(client, shop):
    with_iban(shop)

    response = save(
        client,
        shop,
        payout_iban=IBAN_FR_GROUPED,  # sent back as the page shows it
        notification_email="compta@shop.example",
        authorisation_policy="whole_amount",
    )

    merchant = stored(shop)
    assert response.status_code == 302
    assert merchant.notification_email == "compta@shop.example"
    assert merchant.notifications_to == "compta@shop.example"
    assert merchant.authorisation_policy == "whole_amount"
    assert merchant.payout_iban == IBAN_FR
    assert merchant.events.get(kind="settings_changed").detail == (
        "return_url, customer_cancel_url, ipn_callback_url, excluded_categories, "
        "authorisation_policy, notification_email"
    )
    assert merchant.events.filter(kind="payout_details_changed").count() == 1  # with_iban's


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"payout_iban": "FR76 3000 6000 0112 3456 7890 188"}, "payout_iban", "valid IBAN"),
        ({"payout_iban": "hello"}, "payout_iban", "valid IBAN"),
        ({"payout_iban": IBAN_SA}, "payout_iban", "SEPA"),
        ({"payout_iban": "FR76" * 20}, "payout_iban", "at most 50 characters"),
        ({"payout_iban": IBAN_FR, "payout_bic": "NOTABIC!"}, "payout_bic", "valid BIC"),
        ({"payout_bic": "BNPAFRPP"}, "payout_bic", "IBAN too"),
        ({"notification_email": "compta@"}, "notification_email", "valid email"),
    ],
)
def test_bad_payout_details_are_explained_next_to_the_field(client, shop, changes, field, message):
    response = save(client, shop, password=PASSWORD, **changes)

    errors = response.context["form"].errors
    assert response.status_code == 200
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert stored(shop).payout_iban == ""
    assert stored(shop).notification_email == ""


def test_wrong_passwords_on_the_settings_page_count_toward_the_login_rate_limit(client, shop):
    for _attempt in range(5):
        save(client, shop, payout_iban=IBAN_FR, password="guess")

    response = save(client, shop, payout_iban=IBAN_FR, password=PASSWORD)

    assert response.status_code == 429
    assert "registration/locked_out.html" in [t.name for t in response.templates]
    assert stored(shop).payout_iban == ""


def test_staff_members_see_the_settings_read_only(client, shop):
    with_iban(shop)
    staff = MembershipFactory(merchant=shop.merchant, role=Membership.Role.STAFF).user
    client.force_login(staff)

    page = client.get(reverse("merchants:settings"), HTTP_ACCEPT_LANGUAGE="en")
    change = client.post(
        reverse("merchants:settings"),
        form_data(payout_iban=IBAN_DE, password=PASSWORD),
    )

    html = page.content.decode()
    assert page.status_code == 200
    assert html.count("<fieldset disabled>") == 4  # defaults, notifications, directory, payouts
    assert 'name="password"' not in html
    assert ">Save</button>" not in html
    assert IBAN_FR_GROUPED in html
    assert change.status_code == 403
    assert stored(shop).payout_iban == IBAN_FR


def test_the_settings_page_speaks_french_and_english(client, shop):
    client.force_login(shop.owner)

    french = client.get(reverse("merchants:settings"))
    english = client.get(reverse("merchants:settings"), HTTP_ACCEPT_LANGUAGE="en")

    assert french.status_code == english.status_code == 200
    assert french["Content-Language"] == "fr"
    assert "IBAN for payouts" in english.content.decode()
    assert "Payouts" in english.content.decode()
    assert 'autocomplete="current-password"' in english.content.decode()


def test_the_service_leaves_the_settings_it_is_not_given_as_they_are(shop):
    with_iban(shop, bic="BNPAFRPP")
    Merchant.objects.filter(pk=shop.merchant.pk).update(notification_email="n@shop.example")

    merchant = services.merchant_settings_update(
        merchant=shop.merchant,
        return_url="https://shop.example/back",
        customer_cancel_url="",
        ipn_callback_url="",
        excluded_categories=[],
        authorisation_policy="first_instalment",
        now=timezone.now(),
    )

    merchant.refresh_from_db()
    assert merchant.return_url == "https://shop.example/back"
    assert (merchant.payout_iban, merchant.payout_bic) == (IBAN_FR, "BNPAFRPP")
    assert merchant.notification_email == "n@shop.example"


def test_the_service_refuses_an_invalid_iban_and_changes_nothing(shop):
    with pytest.raises(ValidationError):
        services.merchant_settings_update(
            merchant=shop.merchant,
            return_url="https://shop.example/back",
            customer_cancel_url="",
            ipn_callback_url="",
            excluded_categories=[],
            authorisation_policy="first_instalment",
            payout_iban="FR00 1234",
            now=timezone.now(),
        )

    assert stored(shop).return_url == ""
    assert not stored(shop).events.filter(kind="settings_changed").exists()
