"""In-store sessions through their services: terminals, starting a sale (who may, which
amounts and phones), the SMS, the customer's plan choice, following the payment to paid,
refused or expired, cancelling, and the expiry sweep.

The customer's checkout is driven through the checkout's own services (decision, then
``checkout_pay`` with the sandbox processor); only the steps before the decision (details,
phone code, card and 3-D Secure, tested in tests/payments) are set on the checkout row."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model

from apps.common.money import to_cents
from apps.merchants.models import Merchant
from apps.payments.models import Charge, Checkout, Order, Payment, PaymentState
from apps.payments.processor_sandbox import SandboxProcessor
from apps.payments.services.checkout import checkout_decide, checkout_pay
from apps.payments.services.payments import PaymentStateConflict
from apps.pos import services
from apps.pos.models import PosSession, Terminal
from apps.verification.models import SmsMessage
from tests.conftest import make_shop
from tests.pos.helpers import PHONE, PHONE_E164, started, terminal_for
from tests.schedules.builders import SUCCESS, card_at_checkout

NOW = datetime(2026, 11, 23, 13, 5, tzinfo=UTC)  # 14:05 in Paris
State = PosSession.State


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel(NOW, tick=False):
        yield


# --- the customer's side, for every in-store test -----------------------------------------------


def checkout_at_decision(payment: Payment, *, when: datetime, email: str) -> None:
    """The customer gave their details (``email``), confirmed their phone by code, and
    their card passed 3-D Secure: the checkout waits for its decision."""
    card = card_at_checkout(payment, number=SUCCESS, when=when)
    first = payment.instalments.get(number=1)
    three_ds = SandboxProcessor().three_ds_start(
        token=card.processor_token,
        amount_cents=to_cents(first.total_amount),
        return_url="",
        livemode=payment.livemode,
    )
    Checkout.objects.filter(payment=payment).update(
        step=Checkout.Step.DECISION,
        email=email,
        phone=PHONE_E164,
        phone_verified_at=when,
        three_ds_reference=three_ds.reference,
        three_ds_completed_at=when,
    )


def customer_pays(session: PosSession, *, when: datetime, key: str = "3_0_0") -> Payment:
    """The customer chooses ``key`` on their phone, is accepted and pays the first
    instalment."""
    payment = services.session_choose_plan(session_id=session.pk, key=key, now=when)
    checkout_at_decision(payment, when=when, email="camille.martin@example.com")
    assert checkout_decide(payment_id=payment.pk, now=when).outcome == "yes"
    return checkout_pay(payment_id=payment.pk, now=when)


def customer_refused(session: PosSession, *, when: datetime) -> Payment:
    """The customer chooses 3x and the credit decision says no (the sandbox's test email)."""
    payment = services.session_choose_plan(session_id=session.pk, key="3_0_0", now=when)
    checkout_at_decision(payment, when=when, email="camille+scored_no@example.com")
    assert checkout_decide(payment_id=payment.pk, now=when).outcome == "no"
    return Payment.objects.get(pk=payment.pk)


def paid_session(shop, *, when: datetime = NOW, **start) -> PosSession:
    session = started(shop, now=when, **start)
    customer_pays(session, when=when)
    return services.session_sync(session_id=session.pk, now=when)


# --- terminals ------------------------------------------------------------------------------------


def test_a_terminal_secret_is_shown_once_and_stored_as_its_hash(shop):
    issued = services.terminal_register(
        merchant=shop.merchant, livemode=False, name=" Caisse 1 ", shop="Lyon", now=NOW
    )

    terminal = Terminal.objects.get(pk=issued.terminal.pk)
    assert issued.secret.startswith("tk_test_")
    assert terminal.secret_hash == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.secret not in {terminal.secret_hash, terminal.display_prefix, terminal.name}
    assert terminal.display_prefix == issued.secret[:12]
    assert terminal.name == "Caisse 1"
    assert services.terminal_for_secret(issued.secret) == terminal


def test_a_live_terminal_gets_a_live_secret(shop):
    issued = services.terminal_register(
        merchant=shop.merchant, livemode=True, name="Caisse 2", now=NOW
    )

    assert issued.secret.startswith("tk_live_")
    assert issued.terminal.livemode is True


def test_an_unknown_or_malformed_secret_finds_no_terminal(shop):
    _terminal, secret = terminal_for(shop)

    assert services.terminal_for_secret(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert services.terminal_for_secret("sk_test_" + secret[8:]) is None
    assert services.terminal_for_secret(secret + "x" * 100) is None


def test_a_belgian_merchant_cannot_register_a_terminal(db):
    belgian = make_shop(country="BE")

    with pytest.raises(services.PosNotAvailable):
        services.terminal_register(merchant=belgian.merchant, livemode=False, name="K1", now=NOW)


def test_revoking_a_terminal_cancels_its_open_session_and_keeps_finding_it(shop):
    terminal, secret = terminal_for(shop)
    session = started(shop, terminal=terminal, now=NOW)

    services.terminal_revoke(
        terminal=terminal, now=NOW + timedelta(minutes=1), revoked_by=shop.owner
    )

    terminal.refresh_from_db()
    session.refresh_from_db()
    assert terminal.is_revoked and terminal.revoked_by == shop.owner
    assert session.state == State.CANCELLED
    assert services.terminal_for_secret(secret) == terminal  # the API says why it refuses


def test_revoking_leaves_a_paid_session_paid(shop):
    terminal, _secret = terminal_for(shop)
    session = paid_session(shop, terminal=terminal)

    services.terminal_revoke(terminal=terminal, now=NOW + timedelta(minutes=1))

    session.refresh_from_db()
    assert session.state == State.PAID


# --- starting a sale ----------------------------------------------------------------------------


def test_a_belgian_merchant_cannot_start_a_session(db):
    belgian = make_shop(country="BE")

    with pytest.raises(services.PosNotAvailable) as raised:
        started(belgian, now=NOW)

    assert raised.value.http_status == 403
    assert not PosSession.objects.exists()


@pytest.mark.parametrize("status", [Merchant.Status.PENDING, Merchant.Status.SUSPENDED])
def test_a_merchant_not_active_cannot_start_a_session(db, status):
    inactive = make_shop(status=status)

    with pytest.raises(services.PosNotAvailable):
        started(inactive, now=NOW)


@pytest.mark.parametrize("amount_cents", [4999, 200001, 1])
def test_an_amount_outside_the_plans_is_refused_naming_both_bounds(shop, amount_cents):
    with pytest.raises(services.AmountOutOfBounds) as raised:
        started(shop, amount_cents=amount_cents, now=NOW)

    error = raised.value
    assert (error.extra["minimum"], error.extra["maximum"]) == (5000, 200000)
    assert "50,00" in error.message and "2\u00a0000,00" in error.message
    assert error.extra["errors"] == [{"field": "amount", "error_code": "out_of_bounds"}]
    assert not PosSession.objects.exists()


@pytest.mark.parametrize("amount_cents", [0, -100])
def test_a_zero_or_negative_amount_is_refused(shop, amount_cents):
    with pytest.raises(services.AmountOutOfBounds) as raised:
        started(shop, amount_cents=amount_cents, now=NOW)

    assert raised.value.extra["errors"][0]["error_code"] == "invalid_value"


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        ("12345", None),
        ("06 12 34", None),
        ("not a phone", None),
        ("+32 470 12 34 56", "foreign"),
        ("+44 7911 123456", "foreign"),
        ("01 23 45 67 89", "not_mobile"),
    ],
)
def test_a_phone_that_cannot_get_the_sms_is_refused_saying_why(shop, phone, reason):
    with pytest.raises(services.InvalidCustomerPhone) as raised:
        started(shop, phone=phone, now=NOW)

    assert raised.value.code == "invalid_phone"
    assert raised.value.extra.get("reason") == reason
    assert not SmsMessage.objects.exists()


