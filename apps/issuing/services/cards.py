"""The customer's Tranche card: asking for it, showing it, freezing it, replacing it.

``card_request`` reads the facts (``card_facts``), records the ``CardDecision`` and, when it
approves, issues the card at the issuer outside any transaction (its idempotency key names
the customer's n-th card, so a double click or a retried request issues one card) and
records it. The card's number and
CVC are only ever fetched for one page (``card_reveal``).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from apps.common.dates import add_months, business_date
from apps.common.errors import DomainError
from apps.common.money import to_money
from apps.issuing import eligibility
from apps.issuing.issuer import CardSecrets, card_issuer
from apps.issuing.models import CardDecision, FundingCardSetup, VirtualCard
from apps.issuing.services.authorisations import INSTALMENTS, LATE_STATES
from apps.payments import card_rules
from apps.payments.models import Card, Customer, DenyListEntry, Payment, PaymentState

logger = logging.getLogger(__name__)

PROFILE_ADDRESS_FIELDS = ("line1", "postal_code", "city", "country")


class CardAlreadyIssued(DomainError):
    code = "card_already_issued"
    http_status = 409
    default_message = _("You already have a Tranche card.")


class CardNotLive(DomainError):
    code = "card_not_live"
    http_status = 409
    default_message = _("This card was replaced or closed.")


class CardStateConflict(DomainError):
    code = "card_state_conflict"
    http_status = 409
    default_message = _("This card is already in that state.")


def live_card(customer: Customer) -> VirtualCard | None:
    return (
        VirtualCard.objects.filter(customer=customer, state__in=VirtualCard.LIVE_STATES)
        .select_related("funding_card")
        .first()
    )


def funding_setup(customer: Customer) -> FundingCardSetup | None:
    """The latest funding card the customer gave (it names the funding card)."""
    return (
        FundingCardSetup.objects.filter(customer=customer, livemode=customer.livemode)
        .select_related("card")
        .order_by("-created_at", "-pk")
        .first()
    )


def profile_complete(customer: Customer) -> bool:
    address = customer.address or {}
    return bool(
        customer.first_name
        and customer.last_name
        and customer.birth_date
        and customer.email
        and all(str(address.get(field) or "").strip() for field in PROFILE_ADDRESS_FIELDS)
    )


def funding_card_refusals(card: Card, *, now: datetime) -> list[str]:
    """The card rules' codes for a funding card: it must pay a purchase's 3 instalments."""
    refusals = card_rules.card_refusals(
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
    if card.detached_at is not None:
        return ["detached", *(refusal.code for refusal in refusals)]
    return [refusal.code for refusal in refusals]


def card_facts(customer: Customer, *, now: datetime) -> tuple[eligibility.CardFacts, dict]:
    """What a card request is decided on (and the same, as JSON, for the record)."""
    setup = funding_setup(customer)
    card = setup.card if setup is not None else None
    refusals = funding_card_refusals(card, now=now) if card is not None else []
    plans = Payment.objects.filter(customer=customer, livemode=customer.livemode)
    age = (
        card_rules.age_on(customer.birth_date, today=business_date(now))
        if customer.birth_date
        else None
    )
    deny_values = [value for value in (customer.email.lower(), customer.phone) if value]
    facts = eligibility.CardFacts(
        phone_verified=bool(customer.phone and customer.phone_verified_at),
        profile_complete=profile_complete(customer),
        age=age,
        funding_card=card is not None,
        funding_card_refused=bool(refusals),
        funding_card_authenticated=bool(
            setup is not None
            and setup.status == FundingCardSetup.Status.AUTHENTICATED
            and card.three_ds_authenticated_at is not None
        ),
        late_plans=plans.filter(state__in=LATE_STATES[:2]).count(),
        defaulted_plans=plans.filter(state=PaymentState.DEFAULT).count(),
        deny_listed=DenyListEntry.objects.filter(
            livemode=customer.livemode, value__in=deny_values, removed_at__isnull=True
        ).exists(),
        paid_off_plans=plans.filter(state=PaymentState.PAID).count(),
    )
    record = {
        "age": age,
        "phone_verified": facts.phone_verified,
        "profile_complete": facts.profile_complete,
        "funding_card": card.public_id if card is not None else None,
        "funding_card_refusals": refusals,
        "funding_card_authenticated": facts.funding_card_authenticated,
        "late_plans": facts.late_plans,
        "defaulted_plans": facts.defaulted_plans,
        "deny_listed": facts.deny_listed,
        "paid_off_plans": facts.paid_off_plans,
    }
    return facts, record


def card_request(*, customer: Customer, now: datetime) -> tuple[CardDecision, VirtualCard | None]:
    """Decide a card request; approved, the card is issued. Raises ``CardAlreadyIssued``."""
    with transaction.atomic():
        # One request at a time per customer: the row lock orders concurrent clicks.
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if live_card(customer) is not None:
            raise CardAlreadyIssued()
        facts, record = card_facts(customer, now=now)
        verdict = eligibility.card_verdict(facts)
        # The issuer's key names the customer's n-th card, not this decision: clicks that
        # queued on the lock above (none saw a card yet) issue one card between them, and a
        # request retried after a crash between the issuer's answer and the record finds it.
        cards_so_far = VirtualCard.objects.filter(customer=customer).count()
        key = f"vcard:customer:{customer.pk}:{cards_so_far}"
        decision = CardDecision.objects.create(
            customer=customer,
            livemode=customer.livemode,
            outcome=CardDecision.Outcome.APPROVED
            if verdict.approved
            else CardDecision.Outcome.REFUSED,
            reasons=list(verdict.reasons),
            limit=to_money(verdict.limit_cents),
            facts=record,
            rules_version=eligibility.RULES_VERSION,
            created_at=now,
        )
    if not verdict.approved:
        return decision, None
    # The funding card the decision was made on (a setup started since, in another tab,
    # has not been through 3-D Secure).
    funding_card_id = Card.objects.values_list("pk", flat=True).get(
        public_id=record["funding_card"]
    )
    card = _issue(customer, decision, funding_card_id=funding_card_id, idempotency_key=key, now=now)
    return decision, card


def _issue(
    customer: Customer,
    decision: CardDecision,
    *,
    funding_card_id: int,
    idempotency_key: str,
    now: datetime,
) -> VirtualCard:
    issued = card_issuer().card_issue(
        cardholder_name=f"{customer.first_name} {customer.last_name}".strip(),
        livemode=customer.livemode,
        idempotency_key=idempotency_key,
    )
    try:
        with transaction.atomic():
            return VirtualCard.objects.create(
                customer=customer,
                livemode=customer.livemode,
                issuer_token=issued.token,
                last4=issued.last4,
                exp_month=issued.exp_month,
                exp_year=issued.exp_year,
                funding_card_id=funding_card_id,
                decision=decision,
                limit=decision.limit,
                created_at=now,
            )
    except IntegrityError:  # a concurrent request recorded it (or another live card) first
        card = VirtualCard.objects.filter(issuer_token=issued.token).first()
        if card is None or card.decision_id != decision.pk:
            raise CardAlreadyIssued() from None
        return card


def card_reveal(*, card: VirtualCard, now: datetime) -> CardSecrets:
    """The card's number, expiry and CVC for one page (the caller sends no-store)."""
    card = VirtualCard.objects.get(pk=card.pk)  # as it is now, not as the caller read it
    if not card.is_live:
        raise CardNotLive()
    secrets = card_issuer().card_reveal(token=card.issuer_token)
    VirtualCard.objects.filter(pk=card.pk).update(details_shown_at=now)
    logger.info("Card %s details shown to its holder", card.public_id)
    return secrets


