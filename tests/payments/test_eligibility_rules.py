"""The pure core of eligibility (apps/payments/eligibility.py): no database, no clock."""

from datetime import date

import pytest

from apps.payments.eligibility import (
    IN_STORE,
    ONLINE,
    Circumstances,
    Offer,
    PlanQuery,
    check_eligibility,
    discover_eligible,
    index_offers,
    plan_apr_bps,
)
from apps.payments.plans import PlanTerms, compute_plan
from apps.payments.regulation import UsuryBand

PURCHASE_DAY = date(2026, 6, 15)
QUARTER = date(2026, 4, 1)  # the quarter holding PURCHASE_DAY
USURY_TABLE = (
    UsuryBand(QUARTER, 300000, 2356),
    UsuryBand(QUARTER, 600000, 1587),
    UsuryBand(QUARTER, None, 867),
)


def offer(
    installments=3,
    *,
    kind=ONLINE,
    allowed=True,
    online=True,
    in_store=True,
    minimum=5000,
    maximum=200000,
    **terms,
):
    return Offer(
        kind=kind,
        allowed=allowed,
        available_online=online,
        available_in_pos=in_store,
        min_purchase_amount=minimum,
        max_purchase_amount=maximum,
        terms=PlanTerms(installments_count=installments, **terms),
    )


def circumstances(**changes):
    fields = {
        "purchase_date": PURCHASE_DAY,
        "merchant_active": True,
        "billing_country": "FR",
        "shipping_country": "FR",
        "served_countries": frozenset({"FR", "BE"}),
        "usury_bands": USURY_TABLE,
    } | changes
    return Circumstances(**fields)


SHOP_OFFERS = index_offers(
    [
        offer(1),
        offer(3),
        offer(4, customer_fee_variable=100),
        offer(10, customer_lending_rate=1700, maximum=500000),
        offer(1, deferred_days=30),
        offer(3, kind=IN_STORE),
    ]
)


def check(amount, installments=3, *, offers=SHOP_OFFERS, deferred_days=0, **changes):
    query = PlanQuery(amount, installments, deferred_days=deferred_days)
    return check_eligibility(query, offers=offers, circumstances=circumstances(**changes))


# --- eligible answers --------------------------------------------------------------------------


def test_an_eligible_answer_carries_the_plan_and_its_apr():
    answer = check(100000, 3)

    assert answer.eligible
    assert answer.reasons == {}
    assert answer.constraints == {}
    assert answer.plan == compute_plan(
        purchase_amount=100000, terms=PlanTerms(installments_count=3), purchase_date=PURCHASE_DAY
    )
    assert answer.annual_interest_rate == 0


def test_an_eligible_credit_carries_its_apr_under_the_usury_cap():
    answer = check(200000, 10)

    assert answer.eligible
    assert answer.annual_interest_rate == plan_apr_bps(answer.plan)
    assert 1700 < answer.annual_interest_rate <= 2356
    assert answer.plan.customer_interest > 0


def test_a_deferred_plan_is_found_by_its_deferral():
    answer = check(100000, 1, deferred_days=30)

    assert answer.eligible
    assert [i.due_date for i in answer.plan.instalments] == [date(2026, 7, 15)]


# --- each reason with its constraint -----------------------------------------------------------


def test_an_inactive_merchant_is_refused():
    answer = check(100000, merchant_active=False)

    assert not answer.eligible
    assert answer.reasons == {"merchant": "not_active"}
    assert answer.constraints == {"merchant": {}}
    assert answer.plan is None


def test_a_plan_the_merchant_does_not_offer_is_refused_with_the_plans_it_does():
    answer = check(100000, 5)

    assert answer.reasons == {"plan": "not_allowed"}
    assert answer.constraints == {
        "plan": {
            "allowed": [
                "general_10_0_0",
                "general_1_0_0",
                "general_1_30_0",
                "general_3_0_0",
                "general_4_0_0",
            ]
        }
    }


@pytest.mark.parametrize(
    "refused", [offer(3, allowed=False), offer(3, online=False)], ids=["disallowed", "offline"]
)
def test_a_plan_that_is_switched_off_is_refused_and_not_listed(refused):
    offers = index_offers([offer(1), refused])

    answer = check(100000, 3, offers=offers)

    assert answer.reasons == {"plan": "not_allowed"}
    assert answer.constraints == {"plan": {"allowed": ["general_1_0_0"]}}


@pytest.mark.parametrize(
    ("amount", "eligible"),
    [(4999, False), (5000, True), (200000, True), (200001, False)],
)
def test_the_purchase_amount_bounds_are_inclusive(amount, eligible):
    answer = check(amount, 3)

    assert answer.eligible is eligible
    if not eligible:
        assert answer.reasons == {"purchase_amount": "invalid_value"}
        assert answer.constraints == {"purchase_amount": {"minimum": 5000, "maximum": 200000}}


@pytest.mark.parametrize(
    ("billing", "shipping", "refused"),
    [
        ("DE", "FR", {"billing_address"}),
        ("FR", "ES", {"shipping_address"}),
        ("DE", "ES", {"billing_address", "shipping_address"}),
        ("BE", None, set()),
        (None, None, set()),
    ],
)
def test_an_address_in_a_country_not_served_is_refused(billing, shipping, refused):
    answer = check(100000, billing_country=billing, shipping_country=shipping)

    assert set(answer.reasons) == refused
    for where in refused:
        assert answer.reasons[where] == "country_not_served"
        assert answer.constraints[where] == {"countries": ["BE", "FR"]}


