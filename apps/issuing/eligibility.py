"""Who may have a Tranche card, and with what limit: the credit decision of a card request.

Pure: the facts are read by ``services.cards``; this module only judges them. The rule, as
the product states it: a card is refused when the eligibility conditions are not met, or
when the customer has not finished 3-D Secure on the bank card that funds it, and the
reasons are shown. The conditions:

- a verified mobile number (the account was created with it) and a complete profile (name,
  birth date, email, postal address);
- 18 or older;
- a funding bank card, accepted by the card rules (CB, Visa or Mastercard issued in an
  allowed country, not prepaid, virtual or with systematic authorisation, valid for the 3
  months a purchase's plan lasts), authenticated by 3-D Secure;
- no plan late or in default with Tranche, and not on the deny list.

The exposure limit (what the card's open plans may owe at most) grows with the plans the
customer has paid off: ``LIMITS``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

RULES_VERSION = "card-2026-11"
MINIMUM_AGE = 18
# (plans paid off at least, limit in cents): the highest that applies.
LIMITS: tuple[tuple[int, int], ...] = ((0, 300_00), (1, 600_00), (3, 1_000_00))

# The two groups the product names when a card is refused.
CONDITIONS = "conditions"
THREE_DS = "three_ds"

PHONE_NOT_VERIFIED = "phone_not_verified"
PROFILE_INCOMPLETE = "profile_incomplete"
UNDER_AGE = "under_age"
NO_FUNDING_CARD = "no_funding_card"
FUNDING_CARD_REFUSED = "funding_card_refused"
THREE_DS_NOT_COMPLETED = "three_ds_not_completed"
PLAN_LATE = "plan_late"
PLAN_IN_DEFAULT = "plan_in_default"
DENY_LISTED = "deny_listed"

REASONS: dict[str, tuple[str, object]] = {
    PHONE_NOT_VERIFIED: (CONDITIONS, _("Your mobile number is not verified.")),
    PROFILE_INCOMPLETE: (
        CONDITIONS,
        _("Your profile is incomplete: name, birth date, email and address are needed."),
    ),
    UNDER_AGE: (CONDITIONS, _("The Tranche card is for people aged 18 or over.")),
    NO_FUNDING_CARD: (CONDITIONS, _("Add the bank card that will pay your instalments.")),
    FUNDING_CARD_REFUSED: (
        CONDITIONS,
        _("Your bank card cannot fund the Tranche card (type, country or expiry date)."),
    ),
    THREE_DS_NOT_COMPLETED: (
        THREE_DS,
        _("You have not finished 3-D Secure to add your bank card to your Tranche account."),
    ),
    PLAN_LATE: (CONDITIONS, _("One of your Tranche plans has an unpaid instalment.")),
    PLAN_IN_DEFAULT: (CONDITIONS, _("One of your Tranche plans is in default.")),
    DENY_LISTED: (CONDITIONS, _("We cannot offer you the Tranche card.")),
}
GROUP_TITLES = {
    CONDITIONS: _("You do not meet the eligibility conditions of the Tranche card."),
    THREE_DS: _("You have not finished 3-D Secure to add your bank card to your Tranche account."),
}


@dataclass(frozen=True)
class CardFacts:
    phone_verified: bool
    profile_complete: bool
    age: int | None  # None: no birth date
    funding_card: bool
    funding_card_refused: bool  # the card rules refuse it (codes kept by the caller)
    funding_card_authenticated: bool  # 3-D Secure finished on it
    late_plans: int
    defaulted_plans: int
    deny_listed: bool
    paid_off_plans: int


@dataclass(frozen=True)
class CardVerdict:
    approved: bool
    reasons: tuple[str, ...]
    limit_cents: int


def limit_for(paid_off_plans: int) -> int:
    return max(cents for at_least, cents in LIMITS if paid_off_plans >= at_least)


def card_verdict(facts: CardFacts) -> CardVerdict:
    """Approve the card with its limit, or refuse it with every reason that applies."""
    reasons: list[str] = []
    if not facts.phone_verified:
        reasons.append(PHONE_NOT_VERIFIED)
    if not facts.profile_complete:
        reasons.append(PROFILE_INCOMPLETE)
    if facts.age is not None and facts.age < MINIMUM_AGE:
        reasons.append(UNDER_AGE)
    if not facts.funding_card:
        reasons.append(NO_FUNDING_CARD)
    elif facts.funding_card_refused:
        reasons.append(FUNDING_CARD_REFUSED)
    elif not facts.funding_card_authenticated:
        reasons.append(THREE_DS_NOT_COMPLETED)
    if facts.late_plans:
        reasons.append(PLAN_LATE)
    if facts.defaulted_plans:
        reasons.append(PLAN_IN_DEFAULT)
    if facts.deny_listed:
        reasons.append(DENY_LISTED)
    if reasons:
        return CardVerdict(approved=False, reasons=tuple(reasons), limit_cents=0)
    return CardVerdict(approved=True, reasons=(), limit_cents=limit_for(facts.paid_off_plans))


def reasons_shown(codes) -> list[dict]:
    """The refusal as the portal shows it: one entry per group the seeds name (conditions
    not met; 3-D Secure not finished), each with its reasons' messages."""
    groups: dict[str, list] = {}
    for code in codes:
        group, message = REASONS.get(code, (CONDITIONS, _("Another condition is not met.")))
        groups.setdefault(group, []).append(message)
    return [
        {"group": group, "title": GROUP_TITLES[group], "reasons": messages}
        for group, messages in groups.items()
    ]