def test_starting_a_sale_texts_the_short_link_with_the_amount(shop):
    terminal, _secret = terminal_for(shop)

    session = started(shop, terminal=terminal, amount_cents=123456, now=NOW)

    assert session.state == State.LINK_SENT
    assert session.link_sent_at == NOW
    assert session.expires_at == NOW + timedelta(minutes=15)
    assert session.version == 2
    assert str(session.customer_phone) == PHONE_E164
    sms = SmsMessage.objects.get(key=f"pos_session:{session.public_id}:link")
    assert sms.phone == PHONE_E164
    assert services.short_url(session) in sms.text
    assert f"/p/{session.link_code}" in sms.text
    assert "1 234,56 €" in sms.text  # plain spaces: SMS are GSM text
    assert shop.merchant.legal_name in sms.text
    assert services.session_for_link(session.link_code) == session


def test_starting_the_same_sale_again_on_a_terminal_returns_it(shop):
    terminal, _secret = terminal_for(shop)
    sale = services.SaleRequest(amount_cents=30000, phone=PHONE, reference="T-42")
    first, created = services.session_start(
        merchant=shop.merchant, livemode=False, sale=sale, terminal=terminal, now=NOW
    )

    again, created_again = services.session_start(
        merchant=shop.merchant,
        livemode=False,
        sale=services.SaleRequest(amount_cents=30000, phone="+33 6 12 34 56 78", reference="T-42"),
        terminal=terminal,
        now=NOW + timedelta(seconds=5),
    )

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk and again.version == first.version
    assert PosSession.objects.count() == 1
    assert SmsMessage.objects.count() == 1


