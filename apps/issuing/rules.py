"""The real-time decision on a purchase made with a Tranche card. Pure.

The issuer asks at every purchase; Tranche answers within the card network's deadline.
A purchase is approved only when every rule below holds; otherwise it is declined with the
first code that applies (the order is the table's):

- the card is active (not frozen, replaced or closed);
- the amount is in euros, at least ``MIN_PURCHASE_CENTS`` (a third of it is charged now);
- the shop's category is not one credit is never given for (cash, quasi-cash, gambling,
  money transfers, securities): ``BLOCKED_CATEGORIES``;
- at most ``MAX_PURCHASES_PER_DAY`` approved purchases in the last 24 hours (a stolen
  card's pattern);
- the customer has no plan late or in default;
- the funding card can still be charged (not detached, valid for the plan's 3 months);
- the amount fits in what is left of the limit (the limit minus what the card's open plans
  still owe and the purchases being decided).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

RULES_VERSION = "card-purchase-2026-11"
MIN_PURCHASE_CENTS = 10_00
MAX_PURCHASES_PER_DAY = 5
CURRENCY = "EUR"
# ISO 18245 merchant category codes.
BLOCKED_CATEGORIES = frozenset(
    {
        "4829",  # money transfers
        "6010",  # cash at a bank counter
        "6011",  # cash machines
        "6051",  # quasi-cash: foreign currency, crypto-assets, money orders
        "6211",  # securities brokers
        "6540",  # loading stored-value cards
        "7995",  # gambling
    }
)

CARD_FROZEN = "card_frozen"
CARD_INACTIVE = "card_inactive"
CARD_UNKNOWN = "card_unknown"
CURRENCY_NOT_SUPPORTED = "currency_not_supported"
AMOUNT_TOO_SMALL = "amount_too_small"
CATEGORY_BLOCKED = "merchant_category_blocked"
TOO_MANY_PURCHASES = "too_many_purchases"
CUSTOMER_LATE = "customer_late"
FUNDING_CARD_UNUSABLE = "funding_card_unusable"
OVER_LIMIT = "over_limit"
# Decided outside the pure rules (services.authorisations):
FUNDING_CARD_DECLINED = "funding_card_declined"
FUNDING_CHARGE_IN_DOUBT = "funding_charge_in_doubt"
ALREADY_REVERSED = "already_reversed"
STILL_DECIDING = "still_deciding"
NOT_ELIGIBLE = "not_eligible"

DECLINE_MESSAGES = {
    CARD_FROZEN: _("Your card is frozen."),
    CARD_INACTIVE: _("This card was replaced or closed."),
    CARD_UNKNOWN: _("This card is unknown."),
    CURRENCY_NOT_SUPPORTED: _("Only purchases in euros can be split."),
    AMOUNT_TOO_SMALL: _("The purchase is below the minimum of 10 €."),
    CATEGORY_BLOCKED: _("Cash, gambling and money transfers cannot be split."),
    TOO_MANY_PURCHASES: _("Too many purchases today: try again tomorrow."),
    CUSTOMER_LATE: _("One of your plans has an unpaid instalment."),
    FUNDING_CARD_UNUSABLE: _("Your bank card can no longer pay your instalments."),
    OVER_LIMIT: _("The purchase is above what is left of your limit."),
    FUNDING_CARD_DECLINED: _("Your bank card declined the first instalment."),
    FUNDING_CHARGE_IN_DOUBT: _("Your bank did not answer in time."),
    ALREADY_REVERSED: _("The purchase had been cancelled."),
    STILL_DECIDING: _("The purchase was still being decided."),
    NOT_ELIGIBLE: _("The purchase cannot be split."),
}


@dataclass(frozen=True)
class PurchaseFacts:
    card_state: str  # VirtualCard.State
    amount_cents: int
    currency: str
    merchant_category: str
    available_cents: int
    approved_last_day: int
    customer_late: bool
    funding_card_usable: bool


def purchase_decline(facts: PurchaseFacts) -> str | None:
    """None to approve the purchase, or the code it is declined with."""
    if facts.card_state == "frozen":
        return CARD_FROZEN
    if facts.card_state != "active":
        return CARD_INACTIVE
    if facts.currency != CURRENCY:
        return CURRENCY_NOT_SUPPORTED
    if facts.amount_cents < MIN_PURCHASE_CENTS:
        return AMOUNT_TOO_SMALL
    if facts.merchant_category in BLOCKED_CATEGORIES:
        return CATEGORY_BLOCKED
    if facts.approved_last_day >= MAX_PURCHASES_PER_DAY:
        return TOO_MANY_PURCHASES
    if facts.customer_late:
        return CUSTOMER_LATE
    if not facts.funding_card_usable:
        return FUNDING_CARD_UNUSABLE
    if facts.amount_cents > facts.available_cents:
        return OVER_LIMIT
    return None
