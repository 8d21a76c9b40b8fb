"""Writing or deleting many rows: in one statement where Django's own bulk methods cost
too much, in batches where one statement would hold its locks too long.

``Model.objects.bulk_update`` builds a ``CASE WHEN id = ... THEN ...`` expression per field
and row: for a batch of 200 rows and 4 fields that is 800 expressions to resolve and a
statement PostgreSQL plans slowly. ``rows_update`` sends one array per field instead and
joins them back to the table by primary key.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models
from djmoney.models.fields import MoneyField
from djmoney.utils import get_currency_field_name


def rows_update(rows: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Write ``fields`` of each of ``rows`` (instances of one model) in one UPDATE.

    A money field (django-money) writes its currency column too. Returns the number of rows
    updated. Like ``bulk_update``, no signal is sent and ``auto_now`` is not applied."""
    if not rows:
        return 0
    model = type(rows[0])
    meta = model._meta
    columns = [meta.pk]
    for name in fields:
        field = meta.get_field(name)
        columns.append(field)
        if isinstance(field, MoneyField):
            columns.append(meta.get_field(get_currency_field_name(name, field)))
    arrays = [
        [field.get_db_prep_save(getattr(row, field.attname), connection) for row in rows]
        for field in columns
    ]
    quote = connection.ops.quote_name
    types = [_array_type(field) for field in columns]
    names = [quote(field.column) for field in columns]
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    # Names and types come from the model, quoted; every value is a parameter.
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608
        f"FROM unnest({', '.join(f'%s::{kind}' for kind in types)}) AS v({', '.join(names)}) "
        f"WHERE t.{names[0]} = v.{names[0]}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        return cursor.rowcount


def rows_delete(queryset: models.QuerySet, *, batch_size: int = 5000) -> int:
    """Delete what ``queryset`` selects, ``batch_size`` rows per statement (short
    transactions, whatever the backlog); returns how many rows went."""
    deleted = 0
    while ids := list(queryset.values_list("pk", flat=True)[:batch_size]):
        deleted += queryset.model._default_manager.filter(pk__in=ids).delete()[0]
    return deleted


def _array_type(field: models.Field) -> str:
    target = field.target_field if field.is_relation else field
    kind = target.rel_db_type(connection) if field.is_relation else target.db_type(connection)
    return f"{kind}[]"
