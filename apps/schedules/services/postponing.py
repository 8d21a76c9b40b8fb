"""Postponing an instalment from the portal, and asking support for a longer delay.

The rule is ``apps.payments.postponement`` (pure, documented there); here it is applied to
the rows. ``instalment_postpone`` runs in one transaction under the payment's lock and the
instalment's row lock, so a double click, two tabs or the debit run's claim see each other:
the claim skips a locked instalment, and a postponement waits for a claim in progress and
then sees its charge in flight. No money moves: there is no ledger posting, and no call to
an outside party (the email goes through the outbox, after commit).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.common.dates import business_date, debit_time
from apps.common.emails import EmailSpec, emails_queue_many
from apps.common.errors import DomainError, NotFound
from apps.common.money import display_eur, to_cents
from apps.payments import links
from apps.payments.emails import date_display, email_language
from apps.payments.models import Card, Charge, Customer, Instalment, Payment, PaymentState
from apps.payments.postponement import (
    PostponeFacts,
    Refusal,
    Window,
    check_date,
    next_unpaid_due_date,
    postpone_window,
)
from apps.payments.services.charges import IN_DOUBT
from apps.payments.services.transitions import (
    payment_event_record,
    payment_lock,
    payment_transition,
)
from apps.schedules import emails
from apps.schedules.models import SupportRequest
from apps.schedules.services.support import support_request_create

S = PaymentState
LATE_STATES = (S.LATE_DUNNING, S.LATE_CONTACT_CUSTOMER)
UNPAID = (Instalment.State.PENDING, Instalment.State.INCIDENT)
# A longer delay may be asked for while something is owed: the plan open, or in default.
LONGER_DELAY_STATES = (S.IN_PROGRESS, *LATE_STATES, S.DEFAULT)
LONGER_DELAY_UNPAID = (*UNPAID, Instalment.State.CLAIMED)
LONGER_DELAY_MAX_DAYS = 365


class PostponeRefused(DomainError):
    """The rule does not allow this postponement; ``reason`` is the refusal's code."""

    code = "postpone_refused"
    http_status = 409

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.message, reason=refusal.code)
        self.refusal = refusal


class LongerDelayRefused(DomainError):
    code = "longer_delay_refused"
    http_status = 400
    default_message = _("This request cannot be sent.")


# --- reading ---------------------------------------------------------------------------


def _rule_settings() -> dict[str, int]:
    return {
        "max_days": settings.POSTPONE_MAX_DAYS,
        "per_instalment": settings.POSTPONEMENTS_PER_INSTALMENT,
    }


def _in_flight_ids(payment_id: int) -> set[int]:
    """The payment's instalments a charge waiting for the processor's answer pays."""
    ids: set[int] = set()
    for instalment_id, covers in Charge.objects.filter(
        payment_id=payment_id, status__in=IN_DOUBT
    ).values_list("instalment_id", "covers"):
        if instalment_id:
            ids.add(instalment_id)
        ids.update(covers or ())
    return ids


def _card_expiry(card: Card | None) -> tuple[int, int] | None:
    return (card.exp_year, card.exp_month) if card is not None else None


def postpone_facts(
    *, payment: Payment, instalment: Instalment, rows: list[Instalment], in_flight: bool
) -> PostponeFacts:
    """What the rule needs, from rows already read (``rows``: the plan's instalments)."""
    return PostponeFacts(
        instalment_state=instalment.state,
        due_date=instalment.due_date,
        postponements=instalment.postponements,
        payment_state=payment.state,
        next_unpaid_due_date=next_unpaid_due_date(rows, instalment.number),
        in_flight=in_flight,
        card_expiry=_card_expiry(payment.card),
    )


def postpone_windows(*, payment: Payment, now: datetime) -> dict[int, Window | Refusal]:
    """Each instalment's window (by number), or why it cannot move: for the portal's pages,
    in two queries (the instalments, the charges in flight)."""
    rows = list(payment.instalments.order_by("number"))
    in_flight = _in_flight_ids(payment.pk)
    today = business_date(now)
    return {
        row.number: postpone_window(
            postpone_facts(
                payment=payment, instalment=row, rows=rows, in_flight=row.pk in in_flight
            ),
            today=today,
            **_rule_settings(),
        )
        for row in rows
    }


