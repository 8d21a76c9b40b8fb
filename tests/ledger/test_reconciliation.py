"""Reconciliation: matching the processor's settlement report with processor clearing."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from djmoney.money import Money

from apps.common.dates import BUSINESS_TZ
from apps.ledger import recipes
from apps.ledger.models import Mismatch, ReconciliationRun
from apps.ledger.postings import LedgerError
from apps.ledger.reconciliation import (
    AMOUNT_DIFFERS,
    MISSING_IN_LEDGER,
    MISSING_IN_REPORT,
    InvalidSettlementReport,
    Matching,
    SettlementLine,
    match,
    parse_settlement_csv,
    settlement_csv,
)
from apps.ledger.reconciliation import Mismatch as Found
from apps.ledger.services import mismatch_resolve, posting_create, reconciliation_run
from apps.ledger.services.reconciliation import clearing_by_reference
from apps.ledger.settlement_reports import DirectorySettlementReports, settlement_reports
from apps.ledger.tasks import reconcile_settlement_reports
from apps.merchants.models import Merchant
from apps.merchants.services import merchant_activate
from tests.factories import MerchantFactory

DAY = date(2030, 3, 10)
NOON = datetime(2030, 3, 10, 12, 0, tzinfo=BUSINESS_TZ)


def line(reference: str, cents: int, at: datetime = NOON) -> SettlementLine:
    return SettlementLine(processor_reference=reference, cents=cents, occurred_at=at)


# --- match (pure) ----------------------------------------------------------------------------


def test_match_pairs_each_reference_and_names_every_difference():
    report = [line("ch_ok", 1_000), line("ch_extra", 500), line("ch_wrong", 2_000)]
    ledger = {"ch_ok": 1_000, "ch_wrong": 2_001, "ch_absent": 700}

    result = match(report, ledger)

    assert result == Matching(
        matched=1,
        mismatches=(
            Found(MISSING_IN_REPORT, "ch_absent", None, 700),
            Found(MISSING_IN_LEDGER, "ch_extra", 500, None),
            Found(AMOUNT_DIFFERS, "ch_wrong", 2_000, 2_001),
        ),
    )


def test_match_nets_the_report_lines_of_one_reference():
    report = [line("ch_1", 3_000), line("ch_1", -1_000), line("re_1", -400)]

    assert match(report, {"ch_1": 2_000, "re_1": -400}) == Matching(matched=2, mismatches=())
    assert match(report, {"ch_1": 3_000, "re_1": -400}).mismatches == (
        Found(AMOUNT_DIFFERS, "ch_1", 2_000, 3_000),
    )


def test_match_of_nothing_is_nothing():
    assert match([], {}) == Matching(matched=0, mismatches=())


def test_a_reference_netting_to_zero_on_one_side_is_still_compared():
    report = [line("ch_1", 1_000), line("ch_1", -1_000)]

    assert match(report, {}).mismatches == (Found(MISSING_IN_LEDGER, "ch_1", 0, None),)
    assert match(report, {"ch_1": 0}) == Matching(matched=1, mismatches=())


# --- the CSV format --------------------------------------------------------------------------

HEADER = "processor_reference,type,amount,currency,occurred_at\n"


def test_parse_reads_charges_positive_and_refunds_negative():
    text = (
        HEADER + "ch_1,charge,12.34,EUR,2030-03-10T12:00:00+01:00\n"
        "re_1,refund,5,EUR,2030-03-10T23:59:59+00:00\n"
        "ch_2,charge,0.01,EUR,2030-03-10T08:00:00Z\n"
    )

    assert parse_settlement_csv(text) == [
        line("ch_1", 1_234, datetime(2030, 3, 10, 12, tzinfo=BUSINESS_TZ)),
        line("re_1", -500, datetime(2030, 3, 10, 23, 59, 59, tzinfo=UTC)),
        line("ch_2", 1, datetime(2030, 3, 10, 8, tzinfo=UTC)),
    ]


def test_parse_of_a_header_only_report_is_empty():
    assert parse_settlement_csv(HEADER) == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("reference,type,amount,currency,occurred_at\n", "columns"),
        ("processor_reference,type,amount,occurred_at,currency\n", "columns"),
        ("", "columns"),
        (HEADER + "ch_1,charge,12.3.4,EUR,2030-03-10T12:00:00+01:00\n", "Line 2"),
        (HEADER + "ch_1,charge,abc,EUR,2030-03-10T12:00:00+01:00\n", "Line 2"),
        (HEADER + "ch_1,charge,1.234,EUR,2030-03-10T12:00:00+01:00\n", "Line 2"),
        (HEADER + "ch_1,charge,12.34,USD,2030-03-10T12:00:00+01:00\n", "EUR"),
        (HEADER + "ch_1,charge,12.34,EUR,2030-03-10T12:00:00\n", "offset"),
        (HEADER + "ch_1,charge,12.34,EUR,yesterday\n", "Line 2"),
        (HEADER + "ch_1,charge,0.00,EUR,2030-03-10T12:00:00+01:00\n", "positive"),
        (HEADER + "ch_1,charge,-1.00,EUR,2030-03-10T12:00:00+01:00\n", "positive"),
        (HEADER + "ch_1,chargeback,1.00,EUR,2030-03-10T12:00:00+01:00\n", "charge or refund"),
        (HEADER + ",charge,1.00,EUR,2030-03-10T12:00:00+01:00\n", "reference"),
        (
            HEADER + "ch_1,charge,1.00,EUR,2030-03-10T12:00:00+01:00\n"
            "ch_2,refund,0,EUR,2030-03-10T12:00:00+01:00\n",
            "Line 3",
        ),
    ],
)
def test_parse_refuses_a_malformed_report(text, says):
    with pytest.raises(InvalidSettlementReport) as error:
        parse_settlement_csv(text)

    assert says in str(error.value)


def test_settlement_csv_round_trips():
    lines = [
        line("ch_1", 1_234),
        line("re_1", -1),
        line("ch_2", 100_000_00, datetime(2030, 3, 10, 23, 59, tzinfo=UTC)),
        line('ch_"odd",ref', 99),
    ]

    text = settlement_csv(lines)

    assert text.startswith(HEADER)
    assert "ch_1,charge,12.34,EUR," in text
    assert "re_1,refund,0.01,EUR," in text
    assert parse_settlement_csv(text) == lines
    assert [ln.occurred_at.utcoffset() for ln in parse_settlement_csv(text)] == [
        ln.occurred_at.utcoffset() for ln in lines
    ]


# --- the service -----------------------------------------------------------------------------


def merchant_create() -> Merchant:
    return merchant_activate(
        merchant=MerchantFactory(payout_iban="FR7630006000011234567890189"),
        now=timezone.now(),
    )


def captured(merchant, *, reference, cents, at, livemode=False, fee=0, payment_id=None):
    """A payment whose first instalment (`cents` with the customer fee) was charged."""
    payment_id = payment_id or f"pay_{uuid.uuid4().hex[:10]}"
    posting_create(
        recipes.payment_captured(
            merchant_id=merchant.pk,
            livemode=livemode,
            payment_id=payment_id,
            purchase_cents=cents * 3,
            first_principal_cents=cents,
            customer_fee_cents=fee,
            interest_cents=0,
            merchant_fee_cents=0,
            processor_reference=reference,
            effective_at=at,
        )
    )
    return payment_id


def collected(merchant, payment_id, *, reference, cents, at):
    posting_create(
        recipes.instalment_collected(
            merchant_id=merchant.pk,
            livemode=False,
            payment_id=payment_id,
            instalment_id=f"inst_{reference}",
            principal_cents=cents,
            processor_reference=reference,
            effective_at=at,
        )
    )


def refunded(merchant, payment_id, *, reference, cancelled, to_card, at):
    posting_create(
        recipes.refund_issued(
            merchant_id=merchant.pk,
            livemode=False,
            payment_id=payment_id,
            refund_id=f"rf_{reference}",
            receivable_cancelled_cents=cancelled,
            to_card_cents=to_card,
            effective_at=at,
        )
    )
    posting_create(
        recipes.refund_sent_to_card(
            merchant_id=merchant.pk,
            livemode=False,
            payment_id=payment_id,
            refund_id=f"rf_{reference}",
            part=1,
            cents=to_card,
            processor_reference=reference,
            effective_at=at,
        )
    )


@pytest.fixture
def day_of_postings(db):
    """One day's card movements in test mode, plus noise on other days and in live mode."""
    merchant = merchant_create()
    payment = captured(merchant, reference="ch_cap", cents=3_000, fee=150, at=NOON)
    collected(merchant, payment, reference="ch_inst", cents=3_000, at=NOON + timedelta(hours=2))
    # 3 000 cancels what is still owed, 1 200 goes back to the card.
    refunded(
        merchant,
        payment,
        reference="re_ref",
        cancelled=3_000,
        to_card=1_200,
        at=NOON + timedelta(hours=3),
    )
    captured(merchant, reference="ch_next_day", cents=900, at=NOON + timedelta(days=1))
    captured(merchant, reference="ch_live", cents=800, at=NOON, livemode=True)
    # A pay-later payment charges nothing: no clearing movement, no reference.
    posting_create(
        recipes.payment_captured(
            merchant_id=merchant.pk,
            livemode=False,
            payment_id="pay_later",
            purchase_cents=5_000,
            first_principal_cents=0,
            customer_fee_cents=0,
            interest_cents=0,
            merchant_fee_cents=0,
            processor_reference="",
            effective_at=NOON,
        )
    )
    return merchant


