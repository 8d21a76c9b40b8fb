"""The card pages in the portal: the checklist and the request (approved, or refused with
the two groups of reasons), the card with its limit and purchases, its details (no-store,
never kept), freezing, replacing after a confirmation, sandbox purchases in test mode only,
another customer's card a 404, and the card page's query count."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.issuing import issuer_sandbox
from apps.issuing.models import CardAuthorisation, CardDecision, VirtualCard
from apps.issuing.selectors import card_available_cents
from apps.issuing.services.cards import live_card
from apps.payments.models import Payment
from tests.issuing.helpers import card_details, card_for, funding_card, signed_up
from tests.portal.helpers import sign_in
from tests.support import all_database_text

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CARD_PAGE = "/portal/card/"


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW, tick=False):
        yield


def client_for(customer) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    sign_in(client, customer, when=NOW)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def post(client: Client, name: str, data: dict | None = None):
    return client.post(reverse(f"issuing:{name}"), data or {}, follow=True)


def buy(client: Client, card: VirtualCard, amount: str, *, shop="Fnac Paris", category="5311"):
    return post(
        client,
        "sandbox-purchase",
        {"card": card.public_id, "shop": shop, "amount": amount, "category": category},
    )


# --- before the card ---------------------------------------------------------------------


def test_the_card_page_needs_a_signed_in_customer():
    response = Client().get(CARD_PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith("/portal/sign-in?next=")


def test_the_checklist_shows_what_is_done_and_what_is_left():
    customer = signed_up(when=NOW)
    funding_card(customer, when=NOW, authenticated=False)

    response = client_for(customer).get(CARD_PAGE)

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["checklist"].phone_verified
    assert response.context["checklist"].profile_complete
    assert response.context["checklist"].adult
    assert not response.context["checklist"].three_ds_done
    assert 'data-testid="check-phone"' in html and 'class="done" data-testid="check-phone"' in html
    assert 'class="" data-testid="check-funding"' in html
    assert "3-D Secure not finished" in html
    assert reverse("issuing:funding") in html
    assert reverse("issuing:request") in html
    assert response["Cache-Control"].count("no-store") == 1


def test_an_incomplete_profile_links_to_the_profile_page():
    customer = signed_up(when=NOW, address={})

    response = client_for(customer).get(CARD_PAGE)

    assert not response.context["checklist"].profile_complete
    assert 'href="/portal/profile"' in response.content.decode()


def test_an_approved_request_shows_the_card_with_its_limit():
    customer = signed_up(when=NOW)
    funding_card(customer, when=NOW)
    client = client_for(customer)

    response = post(client, "request")

    card = live_card(customer)
    assert card is not None
    html = response.content.decode()
    assert response.redirect_chain == [(CARD_PAGE, 303)]
    assert f"•••• •••• •••• {card.last4}" in html
    assert response.context["limit"] == "€300.00"
    assert response.context["available"] == "€300.00"
    assert "Visa •••• 0006" in html or "CB •••• 0006" in html
    assert 'data-testid="no-purchases"' in html
    assert "Tranche card is ready" in messages_of(response)[0]


def test_a_refused_request_shows_both_groups_of_reasons_with_what_to_do():
    customer = signed_up(when=NOW, address={})
    funding_card(customer, when=NOW, authenticated=False)
    client = client_for(customer)

    response = post(client, "request")

    decision = CardDecision.objects.get(customer=customer)
    assert decision.outcome == "refused"
    assert response.redirect_chain == [(f"{CARD_PAGE}?decision={decision.public_id}", 303)]
    groups = response.context["refusal"]
    assert [group["group"] for group in groups] == ["conditions", "three_ds"]
    html = response.content.decode()
    assert "You do not meet the eligibility conditions of the Tranche card." in html
    assert "Your profile is incomplete" in html
    assert "You have not finished 3-D Secure" in html
    assert 'data-group="conditions"' in html and 'href="/portal/profile"' in html
    assert dict(groups[1]["actions"]) == {
        reverse("issuing:funding"): "Add my bank card and confirm it with my bank"
    }
    assert live_card(customer) is None


def test_a_refusal_of_another_customer_is_not_shown():
    refused = signed_up(when=NOW, address={})
    post(client_for(refused), "request")
    decision = CardDecision.objects.get(customer=refused)
    other = signed_up(when=NOW, email="o@example.com", phone="+33600000002")

    response = client_for(other).get(CARD_PAGE, {"decision": decision.public_id})

    assert response.status_code == 200
    assert response.context["refusal"] is None


def test_asking_twice_says_the_card_is_already_there():
    card = card_for(when=NOW)

    response = post(client_for(card.customer), "request")

    assert messages_of(response) == ["You already have a Tranche card."]
    assert VirtualCard.objects.filter(customer=card.customer).count() == 1


# --- the card ------------------------------------------------------------------------------


def test_the_details_are_shown_once_with_no_store_and_kept_nowhere(caplog):
    caplog.set_level(logging.DEBUG)
    card = card_for(when=NOW)
    secret = card_details(card)
    client = client_for(card.customer)

    response = client.post(reverse("issuing:details"), {"card": card.public_id})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    number = secret["number"]
    grouped = " ".join(number[i : i + 4] for i in range(0, 16, 4))
    assert grouped in html
    assert secret["cvc"] in html
    assert f"{card.exp_month:02d}/{card.exp_year % 100:02d}" in html
    assert 'data-testid="hide"' in html and "60000" in html
    card.refresh_from_db()
    assert card.details_shown_at == NOW
    for form in (number, grouped, number[6:12]):
        assert form not in all_database_text()
        assert form not in caplog.text


def test_the_details_are_only_shown_on_a_post():
    card = card_for(when=NOW)

    response = client_for(card.customer).get(reverse("issuing:details"))

    assert response.status_code == 405


def test_another_customers_card_is_a_404_everywhere():
    mine = card_for(when=NOW)
    theirs = card_for(when=NOW, email="other@example.com", phone="+33600000003")
    client = client_for(mine.customer)

    for name in ("details", "freeze", "unfreeze", "replace", "sandbox-purchase"):
        response = client.post(
            reverse(f"issuing:{name}"),
            {"card": theirs.public_id, "confirm": "yes", "shop": "X", "amount": "50"},
        )
        assert response.status_code == 404, name

    theirs.refresh_from_db()
    assert theirs.state == "active"
    assert not CardAuthorisation.objects.exists()


def test_a_customer_without_a_card_gets_a_404_on_its_actions():
    customer = signed_up(when=NOW)
    client = client_for(customer)

    for name in ("details", "freeze", "replace", "sandbox-purchase"):
        assert client.post(reverse(f"issuing:{name}")).status_code == 404, name


def test_freezing_then_unfreezing_the_card():
    card = card_for(when=NOW)
    client = client_for(card.customer)

    frozen = post(client, "freeze", {"card": card.public_id})
    again = post(client, "freeze", {"card": card.public_id})
    state_frozen = VirtualCard.objects.get(pk=card.pk).state
    active = post(client, "unfreeze", {"card": card.public_id})

    assert state_frozen == "frozen"
    assert frozen.context["state"] == "Frozen"
    assert reverse("issuing:unfreeze") in frozen.content.decode()
    assert "frozen" in messages_of(frozen)[0]
    assert messages_of(again) == ["This card is already in that state."]
    assert VirtualCard.objects.get(pk=card.pk).state == "active"
    assert active.context["state"] == "Active"


def test_a_frozen_cards_purchase_is_declined():
    card = card_for(when=NOW)
    client = client_for(card.customer)
    post(client, "freeze", {"card": card.public_id})

    response = buy(client, card, "60")

    assert messages_of(response) == ["Declined at Fnac Paris: Your card is frozen."]


def test_replacing_asks_first_then_gives_a_new_number():
    card = card_for(when=NOW)
    client = client_for(card.customer)

    asked = client.get(reverse("issuing:replace"))
    unconfirmed = client.post(reverse("issuing:replace"), {"card": card.public_id})
    still = VirtualCard.objects.get(pk=card.pk).state
    done = post(client, "replace", {"card": card.public_id, "confirm": "yes"})

    assert asked.status_code == 200
    assert "Your current number stops working at once." in asked.content.decode()
    assert unconfirmed.status_code == 200 and 'name="confirm"' in unconfirmed.content.decode()
    assert still == "active"
    card.refresh_from_db()
    new = live_card(card.customer)
    assert card.state == "replaced" and new.replaces_id == card.pk
    assert new.last4 in messages_of(done)[0]
    assert done.context["card"] == new


def test_the_old_number_no_longer_pays_after_a_replacement():
    card = card_for(when=NOW)
    old = card_details(card)
    post(client_for(card.customer), "replace", {"card": card.public_id, "confirm": "yes"})

    outcome = issuer_sandbox.purchase(**old, amount_cents=50_00, merchant_name="Shop")

    assert outcome.status == "declined" and outcome.decline_code == "card_closed"


# --- sandbox purchases -----------------------------------------------------------------------


def test_a_sandbox_purchase_becomes_a_plan_linked_from_the_card_page():
    card = card_for(when=NOW)
    client = client_for(card.customer)

    response = buy(client, card, "150,00")

    row = CardAuthorisation.objects.get(card=card)
    assert row.state == "approved" and row.merchant_name == "Fnac Paris"
    plan_url = reverse("portal:plan", args=[row.payment.public_id])
    [message] = messages_of(response)
    assert "your 3x plan is ready" in message and plan_url in message
    html = response.content.decode()
    assert html.count('data-testid="purchase"') == 1
    assert f'href="{plan_url}"' in html
    # 150 € in 3: the first 50 € paid, 100 € still owed of the 300 € limit.
    assert card_available_cents(card) == 200_00
    assert response.context["available"] == "€200.00"


@pytest.mark.parametrize(
    ("amount", "category", "reason"),
    [
        ("80", "7995", "Cash, gambling and money transfers cannot be split."),
        ("350", "5311", "The purchase is above what is left of your limit."),
        ("5", "5311", "The purchase is below the minimum of 10 €."),
    ],
)
def test_a_declined_sandbox_purchase_says_why(amount, category, reason):
    card = card_for(when=NOW)
    client = client_for(card.customer)

    response = buy(client, card, amount, category=category)

    assert messages_of(response) == [f"Declined at Fnac Paris: {reason}"]
    row = CardAuthorisation.objects.get(card=card)
    assert row.state == "declined" and row.payment_id is None
    html = response.content.decode()
    assert "Declined" in html and reason.replace("'", "&#x27;") in html
    assert not Payment.objects.filter(origin=Payment.Origin.CARD).exists()


def test_a_purchase_the_network_gave_up_on_is_declined_and_its_plan_refunded():
    card = card_for(when=NOW)
    client = client_for(card.customer)

    response = buy(client, card, "120,13")  # the sandbox network times out on 13 cents

    [message] = messages_of(response)
    assert message.startswith("Declined at Fnac Paris: The card network did not get")
    row = CardAuthorisation.objects.get(card=card)
    assert row.state == "reversed"
    assert "Cancelled" in response.content.decode()
    assert card_available_cents(card) == 300_00


def test_a_purchase_over_what_is_left_after_an_earlier_one_is_declined():
    card = card_for(when=NOW)
    client = client_for(card.customer)
    buy(client, card, "240")  # 160 € owed of 300 €

    response = buy(client, card, "150")

    assert messages_of(response)[-1].endswith("above what is left of your limit.")
    assert card_available_cents(card) == 140_00


def test_a_sandbox_amount_that_is_not_one_is_refused_without_a_purchase():
    card = card_for(when=NOW)

    response = buy(client_for(card.customer), card, "cent euros")

    assert messages_of(response) == ["Enter an amount in euros, e.g. 150,00."]
    assert not CardAuthorisation.objects.exists()


def test_live_mode_has_no_sandbox_purchases():
    card = card_for(when=NOW, livemode=True)
    client = client_for(card.customer)

    page = client.get(CARD_PAGE)
    response = client.post(
        reverse("issuing:sandbox-purchase"),
        {"card": card.public_id, "shop": "Shop", "amount": "50"},
    )

    assert page.status_code == 200
    assert page.context["sandbox_form"] is None
    assert reverse("issuing:sandbox-purchase") not in page.content.decode()
    assert response.status_code == 404
    assert not CardAuthorisation.objects.exists()


def test_the_test_mode_card_page_has_the_sandbox_form_with_a_blocked_category():
    card = card_for(when=NOW)

    html = client_for(card.customer).get(CARD_PAGE).content.decode()

    assert 'data-testid="sandbox-form"' in html
    assert 'value="7995"' in html


# --- the plan pages and the page's cost --------------------------------------------------------


def test_a_card_plan_is_shown_as_the_shop_it_was_bought_at():
    card = card_for(when=NOW)
    client = client_for(card.customer)
    buy(client, card, "150", shop="Boulangerie Paul")
    payment = CardAuthorisation.objects.get(card=card).payment

    plans = client.get(reverse("portal:plans"))
    plan = client.get(reverse("portal:plan", args=[payment.public_id]))

    assert "Tranche card · Boulangerie Paul" in plans.content.decode()
    assert "Carte Tranche" not in plans.content.decode()
    assert plan.context["summary"]["merchant"] == "Tranche card · Boulangerie Paul"
    assert 'data-testid="bought-with"' in plan.content.decode()


def test_the_card_page_costs_a_fixed_number_of_queries(django_assert_max_num_queries):
    card = card_for(when=NOW)
    client = client_for(card.customer)
    for amount in ("40", "50", "60", "80"):
        buy(client, card, amount)
    buy(client, card, "90", category="7995")

    # The session, the customer, the card, the purchases, what is owed; the session saved.
    with django_assert_max_num_queries(8):
        response = client.get(CARD_PAGE)

    assert response.content.decode().count('data-testid="purchase"') == 5


def test_the_card_request_page_costs_a_fixed_number_of_queries(django_assert_max_num_queries):
    customer = signed_up(when=NOW, address={})
    funding_card(customer, when=NOW)
    client = client_for(customer)
    post(client, "request")
    decision = CardDecision.objects.get(customer=customer)

    # The session, the customer, the card, the funding card, the decision; the session saved.
    with django_assert_max_num_queries(8):
        response = client.get(CARD_PAGE, {"decision": decision.public_id})

    assert response.context["checklist"].three_ds_done
    assert [group["group"] for group in response.context["refusal"]] == ["conditions"]
