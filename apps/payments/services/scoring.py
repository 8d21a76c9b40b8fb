"""The credit decision's service: gather the features of one checkout, decide, record.

The scoring itself is pure (decision.py). This module reads what it needs in a handful of
indexed queries (history and exposure, velocity, the deny list, the extra information given)
and stores the decision with its reasons, what it saw and the rules' version. The customer's
row is locked while deciding, so two checkouts of one customer are decided one after the other
and cannot both use the same room under the exposure limit.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import phonenumbers
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Coalesce

from apps.common.dates import business_date
from apps.common.money import decimal_to_cents, to_cents
from apps.payments import card_rules
from apps.payments.decision import (
    DEFAULT_RULES,
    BankFacts,
    Features,
    RuleSet,
    decide,
    rules_validate,
)
from apps.payments.models import (
    Card,
    Checkout,
    CreditDecision,
    Customer,
    DecisionRuleSet,
    DenyListEntry,
    Instalment,
    Payment,
)
from apps.payments.models import PaymentState as S

# Plans the customer is repaying (or about to: accepted, first debit not yet made).
OPEN_STATES = (S.SCORED_YES, S.IN_PROGRESS, S.LATE_DUNNING, S.LATE_CONTACT_CUSTOMER)
ACCEPTED_STATES = (*OPEN_STATES, S.PAID, S.DEFAULT, S.COLLECTION_DONE)
DEFAULTED_STATES = (S.DEFAULT, S.COLLECTION_DONE)
OWED_INSTALMENT_STATES = ("pending", "incident", "claimed")


# Checked rule sets by version: a saved version never changes, so it is checked once.
_checked: dict[str, RuleSet] = {}


def _rule_set(version: str, rules: dict) -> RuleSet:
    checked = _checked.get(version)
    if checked is None:
        checked = _checked[version] = RuleSet(rules_validate(rules))
    return checked


def rules_active() -> RuleSet:
    """The version of the rules in force: the active DecisionRuleSet, else the shipped one."""
    row = DecisionRuleSet.objects.filter(is_active=True).values_list("version", "rules").first()
    return _rule_set(*row) if row is not None else RuleSet(DEFAULT_RULES)


def rules_for_version(version: str) -> RuleSet | None:
    """The rules a past decision was made with (for its explanation)."""
    if version == DEFAULT_RULES["version"]:
        return RuleSet(DEFAULT_RULES)
    row = DecisionRuleSet.objects.filter(version=version).values_list("rules", flat=True).first()
    return None if row is None else _rule_set(version, row)


def decision_features(
    *,
    payment: Payment,
    checkout: Checkout,
    now: datetime,
    identity: str = "",
    bank: BankFacts | None = None,
    rules: RuleSet | None = None,
    customer: Customer | None = None,
) -> Features:
    """What the decision looks at for this payment's checkout (see decision.Features)."""
    rules = (rules or rules_active()).data
    customer_id = payment.customer_id
    if customer is None:
        customer = Customer.objects.only("phone", "phone_verified_at").get(pk=customer_id)
    card = checkout.card
    billing = payment.billing_address or {}
    shipping = payment.shipping_address or {}
    billing_country = (checkout.address.get("country") or billing.get("country") or "").upper()
    shipping_country = (shipping.get("country") or "").upper()
    linked = _linked_customers(payment, checkout, card)
    history = _history(payment, linked, now=now, rules=rules)
    owed = _owed(payment, linked)
    merchant_said = payment.website_customer_details or {}
    return Features(
        livemode=payment.livemode,
        purchase_cents=to_cents(payment.purchase_amount),
        installments_count=payment.installments_count,
        is_pay_later=payment.is_pay_later,
        largest_instalment_cents=_largest_instalment_cents(payment),
        customer_age=_age(checkout.birth_date, business_date(now)),
        email=checkout.email,
        phone_country=_phone_country(checkout.phone),
        billing_country=billing_country,
        shipping_country=shipping_country,
        shipping_differs=bool(shipping)
        and _address_key(shipping) != _address_key({**billing, **checkout.address}),
        card_funding=card.funding if card else "",
        card_issuer_country=card.issuer_country if card else "",
        paid_plans=history["paid"],
        open_plans=history["open"],
        outstanding_cents=owed["cents"],
        late_instalments=owed["late"],
        defaulted_plans=history["defaulted"],
        customer_payments_recent=history["recent"],
        customer_cards_recent=_customer_cards_recent(customer_id, now=now, rules=rules),
        card_customers_recent=_card_customers_recent(payment, card, now=now, rules=rules),
        phone_customers_recent=_phone_customers(payment, checkout.phone),
        device_customers_recent=_device_customers_recent(payment, checkout, now=now, rules=rules),
        merchant_new_customer=_bool_or_none(merchant_said.get("new_customer")),
        merchant_guest=_bool_or_none(merchant_said.get("is_guest")),
        merchant_previous_orders=_previous_orders(merchant_said),
        denied=_denied(payment, checkout, card),
        phone_verified=bool(
            checkout.phone_verified_at
            or (customer.phone_verified_at and customer.phone == checkout.phone and customer.phone)
        ),
        identity=identity,
        bank=bank,
    )


