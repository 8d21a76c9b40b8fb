"""The sandbox card processor (apps/payments/processor_sandbox.py) and its ACS page, on the
real database: every test card, idempotency, races, the timeout, refunds and settlement."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.ledger.reconciliation import SettlementLine, parse_settlement_csv
from apps.ledger.settlement_reports import DirectorySettlementReports
from apps.payments.card_rules import CardFacts, card_refusals
from apps.payments.models import SandboxCard, SandboxCharge, SandboxThreeDS
from apps.payments.processor import (
    CardDetails,
    CardProcessor,
    ChargeRequest,
    InvalidCard,
    ProcessorUnavailable,
    UnknownCharge,
    card_processor,
)
from apps.payments.processor_sandbox import (
    TEST_CARDS,
    InvalidRequest,
    ProcessorKeyReused,
    SandboxProcessor,
    UnknownAuthentication,
    UnknownToken,
    bin_info,
    bin_ranges,
    write_settlement_report,
)
from tests.support import all_database_text
from tests.support import run_in_threads as threads_run

NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
EXP_YEAR = 2029
RETURN_URL = "https://shop.example/checkout/back?step=card"
ALLOWED = frozenset({"FR", "BE", "ES", "DE", "IT"})

SUCCESS = "4970100000000006"
CHALLENGE = "4970100000000014"
MASTERCARD = "5130100000000000"
BELGIAN = "4970200000000004"
DO_NOT_HONOR = "4000000000000002"
INSUFFICIENT = "4000000000009995"
LATER_INSUFFICIENT = "4970100000000345"
PREPAID = "4970150000000001"
ELECTRON = "4026000000000002"
MAESTRO = "6759000000000000"
VIRTUAL = "4970180000000008"
AMERICAN = "4000560000000005"
TIMES_OUT = "4000000000007775"


@pytest.fixture
def processor() -> SandboxProcessor:
    return SandboxProcessor()


@pytest.fixture(autouse=True)
def _reports_in_tmp(settings, tmp_path):
    settings.SETTLEMENT_REPORTS_DIR = str(tmp_path)


@pytest.fixture(autouse=True)
def _frozen_day():
    with time_machine.travel(NOW, tick=False):
        yield


def tokenise(processor, number, *, livemode=False, exp_month=12, exp_year=EXP_YEAR, cvc="123"):
    return processor.tokenise(
        number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc, livemode=livemode
    )


def checkout_charge(processor, card: CardDetails, *, amount=10_000, key="", livemode=False):
    """A customer-initiated charge after a frictionless 3-D Secure, as the checkout does."""
    three_ds = processor.three_ds_start(
        token=card.token, amount_cents=amount, return_url=RETURN_URL, livemode=livemode
    )
    assert three_ds.status == "authenticated"
    return processor.charge(
        token=card.token,
        amount_cents=amount,
        idempotency_key=key or f"checkout:{card.token}",
        livemode=livemode,
        three_ds_reference=three_ds.reference,
    )


def debit(processor, card: CardDetails, *, amount=2_500, key="instalment:1:attempt:1"):
    return processor.charge(
        token=card.token,
        amount_cents=amount,
        idempotency_key=key,
        livemode=False,
        merchant_initiated=True,
    )


def facts(card: CardDetails) -> CardFacts:
    return CardFacts(
        brand=card.brand,
        funding=card.funding,
        product=card.product,
        issuer_country=card.issuer_country,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
    )


def run_in_threads(work: Callable[[int], object], count: int) -> list[object]:
    return threads_run(work, count)


# --- the tables ------------------------------------------------------------------------------


def test_the_settings_choose_the_sandbox_and_it_has_the_interface():
    chosen = card_processor()

    assert isinstance(chosen, SandboxProcessor)
    for name in CardProcessor.__dict__:
        if not name.startswith("_"):
            assert callable(getattr(chosen, name)), name


def test_every_test_card_is_a_valid_number_in_the_bin_table():
    numbers = [number for number, _description in TEST_CARDS]

    assert len(numbers) == len(set(numbers)) == 13
    for number, description in TEST_CARDS:
        assert bin_info(number) is not None, number
        assert description


def test_the_bin_table_has_realistic_ranges_beyond_the_test_cards():
    table = bin_ranges()
    countries = {info.issuer_country for info in table.values()}

    assert len(table) >= 40
    assert {"FR", "BE", "ES", "DE", "IT", "US"} <= countries
    assert {info.product for info in table.values()} >= {"electron", "maestro", "virtual"}
    assert "prepaid" in {info.funding for info in table.values()}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bin", "expected"),
    [
        ("497010", ("cb", "debit", "", "FR")),
        ("49701000", ("cb", "debit", "", "FR")),
        ("497035", ("cb", "debit", "", "FR")),
        ("49703580", ("cb", "prepaid", "", "FR")),  # the longer range inside 497035 wins
        ("49703599", ("cb", "debit", "", "FR")),
        ("402600", ("visa", "debit", "electron", "FR")),
        ("400056", ("visa", "credit", "", "US")),
    ],
)
def test_bin_lookup_takes_the_longest_matching_range(processor, bin, expected):
    info = processor.bin_lookup(bin=bin)

    assert info is not None
    assert info.bin == bin
    assert (info.brand, info.funding, info.product, info.issuer_country) == expected


@pytest.mark.django_db
@pytest.mark.parametrize("bin", ["999999", "4970", "49701a", ""])
def test_bin_lookup_knows_nothing_of_unknown_or_malformed_bins(processor, bin):
    assert processor.bin_lookup(bin=bin) is None


# --- tokenising ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_tokenising_gives_the_bin_data_and_stores_no_card_number(processor):
    card = tokenise(processor, "4970 1000 0000 0006", cvc="737")

    assert card == CardDetails(
        token=card.token,
        bin="49701000",
        last4="0006",
        brand="cb",
        funding="debit",
        product="",
        issuer_country="FR",
        exp_month=12,
        exp_year=EXP_YEAR,
        fingerprint=card.fingerprint,
    )
    stored = SandboxCard.objects.get(token=card.token)
    assert (stored.bin, stored.last4, stored.scenario) == ("49701000", "0006", "success")
    everything = all_database_text()
    assert card.token in everything
    assert SUCCESS not in everything


@pytest.mark.django_db
def test_the_fingerprint_names_the_card_number_not_the_tokenisation(processor):
    first = tokenise(processor, "4970 1000 0000 0006")
    again = tokenise(processor, "4970100000000006", cvc="999")
    other = tokenise(processor, "4000 0000 0000 0002")

    assert first.token != again.token
    assert first.fingerprint == again.fingerprint
    assert first.fingerprint != other.fingerprint
    assert len(first.fingerprint) == 32
    assert "4970100000000006" not in first.fingerprint


@pytest.mark.django_db
def test_no_test_card_number_reaches_the_database(processor):
    for number, _description in TEST_CARDS:
        tokenise(processor, number)

    everything = all_database_text()

    assert SandboxCard.objects.count() == len(TEST_CARDS)
    assert [number for number, _d in TEST_CARDS if number in everything] == []


@pytest.mark.django_db
def test_tokenising_one_card_twice_gives_two_tokens(processor):
    first = tokenise(processor, SUCCESS)
    second = tokenise(processor, SUCCESS)

    assert first.token != second.token
    assert SandboxCard.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("number", "brand"), [("5555555555554444", "mastercard"), ("3530111333300000", "other")]
)
def test_a_card_outside_the_bin_table_has_no_country_so_the_rules_refuse_it(
    processor, number, brand
):
    card = tokenise(processor, number)

    assert (card.brand, card.funding, card.issuer_country) == (brand, "credit", "")
    codes = [
        r.code
        for r in card_refusals(
            facts(card), last_due_date=date(2026, 9, 15), allowed_countries=ALLOWED
        )
    ]
    assert "issuer_country_not_allowed" in codes


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"number": "4970100000000007"}, "number"),  # fails Luhn
        ({"number": "4970-1000-0000-000x"}, "number"),
        ({"number": "0"}, "number"),
        ({"exp_month": 5, "exp_year": 2026}, "expiry"),  # ended on 31 May
        ({"exp_month": 12, "exp_year": 2025}, "expiry"),
        ({"exp_month": 13}, "expiry"),
        ({"exp_month": 0}, "expiry"),
        ({"exp_year": 2100}, "expiry"),
        ({"cvc": "12"}, "cvc"),
        ({"cvc": "12345"}, "cvc"),
        ({"cvc": "12a"}, "cvc"),
        ({"cvc": ""}, "cvc"),
    ],
)
def test_the_processor_refuses_invalid_card_details(processor, changes, field):
    details = {"number": SUCCESS, "exp_month": 12, "exp_year": EXP_YEAR, "cvc": "123"} | changes

    with pytest.raises(InvalidCard) as refused:
        processor.tokenise(livemode=False, **details)

    assert refused.value.extra["field"] == field
    assert refused.value.message
    assert not SandboxCard.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("exp_month", "exp_year", "stored_year"), [(6, 2026, 2026), (6, 26, 2026), (1, 31, 2031)]
)
def test_a_card_is_accepted_through_its_expiry_month_and_two_digit_years_are_read(
    processor, exp_month, exp_year, stored_year
):
    card = tokenise(processor, SUCCESS, exp_month=exp_month, exp_year=exp_year, cvc="1234")

    assert (card.exp_month, card.exp_year) == (exp_month, stored_year)


# --- every test card's outcome ---------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("number", "status", "decline_code", "refusals"),
    [
        (SUCCESS, "succeeded", "", []),
        (MASTERCARD, "succeeded", "", []),
        (BELGIAN, "succeeded", "", []),
        (DO_NOT_HONOR, "declined", "do_not_honor", []),
        (INSUFFICIENT, "declined", "insufficient_funds", []),
        (LATER_INSUFFICIENT, "succeeded", "", []),
        # The processor charges these; Tranche's card rules refuse them first.
        (PREPAID, "succeeded", "", ["prepaid_card"]),
        (ELECTRON, "succeeded", "", ["systematic_authorisation_card"]),
        (MAESTRO, "succeeded", "", ["systematic_authorisation_card"]),
        (VIRTUAL, "succeeded", "", ["virtual_card"]),
        (AMERICAN, "succeeded", "", ["issuer_country_not_allowed"]),
    ],
)
def test_each_test_card_at_checkout(processor, number, status, decline_code, refusals):
    card = tokenise(processor, number)

    result = checkout_charge(processor, card, amount=12_345)

    assert (result.status, result.decline_code, result.amount_cents) == (
        status,
        decline_code,
        12_345,
    )
    codes = card_refusals(facts(card), last_due_date=date(2026, 9, 15), allowed_countries=ALLOWED)
    assert [refusal.code for refusal in codes] == refusals
    assert SandboxCharge.objects.get(reference=result.reference).status == status


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("number", "status", "decline_code"),
    [
        (SUCCESS, "succeeded", ""),
        (CHALLENGE, "succeeded", ""),  # no challenge for merchant-initiated debits
        (LATER_INSUFFICIENT, "declined", "insufficient_funds"),
        (DO_NOT_HONOR, "declined", "do_not_honor"),
        (INSUFFICIENT, "declined", "insufficient_funds"),
    ],
)
def test_merchant_initiated_debits_need_no_authentication(processor, number, status, decline_code):
    card = tokenise(processor, number)

    result = debit(processor, card)

    assert (result.status, result.decline_code) == (status, decline_code)


@pytest.mark.django_db
def test_a_customer_initiated_charge_needs_an_authentication_of_that_card(processor):
    card = tokenise(processor, SUCCESS)
    other = tokenise(processor, SUCCESS)
    others_3ds = processor.three_ds_start(
        token=other.token, amount_cents=100, return_url=RETURN_URL, livemode=False
    )

    without = processor.charge(
        token=card.token, amount_cents=100, idempotency_key="k1", livemode=False
    )
    borrowed = processor.charge(
        token=card.token,
        amount_cents=100,
        idempotency_key="k2",
        livemode=False,
        three_ds_reference=others_3ds.reference,
    )

    assert (without.status, without.decline_code) == ("declined", "authentication_required")
    assert (borrowed.status, borrowed.decline_code) == ("declined", "authentication_required")


@pytest.mark.django_db
def test_a_card_past_its_expiry_is_declined_on_later_debits(processor):
    card = tokenise(processor, SUCCESS, exp_month=7, exp_year=2026)

    with time_machine.travel(datetime(2026, 7, 31, 21, 59, tzinfo=UTC), tick=False):
        last_day = debit(processor, card, key="instalment:1:attempt:1")  # 23:59 in Paris
    with time_machine.travel(datetime(2026, 7, 31, 22, 0, tzinfo=UTC), tick=False):
        next_day = debit(processor, card, key="instalment:2:attempt:1")  # 1 August in Paris

    assert last_day.status == "succeeded"
    assert (next_day.status, next_day.decline_code) == ("declined", "expired_card")


@pytest.mark.django_db
def test_a_token_works_only_in_its_own_mode(processor):
    card = tokenise(processor, SUCCESS, livemode=False)

    with pytest.raises(UnknownToken):
        processor.charge(
            token=card.token,
            amount_cents=100,
            idempotency_key="live-1",
            livemode=True,
            merchant_initiated=True,
        )
    with pytest.raises(UnknownToken):
        processor.three_ds_start(
            token=card.token, amount_cents=100, return_url=RETURN_URL, livemode=True
        )

    assert not SandboxCharge.objects.exists()


# --- idempotency and races -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_same_key_twice_charges_once_and_answers_the_same(processor):
    card = tokenise(processor, SUCCESS)

    first = debit(processor, card, key="instalment:7:attempt:1")
    again = debit(processor, card, key="instalment:7:attempt:1")

    assert again == first
    assert SandboxCharge.objects.count() == 1


@pytest.mark.django_db
def test_a_declined_charge_is_also_answered_again_for_its_key(processor):
    card = tokenise(processor, DO_NOT_HONOR)

    first = debit(processor, card, key="instalment:8:attempt:1")
    again = debit(processor, card, key="instalment:8:attempt:1")

    assert again == first
    assert first.decline_code == "do_not_honor"
    assert SandboxCharge.objects.count() == 1


@pytest.mark.django_db
def test_a_key_reused_for_another_amount_or_card_is_refused(processor):
    card = tokenise(processor, SUCCESS)
    other = tokenise(processor, SUCCESS)
    debit(processor, card, amount=2_500, key="instalment:9:attempt:1")

    with pytest.raises(ProcessorKeyReused) as other_amount:
        debit(processor, card, amount=2_600, key="instalment:9:attempt:1")
    with pytest.raises(ProcessorKeyReused):
        debit(processor, other, amount=2_500, key="instalment:9:attempt:1")

    assert other_amount.value.code == "idempotency_key_reused"
    assert SandboxCharge.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_simultaneous_calls_with_one_key_make_one_charge():
    card = tokenise(SandboxProcessor(), SUCCESS)

    results = run_in_threads(
        lambda i: debit(SandboxProcessor(), card, key="instalment:42:attempt:1"), count=8
    )

    assert SandboxCharge.objects.count() == 1
    reference = SandboxCharge.objects.get().reference
    assert {result.reference for result in results} == {reference}
    assert {result.status for result in results} == {"succeeded"}


@pytest.mark.django_db(transaction=True)
def test_simultaneous_partial_refunds_never_exceed_the_charge():
    processor = SandboxProcessor()
    charge = debit(processor, tokenise(processor, SUCCESS), amount=10_000)

    results = run_in_threads(
        lambda i: SandboxProcessor().refund(
            charge_reference=charge.reference,
            amount_cents=3_000,
            idempotency_key=f"refund:{i}",
            livemode=False,
        ),
        count=10,
    )

    statuses = sorted(result.status for result in results)
    assert statuses == ["declined"] * 7 + ["succeeded"] * 3
    refunded = SandboxCharge.objects.filter(kind="refund", status="succeeded")
    assert sum(row.amount_cents for row in refunded) == 9_000


# --- the batch endpoint (charge_many) ---------------------------------------------------------


def request(card: CardDetails, key: str, *, amount=2_500, livemode=False) -> ChargeRequest:
    return ChargeRequest(
        token=card.token, amount_cents=amount, idempotency_key=key, livemode=livemode
    )


@pytest.mark.django_db
def test_a_batch_decides_each_charge_like_a_single_debit(processor, django_assert_max_num_queries):
    numbers = [SUCCESS, CHALLENGE, LATER_INSUFFICIENT, DO_NOT_HONOR, INSUFFICIENT]
    cards = [tokenise(processor, number) for number in numbers]
    expired = tokenise(processor, SUCCESS, exp_month=6, exp_year=2026)
    live = tokenise(processor, SUCCESS, livemode=True)
    requests = [request(card, f"batch:{i}") for i, card in enumerate([*cards, expired])]
    requests.append(request(live, "batch:live"))  # a test-mode call with a live token

    with time_machine.travel(datetime(2026, 7, 1, 8, 0, tzinfo=UTC), tick=False):
        with django_assert_max_num_queries(4):  # whatever the batch's size
            results = processor.charge_many(requests)
        singles = [debit(processor, card, key=f"single:{i}") for i, card in enumerate(cards)]

    assert [(r.status, r.decline_code) for r in results[:5]] == [
        (r.status, r.decline_code) for r in singles
    ]
    assert (results[5].status, results[5].decline_code) == ("declined", "expired_card")
    assert (results[6].status, results[6].decline_code, results[6].reference) == (
        "declined",
        "unknown_token",
        "",
    )
    assert [r.idempotency_key for r in results] == [r.idempotency_key for r in requests]
    assert SandboxCharge.objects.filter(idempotency_key__startswith="batch:").count() == 6


@pytest.mark.django_db
def test_a_batch_sent_again_charges_nothing_twice_and_answers_the_same(processor):
    cards = [tokenise(processor, SUCCESS) for _ in range(3)]
    debit(processor, cards[0], key="instalment:1:attempt:1")  # charged alone before
    requests = [request(card, f"instalment:{i + 1}:attempt:1") for i, card in enumerate(cards)]

    first = processor.charge_many(requests)
    again = processor.charge_many(requests)

    assert again == first
    assert all(result.succeeded for result in first)
    assert SandboxCharge.objects.count() == 3


@pytest.mark.django_db
def test_a_key_reused_in_a_batch_for_another_amount_is_declined_and_stores_nothing(processor):
    card = tokenise(processor, SUCCESS)
    debit(processor, card, amount=2_500, key="instalment:9:attempt:1")

    [result] = processor.charge_many([request(card, "instalment:9:attempt:1", amount=2_600)])

    assert (result.status, result.decline_code) == ("declined", "idempotency_key_reused")
    assert SandboxCharge.objects.count() == 1


@pytest.mark.django_db
def test_a_batch_loses_the_timeout_cards_answers_but_their_money_moved(processor):
    ok, slow = tokenise(processor, SUCCESS), tokenise(processor, TIMES_OUT)

    results = processor.charge_many([request(ok, "k:ok"), request(slow, "k:slow")])
    asked = processor.charge_status(idempotency_key="k:slow")
    [again] = processor.charge_many([request(slow, "k:slow")])

    assert results[0].succeeded and results[1] is None
    assert (asked.status, asked.amount_cents) == ("succeeded", 2_500)
    assert again == asked  # a retry with the key is answered, not charged again


@pytest.mark.django_db(transaction=True)
def test_simultaneous_batches_with_the_same_keys_make_one_charge_each():
    processor = SandboxProcessor()
    cards = [tokenise(processor, SUCCESS) for _ in range(20)]
    requests = [request(card, f"instalment:{i}:attempt:1") for i, card in enumerate(cards)]

    results = run_in_threads(lambda i: SandboxProcessor().charge_many(requests), count=4)

    assert SandboxCharge.objects.count() == 20
    assert all(batch == results[0] for batch in results)
    assert all(result.succeeded for result in results[0])


# --- the processor times out -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_timed_out_charge_went_through_and_its_status_says_so(processor):
    card = tokenise(processor, TIMES_OUT)

    with pytest.raises(ProcessorUnavailable):
        checkout_charge(processor, card, amount=5_000, key="payment:1:first:attempt:1")
    status = processor.charge_status(idempotency_key="payment:1:first:attempt:1")
    retried = checkout_charge(processor, card, amount=5_000, key="payment:1:first:attempt:1")

    assert (status.status, status.amount_cents) == ("succeeded", 5_000)
    assert retried == status
    assert SandboxCharge.objects.filter(status="succeeded").count() == 1


@pytest.mark.django_db
def test_the_status_of_a_key_never_used_is_unknown(processor):
    with pytest.raises(UnknownCharge):
        processor.charge_status(idempotency_key="instalment:1:attempt:1")


# --- refunds ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_refunds_are_capped_at_what_is_left_of_the_charge(processor):
    charge = debit(processor, tokenise(processor, SUCCESS), amount=10_000)

    def refund(amount, key):
        return processor.refund(
            charge_reference=charge.reference,
            amount_cents=amount,
            idempotency_key=key,
            livemode=False,
        )

    first = refund(6_000, "refund:1")
    too_much = refund(4_001, "refund:2")
    rest = refund(4_000, "refund:3")
    nothing_left = refund(1, "refund:4")

    assert first.status == rest.status == "succeeded"
    assert (too_much.status, too_much.decline_code) == ("declined", "amount_exceeds_charge")
    assert (nothing_left.status, nothing_left.decline_code) == ("declined", "amount_exceeds_charge")
    assert refund(6_000, "refund:1") == first
    assert processor.charge_status(idempotency_key="refund:3") == rest
    with pytest.raises(ProcessorKeyReused):
        refund(5_000, "refund:1")


@pytest.mark.django_db
def test_a_declined_charge_cannot_be_refunded(processor):
    charge = debit(processor, tokenise(processor, DO_NOT_HONOR), amount=10_000)

    result = processor.refund(
        charge_reference=charge.reference,
        amount_cents=100,
        idempotency_key="refund:1",
        livemode=False,
    )

    assert (result.status, result.decline_code) == ("declined", "amount_exceeds_charge")


@pytest.mark.django_db
def test_refunding_an_unknown_charge_or_one_in_the_other_mode_is_refused(processor):
    charge = debit(processor, tokenise(processor, SUCCESS), amount=10_000)

    with pytest.raises(UnknownCharge):
        processor.refund(
            charge_reference="ch_nothing", amount_cents=100, idempotency_key="r1", livemode=False
        )
    with pytest.raises(UnknownCharge):
        processor.refund(
            charge_reference=charge.reference,
            amount_cents=100,
            idempotency_key="r2",
            livemode=True,
        )

    assert SandboxCharge.objects.filter(kind="refund").count() == 0


# --- 3-D Secure challenge through the ACS page -----------------------------------------------


def acs_path(challenge_url: str) -> str:
    return urlsplit(challenge_url).path


@pytest.mark.django_db
def test_the_challenge_card_is_approved_on_the_acs_page_then_charged(processor, settings):
    card = tokenise(processor, CHALLENGE)
    three_ds = processor.three_ds_start(
        token=card.token, amount_cents=12_345, return_url=RETURN_URL, livemode=False
    )
    before = processor.charge(
        token=card.token,
        amount_cents=12_345,
        idempotency_key="payment:1:first:attempt:1",
        livemode=False,
        three_ds_reference=three_ds.reference,
    )
    browser = Client(enforce_csrf_checks=True)

    page = browser.get(acs_path(three_ds.challenge_url), HTTP_ACCEPT_LANGUAGE="en")
    token = page.cookies["csrftoken"].value
    answer = browser.post(
        acs_path(three_ds.challenge_url),
        {"decision": "approve", "csrfmiddlewaretoken": token},
    )
    after = processor.charge(
        token=card.token,
        amount_cents=12_345,
        idempotency_key="payment:1:first:attempt:2",
        livemode=False,
        three_ds_reference=three_ds.reference,
    )

    assert three_ds.status == "challenge"
    assert three_ds.challenge_url == settings.PUBLIC_BASE_URL + reverse(
        "payments:sandbox-acs", args=[three_ds.reference]
    )
    assert (before.status, before.decline_code) == ("declined", "authentication_required")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Sandbox bank — 3-D Secure" in html
    assert "•••• 0014" in html
    assert "123.45" in html
    assert "<script" not in html
    assert answer.status_code == 303
    back = urlsplit(answer["Location"])
    assert back.netloc == "shop.example"
    assert back.path == "/checkout/back"
    assert parse_qs(back.query) == {"step": ["card"], "threeds": [three_ds.reference]}
    assert processor.three_ds_result(reference=three_ds.reference) == "authenticated"
    assert after.status == "succeeded"


@pytest.mark.django_db
def test_a_denied_challenge_fails_and_a_second_answer_changes_nothing(processor):
    card = tokenise(processor, CHALLENGE)
    three_ds = processor.three_ds_start(
        token=card.token, amount_cents=5_000, return_url=RETURN_URL, livemode=False
    )
    browser = Client()

    denied = browser.post(acs_path(three_ds.challenge_url), {"decision": "deny"})
    approved_later = browser.post(acs_path(three_ds.challenge_url), {"decision": "approve"})
    charge = processor.charge(
        token=card.token,
        amount_cents=5_000,
        idempotency_key="payment:2:first:attempt:1",
        livemode=False,
        three_ds_reference=three_ds.reference,
    )
    page = browser.get(acs_path(three_ds.challenge_url), HTTP_ACCEPT_LANGUAGE="en")

    assert denied.status_code == approved_later.status_code == 303
    assert denied["Location"] == approved_later["Location"]
    assert processor.three_ds_result(reference=three_ds.reference) == "failed"
    assert SandboxThreeDS.objects.get(reference=three_ds.reference).completed_at == NOW
    assert (charge.status, charge.decline_code) == ("declined", "authentication_required")
    assert "This payment was denied." in page.content.decode()
    assert 'name="decision"' not in page.content.decode()


@pytest.mark.django_db
def test_the_acs_page_needs_the_csrf_token(processor):
    card = tokenise(processor, CHALLENGE)
    three_ds = processor.three_ds_start(
        token=card.token, amount_cents=5_000, return_url=RETURN_URL, livemode=False
    )

    answer = Client(enforce_csrf_checks=True).post(
        acs_path(three_ds.challenge_url), {"decision": "approve"}
    )

    assert answer.status_code == 403
    assert processor.three_ds_result(reference=three_ds.reference) == "challenge"


@pytest.mark.django_db
def test_the_acs_page_refuses_unknown_references_and_answers(processor):
    card = tokenise(processor, CHALLENGE)
    three_ds = processor.three_ds_start(
        token=card.token, amount_cents=5_000, return_url=RETURN_URL, livemode=False
    )
    browser = Client()

    unknown = browser.get(reverse("payments:sandbox-acs", args=["3ds_nothing"]))
    bad_answer = browser.post(acs_path(three_ds.challenge_url), {"decision": "maybe"})

    assert unknown.status_code == 404
    assert bad_answer.status_code == 400
    assert processor.three_ds_result(reference=three_ds.reference) == "challenge"
    with pytest.raises(UnknownAuthentication):
        processor.three_ds_result(reference="3ds_nothing")


@pytest.mark.django_db
def test_the_acs_page_is_not_served_with_another_processor(processor, settings):
    card = tokenise(processor, CHALLENGE)
    three_ds = processor.three_ds_start(
        token=card.token, amount_cents=5_000, return_url=RETURN_URL, livemode=False
    )
    settings.CARD_PROCESSOR = "apps.payments.processor.CardProcessor"

    page = Client().get(acs_path(three_ds.challenge_url))

    assert page.status_code == 404


# --- settlement ------------------------------------------------------------------------------


def at(moment: datetime):
    return time_machine.travel(moment, tick=False)


@pytest.mark.django_db
def test_the_settlement_report_holds_the_paris_day_and_round_trips(processor):
    day = date(2026, 3, 29)  # clocks go forward in Paris: a 23-hour day
    card = tokenise(processor, SUCCESS)
    declining = tokenise(processor, DO_NOT_HONOR)
    live = tokenise(processor, SUCCESS, livemode=True)
    with at(datetime(2026, 3, 28, 22, 59, tzinfo=UTC)):  # 23:59 on the 28th in Paris
        debit(processor, card, amount=100, key="before")
    with at(datetime(2026, 3, 28, 23, 0, tzinfo=UTC)):  # midnight in Paris
        first = debit(processor, card, amount=10_000, key="first")
    with at(datetime(2026, 3, 29, 12, 0, tzinfo=UTC)):
        refund = processor.refund(
            charge_reference=first.reference,
            amount_cents=2_550,
            idempotency_key="refund",
            livemode=False,
        )
        debit(processor, declining, amount=700, key="declined")
        processor.charge(
            token=live.token,
            amount_cents=800,
            idempotency_key="live",
            livemode=True,
            merchant_initiated=True,
        )
    with at(datetime(2026, 3, 29, 21, 59, tzinfo=UTC)):  # 23:59 summer time
        last = debit(processor, card, amount=1_234, key="last")
    with at(datetime(2026, 3, 29, 22, 0, tzinfo=UTC)):  # midnight: the 30th
        debit(processor, card, amount=300, key="after")

    path = write_settlement_report(report_date=day, livemode=False)
    text = path.read_text(encoding="utf-8")
    rewritten = write_settlement_report(report_date=day, livemode=False)

    assert path == DirectorySettlementReports().path(report_date=day, livemode=False)
    assert parse_settlement_csv(text) == [
        SettlementLine(first.reference, 10_000, datetime(2026, 3, 28, 23, 0, tzinfo=UTC)),
        SettlementLine(refund.reference, -2_550, datetime(2026, 3, 29, 12, 0, tzinfo=UTC)),
        SettlementLine(last.reference, 1_234, datetime(2026, 3, 29, 21, 59, tzinfo=UTC)),
    ]
    assert "2026-03-29T00:00:00+01:00" in text  # times in Paris, with their offset
    assert rewritten.read_text(encoding="utf-8") == text
    assert DirectorySettlementReports().fetch(report_date=day, livemode=False) == (
        parse_settlement_csv(text)
    )


@pytest.mark.django_db
def test_the_live_report_holds_only_live_charges(processor):
    live = tokenise(processor, SUCCESS, livemode=True)
    debit(processor, tokenise(processor, SUCCESS), amount=100, key="test")
    charge = processor.charge(
        token=live.token,
        amount_cents=800,
        idempotency_key="live",
        livemode=True,
        merchant_initiated=True,
    )

    path = write_settlement_report(report_date=date(2026, 6, 15), livemode=True)

    assert path.parent.name == "live"
    assert parse_settlement_csv(path.read_text(encoding="utf-8")) == [
        SettlementLine(charge.reference, 800, timezone.now())
    ]


@pytest.mark.django_db
def test_an_empty_day_gives_a_report_with_no_lines():
    path = write_settlement_report(report_date=date(2026, 6, 14), livemode=False)

    assert parse_settlement_csv(path.read_text(encoding="utf-8")) == []


# --- bad calls -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("amount", "key"), [(0, "k"), (-5, "k"), (100, ""), (100, "k" * 121)])
def test_charges_need_a_positive_amount_and_a_key(processor, amount, key):
    card = tokenise(processor, SUCCESS)

    with pytest.raises(InvalidRequest) as refused:
        debit(processor, card, amount=amount, key=key)

    assert refused.value.code == "invalid_request"
    assert not SandboxCharge.objects.exists()


@pytest.mark.django_db
def test_a_challenge_needs_somewhere_to_come_back_to(processor):
    card = tokenise(processor, CHALLENGE)

    with pytest.raises(InvalidRequest) as refused:
        processor.three_ds_start(token=card.token, amount_cents=100, return_url="", livemode=False)

    assert refused.value.code == "invalid_request"
    assert not SandboxThreeDS.objects.exists()


@pytest.mark.django_db
def test_every_call_takes_the_configured_network_time(processor, settings):
    settings.SANDBOX_PROCESSOR_LATENCY_MS = 40
    started = time.perf_counter()

    processor.bin_lookup(bin="497010")

    assert time.perf_counter() - started >= 0.04