def good_report() -> list[SettlementLine]:
    return [line("ch_cap", 3_150), line("ch_inst", 3_000), line("re_ref", -1_200)]


def test_the_ledger_side_is_the_day_s_net_clearing_per_reference(day_of_postings):
    assert clearing_by_reference(report_date=DAY, livemode=False) == {
        "ch_cap": 3_150,
        "ch_inst": 3_000,
        "re_ref": -1_200,
    }
    assert clearing_by_reference(report_date=DAY, livemode=True) == {"ch_live": 800}
    assert clearing_by_reference(report_date=DAY + timedelta(days=1), livemode=False) == {
        "ch_next_day": 900
    }


def test_a_matching_report_reconciles_cleanly(day_of_postings):
    run = reconciliation_run(
        report_date=DAY, livemode=False, lines=good_report(), now=timezone.now()
    )

    assert (run.report_lines, run.ledger_entries, run.matched, run.mismatches) == (3, 3, 3, 0)
    assert run.items.count() == 0


def test_mismatches_are_recorded_with_both_amounts(day_of_postings):
    report = [
        line("ch_cap", 3_150),
        line("ch_inst", 2_999),  # wrong amount
        line("ch_unknown", 4_200),  # not in the ledger
        # re_ref is missing from the report
    ]

    run = reconciliation_run(report_date=DAY, livemode=False, lines=report, now=timezone.now())

    assert (run.report_lines, run.ledger_entries, run.matched, run.mismatches) == (3, 3, 1, 3)
    found = {
        item.processor_reference: (item.kind, item.report_amount, item.ledger_amount)
        for item in run.items.all()
    }
    assert found == {
        "ch_inst": (Mismatch.Kind.AMOUNT_DIFFERS, Money("29.99", "EUR"), Money("30.00", "EUR")),
        "ch_unknown": (Mismatch.Kind.MISSING_IN_LEDGER, Money("42.00", "EUR"), None),
        "re_ref": (Mismatch.Kind.MISSING_IN_REPORT, None, Money("-12.00", "EUR")),
    }
    assert all(item.resolved_at is None for item in run.items.all())


