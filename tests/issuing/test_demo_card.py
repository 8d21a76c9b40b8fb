"""`make run`'s demo card: a test customer signed up, with an authenticated funding card and
an issued Tranche card, made once however often the command runs; and the card's two
periodic jobs are installed by `setup_schedules`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils.module_loading import import_string
from django_q.models import Schedule

from apps.issuing.management.commands.demo_card import DEMO_EMAIL, DEMO_PHONE
from apps.issuing.models import CardDecision, FundingCardSetup, SandboxIssuedCard, VirtualCard
from apps.issuing.services.cards import card_facts
from apps.payments.models import Customer
from tests.issuing.helpers import card_details

pytestmark = pytest.mark.django_db


def _run() -> str:
    out = StringIO()
    call_command("demo_card", "--port", "8123", stdout=out)
    return out.getvalue()


def test_running_the_demo_twice_makes_one_customer_with_one_card():
    first = _run()
    second = _run()

    customer = Customer.objects.get(email=DEMO_EMAIL)
    card = VirtualCard.objects.get()
    setup = FundingCardSetup.objects.get()
    assert Customer.objects.filter(email=DEMO_EMAIL).count() == 1
    assert customer.livemode is False
    assert customer.phone == DEMO_PHONE and customer.phone_verified_at is not None
    assert card.customer == customer and card.state == "active" and card.livemode is False
    assert card.funding_card == setup.card and setup.status == "authenticated"
    assert setup.card.three_ds_authenticated_at is not None and setup.card.last4 == "0006"
    assert CardDecision.objects.get().outcome == "approved"
    assert SandboxIssuedCard.objects.count() == 1
    assert first == second


def test_the_demo_customer_meets_every_condition_of_the_card():
    _run()

    facts, _ = card_facts(
        Customer.objects.get(email=DEMO_EMAIL), now=VirtualCard.objects.get().created_at
    )

    assert facts.phone_verified and facts.profile_complete and facts.age >= 18
    assert facts.funding_card and facts.funding_card_authenticated
    assert not facts.funding_card_refused


def test_the_demo_prints_how_to_sign_in_but_never_the_cards_number():
    out = _run()

    card = VirtualCard.objects.get()
    number = card_details(card)["number"]
    assert "http://127.0.0.1:8123/portal/sign-in?mode=test" in out
    assert "http://127.0.0.1:8123/portal/sign-up?mode=test" in out
    assert "http://127.0.0.1:8123/portal/card/" in out
    assert "06 00 00 00 42" in out
    assert f"•••• {card.last4}" in out
    assert "limit 300.00 EUR" in out
    assert number not in out and number[:12] not in out


def test_a_demo_customer_whose_profile_was_emptied_gets_it_back_and_keeps_one_card():
    _run()
    Customer.objects.filter(email=DEMO_EMAIL).update(first_name="", address={})

    _run()

    customer = Customer.objects.get(email=DEMO_EMAIL)
    assert customer.first_name == "Camille" and customer.address["city"] == "Paris"
    assert VirtualCard.objects.count() == 1


def test_setup_schedules_installs_the_cards_two_jobs():
    call_command("setup_schedules", stdout=StringIO())

    jobs = dict(Schedule.objects.filter(name__startswith="tranche:").values_list("name", "func"))
    assert jobs["tranche:sandbox-issuer-deliveries"] == (
        "apps.issuing.tasks.deliver_sandbox_issuer_messages"
    )
    assert jobs["tranche:card-authorisations-in-doubt"] == (
        "apps.issuing.tasks.settle_pending_authorisations"
    )
    assert set(jobs) == {task["name"] for task in settings.PERIODIC_TASKS}
    assert callable(import_string(jobs["tranche:sandbox-issuer-deliveries"]))
    assert callable(import_string(jobs["tranche:card-authorisations-in-doubt"]))
