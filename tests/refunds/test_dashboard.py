"""Refunds from the dashboard's payment page: the preview, the confirmation (once per token),
bad amounts, unpaid payments, scoping by merchant and mode, CSRF, both languages."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import translation

from apps.common.idempotency import idempotency_claim, request_fingerprint
from apps.common.money import to_cents
from apps.merchants.access import MODE_SESSION_KEY
from apps.payments.models import Payment, PaymentState
from apps.refunds import views
from apps.refunds.allocation import RefundWaitForDebit
from apps.refunds.models import Refund
from apps.refunds.services import REFUNDABLE_STATES
from apps.schedules.models import Receipt
from tests.payments.builders import payment_create_for
from tests.refunds.builders import refunded
from tests.schedules.builders import accepted

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
LATEST = datetime(2026, 3, 5, 11, 0, tzinfo=UTC)  # within the session


@pytest.fixture(autouse=True)
def _later():
    with time_machine.travel(LATER, tick=False):
        yield


@pytest.fixture
def payment(shop) -> Payment:
    return accepted(shop, when=BOUGHT, installments_count=4, amount=40_000)


def logged_in(client, shop, *, live=False):
    client.force_login(shop.owner)
    if live:
        session = client.session
        session[MODE_SESSION_KEY] = True
        session.save()
    return client


def refund_url(payment) -> str:
    return reverse("refunds:refund", args=[payment.public_id])


def page_url(payment) -> str:
    return reverse("dashboard:payment", args=[payment.public_id])


def fr(message: str, **values: str) -> str:
    """A message as the dashboard shows it by default: in French."""
    with translation.override("fr"):
        return translation.gettext(message) % values if values else translation.gettext(message)


def said(response) -> list[str]:
    """The messages shown on the page a followed redirect ended on."""
    return [str(message) for message in response.context["messages"]]


def schedule(payment) -> list[tuple[int, int, str]]:
    return [
        (row.number, to_cents(row.purchase_amount), row.state)
        for row in payment.instalments.order_by("number")
    ]


def preview(client, payment, **query):
    response = client.get(refund_url(payment), query)
    assert response.status_code == 200
    return response


def confirm(client, payment, response):
    """POST the preview page's confirmation form as the browser would."""
    hidden = dict(response.context["preview"]["hidden"])
    hidden["token"] = response.context["preview"]["token"]
    return client.post(refund_url(payment), hidden, follow=True)


def test_the_preview_cancels_from_the_last_instalment_and_refunds_nothing(client, shop, payment):
    client = logged_in(client, shop)

    response = preview(client, payment, amount="150,00", merchant_reference="RMA-7")

    shown = response.context["preview"]
    assert [(cut["number"], cut["principal"], cut["cancelled"]) for cut in shown["cuts"]] == [
        (4, 10_000, True),
        (3, 5_000, False),
    ]
    assert shown["allocation"].to_card == 0
    assert [(row["number"], row["before"], row["after"]) for row in shown["schedule"]] == [
        (1, 10_000, 10_000),
        (2, 10_000, 10_000),
        (3, 10_000, 5_000),
        (4, 10_000, 0),
    ]
    page = response.content.decode()
    assert "150,00\xa0€" in page
    assert 'name="token"' in page
    assert 'value="RMA-7"' in page
    assert "Confirm the refund" in page or "Confirmer le remboursement" in page
    assert not Refund.objects.exists()
    payment.refresh_from_db()
    assert to_cents(payment.amount_refunded) == 0


def test_the_preview_of_everything_states_what_goes_back_to_the_card(client, shop, payment):
    client = logged_in(client, shop)
    first = payment.instalments.get(number=1)
    paid_back = to_cents(first.purchase_amount + first.customer_fee + first.customer_interest)

    response = preview(client, payment, full="1")

    shown = response.context["preview"]
    assert shown["full"]
    assert shown["allocation"].amount == 40_000
    assert shown["allocation"].back_to_card == paid_back
    assert shown["cancelled"] == 30_000
    assert [cut["number"] for cut in shown["cuts"]] == [4, 3, 2]
    assert shown["hidden"] == {
        "full": "1",
        "amount": "400.00",
        "merchant_reference": "",
        "comment": "",
    }
    page = response.content.decode()
    euros = f"{paid_back // 100},{paid_back % 100:02d}\xa0€"
    assert f"exactly {euros}" in page or f"exactement {euros}" in page