def payment_score(
    *,
    payment: Payment,
    checkout: Checkout,
    now: datetime,
    made_by: str = "checkout",
    identity: str = "",
    bank: BankFacts | None = None,
) -> CreditDecision:
    """Decide on the payment and record the decision. The caller holds the payment's lock
    (inside a transaction); the customer's row is locked here for the exposure limit."""
    customer = (
        Customer.objects.select_for_update()
        .only("phone", "phone_verified_at")
        .get(pk=payment.customer_id)
    )
    rules = rules_active()
    features = decision_features(
        payment=payment,
        checkout=checkout,
        now=now,
        identity=identity,
        bank=bank,
        rules=rules,
        customer=customer,
    )
    decision = decide(features, rules)
    return CreditDecision.objects.create(
        payment=payment,
        outcome=decision.outcome,
        score=decision.score,
        reasons=[reason.as_json() for reason in decision.reasons],
        asks=list(decision.asks),
        features=features.as_json(),
        rules_version=decision.rules_version,
        made_by=made_by,
        created_at=now,
    )


# --- the features' queries ---------------------------------------------------------------


def _linked_customers(payment: Payment, checkout: Checkout, card: Card | None) -> list[int]:
    """This customer and the ones known by the same card or verified phone: what they owe
    and how they repaid counts against this checkout too, so a new email does not reset the
    exposure limit or a default."""
    same = Q(pk=payment.customer_id)
    if card is not None and card.fingerprint:
        same |= Q(cards__fingerprint=card.fingerprint, cards__livemode=payment.livemode)
    if checkout.phone:
        same |= Q(phone=checkout.phone, phone_verified_at__isnull=False)
    return list(
        Customer.objects.filter(same, livemode=payment.livemode)
        .values_list("pk", flat=True)
        .distinct()[:50]
    )


def _history(payment: Payment, linked: list[int], *, now: datetime, rules: dict) -> dict:
    """Plans paid and payments made lately are this customer's own; open and defaulted
    plans are counted across the linked customers."""
    hours = rules["rules"]["velocity_customer_payments"].get("hours", 24)
    own = Q(customer_id=payment.customer_id)
    return (
        Payment.objects.filter(customer_id__in=linked, livemode=payment.livemode)
        .exclude(pk=payment.pk)
        .aggregate(
            paid=Count("pk", filter=own & Q(state=S.PAID, paid_in_full_fallback=False)),
            open=Count("pk", filter=Q(state__in=OPEN_STATES)),
            defaulted=Count("pk", filter=Q(state__in=DEFAULTED_STATES)),
            recent=Count(
                "pk",
                filter=own
                & Q(
                    created_at__gte=now - timedelta(hours=hours),
                    state__in=(*ACCEPTED_STATES, S.SCORED_MAYBE, S.SCORED_NO),
                ),
            ),
        )
    )


def _owed(payment: Payment, linked: list[int]) -> dict[str, int]:
    """What the linked customers owe (or are about to owe) on their other accepted plans,
    and how many of those instalments are late."""
    total = ExpressionWrapper(
        F("purchase_amount") + F("customer_fee") + F("customer_interest"),
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )
    row = (
        Instalment.objects.filter(
            payment__customer_id__in=linked,
            payment__livemode=payment.livemode,
            payment__state__in=(*OPEN_STATES, S.DEFAULT),
            state__in=OWED_INSTALMENT_STATES,
        )
        .exclude(payment_id=payment.pk)
        .aggregate(
            owed=Coalesce(Sum(total), 0, output_field=total.output_field),
            late=Count("pk", filter=Q(state="incident")),
        )
    )
    return {"cents": decimal_to_cents(row["owed"]), "late": row["late"]}


