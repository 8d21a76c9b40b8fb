"""POST /v2/payments/eligibility and /v1/payments/eligibility, as Alma's clients use them."""

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from alma_client import Client
from alma_client.request import RequestError
from rest_framework.test import APIClient

from apps.common.money import to_money
from apps.merchants import services
from apps.merchants.models import FeePlan, Merchant
from apps.payments.api.serializers import EligibilitySerializer, PlanInstalmentSerializer
from apps.payments.models import UsuryRate
from tests.conftest import make_shop

pytestmark = pytest.mark.django_db

V2 = "/v2/payments/eligibility"
V1 = "/v1/payments/eligibility"
PARIS = ZoneInfo("Europe/Paris")
# 31 January: later instalments fall on month ends (28 Feb, 31 Mar).
PURCHASE_MOMENT = datetime(2026, 1, 31, 10, 0, tzinfo=PARIS)
ELIGIBLE_FIELDS = [
    "eligible",
    "installments_count",
    "deferred_days",
    "deferred_months",
    "purchase_amount",
    "payment_plan",
    "customer_fee",
    "customer_interest",
    "customer_total_cost_amount",
    "customer_total_cost_bps",
    "annual_interest_rate",
    "modulated_first_installment",
]
NOT_ELIGIBLE_FIELDS = [*ELIGIBLE_FIELDS[:5], "reasons", "constraints"]


@pytest.fixture(autouse=True)
def _purchase_day():
    with time_machine.travel(PURCHASE_MOMENT, tick=False):
        yield


def post(client, path, body, **headers):
    return client.post(path, body, format="json", **headers)


def soon(ask, until, *, tries: int = 400) -> dict:
    """The answer once `until(answer)` holds, or the last one: the database's notification
    of a committed change crosses a socket after the commit, so allow it milliseconds (at
    most `tries` x 5 ms; counted in tries because the clock is frozen)."""
    answer = ask().json()[0]
    for _ in range(tries):
        if until(answer):
            break
        threading.Event().wait(0.005)
        answer = ask().json()[0]
    return answer


def queries(*counts):
    return [{"installments_count": count} for count in counts]


def test_v2_answers_each_query_in_order_with_the_full_plan(shop):
    response = post(
        shop.client(),
        V2,
        {"purchase_amount": 100000, "queries": queries(4, 3), "locale": "fr"},
    )

    assert response.status_code == 200
    four, three = response.json()
    assert [four["installments_count"], three["installments_count"]] == [4, 3]
    assert list(three) == ELIGIBLE_FIELDS
    assert three["eligible"] is True
    assert [item["total_amount"] for item in three["payment_plan"]] == [33334, 33333, 33333]
    assert [item["localized_due_date"] for item in three["payment_plan"]] == [
        "aujourd'hui",
        "28 février 2026",
        "31 mars 2026",
    ]
    assert list(three["payment_plan"][0]) == list(PlanInstalmentSerializer().fields)
    assert three["annual_interest_rate"] == 0
    assert three["customer_total_cost_amount"] == 0


def test_due_dates_are_noon_in_paris_on_each_due_day(shop):
    response = post(shop.client(), V2, {"purchase_amount": 100000, "queries": queries(3)})

    due = [
        datetime.fromtimestamp(item["due_date"], PARIS)
        for item in response.json()[0]["payment_plan"]
    ]
    assert due == [
        datetime(2026, 1, 31, 12, tzinfo=PARIS),
        datetime(2026, 2, 28, 12, tzinfo=PARIS),
        datetime(2026, 3, 31, 12, tzinfo=PARIS),
    ]


def test_localized_dates_follow_the_request_locale(shop):
    answers = {}
    for locale in ("en", "en_GB", "fr_FR", "de", None):
        body = {"purchase_amount": 100000, "queries": queries(2), "locale": locale}
        plan = post(shop.client(), V2, body).json()[0]["payment_plan"]
        answers[locale] = [item["localized_due_date"] for item in plan]

    assert answers["en"] == ["today", "February 28, 2026"]
    assert answers["en_GB"] == answers["en"]
    assert answers["fr_FR"] == ["aujourd'hui", "28 février 2026"]
    assert answers["de"] == answers[None] == answers["fr_FR"]


