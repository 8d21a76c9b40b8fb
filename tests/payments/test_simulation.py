"""The synthetic traffic (apps/payments/simulation.py) and `manage.py simulate_decisions`."""

import dataclasses
import re
from collections import Counter
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.payments.decision import BANK, DEFAULT_RULE_SET, IDENTITY, PHONE, YES, BankFacts, Features
from apps.payments.simulation import (
    ABANDON,
    ABANDONED,
    ACCEPTED_AFTER_INFO,
    ACCEPTED_FIRST_TIME,
    APPROVED,
    FRAUD,
    HONEST,
    OVERINDEBTED,
    REFUSED,
    REJECTED,
    Answers,
    SyntheticCheckout,
    checkouts,
    replay,
    simulate,
)

SUMMARY = re.compile(
    r"^honest accepted (?P<honest>[\d.]+) % \(first time (?P<first>[\d.]+) %, after more "
    r"information (?P<after>[\d.]+) %\) \| fraud caught (?P<fraud>[\d.]+) % \| defaults "
    r"avoided (?P<defaults>[\d.]+) % \| bad debt avoided (?P<avoided>[\d,]+) EUR of "
    r"(?P<bad>[\d,]+) EUR \| refused (?P<refused>[\d.]+) % of all$"
)


@pytest.fixture(scope="module")
def traffic():
    return list(checkouts(20_000, 11))


def doubtful_newcomer(**answers) -> SyntheticCheckout:
    """A new customer with fraud doubts (card and delivery abroad) and credit doubts (a large
    basket in 12 on a debit card): phone, then identity, then bank data are asked."""
    features = Features(
        livemode=True,
        purchase_cents=150_000,
        installments_count=12,
        is_pay_later=False,
        largest_instalment_cents=14_000,
        customer_age=34,
        email="camille.martin@example.com",
        phone_country="FR",
        billing_country="FR",
        shipping_country="ES",
        shipping_differs=True,
        card_funding="debit",
        card_issuer_country="BE",
    )
    given = {
        "phone": True,
        "identity": APPROVED,
        "bank": BankFacts("analysed", 60_000, 250_000, ()),
        **answers,
    }
    return SyntheticCheckout(0, HONEST, "test", features, Answers(**given))


def test_the_same_seed_makes_the_same_checkouts():
    first, again, other = (list(checkouts(300, seed)) for seed in (7, 7, 8))

    assert first == again
    assert first != other


def test_populations_come_in_their_documented_proportions(traffic):
    populations = Counter(checkout.population for checkout in traffic)

    assert populations[HONEST] / len(traffic) == pytest.approx(0.92, abs=0.008)
    assert populations[FRAUD] / len(traffic) == pytest.approx(0.03, abs=0.004)
    assert populations[OVERINDEBTED] / len(traffic) == pytest.approx(0.05, abs=0.005)


def test_honest_customers_are_varied(traffic):
    honest = [checkout.features for checkout in traffic if checkout.population == HONEST]
    new = sum(1 for f in honest if not f.paid_plans and not f.open_plans)
    plans = Counter("later" if f.is_pay_later else f.installments_count for f in honest)
    told = sum(1 for f in honest if f.merchant_new_customer is not None)

    assert new / len(honest) == pytest.approx(0.40, abs=0.02)
    assert not any(f.phone_verified for f in honest if not f.paid_plans and not f.open_plans)
    assert {f.customer_age for f in honest} == set(range(18, 81))
    assert all(isinstance(f.purchase_cents, int) for f in honest)
    assert min(f.purchase_cents for f in honest) >= 3_000
    assert max(f.purchase_cents for f in honest) <= 400_000
    assert set(plans) == {3, 4, 10, 12, "later"}
    assert told / len(honest) == pytest.approx(0.5, abs=0.02)
    assert any(f.card_issuer_country != f.billing_country for f in honest)
    assert any(f.shipping_differs for f in honest)
    assert any(f.card_funding == "debit" and f.installments_count >= 10 for f in honest)


def test_fraudsters_and_over_indebted_customers_carry_their_signals(traffic):
    fraud = [c for c in traffic if c.population == FRAUD]
    indebted = [c for c in traffic if c.population == OVERINDEBTED]

    assert sum(1 for c in fraud if c.features.denied) / len(fraud) == pytest.approx(0.1, abs=0.04)
    assert sum(1 for c in fraud if c.answers.phone) / len(fraud) == pytest.approx(0.6, abs=0.05)
    returning = [c.features for c in indebted if c.features.open_plans]
    assert len(returning) / len(indebted) == pytest.approx(0.8, abs=0.04)
    assert all(f.open_plans >= 2 and f.outstanding_cents >= 120_000 for f in returning)
    short = [
        c
        for c in indebted
        if c.answers.bank
        and c.answers.bank.repayment_capacity_cents < c.features.largest_instalment_cents
    ]
    assert len(short) / len(indebted) == pytest.approx(0.9 * 0.75, abs=0.05)


