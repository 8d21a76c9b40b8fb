"""Helpers shared by tests."""

import threading
import traceback
from collections.abc import Callable

from django.db import connection


def all_database_text() -> str:
    """Every row of every table of the database, as text."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT t::text FROM "{table}" t')  # noqa: S608 (table names from the catalogue)
            chunks.extend(row[0] for row in cursor.fetchall())
    return "\n".join(chunks)


def run_in_threads(
    work: Callable[[int], object],
    count: int,
    *,
    expected: tuple[type[BaseException], ...] = (),
) -> list[object]:
    """``work(i)`` for i in 0..count-1, in threads released together, each on its own
    database connection (closed at the end). Returns each result, or the exception when it
    is one of ``expected`` (a refusal the race may produce); any other exception fails the
    test with every thread's traceback."""
    start = threading.Barrier(count)
    results: list[object] = [None] * count
    failures: list[str] = []

    def worker(i: int) -> None:
        try:
            start.wait()
            results[i] = work(i)
        except expected as error:
            results[i] = error
        except BaseException:
            failures.append(f"thread {i}:\n{traceback.format_exc()}")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, "\n".join(failures)
    return results