def test_credit_plans_carry_interest_and_their_apr(shop):
    response = post(shop.client(), V2, {"purchase_amount": 200000, "queries": queries(10)})

    answer = response.json()[0]
    plan = answer["payment_plan"]
    assert answer["eligible"] is True
    assert plan[0]["customer_interest"] == 0
    assert all(item["customer_interest"] > 0 for item in plan[1:])
    assert sum(item["total_amount"] for item in plan) == 200000 + answer["customer_interest"]
    assert answer["customer_total_cost_amount"] == answer["customer_interest"]
    # 17 % nominal is 18.39 % compounded monthly, whatever the month of purchase.
    assert answer["annual_interest_rate"] == 1839


def test_a_customer_fee_is_on_the_first_instalment_and_priced_in_the_apr(shop):
    FeePlan.objects.filter(merchant=shop.merchant, kind="general", installments_count=4).update(
        customer_fee_variable=232
    )

    answer = post(shop.client(), V2, {"purchase_amount": 100000, "queries": queries(4)}).json()[0]

    assert [item["customer_fee"] for item in answer["payment_plan"]] == [2320, 0, 0, 0]
    assert answer["customer_fee"] == answer["customer_total_cost_amount"] == 2320
    assert answer["customer_total_cost_bps"] == 232
    assert answer["annual_interest_rate"] == 2081  # about 20.8 %, as the issue says


def test_an_amount_outside_the_plan_bounds_is_not_eligible_with_the_bounds(shop):
    response = post(shop.client(), V2, {"purchase_amount": 100, "queries": queries(3)})

    answer = response.json()[0]
    assert list(answer) == NOT_ELIGIBLE_FIELDS
    assert answer["eligible"] is False
    assert answer["reasons"] == {"purchase_amount": "invalid_value"}
    assert answer["constraints"] == {"purchase_amount": {"minimum": 5000, "maximum": 200000}}


def test_bounds_are_inclusive(shop):
    body = {
        "purchase_amount": 200000,
        "queries": [*queries(3), {**queries(3)[0], "purchase_amount": 5000}],
    }

    answers = post(shop.client(), V2, body).json()

    assert [a["eligible"] for a in answers] == [True, True]
    assert [a["purchase_amount"] for a in answers] == [200000, 5000]


def test_a_plan_the_merchant_does_not_sell_is_not_eligible_with_what_it_sells(shop):
    answer = post(shop.client(), V2, {"purchase_amount": 50000, "queries": queries(5)}).json()[0]

    assert answer["reasons"] == {"plan": "not_allowed"}
    assert "general_3_0_0" in answer["constraints"]["plan"]["allowed"]
    assert answer["installments_count"] == 5


def test_a_disallowed_plan_is_not_eligible(shop):
    FeePlan.objects.filter(merchant=shop.merchant, installments_count=3).update(allowed=False)

    answer = post(shop.client(), V2, {"purchase_amount": 50000, "queries": queries(3)}).json()[0]

    assert answer["reasons"] == {"plan": "not_allowed"}


def test_in_store_origin_uses_the_pos_plans(shop):
    body = {"purchase_amount": 50000, "queries": queries(5), "origin": "pos"}

    answer = post(shop.client(), V2, body).json()[0]

    assert answer["eligible"] is True


def test_countries_not_served_are_not_eligible(shop):
    body = {
        "purchase_amount": 50000,
        "queries": queries(3),
        "billing_address": {"country": "us"},
        "shipping_address": {"country": "FR"},
    }

    answer = post(shop.client(), V2, body).json()[0]

    assert answer["reasons"] == {"billing_address": "country_not_served"}
    assert "FR" in answer["constraints"]["billing_address"]["countries"]