def test_confirming_refunds_partially_then_fully_and_lists_both(client, shop, payment):
    client = logged_in(client, shop)

    response = confirm(
        client,
        payment,
        preview(client, payment, amount="150", merchant_reference="RMA-7", comment="Un article"),
    )

    assert response.redirect_chain == [(page_url(payment) + "#refunds", 302)]
    assert said(response) == [fr("Refund of %(amount)s made.", amount="150,00\xa0€")]
    payment.refresh_from_db()
    assert schedule(payment) == [
        (1, 10_000, "paid"),
        (2, 10_000, "pending"),
        (3, 5_000, "pending"),
        (4, 0, "paid"),
    ]
    assert to_cents(payment.amount_refunded) == 15_000
    assert payment.state == PaymentState.IN_PROGRESS
    refund = Refund.objects.get()
    assert refund.origin == Refund.Origin.DASHBOARD
    assert refund.requested_by == shop.owner
    assert (refund.merchant_reference, refund.comment) == ("RMA-7", "Un article")
    page = client.get(page_url(payment)).content.decode()
    assert "RMA-7" in page and "Un article" in page and shop.owner.email in page
    assert "Cancelled (refund)" in page or "Annulée (remboursement)" in page
    assert re.search(r"<del>.*100,00\xa0€</del> 50,00\xa0€", page)
    assert "250,00\xa0€" in page  # left to refund

    with time_machine.travel(LATEST, tick=False):
        response = confirm(client, payment, preview(client, payment, full="1"))

    assert said(response) == [fr("Refund of %(amount)s made.", amount="250,00\xa0€")]
    payment.refresh_from_db()
    assert payment.state == PaymentState.PAID
    assert payment.is_completely_refunded
    assert [row[1] for row in schedule(payment)] == [10_000, 0, 0, 0]
    newest, oldest = (
        Refund.objects.order_by("-created_at").values_list("public_id", flat=True).all()
    )
    response = client.get(page_url(payment))
    page = response.content.decode()
    assert page.index(newest) < page.index(oldest)
    assert fr("This payment is completely refunded.") in page
    assert refund_url(payment) not in page
    assert client.get(refund_url(payment), {"full": "1"}).status_code == 302


@pytest.mark.parametrize("amount", ["0", "-1", "abc", "400,01", "12,345", "1e3", "NaN", ""])
def test_a_bad_amount_shows_the_field_error_and_refunds_nothing(client, shop, payment, amount):
    client = logged_in(client, shop)

    response = preview(client, payment, amount=amount)

    assert response.context["preview"] is None
    [error] = response.context["form"].errors["amount"]
    assert "400,00\xa0€" in error
    assert error in response.content.decode().replace("&#x27;", "'")
    assert not Refund.objects.exists()


def test_more_than_what_is_left_is_refused_at_confirmation_too(client, shop, payment):
    client = logged_in(client, shop)
    stale = preview(client, payment, amount="300")
    refunded(payment, amount=20_000, when=LATER)

    response = confirm(client, payment, stale)

    assert said(response) == [
        fr("This is more than what is left to refund: at most %(maximum)s.", maximum="200,00\xa0€")
    ]
    assert Refund.objects.count() == 1
    # Nothing was refunded: the same confirmation may be sent again once it is valid.
    assert said(confirm(client, payment, stale)) == said(response)


def test_an_unpaid_payment_explains_why_and_refuses_to_refund(client, shop):
    waiting = payment_create_for(shop, purchase_amount=20_000)
    client = logged_in(client, shop)

    page = client.get(page_url(waiting)).content.decode()
    response = client.get(refund_url(waiting), {"full": "1"}, follow=True)
    posted = client.post(
        refund_url(waiting),
        {"full": "1", "amount": "200.00", "token": uuid.uuid4().hex},
        follow=True,
    )

    assert "Nothing to refund: this payment was not paid." in page or "pas été payé" in page
    assert refund_url(waiting) not in page
    assert response.redirect_chain == [(page_url(waiting) + "#refunds", 302)]
    assert said(response) == said(posted)
    assert posted.redirect_chain == [(page_url(waiting) + "#refunds", 302)]
    [message] = said(posted)
    assert "nothing to refund" in message.lower() or "rien à rembourser" in message.lower()
    assert not Refund.objects.exists()


def test_another_merchants_payment_and_the_other_modes_are_not_found(
    client, shop, other_shop, payment
):
    theirs = accepted(other_shop, when=BOUGHT, installments_count=3, amount=30_000)
    mine = logged_in(client, shop)
    token = {"full": "1", "amount": "300.00", "token": uuid.uuid4().hex}

    assert mine.get(refund_url(theirs), {"full": "1"}).status_code == 404
    assert mine.post(refund_url(theirs), token).status_code == 404
    live = logged_in(Client(), shop, live=True)
    assert live.get(refund_url(payment), {"full": "1"}).status_code == 404
    assert live.post(refund_url(payment), token | {"amount": "400.00"}).status_code == 404
    assert mine.get(reverse("refunds:refund", args=["payment_nope"])).status_code == 404
    assert not Refund.objects.exists()


def test_a_double_post_with_the_same_token_refunds_once(client, shop, payment):
    client = logged_in(client, shop)
    shown = preview(client, payment, amount="50")

    first = confirm(client, payment, shown)
    second = confirm(client, payment, shown)

    assert said(first) == [fr("Refund of %(amount)s made.", amount="50,00\xa0€")]
    assert second.redirect_chain == [(page_url(payment) + "#refunds", 302)]
    assert said(second) == [fr("This refund was already confirmed: it was made once.")]
    assert Refund.objects.count() == 1
    payment.refresh_from_db()
    assert to_cents(payment.amount_refunded) == 5_000


