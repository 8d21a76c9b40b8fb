"""The customer's steps on the hosted checkout, each one guarded by the payment's lock.

details and card -> phone code -> 3-D Secure -> decision -> first charge -> done.

Every step checks, under the payment's row lock, that the payment is still payable and that
the checkout is at that step, so a replayed form, a step taken out of order or a second tab
gets a clear refusal (``StepOutOfOrder``) instead of a second effect. Calls to the processor
(tokenise, 3-D Secure, charge) are made between transactions, never inside one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from apps.common.dates import business_date
from apps.common.errors import DomainError
from apps.common.money import to_cents
from apps.payments import card_rules
from apps.payments.decision import DecisionInput, decide
from apps.payments.links import absolute
from apps.payments.models import Card, Charge, Checkout, CreditDecision, Customer, Payment
from apps.payments.models import PaymentState as S
from apps.payments.processor import CardDetails, ProcessorUnavailable, card_processor
from apps.payments.services.acceptance import payment_accept
from apps.payments.services.charges import (
    charge_execute,
    charge_open,
    charge_record,
    payment_payable_check,
)
from apps.payments.services.transitions import (
    payment_event_record,
    payment_lock,
    payment_transition,
)
from apps.verification import services as verification

Step = Checkout.Step


class StepOutOfOrder(DomainError):
    code = "checkout_step_out_of_order"
    http_status = 409
    default_message = _("This step is already done or not yet available.")


class CardRefused(DomainError):
    """The card (or the customer's age) fails a rule; ``refusals`` say which, for the page."""

    code = "card_refused"
    http_status = 402

    def __init__(self, refusals: list[card_rules.Refusal]):
        super().__init__(" ".join(str(refusal.message) for refusal in refusals))
        self.refusals = refusals


class ChargeDeclined(DomainError):
    code = "charge_declined"
    http_status = 402
    default_message = _(
        "Your bank declined the payment. Please check your card details or use another card."
    )


class ChargeInDoubt(DomainError):
    code = "charge_in_doubt"
    http_status = 202
    default_message = _(
        "Your bank has not answered yet. We are checking with it: you will not be charged twice."
    )


class ThreeDSFailed(DomainError):
    code = "three_ds_failed"
    http_status = 402
    default_message = _(
        "Your bank could not confirm that the card is yours (3-D Secure). Please try again or "
        "use another card."
    )


@dataclass(frozen=True)
class CustomerDetails:
    first_name: str
    last_name: str
    email: str
    phone: str  # E.164
    birth_date: date
    address: dict


def checkout_open(*, payment: Payment, now: datetime) -> Checkout:
    """The payment's checkout, created on the customer's first visit, prefilled from what the
    merchant sent."""
    checkout = Checkout.objects.filter(payment=payment).first()
    if checkout is not None:
        return checkout
    sent = payment.customer_data or {}
    address = payment.billing_address or payment.shipping_address or {}
    with transaction.atomic():
        locked = payment_lock(payment_id=payment.pk)
        checkout, _created = Checkout.objects.get_or_create(
            payment=locked,
            defaults={
                "first_name": (sent.get("first_name") or "")[:100],
                "last_name": (sent.get("last_name") or "")[:100],
                "email": (sent.get("email") or "")[:254],
                "phone": (sent.get("phone") or "")[:20],
                "birth_date": _date_or_none(sent.get("birth_date")),
                "address": {
                    key: address.get(key) or ""
                    for key in ("line1", "line2", "postal_code", "city", "country")
                },
                "created_at": now,
                "updated_at": now,
            },
        )
    return checkout


def _date_or_none(value) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def _locked(payment_id: int, *, steps: tuple[str, ...], now: datetime):
    payment = payment_lock(payment_id=payment_id)
    payment_payable_check(payment, now=now)
    checkout = Checkout.objects.select_for_update().get(payment=payment)
    if checkout.step not in steps:
        raise StepOutOfOrder()
    return payment, checkout


def checkout_details_submit(
    *,
    payment_id: int,
    details: CustomerDetails,
    card: CardDetails,
    language: str,
    now: datetime,
) -> Checkout:
    """The customer's details, their acceptance of the terms and their card (already tokenised
    by the processor): check the card rules and the customer's age, keep the card, and send the
    code to the phone."""
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.DETAILS, Step.CARD), now=now)
        last_due = payment.instalments.order_by("-number").values_list("due_date", flat=True)[0]
        refusals = card_rules.card_refusals(
            card_rules.CardFacts(
                brand=card.brand,
                funding=card.funding,
                product=card.product,
                issuer_country=card.issuer_country,
                exp_month=card.exp_month,
                exp_year=card.exp_year,
            ),
            last_due_date=last_due,
            allowed_countries=frozenset(settings.CARD_ISSUER_COUNTRIES),
        )
        age = card_rules.age_refusal(
            details.birth_date,
            today=business_date(now),
            minimum_age=settings.CUSTOMER_MINIMUM_AGE,
        )
        if age is not None:
            refusals.insert(0, age)
        if refusals:  # recorded, then refused once this transaction has committed
            payment_event_record(
                payment,
                kind="card_refused",
                now=now,
                detail={"codes": [refusal.code for refusal in refusals], "bin": card.bin},
            )
        else:
            checkout = _card_keep(payment, checkout, details, card, language=language, now=now)
    if refusals:
        raise CardRefused(refusals)
    return checkout