def _largest_instalment_cents(payment: Payment) -> int:
    amounts = payment.instalments.values_list(
        "purchase_amount", "customer_fee", "customer_interest"
    )
    return max((decimal_to_cents(a + b + c) for a, b, c in amounts), default=0)


def _customer_cards_recent(customer_id: int, *, now: datetime, rules: dict) -> int:
    days = rules["rules"]["velocity_customer_cards"].get("days", 7)
    return (
        Card.objects.filter(customer_id=customer_id, created_at__gte=now - timedelta(days=days))
        .exclude(fingerprint="")
        .values("fingerprint")
        .distinct()
        .count()
    )


def _card_customers_recent(payment: Payment, card: Card | None, *, now, rules: dict) -> int:
    if card is None or not card.fingerprint:
        return 1
    days = rules["rules"]["velocity_card_customers"].get("days", 30)
    others = (
        Card.objects.filter(
            livemode=payment.livemode,
            fingerprint=card.fingerprint,
            created_at__gte=now - timedelta(days=days),
        )
        .exclude(customer_id=payment.customer_id)
        .values("customer_id")
        .distinct()
        .count()
    )
    return others + 1


def _phone_customers(payment: Payment, phone: str) -> int:
    if not phone:
        return 1
    others = (
        Customer.objects.filter(livemode=payment.livemode, phone=phone)
        .exclude(pk=payment.customer_id)
        .count()
    )
    return others + 1


def _device_customers_recent(
    payment: Payment, checkout: Checkout, *, now: datetime, rules: dict
) -> int:
    if not checkout.device_id:
        return 1
    hours = rules["rules"]["velocity_device_customers"].get("hours", 24)
    others = (
        Checkout.objects.filter(
            device_id=checkout.device_id,
            created_at__gte=now - timedelta(hours=hours),
            payment__livemode=payment.livemode,
        )
        .exclude(payment__customer_id=payment.customer_id)
        .values("payment__customer_id")
        .distinct()
        .count()
    )
    return others + 1


def deny_list_values(
    *, email: str, phone: str, card_fingerprint: str, device_id: str
) -> list[tuple[str, str]]:
    """The (kind, value) pairs a customer is known by, normalised as the deny list keeps them."""
    pairs = [
        (DenyListEntry.Kind.EMAIL, email.strip().lower()),
        (DenyListEntry.Kind.PHONE, phone),
        (DenyListEntry.Kind.CARD, card_fingerprint),
        (DenyListEntry.Kind.DEVICE, device_id),
    ]
    return [(kind, value) for kind, value in pairs if value]


def _denied(payment: Payment, checkout: Checkout, card: Card | None) -> tuple[str, ...]:
    pairs = deny_list_values(
        email=checkout.email,
        phone=checkout.phone,
        card_fingerprint=card.fingerprint if card else "",
        device_id=checkout.device_id,
    )
    if not pairs:
        return ()
    match = Q()
    for kind, value in pairs:
        match |= Q(kind=kind, value=value)
    kinds = (
        DenyListEntry.objects.filter(match, livemode=payment.livemode, removed_at__isnull=True)
        .values_list("kind", flat=True)
        .distinct()
    )
    return tuple(sorted(kinds))


def _phone_country(phone: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone)) or ""
    except phonenumbers.NumberParseException:
        return ""


def _address_key(address: dict) -> tuple[str, ...]:
    return tuple(
        " ".join(str(address.get(key) or "").lower().split())
        for key in ("line1", "postal_code", "city", "country")
    )


def _age(birth_date: date | None, today: date) -> int | None:
    return None if birth_date is None else card_rules.age_on(birth_date, today=today)


def _bool_or_none(value) -> bool | None:
    return value if isinstance(value, bool) else None


def _previous_orders(said: dict) -> int:
    orders = said.get("previous_orders")
    return len(orders) if isinstance(orders, list) else 0