@pytest.mark.parametrize(
    "other",
    [
        {"amount_cents": 30001, "phone": PHONE},
        {"amount_cents": 30000, "phone": "07 81 23 45 67"},
        {"amount_cents": 30000, "phone": PHONE, "reference": "other"},
    ],
)
def test_a_different_sale_on_a_busy_terminal_is_refused(shop, other):
    terminal, _secret = terminal_for(shop)
    started(shop, terminal=terminal, now=NOW)

    with pytest.raises(services.TerminalBusy):
        services.session_start(
            merchant=shop.merchant,
            livemode=False,
            sale=services.SaleRequest(**other),
            terminal=terminal,
            now=NOW,
        )

    assert PosSession.objects.count() == 1


def test_a_terminal_whose_session_is_over_starts_a_new_one(shop):
    terminal, _secret = terminal_for(shop)
    overdue = started(shop, terminal=terminal, now=NOW)

    fresh = started(shop, terminal=terminal, amount_cents=40000, now=NOW + timedelta(minutes=16))

    overdue.refresh_from_db()
    assert overdue.state == State.EXPIRED
    assert fresh.pk != overdue.pk and fresh.state == State.LINK_SENT


def test_the_virtual_terminal_names_the_staff_user_and_runs_sales_side_by_side(shop):
    user = get_user_model().objects.filter(pk=shop.owner.pk).get()
    user.first_name, user.last_name = "Léa", "Dupont"
    user.save()

    first, _ = services.session_start(
        merchant=shop.merchant,
        livemode=False,
        sale=services.SaleRequest(amount_cents=30000, phone=PHONE),
        staff_user=user,
        now=NOW,
    )
    second, created = services.session_start(
        merchant=shop.merchant,
        livemode=False,
        sale=services.SaleRequest(amount_cents=30000, phone=PHONE, staff_name="Marc"),
        staff_user=user,
        now=NOW,
    )

    assert first.terminal is None and first.staff_user == user
    assert first.staff_name == "Léa Dupont"
    assert second.staff_name == "Marc"
    assert created and second.pk != first.pk


# --- the customer opens the link and chooses ----------------------------------------------------


