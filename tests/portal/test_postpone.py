"""Postponing an instalment from the portal (service and pages), and asking support for a
longer delay."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import translation

from apps.common.dates import debit_time
from apps.common.emails import email_content
from apps.common.errors import NotFound
from apps.common.models import OutgoingEmail
from apps.ledger.models import Posting
from apps.payments import links
from apps.payments.models import Charge, Instalment, PaymentEvent
from apps.schedules.models import SupportRequest
from apps.schedules.services.debits import debit_run
from apps.schedules.services.dunning import dunning_advance
from apps.schedules.services.postponing import (
    LongerDelayRefused,
    PostponeRefused,
    instalment_postpone,
    longer_delay_request,
)
from tests.portal.helpers import CAMILLE, DOMINIQUE, plan_for, sign_in
from tests.schedules.builders import LATER_DECLINED

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)  # 4 x 100 EUR: Nov 10, Dec 10, Jan 10, Feb 10
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
D = date.fromisoformat


@pytest.fixture(autouse=True)
def _now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def plan(shop):
    return plan_for(shop, CAMILLE, when=BOUGHT, locale="en")


def postpone(plan, number: int, new_date: date, *, now: datetime = NOW) -> Instalment:
    return instalment_postpone(
        payment_id=plan.pk,
        number=number,
        new_date=new_date,
        now=now,
        customer_id=plan.customer_id,
    )


def refusal(plan, number: int, new_date: date) -> PostponeRefused:
    with pytest.raises(PostponeRefused) as caught, translation.override("en"):
        postpone(plan, number, new_date)
    return caught.value


def url(plan, number: int = 2, action: str = "postpone") -> str:
    return f"/portal/plans/{plan.public_id}/instalments/{number}/{action}"


@pytest.fixture
def client(plan) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    sign_in(client, plan.customer, when=NOW)
    return client


# --- the service -----------------------------------------------------------------------


def test_postponing_moves_the_date_and_the_debit_and_nothing_else(plan):
    assert [row.due_date.isoformat() for row in plan.instalments.order_by("number")] == [
        "2026-11-10",
        "2026-12-10",
        "2027-01-10",
        "2027-02-10",
    ]
    before = {row.number: row for row in plan.instalments.all()}
    postings = Posting.objects.count()

    moved = postpone(plan, 2, D("2026-12-20"))

    moved.refresh_from_db()
    assert moved.due_date == D("2026-12-20")
    assert moved.postponed_from == D("2026-12-10")
    assert moved.postponements == 1
    assert moved.next_debit_at == debit_time(D("2026-12-20"), hour=8)
    assert moved.state == "pending"
    assert moved.reminded_for == before[2].reminded_for
    assert moved.total_amount == before[2].total_amount  # free
    for row in plan.instalments.exclude(number=2):
        assert (row.due_date, row.next_debit_at, row.total_amount) == (
            before[row.number].due_date,
            before[row.number].next_debit_at,
            before[row.number].total_amount,
        )
    [event] = PaymentEvent.objects.filter(payment=plan, kind="instalment_postponed")
    assert event.detail == {"number": 2, "from": "2026-12-10", "to": "2026-12-20"}
    assert event.created_at == NOW
    assert Posting.objects.count() == postings  # no money moves
    plan.refresh_from_db()
    assert plan.state == "in_progress"


def test_the_customer_gets_an_email_with_the_new_date_and_the_rest_of_the_schedule(plan):
    moved = postpone(plan, 2, D("2026-12-20"))

    email = OutgoingEmail.objects.get(key=f"instalment:{moved.public_id}:postponed:1")
    text, html = email_content(email)
    assert email.to == CAMILLE["email"]
    assert email.language == "en"
    assert email.subject == "Instalment 2 of 4 moved to December 20, 2026"
    assert "is moved from December 10, 2026 to December 20, 2026" in text
    assert "€100.00 will be debited on December 20, 2026" in text
    assert "no fee, no interest" in text
    assert "- 2 of 4: December 20, 2026, €100.00 (moved)" in text
    assert "- 3 of 4: January 10, 2027, €100.00" in text
    assert "- 4 of 4: February 10, 2027, €100.00" in text
    assert "1 of 4" not in text  # paid
    assert links.plan_url(plan.public_id) in text
    assert "remind you" in text
    assert "Instalment 2 of 4 moved to December 20, 2026" in html
    assert "<strong>December 20, 2026</strong>" in html


def test_the_email_is_in_french_for_a_french_plan(shop):
    plan = plan_for(shop, DOMINIQUE, when=BOUGHT, locale="fr")

    moved = postpone(plan, 2, D("2026-12-20"))

    email = OutgoingEmail.objects.get(key=f"instalment:{moved.public_id}:postponed:1")
    text, _html = email_content(email)
    assert email.language == "fr"
    assert "20 décembre 2026" in email.subject
    assert "20 décembre 2026" in text


def test_the_same_postponement_twice_changes_and_sends_once(plan):
    postpone(plan, 2, D("2026-12-20"))

    again = postpone(plan, 2, D("2026-12-20"))

    assert again.due_date == D("2026-12-20") and again.postponements == 1
    assert PaymentEvent.objects.filter(payment=plan, kind="instalment_postponed").count() == 1
    assert OutgoingEmail.objects.filter(key__contains=":postponed:").count() == 1


def test_postponing_twice_is_refused(plan):
    postpone(plan, 2, D("2026-12-20"))

    error = refusal(plan, 2, D("2026-12-22"))

    assert error.extra["reason"] == "already_postponed"
    assert "once" in error.message
    assert plan.instalments.get(number=2).due_date == D("2026-12-20")


def test_a_paid_instalment_cannot_be_postponed(plan):
    error = refusal(plan, 1, D("2026-11-25"))

    assert error.extra["reason"] == "already_paid"
    assert error.message == "This instalment is already paid."
    assert error.http_status == 409


def test_a_date_more_than_fifteen_days_later_is_refused_naming_the_window(plan):
    error = refusal(plan, 2, D("2026-12-26"))

    assert error.extra["reason"] == "date_outside_window"
    assert error.message == "Pick a date between December 11, 2026 and December 25, 2026."
    assert refusal(plan, 2, D("2026-12-10")).extra["reason"] == "date_outside_window"
    assert refusal(plan, 2, D("2026-12-01")).extra["reason"] == "date_outside_window"
    assert postpone(plan, 2, D("2026-12-25")).due_date == D("2026-12-25")


def test_the_last_instalment_may_move_fifteen_days_with_nothing_after_it(shop):
    plan = plan_for(shop, CAMILLE, when=BOUGHT, installments_count=2, amount=20_000)

    assert refusal(plan, 2, D("2026-12-26")).extra["reason"] == "date_outside_window"
    assert postpone(plan, 2, D("2026-12-25")).due_date == D("2026-12-25")


def test_a_date_on_or_after_the_next_instalment_is_refused(shop):
    plan = plan_for(shop, CAMILLE, when=BOUGHT)
    Instalment.objects.filter(payment=plan, number=3).update(due_date=D("2026-12-15"))

    error = refusal(plan, 2, D("2026-12-15"))

    assert error.extra["reason"] == "date_outside_window"
    assert "December 14, 2026" in error.message
    assert postpone(plan, 2, D("2026-12-14")).due_date == D("2026-12-14")


@pytest.mark.parametrize(
    ("state", "reason"),
    [("default", "plan_in_default"), ("stopped", "plan_closed"), ("paid", "plan_closed")],
)
def test_a_plan_in_default_stopped_or_paid_cannot_be_postponed(plan, state, reason):
    type(plan).objects.filter(pk=plan.pk).update(state=state)

    assert refusal(plan, 2, D("2026-12-20")).extra["reason"] == reason


def test_an_instalment_whose_debit_is_in_flight_cannot_be_postponed(plan):
    second = plan.instalments.get(number=2)
    Instalment.objects.filter(pk=second.pk).update(next_debit_at=None)
    Charge.objects.create(
        payment=plan,
        instalment=second,
        card=plan.card,
        kind=Charge.Kind.INSTALMENT,
        idempotency_key=f"instalment:{second.public_id}:attempt:1",
        amount=second.total_amount,
        created_at=NOW,
    )

    error = refusal(plan, 2, D("2026-12-20"))

    assert error.extra["reason"] == "debit_in_progress"
    assert "being debited" in error.message


def test_an_instalment_an_early_payment_is_paying_cannot_be_postponed(plan):
    second, third = plan.instalments.filter(number__in=[2, 3]).order_by("number")
    Charge.objects.create(
        payment=plan,
        covers=[second.pk, third.pk],
        card=plan.card,
        kind=Charge.Kind.EARLY_PAYMENT,
        idempotency_key=f"early:{plan.public_id}:1",
        amount=second.total_amount + third.total_amount,
        status=Charge.Status.UNKNOWN,
        created_at=NOW,
    )

    assert refusal(plan, 3, D("2027-01-20")).extra["reason"] == "debit_in_progress"


def test_a_card_expiring_before_the_date_limits_the_window(plan):
    type(plan.card).objects.filter(pk=plan.card_id).update(exp_month=12, exp_year=2026)
    plan.instalments.filter(number=3).update(due_date=D("2026-12-28"))

    error = refusal(plan, 3, D("2027-01-05"))

    assert error.message == "Pick a date between December 29, 2026 and December 31, 2026."


def test_a_late_instalment_postponed_brings_the_plan_back_on_schedule(shop):
    plan = plan_for(
        shop, CAMILLE, when=datetime(2026, 10, 10, 10, tzinfo=UTC), card_number=LATER_DECLINED
    )
    second = plan.instalments.get(number=2)
    assert second.due_date == D("2026-11-10")
    first_try = second.next_debit_at + timedelta(minutes=5)
    with time_machine.travel(first_try, tick=False):
        debit_run(now=first_try)
    dunning_advance(now=NOW)  # 13 days late: the customer is contacted
    plan.refresh_from_db()
    second.refresh_from_db()
    assert plan.state == "late_contact_customer" and second.state == "incident"
    fee_with_late_fee = second.customer_fee

    moved = postpone(plan, 2, D("2026-11-25"))

    moved.refresh_from_db()
    plan.refresh_from_db()
    assert moved.state == "pending"
    assert moved.due_date == D("2026-11-25") and moved.postponed_from == D("2026-11-10")
    assert moved.next_debit_at == debit_time(D("2026-11-25"), hour=8)
    assert moved.customer_fee == fee_with_late_fee  # the late fee stays
    assert plan.state == "in_progress"
    back = PaymentEvent.objects.get(payment=plan, kind="back_on_schedule")
    assert (back.from_state, back.to_state) == ("late_contact_customer", "in_progress")


def test_a_late_instalment_cannot_move_past_fifteen_days_after_its_due_date(shop):
    plan = plan_for(
        shop, CAMILLE, when=datetime(2026, 10, 10, 10, tzinfo=UTC), card_number=LATER_DECLINED
    )
    second = plan.instalments.get(number=2)
    first_try = second.next_debit_at + timedelta(minutes=5)
    with time_machine.travel(first_try, tick=False):
        debit_run(now=first_try)

    error = refusal(plan, 2, D("2026-11-26"))

    assert error.message == "Pick a date between November 24, 2026 and November 25, 2026."


def test_an_instalment_fifteen_days_late_can_no_longer_be_moved(shop):
    plan = plan_for(
        shop, CAMILLE, when=datetime(2026, 10, 8, 10, tzinfo=UTC), card_number=LATER_DECLINED
    )
    second = plan.instalments.get(number=2)
    first_try = second.next_debit_at + timedelta(minutes=5)
    with time_machine.travel(first_try, tick=False):
        debit_run(now=first_try)

    error = refusal(plan, 2, D("2026-11-24"))

    assert error.extra["reason"] == "too_late"


def test_another_customers_plan_is_not_found(plan, shop):
    other = plan_for(shop, DOMINIQUE, when=BOUGHT)

    with pytest.raises(NotFound):
        instalment_postpone(
            payment_id=plan.pk,
            number=2,
            new_date=D("2026-12-20"),
            now=NOW,
            customer_id=other.customer_id,
        )

    assert plan.instalments.get(number=2).postponements == 0


# --- the pages -------------------------------------------------------------------------


def test_the_page_shows_the_instalment_and_a_date_input_within_the_window(client, plan):
    response = client.get(url(plan))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Move instalment 2 of 4" in page
    assert "€100.00" in page and "December 10, 2026" in page
    assert 'type="date" min="2026-12-11" max="2026-12-25"' in page
    assert 'value="2026-12-25"' in page
    assert "Between December 11, 2026 and December 25, 2026." in page
    assert "January 10, 2027" in page and "February 10, 2027" in page  # the schedule
    assert url(plan, 2, "longer") in page
    assert response.headers["Cache-Control"] == "private, no-store"


def test_picking_a_date_asks_for_confirmation_and_changes_nothing_yet(client, plan):
    response = client.post(url(plan), {"date": "2026-12-20"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Move €100.00 from December 10, 2026 to <strong>December 20, 2026</strong>?" in page
    assert 'name="confirm" value="yes"' in page
    assert 'name="date" value="2026-12-20"' in page
    assert plan.instalments.get(number=2).due_date == D("2026-12-10")


def test_confirming_moves_the_date_and_returns_to_the_plan_with_a_message(client, plan):
    response = client.post(url(plan), {"date": "2026-12-20", "confirm": "yes"})

    assert response.status_code == 302
    assert response.headers["Location"] == f"/portal/plans/{plan.public_id}"
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Instalment 2 moved to December 20, 2026."
    ]
    assert plan.instalments.get(number=2).due_date == D("2026-12-20")


def test_a_double_click_on_confirm_moves_once(client, plan):
    first = client.post(url(plan), {"date": "2026-12-20", "confirm": "yes"})
    second = client.post(url(plan), {"date": "2026-12-20", "confirm": "yes"})

    assert first.status_code == second.status_code == 302
    assert PaymentEvent.objects.filter(payment=plan, kind="instalment_postponed").count() == 1
    assert OutgoingEmail.objects.filter(key__contains=":postponed:").count() == 1
    assert plan.instalments.get(number=2).postponements == 1


def test_a_date_outside_the_window_is_shown_on_the_page(client, plan):
    for data in ({"date": "2026-12-30"}, {"date": "2026-12-30", "confirm": "yes"}):
        response = client.post(url(plan), data)

        assert response.status_code == 400
        assert (
            "Pick a date between December 11, 2026 and December 25, 2026."
            in response.content.decode()
        )
    assert plan.instalments.get(number=2).postponements == 0


def test_a_missing_or_malformed_date_is_shown_on_the_page(client, plan):
    assert "Pick a date." in client.post(url(plan), {"date": ""}).content.decode()
    response = client.post(url(plan), {"date": "20/12/2026", "confirm": "yes"})
    assert response.status_code == 400
    assert "Enter a date" in response.content.decode()
    assert plan.instalments.get(number=2).postponements == 0


def test_a_paid_instalment_page_explains_why_without_a_form(client, plan):
    response = client.get(url(plan, 1))

    page = response.content.decode()
    assert "This instalment is already paid." in page
    assert 'type="date"' not in page
    assert url(plan, 1, "longer") not in page


def test_after_one_postponement_the_page_explains_and_offers_a_longer_delay(client, plan):
    postpone(plan, 2, D("2026-12-20"))

    page = client.get(url(plan)).content.decode()

    assert "You have already moved this instalment" in page
    assert 'type="date"' not in page
    assert url(plan, 2, "longer") in page
    assert "moved from December 10, 2026" in page


def test_the_page_is_in_french_by_default(plan):
    client = Client()
    sign_in(client, plan.customer, when=NOW)

    page = client.get(url(plan)).content.decode()

    with translation.override("fr"):
        assert "10 décembre 2026" in page


def test_another_customers_plan_is_a_404_and_changes_nothing(plan, shop):
    stranger = plan_for(shop, DOMINIQUE, when=BOUGHT)
    client = Client()
    sign_in(client, stranger.customer, when=NOW)

    assert client.get(url(plan)).status_code == 404
    assert client.post(url(plan), {"date": "2026-12-20", "confirm": "yes"}).status_code == 404
    assert client.get(url(plan, 2, "longer")).status_code == 404
    assert client.post(url(plan, 2, "longer"), {"date": "2027-01-20"}).status_code == 404
    assert client.get(url(stranger, 9)).status_code == 404
    assert plan.instalments.get(number=2).postponements == 0
    assert not SupportRequest.objects.exists()


def test_without_signing_in_the_page_asks_to_sign_in(plan):
    response = Client().get(url(plan))

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/portal/sign-in?next=")


def test_posting_without_the_csrf_token_is_refused(plan):
    client = Client(enforce_csrf_checks=True)
    sign_in(client, plan.customer, when=NOW)

    response = client.post(url(plan), {"date": "2026-12-20", "confirm": "yes"})

    assert response.status_code == 403
    assert plan.instalments.get(number=2).postponements == 0


# --- a longer delay --------------------------------------------------------------------


def test_asking_for_a_longer_delay_creates_a_ticket_an_event_and_two_emails(client, plan):
    page = client.get(url(plan, 2, "longer"))
    assert page.status_code == 200
    assert 'min="2026-12-11"' in page.content.decode()

    response = client.post(
        url(plan, 2, "longer"), {"date": "2027-01-05", "message": "Lost my job, paid on the 3rd"}
    )

    assert response.status_code == 302
    assert response.headers["Location"] == f"/portal/plans/{plan.public_id}"
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "We received your request. We answer within 2 working days, by email."
    ]
    ticket = SupportRequest.objects.get()
    assert ticket.kind == "postpone" and ticket.status == "open"
    assert ticket.customer == plan.customer and ticket.payment == plan
    assert ticket.instalment.number == 2
    assert ticket.requested_date == D("2027-01-05")
    assert ticket.message == "Lost my job, paid on the 3rd"
    assert ticket.email == CAMILLE["email"]
    event = PaymentEvent.objects.get(payment=plan, kind="longer_delay_requested")
    assert event.detail == {
        "number": 2,
        "requested_date": "2027-01-05",
        "reference": ticket.public_id,
    }
    assert OutgoingEmail.objects.filter(key__startswith=f"support:{ticket.public_id}:").count() == 2
    assert plan.instalments.get(number=2).due_date == D("2026-12-10")  # support decides


def test_a_double_click_on_the_longer_delay_form_sends_one_request(client, plan):
    data = {"date": "2027-01-05", "message": ""}

    client.post(url(plan, 2, "longer"), data)
    client.post(url(plan, 2, "longer"), data)

    assert SupportRequest.objects.count() == 1
    assert PaymentEvent.objects.filter(kind="longer_delay_requested").count() == 1


def test_a_longer_delay_needs_a_date_after_the_due_date_and_within_a_year(client, plan):
    for day in ("2026-12-10", "2027-11-24", ""):
        response = client.post(url(plan, 2, "longer"), {"date": day})

        assert response.status_code == 400
    assert "Pick a date between December 11, 2026 and November 23, 2027." in (
        client.post(url(plan, 2, "longer"), {"date": "2026-12-01"}).content.decode()
    )
    assert not SupportRequest.objects.exists()


def test_a_longer_delay_for_a_paid_instalment_is_refused(client, plan):
    page = client.get(url(plan, 1, "longer")).content.decode()
    assert "Nothing is left to pay on this instalment." in page

    with pytest.raises(LongerDelayRefused, match="already paid"), translation.override("en"):
        longer_delay_request(
            customer=plan.customer,
            payment=plan,
            number=1,
            requested_date=D("2027-01-05"),
            message="",
            now=NOW,
        )
    assert not SupportRequest.objects.exists()