def _card_keep(
    payment: Payment,
    checkout: Checkout,
    details: CustomerDetails,
    card: CardDetails,
    *,
    language: str,
    now: datetime,
) -> Checkout:
    customer = Customer.objects.select_for_update().get(pk=payment.customer_id)
    saved = Card.objects.create(
        customer=customer,
        livemode=payment.livemode,
        processor_token=card.token,
        bin=card.bin,
        last4=card.last4,
        brand=card.brand,
        funding=card.funding,
        product=card.product,
        issuer_country=card.issuer_country,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        created_at=now,
    )
    checkout.first_name = details.first_name
    checkout.last_name = details.last_name
    checkout.email = details.email
    checkout.birth_date = details.birth_date
    checkout.address = details.address
    checkout.terms_accepted_at = now
    checkout.card = saved
    checkout.three_ds_reference = ""
    checkout.three_ds_completed_at = None
    if checkout.phone_verified_at is None or checkout.phone != details.phone:
        checkout.phone = details.phone
        checkout.phone_verified_at = None
        checkout.phone_check_id = _phone_check_start(payment, details.phone, language, now)
        checkout.step = Step.PHONE
    else:
        checkout.step = Step.THREE_DS  # a new card after a decline: the phone is known
    checkout.updated_at = now
    checkout.save()
    payment_event_record(
        payment,
        kind="card_added",
        now=now,
        detail={"card": saved.public_id, "brand": card.brand, "last4": card.last4},
    )
    return checkout


def _phone_check_start(payment: Payment, phone: str, language: str, now: datetime) -> str:
    check = verification.phone_check_start(
        phone=phone,
        livemode=payment.livemode,
        purpose="checkout",
        subject=payment.public_id,
        language=language,
        now=now,
    )
    return check.public_id


def checkout_phone_change(*, payment_id: int, phone: str, language: str, now: datetime) -> Checkout:
    """The customer corrects their number: a new code goes to the new one."""
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.PHONE,), now=now)
        checkout.phone = phone
        checkout.phone_check_id = _phone_check_start(payment, phone, language, now)
        checkout.updated_at = now
        checkout.save(update_fields=["phone", "phone_check_id", "updated_at"])
    return checkout


def checkout_phone_resend(*, payment_id: int, now: datetime) -> Checkout:
    with transaction.atomic():
        _payment, checkout = _locked(payment_id, steps=(Step.PHONE,), now=now)
        verification.phone_check_resend(check_id=checkout.phone_check_id, now=now)
    return checkout


