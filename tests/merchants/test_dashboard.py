"""The merchant dashboard: registration, log-in, API keys page, in French and English."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from apps.merchants import services
from apps.merchants.models import APIKey, Membership, Merchant
from apps.merchants.selectors import api_key_for_secret
from tests.factories import MembershipFactory
from tests.support import all_database_text

pytestmark = pytest.mark.django_db

REGISTRATION = {
    "legal_name": "Chez Léa SARL",
    "country": "FR",
    "website": "https://chezlea.example",
    "first_name": "Léa",
    "last_name": "Martin",
    "email": "lea@chezlea.example",
    "password1": "un-mot-de-passe-solide",
    "password2": "un-mot-de-passe-solide",
    "accept_terms": "on",
}
SECRET = re.compile(r"sk_(test|live)_[0-9A-Za-z]{32}")


def owner_client(client, shop):
    client.force_login(shop.owner)
    return client


def test_the_login_page_is_served(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_pages_speak_french_by_default_and_english_on_request(client):
    french = client.get(reverse("merchants:register"))
    english = client.get(reverse("merchants:register"), HTTP_ACCEPT_LANGUAGE="en")

    assert french["Content-Language"] == "fr"
    assert "Créer mon compte" in french.content.decode()
    assert english["Content-Language"] == "en"
    assert "Create my account" in english.content.decode()


def test_registration_creates_a_pending_merchant_and_logs_the_owner_in(client):
    response = client.post(reverse("merchants:register"), REGISTRATION, follow=True)

    merchant = Merchant.objects.get(legal_name="Chez Léa SARL")
    assert merchant.status == Merchant.Status.PENDING
    assert merchant.memberships.get().role == Membership.Role.OWNER
    assert response.redirect_chain[-1][0] == reverse("dashboard:home")
    assert 'class="banner warning"' in response.content.decode()


def test_a_store_only_merchant_needs_no_website(client):
    data = {**REGISTRATION, "website": "", "store_only": "on"}

    client.post(reverse("merchants:register"), data)

    assert Merchant.objects.get().store_only


def test_registration_errors_are_shown_next_to_each_field(client):
    data = {**REGISTRATION, "website": "", "password2": "autre-chose", "email": "nope"}

    response = client.post(reverse("merchants:register"), data, HTTP_ACCEPT_LANGUAGE="en")

    form = response.context["form"]
    assert set(form.errors) == {"website", "password2", "email"}
    assert "tick “I only sell in store”" in response.content.decode()
    assert not Merchant.objects.exists()


def test_registration_errors_speak_french_too(client):
    data = {**REGISTRATION, "website": ""}

    response = client.post(reverse("merchants:register"), data, HTTP_ACCEPT_LANGUAGE="fr")

    assert "Indiquez le site web de votre boutique" in response.content.decode()


def test_an_over_long_email_is_a_form_error_not_a_crash(client):
    data = {**REGISTRATION, "email": "x" * 140 + "@shop.example"}

    response = client.post(reverse("merchants:register"), data)

    assert response.status_code == 200
    assert "email" in response.context["form"].errors


def test_registration_refuses_a_weak_password(client):
    data = {**REGISTRATION, "password1": "123", "password2": "123"}

    response = client.post(reverse("merchants:register"), data)

    assert "password1" in response.context["form"].errors


def test_the_dashboard_needs_a_login(client):
    response = client.get(reverse("merchants:account"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_user_without_a_merchant_is_told_so(client, django_user_model):
    user = django_user_model.objects.create_user("lonely@x.example", password="x")
    client.force_login(user)

    response = client.get(reverse("merchants:account"))

    assert response.status_code == 403
    assert response.templates[0].name == "merchants/no_merchant.html"


def test_the_dashboard_lists_the_fee_plans(client, shop):
    response = owner_client(client, shop).get(reverse("merchants:account"))

    assert response.status_code == 200
    assert len(response.context["fee_plans"]) == 21
    assert shop.merchant.public_id in response.content.decode()


def test_the_api_page_shows_prefixes_never_secrets(client, shop):
    response = owner_client(client, shop).get(reverse("merchants:api-keys"))

    page = response.content.decode()
    assert shop.test_key[:12] in page
    assert not SECRET.search(page)


def test_a_new_key_is_shown_once(client, shop):
    client = owner_client(client, shop)

    created = client.post(reverse("merchants:api-keys"), {"mode": "live"})
    again = client.get(reverse("merchants:api-keys"))

    secret = SECRET.search(created.content.decode()).group(0)
    assert secret.startswith("sk_live_")
    assert secret[12:] not in all_database_text()  # sessions and messages included
    assert created["Cache-Control"].startswith("max-age=0")
    assert api_key_for_secret(secret, now=timezone.now()).merchant == shop.merchant
    assert secret not in again.content.decode()


def test_rotating_asks_first_then_gives_a_new_key_and_keeps_the_old_one_for_a_while(client, shop):
    client = owner_client(client, shop)
    key = APIKey.objects.get(merchant=shop.merchant, livemode=False)
    url = reverse("merchants:api-key-rotate", args=[key.pk])

    confirm = client.get(url)
    done = client.post(url)

    assert confirm.status_code == 200
    assert b'<form method="post">' in confirm.content
    new_secret = SECRET.search(done.content.decode()).group(0)
    assert new_secret != shop.test_key
    assert api_key_for_secret(shop.test_key, now=timezone.now()) is not None
    assert APIKey.objects.get(pk=key.pk).state(timezone.now()) == "expiring"


def test_revoking_asks_first_then_stops_the_key(client, shop):
    client = owner_client(client, shop)
    key = APIKey.objects.get(merchant=shop.merchant, livemode=False)
    url = reverse("merchants:api-key-revoke", args=[key.pk])

    client.get(url)
    assert api_key_for_secret(shop.test_key, now=timezone.now()) is not None
    response = client.post(url, follow=True)

    assert api_key_for_secret(shop.test_key, now=timezone.now()) is None
    assert response.redirect_chain[-1][0] == reverse("merchants:api-keys")


def test_another_merchants_key_is_404(client, shop, other_shop):
    client = owner_client(client, shop)
    foreign = APIKey.objects.filter(merchant=other_shop.merchant).first()

    response = client.post(reverse("merchants:api-key-revoke", args=[foreign.pk]))

    assert response.status_code == 404
    assert api_key_for_secret(other_shop.test_key, now=timezone.now()) is not None


def test_staff_members_see_keys_but_cannot_manage_them(client, shop):
    staff = MembershipFactory(merchant=shop.merchant, role=Membership.Role.STAFF).user
    client.force_login(staff)
    key = APIKey.objects.filter(merchant=shop.merchant).first()

    page = client.get(reverse("merchants:api-keys"))
    create = client.post(reverse("merchants:api-keys"), {"mode": "test"})
    revoke = client.post(reverse("merchants:api-key-revoke", args=[key.pk]))

    assert page.status_code == 200
    assert b"Revoke" not in page.content and b"R\xc3\xa9voquer" not in page.content
    assert create.status_code == revoke.status_code == 403
    assert APIKey.objects.filter(merchant=shop.merchant).count() == 2


def test_password_reset_sends_an_email_with_a_working_link(client, shop):
    client.post(reverse("password_reset"), {"email": shop.owner.email})

    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^\s]+/reset/[^\s]+/", mail.outbox[0].body).group(0)
    form = client.get(link, follow=True)
    assert form.context["validlink"]


def test_an_operator_activates_a_merchant_in_the_admin(client, admin_user):
    merchant = services.merchant_create(
        legal_name="Pending", country="FR", contact_email="p@x.example", now=timezone.now()
    )
    client.force_login(admin_user)

    client.post(
        reverse("admin:merchants_merchant_changelist"),
        {"action": "activate", "_selected_action": [merchant.pk]},
    )

    merchant.refresh_from_db()
    assert merchant.status == Merchant.Status.ACTIVE
    assert merchant.fee_plans.count() == 21


def test_the_admin_never_shows_a_key_hash(client, admin_user, shop):
    client.force_login(admin_user)
    key = APIKey.objects.filter(merchant=shop.merchant).first()

    page = client.get(reverse("admin:merchants_apikey_change", args=[key.pk])).content.decode()

    assert key.secret_hash not in page
    assert key.display_prefix in page


def test_the_api_docs_page_and_schema_are_served(client):
    docs = client.get("/docs")
    schema = client.get("/v1/schema")

    assert docs.status_code == 200
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/v1/me", "/v1/me/extended-data", "/v1/me/fee-plans"} <= set(paths)


def test_an_owner_sets_the_payment_defaults(client, shop):
    client = owner_client(client, shop)

    response = client.post(
        reverse("merchants:settings"),
        {
            "return_url": "https://shop.example/merci",
            "customer_cancel_url": "https://shop.example/panier",
            "ipn_callback_url": "https://shop.example/ipn",
            "excluded_categories": "Digital, services,,digital",
            "authorisation_policy": "whole_amount",
        },
    )

    merchant = Merchant.objects.get(pk=shop.merchant.pk)
    assert response.status_code == 302
    assert merchant.ipn_callback_url == "https://shop.example/ipn"
    assert merchant.excluded_categories == ["digital", "services"]
    assert merchant.authorisation_policy == Merchant.AuthorisationPolicy.WHOLE_AMOUNT
    assert merchant.events.filter(kind="settings_changed").count() == 1


def test_bad_settings_are_explained_next_to_the_field(client, shop):
    client = owner_client(client, shop)

    response = client.post(
        reverse("merchants:settings"),
        {"ipn_callback_url": "javascript:alert(1)", "authorisation_policy": "whole_amount"},
    )

    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"ipn_callback_url"}
    assert Merchant.objects.get(pk=shop.merchant.pk).ipn_callback_url == ""


def test_staff_members_cannot_change_settings(client, shop):
    staff = MembershipFactory(merchant=shop.merchant, role=Membership.Role.STAFF).user
    client.force_login(staff)

    page = client.get(reverse("merchants:settings"))
    change = client.post(reverse("merchants:settings"), {"authorisation_policy": "whole_amount"})

    assert page.status_code == 200
    assert change.status_code == 403


def test_rotating_a_key_twice_is_refused_with_a_french_message(client, shop):
    client = owner_client(client, shop)
    key = APIKey.objects.get(merchant=shop.merchant, livemode=False)
    url = reverse("merchants:api-key-rotate", args=[key.pk])
    client.post(url)

    response = client.post(url, follow=True, HTTP_ACCEPT_LANGUAGE="fr")

    assert "Seule une clé active peut être renouvelée." in response.content.decode()
    assert APIKey.objects.filter(merchant=shop.merchant, livemode=False).count() == 2
