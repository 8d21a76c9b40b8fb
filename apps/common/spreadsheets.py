"""Cells for files people open in a spreadsheet (exports, payout statements)."""

from __future__ import annotations

import re
from typing import Any

# What makes Excel, LibreOffice or Google Sheets read a cell as a formula (CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def safe_cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run: text starting with = + - @, a tab or a
    carriage return gets a leading single quote, unless it is a plain number such as
    -12.50 (no formula is one). Other values (numbers, None) pass unchanged."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_TRIGGERS)
        and not PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value