def test_a_cart_item_in_an_excluded_category_makes_the_cart_not_eligible(shop):
    Merchant.objects.filter(pk=shop.merchant.pk).update(excluded_categories=["Gift cards"])
    cart = {"items": [{"categories": ["Books"]}, {"categories": ["gift cards", "Promo"]}]}

    answer = post(
        shop.client(), V2, {"purchase_amount": 50000, "queries": queries(3), "cart": cart}
    ).json()[0]

    assert answer["reasons"] == {"cart": "excluded_category"}
    assert answer["constraints"]["cart"] == {"excluded_categories": ["gift cards"]}


def test_a_plan_whose_apr_exceeds_the_usury_cap_is_not_eligible(shop):
    FeePlan.objects.filter(merchant=shop.merchant, kind="general", installments_count=12).update(
        customer_lending_rate=3000
    )

    answer = post(shop.client(), V2, {"purchase_amount": 100000, "queries": queries(12)}).json()[0]

    assert answer["reasons"] == {"annual_interest_rate": "above_usury_cap"}
    assert answer["constraints"]["annual_interest_rate"] == {"maximum": 2356}  # Q1 2026


@pytest.mark.django_db(transaction=True)  # the change must commit to reach the cache
def test_the_usury_table_edited_by_an_operator_applies_at_once(shop):
    client = shop.client()
    assert post(client, V2, {"purchase_amount": 100000, "queries": queries(10)}).json()[0][
        "eligible"
    ]

    UsuryRate.objects.filter(effective_from="2026-01-01").update(rate_bps=1500)

    answer = soon(
        lambda: post(client, V2, {"purchase_amount": 100000, "queries": queries(10)}),
        until=lambda answer: not answer["eligible"],
    )
    assert answer.get("reasons") == {"annual_interest_rate": "above_usury_cap"}


def test_an_inactive_merchant_gets_not_eligible_answers_on_v2(db):
    pending = make_shop(status=Merchant.Status.PENDING)
    services.fee_plans_install_defaults(merchant=pending.merchant)

    answer = post(pending.client(), V2, {"purchase_amount": 50000, "queries": queries(3)}).json()[0]

    assert answer["eligible"] is False
    assert answer["reasons"] == {"merchant": "not_active"}


def test_an_inactive_merchant_gets_400_on_v1(db):
    pending = make_shop(status=Merchant.Status.PENDING)

    response = post(pending.client(), V1, {"payment": {"purchase_amount": 50000}})

    assert response.status_code == 400
    assert response.json()["errors"][0]["error_code"] == "merchant_cant_create_payments"


def test_discovery_returns_only_the_eligible_plans(shop):
    FeePlan.objects.filter(merchant=shop.merchant, installments_count=2).update(
        min_purchase_amount=to_money(90000)
    )

    for body in ({"purchase_amount": 50000}, {"purchase_amount": 50000, "queries": None}):
        answers = post(shop.client(), V2, body).json()

        plans = {(a["installments_count"], a["deferred_days"]) for a in answers}
        assert plans == {(1, 0), (1, 15), (1, 30), (3, 0), (4, 0), (10, 0), (12, 0)}
        assert all(a["eligible"] for a in answers)


def test_deferred_plans_are_asked_by_their_deferral(shop):
    body = {
        "purchase_amount": 50000,
        "queries": [{"installments_count": 1, "deferred_days": 30, "deferred_months": 0}],
    }

    answer = post(shop.client(), V2, body).json()[0]

    assert answer["deferred_days"] == 30
    assert answer["payment_plan"][0]["localized_due_date"] == "2 mars 2026"