def test_a_cart_with_an_excluded_category_is_refused_whatever_its_case():
    answer = check(
        100000,
        cart_categories=frozenset({"WEAPONS", "books"}),
        excluded_categories=frozenset({"Weapons", "tobacco"}),
    )

    assert answer.reasons == {"cart": "excluded_category"}
    excluded = answer.constraints["cart"]["excluded_categories"]
    assert [category.casefold() for category in excluded] == ["weapons"]


def test_a_cart_without_excluded_categories_is_eligible():
    answer = check(
        100000,
        cart_categories=frozenset({"books"}),
        excluded_categories=frozenset({"weapons"}),
    )

    assert answer.eligible


@pytest.mark.parametrize(
    ("expensive", "installments"),
    [
        (offer(3, customer_fee_variable=2000), 3),
        (offer(10, customer_lending_rate=3000), 10),
    ],
    ids=["huge-fee", "huge-lending-rate"],
)
def test_a_plan_whose_apr_is_above_the_usury_cap_is_refused(expensive, installments):
    answer = check(100000, installments, offers=index_offers([expensive]))

    assert answer.reasons == {"annual_interest_rate": "above_usury_cap"}
    assert answer.constraints == {"annual_interest_rate": {"maximum": 2356}}
    assert answer.plan is None


def test_the_usury_cap_is_chosen_by_the_amount_lent_not_the_purchase():
    answer = check(400000, 10)

    assert answer.reasons == {"annual_interest_rate": "above_usury_cap"}
    assert answer.constraints == {"annual_interest_rate": {"maximum": 1587}}


def test_an_apr_equal_to_the_usury_cap_is_allowed_and_one_above_is_not():
    plan = compute_plan(
        purchase_amount=200000,
        terms=PlanTerms(installments_count=10, customer_lending_rate=1700),
        purchase_date=PURCHASE_DAY,
    )
    apr = plan_apr_bps(plan)

    at_the_cap = check(200000, 10, usury_bands=(UsuryBand(QUARTER, None, apr),))
    below_the_apr = check(200000, 10, usury_bands=(UsuryBand(QUARTER, None, apr - 1),))

    assert at_the_cap.eligible
    assert below_the_apr.constraints == {"annual_interest_rate": {"maximum": apr - 1}}


@pytest.mark.parametrize(
    "bands",
    [
        (),
        (UsuryBand(date(2026, 7, 1), None, 2000),),
        (UsuryBand(date(2026, 1, 1), None, 2000),),
    ],
    ids=["empty", "future-only", "stale-only"],
)
def test_a_credit_is_refused_when_no_usury_quarter_is_in_force(bands):
    answer = check(200000, 10, usury_bands=bands)

    assert answer.reasons == {"annual_interest_rate": "usury_rate_unknown"}
    assert answer.constraints == {"annual_interest_rate": {"maximum": None}}


def test_an_exempt_plan_needs_no_usury_table():
    answer = check(100000, 3, usury_bands=())

    assert answer.eligible


def test_every_reason_that_applies_is_given_at_once():
    answer = check(
        250000,
        4,
        merchant_active=False,
        billing_country="DE",
        cart_categories=frozenset({"tobacco"}),
        excluded_categories=frozenset({"Tobacco"}),
        usury_bands=(),
    )

    assert answer.reasons == {
        "merchant": "not_active",
        "purchase_amount": "invalid_value",
        "billing_address": "country_not_served",
        "cart": "excluded_category",
        "annual_interest_rate": "usury_rate_unknown",
    }
    assert answer.constraints["purchase_amount"] == {"minimum": 5000, "maximum": 200000}
    assert answer.constraints["annual_interest_rate"] == {"maximum": None}


# --- channels ----------------------------------------------------------------------------------


def test_an_in_store_plan_is_not_sold_online():
    offers = index_offers([offer(3, kind=IN_STORE)])

    answer = check(100000, 3, offers=offers, channel=ONLINE)

    assert answer.reasons == {"plan": "not_allowed"}
    assert answer.constraints == {"plan": {"allowed": []}}


def test_an_online_plan_is_not_sold_in_store():
    offers = index_offers([offer(3)])

    answer = check(100000, 3, offers=offers, channel=IN_STORE)

    assert answer.reasons == {"plan": "not_allowed"}
    assert answer.constraints == {"plan": {"allowed": []}}


def test_an_in_store_plan_is_sold_in_store_only_when_available_there():
    offers = index_offers([offer(3, kind=IN_STORE), offer(4, kind=IN_STORE, in_store=False)])

    sold = check(100000, 3, offers=offers, channel=IN_STORE)
    not_sold = check(100000, 4, offers=offers, channel=IN_STORE)

    assert sold.eligible
    assert not_sold.constraints == {"plan": {"allowed": ["pos_3_0_0"]}}


# --- discovery ---------------------------------------------------------------------------------


def test_discovery_returns_only_the_eligible_plans_of_the_channel():
    offers = index_offers(
        [
            offer(3),
            offer(4, allowed=False),
            offer(10, customer_lending_rate=1700, minimum=300000, maximum=500000),
            offer(12, customer_lending_rate=3000),
            offer(3, kind=IN_STORE),
            offer(4, kind=IN_STORE),
        ]
    )

    online = discover_eligible(100000, offers=offers, circumstances=circumstances())
    in_store = discover_eligible(
        100000, offers=offers, circumstances=circumstances(channel=IN_STORE)
    )

    assert [answer.query for answer in online] == [PlanQuery(100000, 3)]
    assert [answer.query for answer in in_store] == [PlanQuery(100000, 3), PlanQuery(100000, 4)]
    assert all(answer.eligible and answer.plan is not None for answer in online + in_store)


def test_discovery_for_an_inactive_merchant_finds_nothing():
    answers = discover_eligible(
        100000, offers=SHOP_OFFERS, circumstances=circumstances(merchant_active=False)
    )

    assert answers == []
