import pytest

from apps.common.money import to_cents
from apps.merchants.fee_plan_specs import (
    DEFAULT_FEE_PLANS_FILE,
    InvalidFeePlans,
    load_fee_plan_specs,
    parse_fee_plan_specs,
)


def test_the_default_file_is_valid_and_complete():
    specs = load_fee_plan_specs(DEFAULT_FEE_PLANS_FILE)

    keys = {
        (s["kind"], s["installments_count"], s["deferred_days"], s["deferred_months"])
        for s in specs
    }
    assert {("general", n, 0, 0) for n in (1, 2, 3, 4, 10, 12)} <= keys
    assert {("general", 1, 15, 0), ("general", 1, 30, 0), ("pos", 1, 15, 0)} <= keys
    assert {("pos", n, 0, 0) for n in range(2, 13)} <= keys
    assert all(to_cents(s["min_purchase_amount"]) == 5000 for s in specs)
    assert all(to_cents(s["max_purchase_amount"]) == 200000 for s in specs)


def test_defaults_fill_what_a_spec_leaves_out():
    [spec] = parse_fee_plan_specs([{"installments_count": 3}])

    assert spec["kind"] == "general"
    assert spec["available_online"] is True
    assert spec["available_in_pos"] is False
    assert to_cents(spec["min_purchase_amount"]) == 5000


@pytest.mark.parametrize(
    ("plans", "words"),
    [
        ({"installments_count": 3}, "JSON list"),
        ([{"installments_count": 13}], "0.installments_count"),
        ([{"installments_count": "3"}], "integer"),
        ([{"installments_count": 1, "deferred_days": 15, "deferred_months": 1}], "not both"),
        ([{"installments_count": 3, "deferred_days": 15}], "one instalment"),
        ([{"installments_count": 3, "min_purchase_amount": 9, "max_purchase_amount": 8}], "exceed"),
        ([{"installments_count": 3}, {"installments_count": 3}], "same kind"),
        ([{"installments_count": 3, "merchant_fee_variable": -1}], "merchant_fee_variable"),
        ([{"installments_count": 3, "max_purchase_amount": 10**15}], "max_purchase_amount"),
    ],
)
def test_bad_specs_are_refused_with_a_reason(plans, words):
    with pytest.raises(InvalidFeePlans, match=words):
        parse_fee_plan_specs(plans)


def test_an_unreadable_file_is_a_clear_error(tmp_path):
    path = tmp_path / "plans.json"
    path.write_text("{not json")

    with pytest.raises(InvalidFeePlans, match="Cannot read fee plans"):
        load_fee_plan_specs(path)
