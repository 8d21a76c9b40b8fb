"""Synthetic checkouts for the credit decision: what a version of the rules would do to a
realistic day of traffic (``python manage.py simulate_decisions``).

``checkouts(count, seed)`` makes a seeded stream of synthetic checkouts (``random.Random(seed)``,
amounts in integer cents): for each, the ``Features`` of the first decision, the person's
hidden truth (honest, fraudster or over-indebted) and how they would answer each extra
question (phone code, identity document, bank data). ``replay(checkout, rules)`` runs the
journey as the hosted checkout does: decide; while the answer is ``maybe``, take the first
ask, apply the person's answer (or stop: abandoned) and decide again. ``simulate(count, seed,
rules)`` replays them all and aggregates a ``Report``.

The populations (shares of all checkouts, drawn per checkout, so a run varies around them):

=================  =====  ==================================================================
population         share  what they look like
=================  =====  ==================================================================
honest             92 %   ages 18-80 (6 % are 18-20), 30-4,000 EUR (log-normal, median 190
                          EUR), plans 3x / 4x / 10x / 12x / pay later (longer plans for
                          larger baskets), 40 % new to Tranche (phone not verified yet), the
                          others returning (three in four with paid plans, half with plans
                          in progress, 1 % with a late instalment now, 5 % with a new phone
                          number), 8 % gifts
                          shipped elsewhere (a fifth of them to another country), 4 % cards
                          issued in another country (a BE card and a FR address, a neobank's
                          LT card), 55 % debit cards (some on 10x / 12x), 2 % with a partner's
                          card, a few shared phones or devices, 3 % emails with a birth date
                          in them, the shop's customer details on half of them.
fraudster          3 %    stolen cards and made-up or stolen identities: disposable (25 %) or
                          generated (30 %) emails, cards issued abroad (40 %), shipping to
                          another country (30 %) or address (45 %), cards, phones and devices
                          shared with other identities, bursts of payments and cards, on the
                          deny list (10 %); one in ten takes over a returning customer's
                          account. Baskets larger (median 800 EUR).
over-indebted      5 %    80 % returning with 2-5 plans in progress (1,200-4,800 EUR still
                          owed; 35 % with a late instalment now; 0-4 plans paid before), 20 %
                          new to Tranche (their debts are elsewhere); mostly debit cards,
                          longer plans, median 450 EUR.
=================  =====  ==================================================================

How each answers (``Answers``):

=================  ===============  =====================  ================================
population         phone code       identity document      bank data
=================  ===============  =====================  ================================
honest             99 % pass        96 % approved, 2 %     5 % abandon; else analysed from
                                    abandon, 2 % rejected  their finances: income by age,
                                                           repayment capacity 12-40 % of
                                                           it, some irregular income
fraudster          60 % pass        15 % approved, 35 %    70 % abandon; the rest show a
                                    rejected, 50 % abandon mule account that looks fine
over-indebted      97 % pass        95 % approved, 2 %     10 % abandon; capacity below the
                                    abandon, 3 % rejected  instalment (75 %), heavy existing
                                                           credit (70 %), frequent overdraft
                                                           (75 %), gambling (25 %)
=================  ===============  =====================  ================================

A customer who fails the phone code, or abandons a step, leaves the checkout: abandoned.
Accepted "first time" means without an identity document or bank data (the phone code, asked
once of every new customer, is part of the ordinary checkout); "after more information" means
after one of them. The generator knows nothing of the rules: it describes people, the rules
decide.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from django.utils import translation

from apps.payments.decision import (
    BANK,
    BLOCK,
    DEFAULT_RULE_SET,
    IDENTITY,
    MAYBE,
    PHONE,
    YES,
    BankFacts,
    Decision,
    Features,
    RuleSet,
    decide,
)

HONEST, FRAUD, OVERINDEBTED = "honest", "fraud", "overindebted"
POPULATIONS = (HONEST, FRAUD, OVERINDEBTED)
# Shares in basis points of all checkouts (the rest is honest).
FRAUD_BPS = 300
OVERINDEBTED_BPS = 500

ACCEPTED_FIRST_TIME = "accepted_first_time"
ACCEPTED_AFTER_INFO = "accepted_after_info"
REFUSED = "refused"
ABANDONED = "abandoned"
FINALS = (ACCEPTED_FIRST_TIME, ACCEPTED_AFTER_INFO, REFUSED, ABANDONED)
ACCEPTED = (ACCEPTED_FIRST_TIME, ACCEPTED_AFTER_INFO)

APPROVED, REJECTED, ABANDON = "approved", "rejected", "abandon"

T = TypeVar("T")

MIN_CENTS, MAX_CENTS = 3_000, 400_000
CREDIT_RATE_BPS = 1_700  # 10x and 12x carry interest (what the customer repays monthly)


@dataclass(frozen=True)
class Answers:
    """How the person would answer each extra question."""

    phone: bool  # enters the SMS code
    identity: str  # APPROVED, REJECTED or ABANDON
    bank: BankFacts | None  # None: abandons the bank step


@dataclass(frozen=True)
class SyntheticCheckout:
    """One synthetic purchase: what the first decision sees, who the person really is, how
    they would answer."""

    number: int
    population: str  # HONEST, FRAUD, OVERINDEBTED: the hidden truth
    profile: str  # a finer label (new, returning, stolen_card, ...), for reading runs
    features: Features
    answers: Answers


@dataclass(frozen=True)
class Journey:
    """A replayed checkout: its final outcome, the asks taken in order (the last one
    abandoned when the final is ABANDONED) and every decision made."""

    final: str
    steps: tuple[str, ...]
    decisions: tuple[Decision, ...]

    @property
    def accepted(self) -> bool:
        return self.final in ACCEPTED


# --- the journey -------------------------------------------------------------------------


def _answered(features: Features, ask: str, answers: Answers) -> Features | None:
    """The features once the person answered ``ask``; None when they leave instead."""
    if ask == PHONE:
        return dataclasses.replace(features, phone_verified=True) if answers.phone else None
    if ask == IDENTITY:
        if answers.identity == ABANDON:
            return None
        return dataclasses.replace(features, identity=answers.identity)
    if ask == BANK:
        return None if answers.bank is None else dataclasses.replace(features, bank=answers.bank)
    raise ValueError(f"unknown ask: {ask}")


def replay(checkout: SyntheticCheckout, rules: RuleSet = DEFAULT_RULE_SET) -> Journey:
    """The checkout's journey, as the hosted checkout runs it: decide; while maybe, answer the
    first ask (or abandon) and decide again.

    Accepted "first time" means without an identity document or bank data: the phone code,
    which every new customer gives once, is part of the ordinary checkout.
    """
    features = checkout.features
    decision = decide(features, rules)
    decisions = [decision]
    steps: list[str] = []
    while decision.outcome == MAYBE:
        ask = decision.asks[0]
        if ask in steps:
            raise RuntimeError(f"the decision asked for {ask} again after it was given")
        steps.append(ask)
        answered = _answered(features, ask, checkout.answers)
        if answered is None:
            return Journey(ABANDONED, tuple(steps), tuple(decisions))
        features = answered
        decision = decide(features, rules)
        decisions.append(decision)
    if decision.outcome == YES:
        more = IDENTITY in steps or BANK in steps
        final = ACCEPTED_AFTER_INFO if more else ACCEPTED_FIRST_TIME
    else:
        final = REFUSED
    return Journey(final, tuple(steps), tuple(decisions))


# --- the generator -----------------------------------------------------------------------

_FIRST_NAMES = (
    "camille", "lea", "manon", "chloe", "ines", "sarah", "julie", "emma", "lucie", "marie",
    "thomas", "lucas", "hugo", "nicolas", "julien", "antoine", "maxime", "kevin", "mehdi",
    "pierre", "sophie", "nathalie", "isabelle", "sylvie", "philippe", "alain", "yasmine",
)  # fmt: skip
_LAST_NAMES = (
    "martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand", "leroy",
    "moreau", "simon", "laurent", "lefebvre", "michel", "garcia", "david", "bertrand", "roux",
    "vincent", "fournier", "morel", "girard", "andre", "mercier", "dupont", "lambert", "nguyen",
)  # fmt: skip
_DOMAINS = (
    ("gmail.com", 40), ("hotmail.fr", 12), ("orange.fr", 10), ("yahoo.fr", 7), ("free.fr", 6),
    ("outlook.fr", 6), ("icloud.com", 5), ("laposte.net", 4), ("sfr.fr", 4), ("wanadoo.fr", 3),
    ("outlook.com", 3),
)  # fmt: skip
_DISPOSABLE = ("yopmail.com", "mailinator.com", "guerrillamail.com", "10minutemail.com",
               "trashmail.com", "temp-mail.org", "jetable.org", "sharklasers.com")  # fmt: skip
# Where customers live (the shop serves these), weights in per mille.
_HOME_COUNTRIES = (
    ("FR", 820), ("BE", 80), ("ES", 30), ("DE", 20), ("IT", 20), ("NL", 10), ("LU", 10),
    ("PT", 10),
)  # fmt: skip
_NEIGHBOURS = {"FR": ("BE", "LU", "DE", "ES", "IT"), "BE": ("FR", "NL", "LU", "DE")}
_NEOBANK_COUNTRIES = ("LT", "DE", "IE")  # neobanks issue their cards there
_UNSERVED_PHONES = ("CH", "GB", "MA", "TN", "DZ", "US")
_FRAUD_CARD_COUNTRIES = ("US", "GB", "RO", "BR", "NG", "UA", "TR", "CN", "CA", "DE", "LT")
_DENY_KINDS = ("email", "phone", "card", "device")


_TABLES: dict[tuple, tuple[tuple, list[float], int]] = {}


def _weighted(rng: random.Random, choices: tuple[tuple[T, int], ...]) -> T:
    """One of the values, drawn with the weights given beside them."""
    table = _TABLES.get(choices)
    if table is None:
        values = tuple(value for value, _weight in choices)
        cumulative = list(itertools.accumulate(weight for _value, weight in choices))
        table = _TABLES[choices] = (values, cumulative, cumulative[-1])
    values, cumulative, total = table
    return values[bisect.bisect_right(cumulative, rng.random() * total)]


def _chance(rng: random.Random, percent: float) -> bool:
    return rng.random() * 100 < percent


def _amount_cents(rng: random.Random, *, median_eur: int, sigma: float) -> int:
    """A basket between 30 and 4,000 EUR, log-normal around the median; often .99 or .90."""
    euros = int(rng.lognormvariate(math.log(median_eur), sigma))
    cents = min(max(euros, MIN_CENTS // 100), MAX_CENTS // 100) * 100
    ending = rng.choice((0, 0, 10, 1))  # 200.00, 199.90, 199.99
    return max(cents - ending, MIN_CENTS)


def _plan(rng: random.Random, purchase_cents: int, *, long_bias: int = 0) -> tuple[int, bool]:
    """(installments_count, is_pay_later): longer plans for larger baskets."""
    if purchase_cents < 10_000:
        mix = (("3", 55), ("4", 25), ("later", 20), ("10", 0), ("12", 0))
    elif purchase_cents <= 100_000:
        mix = (("3", 48), ("4", 24), ("later", 17), ("10", 6 + long_bias), ("12", 5 + long_bias))
    else:
        mix = (("3", 35), ("4", 22), ("later", 7), ("10", 18 + long_bias), ("12", 18 + long_bias))
    plan = _weighted(rng, mix)
    return (1, True) if plan == "later" else (int(plan), False)


def _largest_instalment_cents(purchase_cents: int, installments: int) -> int:
    """The first instalment carries the rounding; 10x and 12x carry interest."""
    interest = 0
    if installments >= 10:  # simple interest on the average balance
        interest = purchase_cents * CREDIT_RATE_BPS * (installments + 1) // (24 * 10_000)
    return -(-(purchase_cents + interest) // installments)


def _email(rng: random.Random, *, digits_percent: float) -> str:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    domain = _weighted(rng, _DOMAINS)
    if _chance(rng, digits_percent):  # a birth date in the address: 8 digits
        local = f"{first}{last}{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}"
        local += str(rng.randint(1950, 2006))
    else:
        style = rng.randrange(4)
        local = (
            f"{first}.{last}",
            f"{first}{last}{rng.randint(1, 99)}",
            f"{first[0]}.{last}",
            f"{first}.{last}{rng.randint(60, 99)}",
        )[style]
    return f"{local}@{domain}"


def _generated_email(rng: random.Random, *, disposable: bool) -> str:
    letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 7)))
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 9)))
    domain = rng.choice(_DISPOSABLE) if disposable else _weighted(rng, _DOMAINS)
    return f"{letters}{digits}@{domain}"


def _merchant_details(
    rng: random.Random, *, new_percent: float, guest_percent: float
) -> tuple[bool | None, bool | None, int]:
    """What the shop tells about the customer (website_customer_details), half the time."""
    if not _chance(rng, 50):
        return None, None, 0
    new = _chance(rng, new_percent)
    if new:
        return True, _chance(rng, guest_percent), 0
    return False, False, min(int(rng.expovariate(1 / 4)) + 1, 40)


def _open_plans_owed(rng: random.Random, plans: int, *, median_eur: int) -> int:
    """What is still owed on plans in progress: part of each basket, in cents."""
    owed = 0
    for _ in range(plans):
        basket = _amount_cents(rng, median_eur=median_eur, sigma=0.6)
        owed += basket * rng.randint(1, 3) // 4
    return owed


def _income_cents(rng: random.Random, age: int, *, median_eur: int) -> int:
    if age < 21:
        median_eur = median_eur * 45 // 100  # students, first jobs
    elif age > 65:
        median_eur = median_eur * 80 // 100  # pensions
    return int(rng.lognormvariate(math.log(median_eur), 0.4)) * 100


def _honest(rng: random.Random, number: int) -> SyntheticCheckout:
    young = _chance(rng, 6)
    age = rng.randint(18, 20) if young else int(rng.triangular(21, 81, 38))
    home = _weighted(rng, _HOME_COUNTRIES)
    purchase = _amount_cents(rng, median_eur=190, sigma=1.0)
    installments, pay_later = _plan(rng, purchase)
    new = _chance(rng, 40)
    profile = "new" if new else "returning"
    paid = opened = owed = late = recent_payments = 0
    phone_verified = False
    cards_recent = 1  # the card added at this checkout
    if not new:
        if _chance(rng, 25):  # second purchase while the first plan is running
            opened = 1 + int(_chance(rng, 20))
        else:
            paid = min(1 + int(rng.expovariate(1 / 2.5)), 15)
            opened = _weighted(rng, ((0, 60), (1, 28), (2, 10), (3, 2)))
        owed = _open_plans_owed(rng, opened, median_eur=220)
        late = int(opened > 0 and _chance(rng, 2))  # a card expired, a salary late
        phone_verified = not _chance(rng, 5)  # a new number is checked again
        cards_recent = int(_chance(rng, 20))
        recent_payments = _weighted(rng, ((0, 90), (1, 8), (2, 2)))
    shipping_country, shipping_differs = home, False
    if _chance(rng, 8):
        profile += "+gift"
        shipping_differs = True
        if _chance(rng, 20):
            shipping_country = rng.choice(_NEIGHBOURS.get(home, ("FR",)))
    card_country = home
    if _chance(rng, 4):
        profile += "+card_abroad"
        card_country = rng.choice((*_NEIGHBOURS.get(home, ("FR",)), *_NEOBANK_COUNTRIES))
    funding = _weighted(rng, (("debit", 55), ("credit", 42), ("prepaid", 3)))
    phone_country = rng.choice(_UNSERVED_PHONES) if _chance(rng, 1) else home
    merchant_new, merchant_guest, merchant_orders = _merchant_details(
        rng, new_percent=35, guest_percent=45
    )
    features = Features(
        livemode=True,
        purchase_cents=purchase,
        installments_count=installments,
        is_pay_later=pay_later,
        largest_instalment_cents=_largest_instalment_cents(purchase, installments),
        customer_age=age,
        email=_email(rng, digits_percent=3),
        phone_country=phone_country,
        billing_country=home,
        shipping_country=shipping_country,
        shipping_differs=shipping_differs,
        card_funding=funding,
        card_issuer_country=card_country,
        paid_plans=paid,
        open_plans=opened,
        outstanding_cents=owed,
        late_instalments=late,
        customer_payments_recent=recent_payments,
        customer_cards_recent=cards_recent,
        card_customers_recent=2 if _chance(rng, 2) else 1,  # a partner's card
        phone_customers_recent=_weighted(rng, ((1, 975), (2, 22), (3, 3))),  # a shared phone
        device_customers_recent=_weighted(rng, ((1, 960), (2, 35), (3, 5))),  # a family computer
        merchant_new_customer=merchant_new,
        merchant_guest=merchant_guest,
        merchant_previous_orders=merchant_orders,
        phone_verified=phone_verified,
    )
    income = _income_cents(rng, age, median_eur=2_300)
    flags = tuple(
        flag
        for flag, percent in (
            ("irregular_income", 12),
            ("frequent_overdraft", 4),
            ("heavy_existing_credit", 2),
            ("gambling", 0.5),
        )
        if _chance(rng, percent)
    )
    bank = None
    if not _chance(rng, 5):
        capacity = income * rng.randint(12, 40) // 100
        bank = BankFacts("analysed", capacity, income, flags)
    identity = _weighted(rng, ((APPROVED, 96), (ABANDON, 2), (REJECTED, 2)))
    answers = Answers(phone=_chance(rng, 99), identity=identity, bank=bank)
    return SyntheticCheckout(number, HONEST, profile, features, answers)


def _fraudster(rng: random.Random, number: int) -> SyntheticCheckout:
    age = int(rng.triangular(19, 61, 28))
    home = _weighted(rng, (("FR", 85), ("BE", 8), ("ES", 4), ("DE", 3)))
    purchase = _amount_cents(rng, median_eur=800, sigma=0.7)
    installments, pay_later = _weighted(
        rng,
        (((3, False), 50), ((4, False), 25), ((1, True), 15), ((10, False), 5), ((12, False), 5)),
    )
    takeover = _chance(rng, 10)  # a returning customer's account, a new phone and card
    profile = "account_takeover" if takeover else "stolen_card"
    email_kind = _weighted(rng, (("disposable", 25), ("generated", 30), ("plain", 45)))
    if takeover or email_kind == "plain":
        email = _email(rng, digits_percent=5)
    else:
        email = _generated_email(rng, disposable=email_kind == "disposable")
    shipping = _weighted(rng, (("country", 30), ("address", 45), ("same", 25)))
    shipping_country = home
    if shipping == "country":
        shipping_country = rng.choice(("FR", "BE", "ES", "DE", "NL", "GB", "PL", "RO"))
        if shipping_country == home:
            shipping_country = "NL" if home != "NL" else "BE"
    merchant_new, merchant_guest, merchant_orders = _merchant_details(
        rng, new_percent=90, guest_percent=75
    )
    denied: tuple[str, ...] = ()
    if _chance(rng, 10):
        denied = tuple(sorted(rng.sample(_DENY_KINDS, rng.randint(1, 2))))
    features = Features(
        livemode=True,
        purchase_cents=purchase,
        installments_count=installments,
        is_pay_later=pay_later,
        largest_instalment_cents=_largest_instalment_cents(purchase, installments),
        customer_age=age,
        email=email,
        phone_country=rng.choice(_UNSERVED_PHONES) if _chance(rng, 15) else home,
        billing_country=home,
        shipping_country=shipping_country,
        shipping_differs=shipping != "same",
        card_funding=_weighted(rng, (("credit", 55), ("prepaid", 15), ("debit", 30))),
        card_issuer_country=rng.choice(_FRAUD_CARD_COUNTRIES) if _chance(rng, 40) else home,
        paid_plans=rng.randint(1, 5) if takeover else 0,
        customer_payments_recent=rng.randint(4, 8) if _chance(rng, 30) else rng.randint(0, 2),
        customer_cards_recent=rng.randint(3, 5) if _chance(rng, 35) else rng.randint(1, 2),
        card_customers_recent=rng.randint(2, 5) if _chance(rng, 35) else 1,
        phone_customers_recent=rng.randint(3, 6) if _chance(rng, 25) else rng.randint(1, 2),
        device_customers_recent=rng.randint(3, 8) if _chance(rng, 40) else rng.randint(1, 2),
        merchant_new_customer=merchant_new,
        merchant_guest=merchant_guest,
        merchant_previous_orders=merchant_orders,
        denied=denied,
        phone_verified=False,  # a new number, never checked
    )
    bank = None
    if _chance(rng, 30):  # a mule account that looks fine
        income = _income_cents(rng, 35, median_eur=2_000)
        bank = BankFacts("analysed", income * rng.randint(15, 40) // 100, income, ())
    identity = _weighted(rng, ((APPROVED, 15), (REJECTED, 35), (ABANDON, 50)))
    answers = Answers(phone=_chance(rng, 60), identity=identity, bank=bank)
    return SyntheticCheckout(number, FRAUD, profile, features, answers)


def _overindebted(rng: random.Random, number: int) -> SyntheticCheckout:
    age = int(rng.triangular(20, 71, 35))
    home = _weighted(rng, _HOME_COUNTRIES)
    purchase = _amount_cents(rng, median_eur=450, sigma=0.6)
    installments, pay_later = _plan(rng, purchase, long_bias=10)
    returning = _chance(rng, 80)
    profile = "returning" if returning else "new"
    paid = opened = owed = late = 0
    if returning:
        paid = rng.randint(0, 4)
        opened = _weighted(rng, ((2, 25), (3, 35), (4, 25), (5, 15)))
        owed = min(max(_open_plans_owed(rng, opened, median_eur=900), 120_000), 480_000)
        late = rng.randint(1, 3) if _chance(rng, 35) else 0
    merchant_new, merchant_guest, merchant_orders = _merchant_details(
        rng, new_percent=35, guest_percent=45
    )
    features = Features(
        livemode=True,
        purchase_cents=purchase,
        installments_count=installments,
        is_pay_later=pay_later,
        largest_instalment_cents=_largest_instalment_cents(purchase, installments),
        customer_age=age,
        email=_email(rng, digits_percent=4),
        phone_country=home,
        billing_country=home,
        shipping_country=home,
        shipping_differs=_chance(rng, 5),
        card_funding=_weighted(rng, (("debit", 75), ("credit", 20), ("prepaid", 5))),
        card_issuer_country=home,
        paid_plans=paid,
        open_plans=opened,
        outstanding_cents=owed,
        late_instalments=late,
        customer_payments_recent=_weighted(rng, ((0, 75), (1, 12), (2, 8), (4, 5))),
        customer_cards_recent=int(not returning or _chance(rng, 30)),
        merchant_new_customer=merchant_new,
        merchant_guest=merchant_guest,
        merchant_previous_orders=merchant_orders,
        phone_verified=returning and not _chance(rng, 5),
    )
    instalment = features.largest_instalment_cents
    income = _income_cents(rng, age, median_eur=1_600)
    if _chance(rng, 75):  # what is left each month does not cover the instalment
        capacity = instalment * rng.randint(0, 90) // 100
    else:
        capacity = instalment + instalment * rng.randint(5, 60) // 100
    flags = tuple(
        flag
        for flag, percent in (
            ("heavy_existing_credit", 70),
            ("frequent_overdraft", 75),
            ("gambling", 25),
            ("irregular_income", 30),
        )
        if _chance(rng, percent)
    )
    bank = None if _chance(rng, 10) else BankFacts("analysed", capacity, income, flags)
    identity = _weighted(rng, ((APPROVED, 95), (ABANDON, 2), (REJECTED, 3)))
    answers = Answers(phone=_chance(rng, 97), identity=identity, bank=bank)
    return SyntheticCheckout(number, OVERINDEBTED, profile, features, answers)


def checkouts(count: int, seed: int) -> Iterator[SyntheticCheckout]:
    """``count`` synthetic checkouts, the same ones for the same seed (see the module's
    docstring for the populations)."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible simulation, not a secret)
    for number in range(count):
        roll = rng.randrange(10_000)
        if roll < FRAUD_BPS:
            yield _fraudster(rng, number)
        elif roll < FRAUD_BPS + OVERINDEBTED_BPS:
            yield _overindebted(rng, number)
        else:
            yield _honest(rng, number)


