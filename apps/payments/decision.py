"""The credit decision: may this customer pay this purchase in instalments? Pure scoring.

``decide(Features, RuleSet) -> Decision``: an outcome ``yes`` / ``maybe`` / ``no``, a score,
every reason that counted (stable code, plain-words message, points, category) and, for a
``maybe``, the extra information that could change it (``asks``: phone, then identity, then
bank data). No database here: services/scoring.py gathers the features.

The model is explicit (docs/credit-decision.md): a score starts at ``start`` and each rule
that matches adds its points (negative for risk, positive for good history). Rules are code;
their weights, thresholds and limits are data (``RuleSet.rules``, stored as versioned
DecisionRuleSet rows that operators edit), so a past decision is explained by the version that
made it. Every rule belongs to a category:

- ``fraud``: doubts about who is paying (velocity, mismatched countries, odd email). An
  approved identity document offsets them (up to ``identity_bonus``).
- ``credit``: doubts about the ability to repay (amount, length, exposure, age). Bank data
  showing enough repayment capacity offsets them (up to ``bank_bonus``); bank data showing too
  little refuses.
- ``history``: the customer's record with Tranche (paid plans add points, late ones remove).
- ``block``: refuses whatever the score (deny list, exposure limit, a default, a rejected
  identity document, no repayment capacity).

Outcome: any ``block`` reason is a no. A score at or above ``yes_from`` is a yes, once the phone
is verified (``require_verified_phone``: every customer proves their phone once; a returning
customer with the same verified phone is not asked again). Between ``maybe_from`` and
``yes_from`` it is a maybe when the information not yet given could still lift the score to
``yes_from``; otherwise, and below ``maybe_from``, a no.

Test mode only: an email whose local part carries ``+scored_no`` refuses; ``+scored_maybe``
(or ``+maybe_identity``) adds a fraud doubt an identity document lifts; ``+maybe_bank`` adds a
credit doubt bank data lifts. So every branch of the checkout can be reached with the sandbox.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

YES, MAYBE, NO = "yes", "maybe", "no"
FRAUD, CREDIT, HISTORY, BLOCK, CONTACT = "fraud", "credit", "history", "block", "contact"
PHONE, IDENTITY, BANK = "phone", "identity", "bank"

# The rules Tranche ships with: the first version, and what a fresh database starts from.
DEFAULT_RULES: dict[str, Any] = {
    "version": "2026-11-v1",
    "start": 100,
    "yes_from": 70,
    "maybe_from": 30,
    "require_verified_phone": True,
    "identity_bonus": 50,
    "bank_bonus": 50,
    "exposure_limit_cents": 500_000,
    "served_countries": ["FR", "BE", "ES", "DE", "IT", "NL", "LU", "PT", "AT", "IE"],
    "disposable_email_domains": [
        "yopmail.com",
        "yopmail.fr",
        "mailinator.com",
        "guerrillamail.com",
        "10minutemail.com",
        "trashmail.com",
        "tempmail.com",
        "temp-mail.org",
        "jetable.org",
        "getnada.com",
        "sharklasers.com",
        "dispostable.com",
    ],
    # code: {"points": int, ...thresholds}. A rule with 0 points is off.
    "rules": {
        # fraud
        "card_country_differs": {"points": -15},
        "shipping_country_differs": {"points": -15},
        "shipping_address_differs": {"points": -5},
        "email_disposable": {"points": -30},
        "email_many_digits": {"points": -10, "digits": 6},
        "phone_foreign": {"points": -15},
        "velocity_customer_payments": {"points": -20, "max": 3, "hours": 24},
        "velocity_customer_cards": {"points": -25, "max": 2, "days": 7},
        "velocity_card_customers": {"points": -40, "max": 1, "days": 30},
        "velocity_phone_customers": {"points": -30, "max": 2},
        "velocity_device_customers": {"points": -30, "max": 2, "hours": 24},
        "merchant_guest_new_customer": {"points": -5},
        "merchant_returning_customer": {"points": 10, "orders": 2},
        # credit
        "amount_large": {"points": -10, "cents": 100_000},
        "amount_very_large": {"points": -15, "cents": 200_000},
        "long_plan": {"points": -10, "installments": 10},
        "long_plan_debit_card": {"points": -10, "installments": 5},
        "young_customer_large_amount": {"points": -25, "age_under": 21, "cents": 50_000},
        "exposure_high": {"points": -20, "share_bps": 4_000},
        "many_open_plans": {"points": -30, "plans": 2},
        "bank_gambling": {"points": -40},
        "bank_heavy_existing_credit": {"points": -30},
        "bank_frequent_overdraft": {"points": -20},
        "bank_irregular_income": {"points": -5},
        # history
        "new_customer": {"points": -5},
        "paid_plans": {"points": 5, "max_points": 20},
        "late_now": {"points": -45},
    },
}

_TEST_POINTS = -45  # a test-mode doubt: a maybe that the matching information lifts


@dataclass(frozen=True)
class Features:
    """Everything the decision looks at, gathered by services/scoring.py."""

    livemode: bool
    purchase_cents: int
    installments_count: int
    is_pay_later: bool
    largest_instalment_cents: int
    customer_age: int | None
    email: str
    phone_country: str  # "" when unknown
    billing_country: str
    shipping_country: str
    shipping_differs: bool  # another address than the billing one
    card_funding: str
    card_issuer_country: str
    # The customer's history with Tranche (other plans, this mode).
    paid_plans: int = 0
    open_plans: int = 0
    outstanding_cents: int = 0  # still owed on other plans (and about to be)
    late_instalments: int = 0  # instalments in incident now
    defaulted_plans: int = 0
    # Velocity.
    customer_payments_recent: int = 0  # this customer's scored payments within the window
    customer_cards_recent: int = 0  # cards this customer added within the window
    card_customers_recent: int = 1  # customers who used this card (fingerprint), this one too
    phone_customers_recent: int = 1  # customers with this phone, this one too
    device_customers_recent: int = 1  # customers seen on this device, this one too
    # What the merchant told (website_customer_details).
    merchant_new_customer: bool | None = None
    merchant_guest: bool | None = None
    merchant_previous_orders: int = 0
    # The deny list's matches: "email", "phone", "card", "device".
    denied: tuple[str, ...] = ()
    # Extra information already given.
    phone_verified: bool = False
    # "" (none finished), "pending", "approved", "rejected", "exhausted" (no photos left)
    identity: str = ""
    bank: BankFacts | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["denied"] = list(self.denied)
        return data


@dataclass(frozen=True)
class BankFacts:
    """What the analysis of the customer's bank account found (apps/verification)."""

    # "analysed", "holder_mismatch" (analysed, someone else's account), "failed",
    # "cancelled", "started"
    status: str
    repayment_capacity_cents: int = 0
    monthly_income_cents: int = 0
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    points: int = 0
    category: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "points": self.points,
            "category": self.category,
        }