def _in_flight(instalment: Instalment) -> bool:
    return (
        Charge.objects.filter(payment_id=instalment.payment_id, status__in=IN_DOUBT)
        .filter(Q(instalment_id=instalment.pk) | Q(covers__contains=[instalment.pk]))
        .exists()
    )


def postpone_date_check(
    *, payment: Payment, instalment: Instalment, new_date: date, now: datetime
) -> Window:
    """The window, when ``new_date`` is in it (the confirmation step reads it; nothing is
    changed); ``PostponeRefused`` otherwise."""
    rows = list(payment.instalments.order_by("number"))
    facts = postpone_facts(
        payment=payment, instalment=instalment, rows=rows, in_flight=_in_flight(instalment)
    )
    result = check_date(facts, new_date, today=business_date(now), **_rule_settings())
    if isinstance(result, Refusal):
        raise PostponeRefused(result)
    return result


def longer_delay_window(
    *, payment: Payment, instalment: Instalment, now: datetime
) -> Window | None:
    """The dates a longer delay may be asked for, or None when nothing is owed on it."""
    if payment.state not in LONGER_DELAY_STATES or instalment.state not in LONGER_DELAY_UNPAID:
        return None
    today = business_date(now)
    return Window(
        first=max(today, instalment.due_date) + timedelta(days=1),
        last=today + timedelta(days=LONGER_DELAY_MAX_DAYS),
        limited_by="support",
    )


# --- postponing ------------------------------------------------------------------------


def instalment_postpone(
    *, payment_id: int, number: int, new_date: date, now: datetime, customer_id: int
) -> Instalment:
    """Move instalment ``number`` of the customer's plan to ``new_date`` (the rule in
    ``apps.payments.postponement``); ``PostponeRefused`` says why not.

    Safe to repeat: the same request again (a double click) finds the instalment already
    moved to ``new_date`` and returns it, changing and sending nothing more."""
    today = business_date(now)
    with transaction.atomic():
        payment = payment_lock(payment_id=payment_id)
        if payment.customer_id != customer_id:
            raise NotFound("payment", payment.public_id)
        instalment = (
            Instalment.objects.select_for_update().filter(payment=payment, number=number).first()
        )
        if instalment is None:
            raise NotFound("instalment", str(number))
        if instalment.postponements and instalment.due_date == new_date:
            return instalment  # this very postponement, asked again
        rows = list(payment.instalments.order_by("number"))
        facts = postpone_facts(
            payment=payment, instalment=instalment, rows=rows, in_flight=_in_flight(instalment)
        )
        result = check_date(facts, new_date, today=today, **_rule_settings())
        if isinstance(result, Refusal):
            raise PostponeRefused(result)

        old_date = instalment.due_date
        instalment.due_date = new_date
        instalment.postponed_from = instalment.postponed_from or old_date
        instalment.postponements += 1
        instalment.next_debit_at = debit_time(new_date, hour=settings.DEBIT_HOUR)
        # Late no more: the late fee already added stays in customer_fee.
        instalment.state = Instalment.State.PENDING
        instalment.save(
            update_fields=["due_date", "postponed_from", "postponements", "next_debit_at", "state"]
        )
        payment_event_record(
            payment,
            kind="instalment_postponed",
            now=now,
            detail={"number": number, "from": old_date.isoformat(), "to": new_date.isoformat()},
        )
        rows = [instalment if row.pk == instalment.pk else row for row in rows]
        if payment.state in LATE_STATES and not any(
            row.state == Instalment.State.INCIDENT for row in rows
        ):
            payment_transition(payment, S.IN_PROGRESS, now=now, kind="back_on_schedule")
        _postponed_email(payment, rows, instalment, old_date=old_date, now=now)
    return instalment


def _brand(card: Card) -> str:
    return str(Card.Brand(card.brand).label) if card.brand in Card.Brand.values else card.brand


