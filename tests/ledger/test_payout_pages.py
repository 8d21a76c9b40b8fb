"""The dashboard's payouts pages: balances, the list, one payout's lines, its CSV file."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.common.money import to_cents
from apps.ledger import recipes
from apps.ledger.models import Payout
from apps.ledger.selectors import payout_lines, payouts_page
from apps.ledger.services import payout_fail, payouts_run, posting_create
from apps.ledger.services.payouts import payout_create, payout_run_open
from apps.ledger.views import mask_iban
from apps.merchants.access import MODE_SESSION_KEY
from apps.merchants.models import Merchant
from tests.ledger.test_payouts import backdate_ledger

FR_IBAN = "FR7630006000011234567890189"
DAY = date(2030, 1, 7)


def payable(shop, *, delay: int = 0) -> Merchant:
    Merchant.objects.filter(pk=shop.merchant.pk).update(
        payout_iban=FR_IBAN, settlement_delay_days=delay
    )
    shop.merchant.refresh_from_db()
    return shop.merchant


def sale(merchant, cents: int, *, fee: int = 0, livemode: bool = False) -> str:
    payment_id = f"payment_{uuid.uuid4().hex[:12]}"
    posting_create(
        recipes.payment_captured(
            merchant_id=merchant.pk,
            livemode=livemode,
            payment_id=payment_id,
            purchase_cents=cents,
            first_principal_cents=cents,
            customer_fee_cents=0,
            interest_cents=0,
            merchant_fee_cents=fee,
            processor_reference=f"ch_{payment_id}",
            effective_at=timezone.now(),
        )
    )
    return payment_id


def refund(merchant, payment_id: str, cents: int, *, refund_id: str | None = None) -> None:
    refund_id = refund_id or f"refund_{uuid.uuid4().hex[:12]}"
    posting_create(
        recipes.refund_issued(
            merchant_id=merchant.pk,
            livemode=False,
            payment_id=payment_id,
            refund_id=refund_id,
            receivable_cancelled_cents=0,
            to_card_cents=cents,
            effective_at=timezone.now(),
        )
    )


def pay_out(merchant, day: date = DAY, *, livemode: bool = False) -> Payout:
    payouts_run(run_date=day, livemode=livemode, now=timezone.now())
    return Payout.objects.get(merchant=merchant, run__run_date=day, livemode=livemode)


def logged_in(client, shop, *, live: bool = False):
    client.force_login(shop.owner)
    if live:
        session = client.session
        session[MODE_SESSION_KEY] = True
        session.save()
    return client


# --- the list --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_shows_the_balances_and_each_payout_newest_first_with_a_masked_iban(client, shop):
    merchant = payable(shop, delay=7)
    sale(merchant, 10_000, fee=300)
    backdate_ledger(10)
    first = pay_out(merchant, DAY)
    sale(merchant, 5_000)
    backdate_ledger(10)
    second = pay_out(merchant, DAY + timedelta(days=1))
    sale(merchant, 2_500, fee=100)  # within the settlement delay: pending

    response = logged_in(client, shop).get(reverse("ledger:payouts"), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert response.context["balance"].pending_cents == 2_400
    assert response.context["balance"].available_cents == 0
    assert [payout for payout, _iban in response.context["rows"]] == [second, first]
    page = response.content.decode()
    assert "€24.00" in page and "€97.00" in page and "€50.00" in page
    assert "•••• 0189" in page
    assert FR_IBAN not in page
    assert reverse("ledger:payout", args=[first.public_id]) in page


@pytest.mark.django_db
def test_the_list_without_payouts_says_so(client, shop):
    response = logged_in(client, shop).get(reverse("ledger:payouts"), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert "No test payout yet" in response.content.decode()
    assert response.context["balance"].available_cents == 0


@pytest.mark.django_db
def test_the_list_speaks_french_by_default(client, shop):
    response = logged_in(client, shop).get(reverse("ledger:payouts"))

    assert response.status_code == 200
    assert response["Content-Language"] == "fr"


@pytest.mark.django_db
def test_the_list_shows_only_this_merchants_payouts_in_this_mode(client, shop, other_shop):
    mine = payable(shop)
    theirs = payable(other_shop)
    sale(mine, 1_500)
    sale(mine, 2_000, livemode=True)
    sale(theirs, 3_000)
    test_payout = pay_out(mine)
    live_payout = pay_out(mine, livemode=True)
    their_payout = pay_out(theirs)

    test_page = logged_in(client, shop).get(reverse("ledger:payouts"))
    live_page = logged_in(client, shop, live=True).get(reverse("ledger:payouts"))

    assert [payout for payout, _iban in test_page.context["rows"]] == [test_payout]
    assert [payout for payout, _iban in live_page.context["rows"]] == [live_payout]
    assert their_payout.public_id not in test_page.content.decode()


@pytest.mark.django_db
def test_the_list_pages_by_25_and_continues_after_the_last_payout_shown(client, shop):
    merchant = payable(shop)
    made = []
    for n in range(26):  # payouts made without their runs' SEPA files, which take time
        sale(merchant, 1_000 + n)
        run = payout_run_open(run_date=DAY + timedelta(days=n), livemode=False, now=timezone.now())
        made.append(payout_create(run=run, merchant=merchant, now=timezone.now()))
    newest_first = list(reversed(made))
    client = logged_in(client, shop)

    first = client.get(reverse("ledger:payouts"))
    second = client.get(reverse("ledger:payouts"), {"after": first.context["next_after"]})

    assert [payout for payout, _iban in first.context["rows"]] == newest_first[:25]
    assert first.context["next_after"] == newest_first[24].public_id
    assert f"?after={newest_first[24].public_id}" in first.content.decode()
    assert [payout for payout, _iban in second.context["rows"]] == newest_first[25:]
    assert second.context["next_after"] is None


@pytest.mark.django_db
def test_keyset_pages_break_ties_on_the_same_creation_time_by_id(shop):
    merchant = payable(shop)
    for n in range(3):
        sale(merchant, 1_000)
        pay_out(merchant, DAY + timedelta(days=n))
    Payout.objects.filter(merchant=merchant).update(created_at=timezone.now())
    ids = list(Payout.objects.order_by("-pk").values_list("public_id", flat=True))

    first = payouts_page(merchant_id=merchant.pk, livemode=False, limit=2)
    second = payouts_page(merchant_id=merchant.pk, livemode=False, after=first.next_after, limit=2)

    assert [p.public_id for p in first.payouts] == ids[:2]
    assert [p.public_id for p in second.payouts] == ids[2:]
    assert second.next_after is None


@pytest.mark.django_db
def test_an_unknown_or_foreign_after_starts_from_the_newest(client, shop, other_shop):
    merchant = payable(shop)
    theirs = payable(other_shop)
    sale(merchant, 1_000)
    sale(theirs, 1_000)
    mine = pay_out(merchant)
    foreign = pay_out(theirs)
    client = logged_in(client, shop)

    for after in ("junk", foreign.public_id, "' OR 1=1 --"):
        response = client.get(reverse("ledger:payouts"), {"after": after})

        assert response.status_code == 200
        assert [payout for payout, _iban in response.context["rows"]] == [mine]


def test_an_iban_shows_only_its_last_four_characters():
    assert mask_iban(FR_IBAN) == "•••• 0189"
    assert mask_iban("") == ""


# --- one payout ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_payout_lists_its_sales_fees_and_refunds_and_they_add_up_to_its_amount(client, shop):
    merchant = payable(shop, delay=7)
    kept = sale(merchant, 12_000, fee=450)
    refunded = sale(merchant, 3_000, fee=90)
    refund(merchant, refunded, 1_000)
    backdate_ledger(10)
    pending = sale(merchant, 5_000)  # not settled yet: the next payout's

    payout = pay_out(merchant)
    response = logged_in(client, shop).get(
        reverse("ledger:payout", args=[payout.public_id]), HTTP_ACCEPT_LANGUAGE="en"
    )

    lines = [
        (line.kind, line.reference, line.cents) for line, _label, _link in response.context["lines"]
    ]
    assert lines == [
        ("payment_captured", kept, 12_000),
        ("merchant_fee", kept, -450),
        ("payment_captured", refunded, 3_000),
        ("merchant_fee", refunded, -90),
        ("refund_issued", refunded, -1_000),
    ]
    assert response.context["total_cents"] == to_cents(payout.amount) == 13_460
    page = response.content.decode()
    assert pending not in page
    assert "€134.60" in page
    assert "Tranche fee" in page and "Refund" in page
    assert reverse("dashboard:payment", args=[kept]) in page


@pytest.mark.django_db
def test_each_payout_settles_only_what_the_previous_one_did_not(shop):
    merchant = payable(shop, delay=7)
    early = sale(merchant, 10_000, fee=300)
    backdate_ledger(10)
    late = sale(merchant, 5_000, fee=150)  # pending at the first payout
    first = pay_out(merchant, DAY)
    later = sale(merchant, 2_000)
    backdate_ledger(10)

    second = pay_out(merchant, DAY + timedelta(days=1))

    first_lines = payout_lines(payout=first)
    second_lines = payout_lines(payout=second)
    assert {line.reference for line in first_lines} == {early}
    assert {line.reference for line in second_lines} == {late, later}
    assert sum(line.cents for line in first_lines) == to_cents(first.amount) == 9_700
    assert sum(line.cents for line in second_lines) == to_cents(second.amount) == 6_850


@pytest.mark.django_db
def test_a_refund_larger_than_the_balance_carries_over_to_the_next_payout(shop):
    merchant = payable(shop)
    first_sale = sale(merchant, 3_000)
    first = pay_out(merchant, DAY)
    refund(merchant, first_sale, 2_000)  # the balance is now -20.00: no payout the next day
    payouts_run(run_date=DAY + timedelta(days=1), livemode=False, now=timezone.now())
    second_sale = sale(merchant, 5_000)

    third = pay_out(merchant, DAY + timedelta(days=2))

    assert Payout.objects.filter(merchant=merchant).count() == 2
    assert [(line.kind, line.reference) for line in payout_lines(payout=first)] == [
        ("payment_captured", first_sale)
    ]
    lines = payout_lines(payout=third)
    assert [(line.kind, line.reference, line.cents) for line in lines] == [
        ("refund_issued", first_sale, -2_000),
        ("payment_captured", second_sale, 5_000),
    ]
    assert to_cents(third.amount) == 3_000


@pytest.mark.django_db
def test_a_returned_payout_is_a_line_of_the_next_one(shop):
    merchant = payable(shop)
    sale(merchant, 4_000)
    first = pay_out(merchant, DAY)
    payout_fail(payout=first, reason="Account closed", now=timezone.now())

    second = pay_out(merchant, DAY + timedelta(days=1))

    lines = payout_lines(payout=second)
    assert [(line.kind, line.reference, line.cents) for line in lines] == [
        ("payout_failed", first.public_id, 4_000)
    ]
    assert to_cents(second.amount) == 4_000


@pytest.mark.django_db
def test_a_payout_shows_its_history(client, shop):
    merchant = payable(shop)
    sale(merchant, 4_000)
    payout = pay_out(merchant)
    payout_fail(payout=payout, reason="Account closed", now=timezone.now())

    response = logged_in(client, shop).get(
        reverse("ledger:payout", args=[payout.public_id]), HTTP_ACCEPT_LANGUAGE="en"
    )

    assert [event.to_status for event in response.context["events"]] == [
        "pending",
        "sent",
        "failed",
    ]
    page = response.content.decode()
    assert "Transfer rejected" in page and "Account closed" in page


@pytest.mark.django_db
def test_another_merchants_payout_is_not_found_on_its_page_nor_as_a_file(client, shop, other_shop):
    theirs = payable(other_shop)
    sale(theirs, 2_000)
    payout = pay_out(theirs)
    client = logged_in(client, shop)

    page = client.get(reverse("ledger:payout", args=[payout.public_id]))
    download = client.get(reverse("ledger:payout-download", args=[payout.public_id, "csv"]))

    assert page.status_code == 404
    assert download.status_code == 404


@pytest.mark.django_db
def test_a_payout_of_the_other_mode_is_not_found(client, shop):
    merchant = payable(shop)
    sale(merchant, 2_000, livemode=True)
    live_payout = pay_out(merchant, livemode=True)
    client = logged_in(client, shop)  # test mode

    page = client.get(reverse("ledger:payout", args=[live_payout.public_id]))
    download = client.get(reverse("ledger:payout-download", args=[live_payout.public_id, "csv"]))

    assert page.status_code == 404
    assert download.status_code == 404


@pytest.mark.django_db
def test_an_unknown_payout_is_not_found(client, shop):
    response = logged_in(client, shop).get(reverse("ledger:payout", args=["payout_nope"]))

    assert response.status_code == 404


@pytest.mark.django_db
def test_the_payout_pages_need_a_login(client):
    response = client.get(reverse("ledger:payouts"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- the file --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_csv_holds_the_lines_and_the_total_with_formulas_defused(client, shop):
    merchant = payable(shop)
    paid = sale(merchant, 12_000, fee=450)
    refund(merchant, paid, 2_000, refund_id="=HYPERLINK(evil)")
    payout = pay_out(merchant)

    response = logged_in(client, shop).get(
        reverse("ledger:payout-download", args=[payout.public_id, "csv"]),
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="{payout.public_id}.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["Payout", "Date", "Type", "Reference", "Detail", "Amount (EUR)"]
    assert [row[2:] for row in rows[1:]] == [
        ["Sale", paid, "", "120.00"],
        ["Tranche fee", paid, "", "-4.50"],
        ["Refund", paid, "'=HYPERLINK(evil)", "-20.00"],
        ["Total", "", "", "95.50"],
    ]
    assert to_cents(payout.amount) == 9_550


@pytest.mark.django_db
def test_only_csv_files_are_offered(client, shop):
    merchant = payable(shop)
    sale(merchant, 2_000)
    payout = pay_out(merchant)
    client = logged_in(client, shop)

    for file_format in ("pdf", "xlsx", "CSV", "%00"):
        response = client.get(
            reverse("ledger:payout-download", args=[payout.public_id, file_format])
        )

        assert response.status_code == 404