def test_a_confirmation_still_running_is_not_made_a_second_time(client, shop, payment):
    client = logged_in(client, shop)
    shown = preview(client, payment, amount="50")
    fields = shown.context["preview"]["hidden"]

    idempotency_claim(
        scope=f"dashboard-refund:{shop.merchant.pk}",
        key=shown.context["preview"]["token"],
        fingerprint=request_fingerprint("POST", refund_url(payment), dict(fields)),
        now=LATER,
    )

    response = confirm(client, payment, shown)

    assert said(response) == [fr("This refund is being made: the list below shows it shortly.")]
    assert not Refund.objects.exists()


def test_a_token_sent_with_other_fields_or_no_token_refunds_nothing(client, shop, payment):
    client = logged_in(client, shop)
    shown = preview(client, payment, amount="50")
    confirm(client, payment, shown)
    token = shown.context["preview"]["token"]

    changed = client.post(refund_url(payment), {"amount": "60.00", "token": token}, follow=True)
    missing = client.post(refund_url(payment), {"amount": "60.00"}, follow=True)

    assert said(changed) == [fr("This confirmation is not valid: preview the refund again.")]
    assert said(missing) == [fr("This confirmation is not valid: preview the refund again.")]
    assert Refund.objects.count() == 1


def test_the_confirmation_needs_the_csrf_token(shop, payment):
    client = logged_in(Client(enforce_csrf_checks=True), shop)

    response = client.post(
        refund_url(payment), {"full": "1", "amount": "400.00", "token": uuid.uuid4().hex}
    )

    assert response.status_code == 403
    assert not Refund.objects.exists()


def test_logged_out_people_are_sent_to_log_in(client, payment):
    response = client.get(refund_url(payment), {"full": "1"})

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(("language", "amount"), [("fr", "150,00\xa0€"), ("en", "€150.00")])
def test_the_pages_render_in_french_and_english(client, shop, payment, language, amount):
    client = logged_in(client, shop)
    refunded(payment, amount=5_000, when=LATER, merchant_reference="R-1")

    shown = client.get(refund_url(payment), {"amount": "150"}, HTTP_ACCEPT_LANGUAGE=language)
    page = client.get(page_url(payment), HTTP_ACCEPT_LANGUAGE=language)

    for response in (shown, page):
        assert response.status_code == 200
        assert f'<html lang="{language}">' in response.content.decode()
    assert amount in shown.content.decode()
    assert "R-1" in page.content.decode()


def test_the_list_says_api_for_the_apis_refunds_and_links_a_rendered_credit_note(
    client, shop, payment
):
    client = logged_in(client, shop)
    by_api = refunded(payment, amount=5_000, when=LATER, comment="Retour")
    by_api.credit_note_number = "AV-2026-0001"
    by_api.save(update_fields=["credit_note_number"])
    receipt = Receipt.objects.create(
        number="AV-2026-0001", livemode=False, payment=payment, data={}, created_at=LATER
    )
    link = reverse("schedules:dashboard-receipt", args=[payment.public_id, receipt.number])

    before = client.get(page_url(payment)).content.decode()
    Receipt.objects.filter(pk=receipt.pk).update(rendered_at=LATER)
    after = client.get(page_url(payment)).content.decode()

    row = re.search(rf'<tr id="{by_api.public_id}">.*?</tr>', after, re.S).group(0)
    assert ">API<" in row and "Retour" in row
    assert link not in before and "AV-2026-0001" in before
    assert link in after


def test_the_actions_show_exactly_in_the_refundable_states(client, shop, payment):
    client = logged_in(client, shop)
    shown = {}

    for state in PaymentState.values:
        Payment.objects.filter(pk=payment.pk).update(state=state)
        shown[state] = refund_url(payment) in client.get(page_url(payment)).content.decode()

    assert {state for state, actions in shown.items() if actions} == set(REFUNDABLE_STATES)


def test_a_refund_refused_by_the_domain_says_why_and_frees_the_token(
    client, shop, payment, monkeypatch
):
    client = logged_in(client, shop)
    shown = preview(client, payment, amount="50")

    def busy(**kwargs):
        raise RefundWaitForDebit()

    with monkeypatch.context() as patch:
        patch.setattr(views, "refund_issue", busy)
        refused = confirm(client, payment, shown)
    retried = confirm(client, payment, shown)

    assert said(refused) == [str(RefundWaitForDebit.default_message)]
    assert said(retried) == [fr("Refund of %(amount)s made.", amount="50,00\xa0€")]
    assert Refund.objects.count() == 1


def test_a_confirmation_that_crashed_is_never_run_again(client, shop, payment, monkeypatch):
    client = logged_in(client, shop)
    shown = preview(client, payment, amount="50")

    def crash(**kwargs):
        raise RuntimeError("the process died after the refund was opened")

    with monkeypatch.context() as patch, pytest.raises(RuntimeError):
        patch.setattr(views, "refund_issue", crash)
        confirm(client, payment, shown)
    again = confirm(client, payment, shown)

    assert said(again) == [fr("This confirmation was already used: check the refunds below first.")]
    assert not Refund.objects.exists()