@dataclass(frozen=True)
class Decision:
    outcome: str
    score: int
    reasons: tuple[Reason, ...] = field(default_factory=tuple)
    asks: tuple[str, ...] = ()
    rules_version: str = DEFAULT_RULES["version"]


@dataclass(frozen=True)
class RuleSet:
    """A version of the rules, as stored (see DEFAULT_RULES for the shape)."""

    data: dict[str, Any]

    @property
    def version(self) -> str:
        return self.data["version"]

    def rule(self, code: str) -> dict[str, Any]:
        return self.data["rules"].get(code) or {"points": 0}

    def points(self, code: str) -> int:
        return int(self.rule(code).get("points", 0))


DEFAULT_RULE_SET = RuleSet(DEFAULT_RULES)


# The plain-words text of every reason, shown to customers and operators in their language.
REASON_TEXTS = {
    "card_country_differs": _("Your card was issued in another country than your address."),
    "shipping_country_differs": _("The delivery country is not the country of your address."),
    "shipping_address_differs": _("The delivery address is not your billing address."),
    "email_disposable": _("The email address is a disposable one."),
    "email_many_digits": _("The email address looks generated."),
    "phone_foreign": _("The phone number is from a country we do not serve."),
    "velocity_customer_payments": _("Several purchases were made in a short time."),
    "velocity_customer_cards": _("Several cards were added in a short time."),
    "velocity_card_customers": _("This card was used by other people recently."),
    "velocity_phone_customers": _("This phone number is used by other customers."),
    "velocity_device_customers": _("This device was used by other people recently."),
    "merchant_guest_new_customer": _("The shop does not know you yet (guest order)."),
    "merchant_returning_customer": _("You are a returning customer of the shop."),
    "amount_large": _("The purchase amount is high."),
    "amount_very_large": _("The purchase amount is very high."),
    "long_plan": _("The plan is long."),
    "long_plan_debit_card": _("A long plan on a debit card."),
    "young_customer_large_amount": _("A large purchase at a young age."),
    "exposure_high": _("You already owe a large amount on other plans."),
    "exposure_limit": _("This purchase would exceed what one customer may owe at once."),
    "many_open_plans": _("You already have several plans in progress."),
    "new_customer": _("It is your first purchase with Tranche."),
    "paid_plans": _("You paid your previous plans on time."),
    "late_now": _("An instalment of another plan is late."),
    "defaulted_before": _("A previous plan was not repaid."),
    "deny_listed": _("Your details match an account we no longer lend to."),
    "phone_unverified": _("Your phone number is not verified yet."),
    "identity_verified": _("Your identity document was verified."),
    "identity_rejected": _("Your identity document could not be verified."),
    "bank_capacity_confirmed": _("Your bank data shows you can repay this plan."),
    "bank_capacity_insufficient": _("Your bank data shows the monthly payments are too high."),
    "bank_gambling": _("Your bank data shows significant gambling spending."),
    "bank_heavy_existing_credit": _("Your bank data shows large repayments of other credits."),
    "bank_frequent_overdraft": _("Your account is often overdrawn."),
    "bank_irregular_income": _("Your income varies from month to month."),
    "bank_holder_mismatch": _("The bank account connected is not in your name."),
    "no_risk_found": _("No risk found."),
    "test_mode_override": _("Outcome chosen by the test email address."),
}

