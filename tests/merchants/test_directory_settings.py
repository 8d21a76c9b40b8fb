"""A merchant chooses its category and whether it is listed in the partner directory, in
its settings page; the demo command lists a few partner shops."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from apps.merchants import selectors, services
from apps.merchants.models import Membership, Merchant
from tests.factories import MembershipFactory
from tests.merchants.test_settings_page import form_data, save, stored

pytestmark = pytest.mark.django_db


def test_the_settings_page_shows_the_directory_section_prefilled(client, shop):
    Merchant.objects.filter(pk=shop.merchant.pk).update(category="sports")
    client.force_login(shop.owner)

    html = client.get(reverse("merchants:settings"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "Partner directory" in html
    assert '<option value="sports" selected>' in html
    assert 'name="listed_in_directory"' in html and "checked" in html


def test_an_owner_chooses_a_category_and_leaves_the_directory(client, shop):
    response = save(client, shop, category="beauty", listed_in_directory="")

    merchant = stored(shop)
    assert response.status_code == 302
    assert merchant.category == "beauty" and merchant.listed_in_directory is False
    assert merchant.events.get(kind="settings_changed").detail.endswith(
        "category, listed_in_directory"
    )
    assert merchant not in selectors.directory_merchants()


def test_a_listed_active_merchant_appears_in_the_directory_under_its_category(client, shop):
    assert shop.merchant.is_active

    save(client, shop, category="travel")

    assert list(selectors.directory_merchants(category="travel")) == [stored(shop)]
    assert list(selectors.directory_merchants(category="sports")) == []


def test_an_unknown_category_is_refused_by_the_form(client, shop):
    response = save(client, shop, category="weapons")

    assert response.status_code == 200
    assert "category" in response.context["form"].errors
    assert stored(shop).category == ""


def test_staff_cannot_change_the_listing(client, shop):
    staff = MembershipFactory(merchant=shop.merchant, role=Membership.Role.STAFF).user
    client.force_login(staff)

    response = client.post(
        reverse("merchants:settings"), form_data(category="beauty", listed_in_directory="")
    )

    assert response.status_code == 403
    assert stored(shop).listed_in_directory is True and stored(shop).category == ""


def test_the_service_leaves_the_directory_settings_alone_unless_given(shop):
    merchant = shop.merchant
    Merchant.objects.filter(pk=merchant.pk).update(category="home", listed_in_directory=False)
    merchant.refresh_from_db()

    services.merchant_settings_update(
        merchant=merchant,
        return_url="https://shop.example/ok",
        customer_cancel_url="",
        ipn_callback_url="",
        excluded_categories=[],
        authorisation_policy="first_instalment",
        now=timezone.now(),
    )

    assert stored(shop).category == "home" and stored(shop).listed_in_directory is False
    with pytest.raises(ValueError):
        services.merchant_settings_update(
            merchant=merchant,
            return_url="",
            customer_cancel_url="",
            ipn_callback_url="",
            excluded_categories=[],
            authorisation_policy="first_instalment",
            category="weapons",
            now=timezone.now(),
        )


def test_the_demo_command_lists_partner_shops_once_and_gives_the_demo_a_category(
    tmp_path, monkeypatch
):
    from apps.merchants.management.commands import demo_merchant

    monkeypatch.setattr(demo_merchant, "CREDENTIALS_FILE", tmp_path / "demo.json")

    call_command("demo_merchant", stdout=StringIO())
    printed = StringIO()
    call_command("demo_merchant", stdout=printed)

    listed = list(selectors.directory_merchants())
    names = {merchant.legal_name for merchant in listed}
    partners = {partner[0] for partner in demo_merchant.DEMO_PARTNERS}
    assert 5 <= len(partners) <= 8
    assert partners <= names
    assert Merchant.objects.filter(legal_name__in=partners).count() == len(partners)
    demo = Merchant.objects.get(legal_name=demo_merchant.DEMO_NAME)
    assert demo.category == demo_merchant.DEMO_CATEGORY and demo in listed
    assert all(merchant.directory_plans for merchant in listed)
    assert len({merchant.category for merchant in listed}) >= 5
    assert "/portal/partners" in printed.getvalue()
