"""Writing a new aggregate in one SQL statement: rows of unsaved model instances as
``INSERT`` clauses of one ``WITH`` query.

Why: creating a payment writes a customer, the payment, its instalments, its orders and an
event. Through the ORM that is seven round trips to PostgreSQL (BEGIN, five INSERTs,
COMMIT), which on this kind of machine cost more than everything else the request does
(benchmarks/, ``payments_create_vs_bare_drf``). One statement is one round trip, and is
atomic by itself. The values come from the instances through each field's own
``get_db_prep_save`` (defaults, money amounts and currencies, JSON), so the rows are what
``Model.objects.create`` would have written.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, models


@dataclass
class Insert:
    """One ``name AS (INSERT INTO ... VALUES ... RETURNING ...)`` clause.

    ``references`` maps a foreign key's attname to the clause whose single row's ``id`` it
    takes (the payment's id for its instalments, say).
    """

    name: str
    rows: list[models.Model]
    references: dict[str, str] = field(default_factory=dict)
    returning: str = "id"
    suffix: str = ""  # e.g. an ON CONFLICT clause

    def sql(self) -> tuple[str, list]:
        db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: the proxy costs per access
        table, columns, fields = _layout(type(self.rows[0]))
        params: list = []
        tuples = []
        for row in self.rows:
            values = []
            for f in fields:
                if f.attname in self.references:
                    # Names of this statement's own clauses, never input.
                    values.append(f"(SELECT id FROM {self.references[f.attname]})")  # noqa: S608
                else:
                    values.append("%s")
                    params.append(f.get_db_prep_save(f.pre_save(row, True), db))
            tuples.append(f"({', '.join(values)})")
        # Identifiers come from the models and the caller's constants; values are parameters.
        clause = (
            f"{self.name} AS (INSERT INTO {table} ({columns}) VALUES {', '.join(tuples)}"  # noqa: S608
            f"{self.suffix} RETURNING {self.returning})"
        )
        return clause, params


@functools.cache
def _layout(model: type[models.Model]) -> tuple[str, str, list[models.Field]]:
    """A model's table, its column list and its fields, in order (the id left out)."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    return quote(model._meta.db_table), ", ".join(quote(f.column) for f in fields), fields


def inserts_sql(inserts: list[Insert], final: str) -> tuple[str, list]:
    """``WITH <inserts> <final>``: the statement and its parameters, in order."""
    clauses, params = [], []
    for insert in inserts:
        clause, clause_params = insert.sql()
        clauses.append(clause)
        params.extend(clause_params)
    return f"WITH {', '.join(clauses)} {final}", params


def inserts_run(inserts: list[Insert], final: str) -> tuple:
    """Run the statement; the one row ``final`` selects.

    With server-side binding (a plain psycopg cursor on Django's connection): the hundred
    or so values travel as parameters instead of being quoted into the SQL text in Python,
    which Django's default client-side binding does at a cost of most of a millisecond
    here. Same connection, same transaction (or autocommit); errors come out as Django's.
    """
    sql, params = inserts_sql(inserts, final)
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()