def test_opening_the_link_shows_the_customer_in_progress_once(shop):
    session = started(shop, now=NOW)

    opened = services.session_opened(session_id=session.pk, now=NOW + timedelta(minutes=1))
    again = services.session_opened(session_id=session.pk, now=NOW + timedelta(minutes=2))

    assert opened.state == State.CUSTOMER_IN_PROGRESS
    assert opened.opened_at == NOW + timedelta(minutes=1)
    assert again.opened_at == opened.opened_at
    assert again.version == opened.version == session.version + 1


def test_the_offered_plans_are_the_in_store_ones(shop):
    answers = services.session_plans(merchant=shop.merchant, amount_cents=30000, now=NOW)

    keys = [services.plan_key(answer) for answer in answers]
    assert {"2_0_0", "3_0_0", "4_0_0"} <= set(keys)
    assert "1_0_0" not in keys
    for answer in answers:
        query = answer.query
        deferred = bool(query.deferred_days or query.deferred_months)
        assert 2 <= query.installments_count <= 12 or deferred


def test_choosing_a_plan_creates_the_in_store_payment(shop):
    terminal, _secret = terminal_for(shop, name="Caisse 3")
    session, _ = services.session_start(
        merchant=shop.merchant,
        livemode=False,
        sale=services.SaleRequest(
            amount_cents=30000, phone=PHONE, reference="T-42", staff_name="Léa"
        ),
        terminal=terminal,
        now=NOW,
    )

    payment = services.session_choose_plan(
        session_id=session.pk, key="3_0_0", now=NOW + timedelta(minutes=1)
    )

    session.refresh_from_db()
    assert session.payment == payment
    assert session.state == State.CUSTOMER_IN_PROGRESS
    assert session.opened_at == NOW + timedelta(minutes=1)
    assert payment.origin == Payment.Origin.POS_DEVICE
    assert payment.installments_count == 3
    assert to_cents(payment.purchase_amount) == 30000
    assert payment.staff_member == "Léa"
    assert payment.terminal_name == "Caisse 3"
    assert payment.expires_at == session.expires_at
    assert payment.customer_data["phone"] == PHONE_E164
    assert Order.objects.get(payment=payment).merchant_reference == "T-42"
    assert payment.events.filter(kind="pos_session").exists()


def test_choosing_twice_returns_the_same_payment(shop):
    session = started(shop, now=NOW)

    first = services.session_choose_plan(session_id=session.pk, key="3_0_0", now=NOW)
    second = services.session_choose_plan(session_id=session.pk, key="4_0_0", now=NOW)

    assert second.pk == first.pk and second.installments_count == 3
    assert Payment.objects.count() == 1


@pytest.mark.parametrize("key", ["13_0_0", "1_0_0", "3_0", "", "x"])
def test_a_plan_not_offered_is_refused(shop, key):
    session = started(shop, now=NOW)

    with pytest.raises(services.PlanNotOffered):
        services.session_choose_plan(session_id=session.pk, key=key, now=NOW)

    assert not Payment.objects.exists()


def test_choosing_after_the_session_expired_is_refused(shop):
    session = started(shop, now=NOW)

    with pytest.raises(services.SessionFinished):
        services.session_choose_plan(
            session_id=session.pk, key="3_0_0", now=NOW + timedelta(minutes=15)
        )

    session.refresh_from_db()
    assert session.state == State.EXPIRED
    assert not Payment.objects.exists()


# --- following the payment --------------------------------------------------------------------


def test_a_session_becomes_paid_once_the_first_instalment_is_charged(shop):
    session = started(shop, now=NOW)
    payment = customer_pays(session, when=NOW + timedelta(minutes=3))

    synced = services.session_sync(session_id=session.pk, now=NOW + timedelta(minutes=3))

    assert payment.accepted_at is not None
    assert synced.state == State.PAID
    assert synced.finished_at == NOW + timedelta(minutes=3)
    assert synced.is_final


