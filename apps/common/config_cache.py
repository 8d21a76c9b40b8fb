"""A per-process cache of configuration that hot endpoints read on every request (API
keys, merchants, fee plans, the usury table), emptied the moment PostgreSQL says any of it
changed.

Why: on this kind of machine one database round trip costs about as much as a whole bare
DRF request, and every merchant API call starts with a key lookup; eligibility also reads
the merchant's fee plans. Why it stays correct: triggers on the cached tables
``NOTIFY tranche_config`` when their transaction commits (see ``NOTIFY_FUNCTION_SQL`` and the
migrations that attach it). Each process ``LISTEN``s on its own connection and, before using
the cache, reads what has arrived on that socket without waiting (no round trip). A
notification empties the whole cache, so a revoked key, a suspended merchant or an edited fee
plan is seen by every process within milliseconds of the commit (the time the notification
takes to cross a socket). Configuration changes are rare, so emptying everything is cheap.
If the listening connection cannot be opened or breaks, the cache is bypassed (one query per
lookup) until it is back. ``CONFIG_CACHE_SECONDS`` bounds how long an entry lives anyway
(0 turns the cache off, e.g. behind a transaction-pooling PgBouncer, which does not deliver
notifications).

Keys are tuples namespaced by their first item, such as ``("api_key", secret_hash)``.
Cached values are shared between requests: treat them as read-only (services re-read rows
under lock before writing, as they must anyway).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections, transaction

logger = logging.getLogger(__name__)

CHANNEL = "tranche_config"
# Attached by migrations as a statement-level AFTER trigger to every cached table.
NOTIFY_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION tranche_notify_config() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END
$$;
"""
MAX_ENTRIES = 10_000
RECONNECT_AFTER_SECONDS = 5.0
# Fail fast when the database is away, and notice a silently dropped connection (TCP).
LISTENER_OPTIONS = {
    "connect_timeout": 2,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def plain_connection_params() -> dict[str, Any]:
    """psycopg.connect() arguments for the default database, without Django's own extras."""
    params = connections["default"].get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    return params


class ConfigCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple, tuple[Any, float]] = {}
        self._generation = 0  # bumped by every clear, so a load raced by one is not kept
        self._listener: psycopg.Connection | None = None
        self._pid = os.getpid()
        self._retry_at = 0.0

    def get(self, key: tuple, load: Callable[[], Any]) -> Any:
        """The cached value for `key`, or `load()` (cached when not None)."""
        ttl = settings.CONFIG_CACHE_SECONDS
        if ttl <= 0:
            return load()
        with self._lock:
            if not self._up_to_date():
                usable, generation = False, None
            else:
                usable, generation = True, self._generation
                entry = self._entries.get(key)
                if entry is not None and time.monotonic() - entry[1] < ttl:
                    return entry[0]
        value = load()  # outside the lock: other threads' requests do not wait on this query
        if usable and value is not None:
            with self._lock:
                if generation == self._generation:
                    if len(self._entries) >= MAX_ENTRIES:
                        self._clear()
                    self._entries[key] = (value, time.monotonic())
        return value

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def clear_now_and_after_commit(self) -> None:
        """For a process that changes cached rows itself: forget now, and again when the
        change commits, so a request racing the commit cannot keep the old rows until the
        notification crosses the socket."""
        self.clear()
        transaction.on_commit(self.clear)

    def _clear(self) -> None:
        self._entries.clear()
        self._generation += 1

    def close(self) -> None:
        """Stop listening (the next lookup listens again)."""
        with self._lock:
            self._close()
            self._retry_at = 0.0

    def _up_to_date(self) -> bool:
        """Apply the notifications received so far; False when they cannot be received."""
        if self._pid != os.getpid():  # forked: the parent's socket is not ours
            self._clear()
            self._listener = None
            self._pid = os.getpid()
        if self._listener is None and not self._listen():
            return False
        pgconn = self._listener.pgconn
        try:
            pgconn.consume_input()  # reads what the socket holds; never waits
            if pgconn.notifies() is not None:
                while pgconn.notifies() is not None:
                    pass
                self._clear()
        except psycopg.Error:
            logger.warning("Lost the configuration notifications; reading the database until back")
            self._close()
            return False
        return True

    def _listen(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        try:
            self._listener = psycopg.connect(
                **plain_connection_params(), **LISTENER_OPTIONS, autocommit=True
            )
            self._listener.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error:
            logger.warning("Cannot listen for configuration changes; config cache off for now")
            self._close()
            return False
        self._clear()  # changes made while nobody listened
        return True

    def _close(self) -> None:
        self._clear()
        self._retry_at = time.monotonic() + RECONNECT_AFTER_SECONDS
        if self._listener is not None:
            with contextlib.suppress(psycopg.Error):
                self._listener.close()
        self._listener = None


config_cache = ConfigCache()