def test_junk_that_clients_send_is_tolerated(shop):
    body = {
        "purchase_amount": 50000,
        "queries": [
            {
                "installments_count": 3,
                "deferred_days": None,
                "deferred_month": 0,
                "cart_total": 50000,
                "purchase_amount": None,
            }
        ],
        "online": "online",
        "billing_address": {},
        "shipping_address": None,
        "locale": None,
        "origin": None,
        "cart": None,
        "customer": {"anything": True},
    }

    response = post(shop.client(), V2, body)

    assert response.status_code == 200
    assert response.json()[0]["eligible"] is True
    assert response.json()[0]["deferred_days"] == 0


def test_an_empty_country_means_not_given(shop):
    body = {"purchase_amount": 50000, "queries": queries(3), "billing_address": {"country": ""}}

    answer = post(shop.client(), V2, body).json()[0]

    assert answer["eligible"] is True


def test_the_deferred_month_typo_magento_sends_is_read_as_deferred_months(shop):
    FeePlan.objects.create(
        merchant=shop.merchant,
        installments_count=1,
        deferred_months=1,
        min_purchase_amount=to_money(5000),
        max_purchase_amount=to_money(200000),
    )
    body = {"purchase_amount": 50000, "queries": [{"installments_count": 1, "deferred_month": 1}]}

    answer = post(shop.client(), V2, body).json()[0]

    assert answer["eligible"] is True
    assert answer["deferred_months"] == 1
    assert answer["payment_plan"][0]["localized_due_date"] == "28 février 2026"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, "purchase_amount", "missing_field"),
        ({"purchase_amount": None}, "purchase_amount", "invalid_value"),
        ({"purchase_amount": 0}, "purchase_amount", "invalid_value"),
        ({"purchase_amount": -100}, "purchase_amount", "invalid_value"),
        ({"purchase_amount": 100.5}, "purchase_amount", "invalid_type"),
        ({"purchase_amount": "10000"}, "purchase_amount", "invalid_type"),
        ({"purchase_amount": True}, "purchase_amount", "invalid_type"),
        ({"purchase_amount": 10**9 + 1}, "purchase_amount", "invalid_value"),
        ({"purchase_amount": 10000, "queries": queries(0)}, "queries.0.installments_count",
         "invalid_value"),
        ({"purchase_amount": 10000, "queries": queries(13)}, "queries.0.installments_count",
         "invalid_value"),
        ({"purchase_amount": 10000, "queries": [{}]}, "queries.0.installments_count",
         "missing_field"),
        ({"purchase_amount": 10000, "queries": ["3"]}, "queries.0", "invalid_type"),
        ({"purchase_amount": 10000, "queries": "3"}, "queries", "invalid_type"),
        ({"purchase_amount": 10000, "queries": queries(*[3] * 21)}, "queries", "too_long"),
        ({"purchase_amount": 10000, "billing_address": {"country": "XX"}},
         "billing_address.country", "invalid_value"),
        ({"purchase_amount": 10000, "shipping_address": {"country": 33}},
         "shipping_address.country", "invalid_type"),
        ({"purchase_amount": 10000, "origin": "moon"}, "origin", "invalid_value"),
    ],
)  # fmt: skip
def test_bad_v2_input_is_a_400_naming_the_field(shop, body, field, code):
    response = post(shop.client(), V2, body)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert (field, code) in [(e["field"], e["error_code"]) for e in errors]
    assert response.json()["message"]


def test_every_bad_field_is_named_at_once(shop):
    body = {"purchase_amount": "x", "queries": [{"installments_count": 99}, {}]}

    fields = {e["field"] for e in post(shop.client(), V2, body).json()["errors"]}

    assert fields == {
        "purchase_amount",
        "queries.0.installments_count",
        "queries.1.installments_count",
    }


