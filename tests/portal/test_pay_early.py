"""Paying instalments early from the portal: one instalment or everything left, with the
saved card or another one; declines, timeouts, double clicks and debits in flight."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import translation
from django_q.conf import Conf

from apps.common.dates import debit_time
from apps.common.emails import email_content
from apps.common.models import OutgoingEmail
from apps.common.money import to_cents
from apps.ledger.audit import ledger_audit
from apps.ledger.models import Posting
from apps.payments.models import Charge, Instalment, Notification, Payment, SandboxCharge
from apps.payments.processor import ProcessorUnavailable
from apps.payments.processor_sandbox import SandboxProcessor
from apps.refunds.allocation import RefundWaitForDebit
from apps.refunds.models import CardRefund, Refund
from apps.refunds.services import RefundRequest, refund_issue
from apps.schedules.models import CardSetup, Receipt
from apps.schedules.receipts import receipt_html
from apps.schedules.services import debits
from apps.schedules.services.cards import card_setup_complete, card_setup_start
from apps.schedules.services.debits import debit_run
from apps.schedules.services.early import (
    DebitInProgress,
    EarlyPaymentDeclined,
    EarlyPaymentInDoubt,
    InstalmentNotPayable,
    PlanNotFound,
    early_payment_make,
    early_payment_open,
)
from apps.schedules.tasks import render_receipts
from tests.portal.helpers import CAMILLE, DOMINIQUE, plan_for, sign_in
from tests.schedules.builders import LATER_DECLINED, TIMEOUT

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # 4x: Nov 2, Dec 2, Jan 2, Feb 2
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
DECLINED_CARD = "4000000000000002"  # do_not_honor
OTHER_CARD = "5130100000000000"  # Mastercard, succeeds


@pytest.fixture(autouse=True)
def _receipts_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": True},
        },
    }


def three_ds(payment: Payment, cents: int, *, token: str | None = None) -> str:
    """A frictionless 3-D Secure authentication of the plan's card (or ``token``)."""
    started = SandboxProcessor().three_ds_start(
        token=token or payment.card.processor_token,
        amount_cents=cents,
        return_url="",
        livemode=payment.livemode,
    )
    assert started.status == "authenticated"
    return started.reference


def total(payment: Payment, *numbers: int) -> int:
    rows = payment.instalments.filter(number__in=numbers)
    return sum(to_cents(row.total_amount) for row in rows)


def pay(payment: Payment, numbers, *, at: datetime = NOW, cents: int | None = None):
    """Pay ``numbers`` of ``payment`` early with its saved card (authenticated first)."""
    wanted = (
        [row.number for row in payment.instalments.filter(state__in=["pending", "incident"])]
        if numbers == "all"
        else numbers
    )
    with time_machine.travel(at, tick=False):
        reference = three_ds(payment, cents or total(payment, *wanted))
        return early_payment_make(
            customer=payment.customer,
            payment_id=payment.pk,
            numbers=numbers,
            card_id=payment.card_id,
            three_ds_reference=reference,
            now=at,
        )


def tokenise(number: str, *, exp_year: int = 2035):
    return SandboxProcessor().tokenise(
        number=number, exp_month=12, exp_year=exp_year, cvc="123", livemode=False
    )


def run(at: datetime, **kwargs):
    with time_machine.travel(at, tick=False):
        return debit_run(now=at, **kwargs)


# --- one instalment, everything left ----------------------------------------------------------


def test_paying_one_instalment_early_pays_it_once_with_its_postings_and_one_receipt(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT, locale="en")
    second = payment.instalments.get(number=2)
    planned = second.next_debit_at
    cents = total(payment, 2)

    charge = pay(payment, [2])

    assert charge.kind == "early_payment" and charge.status == "succeeded"
    assert charge.instalment_id is None and charge.covers == [second.pk]
    assert charge.idempotency_key == f"early:{payment.public_id}:1"
    assert to_cents(charge.amount) == cents and charge.card_id == payment.card_id
    second.refresh_from_db()
    assert second.state == "paid" and second.paid_at == NOW and second.next_debit_at is None
    posting = Posting.objects.get(idempotency_key=f"{second.public_id}:collected")
    assert posting.processor_reference == charge.processor_reference
    receipt = Receipt.objects.get(charge=charge)
    assert receipt.instalment_id == second.pk
    assert receipt.data["instalment_numbers"] == [2] and receipt.data["early"] is True
    assert receipt.data["amount_cents"] == cents
    assert [row["number"] for row in receipt.data["remaining"]] == [3, 4]
    email = OutgoingEmail.objects.get(key=receipt.email_key)
    assert email.subject == f"Instalment 2 of 4 paid early: {shop.merchant.legal_name}"
    assert email.attachments[0]["filename"] == f"{receipt.number}.pdf"
    kinds = list(payment.events.order_by("pk").values_list("kind", flat=True))
    assert kinds[-3:] == ["early_payment_started", "instalment_paid", "early_payment_succeeded"]
    payment.refresh_from_db()
    assert payment.state == "in_progress"
    # Its date comes and nothing more is charged.
    assert run(planned + timedelta(minutes=5)).claimed == 0
    assert not Charge.objects.filter(instalment=second).exists()
    assert ledger_audit().ok


