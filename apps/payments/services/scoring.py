"""The credit decision's service: gather the features of one checkout, decide, record.

The scoring itself is pure (decision.py). This module reads what it needs in a handful of
indexed queries (history and exposure, velocity, the deny list, the extra information given)
and stores the decision with its reasons, what it saw and the rules' version. The customer's
row is locked while deciding, so two checkouts of one customer are decided one after the other
and cannot both use the same room under the exposure limit.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import phonenumbers
from django.db import connection

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


def decision_features(
    *,
    payment: Payment,
    checkout: Checkout,
    now: datetime,
    identity: str = "",
    bank: BankFacts | None = None,
    rules: RuleSet | None = None,
    lock_customer: bool = False,
) -> Features:
    """What the decision looks at for this payment's checkout (see decision.Features): the
    customer's row (locked when asked) and one statement for everything else
    (``FEATURES_SQL``)."""
    rules = (rules or rules_active()).data
    card = checkout.card
    customer = Customer.objects.only("phone", "phone_verified_at")
    if lock_customer:  # two checkouts of one customer are decided one after the other
        customer = customer.select_for_update()
    customer = customer.get(pk=payment.customer_id)
    seen = _features_read(payment, checkout, card, now=now, rules=rules)
    billing = payment.billing_address or {}
    shipping = payment.shipping_address or {}
    billing_country = (checkout.address.get("country") or billing.get("country") or "").upper()
    shipping_country = (shipping.get("country") or "").upper()
    merchant_said = payment.website_customer_details or {}
    return Features(
        livemode=payment.livemode,
        purchase_cents=to_cents(payment.purchase_amount),
        installments_count=payment.installments_count,
        is_pay_later=payment.is_pay_later,
        largest_instalment_cents=decimal_to_cents(seen["largest"] or 0),
        customer_age=_age(checkout.birth_date, business_date(now)),
        email=checkout.email,
        phone_country=_phone_country(checkout.phone),
        billing_country=billing_country,
        shipping_country=shipping_country,
        shipping_differs=bool(shipping)
        and _address_key(shipping) != _address_key({**billing, **checkout.address}),
        card_funding=card.funding if card else "",
        card_issuer_country=card.issuer_country if card else "",
        paid_plans=seen["paid"],
        open_plans=seen["open"],
        outstanding_cents=decimal_to_cents(seen["owed"]),
        late_instalments=seen["late"],
        defaulted_plans=seen["defaulted"],
        customer_payments_recent=seen["recent"],
        customer_cards_recent=seen["cards_recent"],
        card_customers_recent=seen["card_customers"] + 1,
        phone_customers_recent=seen["phone_customers"] + 1,
        device_customers_recent=seen["device_customers"] + 1,
        merchant_new_customer=_bool_or_none(merchant_said.get("new_customer")),
        merchant_guest=_bool_or_none(merchant_said.get("is_guest")),
        merchant_previous_orders=_previous_orders(merchant_said),
        denied=tuple(seen["denied"]),
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
    rules = rules_active()
    features = decision_features(
        payment=payment,
        checkout=checkout,
        now=now,
        identity=identity,
        bank=bank,
        rules=rules,
        lock_customer=True,
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


# --- the features' query -----------------------------------------------------------------

# Everything the decision reads besides the customer's row, in one statement: the customers
# linked to this one (same card fingerprint, same verified phone), their plans and what they
# owe (good history is the customer's own: a shared card does not lend it), the velocity
# counts, the plan's largest instalment and the deny list's matches. Each part is an indexed
# lookup (see the indexes on Card, Customer, Checkout, Payment and DenyListEntry).
FEATURES_SQL = """
WITH linked AS (
    SELECT %(own)s::bigint AS id
    UNION
    SELECT customer_id FROM payments_card
    WHERE %(fingerprint)s <> '' AND livemode = %(live)s AND fingerprint = %(fingerprint)s
    UNION
    SELECT id FROM payments_customer
    WHERE %(phone)s <> '' AND livemode = %(live)s AND phone = %(phone)s
      AND phone_verified_at IS NOT NULL
),
plans AS (
    SELECT p.id, p.customer_id, p.state, p.created_at, p.paid_in_full_fallback
    FROM payments_payment p
    WHERE p.customer_id IN (SELECT id FROM linked) AND p.livemode = %(live)s
      AND p.id <> %(payment)s
)
SELECT
    (SELECT count(*) FROM plans
     WHERE customer_id = %(own)s AND state = 'paid' AND NOT paid_in_full_fallback) AS paid,
    (SELECT count(*) FROM plans WHERE state = ANY(%(open_states)s)) AS open,
    (SELECT count(*) FROM plans WHERE state = ANY(%(defaulted_states)s)) AS defaulted,
    (SELECT count(*) FROM plans
     WHERE customer_id = %(own)s AND created_at >= %(recent_since)s
       AND state = ANY(%(scored_states)s)) AS recent,
    (SELECT coalesce(sum(i.purchase_amount + i.customer_fee + i.customer_interest), 0)
     FROM payments_instalment i JOIN plans ON plans.id = i.payment_id
     WHERE plans.state = ANY(%(owing_states)s) AND i.state = ANY(%(owed_states)s)) AS owed,
    (SELECT count(*) FROM payments_instalment i JOIN plans ON plans.id = i.payment_id
     WHERE plans.state = ANY(%(owing_states)s) AND i.state = 'incident') AS late,
    (SELECT max(purchase_amount + customer_fee + customer_interest)
     FROM payments_instalment WHERE payment_id = %(payment)s) AS largest,
    (SELECT count(DISTINCT fingerprint) FROM payments_card
     WHERE customer_id = %(own)s AND created_at >= %(cards_since)s
       AND fingerprint <> '') AS cards_recent,
    (SELECT count(DISTINCT customer_id) FROM payments_card
     WHERE %(fingerprint)s <> '' AND livemode = %(live)s AND fingerprint = %(fingerprint)s
       AND created_at >= %(card_since)s AND customer_id <> %(own)s) AS card_customers,
    (SELECT count(*) FROM payments_customer
     WHERE %(phone)s <> '' AND livemode = %(live)s AND phone = %(phone)s
       AND id <> %(own)s) AS phone_customers,
    (SELECT count(DISTINCT p.customer_id) FROM payments_checkout c
     JOIN payments_payment p ON p.id = c.payment_id
     WHERE %(device)s <> '' AND c.device_id = %(device)s AND c.created_at >= %(device_since)s
       AND p.livemode = %(live)s AND p.customer_id <> %(own)s) AS device_customers,
    (SELECT coalesce(array_agg(DISTINCT kind ORDER BY kind), '{}') FROM payments_denylistentry
     WHERE livemode = %(live)s AND removed_at IS NULL AND value <> '' AND (
        (kind = 'email' AND value = %(email)s) OR (kind = 'phone' AND value = %(phone)s)
        OR (kind = 'card' AND value = %(fingerprint)s)
        OR (kind = 'device' AND value = %(device)s))) AS denied
