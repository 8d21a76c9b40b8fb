"""Recording debit outcomes: everything a batch of charges causes, in one transaction.

``debit_results_record`` is called by the debit run after its calls and by the in-doubt
sweep; both may hold the same charge, so only charges still in doubt (pending, unknown) are
recorded, under the payments' locks (taken in id order, like every writer of a payment), and
recording again changes nothing. The work is done in a few statements per batch, whatever
its size: the instalments and charges updated together, one ledger statement, one insert of
events, receipts, emails and notifications each.

A charge pays the instalments it names (``Charge.instalment_ids``): one for a debit, one or
more for an early payment the customer made in the portal (``services/early.py``). A
succeeded early payment is recorded like a debit (each instalment paid and posted, one
receipt for the charge); a failed one changes nothing but the instalments' next debit, which
it had held back: no dunning, no late fee, no email (the customer saw the refusal).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from apps.common.bulk import rows_update
from apps.common.dates import business_date, debit_time
from apps.common.emails import emails_queue_many
from apps.common.money import to_cents, to_money
from apps.ledger import recipes
from apps.ledger.services import postings_create
from apps.payments.models import Card, Charge, Instalment, Payment, PaymentEvent, PaymentState
from apps.payments.notifications import notifications_schedule_many
from apps.payments.processor import ChargeResult
from apps.payments.services.charges import IN_DOUBT, ORPHANED
from apps.payments.services.transitions import payments_transition_many
from apps.schedules import emails
from apps.schedules.models import RECEIPT_NUMBER_SEQUENCE, Receipt
from apps.schedules.policy import next_retry_day, policy_from_settings

S = PaymentState
NOT_RECEIVED = "not_received"  # the processor never saw the key: the call never left
LATE_STATES = (S.LATE_DUNNING, S.LATE_CONTACT_CUSTOMER)
OPEN_STATES = (S.IN_PROGRESS, *LATE_STATES)
UNPAID = (Instalment.State.PENDING, Instalment.State.INCIDENT)


@dataclass(frozen=True)
class DebitOutcome:
    charge_id: int
    result: ChargeResult | None  # None: still unknown


@dataclass
class RecordSummary:
    succeeded: int = 0
    failed: int = 0
    in_doubt: int = 0
    recorded: int = 0  # outcomes written now (not unknown, not recorded before)
    receipts: list[str] = field(default_factory=list)  # numbers to render after commit


def debit_results_record(outcomes: list[DebitOutcome], *, now: datetime) -> RecordSummary:
    summary = RecordSummary()
    if not outcomes:
        return summary
    by_charge = {outcome.charge_id: outcome.result for outcome in outcomes}
    with transaction.atomic():
        payment_ids = sorted(
            set(Charge.objects.filter(pk__in=by_charge).values_list("payment_id", flat=True))
        )
        payments = {
            payment.pk: payment
            for payment in Payment.objects.filter(pk__in=payment_ids)
            .select_related("merchant", "customer", "card")
            .order_by("pk")
            .select_for_update(of=("self",), no_key=True)
        }
        charges = list(
            Charge.objects.filter(pk__in=by_charge, status__in=IN_DOUBT)
            .select_for_update()
            .order_by("pk")
        )
        instalments = {
            row.pk: row
            for row in Instalment.objects.filter(payment_id__in=payment_ids).order_by(
                "payment_id", "number"
            )
        }
        batch = _Batch(now=now, payments=payments, instalments=instalments)
        for charge in charges:
            result = by_charge[charge.pk]
            if result is None:
                batch.unknown.append(charge)
            elif result.succeeded:
                batch.success(charge, result)
            elif result.decline_code == NOT_RECEIVED:
                batch.not_received(charge)
            else:
                batch.failure(charge, result)
        batch.write()
        summary.succeeded = len(batch.paid)
        summary.failed = len(batch.failed)
        summary.in_doubt = len(batch.unknown)
        summary.recorded = len(charges) - len(batch.unknown)
        summary.receipts = [receipt.number for receipt in batch.receipts]
        if summary.receipts:
            numbers = list(summary.receipts)
            transaction.on_commit(lambda: _enqueue_receipts(numbers), robust=True)
    return summary


def _enqueue_receipts(numbers: list[str]) -> None:
    from django_q.tasks import async_task

    async_task("apps.schedules.tasks.render_receipts", numbers)


def receipt_numbers_next(count: int, *, livemode: bool, year: int, prefix: str = "R") -> list[str]:
    """``count`` new receipt numbers: ``R2026-0000042`` (``TEST-`` before it in test mode);
    credit notes take ``prefix="C"`` (``C2026-0000043``), from the same sequence."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(%s) FROM generate_series(1, %s)", [RECEIPT_NUMBER_SEQUENCE, count]
        )
        values = [row[0] for row in cursor.fetchall()]
    mode = "" if livemode else "TEST-"
    return [f"{mode}{prefix}{year}-{value:07d}" for value in values]


