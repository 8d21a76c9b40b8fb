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
from apps.payments.decision import BankFacts
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
from apps.payments.services.scoring import payment_score
from apps.payments.services.transitions import (
    payment_event_record,
    payment_lock,
    payment_transition,
)
from apps.verification import bank, identity
from apps.verification import services as verification
from apps.verification.names import holder_names

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
    device_id: str = "",
    ip_address: str | None = None,
) -> Checkout:
    """The customer's details, their acceptance of the terms and their card (already tokenised
    by the processor): check the card rules and the customer's age, keep the card; 3-D Secure
    comes next. ``device_id`` and ``ip_address`` say where the customer is (velocity checks)."""
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
            checkout.device_id = device_id[:64]
            checkout.ip_address = ip_address
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
        fingerprint=card.fingerprint,
        created_at=now,
    )
    who = (details.first_name, details.last_name, details.birth_date)
    if who != (checkout.first_name, checkout.last_name, checkout.birth_date):
        # Another person (or a corrected name): earlier checks no longer speak for them.
        checkout.identity_check_id = ""
        checkout.bank_check_id = ""
    checkout.first_name = details.first_name
    checkout.last_name = details.last_name
    checkout.email = details.email
    checkout.birth_date = details.birth_date
    checkout.address = details.address
    checkout.terms_accepted_at = now
    checkout.card = saved
    checkout.three_ds_reference = ""
    checkout.three_ds_completed_at = None
    if checkout.phone != details.phone:
        checkout.phone = details.phone
        checkout.phone_verified_at = None
        checkout.phone_check_id = ""
    checkout.language = language
    checkout.step = Step.THREE_DS
    checkout.updated_at = now
    checkout.save()
    payment_event_record(
        payment,
        kind="card_added",
        now=now,
        detail={"card": saved.public_id, "brand": card.brand, "last4": card.last4},
    )
    return checkout


def _phone_check_start(
    payment: Payment, phone: str, language: str, now: datetime, ip_address: str | None = None
) -> str:
    check = verification.phone_check_start(
        phone=phone,
        livemode=payment.livemode,
        purpose="checkout",
        subject=payment.public_id,
        language=language,
        now=now,
        ip_address=ip_address,
    )
    return check.public_id


def checkout_phone_change(*, payment_id: int, phone: str, language: str, now: datetime) -> Checkout:
    """The customer corrects their number: a new code goes to the new one."""
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.PHONE,), now=now)
        checkout.phone = phone
        checkout.phone_check_id = _phone_check_start(
            payment, phone, language, now, checkout.ip_address
        )
        checkout.updated_at = now
        checkout.save(update_fields=["phone", "phone_check_id", "updated_at"])
    return checkout


def checkout_phone_send(*, payment_id: int, now: datetime) -> Checkout:
    """Send the code the decision asked for (once; ``checkout_phone_resend`` sends it again).
    A refusal to send (too many codes for this number or address) leaves the step as it is,
    with the pay-in-full offer beside it."""
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.PHONE,), now=now)
        if not checkout.phone_check_id:
            checkout.phone_check_id = _phone_check_start(
                payment, checkout.phone, checkout.language or "fr", now, checkout.ip_address
            )
            checkout.updated_at = now
            checkout.save(update_fields=["phone_check_id", "updated_at"])
    return checkout


def checkout_phone_resend(*, payment_id: int, now: datetime) -> Checkout:
    with transaction.atomic():
        _payment, checkout = _locked(payment_id, steps=(Step.PHONE,), now=now)
        check_id = checkout.phone_check_id
        if check_id:
            verification.phone_check_resend(check_id=check_id, now=now)
    if not check_id:
        return checkout_phone_send(payment_id=payment_id, now=now)
    return checkout


def checkout_phone_verify(*, payment_id: int, code: str, now: datetime) -> Checkout:
    """The code the customer typed; wrong codes count against the check's limit. The count
    must survive this request's refusal, so the code is checked in its own transaction."""
    with transaction.atomic():
        _payment, checkout = _locked(payment_id, steps=(Step.PHONE,), now=now)
        check_id = checkout.phone_check_id
    verification.phone_check_verify(
        check_id=check_id, code=code, now=now, ip_address=checkout.ip_address
    )
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.PHONE,), now=now)
        if checkout.phone_check_id != check_id:  # the number changed meanwhile
            raise StepOutOfOrder()
        checkout.phone_verified_at = now
        checkout.step = Step.DECISION  # decided again, now with the phone verified
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


