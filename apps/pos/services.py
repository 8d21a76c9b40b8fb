"""In-store sessions: terminals, starting a sale, the customer's plan choice, following the
payment, cancelling and expiring. Every write that matters is here, one function per use
case; the terminal API, the virtual terminal and the customer's page call them.

Locks: a session's row (FOR UPDATE) before its payment's (``payment_lock``); nothing locks
them the other way round. No outside party is called here: the SMS goes through the
verification app's outbox, sent after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from phonenumber_field.phonenumber import to_python

from apps.common.dates import business_date
from apps.common.errors import DomainError
from apps.common.ids import random_base62
from apps.common.money import display_eur, to_cents, to_money
from apps.merchants.keys import hash_secret  # the API keys' hash: SHA-256, same reasons
from apps.merchants.models import Merchant
from apps.payments import links
from apps.payments.eligibility import IN_STORE, Eligibility
from apps.payments.models import Charge, Checkout, Payment
from apps.payments.selectors import eligibility_check
from apps.payments.services.payments import payment_cancel, payment_create, payment_expire
from apps.payments.services.transitions import payment_event_record
from apps.pos import states
from apps.pos.models import OPEN_STATES, PosSession, Terminal
from apps.verification.services import sms_send

logger = logging.getLogger(__name__)

TERMINAL_SECRET_PREFIXES = {False: "tk_test_", True: "tk_live_"}
TERMINAL_SECRET_RANDOM_LENGTH = 32
LINK_CODE_LENGTH = 10  # base62: about 60 bits, for a link that lives minutes
POS_COUNTRIES = frozenset({"FR"})


# --- errors ------------------------------------------------------------------------------


class PosNotAvailable(DomainError):
    code = "pos_not_available"
    http_status = 403
    default_message = (
        "In-store sessions are only available to merchants operating in France, with an "
        "active account."
    )


class AmountOutOfBounds(DomainError):
    code = "invalid_amount"
    http_status = 400


class InvalidCustomerPhone(DomainError):
    code = "invalid_phone"
    http_status = 400


class TerminalBusy(DomainError):
    code = "terminal_busy"
    http_status = 409
    default_message = (
        "This terminal already has a session in progress; cancel it or wait for it to end."
    )


class SessionFinished(DomainError):
    code = "session_finished"
    http_status = 409


class TerminalRevoked(DomainError):
    code = "terminal_revoked"
    http_status = 401
    default_message = "This terminal was revoked; register it again from the dashboard."


class PlanNotOffered(DomainError):
    code = "plan_not_offered"
    http_status = 400
    default_message = "This plan is not offered for this purchase."


# --- terminals ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedTerminal:
    terminal: Terminal
    secret: str  # shown once


def pos_check_available(merchant: Merchant) -> None:
    """Raise ``PosNotAvailable`` unless the merchant may sell in store (active, France)."""
    if merchant.country not in POS_COUNTRIES:
        raise PosNotAvailable(
            _(
                "In-store sessions are only available to merchants operating in France; "
                "this account is registered in %(country)s."
            )
            % {"country": merchant.get_country_display()}
        )
    if not merchant.is_active:
        raise PosNotAvailable(_("This merchant account is not active: it cannot sell in store."))


@transaction.atomic
def terminal_register(
    *,
    merchant: Merchant,
    livemode: bool,
    name: str,
    now: datetime,
    shop: str = "",
    serial_number: str = "",
    created_by: AbstractBaseUser | None = None,
) -> IssuedTerminal:
    """Register a terminal and issue its secret (returned once, stored hashed)."""
    pos_check_available(merchant)
    secret = TERMINAL_SECRET_PREFIXES[livemode] + random_base62(TERMINAL_SECRET_RANDOM_LENGTH)
    terminal = Terminal.objects.create(
        merchant=merchant,
        livemode=livemode,
        name=name.strip()[:100],
        shop=shop.strip()[:150],
        serial_number=serial_number.strip()[:64],
        secret_hash=hash_secret(secret),
        display_prefix=secret[:12],
        created_at=now,
        created_by=created_by,
    )
    return IssuedTerminal(terminal=terminal, secret=secret)


@transaction.atomic
def terminal_revoke(
    *, terminal: Terminal, now: datetime, revoked_by: AbstractBaseUser | None = None
) -> Terminal:
    """Stop a terminal at once (its next call is refused). Its open session, if any, is
    cancelled; a session whose customer is paying right now is left to finish."""
    locked = Terminal.objects.select_for_update().get(pk=terminal.pk)
    if locked.revoked_at is None:
        locked.revoked_at = now
        locked.revoked_by = revoked_by
        locked.save(update_fields=["revoked_at", "revoked_by"])
    for session in PosSession.objects.filter(terminal=locked, state__in=list(OPEN_STATES)):
        try:
            session_cancel(session_id=session.pk, now=now)
        except DomainError:
            logger.info("Left session %s of revoked terminal %s", session.public_id, locked)
    return locked


def terminal_for_secret(secret: str) -> Terminal | None:
    """The terminal with this secret (revoked ones too: the caller says why it refuses)."""
    if not secret.startswith(tuple(TERMINAL_SECRET_PREFIXES.values())) or len(secret) > 100:
        return None
    return (
        Terminal.objects.select_related("merchant").filter(secret_hash=hash_secret(secret)).first()
    )


def terminal_touch(*, terminal: Terminal, now: datetime) -> None:
    """Remember when the terminal last called (at most one write a minute)."""
    if terminal.last_seen_at is None or now - terminal.last_seen_at > timedelta(minutes=1):
        Terminal.objects.filter(pk=terminal.pk).update(last_seen_at=now)
        terminal.last_seen_at = now


# --- what a session may be -----------------------------------------------------------------


def customer_phone_normalise(raw: str) -> str:
    """A French mobile number (the link goes by SMS) in E.164, or ``InvalidCustomerPhone``
    saying what is wrong: malformed, foreign, or not a mobile."""
    number = to_python((raw or "").strip()[:40], region="FR")
    if number is None or not getattr(number, "is_valid", lambda: False)():
        raise InvalidCustomerPhone(
            _("This phone number is not valid. Type a French mobile number, e.g. 06 12 34 56 78.")
        )
    if phonenumbers.region_code_for_number(number) != "FR":
        raise InvalidCustomerPhone(
            _(
                "In-store sessions send their link to French mobile numbers only (+33 6 or "
                "+33 7); this number is from another country."
            ),
            reason="foreign",
        )
    if phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.MOBILE:
        raise InvalidCustomerPhone(
            _("This number is not a mobile: it cannot receive the payment link by SMS."),
            reason="not_mobile",
        )
    return number.as_e164


def session_plans(*, merchant: Merchant, amount_cents: int, now: datetime) -> list[Eligibility]:
    """The in-store plans this purchase may take (2 to 12 instalments, or paid later), each
    priced for today: what the customer chooses from."""
    answers = eligibility_check(
        merchant=merchant,
        purchase_amount=amount_cents,
        queries=None,
        purchase_date=business_date(now),
        channel=IN_STORE,
    )
    plans = [
        answer
        for answer in answers
        if 2 <= answer.query.installments_count <= 12
        or answer.query.deferred_days
        or answer.query.deferred_months
    ]
    return sorted(
        plans,
        key=lambda a: (
            bool(a.query.deferred_days or a.query.deferred_months),
            a.query.installments_count,
            a.query.deferred_months,
            a.query.deferred_days,
        ),
    )


def plan_key(answer: Eligibility) -> str:
    q = answer.query
    return f"{q.installments_count}_{q.deferred_days}_{q.deferred_months}"


def pos_amount_bounds(merchant: Merchant) -> tuple[int, int] | None:
    """The smallest and largest amounts in cents the merchant's in-store plans take (None:
    none)."""
    plans = [
        plan
        for plan in merchant.fee_plans.filter(kind="pos", allowed=True, available_in_pos=True)
        if 2 <= plan.installments_count <= 12 or plan.deferred_days or plan.deferred_months
    ]
    if not plans:
        return None
    # In cents, as the API speaks (the fee plans' columns are Money).
    return (
        min(to_cents(p.min_purchase_amount) for p in plans),
        max(to_cents(p.max_purchase_amount) for p in plans),
    )


def _amount_check(*, merchant: Merchant, amount_cents: int, now: datetime) -> None:
    if amount_cents > 0 and session_plans(merchant=merchant, amount_cents=amount_cents, now=now):
        return
    bounds = pos_amount_bounds(merchant)
    if bounds is None:
        raise AmountOutOfBounds(
            _("No in-store plan is enabled for this account: ask Tranche to enable one."),
            errors=[{"field": "amount", "error_code": "no_pos_plan"}],
        )
    minimum, maximum = bounds
    raise AmountOutOfBounds(
        _("In-store plans take amounts from %(minimum)s to %(maximum)s.")
        % {"minimum": display_eur(minimum), "maximum": display_eur(maximum)},
        errors=[{"field": "amount", "error_code": "out_of_bounds"}],
        minimum=minimum,
        maximum=maximum,
    )


# --- starting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SaleRequest:
    amount_cents: int
    phone: str
    reference: str = ""
    staff_name: str = ""


def short_url(session: PosSession) -> str:
    return links.absolute(reverse("pos:customer", args=[session.link_code]))


def session_start(
    *,
    merchant: Merchant,
    livemode: bool,
    sale: SaleRequest,
    now: datetime,
    terminal: Terminal | None = None,
    staff_user: AbstractBaseUser | None = None,
) -> tuple[PosSession, bool]:
    """Start a sale: check the merchant, amount and phone, record the session and text the
    customer the short link (the terminal prints "transaction in progress"). Returns the
    session and whether it is new.

    A terminal runs one sale at a time: starting the same sale again (same amount, phone
    and reference) while it is open returns it, unchanged (a terminal retrying after a lost
    answer); a different sale is refused with ``TerminalBusy``."""
    pos_check_available(merchant)
    phone = customer_phone_normalise(sale.phone)
    if not isinstance(sale.amount_cents, int) or sale.amount_cents <= 0:
        raise AmountOutOfBounds(
            _("The amount must be a positive whole number of cents."),
            errors=[{"field": "amount", "error_code": "invalid_value"}],
        )
    _amount_check(merchant=merchant, amount_cents=sale.amount_cents, now=now)
    if terminal is not None:
        for session in PosSession.objects.filter(terminal=terminal, state__in=list(OPEN_STATES)):
            session_sync(session_id=session.pk, now=now)  # an overdue one expires first
    staff_name = sale.staff_name.strip()[:150]
    if not staff_name and staff_user is not None:
        staff_name = (staff_user.get_full_name() or staff_user.email or staff_user.get_username())[
            :150
        ]
    try:
        with transaction.atomic():
            if terminal is not None:
                locked = Terminal.objects.select_for_update().get(pk=terminal.pk)  # one at a time
                if locked.revoked_at is not None:  # revoked since the caller authenticated it
                    raise TerminalRevoked()
                existing = PosSession.objects.filter(
                    terminal=terminal, state__in=list(OPEN_STATES)
                ).first()
                if existing is not None:
                    if (
                        to_cents(existing.amount) == sale.amount_cents
                        and existing.customer_phone == phone
                        and existing.reference == sale.reference.strip()[:100]
                    ):
                        return existing, False
                    raise TerminalBusy()
            session = PosSession.objects.create(
                merchant=merchant,
                livemode=livemode,
                terminal=terminal,
                staff_user=staff_user,
                staff_name=staff_name,
                amount=to_money(sale.amount_cents),
                customer_phone=phone,
                reference=sale.reference.strip()[:100],
                link_code=random_base62(LINK_CODE_LENGTH),
                created_at=now,
                updated_at=now,
                expires_at=now + timedelta(minutes=settings.POS_SESSION_MINUTES),
            )
            _link_send(session, now=now)
    except IntegrityError as error:  # another start on this terminal won the race
        raise TerminalBusy() from error
    return session, True


def _link_send(session: PosSession, *, now: datetime) -> None:
    """Text the short link (in French: the customer is in a shop in France)."""
    with translation.override("fr"):
        text = _("%(merchant)s: finish paying %(amount)s in instalments on your phone: %(url)s") % {
            "merchant": session.merchant.legal_name,
            # Plain spaces: a no-break space is outside the GSM alphabet.
            "amount": display_eur(to_cents(session.amount)).replace("\u00a0", " "),
            "url": short_url(session),
        }
    sms_send(
        phone=str(session.customer_phone),
        text=text,
        livemode=session.livemode,
        key=f"pos_session:{session.public_id}:link",
        now=now,
    )
    session.state = PosSession.State.LINK_SENT
    session.link_sent_at = now
    session.version += 1
    session.updated_at = now
    session.save(update_fields=["state", "link_sent_at", "version", "updated_at"])


# --- the customer's side ------------------------------------------------------------------


def session_for_link(code: str) -> PosSession | None:
    if not code or len(code) > 16 or not code.isalnum():
        return None
    return (
        PosSession.objects.select_related("merchant", "payment", "terminal")
        .filter(link_code=code)
        .first()
    )


def session_opened(*, session_id: int, now: datetime) -> PosSession:
    """The customer opened the link: the terminal shows "customer in progress"."""
    with transaction.atomic():
        session = PosSession.objects.select_for_update(of=("self",)).get(pk=session_id)
        if session.opened_at is None:
            session.opened_at = now
            session.save(update_fields=["opened_at"])
    return session_sync(session_id=session_id, now=now)


def session_choose_plan(*, session_id: int, key: str, now: datetime) -> Payment:
    """The customer chose their plan: create the payment (origin ``pos_device``, the
    merchant's in-store plan, the session's expiry) and hand over to the hosted checkout.
    Choosing again once the payment exists returns it (a double tap)."""
    session = session_sync(session_id=session_id, now=now)
    with transaction.atomic():
        session = (
            PosSession.objects.select_for_update(of=("self",))
            .select_related("merchant")
            .get(pk=session_id)
        )
        if session.payment_id is not None:
            return session.payment
        if session.state not in OPEN_STATES or session.expires_at <= now:
            raise SessionFinished(_("This sale is over: ask the shop to start a new one."))
        amount = to_cents(session.amount)
        offered = {
            plan_key(answer): answer
            for answer in session_plans(merchant=session.merchant, amount_cents=amount, now=now)
        }
        answer = offered.get(key)
        if answer is None:
            raise PlanNotOffered()
        data = {
            "payment": {
                "purchase_amount": amount,
                "installments_count": answer.query.installments_count,
                "deferred_days": answer.query.deferred_days,
                "deferred_months": answer.query.deferred_months,
                "origin": Payment.Origin.POS_DEVICE,
                "locale": translation.get_language() or "fr",
            },
            "customer": {"phone": str(session.customer_phone)},
        }
        if session.reference:
            data["order"] = {"merchant_reference": session.reference}
        payment = payment_create(
            merchant=session.merchant,
            livemode=session.livemode,
            data=data,
            now=now,
            staff_member=session.staff_name,
            terminal_name=_terminal_name(session),
            expires_at=session.expires_at,
        )
        payment_event_record(
            payment, kind="pos_session", now=now, detail={"session": session.public_id}
        )
        session.payment = payment
        if session.opened_at is None:
            session.opened_at = now
        _state_set(session, states.CUSTOMER_IN_PROGRESS, now=now, extra=("payment", "opened_at"))
    return payment


def _terminal_name(session: PosSession) -> str:
    """What lists and exports show: the terminal's name, or the virtual terminal's in the
    merchants' language (in-store selling is for merchants in France), whoever's page made
    the payment."""
    if session.terminal_id:
        return session.terminal.name
    with translation.override(settings.LANGUAGE_CODE):
        return _("Virtual terminal")


# --- following the payment -------------------------------------------------------------------


def _payment_facts(payment: Payment | None) -> states.PaymentFacts | None:
    if payment is None:
        return None
    step = Checkout.objects.filter(payment=payment).values_list("step", flat=True).first()
    return states.PaymentFacts(
        accepted=payment.accepted_at is not None,
        cancelled=payment.cancelled_at is not None,
        expired=payment.expired_at is not None,
        refused=step == Checkout.Step.REFUSED,
        charge_in_flight=Charge.objects.filter(
            payment=payment, status__in=[Charge.Status.PENDING, Charge.Status.UNKNOWN]
        ).exists(),
    )


def _target(session: PosSession, *, now: datetime) -> str:
    payment = Payment.objects.filter(pk=session.payment_id).first() if session.payment_id else None
    return states.session_state(
        session.state,
        link_sent=session.link_sent_at is not None,
        opened=session.opened_at is not None,
        payment=_payment_facts(payment),
        time_up=session.expires_at <= now,
    )


def _state_set(session: PosSession, state: str, *, now: datetime, extra: tuple = ()) -> None:
    session.state = state
    session.version += 1
    session.updated_at = now
    fields = ["state", "version", "updated_at", *extra]
    if state in states.FINAL and session.finished_at is None:
        session.finished_at = now
        fields.append("finished_at")
    session.save(update_fields=fields)


def session_sync(*, session_id: int, now: datetime) -> PosSession:
    """Bring the session up to date with its payment and its expiry, and return it.

    Cheap when nothing changed (a read, no lock, no write), so the terminal may poll it.
    On expiry, the payment is stopped first (unless a charge is in flight: the session
    then waits for its outcome)."""
    return _sync(session_id=session_id, now=now)[0]


def _sync(*, session_id: int, now: datetime) -> tuple[PosSession, bool]:
    """``session_sync``, also saying whether this call changed the session."""
    session = PosSession.objects.select_related("merchant", "terminal").get(pk=session_id)
    if _target(session, now=now) == session.state:
        return session, False
    if session.payment_id and session.expires_at <= now and session.state in OPEN_STATES:
        payment_expire(payment_id=session.payment_id, now=now)
    with transaction.atomic():
        session = (
            PosSession.objects.select_for_update(of=("self",))
            .select_related("merchant", "terminal")
            .get(pk=session_id)
        )
        target = _target(session, now=now)
        if target == session.state:
            return session, False
        _state_set(session, target, now=now)
    return session, True


def session_cancel(*, session_id: int, now: datetime) -> PosSession:
    """Staff cancel the sale. Cancelling a cancelled session answers it again; a paid or
    expired one is a conflict (a paid sale is refunded, not cancelled); so is a session
    whose customer is being charged right now."""
    session = session_sync(session_id=session_id, now=now)
    with transaction.atomic():
        session = (
            PosSession.objects.select_for_update(of=("self",))
            .select_related("merchant", "terminal")
            .get(pk=session_id)
        )
        if session.state == PosSession.State.CANCELLED:
            return session
        if not states.may_cancel(session.state):
            raise SessionFinished(
                _("This session is %(state)s: it can no longer be cancelled.")
                % {"state": session.get_state_display()}
            )
        if session.payment_id is not None:
            payment_cancel(payment=session.payment, now=now)  # PaymentStateConflict if paying
        _state_set(session, states.CANCELLED, now=now)
    return session


def sessions_expire(*, now: datetime, limit: int = 200) -> int:
    """Expire the open sessions whose time is up (and stop their payments); returns how
    many this run expired. Safe to run twice and concurrently: each session is brought up
    to date under its own lock."""
    due = list(
        PosSession.objects.filter(state__in=list(OPEN_STATES), expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:limit]
    )
    expired = 0
    for session_id in due:
        # Count only what this run expired: a concurrent run (or a poller) may have done it.
        session, changed = _sync(session_id=session_id, now=now)
        if changed and session.state == PosSession.State.EXPIRED:
            expired += 1
    return expired