class _Batch:
    """What one batch's outcomes change, gathered, then written in a few statements."""

    def __init__(self, *, now, payments: dict[int, Payment], instalments: dict[int, Instalment]):
        self.now = now
        self.today = business_date(now)
        self.policy = policy_from_settings()
        self.payments = payments
        self.instalments = instalments
        self.unknown: list[Charge] = []
        # Each succeeded charge with the instalments it paid (in number order).
        self.paid: list[tuple[Charge, list[Instalment]]] = []
        self.failed: list[tuple[Charge, Instalment]] = []
        self.charges_done: list[Charge] = []
        self.instalments_changed: list[Instalment] = []
        self.events: list[PaymentEvent] = []
        self.receipts: list[Receipt] = []
        self.late_fees: dict[int, int] = defaultdict(int)  # payment id -> cents added

    # --- classifying ---------------------------------------------------------------------

    def success(self, charge: Charge, result: ChargeResult) -> None:
        charge.status = Charge.Status.SUCCEEDED
        charge.processor_reference = result.reference
        charge.finished_at = self.now
        self.charges_done.append(charge)
        rows = [self.instalments[pk] for pk in charge.instalment_ids]
        payment = self.payments[charge.payment_id]
        if any(row.state not in UNPAID for row in rows) or payment.state not in OPEN_STATES:
            # Paid meanwhile (early, by the customer) or the payment stopped: the money goes
            # back (charges_settle_in_doubt refunds orphans).
            charge.failure_code = ORPHANED
            self.events.append(self._event(payment, "charge_orphaned", charge))
            if charge.kind == Charge.Kind.EARLY_PAYMENT:
                self._restore(payment, rows)
            return
        early = charge.kind == Charge.Kind.EARLY_PAYMENT
        for row in rows:
            row.state = Instalment.State.PAID
            row.paid_at = self.now
            row.next_debit_at = None
            self.instalments_changed.append(row)
            detail = {"number": row.number}
            if early:
                detail |= {"amount": to_cents(row.total_amount), "early": True}
            self.events.append(self._event(payment, "instalment_paid", charge, **detail))
        if early:
            self.events.append(
                self._event(
                    payment,
                    "early_payment_succeeded",
                    charge,
                    numbers=[row.number for row in rows],
                )
            )
        self.paid.append((charge, rows))

    def failure(self, charge: Charge, result: ChargeResult) -> None:
        charge.status = Charge.Status.FAILED
        charge.processor_reference = result.reference
        charge.failure_code = result.decline_code[:40]
        charge.finished_at = self.now
        self.charges_done.append(charge)
        if charge.kind == Charge.Kind.EARLY_PAYMENT:
            self._early_failure(charge, code=result.decline_code)
            return
        instalment = self.instalments[charge.instalment_id]
        payment = self.payments[charge.payment_id]
        if instalment.state not in UNPAID or payment.state not in OPEN_STATES:
            return
        if instalment.state == Instalment.State.PENDING:
            instalment.state = Instalment.State.INCIDENT
            fee = settings.LATE_PAYMENT_FEE_CENTS
            if fee:
                instalment.customer_fee = instalment.customer_fee + to_money(fee)
                self.late_fees[payment.pk] += fee
        retry = next_retry_day(self.policy, due_date=instalment.due_date, today=self.today)
        instalment.next_debit_at = (
            debit_time(retry, hour=settings.DEBIT_HOUR) if retry is not None else None
        )
        self.instalments_changed.append(instalment)
        self.failed.append((charge, instalment))
        self.events.append(
            self._event(
                payment,
                "instalment_debit_failed",
                charge,
                number=instalment.number,
                code=result.decline_code,
                retry=retry.isoformat() if retry else None,
            )
        )

    def not_received(self, charge: Charge) -> None:
        """The call never reached the processor: nothing happened; due again at once (an
        early payment's instalments: on their own dates again)."""
        charge.status = Charge.Status.FAILED
        charge.failure_code = NOT_RECEIVED
        charge.finished_at = self.now
        self.charges_done.append(charge)
        if charge.kind == Charge.Kind.EARLY_PAYMENT:
            self._early_failure(charge, code=NOT_RECEIVED)
            return
        instalment = self.instalments[charge.instalment_id]
        if instalment.state in UNPAID and instalment.next_debit_at is None:
            instalment.next_debit_at = self.now
            self.instalments_changed.append(instalment)

    def _early_failure(self, charge: Charge, *, code: str) -> None:
        """An early payment that did not go through: nothing is late because of it (no
        incident, no late fee, no email); its instalments are debited as planned again."""
        payment = self.payments[charge.payment_id]
        rows = [self.instalments[pk] for pk in charge.instalment_ids]
        self._restore(payment, rows)
        self.events.append(
            self._event(
                payment,
                "early_payment_failed",
                charge,
                code=code,
                numbers=[row.number for row in rows],
            )
        )

    def _restore(self, payment: Payment, rows: list[Instalment]) -> None:
        """Give back the next debit an early payment held back (``next_debit_at`` NULL while
        its charge was in flight): a pending instalment on its due date's debit time (now
        if that is past), one in incident on its next retry day (none in the contact stage)."""
        if payment.state not in OPEN_STATES:
            return
        for row in rows:
            if row.state not in UNPAID or row.next_debit_at is not None:
                continue
            if row.state == Instalment.State.PENDING:
                row.next_debit_at = max(
                    debit_time(row.due_date, hour=settings.DEBIT_HOUR), self.now
                )
            else:
                retry = next_retry_day(self.policy, due_date=row.due_date, today=self.today)
                if retry is None:
                    continue
                row.next_debit_at = debit_time(retry, hour=settings.DEBIT_HOUR)
            self.instalments_changed.append(row)

    def _event(self, payment: Payment, kind: str, charge: Charge, **detail) -> PaymentEvent:
        return PaymentEvent(
            payment_id=payment.pk,
            kind=kind,
            detail={"charge": charge.idempotency_key, "amount": to_cents(charge.amount), **detail},
            created_at=self.now,
        )

    # --- writing -------------------------------------------------------------------------

    def write(self) -> None:
        if self.unknown:
            Charge.objects.filter(pk__in=[c.pk for c in self.unknown]).update(
                status=Charge.Status.UNKNOWN
            )
        if self.charges_done:
            rows_update(
                self.charges_done, ["status", "processor_reference", "failure_code", "finished_at"]
            )
        if self.instalments_changed:
            rows_update(
                self.instalments_changed, ["state", "paid_at", "next_debit_at", "customer_fee"]
            )
        for payment_id, cents in self.late_fees.items():
            Payment.objects.filter(pk=payment_id).update(
                customer_fee=F("customer_fee") + to_money(cents).amount
            )
        postings_create([self._posting(charge, row) for charge, rows in self.paid for row in rows])
        changes = self._transitions()
        self.events.extend(payments_transition_many(changes, now=self.now))
        paid_off = [payment for payment, to_state, _k, _d in changes if to_state == S.PAID]
        if paid_off:
            self.events.extend(notifications_schedule_many(paid_off, event="paid", now=self.now))
        context = emails.BatchContext.load(self.payments.values(), self.instalments.values())
        self._receipts(context)
        emails_queue_many(
            [
                emails.debit_failed(context, charge=charge, instalment=instalment)
                for charge, instalment in self.failed
            ]
            + [emails.paid_off(context, payment=payment) for payment in paid_off],
            now=self.now,
        )
        PaymentEvent.objects.bulk_create(self.events)

    def _posting(self, charge: Charge, instalment: Instalment):
        payment = self.payments[charge.payment_id]
        return recipes.instalment_collected(
            merchant_id=payment.merchant_id,
            livemode=payment.livemode,
            payment_id=payment.public_id,
            instalment_id=instalment.public_id,
            principal_cents=to_cents(instalment.purchase_amount),
            interest_cents=to_cents(instalment.customer_interest),
            customer_fee_cents=to_cents(instalment.customer_fee),
            processor_reference=charge.processor_reference,
            effective_at=self.now,
        )

    def _transitions(self) -> list[tuple[Payment, str, str, dict]]:
        """Each touched payment's new state: paid when nothing is left to pay; late while an
        instalment is in incident; back in progress once none is."""
        touched = {charge.payment_id for charge, _i in self.paid}
        touched |= {charge.payment_id for charge, _i in self.failed}
        by_payment: dict[int, list[Instalment]] = defaultdict(list)
        for instalment in self.instalments.values():
            if instalment.payment_id in touched:
                by_payment[instalment.payment_id].append(instalment)
        changes = []
        for payment_id in sorted(touched):
            payment = self.payments[payment_id]
            rows = by_payment[payment_id]
            if all(row.state == Instalment.State.PAID for row in rows):
                to_state, kind = S.PAID, "paid_off"
            elif any(row.state == Instalment.State.INCIDENT for row in rows):
                to_state, kind = S.LATE_DUNNING, "late"
            else:
                to_state, kind = S.IN_PROGRESS, "back_on_schedule"
            if payment.state == to_state or (
                to_state == S.LATE_DUNNING and payment.state in LATE_STATES
            ):
                continue
            changes.append((payment, to_state, kind, {}))
        return changes

    def _receipts(self, context: emails.BatchContext) -> None:
        """One receipt per succeeded charge (naming the instalment when it paid one, and
        listing them all in its data), each with the email that carries it."""
        if not self.paid:
            return
        # A debit uses the plan's card (loaded with the payment); an early payment may have
        # used another one.
        cards = Card.objects.in_bulk(
            {
                charge.card_id
                for charge, _rows in self.paid
                if charge.card_id != self.payments[charge.payment_id].card_id
            }
        )
        by_mode: dict[bool, list[tuple[Charge, list[Instalment]]]] = defaultdict(list)
        for charge, rows in self.paid:
            by_mode[self.payments[charge.payment_id].livemode].append((charge, rows))
        specs = []
        for livemode, paid in by_mode.items():
            numbers = receipt_numbers_next(len(paid), livemode=livemode, year=self.today.year)
            for number, (charge, rows) in zip(numbers, paid, strict=True):
                payment = self.payments[charge.payment_id]
                card = cards.get(charge.card_id, payment.card)
                receipt = Receipt(
                    number=number,
                    livemode=livemode,
                    payment_id=charge.payment_id,
                    instalment_id=rows[0].pk if len(rows) == 1 else None,
                    charge_id=charge.pk,
                    data=emails.receipt_data(
                        context,
                        charge=charge,
                        instalments=rows,
                        number=number,
                        card=card,
                        today=self.today,
                    ),
                    created_at=self.now,
                )
                spec = emails.debit_succeeded(
                    context, charge=charge, instalments=rows, receipt=receipt, card=card
                )
                receipt.email_key = spec.key
                self.receipts.append(receipt)
                specs.append(spec)
        Receipt.objects.bulk_create(self.receipts)
        # Sent once the receipt is rendered (the render task sends them).
        emails_queue_many(specs, now=self.now, send=False)
