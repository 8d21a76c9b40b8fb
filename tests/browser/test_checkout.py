"""The hosted checkout in a real Chromium, from the payment's url to the shop's return URL,
with the merchant's IPN delivered by a real django-q2 worker process."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.conf import settings
from django.db import connection
from django_q.models import Success
from playwright.sync_api import expect

from apps.payments.models import Notification
from apps.payments.notifications import DELIVER_TASK
from tests.browser.conftest import screenshot
from tests.conftest import Shop, make_shop
from tests.payments.builders import create_request

pytestmark = pytest.mark.django_db(transaction=True)  # the live server and the worker read commits

CHALLENGE = "4970100000000014"
FRICTIONLESS = "4970100000000006"
WAIT_SECONDS = 15
WAIT_MS = WAIT_SECONDS * 1000
WORKER_STOP_SECONDS = 30


@dataclass(frozen=True)
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case


class Receiver:
    """The merchant's shop: a local HTTP server that records every request it gets and
    answers 200 ``{"success":true}`` (as a plugin acknowledges an IPN)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver._record(Received(parts.path, parse_qs(parts.query), headers))
                body = b'{"success":true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the test reads what was received; no access log on stderr

        return Handler

    def _record(self, request: Received) -> None:
        with self._changed:
            self.received.append(request)
            self._changed.notify_all()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=WAIT_SECONDS)

    def requests_to(self, path: str) -> list[Received]:
        with self._changed:
            return [request for request in self.received if request.path == path]

    def wait_for(
        self, path: str, *, explain: Callable[[], str] = str, timeout: float = WAIT_SECONDS
    ) -> list[Received]:
        """The requests to ``path`` once there is at least one; fails after ``timeout``
        (saying what came instead, and ``explain()``)."""
        with self._changed:
            arrived = self._changed.wait_for(
                lambda: any(request.path == path for request in self.received), timeout
            )
            assert arrived, f"nothing reached {path} in {timeout} s: {self.received}\n{explain()}"
            return [request for request in self.received if request.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


def database_url(db: dict) -> str:
    """The test database as a DATABASE_URL (config/settings.py reads it with dj-database-url):
    the embedded server's socket directory goes in ``host=``."""
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    if host.startswith("/"):
        return f"postgresql://{user}{password}@{port}/{db['NAME']}?host={quote(host, safe='/')}"
    return f"postgresql://{user}{password}@{host}{port}/{db['NAME']}"


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def task_worker(transactional_db, tmp_path) -> Iterator[Worker]:
    """A real ``manage.py qcluster`` on the test database, as production runs it; stopped
    before the test database is flushed (this fixture is set up after the database)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # The worker unseals the merchant's key to sign the IPN: same deployment secret.
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "Q_WORKERS": "1",
    }
    log = tmp_path / "qcluster.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so its children stop with it
        )
    worker = Worker(process=process, log=log)
    try:
        yield worker
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # the cluster stops its sentinel and workers
    try:
        process.wait(timeout=WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the group this fixture created, nothing else
        process.wait(timeout=WAIT_SECONDS)


def wait_until(
    check: Callable[[], bool],
    *,
    what: str,
    explain: Callable[[], str] = str,
    timeout: float = WAIT_SECONDS,
) -> None:
    """Poll ``check`` while another process works (real time: a subprocess cannot travel)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s\n{explain()}"
        time.sleep(0.1)


@pytest.fixture
def shop_with_urls(live_server, receiver, settings) -> Shop:
    """A merchant whose default return and IPN URLs are the local receiver, with payment
    links (``url``, 3-D Secure return) on the live server."""
    settings.PUBLIC_BASE_URL = live_server.url
    return make_shop(return_url=f"{receiver.url}/return", ipn_callback_url=f"{receiver.url}/ipn")


def payment_create_through_api(shop: Shop) -> dict:
    """POST /v1/payments as a plugin would, letting the merchant's default URLs apply."""
    body = create_request()
    for name in ("return_url", "ipn_callback_url", "customer_cancel_url"):
        body["payment"].pop(name)
    response = shop.client().post("/v1/payments", body, format="json")
    assert response.status_code == 200, response.content.decode()[:2000]
    return response.json()


def fill_details(page, *, card: str, birth_date: str = "1990-04-02") -> None:
    page.locator("#id_card_number").fill(card)
    page.locator("#id_card_expiry").fill("12/30")
    page.locator("#id_card_cvc").fill("123")
    page.locator("#id_birth_date").fill(birth_date)
    page.locator("input[name=accept_terms]").check()


def enter_the_test_code(page) -> str:
    code = page.locator("[data-testid=test-code]").inner_text().strip()
    assert re.fullmatch(r"\d{6}", code), code
    page.locator("input[name=code]").fill(code)
    return code


def test_a_3d_secure_card_pays_the_first_instalment_and_the_shop_gets_its_signed_ipn(
    page, live_server, receiver, shop_with_urls, task_worker
):
    shop = shop_with_urls
    payment = payment_create_through_api(shop)
    pid = payment["id"]
    return_url = f"{receiver.url}/return?pid={pid}"
    assert payment["url"].startswith(f"{live_server.url}/")

    page.goto(payment["url"])

    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#id_first_name")).to_have_value("Camille")
    expect(page.locator("#id_last_name")).to_have_value("Martin")
    expect(page.locator("#id_email")).to_have_value("camille.martin@example.com")
    expect(page.locator("#id_phone")).to_have_value("+33612345678")
    expect(page.locator("#id_line1")).to_have_value("12 rue de la Paix")
    expect(page.locator("#id_postal_code")).to_have_value("75002")
    expect(page.locator("#id_city")).to_have_value("Paris")
    fill_details(page, card=CHALLENGE)
    expect(page.locator("#id_card_number")).to_have_value("4970 1000 0000 0014")
    expect(page.locator("#card-brand")).to_have_attribute("data-brand", "visa")
    screenshot(page, "checkout_details_1280")
    page.get_by_role("button", name=re.compile(r"^Payer la première échéance")).click()

    approve = page.locator("button[name=decision][value=approve]")
    expect(approve).to_be_visible()
    assert "/sandbox/acs/" in page.url
    expect(page.locator("main")).to_contain_text("0014")
    screenshot(page, "checkout_bank_1280")
    approve.click()

    # Back from 3-D Secure, a first-time customer is asked to prove their phone.
    code_field = page.locator("input[name=code]")
    expect(code_field).to_be_visible()
    assert urlsplit(page.url).path == urlsplit(payment["url"]).path
    screenshot(page, "checkout_code_1280")
    enter_the_test_code(page)
    code_field.locator("xpath=ancestor::form").locator("button[type=submit]").click()

    back = page.locator("a[data-redirect]")
    expect(back).to_have_attribute("href", return_url)
    assert urlsplit(page.url).path == urlsplit(payment["url"]).path
    screenshot(page, "checkout_done_1280")
    page.wait_for_url(return_url, timeout=WAIT_MS)  # the page's own countdown, no click

    returns = [request.query for request in receiver.requests_to("/return")]
    assert returns and all(query == {"pid": [pid]} for query in returns), returns
    ipn = receiver.wait_for("/ipn", explain=task_worker.log_tail)
    expected = hmac.new(shop.test_key.encode(), pid.encode(), hashlib.sha256).hexdigest()
    assert [(request.query, request.headers.get("x-alma-signature")) for request in ipn] == [
        ({"pid": [pid]}, expected)
    ]
    # Sent by the worker process: its task result says so (this process runs no tasks).
    delivered = Success.objects.filter(func=DELIVER_TASK)
    wait_until(delivered.exists, what="the worker records its task", explain=task_worker.log_tail)
    assert [task.result for task in delivered] == ["delivered"]
    notification = Notification.objects.get(payment__public_id=pid)
    assert (notification.event, notification.status, notification.attempts) == (
        "accepted",
        "delivered",
        1,
    )
    api = shop.client().get(f"/v1/payments/{pid}")
    assert api.status_code == 200
    assert api.json()["state"] == "in_progress"


def test_on_a_phone_in_english_a_frictionless_card_goes_back_to_the_shop(
    browser, live_server, receiver, shop_with_urls
):
    payment = payment_create_through_api(shop_with_urls)
    return_url = f"{receiver.url}/return?pid={payment['id']}"
    context = browser.new_context(
        locale="fr-FR", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))
    try:
        page.goto(payment["url"])

        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#id_email")).to_have_value("camille.martin@example.com")
        fill_details(page, card=FRICTIONLESS)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
        screenshot(page, "checkout_details_390_en")
        page.get_by_role("button", name=re.compile(r"^Pay the first instalment")).click()
        # Frictionless: no bank page, straight back to the phone step (a first-time customer).
        expect(page.locator("[data-testid=test-code]")).to_be_visible()
        assert urlsplit(page.url).path == urlsplit(payment["url"]).path
        assert not [url for url in visited if "/sandbox/acs/" in url], visited
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "checkout_code_390_en")
        enter_the_test_code(page)
        page.get_by_role("button", name="Confirm the code").click()

        expect(page.locator("a[data-redirect]")).to_have_attribute("href", return_url)
        page.wait_for_url(return_url, timeout=WAIT_MS)
    finally:
        context.close()

    returns = [request.query for request in receiver.requests_to("/return")]
    assert returns and all(query == {"pid": [payment["id"]]} for query in returns), returns
    api = shop_with_urls.client().get(f"/v1/payments/{payment['id']}")
    assert api.json()["state"] == "in_progress"