_BANK_FLAG_RULES = {
    "gambling": "bank_gambling",
    "heavy_existing_credit": "bank_heavy_existing_credit",
    "frequent_overdraft": "bank_frequent_overdraft",
    "irregular_income": "bank_irregular_income",
}


def reason_text(code: str, fallback: str = "") -> str:
    """A reason's plain words in the active language (the stored text when the code is
    unknown to this version of the code)."""
    text = REASON_TEXTS.get(code)
    return str(text) if text is not None else fallback


class _Collector:
    def __init__(self, rules: RuleSet):
        self.rules = rules
        self.reasons: list[Reason] = []

    def add(self, code: str, category: str, points: int | None = None) -> None:
        value = self.rules.points(code) if points is None else points
        if value == 0 and category != BLOCK:
            return  # a rule switched off by its weight
        self.reasons.append(Reason(code, reason_text(code), value, category))

    def points(self, *categories: str) -> int:
        return sum(r.points for r in self.reasons if r.category in categories)


def _email_digits(email: str) -> int:
    return sum(ch.isdigit() for ch in email.partition("@")[0])


def _test_doubt(features: Features) -> str | None:
    if features.livemode:
        return None
    local = features.email.partition("@")[0].lower()
    if "+scored_no" in local:
        return NO
    if "+maybe_bank" in local:
        return BANK
    if "+scored_maybe" in local or "+maybe_identity" in local:
        return IDENTITY
    return None


def _fraud(f: Features, rules: RuleSet, c: _Collector) -> None:
    if f.card_issuer_country and f.billing_country and f.card_issuer_country != f.billing_country:
        c.add("card_country_differs", FRAUD)
    if f.shipping_country and f.billing_country and f.shipping_country != f.billing_country:
        c.add("shipping_country_differs", FRAUD)
    elif f.shipping_differs:
        c.add("shipping_address_differs", FRAUD)
    domain = f.email.rpartition("@")[2].lower()
    if domain in set(rules.data.get("disposable_email_domains", ())):
        c.add("email_disposable", FRAUD)
    if _email_digits(f.email) >= rules.rule("email_many_digits").get("digits", 99):
        c.add("email_many_digits", FRAUD)
    if f.phone_country and f.phone_country not in set(rules.data.get("served_countries", ())):
        c.add("phone_foreign", FRAUD)
    velocity = (
        ("velocity_customer_payments", f.customer_payments_recent),
        ("velocity_customer_cards", f.customer_cards_recent),
        ("velocity_card_customers", f.card_customers_recent),
        ("velocity_phone_customers", f.phone_customers_recent),
        ("velocity_device_customers", f.device_customers_recent),
    )
    for code, count in velocity:
        if count > rules.rule(code).get("max", 10**9):
            c.add(code, FRAUD)
    if f.merchant_guest and f.merchant_new_customer:
        c.add("merchant_guest_new_customer", FRAUD)
    if f.merchant_previous_orders >= rules.rule("merchant_returning_customer").get("orders", 10**9):
        c.add("merchant_returning_customer", FRAUD)


