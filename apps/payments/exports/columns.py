"""Pure formatting: the column specs per kind and the row builders that turn a query's
tuple into typed cells."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from apps.common.dates import BUSINESS_TZ
from apps.common.money import decimal_to_cents
from apps.common.spreadsheets import safe_cell
from apps.payments.exports.base import CUSTOM_FIELD_KINDS
from apps.payments.models import DataExport

# --- pure formatting ------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    header: str
    type: str  # text, int, money (cents), datetime, date


def _money_columns(name: str) -> list[Column]:
    return [Column(name, "money"), Column(f"{name}_cents", "int")]


COLUMNS: dict[str, list[Column]] = {
    DataExport.Kind.PAYMENTS: [
        Column("id", "text"),
        Column("created", "datetime"),
        Column("state", "text"),
        Column("origin", "text"),
        Column("plan", "text"),
        *_money_columns("purchase_amount"),
        *_money_columns("customer_fee"),
        *_money_columns("customer_interest"),
        *_money_columns("merchant_fee"),
        Column("customer_first_name", "text"),
        Column("customer_last_name", "text"),
        Column("customer_email", "text"),
        Column("customer_phone", "text"),
        Column("order_references", "text"),
        Column("accepted_at", "datetime"),
        # In store: the terminal (or "Virtual terminal") and the staff member of the sale.
        Column("staff_member", "text"),
        Column("terminal", "text"),
    ],
    DataExport.Kind.INSTALMENTS: [
        Column("payment_id", "text"),
        Column("instalment_id", "text"),
        Column("number", "int"),
        Column("due_date", "date"),
        *_money_columns("total_amount"),
        *_money_columns("purchase_amount"),
        *_money_columns("customer_fee"),
        *_money_columns("customer_interest"),
        Column("state", "text"),
        Column("paid_at", "datetime"),
        Column("payment_state", "text"),
    ],
    DataExport.Kind.REFUNDS: [
        Column("refund_id", "text"),
        Column("payment_id", "text"),
        Column("refunded_at", "datetime"),
        Column("state", "text"),
        Column("origin", "text"),
        Column("merchant_reference", "text"),
        Column("comment", "text"),
        # What the merchant refunded (against the purchase amount), then where it went: what
        # the customer still owed, cancelled (written-off included), and what goes back to the
        # card (purchase amount, customer fees and interest together, also apart below).
        *_money_columns("amount"),
        *_money_columns("owed_cancelled"),
        *_money_columns("back_to_card"),
        *_money_columns("customer_fee_refunded"),
        *_money_columns("interest_refunded"),
    ],
    DataExport.Kind.LEDGER: [
        Column("date", "datetime"),
        Column("posting_id", "int"),
        Column("recipe", "text"),
        Column("reference", "text"),
        Column("memo", "text"),
        Column("account", "text"),
        *_money_columns("debit"),
        *_money_columns("credit"),
        # The payment the posting's reference names (empty for a payout or a fee invoice).
        Column("origin", "text"),
        Column("terminal", "text"),
        Column("staff_member", "text"),
    ],
}


def columns_for(kind: str, custom_fields: Sequence[str] = ()) -> list[Column]:
    """The kind's columns; a payments or refunds export adds one ``custom_data.<key>`` per
    field (the payment's)."""
    columns = list(COLUMNS[kind])
    if kind in CUSTOM_FIELD_KINDS:
        columns += [Column(f"custom_data.{key}", "text") for key in custom_fields]
    return columns


def plan_label(*, installments_count: int, deferred_days: int, deferred_months: int) -> str:
    """A plan as merchants name it: "3x", "pay later 30 d", "pay later 1 m", "3x + 30 d"."""
    delay = ""
    if deferred_days:
        delay = f"{deferred_days} d"
    elif deferred_months:
        delay = f"{deferred_months} m"
    if not delay:
        return f"{installments_count}x"
    if installments_count == 1:
        return f"pay later {delay}"
    return f"{installments_count}x + {delay}"


def _cents(amount: Decimal | None) -> int:
    return 0 if amount is None else decimal_to_cents(amount)


def _custom_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def payment_row(raw: tuple, custom_fields: Sequence[str]) -> list:
    """One payments line from ``_payments_query``'s tuple."""
    (
        public_id,
        created_at,
        state,
        origin,
        count,
        days,
        months,
        purchase,
        customer_fee,
        interest,
        merchant_fee,
        customer_data,
        references,
        accepted_at,
        custom_data,
        staff_member,
        terminal_name,
    ) = raw
    customer = customer_data or {}
    custom = custom_data or {}
    return [
        public_id,
        created_at,
        state,
        origin,
        plan_label(installments_count=count, deferred_days=days, deferred_months=months),
        *_twice(_cents(purchase)),
        *_twice(_cents(customer_fee)),
        *_twice(_cents(interest)),
        *_twice(_cents(merchant_fee)),
        str(customer.get("first_name") or ""),
        str(customer.get("last_name") or ""),
        str(customer.get("email") or ""),
        str(customer.get("phone") or ""),
        " | ".join(ref for ref in (references or []) if ref),
        accepted_at,
        staff_member or "",
        terminal_name or "",
        *[_custom_value(custom.get(key)) for key in custom_fields],
    ]


def instalment_row(raw: tuple) -> list:
    """One instalments line from ``_instalments_query``'s tuple."""
    (payment_id, public_id, number, due_date, purchase, fee, interest, state, paid_at, pstate) = raw
    principal, fee, interest = _cents(purchase), _cents(fee), _cents(interest)
    return [
        payment_id,
        public_id,
        number,
        due_date,
        *_twice(principal + fee + interest),
        *_twice(principal),
        *_twice(fee),
        *_twice(interest),
        state,
        paid_at,
        pstate,
    ]


def refund_row(raw: tuple, custom_fields: Sequence[str]) -> list:
    """One refunds line from ``_refunds_query``'s tuple (a ``Refund`` row)."""
    (
        public_id,
        payment_id,
        created_at,
        state,
        origin,
        merchant_reference,
        comment,
        amount,
        owed,
        written_off,
        to_card,
        fee,
        interest,
        custom_data,
    ) = raw
    fee_cents, interest_cents = _cents(fee), _cents(interest)
    custom = custom_data or {}
    return [
        public_id,
        payment_id,
        created_at,
        state,
        origin,
        merchant_reference,
        comment,
        *_twice(_cents(amount)),
        *_twice(_cents(owed) + _cents(written_off)),
        *_twice(_cents(to_card) + fee_cents + interest_cents),
        *_twice(fee_cents),
        *_twice(interest_cents),
        *[_custom_value(custom.get(key)) for key in custom_fields],
    ]


def ledger_row(raw: tuple) -> list:
    """One ledger line (a leg) from ``_ledger_query``'s tuple; debits are positive legs."""
    (
        effective_at,
        posting_id,
        recipe,
        reference,
        memo,
        account_kind,
        amount,
        origin,
        terminal_name,
        staff_member,
    ) = raw
    cents = _cents(amount)
    return [
        effective_at,
        posting_id,
        recipe,
        reference,
        memo,
        account_kind,
        *_twice(max(cents, 0)),
        *_twice(max(-cents, 0)),
        origin or "",
        terminal_name or "",
        staff_member or "",
    ]


def _twice(cents: int) -> tuple[int, int]:
    """The two cells of an amount: euros (rendered from cents) and cents."""
    return cents, cents


class Layout:
    """Where each type of cell sits in a kind's rows, so that a row is rendered with a few
    loops over positions instead of a type test per cell (100,000 rows of 20 cells)."""

    def __init__(self, columns: list[Column]):
        self.columns = columns
        self.text = [i for i, c in enumerate(columns) if c.type == "text"]
        self.datetime = [i for i, c in enumerate(columns) if c.type == "datetime"]
        self.date = [i for i, c in enumerate(columns) if c.type == "date"]
        self.money = [i for i, c in enumerate(columns) if c.type == "money"]
        self.numbers = frozenset(i for i, c in enumerate(columns) if c.type in ("int", "money"))

    def prepare(self, row: list) -> list:
        """A typed row (from a row builder) with its text final, in place: times and dates
        as ISO 8601 text (times in Europe/Paris with their offset), free text made safe.
        Numbers stay numbers (money in cents) for each writer to render."""
        for i in self.datetime:
            value = row[i]
            if value is not None:
                row[i] = value.astimezone(BUSINESS_TZ).isoformat()
        for i in self.date:
            value = row[i]
            if value is not None:
                row[i] = value.isoformat()
        for i in self.text:
            value = row[i]
            if value is None:
                continue
            if not isinstance(value, str):
                value = str(value)
            row[i] = safe_cell(value)
        return row