def checkout_decide(*, payment_id: int, now: datetime, made_by: str = "checkout") -> CreditDecision:
    """The credit decision on the checked customer and card, with whatever extra information
    they gave. A yes is paid at once by the caller (``checkout_pay``); a maybe asks for the
    next piece of information (the phone code, or the more-information page); a no offers
    to pay the whole amount."""
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.DECISION,), now=now)
        row = payment_score(
            payment=payment,
            checkout=checkout,
            now=now,
            made_by=made_by,
            identity=_identity_fact(checkout),
            bank=_bank_fact(checkout),
        )
        state = {"yes": S.SCORED_YES, "maybe": S.SCORED_MAYBE, "no": S.SCORED_NO}[row.outcome]
        payment_transition(payment, state, now=now, kind="scored", detail={"decision": row.pk})
        if row.outcome == "no":
            checkout.step = Step.REFUSED
            checkout.refusal_code = "no"
        elif row.outcome == "maybe" and row.asks[0] == "phone":
            checkout.phone_check_id = ""  # sent by checkout_phone_send, in its own step
            checkout.step = Step.PHONE
        elif row.outcome == "maybe":
            checkout.step = Step.MORE_INFO
            checkout.refusal_code = "maybe"
        checkout.updated_at = now
        checkout.save(update_fields=["step", "refusal_code", "phone_check_id", "updated_at"])
    return row


def _identity_fact(checkout: Checkout) -> str:
    """What the identity check says, for the decision: "" when none was finished."""
    if not checkout.identity_check_id:
        return ""
    check = identity.identity_check_get(check_id=checkout.identity_check_id)
    if check.status in ("retake", "provider_error") and identity.identity_attempts_left(check) == 0:
        return "exhausted"  # no more photos may be sent: ask something else, or decide
    return {"approved": "approved", "rejected": "rejected", "submitted": "pending"}.get(
        check.status, ""
    )


def _bank_fact(checkout: Checkout) -> BankFacts | None:
    if not checkout.bank_check_id:
        return None
    check = bank.bank_check_get(check_id=checkout.bank_check_id)
    holder = (check.analysis or {}).get("bank_holder_name") or ""
    status = check.status
    if status == "analysed" and not holder_names(
        holder, first_name=checkout.first_name, last_name=checkout.last_name
    ):
        status = "holder_mismatch"  # someone else's account says nothing of this customer
    return BankFacts(
        status=status,
        repayment_capacity_cents=check.repayment_capacity_cents or 0,
        monthly_income_cents=check.monthly_income_cents or 0,
        flags=tuple((check.analysis or {}).get("flags", ())),
    )


# Where a customer not (yet) accepted may take the offer to pay everything now instead.
PAY_IN_FULL_STEPS = (Step.REFUSED, Step.MORE_INFO, Step.IDENTITY, Step.BANK, Step.PHONE)


# --- more information after a maybe -------------------------------------------------------


def checkout_identity_start(*, payment_id: int, now: datetime) -> Checkout:
    """The customer agrees to show an identity document: open the check (the names and birth
    date it must show are the ones given at checkout)."""
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.MORE_INFO, Step.IDENTITY), now=now)
        check = identity.identity_check_start(
            livemode=payment.livemode,
            purpose="checkout",
            subject=payment.public_id,
            first_name=checkout.first_name,
            last_name=checkout.last_name,
            birth_date=checkout.birth_date,
            now=now,
        )
        checkout.identity_check_id = check.public_id
        checkout.step = Step.IDENTITY
        checkout.updated_at = now
        checkout.save(update_fields=["identity_check_id", "step", "updated_at"])
        payment_event_record(payment, kind="identity_check_started", now=now)
    return checkout


def checkout_identity_submit(*, payment_id: int, document, selfie, now: datetime) -> Checkout:
    """The photos: checked and handed to the ID provider by verification (outside any
    transaction here: the provider is an outside party). Its answer comes later."""
    with transaction.atomic():
        _payment, checkout = _locked(payment_id, steps=(Step.IDENTITY,), now=now)
        check_id = checkout.identity_check_id
    identity.identity_check_submit(check_id=check_id, document=document, selfie=selfie, now=now)
    return checkout


def checkout_identity_refresh(*, payment_id: int, now: datetime) -> bool:
    """Ask whether the ID provider has answered; True when the answer is in and the payment
    is ready to be decided again."""
    with transaction.atomic():
        _payment, checkout = _locked(payment_id, steps=(Step.IDENTITY,), now=now)
        check_id = checkout.identity_check_id
    check = identity.identity_check_refresh(check_id=check_id, now=now)
    exhausted = identity.identity_attempts_left(check) == 0 and check.status in (
        "retake",
        "provider_error",
    )
    if check.status not in ("approved", "rejected") and not exhausted:
        return False
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.IDENTITY,), now=now)
        if checkout.identity_check_id != check_id:
            return False
        checkout.step = Step.DECISION
        checkout.updated_at = now
        checkout.save(update_fields=["step", "updated_at"])
        payment_event_record(
            payment, kind="identity_checked", now=now, detail={"status": check.status}
        )
    return True