def test_a_rerun_keeps_resolutions_and_drops_what_was_fixed(day_of_postings):
    report = [line("ch_cap", 3_150), line("ch_inst", 2_999), line("ch_unknown", 4_200)]
    first = reconciliation_run(report_date=DAY, livemode=False, lines=report, now=timezone.now())
    unknown = first.items.get(processor_reference="ch_unknown")
    resolved = mismatch_resolve(
        mismatch=unknown, resolution="  Processor test charge, ignored  ", now=timezone.now()
    )
    assert resolved.resolution == "Processor test charge, ignored"

    # The corrected report: ch_inst right, re_ref present, ch_unknown still there.
    fixed = [*good_report(), line("ch_unknown", 4_200)]
    rerun = reconciliation_run(report_date=DAY, livemode=False, lines=fixed, now=timezone.now())

    assert rerun.pk == first.pk
    assert ReconciliationRun.objects.count() == 1
    assert (rerun.report_lines, rerun.matched, rerun.mismatches) == (4, 3, 1)
    items = list(rerun.items.all())
    assert [item.processor_reference for item in items] == ["ch_unknown"]
    assert items[0].resolved_at == resolved.resolved_at
    assert items[0].resolution == "Processor test charge, ignored"
    assert items[0].kind == Mismatch.Kind.MISSING_IN_LEDGER

    # Gone from the report as well: the resolution stays on record.
    rerun = reconciliation_run(
        report_date=DAY, livemode=False, lines=good_report(), now=timezone.now()
    )
    assert rerun.mismatches == 0
    assert list(rerun.items.values_list("processor_reference", flat=True)) == ["ch_unknown"]