def checkout_phone_verify(*, payment_id: int, code: str, now: datetime) -> Checkout:
    """The code the customer typed; wrong codes count against the check's limit. The count
    must survive this request's refusal, so the code is checked in its own transaction."""
    with transaction.atomic():
        _payment, checkout = _locked(payment_id, steps=(Step.PHONE,), now=now)
        check_id = checkout.phone_check_id
    verification.phone_check_verify(check_id=check_id, code=code, now=now)
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.PHONE,), now=now)
        if checkout.phone_check_id != check_id:  # the number changed meanwhile
            raise StepOutOfOrder()
        checkout.phone_verified_at = now
        checkout.step = Step.THREE_DS
        checkout.updated_at = now
        checkout.save(update_fields=["phone_verified_at", "step", "updated_at"])
        Customer.objects.filter(pk=payment.customer_id).update(
            phone=checkout.phone, phone_verified_at=now, updated_at=now
        )
        payment_event_record(payment, kind="phone_verified", now=now)
    return checkout


def _checkout_charge_cents(payment: Payment, *, in_full: bool) -> int:
    """What the customer pays now: the first instalment, the whole purchase when refused
    credit, nothing for a pay-later plan (its card is checked by 3-D Secure alone)."""
    if in_full:
        return to_cents(payment.purchase_amount)
    if payment.is_pay_later:
        return 0
    first = payment.instalments.get(number=1)
    return to_cents(first.purchase_amount + first.customer_fee + first.customer_interest)


def checkout_three_ds_start(*, payment_id: int, return_path: str, now: datetime) -> str:
    """Start 3-D Secure on the card; returns where to send the browser: the bank's challenge
    page, or straight to the return path when the authentication was frictionless."""
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.THREE_DS,), now=now)
        token = checkout.card.processor_token
        # A pay-later card is authenticated for what it will be charged.
        amount = _checkout_charge_cents(payment, in_full=checkout.pay_in_full) or to_cents(
            payment.purchase_amount + payment.customer_fee + payment.customer_interest
        )
    started = card_processor().three_ds_start(
        token=token,
        amount_cents=amount,
        return_url=absolute(return_path),
        livemode=payment.livemode,
    )
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.THREE_DS,), now=now)
        checkout.three_ds_reference = started.reference
        checkout.updated_at = now
        checkout.save(update_fields=["three_ds_reference", "updated_at"])
    if started.status == "challenge":
        return started.challenge_url
    return f"{return_path}?threeds={started.reference}"


def checkout_three_ds_complete(*, payment_id: int, reference: str, now: datetime) -> Checkout:
    """The browser is back from 3-D Secure: record the result (asked of the processor, never
    read from the URL)."""
    with transaction.atomic():
        _payment, checkout = _locked(payment_id, steps=(Step.THREE_DS,), now=now)
        if not reference or reference != checkout.three_ds_reference:
            raise StepOutOfOrder()
    status = card_processor().three_ds_result(reference=reference)
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.THREE_DS,), now=now)
        if status != "authenticated":
            checkout.step = Step.CARD
            checkout.updated_at = now
            checkout.save(update_fields=["step", "updated_at"])
            payment_event_record(
                payment, kind="three_ds_failed", now=now, detail={"status": status}
            )
            failed = True
        else:
            failed = False
            checkout.three_ds_completed_at = now
            checkout.step = Step.DECISION
            checkout.updated_at = now
            checkout.save(update_fields=["three_ds_completed_at", "step", "updated_at"])
            Card.objects.filter(pk=checkout.card_id).update(three_ds_authenticated_at=now)
    if failed:
        raise ThreeDSFailed()
    return checkout


def checkout_decide(*, payment_id: int, now: datetime) -> CreditDecision:
    """The credit decision on the checked customer and card; a yes is paid at once by the
    caller (``checkout_pay``); a no offers to pay the whole amount."""
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.DECISION,), now=now)
        outstanding = _outstanding_cents(payment)
        decision = decide(
            DecisionInput(
                purchase_cents=to_cents(payment.purchase_amount),
                installments_count=payment.installments_count,
                is_pay_later=payment.is_pay_later,
                customer_age=_age(checkout.birth_date, business_date(now)),
                card_funding=checkout.card.funding,
                email=checkout.email,
                livemode=payment.livemode,
                outstanding_cents=outstanding,
            )
        )
        row = CreditDecision.objects.create(
            payment=payment,
            outcome=decision.outcome,
            score=decision.score,
            reasons=[{"code": r.code, "message": r.message} for r in decision.reasons],
            rules_version=decision.rules_version,
            created_at=now,
        )
        state = {"yes": S.SCORED_YES, "maybe": S.SCORED_MAYBE, "no": S.SCORED_NO}[decision.outcome]
        payment_transition(payment, state, now=now, kind="scored", detail={"decision": row.pk})
        if decision.outcome != "yes":
            checkout.step = Step.REFUSED
            checkout.refusal_code = decision.outcome
            checkout.updated_at = now
            checkout.save(update_fields=["step", "refusal_code", "updated_at"])
    return row


