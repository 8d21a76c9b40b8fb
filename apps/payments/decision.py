"""The credit decision: may this customer pay this purchase in instalments? Pure rules.

``decide(DecisionInput) -> Decision``: an outcome ``yes`` / ``maybe`` / ``no``, a score and every
reason that counted (stable code + customer-safe message), stamped with the version of the rules
that made it, so a past decision can be explained by the rules that made it.

This is the simple rule set the checkout ships with; the real model (history, velocity,
exposure, deny list) replaces ``RULES`` behind the same interface. The card and age rules
(card_rules.py) refuse before any decision is asked; what is left here is the amount and the
plan's length against what the customer already owes.

Test mode only: an email whose local part carries ``+scored_no`` or ``+scored_maybe``
(``jane+scored_no@example.com``) forces that outcome, so every branch of the checkout can be
reached with the sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

RULES_VERSION = "checkout-rules-2026-11"
YES, MAYBE, NO = "yes", "maybe", "no"
START_SCORE = 100
YES_FROM = 60  # a score of 60 or more is a yes
MAYBE_FROM = 40  # 40..59 asks for more information; below, no
# What one customer may owe Tranche at once across all their plans (cents).
EXPOSURE_LIMIT_CENTS = 500_000


@dataclass(frozen=True)
class DecisionInput:
    purchase_cents: int
    installments_count: int
    is_pay_later: bool
    customer_age: int
    card_funding: str
    email: str
    livemode: bool
    outstanding_cents: int = 0  # what the customer still owes on other plans


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    points: int = 0


@dataclass(frozen=True)
class Decision:
    outcome: str
    score: int
    reasons: tuple[Reason, ...] = field(default_factory=tuple)
    rules_version: str = RULES_VERSION


def _test_override(data: DecisionInput) -> str | None:
    if data.livemode:
        return None
    local = data.email.partition("@")[0].lower()
    for outcome in (NO, MAYBE):
        if f"+scored_{outcome}" in local:
            return outcome
    return None


def decide(data: DecisionInput) -> Decision:
    """The decision on one purchase (see the module's docstring)."""
    forced = _test_override(data)
    if forced is not None:
        reason = Reason("test_mode_override", str(_("Outcome chosen by the test email address.")))
        return Decision(outcome=forced, score={NO: 0, MAYBE: 50}[forced], reasons=(reason,))

    reasons: list[Reason] = []
    if data.outstanding_cents + data.purchase_cents > EXPOSURE_LIMIT_CENTS:
        reasons.append(
            Reason(
                "exposure_limit",
                str(_("This purchase would exceed what a customer may owe at once.")),
                -100,
            )
        )
    if data.installments_count > 4 and data.card_funding == "debit":
        reasons.append(
            Reason(
                "long_plan_debit_card",
                str(_("A long plan on a debit card needs a closer look.")),
                -15,
            )
        )
    if data.purchase_cents > 150_000 and data.customer_age < 21:
        reasons.append(
            Reason(
                "large_amount_young_customer",
                str(_("A large purchase for a young customer needs a closer look.")),
                -45,
            )
        )
    score = START_SCORE + sum(reason.points for reason in reasons)
    outcome = YES if score >= YES_FROM else MAYBE if score >= MAYBE_FROM else NO
    if not reasons:
        reasons.append(Reason("no_risk_found", str(_("No risk found."))))
    return Decision(outcome=outcome, score=score, reasons=tuple(reasons))
