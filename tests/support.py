"""Helpers shared by tests."""

from django.db import connection


def all_database_text() -> str:
    """Every row of every table of the database, as text."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT t::text FROM "{table}" t')  # noqa: S608 (table names from the catalogue)
            chunks.extend(row[0] for row in cursor.fetchall())
    return "\n".join(chunks)