def _postponed_email(
    payment: Payment, rows: list[Instalment], moved: Instalment, *, old_date: date, now: datetime
) -> None:
    """ "Instalment k of n moved to <date>": the new date, the amount, what is left."""
    context = emails.BatchContext.load([payment], rows)
    to = context.email(payment)
    if not to:
        return
    language = email_language(payment.locale)
    count = len(rows)
    with translation.override(language):
        label = gettext("%(number)d of %(count)d") % {"number": moved.number, "count": count}
        card = payment.card
        values: dict[str, Any] = {
            "customer_name": context.name(payment),
            "merchant_name": payment.seller_name,
            "payment_id": payment.public_id,
            "order_references": context.references.get(payment.pk, []),
            "card": f"{_brand(card)} •••• {card.last4}" if card else "",
            "plan_link": links.plan_url(payment.public_id),
            "livemode": payment.livemode,
            "number": label,
            "amount": display_eur(to_cents(moved.total_amount)),
            "date": date_display(moved.due_date),
            "old_date": date_display(old_date),
            # The reminder job announces a debit at least REMINDER_MIN_LEAD_HOURS ahead.
            "reminder": moved.next_debit_at - now
            > timedelta(hours=settings.REMINDER_MIN_LEAD_HOURS),
            "remaining": [
                {
                    "label": gettext("%(number)d of %(count)d")
                    % {"number": row.number, "count": count},
                    "date": date_display(row.due_date),
                    "amount": display_eur(to_cents(row.total_amount)),
                    "moved": row.pk == moved.pk,
                }
                for row in rows
                if row.state in UNPAID
            ],
        }
        subject = _("Instalment %(number)s moved to %(date)s") % {
            "number": label,
            "date": values["date"],
        }
    emails_queue_many(
        [
            EmailSpec(
                key=f"instalment:{moved.public_id}:postponed:{moved.postponements}",
                to=to,
                subject=subject,
                template=f"{emails.TEMPLATES}/postponed",
                context=values,
                language=language,
            )
        ],
        now=now,
    )


# --- a longer delay: a request to support ----------------------------------------------


def longer_delay_request(
    *,
    customer: Customer,
    payment: Payment,
    number: int,
    requested_date: date,
    message: str,
    now: datetime,
) -> SupportRequest:
    """Ask support to move instalment ``number`` to ``requested_date`` (longer than the
    portal allows): a ticket for operators, an acknowledgement to the customer, and a
    ``longer_delay_requested`` event on the payment. The same request again while it is
    open (a double click) returns the open one."""
    with transaction.atomic():
        locked = payment_lock(payment_id=payment.pk)
        if locked.customer_id != customer.pk:
            raise NotFound("payment", locked.public_id)
        instalment = locked.instalments.filter(number=number).first()
        if instalment is None:
            raise NotFound("instalment", str(number))
        if instalment.state == Instalment.State.PAID:
            raise LongerDelayRefused(gettext("This instalment is already paid."))
        window = longer_delay_window(payment=locked, instalment=instalment, now=now)
        if window is None:
            raise LongerDelayRefused(gettext("This plan is closed: nothing is left to pay."))
        if requested_date not in window:
            raise LongerDelayRefused(
                gettext("Pick a date between %(first)s and %(last)s.")
                % {"first": date_display(window.first), "last": date_display(window.last)}
            )
        existing = SupportRequest.objects.filter(
            kind=SupportRequest.Kind.POSTPONE,
            status=SupportRequest.Status.OPEN,
            instalment=instalment,
            requested_date=requested_date,
        ).first()
        if existing is not None:
            return existing
        ticket = support_request_create(
            kind=SupportRequest.Kind.POSTPONE,
            livemode=locked.livemode,
            now=now,
            customer=customer,
            payment=locked,
            instalment=instalment,
            name=f"{customer.first_name} {customer.last_name}".strip(),
            message=message.strip(),
            requested_date=requested_date,
        )
        payment_event_record(
            locked,
            kind="longer_delay_requested",
            now=now,
            detail={
                "number": number,
                "requested_date": requested_date.isoformat(),
                "reference": ticket.public_id,
            },
        )
    return ticket