def checkout_bank_start(*, payment_id: int, return_path: str, now: datetime) -> str:
    """The customer consents to share 3 months of bank data: open the connection with the
    aggregator (outside any transaction); returns where to send the browser."""
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.MORE_INFO, Step.BANK), now=now)
        holder = f"{checkout.first_name} {checkout.last_name}".strip()
    check, redirect_url = bank.bank_check_start(
        livemode=payment.livemode,
        purpose="checkout",
        subject=payment.public_id,
        account_holder=holder,
        return_url=absolute(return_path),
        now=now,
    )
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.MORE_INFO, Step.BANK), now=now)
        checkout.bank_check_id = check.public_id
        checkout.step = Step.BANK
        checkout.updated_at = now
        checkout.save(update_fields=["bank_check_id", "step", "updated_at"])
        payment_event_record(payment, kind="bank_check_started", now=now)
    return redirect_url


def checkout_bank_complete(*, payment_id: int, reference: str, now: datetime) -> bool:
    """The browser is back from the aggregator: fetch and analyse the transactions (through
    verification, outside any transaction). True when the analysis is in and the payment is
    ready to be decided again; False when the customer cancelled (back to the choices)."""
    with transaction.atomic():
        _payment, checkout = _locked(payment_id, steps=(Step.BANK,), now=now)
        check_id = checkout.bank_check_id
    started = bank.bank_check_get(check_id=check_id)
    if not reference or reference not in (started.public_id, started.provider_reference):
        raise StepOutOfOrder()
    check = bank.bank_check_complete(check_id=check_id, now=now)
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.BANK,), now=now)
        analysed = check.status == "analysed"
        checkout.step = Step.DECISION if analysed else Step.MORE_INFO
        checkout.updated_at = now
        checkout.save(update_fields=["step", "updated_at"])
        payment_event_record(payment, kind="bank_checked", now=now, detail={"status": check.status})
    return analysed


def checkout_pay_in_full_start(*, payment_id: int, return_path: str, now: datetime) -> str:
    """A customer refused credit takes the offer to pay the whole purchase at once: their
    bank authenticates that amount (3-D Secure) before it is charged. Returns where to send
    the browser."""
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=PAY_IN_FULL_STEPS, now=now)
        if payment.state not in (S.SCORED_MAYBE, S.SCORED_NO):
            raise StepOutOfOrder()
        checkout.pay_in_full = True
        checkout.step = Step.THREE_DS
        checkout.three_ds_reference = ""
        checkout.updated_at = now
        checkout.save(update_fields=["pay_in_full", "step", "three_ds_reference", "updated_at"])
    return checkout_three_ds_start(payment_id=payment_id, return_path=return_path, now=now)


def yes_for_current_card(payment: Payment, checkout: Checkout) -> bool:
    """Whether the payment holds a yes that covers the customer's current details and card:
    one decided after the card's 3-D Secure, or an operator's approval given after the
    details were last sent. A yes given before the customer changed card or details does
    not cover the new ones."""
    if payment.state != S.SCORED_YES:
        return False
    latest = payment.decisions.order_by("-created_at", "-id").first()
    if latest is None or latest.outcome != "yes":
        return False
    if latest.made_by == "operator":
        return operator_yes_stands(latest, checkout)
    return (
        checkout.three_ds_completed_at is not None
        and latest.created_at >= checkout.three_ds_completed_at
    )


def operator_yes_stands(decision: CreditDecision, checkout: Checkout) -> bool:
    return checkout.terms_accepted_at is None or decision.created_at >= checkout.terms_accepted_at


def approved_by_operator(payment: Payment, checkout: Checkout) -> bool:
    """An operator approved this customer (a human review) since they last sent details:
    their new 3-D Secure is paid on without another automatic decision."""
    latest = payment.decisions.order_by("-created_at", "-id").first()
    return (
        payment.state == S.SCORED_YES
        and latest is not None
        and latest.made_by == "operator"
        and latest.outcome == "yes"
        and operator_yes_stands(latest, checkout)
    )


def checkout_pay(*, payment_id: int, now: datetime) -> Payment:
    """Charge what is due now and accept the payment: the first instalment after a yes, or
    the whole purchase when the customer took the pay-in-full offer (authenticated for that
    amount). A pay-later plan is accepted without a charge."""
    with transaction.atomic():
        payment, checkout = _locked(payment_id, steps=(Step.DECISION,), now=now)
        in_full = checkout.pay_in_full
        if in_full and payment.state not in (S.SCORED_NO, S.SCORED_MAYBE):
            raise StepOutOfOrder()
        if not in_full and not yes_for_current_card(payment, checkout):
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