def _outstanding_cents(payment: Payment) -> int:
    """What the customer owes or is about to owe on their other plans: principal, fees and
    interest of unpaid instalments of accepted plans, and every instalment of plans accepted
    but not yet charged. The customer row is locked, so two checkouts of one customer are
    decided one after the other."""
    from apps.payments.models import Instalment

    Customer.objects.select_for_update().filter(pk=payment.customer_id).first()
    owed = (
        Instalment.objects.filter(
            payment__customer_id=payment.customer_id,
            payment__livemode=payment.livemode,
            payment__state__in=[
                S.SCORED_YES,
                S.IN_PROGRESS,
                S.LATE_DUNNING,
                S.LATE_CONTACT_CUSTOMER,
                S.DEFAULT,
            ],
            state__in=["pending", "incident", "claimed"],
        )
        .exclude(payment_id=payment.pk)
        .values_list("purchase_amount", "customer_fee", "customer_interest")
    )
    return sum(to_cents(a) + to_cents(b) + to_cents(c) for a, b, c in owed)


def _age(birth_date: date | None, today: date) -> int:
    return 0 if birth_date is None else card_rules.age_on(birth_date, today=today)


def checkout_pay_in_full_start(*, payment_id: int, return_path: str, now: datetime) -> str:
    """A customer refused credit takes the offer to pay the whole purchase at once: their
    bank authenticates that amount (3-D Secure) before it is charged. Returns where to send
    the browser."""
    with transaction.atomic():
        _payment, checkout = _locked(payment_id, steps=(Step.REFUSED,), now=now)
        checkout.pay_in_full = True
        checkout.step = Step.THREE_DS
        checkout.three_ds_reference = ""
        checkout.updated_at = now
        checkout.save(update_fields=["pay_in_full", "step", "three_ds_reference", "updated_at"])
    return checkout_three_ds_start(payment_id=payment_id, return_path=return_path, now=now)


def checkout_pay(*, payment_id: int, now: datetime) -> Payment:
    """Charge what is due now and accept the payment: the first instalment after a yes, or
    the whole purchase when the customer took the pay-in-full offer (authenticated for that
    amount). A pay-later plan is accepted without a charge."""
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.DECISION,), now=now)
        in_full = checkout.pay_in_full
        if in_full and payment.state not in (S.SCORED_NO, S.SCORED_MAYBE):
            raise StepOutOfOrder()
        if not in_full and payment.state != S.SCORED_YES:
            raise StepOutOfOrder()
        amount = _checkout_charge_cents(payment, in_full=in_full)
        if amount == 0:
            return payment_accept(payment=payment, charge=None, now=now)
        three_ds = checkout.three_ds_reference
    charge = charge_open(
        payment_id=payment_id,
        kind=Charge.Kind.PAY_IN_FULL if in_full else Charge.Kind.FIRST_INSTALMENT,
        amount_cents=amount,
        three_ds_reference=three_ds,
        now=now,
    )
    try:
        result = charge_execute(charge=charge, three_ds_reference=three_ds)
    except ProcessorUnavailable:
        result = None
    charge = charge_record(charge_id=charge.pk, result=result, now=now)
    if charge.status == Charge.Status.UNKNOWN or charge.status == Charge.Status.PENDING:
        raise ChargeInDoubt()
    if charge.status == Charge.Status.FAILED:
        with transaction.atomic():
            payment, checkout = _locked(payment_id, steps=(Step.DECISION,), now=now)
            checkout.step = Step.CARD  # a new card; the pay-in-full choice stays
            checkout.updated_at = now
            checkout.save(update_fields=["step", "updated_at"])
        raise ChargeDeclined()
    return Payment.objects.get(pk=payment_id)