def test_malformed_json_is_a_400(shop):
    response = shop.client().post(V2, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid_json"


def test_v1_answers_one_object_for_one_count_and_a_list_for_a_list(shop):
    one = post(shop.client(), V1, {"payment": {"purchase_amount": 20000, "installments_count": 3}})
    many = post(
        shop.client(), V1, {"payment": {"purchase_amount": 20000, "installments_count": [3, 4]}}
    )

    assert one.status_code == many.status_code == 200
    assert one.json()["installments_count"] == 3
    assert [a["installments_count"] for a in many.json()] == [3, 4]


@pytest.mark.parametrize(
    ("payment", "code"),
    [
        ({"purchase_amount": 20000, "installments_count": [3, "x"]}, "invalid_type"),
        ({"purchase_amount": 20000, "installments_count": []}, "too_short"),
        ({"purchase_amount": 20000, "installments_count": 15}, "invalid_type"),
        ({"purchase_amount": 20000, "installments_count": "3"}, "invalid_type"),
    ],
)
def test_bad_v1_instalment_counts_are_a_400(shop, payment, code):
    response = post(shop.client(), V1, {"payment": payment})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "payment.installments_count"
    assert response.json()["errors"][0]["error_code"] == code


def test_v1_without_the_payment_object_is_a_400(shop):
    response = post(shop.client(), V1, {"purchase_amount": 20000})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "payment"


def test_the_public_merchant_id_opens_v2_eligibility_only(shop):
    browser = APIClient()
    browser.credentials(HTTP_AUTHORIZATION=f"Alma-Merchant-Auth {shop.merchant.public_id}")

    v2 = post(browser, V2, {"purchase_amount": 50000, "queries": queries(3)})
    v1 = post(browser, V1, {"payment": {"purchase_amount": 50000, "installments_count": 3}})
    me = browser.get("/v1/me")

    assert v2.status_code == 200
    assert v2.json()[0]["eligible"] is True
    assert v1.status_code == me.status_code == 401
    assert "Alma-Merchant-Auth" in v1.json()["message"]


def test_the_merchant_id_works_without_its_prefix(shop):
    browser = APIClient()
    bare_id = shop.merchant.public_id.removeprefix("merchant_")
    browser.credentials(HTTP_AUTHORIZATION=f"Alma-Merchant-Auth {bare_id}")

    assert post(browser, V2, {"purchase_amount": 50000}).status_code == 200


@pytest.mark.parametrize("merchant_id", ["merchant_nope", "merchant_" + "A" * 34, ""])
def test_an_unknown_merchant_id_is_a_401(shop, merchant_id):
    browser = APIClient()
    browser.credentials(HTTP_AUTHORIZATION=f"Alma-Merchant-Auth {merchant_id}")

    response = post(browser, V2, {"purchase_amount": 50000})

    assert response.status_code == 401


def test_cors_preflight_allows_the_widget_headers_on_v2_eligibility_only(client):
    preflight = {
        "HTTP_ORIGIN": "https://shop.example",
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST",
        "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization,content-type,x-alma-agent",
    }

    eligibility = client.options(V2, **preflight)
    payments = client.options("/v1/me", **preflight)

    assert eligibility.status_code == 200
    assert eligibility["Access-Control-Allow-Origin"] == "*"
    allowed = {h.strip() for h in eligibility["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "x-alma-agent"} <= allowed
    assert "Access-Control-Allow-Credentials" not in eligibility
    assert "Access-Control-Allow-Origin" not in payments


def test_public_calls_are_rate_limited_per_client_address(shop, settings):
    settings.PUBLIC_API_RATE_LIMIT = "2/minute"
    browser = APIClient()
    browser.credentials(HTTP_AUTHORIZATION=f"Alma-Merchant-Auth {shop.merchant.public_id}")

    statuses = [post(browser, V2, {"purchase_amount": 50000}).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert post(shop.client(), V2, {"purchase_amount": 50000}).status_code == 200


def test_a_warm_eligibility_call_makes_no_query(shop, django_assert_num_queries):
    client = shop.client()
    body = {"purchase_amount": 50000, "queries": queries(3, 4, 10, 12)}
    post(client, V2, body)

    with django_assert_num_queries(0):
        assert post(client, V2, body).status_code == 200


def test_a_warm_public_eligibility_call_makes_no_query(shop, django_assert_num_queries):
    browser = APIClient()
    browser.credentials(HTTP_AUTHORIZATION=f"Alma-Merchant-Auth {shop.merchant.public_id}")
    post(browser, V2, {"purchase_amount": 50000})

    with django_assert_num_queries(0):
        assert post(browser, V2, {"purchase_amount": 50000}).status_code == 200


@pytest.mark.django_db(transaction=True)  # the change must commit to reach the cache
def test_an_edited_fee_plan_is_used_at_once(shop):
    client = shop.client()
    post(client, V2, {"purchase_amount": 50000, "queries": queries(3)})

    FeePlan.objects.filter(merchant=shop.merchant, installments_count=3).update(
        max_purchase_amount=to_money(40000)
    )

    answer = soon(
        lambda: post(client, V2, {"purchase_amount": 50000, "queries": queries(3)}),
        until=lambda answer: not answer["eligible"],
    )
    assert answer.get("constraints", {}).get("purchase_amount", {}).get("maximum") == 40000


def test_a_merchant_only_gets_its_own_plans(shop, other_shop):
    FeePlan.objects.filter(merchant=other_shop.merchant).update(allowed=False)

    mine = post(shop.client(), V2, {"purchase_amount": 50000, "queries": queries(3)}).json()[0]
    theirs = post(other_shop.client(), V2, {"purchase_amount": 50000, "queries": queries(3)})

    assert mine["eligible"] is True
    assert theirs.json()[0]["reasons"] == {"plan": "not_allowed"}


def test_an_idempotency_key_is_accepted_and_ignored(shop):
    body = {"purchase_amount": 50000, "queries": queries(3)}

    first = post(shop.client(), V2, body, HTTP_IDEMPOTENCY_KEY="k1")
    second = post(shop.client(), V2, {**body, "purchase_amount": 60000}, HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == second.status_code == 200
    assert second.json()[0]["purchase_amount"] == 60000


def test_answers_have_exactly_the_documented_fields(shop):
    documented = set(EligibilitySerializer().fields)

    eligible, not_eligible = post(
        shop.client(), V2, {"purchase_amount": 50000, "queries": queries(3, 5)}
    ).json()

    assert set(eligible) <= documented
    assert set(not_eligible) <= documented


# --- the official Python client (alma-client from PyPI) -----------------------------------


@pytest.fixture
def alma(live_server, shop):
    return Client.with_api_key(shop.test_key, api_root=live_server.url)


def test_the_official_client_checks_one_installment_count(alma):
    eligibility = alma.payments.eligibility(
        {"payment": {"purchase_amount": 20000, "installments_count": 3}}
    )

    assert eligibility.is_eligible is True
    assert eligibility.installments_count == 3
    assert sum(item["total_amount"] for item in eligibility.payment_plan) == 20000


def test_the_official_client_checks_several_installment_counts(alma):
    answers = alma.payments.eligibility(
        {"payment": {"purchase_amount": 20000, "installments_count": [3, 4]}}
    )

    assert [(a.installments_count, a.is_eligible) for a in answers] == [(3, True), (4, True)]


def test_the_official_client_sees_a_not_eligible_amount(alma):
    eligibility = alma.payments.eligibility(
        {"payment": {"purchase_amount": 100, "installments_count": 3}}
    )

    assert eligibility.is_eligible is False
    assert eligibility.reasons == {"purchase_amount": "invalid_value"}
    assert eligibility.constraints["purchase_amount"] == {"minimum": 5000, "maximum": 200000}


def test_the_official_client_gets_our_message_on_bad_input(alma):
    with pytest.raises(RequestError) as error:
        alma.payments.eligibility({"payment": {"purchase_amount": "lots"}})

    assert error.value.response.status_code == 400
    assert "purchase_amount" in str(error.value)