def test_a_mismatch_is_resolved_once_and_with_an_explanation(day_of_postings):
    run = reconciliation_run(report_date=DAY, livemode=False, lines=[], now=timezone.now())
    item = run.items.first()

    with pytest.raises(LedgerError):
        mismatch_resolve(mismatch=item, resolution="   ", now=timezone.now())
    mismatch_resolve(mismatch=item, resolution="late report", now=timezone.now())
    with pytest.raises(LedgerError):
        mismatch_resolve(mismatch=item, resolution="again", now=timezone.now())

    item.refresh_from_db()
    assert item.resolution == "late report"


def test_the_day_is_the_paris_day_of_the_event(db):
    merchant = merchant_create()
    # 23:30 in Paris on the 10th is 22:30 UTC; 00:30 in Paris on the 11th is 23:30 UTC on
    # the 10th: the report of the 10th has the first only.
    late = datetime(2030, 3, 10, 23, 30, tzinfo=BUSINESS_TZ)
    early = datetime(2030, 3, 11, 0, 30, tzinfo=BUSINESS_TZ)
    assert early.astimezone(UTC).date() == DAY
    captured(merchant, reference="ch_late", cents=1_000, at=late)
    captured(merchant, reference="ch_early", cents=2_000, at=early)
    captured(
        merchant,
        reference="ch_midnight",
        cents=3_000,
        at=datetime(2030, 3, 11, 0, 0, tzinfo=BUSINESS_TZ),
    )

    assert clearing_by_reference(report_date=DAY, livemode=False) == {"ch_late": 1_000}
    tenth = reconciliation_run(
        report_date=DAY, livemode=False, lines=[line("ch_late", 1_000, late)], now=timezone.now()
    )
    eleventh = reconciliation_run(
        report_date=DAY + timedelta(days=1),
        livemode=False,
        lines=[line("ch_early", 2_000, early), line("ch_midnight", 3_000, early)],
        now=timezone.now(),
    )

    assert (tenth.matched, tenth.mismatches) == (1, 0)
    assert (eleventh.matched, eleventh.mismatches) == (2, 0)


def test_each_mode_is_reconciled_on_its_own(day_of_postings):
    live = reconciliation_run(
        report_date=DAY, livemode=True, lines=[line("ch_live", 800)], now=timezone.now()
    )
    test = reconciliation_run(
        report_date=DAY, livemode=False, lines=good_report(), now=timezone.now()
    )

    assert live.pk != test.pk
    assert (live.matched, live.mismatches) == (1, 0)
    assert (test.matched, test.mismatches) == (3, 0)


# --- the task and the command ----------------------------------------------------------------


@pytest.fixture
def reports(settings, tmp_path):
    settings.SETTLEMENT_REPORTS = "apps.ledger.settlement_reports.DirectorySettlementReports"
    settings.SETTLEMENT_REPORTS_DIR = str(tmp_path)
    settings.RECONCILIATION_LOOKBACK_DAYS = 7
    return DirectorySettlementReports()


def test_reports_are_read_from_the_directory(reports, tmp_path):
    path = reports.write(report_date=DAY, livemode=True, lines=good_report())

    assert path == tmp_path / "live" / "settlement-2030-03-10.csv"
    assert not path.with_suffix(".part").exists()
    assert settlement_reports().fetch(report_date=DAY, livemode=True) == good_report()
    assert settlement_reports().fetch(report_date=DAY, livemode=False) is None


