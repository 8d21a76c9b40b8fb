"""The bank card that funds a customer's Tranche card, added through 3-D Secure.

``funding_setup_start`` checks the card rules (the card must pay a purchase's 3 instalments:
CB, Visa or Mastercard from an allowed country, not prepaid, virtual or with systematic
authorisation, valid for 3 months), saves the card (tokenised by the caller, outside any
transaction: its number and CVC never reach this module), records a ``FundingCardSetup``
and starts 3-D Secure outside any transaction; the browser goes to the bank's page, or
straight back when frictionless. ``funding_setup_complete`` asks the processor for the
result (never trusting the URL) and records it, once, whatever the browser replays.

The latest setup names the funding card (``services.cards.funding_setup``). When the
customer already has a live Tranche card, a newly authenticated funding card becomes that
card's funding card: its future purchases are charged to it. The plans of past purchases
keep the card they were made with (changing those is the portal's "change card", per plan).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.common.dates import add_months, business_date
from apps.common.errors import DomainError
from apps.issuing.models import FundingCardSetup, VirtualCard
from apps.issuing.services.authorisations import INSTALMENTS
from apps.payments import card_rules
from apps.payments.links import absolute
from apps.payments.models import Card, Customer
from apps.payments.processor import CardDetails, ProcessorError, card_processor
from apps.payments.services.checkout import CardRefused, ThreeDSFailed

logger = logging.getLogger(__name__)

# 3-D Secure is asked for a small amount: nothing is charged now (the processor refuses 0).
FUNDING_THREE_DS_CENTS = 100
AUTHENTICATED = "authenticated"
CHALLENGE = "challenge"
FAILED = "failed"

S = FundingCardSetup.Status


class FundingSetupNotFound(DomainError):
    code = "funding_setup_not_found"
    http_status = 404
    default_message = _("This bank card was not found.")


class FundingSetupDone(DomainError):
    code = "funding_setup_done"
    http_status = 409
    default_message = _("This bank card is already added to your Tranche account.")


class FundingSetupWaiting(DomainError):
    code = "funding_setup_waiting"
    http_status = 409
    default_message = _(
        "Your bank has not confirmed this card yet (3-D Secure). Finish on your bank's page, "
        "or add the card again."
    )


class FundingSetupMismatch(DomainError):
    code = "funding_setup_mismatch"
    http_status = 409
    default_message = _(
        "This answer from your bank does not belong to this card. Please add the card again."
    )


def funding_setup_return_path(setup: FundingCardSetup) -> str:
    """Where 3-D Secure sends the browser back (``?threeds=<reference>`` is added)."""
    return reverse("issuing:funding-3ds", args=[setup.public_id])


def funding_card_refusals_for(card: CardDetails, *, now: datetime) -> list[card_rules.Refusal]:
    """What the card rules refuse of a card about to fund the Tranche card (the same rules
    as ``services.cards.funding_card_refusals``, before the card is saved)."""
    return card_rules.card_refusals(
        card_rules.CardFacts(
            brand=card.brand,
            funding=card.funding,
            product=card.product,
            issuer_country=card.issuer_country,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
        ),
        last_due_date=add_months(business_date(now), INSTALMENTS),
        allowed_countries=frozenset(settings.CARD_ISSUER_COUNTRIES),
    )


def funding_setup_start(
    *, customer: Customer, card: CardDetails, now: datetime
) -> tuple[FundingCardSetup, str]:
    """Save a tokenised card as the customer's funding card and start 3-D Secure on it.

    Returns the setup and where to send the browser: the bank's page, or the return URL
    with ``?threeds=<reference>`` when frictionless. Raises ``CardRefused`` (the card rules,
    with the reasons; nothing saved), ``ThreeDSFailed`` and the processor's errors (the
    setup is then failed)."""
    refusals = funding_card_refusals_for(card, now=now)
    if refusals:
        raise CardRefused(refusals)
    with transaction.atomic():
        saved = Card.objects.create(
            customer=customer,
            livemode=customer.livemode,
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
        setup = FundingCardSetup.objects.create(
            customer=customer, livemode=customer.livemode, card=saved, created_at=now
        )
    return_path = funding_setup_return_path(setup)
    try:
        started = card_processor().three_ds_start(
            token=saved.processor_token,
            amount_cents=FUNDING_THREE_DS_CENTS,
            return_url=absolute(return_path),
            livemode=customer.livemode,
        )
    except ProcessorError:
        FundingCardSetup.objects.filter(pk=setup.pk, status=S.STARTED).update(
            status=S.FAILED, completed_at=now
        )
        raise
    failed = started.status == FAILED
    fields: dict = {"three_ds_reference": started.reference}
    if failed:
        fields |= {"status": S.FAILED, "completed_at": now}
    FundingCardSetup.objects.filter(pk=setup.pk, status=S.STARTED).update(**fields)
    for name, value in fields.items():
        setattr(setup, name, value)
    if failed:
        raise ThreeDSFailed()
    if started.status == CHALLENGE:
        return setup, started.challenge_url
    return setup, f"{return_path}?threeds={started.reference}"


def funding_setup_complete(
    *, setup_id: str, customer: Customer, reference: str, now: datetime
) -> FundingCardSetup:
    """The browser is back from 3-D Secure: record the processor's answer, once.

    ``setup_id`` is the setup's public id. Authenticated, the card is marked so and, when
    this setup is still the latest and the customer has a live Tranche card, it becomes that
    card's funding card. Raises ``FundingSetupNotFound`` (another customer's),
    ``FundingSetupMismatch`` (a reference that is not this setup's), ``FundingSetupDone``
    (a replay), ``FundingSetupWaiting`` (the bank has no answer yet) and ``ThreeDSFailed``
    (failed now, or before)."""
    setup = _setup_open(setup_id, customer=customer)
    if not reference or reference != setup.three_ds_reference:
        raise FundingSetupMismatch()
    status = card_processor().three_ds_result(reference=reference)
    if status == CHALLENGE:
        raise FundingSetupWaiting()
    with transaction.atomic():
        setup = _setup_locked(setup_id, customer=customer)
        setup.completed_at = now
        if status != AUTHENTICATED:
            setup.status = S.FAILED
        else:
            setup.status = S.AUTHENTICATED
            Card.objects.filter(pk=setup.card_id).update(three_ds_authenticated_at=now)
            _fund_live_card(setup)
        setup.save(update_fields=["status", "completed_at"])
    if setup.status == S.FAILED:
        raise ThreeDSFailed()
    logger.info("Funding card setup %s authenticated", setup.public_id)
    return setup


def _fund_live_card(setup: FundingCardSetup) -> None:
    """The live card's future purchases are charged to the newly authenticated card, unless
    the customer has given another card since (the latest setup names the funding card)."""
    latest = (
        FundingCardSetup.objects.filter(customer_id=setup.customer_id, livemode=setup.livemode)
        .order_by("-created_at", "-pk")
        .values_list("pk", flat=True)
        .first()
    )
    if latest != setup.pk:
        return
    card = (
        VirtualCard.objects.select_for_update(of=("self",))
        .filter(
            customer_id=setup.customer_id,
            livemode=setup.livemode,
            state__in=VirtualCard.LIVE_STATES,
        )
        .first()
    )
    if card is not None and card.funding_card_id != setup.card_id:
        card.funding_card_id = setup.card_id
        card.save(update_fields=["funding_card"])


def _setup_open(setup_id: str, *, customer: Customer) -> FundingCardSetup:
    setup = FundingCardSetup.objects.filter(public_id=setup_id).first()
    if setup is None or setup.customer_id != customer.pk:
        raise FundingSetupNotFound()
    _check_open(setup)
    return setup


def _setup_locked(setup_id: str, *, customer: Customer) -> FundingCardSetup:
    setup = (
        FundingCardSetup.objects.select_for_update()
        .filter(public_id=setup_id, customer=customer)
        .first()
    )
    if setup is None:
        raise FundingSetupNotFound()
    _check_open(setup)
    return setup


def _check_open(setup: FundingCardSetup) -> None:
    if setup.status == S.AUTHENTICATED:
        raise FundingSetupDone()
    if setup.status == S.FAILED:
        raise ThreeDSFailed()
