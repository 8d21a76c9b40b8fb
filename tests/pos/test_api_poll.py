"""Following a sale: ETag / If-None-Match, and the long poll (``?wait=``) with a fake clock,
plus one real wait across threads."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.pos import services
from apps.pos.api import views
from tests.conftest import make_shop
from tests.pos.helpers import started, terminal_for

SESSIONS = "/v1/pos/sessions"


def terminal_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Terminal {secret}")
    return client


class FakeClock:
    """The long poll's clock: ``sleep`` moves time on at once and may run ``on_sleep``."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep = None

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(views, "monotonic", fake.monotonic)
    monkeypatch.setattr(views, "sleep", fake.sleep)
    return fake


@pytest.fixture
def sale(shop):
    terminal, secret = terminal_for(shop)
    return started(shop, terminal=terminal), terminal_client(secret)


@pytest.mark.django_db
def test_an_unchanged_session_answers_304_to_its_etag(sale):
    session, client = sale
    first = client.get(f"{SESSIONS}/{session.public_id}")

    again = client.get(f"{SESSIONS}/{session.public_id}", HTTP_IF_NONE_MATCH=first["ETag"])

    assert first.status_code == 200
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]


@pytest.mark.django_db
def test_a_changed_session_answers_200_to_its_old_etag(sale):
    session, client = sale
    old = client.get(f"{SESSIONS}/{session.public_id}")["ETag"]
    services.session_opened(session_id=session.pk, now=timezone.now())

    response = client.get(f"{SESSIONS}/{session.public_id}", HTTP_IF_NONE_MATCH=old)

    assert response.status_code == 200
    assert response.json()["state"] == "customer_in_progress"
    assert response["ETag"] != old


@pytest.mark.django_db
def test_a_long_poll_with_nothing_happening_answers_304_at_the_deadline(sale, clock):
    session, client = sale
    etag = client.get(f"{SESSIONS}/{session.public_id}")["ETag"]

    response = client.get(f"{SESSIONS}/{session.public_id}", {"wait": 5}, HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304
    assert sum(clock.sleeps) == pytest.approx(5)
    assert max(clock.sleeps) <= 0.5
    assert len(clock.sleeps) == 10


@pytest.mark.django_db
def test_a_long_poll_answers_as_soon_as_the_session_changes(sale, clock):
    session, client = sale
    etag = client.get(f"{SESSIONS}/{session.public_id}")["ETag"]

    def customer_opens_the_link(sleeps: int) -> None:
        if sleeps == 3:
            services.session_opened(session_id=session.pk, now=timezone.now())

    clock.on_sleep = customer_opens_the_link

    response = client.get(f"{SESSIONS}/{session.public_id}", {"wait": 20}, HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 200
    assert response.json()["state"] == "customer_in_progress"
    assert len(clock.sleeps) == 3


@pytest.mark.django_db
def test_a_long_poll_without_etag_waits_for_a_state_change(sale, clock):
    session, client = sale
    clock.on_sleep = lambda sleeps: (
        services.session_cancel(session_id=session.pk, now=timezone.now()) if sleeps == 2 else None
    )

    response = client.get(f"{SESSIONS}/{session.public_id}", {"wait": 10})

    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    assert len(clock.sleeps) == 2


@pytest.mark.django_db
def test_a_long_poll_on_a_finished_session_answers_at_once(sale, clock):
    session, client = sale
    services.session_cancel(session_id=session.pk, now=timezone.now())
    etag = client.get(f"{SESSIONS}/{session.public_id}")["ETag"]

    unchanged = client.get(f"{SESSIONS}/{session.public_id}", {"wait": 20}, HTTP_IF_NONE_MATCH=etag)
    plain = client.get(f"{SESSIONS}/{session.public_id}", {"wait": 20})

    assert unchanged.status_code == 304
    assert plain.status_code == 200
    assert plain.json()["state"] == "cancelled"
    assert clock.sleeps == []


@pytest.mark.django_db
@pytest.mark.parametrize("wait", ["21", "-1", "abc", "1.5"])
def test_a_wait_outside_0_to_the_maximum_is_a_400(sale, wait):
    session, client = sale

    response = client.get(f"{SESSIONS}/{session.public_id}", {"wait": wait})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "wait"


@pytest.mark.django_db
def test_the_maximum_wait_follows_the_setting(sale, settings, clock):
    session, client = sale
    settings.POS_LONG_POLL_MAX_SECONDS = 5

    too_long = client.get(f"{SESSIONS}/{session.public_id}", {"wait": 6})
    allowed = client.get(f"{SESSIONS}/{session.public_id}", {"wait": 5})

    assert too_long.status_code == 400
    assert allowed.status_code == 304


@pytest.mark.django_db(transaction=True)
def test_a_real_long_poll_sees_a_change_committed_by_another_connection():
    shop = make_shop()
    terminal, secret = terminal_for(shop)
    session = started(shop, terminal=terminal)
    client = terminal_client(secret)
    etag = client.get(f"{SESSIONS}/{session.public_id}")["ETag"]

    def customer_opens_the_link_later() -> None:
        try:
            time.sleep(0.3)
            services.session_opened(session_id=session.pk, now=timezone.now())
        finally:
            connection.close()

    other = threading.Thread(target=customer_opens_the_link_later)
    began = time.monotonic()
    other.start()
    response = client.get(f"{SESSIONS}/{session.public_id}", {"wait": 5}, HTTP_IF_NONE_MATCH=etag)
    took = time.monotonic() - began
    other.join()

    assert response.status_code == 200
    assert response.json()["state"] == "customer_in_progress"
    assert 0.3 <= took < 2


@pytest.mark.django_db
def test_a_long_poll_beyond_the_process_limit_answers_at_once(sale, clock, settings):
    """Waiting terminals never hold every thread: past the limit a long poll is a plain
    poll, with Retry-After."""
    settings.POS_LONG_POLLS_PER_PROCESS = 1
    session, client = sale
    etag = client.get(f"{SESSIONS}/{session.public_id}")["ETag"]
    answers = []

    def second_terminal_polls(_count: int) -> None:
        if not answers:  # while the first poll waits, a second one arrives
            answers.append(
                client.get(f"{SESSIONS}/{session.public_id}", {"wait": 5}, HTTP_IF_NONE_MATCH=etag)
            )

    clock.on_sleep = second_terminal_polls
    first = client.get(f"{SESSIONS}/{session.public_id}", {"wait": 5}, HTTP_IF_NONE_MATCH=etag)

    assert first.status_code == 304 and "Retry-After" not in first
    assert answers[0].status_code == 304 and answers[0]["Retry-After"] == "2"
    assert len(clock.sleeps) == 10  # only the first one waited
    again = client.get(f"{SESSIONS}/{session.public_id}", {"wait": 1}, HTTP_IF_NONE_MATCH=etag)
    assert "Retry-After" not in again  # the slot was given back