def test_a_pay_later_session_is_paid_once_accepted(shop):
    session = started(shop, now=NOW)
    keys = {
        services.plan_key(a)
        for a in services.session_plans(merchant=shop.merchant, amount_cents=30000, now=NOW)
    }
    key = next(k for k in sorted(keys) if k.startswith("1_"))

    customer_pays(session, when=NOW, key=key)

    assert services.session_sync(session_id=session.pk, now=NOW).state == State.PAID


def test_a_refused_credit_makes_the_session_refused(shop):
    session = started(shop, now=NOW)
    payment = customer_refused(session, when=NOW + timedelta(minutes=2))

    synced = services.session_sync(session_id=session.pk, now=NOW + timedelta(minutes=2))

    assert payment.state == PaymentState.SCORED_NO
    assert synced.state == State.REFUSED
    assert synced.finished_at is not None


def test_syncing_when_nothing_changed_leaves_the_version(shop):
    session = started(shop, now=NOW)

    first = services.session_sync(session_id=session.pk, now=NOW + timedelta(minutes=1))
    second = services.session_sync(session_id=session.pk, now=NOW + timedelta(minutes=2))

    assert first.version == second.version == session.version
    assert second.updated_at == session.updated_at


def test_a_session_past_its_time_expires_and_stops_its_payment(shop):
    session = started(shop, now=NOW)
    payment = services.session_choose_plan(session_id=session.pk, key="3_0_0", now=NOW)
    later = NOW + timedelta(minutes=15, seconds=1)

    with time_machine.travel(later, tick=False):
        synced = services.session_sync(session_id=session.pk, now=later)

    payment.refresh_from_db()
    assert synced.state == State.EXPIRED
    assert synced.finished_at == later
    assert payment.expired_at == later
    assert payment.state == PaymentState.STOPPED


def test_a_charge_in_flight_at_expiry_keeps_the_session_open_until_recorded(shop):
    session = started(shop, now=NOW)
    payment = services.session_choose_plan(session_id=session.pk, key="3_0_0", now=NOW)
    charge = Charge.objects.create(
        payment=payment,
        card=card_at_checkout(payment, number=SUCCESS, when=NOW),
        instalment=payment.instalments.get(number=1),
        kind=Charge.Kind.FIRST_INSTALMENT,
        idempotency_key="pos-test-in-flight",
        amount=payment.instalments.get(number=1).total_amount,
        status=Charge.Status.PENDING,
        created_at=NOW,
    )
    later = NOW + timedelta(minutes=20)

    waiting = services.session_sync(session_id=session.pk, now=later)
    payment.refresh_from_db()
    assert waiting.state == State.CUSTOMER_IN_PROGRESS
    assert payment.expired_at is None

    Charge.objects.filter(pk=charge.pk).update(status=Charge.Status.FAILED, finished_at=later)
    after = services.session_sync(session_id=session.pk, now=later + timedelta(seconds=1))

    payment.refresh_from_db()
    assert after.state == State.EXPIRED
    assert payment.expired_at == later + timedelta(seconds=1)


# --- cancelling --------------------------------------------------------------------------------


def test_cancelling_a_session_without_payment_ends_it_once(shop):
    session = started(shop, now=NOW)

    cancelled = services.session_cancel(session_id=session.pk, now=NOW + timedelta(minutes=1))
    again = services.session_cancel(session_id=session.pk, now=NOW + timedelta(minutes=2))

    assert cancelled.state == State.CANCELLED
    assert cancelled.finished_at == NOW + timedelta(minutes=1)
    assert again.version == cancelled.version


