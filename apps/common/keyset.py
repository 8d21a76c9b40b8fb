"""Keyset pagination: the rows after a cursor row in a (column, id) order, as one row
comparison PostgreSQL can seek to in a (..., column, id) index.

``Q(column__lt=v) | Q(column=v, id__lt=pk)`` means the same, but the planner cannot use it
as an index condition: it walks the index from the top and filters, so page 20,000 of a
list reads every row before it. ``(column, id) < (v, pk)`` starts where the cursor is.
"""

from __future__ import annotations

from typing import Any

from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL


def rows_after(
    queryset: QuerySet, *, field: str, value: Any, pk: int, descending: bool
) -> QuerySet:
    """``queryset`` narrowed to the rows that come after (``value``, ``pk``) when sorted by
    ``field`` then the primary key, both descending or both ascending. ``field`` names a
    concrete field of the queryset's model (never user input)."""
    model = queryset.model
    table = model._meta.db_table
    column = model._meta.get_field(field).column
    pk_column = model._meta.pk.column
    operator = "<" if descending else ">"
    # Names come from the model's metadata, values are parameters.
    condition = RawSQL(  # noqa: S611
        f'("{table}"."{column}", "{table}"."{pk_column}") {operator} (%s, %s)',
        (value, pk),
        output_field=BooleanField(),
    )
    return queryset.filter(condition)
