"""The dashboard's payment list and page: filters, search, keyset pages, scoping by merchant
and mode, sending an IPN again, and remote sales."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from apps.common.models import OutgoingEmail
from apps.merchants.access import MODE_SESSION_KEY
from apps.payments.models import Notification, Payment
from apps.payments.selectors import search_kind
from apps.verification.models import SmsMessage
from tests.payments.builders import payment_create_for
from tests.schedules.builders import accepted

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def logged_in(client, shop, *, live=False):
    client.force_login(shop.owner)
    if live:
        session = client.session
        session[MODE_SESSION_KEY] = True
        session.save()
    return client


def listed(response) -> list[str]:
    return [row["id"] for row in response.context["rows"]]


def make(shop, count, *, start=WHEN, **fields):
    made = []
    for number in range(count):
        with time_machine.travel(start + timedelta(minutes=number), tick=False):
            made.append(payment_create_for(shop, **fields))
    return made


@pytest.mark.parametrize(
    ("term", "kind"),
    [
        ("payment_11uPRjP5FaIYygQao8WdMQFnKRMOV14frx", "payment_id"),
        ("11uPRjP5FaIYygQao8WdMQFnKRMOV14frx", "payment_id"),
        ("camille@example.com", "email"),
        ("06 12 34 56 78", "phone"),
        ("+33612345678", "phone"),
        ("Martin", "text"),
        ("A-1001", "text"),
    ],
)
def test_a_search_term_is_read_as_what_it_looks_like(term, kind):
    assert search_kind(term) == kind


def test_the_list_shows_the_newest_first_with_plan_state_and_next_due_date(client, shop):
    first, second = make(shop, 2, purchase_amount=30_000, installments_count=3)
    paid = accepted(shop, when=WHEN + timedelta(hours=1), installments_count=3, amount=45_000)

    response = logged_in(client, shop).get(reverse("dashboard:payments"))

    assert response.status_code == 200
    assert listed(response) == [paid.public_id, second.public_id, first.public_id]
    row = response.context["rows"][0]
    assert row["next_due"] == f"{paid.instalments.get(number=2).due_date:%d/%m/%Y}"
    assert row["state_label"] == "En cours"
    page = response.content.decode()
    assert "Camille Martin" in page
    assert "450,00\xa0€" in page


def test_keyset_pages_cover_every_payment_once(client, shop):
    made = make(shop, 7, purchase_amount=20_000)
    client = logged_in(client, shop)
    base = reverse("dashboard:payments")
    seen, url = [], base + "?sort=-created"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("apps.payments.dashboard.payments.PAGE_SIZE", 3)
        while url:
            response = client.get(
                url if url.startswith("/") else reverse("dashboard:payments") + url
            )
            seen += listed(response)
            url = response.context["next_url"]

    assert seen == [payment.public_id for payment in reversed(made)]


def test_sorting_by_amount_both_ways(client, shop):
    small, large, middle = (
        make(shop, 1, purchase_amount=amount, start=WHEN + timedelta(hours=index))[0]
        for index, amount in enumerate([10_000, 90_000, 50_000])
    )
    client = logged_in(client, shop)

    down = client.get(reverse("dashboard:payments"), {"sort": "-amount"})
    up = client.get(reverse("dashboard:payments"), {"sort": "amount"})

    assert listed(down) == [large.public_id, middle.public_id, small.public_id]
    assert listed(up) == [small.public_id, middle.public_id, large.public_id]


def test_filters_by_state_plan_date_origin_and_amount(client, shop):
    three = make(shop, 1, purchase_amount=30_000, installments_count=3)[0]
    four = make(
        shop, 1, purchase_amount=80_000, installments_count=4, start=WHEN + timedelta(days=3)
    )[0]
    paid = accepted(shop, when=WHEN + timedelta(days=1), installments_count=3, amount=50_000)
    client = logged_in(client, shop)
    url = reverse("dashboard:payments")

    assert listed(client.get(url, {"state": "in_progress"})) == [paid.public_id]
    assert listed(client.get(url, {"plan": "4"})) == [four.public_id]
    assert listed(client.get(url, {"created_to": "2026-10-05"})) == [three.public_id]
    assert listed(client.get(url, {"created_from": "2026-10-06", "created_to": "2026-10-06"})) == [
        paid.public_id
    ]
    assert listed(client.get(url, {"amount_min": "400", "amount_max": "900.00"})) == [
        four.public_id,
        paid.public_id,
    ]
    assert listed(client.get(url, {"origin": "pos"})) == []
    assert len(listed(client.get(url, {"origin": "online"}))) == 3


def test_junk_filters_are_ignored_and_named_never_a_500(client, shop):
    made = make(shop, 2, purchase_amount=30_000)
    client = logged_in(client, shop)

    response = client.get(
        reverse("dashboard:payments"),
        {
            "state": "nonsense",
            "created_from": "yesterday",
            "amount_min": "12,x",
            "plan": "99",
            "sort": "DROP TABLE",
            "after": "payment_unknown",
        },
    )

    assert response.status_code == 200
    assert set(listed(response)) == {payment.public_id for payment in made}
    assert len(response.context["ignored"]) == 5  # state, plan, from, amount, sort
    assert "Non compris, donc non appliqué" in response.content.decode()


def test_search_by_id_reference_email_name_and_phone(client, shop):
    camille = make(shop, 1, purchase_amount=30_000)[0]
    other = payment_create_for(
        shop,
        purchase_amount=30_000,
        customer={
            "first_name": "Jean",
            "last_name": "Dupont",
            "email": "JEAN@Example.com",
            "phone": "06 98 76 54 32",
        },
        order={"merchant_reference": "CMD-77"},
    )
    client = logged_in(client, shop)
    url = reverse("dashboard:payments")

    def found(term):
        return listed(client.get(url, {"q": term}))

    assert found(camille.public_id) == [camille.public_id]
    assert found(camille.public_id.removeprefix("payment_")) == [camille.public_id]
    assert found("CMD-77") == [other.public_id]
    assert found("jean@example.com") == [other.public_id]
    assert found("dup") == [other.public_id]
    assert found("Jean Dupont") == [other.public_id]
    assert found("Camille Dupont") == []
    assert found("06 98 76 54 32") == [other.public_id]
    assert found("nobody@example.com") == []


def test_the_list_and_search_never_show_another_merchant_or_the_other_mode(
    client, shop, other_shop
):
    mine = make(shop, 1, purchase_amount=30_000)[0]
    live = payment_create_for(shop, purchase_amount=30_000, livemode=True)
    theirs = payment_create_for(other_shop, purchase_amount=30_000)

    test_view = logged_in(client, shop).get(reverse("dashboard:payments"))
    searched = client.get(reverse("dashboard:payments"), {"q": theirs.public_id})
    live_view = logged_in(client, shop, live=True).get(reverse("dashboard:payments"))

    assert listed(test_view) == [mine.public_id]
    assert listed(searched) == []
    assert listed(live_view) == [live.public_id]


def test_the_mode_switch_changes_what_the_dashboard_shows(client, shop):
    live = payment_create_for(shop, purchase_amount=30_000, livemode=True)
    client = logged_in(client, shop)

    response = client.post(
        reverse("dashboard:mode"), {"mode": "live", "next": reverse("dashboard:payments")}
    )

    assert response["Location"] == reverse("dashboard:payments")
    assert listed(client.get(reverse("dashboard:payments"))) == [live.public_id]
    off_site = client.post(
        reverse("dashboard:mode"), {"mode": "test", "next": "https://evil.example/"}
    )
    assert off_site["Location"] == reverse("dashboard:home")


def test_the_payment_page_shows_schedule_customer_orders_and_history(client, shop):
    payment = accepted(shop, when=WHEN, installments_count=3, amount=45_000)

    response = logged_in(client, shop).get(reverse("dashboard:payment", args=[payment.public_id]))

    assert response.status_code == 200
    page = response.content.decode()
    assert payment.public_id in page
    assert "A-1001" in page
    assert "camille.martin@example.com" in page
    assert [row.number for row, _receipts in response.context["instalments"]] == [1, 2, 3]
    labels = [event["label"] for event in response.context["events"]]
    assert "Paiement créé" in labels or "Payment created" in labels
    assert response.context["paid_cents"] + response.context["owed_cents"] == 45_000 + sum(
        int(row.customer_fee.amount * 100) for row, _ in response.context["instalments"]
    )


def test_another_merchants_or_the_other_modes_payment_is_not_found(client, shop, other_shop):
    theirs = payment_create_for(other_shop, purchase_amount=30_000)
    live = payment_create_for(shop, purchase_amount=30_000, livemode=True)
    client = logged_in(client, shop)

    assert client.get(reverse("dashboard:payment", args=[theirs.public_id])).status_code == 404
    assert client.get(reverse("dashboard:payment", args=[live.public_id])).status_code == 404
    assert client.get(reverse("dashboard:payment", args=["payment_nope"])).status_code == 404


def test_an_ipn_is_sent_again_from_the_payment_page(
    client, shop, django_capture_on_commit_callbacks
):
    shop.merchant.ipn_callback_url = "https://shop.example/ipn"
    shop.merchant.save()
    payment = accepted(shop, when=WHEN, installments_count=3, amount=45_000)
    notification = Notification.objects.get(payment=payment)
    Notification.objects.filter(pk=notification.pk).update(status=Notification.Status.FAILED)
    client = logged_in(client, shop)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            reverse("dashboard:notification-resend", args=[payment.public_id, notification.pk])
        )

    assert response.status_code == 302
    notification.refresh_from_db()
    assert notification.status == Notification.Status.PENDING
    assert payment.events.filter(kind="notification_resent").count() == 1
    assert len(callbacks) == 1
    assert (
        client.get(
            reverse("dashboard:notification-resend", args=[payment.public_id, notification.pk])
        ).status_code
        == 405
    )


def test_an_ipn_of_another_merchant_cannot_be_sent_again(client, shop, other_shop):
    other_shop.merchant.ipn_callback_url = "https://other.example/ipn"
    other_shop.merchant.save()
    theirs = accepted(other_shop, when=WHEN, installments_count=3, amount=45_000)
    notification = Notification.objects.get(payment=theirs)
    client = logged_in(client, shop)

    response = client.post(
        reverse("dashboard:notification-resend", args=[theirs.public_id, notification.pk])
    )

    assert response.status_code == 404
    assert not theirs.events.filter(kind="notification_resent").exists()


def test_a_remote_sale_creates_a_pos_sms_payment_and_texts_the_link(client, shop):
    client = logged_in(client, shop)
    plan = shop.merchant.fee_plans.filter(kind="pos", installments_count=3).first()
    assert plan is not None

    response = client.post(
        reverse("dashboard:remote-sale"),
        {
            "amount": "249.90",
            "plan": plan.key,
            "first_name": "Léa",
            "last_name": "Petit",
            "send_by": "sms",
            "phone": "06 11 22 33 44",
            "reference": "DEVIS-12",
        },
    )

    payment = Payment.objects.get(merchant=shop.merchant)
    assert response["Location"] == reverse("dashboard:payment", args=[payment.public_id])
    assert payment.origin == Payment.Origin.POS_SMS
    assert payment.purchase_amount.amount * 100 == 24_990
    assert payment.installments_count == 3
    assert payment.orders.get().merchant_reference == "DEVIS-12"
    sms = SmsMessage.objects.get()
    assert payment.public_id in sms.text or "/checkout/" in sms.text


def test_a_remote_sale_by_email_sends_the_link_by_email(client, shop, mailoutbox):
    client = logged_in(client, shop)
    plan = shop.merchant.fee_plans.filter(kind="pos", installments_count=4).first()

    client.post(
        reverse("dashboard:remote-sale"),
        {
            "amount": "300",
            "plan": plan.key,
            "first_name": "Léa",
            "last_name": "Petit",
            "send_by": "email",
            "email": "lea@example.com",
        },
    )

    payment = Payment.objects.get(merchant=shop.merchant)
    assert payment.origin == Payment.Origin.POS_LINK
    email = OutgoingEmail.objects.get(to="lea@example.com")
    assert email.key == f"payment:{payment.public_id}:link-email:1"
    assert payment.events.filter(kind="payment_link_email").count() == 1


def test_a_remote_sale_explains_what_is_wrong(client, shop):
    client = logged_in(client, shop)
    plan = shop.merchant.fee_plans.filter(kind="pos", installments_count=3).first()

    missing_phone = client.post(
        reverse("dashboard:remote-sale"),
        {"amount": "100", "plan": plan.key, "first_name": "A", "last_name": "B", "send_by": "sms"},
    )
    too_big = client.post(
        reverse("dashboard:remote-sale"),
        {
            "amount": "999999",
            "plan": plan.key,
            "first_name": "A",
            "last_name": "B",
            "send_by": "sms",
            "phone": "0611223344",
        },
    )

    assert missing_phone.status_code == 200
    assert "phone" in missing_phone.context["form"].errors
    assert too_big.status_code == 200
    assert too_big.context["form"].non_field_errors()
    assert not Payment.objects.exists()
    assert len(mail.outbox) == 0
