"""Give `make run` a test-mode customer with a Tranche card, and print how to sign in as them
(idempotent; run by `make run` after demo_terminal).

The customer signed up with a verified phone, completed the profile, added the sandbox's
frictionless card (4970 1000 0000 0006) as the funding card through the processor interface
and 3-D Secure, and asked for the card (``services.cards.card_request``). A second run finds
all of it and issues nothing more. The card's number stays at the issuer: it is never
printed (the portal shows it on request).
"""

from __future__ import annotations

from datetime import date, datetime

from django.core.management.base import BaseCommand
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.common.money import format_eur, to_cents
from apps.issuing.models import FundingCardSetup
from apps.issuing.services.cards import (
    CardAlreadyIssued,
    card_request,
    funding_setup,
    live_card,
    profile_complete,
)
from apps.issuing.services.funding import funding_setup_complete, funding_setup_start
from apps.payments.models import Card, Customer
from apps.payments.processor import card_processor

DEMO_EMAIL = "carte.demo@tranche.localhost"
DEMO_PHONE = "+33600000042"
DEMO_PHONE_SHOWN = "06 00 00 00 42"
DEMO_PROFILE = {
    "first_name": "Camille",
    "last_name": "Demo",
    "birth_date": date(1990, 5, 17),
    "address": {
        "line1": "8 rue du Faubourg Poissonnière",
        "line2": "",
        "postal_code": "75010",
        "city": "Paris",
        "country": "FR",
    },
}
FUNDING_CARD_NUMBER = "4970100000000006"  # CB (Visa), France, debit: 3-D Secure frictionless


def demo_customer(*, now: datetime) -> Customer:
    """The demo customer in test mode, with a verified phone and a complete profile."""
    customer = Customer.objects.filter(livemode=False, email=DEMO_EMAIL).first()
    if customer is None:
        try:
            with transaction.atomic():
                customer = Customer.objects.create(
                    livemode=False,
                    email=DEMO_EMAIL,
                    phone=DEMO_PHONE,
                    phone_verified_at=now,
                    created_at=now,
                    updated_at=now,
                    **DEMO_PROFILE,
                )
        except IntegrityError:  # another run created it meanwhile
            customer = Customer.objects.get(livemode=False, email=DEMO_EMAIL)
    if not (customer.phone and customer.phone_verified_at) or not profile_complete(customer):
        # Someone emptied the demo profile (the portal's erasure, a test by hand): restore it.
        Customer.objects.filter(pk=customer.pk).update(
            phone=DEMO_PHONE, phone_verified_at=now, erased_at=None, updated_at=now, **DEMO_PROFILE
        )
        customer.refresh_from_db()
    return customer


def demo_funding_card(*, customer: Customer, now: datetime) -> Card:
    """The demo customer's funding card, authenticated; added once, as the portal does it
    (tokenised at the sandbox processor, then 3-D Secure, frictionless for this card)."""
    setup = funding_setup(customer)
    if (
        setup is not None
        and setup.status == FundingCardSetup.Status.AUTHENTICATED
        and setup.card.detached_at is None
    ):
        return setup.card
    details = card_processor().tokenise(
        number=FUNDING_CARD_NUMBER, exp_month=12, exp_year=now.year + 3, cvc="123", livemode=False
    )
    setup, _ = funding_setup_start(customer=customer, card=details, now=now)
    setup = funding_setup_complete(
        setup_id=setup.public_id,
        customer=customer,
        reference=setup.three_ds_reference,
        now=now,
    )
    return setup.card


class Command(BaseCommand):
    help = "Create (once) a test customer with a Tranche card and print how to sign in as them."

    def add_arguments(self, parser):
        parser.add_argument("--port", default=None, help="port shown in the printed URLs")

    def handle(self, *args, **options):
        now = timezone.now()
        customer = demo_customer(now=now)
        card = live_card(customer)
        refused: list[str] = []
        if card is None:
            demo_funding_card(customer=customer, now=now)
            try:
                decision, card = card_request(customer=customer, now=now)
            except CardAlreadyIssued:  # a concurrent run issued it
                card = live_card(customer)
            else:
                refused = list(decision.reasons)
        base = f"http://127.0.0.1:{options.get('port') or '8000'}"
        if card is not None:
            shown = f"•••• {card.last4}, {card.state}, limit {format_eur(to_cents(card.limit))} EUR"
        else:
            shown = f"refused: {', '.join(refused)}"
        self.stdout.write(
            "\n".join(
                [
                    f"  Tranche card:    {base}/portal/card/ ({customer.first_name} "
                    f"{customer.last_name}, card {shown})",
                    " " * 19 + f"sign in at {base}/portal/sign-in?mode=test with "
                    f"{DEMO_PHONE_SHOWN} (code in /dev/outbox)",
                    " " * 19 + f"or sign up anew at {base}/portal/sign-up?mode=test",
                    "",
                ]
            )
        )
