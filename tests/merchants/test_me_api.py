"""GET /v1/me, /v1/me/extended-data and /v1/me/fee-plans, as Alma's clients read them."""

import json
from pathlib import Path

import pytest
from alma_client import Client
from alma_client.entities import FeePlanKind
from alma_client.request import RequestError

from apps.merchants.fee_plan_specs import DEFAULT_FEE_PLANS_FILE

pytestmark = pytest.mark.django_db

FEE_PLAN_INT_FIELDS = [
    "installments_count",
    "deferred_days",
    "deferred_months",
    "min_purchase_amount",
    "max_purchase_amount",
    "merchant_fee_variable",
    "merchant_fee_fixed",
    "customer_fee_variable",
    "customer_fee_fixed",
    "customer_lending_rate",
]


def plan_keys(plans):
    return [
        f"{p['kind']}_{p['installments_count']}_{p['deferred_days']}_{p['deferred_months']}"
        for p in plans
    ]


def test_me_describes_the_merchant(shop):
    body = shop.client().get("/v1/me").json()

    assert body["id"] == shop.merchant.public_id
    assert body["name"] == shop.merchant.legal_name
    assert body["country"] == "FR"
    assert body["state"] == "active"
    assert body["can_create_payments"] is True


def test_extended_data_adds_fee_plans_and_the_legal_entity(shop):
    body = shop.client().get("/v1/me/extended-data").json()

    default_count = len(json.loads(Path(DEFAULT_FEE_PLANS_FILE).read_text()))
    assert len(body["fee_plans"]) == default_count
    assert body["legal_entity"]["business_name"] == shop.merchant.legal_name
    assert body["minimum_purchase_amount"] == 5000
    assert body["maximum_purchase_amount"] == 200000
    for plan in body["fee_plans"]:
        assert plan["merchant"] == shop.merchant.public_id
        for field in FEE_PLAN_INT_FIELDS:
            assert isinstance(plan[field], int), (field, plan)
        for field in ("allowed", "available_online", "available_in_pos"):
            assert isinstance(plan[field], bool), (field, plan)


def test_extended_data_costs_one_query_once_the_key_is_cached(shop, django_assert_num_queries):
    client = shop.client()
    client.get("/v1/me")  # looks the key up and records its use

    with django_assert_num_queries(1):  # the fee plans
        client.get("/v1/me/extended-data")


def test_me_costs_no_query_once_the_key_is_cached(shop, django_assert_num_queries):
    client = shop.client()
    client.get("/v1/me")

    with django_assert_num_queries(0):
        client.get("/v1/me")


def test_without_the_cache_me_costs_one_query(shop, settings, django_assert_num_queries):
    settings.CONFIG_CACHE_SECONDS = 0
    client = shop.client()
    client.get("/v1/me")

    with django_assert_num_queries(1):  # key and merchant together
        client.get("/v1/me")


def test_default_catalogue_is_the_documented_one(shop):
    plans = shop.client().get("/v1/me/fee-plans?kind=general&only=all&deferred=true").json()

    assert plan_keys(plans) == [
        "general_1_0_0",
        "general_1_15_0",
        "general_1_30_0",
        "general_2_0_0",
        "general_3_0_0",
        "general_4_0_0",
        "general_10_0_0",
        "general_12_0_0",
    ]
    free = [p for p in plans if p["installments_count"] in (2, 3, 4)]
    assert all(p["customer_fee_variable"] == 0 and p["customer_lending_rate"] == 0 for p in free)
    credit = [p for p in plans if p["installments_count"] >= 10]
    assert all(p["customer_lending_rate"] > 0 for p in credit)


def test_fee_plans_filter_by_kind_instalments_and_deferral(shop):
    client = shop.client()

    general_3_4 = client.get("/v1/me/fee-plans?kind=general&only=3,4").json()
    pos = client.get("/v1/me/fee-plans?kind=pos&deferred=false").json()
    deferred = client.get("/v1/me/fee-plans?kind=pos&only=1&deferred=true").json()

    assert plan_keys(general_3_4) == ["general_3_0_0", "general_4_0_0"]
    assert plan_keys(pos) == [f"pos_{n}_0_0" for n in range(2, 13)]
    assert plan_keys(deferred) == ["pos_1_15_0", "pos_1_30_0"]


def test_without_kind_both_kinds_are_listed(shop):
    plans = shop.client().get("/v1/me/fee-plans?only=2").json()

    assert plan_keys(plans) == ["general_2_0_0", "pos_2_0_0"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("kind=online", "kind"),
        ("only=13", "only"),
        ("only=three", "only"),
        ("only=3,x", "only"),
        ("deferred=maybe", "deferred"),
    ],
)
def test_bad_fee_plan_filters_are_400_naming_the_field(shop, query, field):
    response = shop.client().get(f"/v1/me/fee-plans?{query}")

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert error["value"] == query.split("=", 1)[1]


def test_a_merchant_only_sees_its_own_fee_plans(shop, other_shop):
    plans = other_shop.client().get("/v1/me/fee-plans?deferred=true").json()

    assert {p["merchant"] for p in plans} == {other_shop.merchant.public_id}


# --- Alma's official Python client, against a real server ----------------------------


@pytest.fixture
def alma(live_server, shop):
    return Client.with_api_key(shop.test_key, api_root=live_server.url)


def test_the_official_client_reads_the_merchant(alma, shop):
    me = alma.merchants.me()
    extended = alma.merchants.me(extended=True)

    assert me.id == shop.merchant.public_id
    assert extended.can_create_payments is True
    assert len(extended.fee_plans) > 0


def test_the_official_client_lists_fee_plans(alma):
    plans = alma.merchants.fee_plans(FeePlanKind.GENERAL, only=[3, 4])

    assert [(p.kind, p.installments_count) for p in plans] == [
        (FeePlanKind.GENERAL, 3),
        (FeePlanKind.GENERAL, 4),
    ]


def test_the_official_client_reports_a_bad_key_with_our_message(live_server, db):
    client = Client.with_api_key("sk_test_" + "0" * 32, api_root=live_server.url)

    with pytest.raises(RequestError) as error:
        client.merchants.me()

    assert error.value.response.status_code == 401
    assert "Invalid API key" in str(error.value)


@pytest.mark.parametrize(
    ("path", "serializer"),
    [("/v1/me", "MerchantSerializer"), ("/v1/me/extended-data", "ExtendedMerchantSerializer")],
)
def test_responses_have_exactly_the_documented_fields(shop, path, serializer):
    from apps.merchants.api import serializers

    documented = list(getattr(serializers, serializer)().fields)

    assert list(shop.client().get(path).json()) == documented