def _locked(card: VirtualCard) -> VirtualCard:
    return VirtualCard.objects.select_for_update(of=("self",)).get(pk=card.pk)


def card_freeze(*, card: VirtualCard, now: datetime) -> VirtualCard:
    """Purchases are declined until unfrozen (Tranche declines them whatever the issuer
    does; the issuer is told after commit, so a failure there changes nothing here)."""
    with transaction.atomic():
        card = _locked(card)
        if card.state != VirtualCard.State.ACTIVE:
            raise CardNotLive() if not card.is_live else CardStateConflict()
        card.state = VirtualCard.State.FROZEN
        card.frozen_at = now
        card.save(update_fields=["state", "frozen_at"])
    _tell_issuer("card_freeze", card)
    return card


def card_unfreeze(*, card: VirtualCard, now: datetime) -> VirtualCard:
    with transaction.atomic():
        card = _locked(card)
        if card.state != VirtualCard.State.FROZEN:
            raise CardNotLive() if not card.is_live else CardStateConflict()
        card.state = VirtualCard.State.ACTIVE
        card.frozen_at = None
        card.save(update_fields=["state", "frozen_at"])
    _tell_issuer("card_unfreeze", card)
    return card


def card_replace(*, card: VirtualCard, now: datetime) -> VirtualCard:
    """A new number (a lost phone, a leaked number): the new card keeps the limit, the
    decision and the funding card; the old one stops the moment the new one is recorded
    (its plans go on) and is closed at the issuer after. The new card is issued first, under
    a key of the old one: if the issuer fails, nothing changed and a retry gets the same
    new card, so the customer is never left without one."""
    old = _locked_read(card)
    if not old.is_live:
        raise CardNotLive()
    issued = card_issuer().card_issue(
        cardholder_name=f"{old.customer.first_name} {old.customer.last_name}".strip(),
        livemode=old.livemode,
        idempotency_key=f"vcard:replace:{old.public_id}",
    )
    with transaction.atomic():
        old = _locked(card)
        if not old.is_live:
            raise CardNotLive()
        old.state = VirtualCard.State.REPLACED
        old.closed_at = now
        old.save(update_fields=["state", "closed_at"])
        new = VirtualCard.objects.create(
            customer_id=old.customer_id,
            livemode=old.livemode,
            issuer_token=issued.token,
            last4=issued.last4,
            exp_month=issued.exp_month,
            exp_year=issued.exp_year,
            funding_card_id=old.funding_card_id,
            decision_id=old.decision_id,
            limit=old.limit,
            replaces=old,
            created_at=now,
        )
    _tell_issuer("card_close", old)
    return new


def _locked_read(card: VirtualCard) -> VirtualCard:
    return VirtualCard.objects.select_related("customer").get(pk=card.pk)


def _tell_issuer(action: str, card: VirtualCard) -> None:
    try:
        getattr(card_issuer(), action)(token=card.issuer_token)
    except Exception:
        logger.exception(
            "Issuer %s failed for card %s (Tranche's state stands)", action, card.public_id
        )
