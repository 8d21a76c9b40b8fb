"""In-store sessions under concurrent callers, each thread on its own database connection: a
terminal retrying a start, two staff starting different sales on one terminal, a cancel
racing the customer's plan choice, and several pollers syncing one session."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import time_machine

from apps.payments.models import Payment, PaymentEvent, PaymentState
from apps.pos import services
from apps.pos.models import PosSession
from apps.verification.models import SmsMessage
from tests.pos.helpers import PHONE, started, terminal_for
from tests.pos.test_services import NOW, customer_pays
from tests.support import run_in_threads as threads_run

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
State = PosSession.State
EXPECTED = (services.TerminalBusy, services.SessionFinished)


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel(NOW, tick=False):
        yield


def run_in_threads(work: Callable[[int], object], count: int = THREADS) -> list[object]:
    return threads_run(work, count, expected=EXPECTED)


def start_on(shop, terminal, *, amount_cents: int):
    return services.session_start(
        merchant=shop.merchant,
        livemode=False,
        sale=services.SaleRequest(amount_cents=amount_cents, phone=PHONE, reference="T-1"),
        terminal=terminal,
        now=NOW,
    )


def test_a_terminal_retrying_one_sale_at_once_gets_one_session(shop):
    terminal, _secret = terminal_for(shop)

    results = run_in_threads(lambda i: start_on(shop, terminal, amount_cents=30000))

    sessions = {session.pk for session, _created in results}
    assert len(sessions) == 1
    assert sorted(created for _session, created in results) == [False] * (THREADS - 1) + [True]
    assert PosSession.objects.count() == 1
    assert SmsMessage.objects.count() == 1


def test_different_sales_on_one_terminal_at_once_let_one_through(shop):
    terminal, _secret = terminal_for(shop)

    results = run_in_threads(lambda i: start_on(shop, terminal, amount_cents=30000 + i))

    started_ = [result for result in results if isinstance(result, tuple)]
    busy = [result for result in results if isinstance(result, services.TerminalBusy)]
    assert len(started_) == 1 and started_[0][1] is True
    assert len(busy) == THREADS - 1
    assert PosSession.objects.get().pk == started_[0][0].pk
    assert SmsMessage.objects.count() == 1


@pytest.mark.parametrize("round_", range(3))
def test_a_cancel_racing_the_plan_choice_never_leaves_a_payable_payment(shop, round_):
    session = started(shop, now=NOW)

    def work(i: int):
        if i % 2:
            return services.session_cancel(session_id=session.pk, now=NOW)
        return services.session_choose_plan(session_id=session.pk, key="3_0_0", now=NOW)

    results = run_in_threads(work)

    session.refresh_from_db()
    assert session.state == State.CANCELLED
    assert Payment.objects.count() <= 1
    payment = Payment.objects.filter(pk=session.payment_id).first()
    if payment is not None:
        assert payment.state == PaymentState.STOPPED and payment.cancelled_at is not None
        assert all(
            result.pk == payment.pk for result in results[0::2] if isinstance(result, Payment)
        )
    else:
        assert not Payment.objects.exists()
        assert all(isinstance(result, services.SessionFinished) for result in results[0::2])
    assert all(isinstance(result, PosSession) for result in results[1::2])


def test_pollers_syncing_at_once_record_a_payment_once(shop):
    session = started(shop, now=NOW)
    customer_pays(session, when=NOW)
    before = PosSession.objects.get(pk=session.pk)
    assert before.state == State.CUSTOMER_IN_PROGRESS  # nobody synced since it was paid

    results = run_in_threads(lambda i: services.session_sync(session_id=session.pk, now=NOW))

    after = PosSession.objects.get(pk=session.pk)
    assert after.state == State.PAID
    assert after.version == before.version + 1
    assert {result.state for result in results} == {State.PAID}


def test_sweeps_running_at_once_expire_each_session_once_and_count_it_once(shop):
    sessions = [started(shop, now=NOW) for _ in range(5)]
    before = {s.pk: s.version for s in sessions}
    later = NOW + timedelta(minutes=16)

    counts = run_in_threads(lambda i: services.sessions_expire(now=later), count=4)

    assert sum(counts) == 5
    for session in PosSession.objects.all():
        assert session.state == State.EXPIRED
        assert session.version == before[session.pk] + 1


def test_pollers_and_the_sweep_expiring_at_once_stop_the_payment_once(shop):
    session = started(shop, now=NOW)
    payment = services.session_choose_plan(session_id=session.pk, key="3_0_0", now=NOW)
    before = PosSession.objects.get(pk=session.pk)
    later = NOW + timedelta(minutes=16)

    def work(i: int):
        if i == 0:
            return services.sessions_expire(now=later)
        return services.session_sync(session_id=session.pk, now=later)

    run_in_threads(work)

    after = PosSession.objects.get(pk=session.pk)
    payment.refresh_from_db()
    assert after.state == State.EXPIRED
    assert after.version == before.version + 1
    assert payment.expired_at == later
    assert PaymentEvent.objects.filter(payment=payment, kind="expired").count() == 1
