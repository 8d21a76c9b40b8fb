"""Reading eligibility request bodies: the hottest endpoint's input, checked without DRF
serializers.

Why not the serializers: instantiating them deep-copies every nested field on every request,
which measured at about a third of an eligibility call (benchmarks/). These functions check
exactly what the serializers in serializers.py declare (they stay the documented schema, and
the schemathesis suite holds the two together) and raise DRF's ValidationError with the same
nested detail and codes, so errors read the same as everywhere else in the API.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ErrorDetail, ValidationError

from apps.payments.api.serializers import (
    COUNTRY_CODES,
    MAX_DEFERRED_DAYS,
    MAX_DEFERRED_MONTHS,
    MAX_PURCHASE_AMOUNT,
    MAX_QUERIES,
    ONLINE_ORIGINS,
    POS_ORIGINS,
)

ORIGINS = frozenset(ONLINE_ORIGINS + POS_ORIGINS)
MAX_CART_ITEMS = 500
MAX_CATEGORIES = 50
MAX_CATEGORY_LENGTH = 200
MAX_LOCALE_LENGTH = 35
_ABSENT = object()


class _Errors(dict):
    def add(self, name: str, message: str, code: str) -> None:
        self.setdefault(name, []).append(ErrorDetail(message, code=code))


def _integer(
    data: dict,
    name: str,
    errors: _Errors,
    *,
    low: int,
    high: int,
    required: bool = False,
    nullable: bool = True,
) -> int | None:
    value = data.get(name, _ABSENT)
    if value is _ABSENT:
        if required:
            errors.add(name, "This field is required.", "required")
        return None
    if value is None:
        if not nullable:
            errors.add(name, "This field may not be null.", "null")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(name, "Must be an integer (a JSON number with no fraction).", "invalid")
        return None
    if value < low:
        errors.add(name, f"Ensure this value is greater than or equal to {low}.", "min_value")
    elif value > high:
        errors.add(name, f"Ensure this value is less than or equal to {high}.", "max_value")
    return value


def _object(data: dict, name: str, errors: _Errors) -> dict | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.add(name, f"Expected an object, but got {type(value).__name__}.", "invalid")
        return None
    return value


def _country(address: dict | None, name: str, errors: _Errors) -> str | None:
    if address is None:
        return None
    value = address.get("country")
    if value is None:
        return None
    nested = _Errors()
    if not isinstance(value, str):
        nested.add("country", "Must be a string.", "invalid")
    else:
        code = value.strip().upper()
        if code and code not in COUNTRY_CODES:
            nested.add(
                "country",
                f"Unknown country {value!r}: expected an ISO 3166-1 alpha-2 code such as FR.",
                "unknown",
            )
        elif code:
            return code
    if nested:
        errors[name] = nested
    return None


def _cart_categories(data: dict, errors: _Errors) -> list[str]:
    cart = _object(data, "cart", errors)
    if cart is None:
        return []
    items = cart.get("items")
    if items is None:
        return []
    cart_errors = _Errors()
    if not isinstance(items, list):
        cart_errors.add(
            "items",
            f'Expected a list of items but got type "{type(items).__name__}".',
            "not_a_list",
        )
    elif len(items) > MAX_CART_ITEMS:
        cart_errors.add(
            "items", f"Ensure this field has no more than {MAX_CART_ITEMS} elements.", "max_length"
        )
    if cart_errors:
        errors["cart"] = cart_errors
        return []
    categories: list[str] = []
    item_errors: dict[int, _Errors] = {}
    for index, item in enumerate(items):
        problems = _Errors()
        if not isinstance(item, dict):
            problems.add("non_field_errors", "Expected an object.", "invalid")
        else:
            values = item.get("categories")
            if values is None:
                continue
            if not isinstance(values, list):
                problems.add("categories", "Expected a list of strings.", "not_a_list")
            elif len(values) > MAX_CATEGORIES:
                problems.add(
                    "categories",
                    f"Ensure this field has no more than {MAX_CATEGORIES} elements.",
                    "max_length",
                )
            elif not all(isinstance(v, str) and len(v) <= MAX_CATEGORY_LENGTH for v in values):
                problems.add(
                    "categories",
                    f"Categories are strings of at most {MAX_CATEGORY_LENGTH} characters.",
                    "invalid",
                )
            else:
                categories.extend(values)
        if problems:
            item_errors[index] = problems
    if item_errors:
        errors["cart"] = {"items": item_errors}
    return categories


def _context(data: dict, errors: _Errors) -> dict[str, Any]:
    """What both versions accept around the amount and the plans."""
    locale = data.get("locale")
    if locale is not None and not isinstance(locale, str):
        errors.add("locale", "Must be a string.", "invalid")
        locale = None
    elif locale is not None and len(locale) > MAX_LOCALE_LENGTH:
        errors.add(
            "locale",
            f"Ensure this field has no more than {MAX_LOCALE_LENGTH} characters.",
            "max_length",
        )
    origin = data.get("origin")
    if origin is not None and (not isinstance(origin, str) or origin not in ORIGINS):
        errors.add("origin", f'"{origin}" is not a valid choice.', "invalid_choice")
    return {
        "billing_country": _country(
            _object(data, "billing_address", errors), "billing_address", errors
        ),
        "shipping_country": _country(
            _object(data, "shipping_address", errors), "shipping_address", errors
        ),
        "locale": locale or None,
        "origin": origin,
        "cart_categories": _cart_categories(data, errors),
    }


def _query(item: Any, errors: _Errors) -> dict[str, int] | None:
    if not isinstance(item, dict):
        errors.add(
            "non_field_errors",
            f"Invalid data. Expected a dictionary, but got {type(item).__name__}.",
            "invalid",
        )
        return None
    count = _integer(
        item, "installments_count", errors, low=1, high=12, required=True, nullable=False
    )
    days = _integer(item, "deferred_days", errors, low=0, high=MAX_DEFERRED_DAYS)
    months = _integer(item, "deferred_months", errors, low=0, high=MAX_DEFERRED_MONTHS)
    typo = _integer(item, "deferred_month", errors, low=0, high=MAX_DEFERRED_MONTHS)
    amount = _integer(item, "purchase_amount", errors, low=1, high=MAX_PURCHASE_AMOUNT)
    return {
        "installments_count": count,
        "deferred_days": days or 0,
        "deferred_months": months if months is not None else (typo or 0),
        "purchase_amount": amount,
    }


def _body(data: Any) -> dict:
    if not isinstance(data, dict):
        raise ValidationError(
            {
                "non_field_errors": [
                    ErrorDetail(
                        f"Invalid data. Expected a dictionary, but got {type(data).__name__}.",
                        code="invalid",
                    )
                ]
            }
        )
    return data


def read_v2_body(data: Any) -> dict[str, Any]:
    """A v2 body: purchase_amount, queries (None: discovery) and the context."""
    data = _body(data)
    errors = _Errors()
    amount = _integer(
        data,
        "purchase_amount",
        errors,
        low=1,
        high=MAX_PURCHASE_AMOUNT,
        required=True,
        nullable=False,
    )
    raw_queries = data.get("queries")
    queries = None
    if raw_queries is not None:
        if not isinstance(raw_queries, list):
            errors.add(
                "queries",
                f'Expected a list of items but got type "{type(raw_queries).__name__}".',
                "not_a_list",
            )
        elif len(raw_queries) > MAX_QUERIES:
            errors.add(
                "queries",
                f"Ensure this field has no more than {MAX_QUERIES} elements.",
                "max_length",
            )
        else:
            queries, query_errors = [], {}
            for index, item in enumerate(raw_queries):
                problems = _Errors()
                queries.append(_query(item, problems))
                if problems:
                    query_errors[index] = problems
            if query_errors:
                errors["queries"] = query_errors
    context = _context(data, errors)
    if errors:
        raise ValidationError(errors)
    return {"purchase_amount": amount, "queries": queries, **context}


def read_v1_body(data: Any) -> dict[str, Any]:
    """A v1 body: {"payment": {...}}; installments_count one int (one answer) or a list."""
    data = _body(data)
    payment = data.get("payment", _ABSENT)
    if payment is _ABSENT:
        raise ValidationError(
            {"payment": [ErrorDetail("This field is required.", code="required")]}
        )
    if not isinstance(payment, dict):
        raise ValidationError(
            {
                "payment": {
                    "non_field_errors": [
                        ErrorDetail("Invalid data. Expected a dictionary.", code="invalid")
                    ]
                }
            }
        )
    errors = _Errors()
    amount = _integer(
        payment,
        "purchase_amount",
        errors,
        low=1,
        high=MAX_PURCHASE_AMOUNT,
        required=True,
        nullable=False,
    )
    counts, as_list = _installments_counts(payment, errors)
    days = _integer(payment, "deferred_days", errors, low=0, high=MAX_DEFERRED_DAYS)
    months = _integer(payment, "deferred_months", errors, low=0, high=MAX_DEFERRED_MONTHS)
    context = _context(payment, errors)
    if errors:
        raise ValidationError({"payment": errors})
    return {
        "purchase_amount": amount,
        "installments_counts": counts,
        "as_list": as_list,
        "deferred_days": days or 0,
        "deferred_months": months or 0,
        **context,
    }


def _installments_counts(payment: dict, errors: _Errors) -> tuple[list[int] | None, bool]:
    value = payment.get("installments_count", _ABSENT)
    if value is _ABSENT:
        return None, True
    counts = value if isinstance(value, list) else [value]
    if not counts:
        errors.add("installments_count", "The list of instalment counts is empty.", "empty")
    elif len(counts) > 12:
        errors.add("installments_count", "At most 12 instalment counts.", "max_length")
    elif not all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 12 for c in counts):
        errors.add(
            "installments_count", "Must be an integer from 1 to 12, or a list of them.", "invalid"
        )
    return counts, isinstance(value, list)