def test_replay_follows_the_asks_in_order():
    journey = replay(doubtful_newcomer())

    assert journey.final == ACCEPTED_AFTER_INFO
    assert journey.steps == (PHONE, IDENTITY, BANK)
    assert [d.asks for d in journey.decisions] == [
        (PHONE, IDENTITY, BANK),
        (IDENTITY, BANK),
        (BANK,),
        (),
    ]
    assert journey.decisions[-1].outcome == YES
    codes = {reason.code for reason in journey.decisions[-1].reasons}
    assert {"identity_verified", "bank_capacity_confirmed"} <= codes


@pytest.mark.parametrize(
    ("answers", "steps"),
    [
        ({"phone": False}, (PHONE,)),
        ({"identity": ABANDON}, (PHONE, IDENTITY)),
        ({"bank": None}, (PHONE, IDENTITY, BANK)),
    ],
)
def test_replay_stops_where_the_person_abandons(answers, steps):
    journey = replay(doubtful_newcomer(**answers))

    assert journey.final == ABANDONED
    assert journey.steps == steps
    assert len(journey.decisions) == len(steps)


def test_a_rejected_identity_document_refuses():
    journey = replay(doubtful_newcomer(identity=REJECTED))

    assert journey.final == REFUSED
    assert journey.steps == (PHONE, IDENTITY)
    assert "identity_rejected" in {reason.code for reason in journey.decisions[-1].reasons}


def test_a_returning_customer_without_doubts_is_accepted_first_time():
    checkout = doubtful_newcomer()
    features = dataclasses.replace(
        checkout.features,
        purchase_cents=45_000,
        installments_count=3,
        largest_instalment_cents=15_000,
        shipping_country="FR",
        shipping_differs=False,
        card_issuer_country="FR",
        paid_plans=2,
        phone_verified=True,
    )

    journey = replay(SyntheticCheckout(0, HONEST, "test", features, checkout.answers))

    assert journey.final == ACCEPTED_FIRST_TIME
    assert journey.steps == ()


def test_progress_is_reported_every_tenth():
    done: list[int] = []

    simulate(50, 4, progress=done.append)

    assert done == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]


def test_with_the_shipped_rules_honest_customers_are_accepted_and_fraud_is_caught():
    report = simulate(20_000, 5, DEFAULT_RULE_SET)

    assert report.honest_accepted >= 95.0
    assert report.fraud_caught > 50.0
    assert 0 < report.bad_debt_avoided_cents <= report.bad_debt_cents
    assert sum(report.populations.values()) == 20_000


@pytest.mark.django_db
def test_the_command_prints_the_figures_on_its_last_line():
    out, err = StringIO(), StringIO()

    call_command("simulate_decisions", "--count", "2000", "--seed", "3", stdout=out, stderr=err)

    last = out.getvalue().rstrip("\n").splitlines()[-1]
    figures = SUMMARY.match(last)
    assert figures is not None, last
    expected = simulate(2000, 3, DEFAULT_RULE_SET)
    assert float(figures["honest"]) == round(expected.honest_accepted, 1)
    assert float(figures["first"]) == round(expected.honest_first_time, 1)
    assert float(figures["after"]) == round(expected.honest_after_info, 1)
    assert float(figures["fraud"]) == round(expected.fraud_caught, 1)
    assert float(figures["defaults"]) == round(expected.defaults_avoided, 1)
    assert float(figures["refused"]) == round(expected.refused, 1)
    avoided, bad = (int(figures[key].replace(",", "")) for key in ("avoided", "bad"))
    assert 0 < avoided <= bad
    assert bad == (expected.bad_debt_cents + 50) // 100
    assert float(figures["honest"]) >= 90.0
    assert "Populations:" in out.getvalue()
    assert err.getvalue() == ""  # no progress for a small run


@pytest.mark.django_db
def test_the_command_refuses_a_count_below_one():
    with pytest.raises(CommandError, match="--count must be at least 1"):
        call_command("simulate_decisions", "--count", "0", stdout=StringIO())
