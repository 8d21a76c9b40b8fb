"""A real HTTP server on 127.0.0.1, in a thread, that records what it receives and answers
as the test tells it: the merchant's side of an IPN, or any outgoing call."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class Receiver:
    """Answers every GET with ``status`` and ``body``; ``endless`` streams a body that never
    ends; ``hold`` makes each request wait until ``release()`` (a call kept in flight)."""

    status: int = 200
    body: bytes = b'{"success": true}'
    headers: dict[str, str] = field(default_factory=dict)
    endless: bool = False
    hold: bool = False
    requests: list[Received] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)
    _released: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def url(self, path: str = "/ipn", *, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def release(self) -> None:
        self._released.set()

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                parts = urlsplit(self.path)
                receiver.requests.append(
                    Received(
                        path=parts.path,
                        query=parse_qs(parts.query),
                        headers={key.lower(): value for key, value in self.headers.items()},
                    )
                )
                receiver.received.set()
                if receiver.hold:
                    receiver._released.wait(timeout=15)
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                if receiver.endless:
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    chunk = b"x" * 16384
                    try:
                        for _ in range(4096):  # 64 MB at most, if nobody hangs up
                            self.wfile.write(chunk)
                    except OSError:
                        pass  # the client stopped reading, as it should
                    return
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, format, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
