"""The card programme's account: the merchant every Tranche-card purchase is booked to.

A card purchase is a payment like any other (instalments, debits, reminders, receipts,
portal actions), so it needs a merchant. It is Tranche's own account, never listed in the
partner directory: its balance is what Tranche owes the card issuer for the purchases
(the basket minus the interchange the issuer passes back, booked as its fee), and its
payouts go to the programme's settlement account at the issuer.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.issuing.rules import MIN_PURCHASE_CENTS
from apps.merchants.fee_plan_specs import parse_fee_plan_specs
from apps.merchants.models import Merchant
from apps.merchants.services import fee_plans_replace, merchant_activate, merchant_create

PROGRAMME_MERCHANT_ID = "merchant_tranche_card"
PROGRAMME_NAME = "Carte Tranche"
MAX_PURCHASE_CENTS = 1_000_00  # the highest card limit (apps.issuing.eligibility.LIMITS)


def programme_fee_plans() -> list[dict]:
    return parse_fee_plan_specs(
        [
            {
                "kind": "general",
                "installments_count": 3,
                "min_purchase_amount": MIN_PURCHASE_CENTS,
                "max_purchase_amount": MAX_PURCHASE_CENTS,
                "merchant_fee_variable": settings.ISSUING_INTERCHANGE_BPS,
            }
        ]
    )


def programme_merchant(*, now: datetime) -> Merchant:
    """The programme's merchant, created (active, with its one 3x plan) the first time."""
    merchant = Merchant.objects.filter(public_id=PROGRAMME_MERCHANT_ID).first()
    if merchant is not None:
        return merchant
    try:
        with transaction.atomic():
            merchant = merchant_create(
                legal_name=PROGRAMME_NAME,
                country="FR",
                contact_email=parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
                or "cards@tranche.localhost",
                now=now,
            )
            Merchant.objects.filter(pk=merchant.pk).update(
                public_id=PROGRAMME_MERCHANT_ID,
                listed_in_directory=False,
                payout_iban=settings.ISSUING_SETTLEMENT_IBAN,
                payout_bic=settings.ISSUING_SETTLEMENT_BIC,
                ipn_callback_url="",
            )
            merchant.refresh_from_db()
            merchant = merchant_activate(merchant=merchant, now=now)
            fee_plans_replace(merchant=merchant, specs=programme_fee_plans())
    except IntegrityError:  # created meanwhile by a concurrent first purchase
        return Merchant.objects.get(public_id=PROGRAMME_MERCHANT_ID)
    return merchant