# --- the report ----------------------------------------------------------------------------


def _percent(part: int, whole: int) -> float:
    return 100 * part / whole if whole else 0.0


def _euros(cents: int) -> str:
    return f"{(cents + 50) // 100:,} EUR"


@dataclass
class Report:
    """What a simulation found (counts; rates are derived)."""

    count: int
    seed: int
    rules_version: str
    populations: Counter = field(default_factory=Counter)  # population -> checkouts
    finals: dict[str, Counter] = field(
        default_factory=lambda: {population: Counter() for population in POPULATIONS}
    )
    asked: dict[str, Counter] = field(  # population -> ask -> times asked
        default_factory=lambda: {population: Counter() for population in POPULATIONS}
    )
    honest_phone_only: int = 0  # honest accepted first time after the phone code
    bad_debt_cents: int = 0  # purchases of fraudsters and over-indebted customers
    bad_debt_avoided_cents: int = 0  # ... not accepted
    first_reasons: Counter = field(default_factory=Counter)  # against, in first decisions
    refusal_reasons: Counter = field(default_factory=Counter)  # against, in refusals
    decisions: int = 0
    seconds: float = 0.0  # spent replaying (deciding and answering)

    def add(self, checkout: SyntheticCheckout, journey: Journey) -> None:
        population = checkout.population
        self.populations[population] += 1
        self.finals[population][journey.final] += 1
        self.asked[population].update(journey.steps)
        self.decisions += len(journey.decisions)
        if population == HONEST and journey.final == ACCEPTED_FIRST_TIME and journey.steps:
            self.honest_phone_only += 1
        if population != HONEST:
            self.bad_debt_cents += checkout.features.purchase_cents
            if not journey.accepted:
                self.bad_debt_avoided_cents += checkout.features.purchase_cents
        self.first_reasons.update(_against(journey.decisions[0]))
        if journey.final == REFUSED:
            self.refusal_reasons.update(_against(journey.decisions[-1]))

    def share(self, population: str, *finals: str) -> float:
        """The percentage of ``population`` whose journey ended in one of ``finals``."""
        counts = self.finals[population]
        return _percent(sum(counts[final] for final in finals), self.populations[population])

    @property
    def honest_accepted(self) -> float:
        return self.share(HONEST, *ACCEPTED)

    @property
    def honest_first_time(self) -> float:
        return self.share(HONEST, ACCEPTED_FIRST_TIME)

    @property
    def honest_after_info(self) -> float:
        return self.share(HONEST, ACCEPTED_AFTER_INFO)

    @property
    def fraud_caught(self) -> float:
        return self.share(FRAUD, REFUSED, ABANDONED)

    @property
    def defaults_avoided(self) -> float:
        return self.share(OVERINDEBTED, REFUSED, ABANDONED)

    @property
    def refused(self) -> float:
        return _percent(sum(self.finals[p][REFUSED] for p in POPULATIONS), self.count)

    @property
    def decisions_per_second(self) -> float:
        return self.decisions / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        """The figures on one line (what the command prints last)."""
        return (
            f"honest accepted {self.honest_accepted:.1f} % (first time "
            f"{self.honest_first_time:.1f} %, after more information "
            f"{self.honest_after_info:.1f} %) | fraud caught {self.fraud_caught:.1f} % | "
            f"defaults avoided {self.defaults_avoided:.1f} % | bad debt avoided "
            f"{_euros(self.bad_debt_avoided_cents)} of {_euros(self.bad_debt_cents)} | "
            f"refused {self.refused:.1f} % of all"
        )


def _against(decision: Decision) -> list[str]:
    return [r.code for r in decision.reasons if r.points < 0 or r.category == BLOCK]


def simulate(
    count: int,
    seed: int = 1,
    rules: RuleSet = DEFAULT_RULE_SET,
    *,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Replay ``count`` synthetic checkouts of ``seed`` with ``rules``; ``progress`` is called
    with the number done at every tenth."""
    if count < 1:
        raise ValueError("count must be at least 1")
    report = Report(count=count, seed=seed, rules_version=rules.version)
    tenth = max(count // 10, 1)
    clock = time.perf_counter
    # Only the reasons' codes are counted: their messages need no translation catalog (which
    # would double the time each decision takes here).
    with translation.override(None):
        for checkout in checkouts(count, seed):
            started = clock()
            journey = replay(checkout, rules)
            report.seconds += clock() - started
            report.add(checkout, journey)
            done = checkout.number + 1
            if progress is not None and (done % tenth == 0 or done == count):
                progress(done)
    return report