def _credit(f: Features, rules: RuleSet, c: _Collector) -> None:
    if f.purchase_cents > rules.rule("amount_very_large").get("cents", 10**12):
        c.add("amount_very_large", CREDIT)
    elif f.purchase_cents > rules.rule("amount_large").get("cents", 10**12):
        c.add("amount_large", CREDIT)
    if f.installments_count >= rules.rule("long_plan").get("installments", 99):
        c.add("long_plan", CREDIT)
    if f.card_funding == "debit" and f.installments_count >= rules.rule("long_plan_debit_card").get(
        "installments", 99
    ):
        c.add("long_plan_debit_card", CREDIT)
    young = rules.rule("young_customer_large_amount")
    if (
        f.customer_age is not None
        and f.customer_age < young.get("age_under", 0)
        and f.purchase_cents > young.get("cents", 10**12)
    ):
        c.add("young_customer_large_amount", CREDIT)
    limit = int(rules.data.get("exposure_limit_cents", 10**12))
    owed = f.outstanding_cents + f.purchase_cents
    if owed > limit:
        c.add("exposure_limit", BLOCK, -100)
    elif owed * 10_000 > limit * rules.rule("exposure_high").get("share_bps", 10**6):
        c.add("exposure_high", CREDIT)
    if f.open_plans >= rules.rule("many_open_plans").get("plans", 10**6):
        c.add("many_open_plans", CREDIT)


def _history(f: Features, rules: RuleSet, c: _Collector) -> None:
    if f.defaulted_plans:
        c.add("defaulted_before", BLOCK, -100)
    if f.late_instalments:
        c.add("late_now", HISTORY)
    if f.paid_plans:
        rule = rules.rule("paid_plans")
        earned = min(f.paid_plans * int(rule.get("points", 0)), int(rule.get("max_points", 0)))
        c.add("paid_plans", HISTORY, earned)
    elif not f.open_plans:
        c.add("new_customer", HISTORY)
    if f.denied:
        c.add("deny_listed", BLOCK, -100)


def _verifications(f: Features, rules: RuleSet, c: _Collector) -> None:
    """What the extra information changes: an approved document offsets fraud doubts, bank
    data offsets credit doubts or refuses; a rejected document refuses."""
    if f.identity == "rejected":
        c.add("identity_rejected", BLOCK, -100)
    elif f.identity == "approved":
        doubt = -c.points(FRAUD)
        c.add("identity_verified", FRAUD, min(max(doubt, 0), int(rules.data["identity_bonus"])))
    if f.bank is not None and f.bank.status == "holder_mismatch":
        c.reasons.append(
            Reason("bank_holder_mismatch", reason_text("bank_holder_mismatch"), 0, CREDIT)
        )
    if f.bank is not None and f.bank.status == "analysed":
        for flag in f.bank.flags:
            if flag in _BANK_FLAG_RULES:
                c.add(_BANK_FLAG_RULES[flag], CREDIT)
        if f.bank.repayment_capacity_cents < f.largest_instalment_cents:
            c.add("bank_capacity_insufficient", BLOCK, -100)
        elif not any(flag in ("gambling", "heavy_existing_credit") for flag in f.bank.flags):
            doubt = -c.points(CREDIT)
            c.add(
                "bank_capacity_confirmed",
                CREDIT,
                min(max(doubt, 0), int(rules.data["bank_bonus"])),
            )


def _asks(f: Features, rules: RuleSet, c: _Collector, score: int) -> tuple[str, ...]:
    """The information still worth asking, in order, given what each could add."""
    gap = int(rules.data["yes_from"]) - score
    steps: list[str] = []
    lift = 0
    if f.identity not in ("approved", "rejected", "pending", "exhausted"):
        fraud_doubt = -c.points(FRAUD)
        if fraud_doubt > 0:
            steps.append(IDENTITY)
            lift += min(fraud_doubt, int(rules.data["identity_bonus"]))
    if f.bank is None or f.bank.status not in ("analysed", "holder_mismatch"):
        credit_doubt = -c.points(CREDIT)
        if credit_doubt > 0:
            steps.append(BANK)
            lift += min(credit_doubt, int(rules.data["bank_bonus"]))
    if lift < gap:
        return ()  # even with everything, not enough: asking would only waste their time
    return tuple(steps)


