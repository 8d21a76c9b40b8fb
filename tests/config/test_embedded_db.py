"""The embedded PostgreSQL starts on demand, once, even when two processes ask together."""

import subprocess
import sys

import psycopg
import pytest
from django.conf import settings

from config import embedded_db

START = (
    "import sys; from pathlib import Path; from config.embedded_db import ensure_running; "
    "print(ensure_running(Path(sys.argv[1]), 'shop'))"
)


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "postgres"
    yield path
    embedded_db.stop(path)


def test_two_processes_starting_at_once_share_one_server(data_dir):
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", START, str(data_dir)],
            cwd=settings.BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]

    assert [process.returncode for process in processes] == [0, 0], outputs
    sockets = {out.strip() for out, _ in outputs}
    assert len(sockets) == 1
    with psycopg.connect(host=sockets.pop(), user="postgres", dbname="shop") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.info.host.startswith("/")  # a Unix socket directory, not an address


def test_the_server_listens_on_no_tcp_port(data_dir):
    socket_dir = embedded_db.ensure_running(data_dir, "shop")

    with psycopg.connect(host=str(socket_dir), user="postgres", dbname="shop") as conn:
        listen = conn.execute("SHOW listen_addresses").fetchone()[0]

    assert listen == ""


def test_stop_stops_and_a_second_stop_says_it_was_not_running(data_dir):
    embedded_db.ensure_running(data_dir, "shop")

    assert embedded_db.stop(data_dir) is True
    assert embedded_db.stop(data_dir) is False
