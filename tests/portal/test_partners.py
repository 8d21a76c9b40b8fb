"""The partner directory: active listed shops only (never the card programme's account, an
unlisted, pending or suspended shop), their category, website and plans, searched by name
whatever the case and accents, filtered by category, paginated, in a fixed number of queries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.issuing.services.programme import programme_merchant
from apps.merchants import selectors, services
from apps.merchants.fee_plan_specs import parse_fee_plan_specs
from apps.merchants.models import FeePlan, Merchant
from apps.schedules.portal.views.partners import PER_PAGE, plan_offers
from tests.factories import MerchantFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def partner(name: str, *, category: str = "home", plans=None, **fields) -> Merchant:
    """An active listed shop with ``plans`` ((kind, instalments, deferred days)...)."""
    fields = {"status": Merchant.Status.ACTIVE, **fields}
    merchant = MerchantFactory(legal_name=name, category=category, **fields)
    specs = [
        {"kind": kind, "installments_count": count, "deferred_days": days}
        for kind, count, days in (plans or [("general", 3, 0)])
    ]
    services.fee_plans_replace(merchant=merchant, specs=parse_fee_plan_specs(specs))
    return merchant


def names(response) -> list[str]:
    return [shown.name for shown in response.context["partners"]]


def page(**params):
    return Client(HTTP_ACCEPT_LANGUAGE="en").get("/portal/partners", params)


def test_the_directory_lists_active_listed_shops_by_name_and_never_the_others():
    partner("Maison Lumière")
    partner("Atelier Bois")
    partner("Cachée", listed_in_directory=False)
    partner("En attente", status=Merchant.Status.PENDING)
    partner("Suspendue", status=Merchant.Status.SUSPENDED)
    programme = programme_merchant(now=NOW)
    # Even if its flag were ticked by mistake, the programme's account stays out.
    Merchant.objects.filter(pk=programme.pk).update(listed_in_directory=True)

    response = page()

    assert response.status_code == 200
    assert names(response) == ["Atelier Bois", "Maison Lumière"]
    assert "Carte Tranche" not in response.content.decode()


def test_each_shop_shows_its_category_website_and_plans_offered():
    partner(
        "Électro Marché",
        category="electronics",
        website="https://electro-marche.example",
        plans=[
            ("general", 1, 0),  # paying now: not a plan
            ("general", 2, 0),
            ("general", 3, 0),
            ("pos", 3, 0),
            ("general", 1, 30),
            ("pos", 4, 0),
        ],
    )

    response = page()

    [shown] = response.context["partners"]
    html = response.content.decode()
    assert shown.category == "Electronics and appliances"
    assert [(offer.label, offer.online, offer.in_store) for offer in shown.offers] == [
        ("2x", True, False),
        ("3x", True, True),
        ("4x", False, True),
        ("pay in 30 days", True, False),
    ]
    assert '<a href="https://electro-marche.example" rel="noopener" target="_blank">' in html
    assert "3x · online and in store" in html


def test_refused_and_unavailable_plans_are_not_offered_and_a_store_only_shop_sells_in_store():
    shop = partner("Cycles Dupuis", plans=[("general", 3, 0), ("general", 4, 0), ("pos", 3, 0)])
    FeePlan.objects.filter(merchant=shop, installments_count=4).update(allowed=False)
    Merchant.objects.filter(pk=shop.pk).update(store_only=True)

    [shown] = page().context["partners"]

    assert [(offer.label, offer.online, offer.in_store) for offer in shown.offers] == [
        ("3x", False, True)
    ]


@pytest.mark.parametrize("typed", ["lumiere", "LUMIÈRE", "Maison lum", "  lumi  "])
def test_search_matches_part_of_the_name_whatever_the_case_and_accents(typed):
    partner("Maison Lumière")
    partner("Électro Marché")

    assert names(page(q=typed)) == ["Maison Lumière"]


@pytest.mark.parametrize("typed", ["electro", "ÉLECTRO", "marche"])
def test_search_folds_accents_on_both_sides(typed):
    partner("Électro Marché")
    partner("Sœur Cœur")

    assert names(page(q=typed)) == ["Électro Marché"]


def test_ligatures_and_sql_wildcards_are_searched_as_text():
    partner("Sœur Cœur")
    partner("100% Bio")
    partner("Bio_Shop")

    assert names(page(q="soeur")) == ["Sœur Cœur"]
    assert names(page(q="%")) == ["100% Bio"]
    assert names(page(q="_")) == ["Bio_Shop"]


def test_the_category_filter_narrows_and_an_unknown_category_shows_all():
    partner("Maison Lumière", category="home")
    partner("Cycles Dupuis", category="sports")

    sports = page(category="sports")
    unknown = page(category="<script>")

    assert names(sports) == ["Cycles Dupuis"]
    assert '<option value="sports" selected>' in sports.content.decode()
    assert names(unknown) == ["Cycles Dupuis", "Maison Lumière"]


def test_search_and_category_combine():
    partner("Maison Lumière", category="home")
    partner("Lumière Sport", category="sports")

    assert names(page(q="lumiere", category="sports")) == ["Lumière Sport"]


def test_the_directory_is_paginated_and_keeps_the_filters_in_its_links():
    for number in range(PER_PAGE + 2):
        partner(f"Boutique {number:02d}", category="fashion")

    first = page(category="fashion")
    second = page(category="fashion", page=2)
    beyond = page(category="fashion", page=99)

    assert len(names(first)) == PER_PAGE
    assert names(second) == ["Boutique 24", "Boutique 25"]
    assert 'href="?category=fashion&amp;page=2"' in first.content.decode()
    assert "Page 1 of 2" in first.content.decode()
    assert names(beyond) == names(second)  # a page too far shows the last one


def test_empty_states_say_whether_the_search_found_nothing_or_nobody_is_listed():
    nobody = page()
    partner("Maison Lumière")
    nothing = page(q="zzz")

    assert 'data-testid="partners-empty"' in nobody.content.decode()
    assert "No partner shop is listed yet." in nobody.content.decode()
    assert "No partner shop matches your search." in nothing.content.decode()


def test_the_page_is_public_and_a_hostile_query_is_shown_escaped():
    partner("Maison Lumière")

    response = page(q="<script>alert(1)</script>" + "x" * 500)

    assert response.status_code == 200
    assert "<script>alert(1)" not in response.content.decode()
    assert response.context["query"] == ("<script>alert(1)</script>" + "x" * 500)[:100]


def test_the_selector_reads_the_merchants_and_their_plans_in_two_queries():
    for number in range(6):
        partner(f"Boutique {number}", plans=[("general", 3, 0), ("pos", 4, 0)])

    with CaptureQueriesContext(connection) as queries:
        merchants = list(selectors.directory_merchants(query="boutique", category="home"))
        offers = [plan_offers(merchant.directory_plans) for merchant in merchants]
        shown = [(m.legal_name, m.website, m.category, m.store_only) for m in merchants]

    assert len(queries) == 2
    assert len(shown) == 6 and all(len(each) == 2 for each in offers)


def test_the_page_takes_the_same_number_of_queries_for_few_or_many_shops(
    django_assert_num_queries,
):
    partner("Boutique 0")
    with CaptureQueriesContext(connection) as few:
        page()
    for number in range(1, PER_PAGE + 5):
        partner(f"Boutique {number:02d}")

    with django_assert_num_queries(len(few)):
        response = page()

    assert len(few) == 3  # the count, the page, its plans
    assert len(names(response)) == PER_PAGE