def test_cancelling_a_session_cancels_its_payment(shop):
    session = started(shop, now=NOW)
    payment = services.session_choose_plan(session_id=session.pk, key="3_0_0", now=NOW)

    cancelled = services.session_cancel(session_id=session.pk, now=NOW + timedelta(minutes=1))

    payment.refresh_from_db()
    assert cancelled.state == State.CANCELLED
    assert payment.cancelled_at == NOW + timedelta(minutes=1)
    assert payment.state == PaymentState.STOPPED
    # Still cancelled after a sync: the payment says cancelled too.
    assert services.session_sync(session_id=session.pk, now=NOW + timedelta(minutes=2)).state == (
        State.CANCELLED
    )


def test_a_refused_session_may_still_be_cancelled(shop):
    session = started(shop, now=NOW)
    customer_refused(session, when=NOW)

    cancelled = services.session_cancel(session_id=session.pk, now=NOW + timedelta(minutes=1))

    assert cancelled.state == State.CANCELLED


def test_a_paid_session_cannot_be_cancelled(shop):
    session = paid_session(shop)

    with pytest.raises(services.SessionFinished):
        services.session_cancel(session_id=session.pk, now=NOW + timedelta(minutes=1))

    session.refresh_from_db()
    assert session.state == State.PAID


def test_an_expired_session_cannot_be_cancelled(shop):
    session = started(shop, now=NOW)

    with pytest.raises(services.SessionFinished):
        services.session_cancel(session_id=session.pk, now=NOW + timedelta(minutes=16))

    session.refresh_from_db()
    assert session.state == State.EXPIRED


def test_a_session_whose_customer_is_being_charged_cannot_be_cancelled(shop):
    session = started(shop, now=NOW)
    payment = services.session_choose_plan(session_id=session.pk, key="3_0_0", now=NOW)
    Charge.objects.create(
        payment=payment,
        card=card_at_checkout(payment, number=SUCCESS, when=NOW),
        instalment=payment.instalments.get(number=1),
        kind=Charge.Kind.FIRST_INSTALMENT,
        idempotency_key="pos-test-paying",
        amount=payment.instalments.get(number=1).total_amount,
        status=Charge.Status.PENDING,
        created_at=NOW,
    )

    with pytest.raises(PaymentStateConflict):
        services.session_cancel(session_id=session.pk, now=NOW + timedelta(minutes=1))

    session.refresh_from_db()
    assert session.state == State.CUSTOMER_IN_PROGRESS


# --- the expiry sweep --------------------------------------------------------------------------


def test_the_expiry_sweep_expires_overdue_sessions_once(shop):
    one, _ = terminal_for(shop, name="Caisse 1")
    two, _ = terminal_for(shop, name="Caisse 2")
    overdue = [
        started(shop, terminal=one, now=NOW - timedelta(minutes=30)),
        started(shop, now=NOW - timedelta(minutes=16)),
    ]
    with_payment = started(shop, terminal=two, now=NOW - timedelta(minutes=20))
    payment = services.session_choose_plan(
        session_id=with_payment.pk, key="2_0_0", now=NOW - timedelta(minutes=19)
    )
    current = started(shop, now=NOW - timedelta(minutes=5))

    first_run = services.sessions_expire(now=NOW)
    second_run = services.sessions_expire(now=NOW)

    assert (first_run, second_run) == (3, 0)
    states = dict(PosSession.objects.values_list("pk", "state"))
    assert [states[s.pk] for s in overdue] == [State.EXPIRED, State.EXPIRED]
    assert states[with_payment.pk] == State.EXPIRED
    assert states[current.pk] == State.LINK_SENT
    payment.refresh_from_db()
    assert payment.expired_at == NOW


def test_a_terminal_revoked_after_its_caller_read_it_starts_nothing(shop):
    """The API authenticated the terminal, then an owner revoked it before the start took
    its lock: the start is refused, no session, no SMS."""
    terminal, _secret = terminal_for(shop)
    stale = Terminal.objects.get(pk=terminal.pk)
    services.terminal_revoke(terminal=terminal, now=NOW)

    with pytest.raises(services.TerminalRevoked):
        started(shop, terminal=stale, now=NOW)

    assert not PosSession.objects.filter(terminal=terminal).exists()