"""


def _features_read(
    payment: Payment, checkout: Checkout, card: Card | None, *, now: datetime, rules: dict
) -> dict[str, Any]:
    velocity = rules["rules"]
    params = {
        "own": payment.customer_id,
        "payment": payment.pk,
        "live": payment.livemode,
        "fingerprint": card.fingerprint if card is not None else "",
        "phone": checkout.phone,
        "device": checkout.device_id,
        "email": checkout.email.strip().lower(),
        "open_states": list(OPEN_STATES),
        "defaulted_states": list(DEFAULTED_STATES),
        "scored_states": [*ACCEPTED_STATES, S.SCORED_MAYBE, S.SCORED_NO],
        "owing_states": [*OPEN_STATES, S.DEFAULT],
        "owed_states": list(OWED_INSTALMENT_STATES),
        "recent_since": now
        - timedelta(hours=velocity["velocity_customer_payments"].get("hours", 24)),
        "cards_since": now - timedelta(days=velocity["velocity_customer_cards"].get("days", 7)),
        "card_since": now - timedelta(days=velocity["velocity_card_customers"].get("days", 30)),
        "device_since": now
        - timedelta(hours=velocity["velocity_device_customers"].get("hours", 24)),
    }
    with connection.cursor() as cursor:
        cursor.execute(FEATURES_SQL, params)
        names = [column.name for column in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


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