def test_paying_everything_left_pays_the_plan_off_with_one_charge_an_ipn_and_an_email(shop):
    shop.merchant.ipn_callback_url = "https://shop.example/ipn"
    shop.merchant.save(update_fields=["ipn_callback_url"])
    payment = plan_for(shop, CAMILLE, when=BOUGHT, locale="en")
    cents = total(payment, 2, 3, 4)

    charge = pay(payment, "all")

    rows = list(payment.instalments.order_by("number"))
    assert [row.state for row in rows] == ["paid"] * 4
    assert charge.covers == [row.pk for row in rows[1:]] and to_cents(charge.amount) == cents
    assert SandboxCharge.objects.filter(idempotency_key=charge.idempotency_key).count() == 1
    postings = Posting.objects.filter(kind="instalment_collected", reference=payment.public_id)
    assert postings.filter(processor_reference=charge.processor_reference).count() == 3
    payment.refresh_from_db()
    assert payment.state == "paid"
    assert Notification.objects.filter(payment=payment, event="paid").count() == 1
    [receipt] = Receipt.objects.filter(charge=charge)
    assert receipt.instalment_id is None and receipt.data["instalment_numbers"] == [2, 3, 4]
    assert receipt.data["remaining"] == []
    html = receipt_html(receipt.data)
    assert "Instalments paid early: 2 to 4 of 4" in html and "Your plan is fully paid." in html
    paid = OutgoingEmail.objects.get(key=receipt.email_key)
    assert paid.subject == f"Instalments 2 to 4 of 4 paid early: {shop.merchant.legal_name}"
    text, _html = email_content(paid)
    assert "You paid instalments 2 to 4 of 4 of your purchase" in text
    assert "Nothing is left to pay." in text
    paid_off = OutgoingEmail.objects.get(key=f"payment:{payment.public_id}:paid_off")
    assert "is paid off" in paid_off.subject
    assert ledger_audit().ok


def test_a_late_instalment_paid_from_the_portal_puts_the_plan_back_on_schedule(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT, card_number=LATER_DECLINED, locale="en")
    second = payment.instalments.get(number=2)
    run(second.next_debit_at + timedelta(minutes=5))  # declined: incident, late
    payment.refresh_from_db()
    second.refresh_from_db()
    assert payment.state == "late_dunning" and second.state == "incident"
    fee_after_decline = second.customer_fee
    later = second.next_debit_at - timedelta(hours=10)  # before its first retry

    # The card declines automatic debits only: the customer's own payment goes through.
    charge = pay(payment, [2], at=later)

    second.refresh_from_db()
    payment.refresh_from_db()
    assert second.state == "paid" and second.next_debit_at is None
    assert second.customer_fee == fee_after_decline  # nothing more added
    assert payment.state == "in_progress"
    assert payment.events.filter(kind="back_on_schedule").exists()
    receipt = Receipt.objects.get(charge=charge)
    assert receipt.data["early"] is False  # it was due already
    assert OutgoingEmail.objects.get(key=receipt.email_key).subject.startswith(
        "Instalment 2 of 4 paid:"
    )
    assert run(later + timedelta(days=2)).claimed == 0  # no retry of a paid instalment


# --- refusals, declines and doubt ----------------------------------------------------------