def decide(features: Features, rules: RuleSet = DEFAULT_RULE_SET) -> Decision:
    """The decision on one purchase (see the module's docstring)."""
    c = _Collector(rules)
    doubt = _test_doubt(features)
    if doubt == NO:
        c.add("test_mode_override", BLOCK, -100)
    elif doubt is not None:
        c.add("test_mode_override", FRAUD if doubt == IDENTITY else CREDIT, _TEST_POINTS)
    _fraud(features, rules, c)
    _credit(features, rules, c)
    _history(features, rules, c)
    _verifications(features, rules, c)

    score = int(rules.data["start"]) + sum(r.points for r in c.reasons)
    blocked = any(r.category == BLOCK for r in c.reasons)
    asks: tuple[str, ...] = ()
    if blocked or score < int(rules.data["maybe_from"]):
        outcome = NO
    elif score >= int(rules.data["yes_from"]):
        outcome = YES
    else:
        asks = _asks(features, rules, c, score)
        outcome = MAYBE if asks else NO
    if outcome != NO and rules.data.get("require_verified_phone") and not features.phone_verified:
        # The phone comes first: it is asked of every customer once.
        c.reasons.append(Reason("phone_unverified", reason_text("phone_unverified"), 0, CONTACT))
        outcome, asks = MAYBE, (PHONE, *asks)
    if not c.reasons:
        c.reasons.append(Reason("no_risk_found", reason_text("no_risk_found")))
    reasons = tuple(sorted(c.reasons, key=lambda r: (r.category != BLOCK, r.points)))
    return Decision(
        outcome=outcome,
        score=max(score, 0),
        reasons=reasons,
        asks=asks,
        rules_version=rules.version,
    )


def main_reasons(reasons: list[dict], *, limit: int = 3) -> list[str]:
    """The few reasons that weighed most against the customer, in plain words (the
    explanation a refused customer reads)."""
    against = [r for r in reasons if int(r.get("points", 0)) < 0 or r.get("category") == BLOCK]
    against.sort(key=lambda r: (r.get("category") != BLOCK, int(r.get("points", 0))))
    return [reason_text(r["code"], r.get("message", "")) for r in against[:limit]]


# --- rule sets as data -------------------------------------------------------------------


class InvalidRules(ValueError):
    pass


_NUMBERS = (
    "start",
    "yes_from",
    "maybe_from",
    "identity_bonus",
    "bank_bonus",
    "exposure_limit_cents",
)


def rules_validate(data: Any) -> dict[str, Any]:
    """Check a rule set an operator wrote; returns it complete (unknown rules are refused,
    missing ones are taken from DEFAULT_RULES, so an old version stays readable)."""
    if not isinstance(data, dict):
        raise InvalidRules("The rules must be a JSON object.")
    merged = copy.deepcopy(DEFAULT_RULES)
    for key, value in data.items():
        if key == "rules":
            continue
        if key not in merged:
            raise InvalidRules(f"Unknown setting: {key}.")
        merged[key] = value
    for key in _NUMBERS:
        if not isinstance(merged[key], int) or isinstance(merged[key], bool):
            raise InvalidRules(f"{key} must be a whole number.")
    if not merged["maybe_from"] <= merged["yes_from"]:
        raise InvalidRules("maybe_from must not be above yes_from.")
    if not isinstance(merged["version"], str) or not merged["version"].strip():
        raise InvalidRules("version must be a non-empty text.")
    rules = data.get("rules", {})
    if not isinstance(rules, dict):
        raise InvalidRules("rules must be an object of rule codes.")
    for code, params in rules.items():
        if code not in DEFAULT_RULES["rules"]:
            raise InvalidRules(f"Unknown rule: {code}.")
        if not isinstance(params, dict) or any(
            not isinstance(v, int) or isinstance(v, bool) for v in params.values()
        ):
            raise InvalidRules(f"Rule {code}: every parameter must be a whole number.")
        merged["rules"][code] = {**merged["rules"][code], **params}
    return merged
