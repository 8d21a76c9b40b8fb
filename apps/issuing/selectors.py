"""What the portal's card pages read: the customer's live card, what is left of its limit,
the checklist of a card request, and the card's recent purchases. Always by customer and
mode: another customer's card is never reached."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet, Sum

from apps.common.dates import business_date
from apps.common.money import decimal_to_cents, to_cents
from apps.issuing import eligibility
from apps.issuing.models import CardAuthorisation, CardDecision, FundingCardSetup, VirtualCard
from apps.issuing.services.authorisations import OWING_STATES, UNPAID
from apps.issuing.services.cards import funding_setup, live_card, profile_complete
from apps.payments import card_rules
from apps.payments.models import Customer, Instalment, Payment

RECENT_PURCHASES = 20


def card_owing_cents(customer_id: int, *, livemode: bool) -> int:
    """What the customer's card plans still owe (their unpaid instalments' purchase share,
    a plan being decided counting in full): what the card's limit is used by. The
    purchase rules count it the same way (``services.authorisations``)."""
    owing = Instalment.objects.filter(
        payment__customer_id=customer_id,
        payment__livemode=livemode,
        payment__origin=Payment.Origin.CARD,
        payment__state__in=OWING_STATES,
        state__in=UNPAID,
    ).aggregate(total=Sum("purchase_amount"))["total"]
    return decimal_to_cents(owing) if owing else 0


def card_available_cents(card: VirtualCard) -> int:
    """What is left of the card's limit for new purchases (never below 0)."""
    owing = card_owing_cents(card.customer_id, livemode=card.livemode)
    return max(to_cents(card.limit) - owing, 0)


def customer_live_card(customer: Customer) -> VirtualCard | None:
    """The customer's active or frozen card in their mode, with its funding card."""
    return live_card(customer)


def customer_decision(customer: Customer, public_id: str) -> CardDecision | None:
    """One of the customer's card decisions by its public id (None for anyone else's)."""
    if not public_id:
        return None
    return CardDecision.objects.filter(
        customer=customer, livemode=customer.livemode, public_id=public_id
    ).first()


def card_purchases(customer: Customer, *, limit: int = RECENT_PURCHASES) -> QuerySet:
    """The latest purchases asked about with any of the customer's cards, newest first
    (a reversal that came before its purchase, with no shop yet, is left out)."""
    cards = VirtualCard.objects.filter(customer=customer, livemode=customer.livemode)
    return (
        CardAuthorisation.objects.filter(card__in=cards, requested_at__isnull=False)
        .select_related("payment")
        .order_by("-created_at", "-pk")[:limit]
    )


@dataclass(frozen=True)
class Checklist:
    """What a card request needs, each item done or not, for the page."""

    phone_verified: bool
    profile_complete: bool
    adult: bool
    funding_card: bool
    three_ds_done: bool
    setup: FundingCardSetup | None

    @property
    def complete(self) -> bool:
        return all(
            (
                self.phone_verified,
                self.profile_complete,
                self.adult,
                self.funding_card,
                self.three_ds_done,
            )
        )


def card_checklist(customer: Customer, *, now: datetime) -> Checklist:
    """The eligibility checklist shown before a card request (the decision itself reads
    more: late plans, the deny list; ``services.cards.card_facts``)."""
    setup = funding_setup(customer)
    age = (
        card_rules.age_on(customer.birth_date, today=business_date(now))
        if customer.birth_date
        else None
    )
    return Checklist(
        phone_verified=bool(customer.phone and customer.phone_verified_at),
        profile_complete=profile_complete(customer),
        adult=age is not None and age >= eligibility.MINIMUM_AGE,
        funding_card=setup is not None,
        three_ds_done=bool(
            setup is not None
            and setup.status == FundingCardSetup.Status.AUTHENTICATED
            and setup.card.three_ds_authenticated_at is not None
        ),
        setup=setup,
    )