def test_a_declined_early_payment_pays_nothing_keeps_the_dates_and_starts_no_dunning(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT, locale="en")
    planned = {row.number: row.next_debit_at for row in payment.instalments.all()}
    emails_before = OutgoingEmail.objects.count()

    with time_machine.travel(NOW, tick=False):
        setup, target = card_setup_start(
            customer=payment.customer,
            payment_id=payment.pk,
            card=tokenise(DECLINED_CARD),
            purpose=CardSetup.Purpose.PAY_EARLY,
            numbers="all",
            now=NOW,
        )
        reference = target.rsplit("threeds=", 1)[1]
        with translation.override("en"), pytest.raises(EarlyPaymentDeclined) as declined:
            card_setup_complete(
                setup_id=setup.pk, customer=payment.customer, reference=reference, now=NOW
            )

    assert "Your bank declined the payment (refused by your bank)" in declined.value.message
    rows = {row.number: row for row in payment.instalments.all()}
    assert {n: row.state for n, row in rows.items()} == {
        1: "paid",
        2: "pending",
        3: "pending",
        4: "pending",
    }
    assert {n: rows[n].next_debit_at for n in (2, 3, 4)} == {n: planned[n] for n in (2, 3, 4)}
    assert rows[2].next_debit_at == debit_time(rows[2].due_date, hour=8)
    charge = Charge.objects.get(kind="early_payment")
    assert charge.status == "failed" and charge.failure_code == "do_not_honor"
    payment.refresh_from_db()
    assert payment.state == "in_progress" and payment.card_id != charge.card_id
    assert payment.events.filter(kind="early_payment_failed").count() == 1
    assert not payment.events.filter(kind="instalment_debit_failed").exists()
    assert OutgoingEmail.objects.count() == emails_before  # no debit-failed email
    assert not Receipt.objects.filter(payment=payment, charge=charge).exists()
    setup.refresh_from_db()
    assert setup.status == "done"
    # The plan's own debit still happens on its date.
    assert run(planned[2] + timedelta(minutes=5)).succeeded == 1


def test_a_declined_payment_of_a_late_instalment_keeps_its_next_retry(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT, card_number=LATER_DECLINED)
    second = payment.instalments.get(number=2)
    run(second.next_debit_at + timedelta(minutes=5))
    second.refresh_from_db()
    retry = second.next_debit_at
    at = retry - timedelta(hours=30)  # the day after the decline, before the retry day

    with time_machine.travel(at, tick=False):
        setup, target = card_setup_start(
            customer=payment.customer,
            payment_id=payment.pk,
            card=tokenise(DECLINED_CARD),
            purpose=CardSetup.Purpose.PAY_EARLY,
            numbers=[2],
            now=at,
        )
        with pytest.raises(EarlyPaymentDeclined):
            card_setup_complete(
                setup_id=setup.pk,
                customer=payment.customer,
                reference=target.rsplit("threeds=", 1)[1],
                now=at,
            )

    second.refresh_from_db()
    assert second.state == "incident" and second.next_debit_at == retry
    assert second.debit_attempts == 1


def test_a_timeout_leaves_the_payment_in_doubt_and_the_sweep_records_it_once(shop, monkeypatch):
    payment = plan_for(shop, CAMILLE, when=BOUGHT, card_number=TIMEOUT)
    second = payment.instalments.get(number=2)

    def lost(self, *, idempotency_key):
        raise ProcessorUnavailable()

    with monkeypatch.context() as patch:
        patch.setattr(SandboxProcessor, "charge_status", lost)
        with pytest.raises(EarlyPaymentInDoubt):
            pay(payment, [2])

    charge = Charge.objects.get(kind="early_payment")
    second.refresh_from_db()
    assert charge.status == "unknown"
    assert second.state == "pending" and second.next_debit_at is None
    with pytest.raises(DebitInProgress):  # nothing more while it is in doubt
        pay(payment, [2, 3], at=NOW + timedelta(minutes=1))
    summary = run(NOW + timedelta(minutes=3))
    again = run(NOW + timedelta(minutes=10))

    assert summary.settled == 1 and again.settled == 0 and summary.claimed == 0
    charge.refresh_from_db()
    second.refresh_from_db()
    assert charge.status == "succeeded" and second.state == "paid"
    assert Receipt.objects.filter(charge=charge).count() == 1
    assert SandboxCharge.objects.filter(idempotency_key=charge.idempotency_key).count() == 1
    assert Posting.objects.filter(idempotency_key=f"{second.public_id}:collected").count() == 1