def test_the_task_matches_each_arrived_day_once(day_of_postings, reports, time_machine):
    time_machine.move_to(datetime(2030, 3, 12, 9, 0, tzinfo=BUSINESS_TZ), tick=False)
    reports.write(report_date=DAY, livemode=False, lines=[line("ch_cap", 3_150)])
    reports.write(report_date=DAY, livemode=True, lines=[line("ch_live", 800)])
    # Too old for the lookback, and today's (not complete yet): both left alone.
    reports.write(report_date=date(2030, 3, 4), livemode=False, lines=[])
    reports.write(report_date=date(2030, 3, 12), livemode=False, lines=[])

    done = reconcile_settlement_reports()

    assert done == [
        "test 2030-03-10: 1 matched, 2 mismatches",
        "live 2030-03-10: 1 matched, 0 mismatches",
    ]
    assert set(ReconciliationRun.objects.values_list("livemode", "report_date")) == {
        (False, DAY),
        (True, DAY),
    }

    # Once matched, a day is not matched again by the task, even with a new file.
    reports.write(report_date=DAY, livemode=False, lines=good_report())
    assert reconcile_settlement_reports() == []
    assert ReconciliationRun.objects.get(livemode=False, report_date=DAY).mismatches == 2

    # The next day's report arrives: only that one is matched.
    reports.write(
        report_date=DAY + timedelta(days=1), livemode=False, lines=[line("ch_next_day", 900)]
    )
    assert reconcile_settlement_reports() == ["test 2030-03-11: 1 matched, 0 mismatches"]
    assert ReconciliationRun.objects.count() == 3

    # Today's report waits for tomorrow; one older than the lookback is never picked up.
    time_machine.move_to(datetime(2030, 3, 13, 9, 0, tzinfo=BUSINESS_TZ), tick=False)
    assert reconcile_settlement_reports() == ["test 2030-03-12: 0 matched, 0 mismatches"]
    assert not ReconciliationRun.objects.filter(report_date=date(2030, 3, 4)).exists()


def test_the_command_reconciles_one_day(day_of_postings, reports, capsys):
    reports.write(report_date=DAY, livemode=False, lines=good_report())

    call_command("reconcile_settlement", "--date", DAY.isoformat(), "--mode", "test")

    out = capsys.readouterr().out
    assert "test 2030-03-10: 3 report lines, 3 ledger entries, 3 matched, 0 mismatches." in out
    assert ReconciliationRun.objects.get(livemode=False, report_date=DAY).matched == 3


def test_an_unreadable_report_does_not_hold_up_the_other_days(
    day_of_postings, reports, time_machine, caplog
):
    time_machine.move_to(datetime(2030, 3, 12, 9, 0, tzinfo=BUSINESS_TZ), tick=False)
    broken = reports.path(report_date=DAY - timedelta(days=1), livemode=False)
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text("not,a,settlement,report\n", encoding="utf-8")
    reports.write(report_date=DAY, livemode=True, lines=[line("ch_live", 800)])

    assert reconcile_settlement_reports() == ["live 2030-03-10: 1 matched, 0 mismatches"]
    assert "unreadable" in caplog.text
    assert not ReconciliationRun.objects.filter(report_date=DAY - timedelta(days=1)).exists()


def test_the_command_fails_on_mismatches(day_of_postings, reports, capsys):
    reports.write(report_date=DAY, livemode=False, lines=[line("ch_cap", 3_100)])

    with pytest.raises(CommandError, match="3 open mismatches"):
        call_command("reconcile_settlement", "--date", DAY.isoformat(), "--mode", "test")

    assert "1 report lines, 3 ledger entries, 0 matched, 3 mismatches" in capsys.readouterr().out
    run = ReconciliationRun.objects.get(livemode=False, report_date=DAY)
    assert run.mismatches == 3

    # Once operators have resolved them all, a rerun of the day passes.
    for item in run.items.all():
        mismatch_resolve(mismatch=item, resolution="explained", now=timezone.now())
    call_command("reconcile_settlement", "--date", DAY.isoformat(), "--mode", "test")


def test_the_command_fails_when_the_report_is_missing(day_of_postings, reports):
    with pytest.raises(CommandError, match="No live settlement report for 2030-03-10"):
        call_command("reconcile_settlement", "--date", DAY.isoformat())

    assert not ReconciliationRun.objects.exists()


def test_the_command_reruns_a_day_already_matched(day_of_postings, reports):
    reports.write(report_date=DAY, livemode=True, lines=[line("ch_live", 700)])
    with pytest.raises(CommandError):
        call_command("reconcile_settlement", "--date", DAY.isoformat(), "--mode", "live")

    reports.write(report_date=DAY, livemode=True, lines=[line("ch_live", 800)])
    call_command("reconcile_settlement", "--date", DAY.isoformat(), "--mode", "live")

    run = ReconciliationRun.objects.get(livemode=True, report_date=DAY)
    assert (run.matched, run.mismatches) == (1, 0)
    assert not run.items.exists()