def test_an_early_payment_never_received_gives_the_instalments_their_dates_back(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    planned = payment.instalments.get(number=3).next_debit_at

    # The process dies after recording the charge and before calling the processor.
    with time_machine.travel(NOW, tick=False):
        charge = early_payment_open(
            customer=payment.customer,
            payment_id=payment.pk,
            numbers=[3],
            card_id=payment.card_id,
            three_ds_reference="",
            now=NOW,
        )
    assert charge.status == "pending"
    run(NOW + timedelta(minutes=5))

    charge.refresh_from_db()
    third = payment.instalments.get(number=3)
    assert charge.status == "failed" and charge.failure_code == "not_received"
    assert third.state == "pending" and third.next_debit_at == planned
    assert payment.events.filter(kind="early_payment_failed").count() == 1


def test_an_instalment_already_paid_or_of_another_customer_is_refused(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    other = plan_for(shop, DOMINIQUE, when=BOUGHT)

    with pytest.raises(InstalmentNotPayable):
        pay(payment, [1])
    with time_machine.travel(NOW, tick=False), pytest.raises(PlanNotFound):
        early_payment_make(
            customer=other.customer,
            payment_id=payment.pk,
            numbers=[2],
            card_id=other.card_id,
            three_ds_reference="",
            now=NOW,
        )
    assert not Charge.objects.filter(kind="early_payment").exists()


def test_a_debit_in_flight_refuses_an_early_payment_of_its_instalment(shop, monkeypatch):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    second = payment.instalments.get(number=2)
    at = second.next_debit_at + timedelta(minutes=1)

    def crash(outcomes, *, now):
        raise SystemExit("worker killed")

    with monkeypatch.context() as patch:
        patch.setattr(debits, "debit_results_record", crash)
        with pytest.raises(SystemExit):
            run(at)

    with translation.override("en"), pytest.raises(DebitInProgress) as refused:
        pay(payment, "all", at=at + timedelta(seconds=30))
    assert refused.value.message == "A debit is being processed, try again in a few minutes."
    assert not Charge.objects.filter(kind="early_payment").exists()
    # Instalment 3 alone is not concerned by that debit.
    assert pay(payment, [3], at=at + timedelta(seconds=40)).status == "succeeded"


# --- the page ---------------------------------------------------------------------------------


def page_token(response) -> tuple[str, str]:
    html = response.content.decode()
    token = re.search(r'name="token" value="([0-9a-f]{32})"', html).group(1)
    amount = re.search(r'name="amount" value="(\d+)"', html).group(1)
    return token, amount


def test_the_page_shows_what_is_paid_and_a_double_click_charges_once(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    sign_in(client, payment.customer, when=NOW)
    url = f"/portal/plans/{payment.public_id}/pay?number=2"

    with time_machine.travel(NOW, tick=False):
        shown = client.get(url)
        token, amount = page_token(shown)
        first = client.post(url, {"token": token, "amount": amount, "card": "saved"})
        after_first = said(client, first)
        second = client.post(url, {"token": token, "amount": amount, "card": "saved"})
        after_second = said(client, second)
        fresh = client.post(url, {"token": "0" * 32, "amount": amount, "card": "saved"})

    text = shown.content.decode()
    assert shown.status_code == 200
    assert "Instalment 2 of 4" in text and "€100.00" in text and "•••• 0006" in text
    assert first.status_code == 303 and first["Location"] == f"/portal/plans/{payment.public_id}"
    assert after_first == ["Payment of €100.00 received; your receipt is on its way."]
    assert second.status_code == 303 and second["Location"] == first["Location"]
    assert after_second == ["This payment was already confirmed: it is made once."]
    assert fresh.status_code == 409  # nothing left to pay on instalment 2
    assert "already paid" in fresh.content.decode()
    assert Charge.objects.filter(kind="early_payment").count() == 1
    assert payment.instalments.get(number=2).state == "paid"


def said(client, response) -> list[str]:
    """The messages a redirect leaves for the next page (read without rendering one)."""
    from django.contrib.messages.storage.cookie import CookieStorage

    cookie = client.cookies.get("messages")
    if cookie is None:
        return []
    storage = CookieStorage(None)
    messages = storage._decode(cookie.value) or []
    client.cookies.pop("messages")
    return [str(message) for message in messages]


def test_paying_with_another_card_declined_shows_the_refusal_on_the_page(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    sign_in(client, payment.customer, when=NOW)
    url = f"/portal/plans/{payment.public_id}/pay?all=1"
    card = {"card": "new", "card_number": DECLINED_CARD, "card_expiry": "12/35", "card_cvc": "123"}

    with time_machine.travel(NOW, tick=False):
        token, amount = page_token(client.get(url))
        response = client.post(url, {"token": token, "amount": amount, **card})

    text = response.content.decode()
    assert response.status_code == 402
    assert "Your bank declined the payment (refused by your bank). Nothing was charged." in text
    assert DECLINED_CARD not in text and "0002" not in text.split("Pay with")[1].split("</form>")[0]
    assert payment.instalments.filter(state="paid").count() == 1


def test_paying_with_another_card_keeps_the_plans_card(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT, locale="en")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    sign_in(client, payment.customer, when=NOW)
    url = f"/portal/plans/{payment.public_id}/pay?number=4"
    card = {"card": "new", "card_number": OTHER_CARD, "card_expiry": "12/35", "card_cvc": "123"}

    with time_machine.travel(NOW, tick=False):
        token, amount = page_token(client.get(url))
        response = client.post(url, {"token": token, "amount": amount, **card})

    assert response.status_code == 303
    charge = Charge.objects.get(kind="early_payment")
    assert charge.status == "succeeded" and charge.card.last4 == "0000"
    payment.refresh_from_db()
    assert payment.card_id != charge.card_id
    receipt = Receipt.objects.get(charge=charge)
    assert receipt.data["card"]["last4"] == "0000"


def test_another_customers_plan_is_not_found(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    stranger = plan_for(shop, DOMINIQUE, when=BOUGHT)
    client = Client()
    sign_in(client, stranger.customer, when=NOW)
    url = f"/portal/plans/{payment.public_id}/pay?number=2"

    with time_machine.travel(NOW, tick=False):
        shown = client.get(url)
        posted = client.post(url, {"token": "1" * 32, "amount": "10000", "card": "saved"})

    assert shown.status_code == 404 and posted.status_code == 404
    assert not Charge.objects.filter(kind="early_payment").exists()


# --- receipts and refunds ---------------------------------------------------------------------


def test_the_receipt_is_rendered_then_emailed_with_its_pdf(
    shop, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(Conf, "SYNC", True)  # tasks queued after commit run at once
    payment = plan_for(shop, CAMILLE, when=BOUGHT, locale="en")
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        charge = pay(payment, [2, 3])

    receipt = Receipt.objects.get(charge=charge)
    assert receipt.rendered_at is not None and receipt.file_name
    [message] = [m for m in mail.outbox if "paid early" in m.subject]
    assert message.subject == f"Instalments 2 to 3 of 4 paid early: {shop.merchant.legal_name}"
    [(filename, pdf, mimetype)] = message.attachments
    assert filename == f"{receipt.number}.pdf" and mimetype == "application/pdf"
    assert pdf.startswith(b"%PDF")
    assert render_receipts([receipt.number]) == 1  # a rerun overwrites, sends nothing more
    assert len([m for m in mail.outbox if "paid early" in m.subject]) == 1


def test_a_refund_after_an_early_payment_goes_back_to_its_charge(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    charge = pay(payment, "all")

    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        refund = refund_issue(
            payment=Payment.objects.get(pk=payment.pk),
            request=RefundRequest(amount=15_000),
            origin=Refund.Origin.API,
            now=NOW + timedelta(days=1),
        )

    assert refund.state == "succeeded"
    [part] = CardRefund.objects.filter(refund=refund)
    assert part.charge_id == charge.pk and to_cents(part.amount) == 15_000
    assert SandboxCharge.objects.filter(charge_reference=charge.processor_reference).count() == 1
    assert ledger_audit().ok


def test_an_early_payment_in_doubt_holds_its_instalments_against_refunds(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    with time_machine.travel(NOW, tick=False):
        early_payment_open(
            customer=payment.customer,
            payment_id=payment.pk,
            numbers=[3, 4],
            card_id=payment.card_id,
            three_ds_reference="",
            now=NOW,
        )

    with time_machine.travel(NOW, tick=False), pytest.raises(RefundWaitForDebit):
        refund_issue(
            payment=Payment.objects.get(pk=payment.pk),
            request=RefundRequest(amount=5_000),
            origin=Refund.Origin.API,
            now=NOW,
        )

    assert not Refund.objects.exists()
    assert to_cents(Instalment.objects.get(payment=payment, number=4).purchase_amount) == 10_000
