"""Bank-data checks end to end with the sandbox aggregator: start, the sandbox bank page,
completion, the analysis of each test profile, failures, idempotency and retention."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.common.dates import BUSINESS_TZ
from apps.verification.bank import (
    bank_check_complete,
    bank_check_get,
    bank_check_latest,
    bank_check_start,
    bank_evidence_delete_expired,
)
from apps.verification.bank_errors import (
    BankCheckNotFound,
    BankConnectionPending,
    BankDataUnavailable,
)
from apps.verification.bank_provider import AccountData, ConnectionStart
from apps.verification.bank_sandbox import PROFILES, SandboxBankDataProvider
from apps.verification.models import BankCheck, SandboxBankConnection

NOW = datetime(2025, 6, 15, 10, 30, tzinfo=BUSINESS_TZ)
RETURN_URL = "https://shop.test/checkout/payment_abc/bank?lang=fr"
THIS_MODULE = "tests.verification.test_bank"


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


def start(**overrides) -> tuple[BankCheck, str]:
    arguments = {
        "livemode": False,
        "purpose": "checkout",
        "subject": "payment_abc",
        "account_holder": "Camille Martin",
        "return_url": RETURN_URL,
        "now": NOW,
    }
    return bank_check_start(**{**arguments, **overrides})


def answer(redirect_url: str, data: dict[str, str]):
    """The customer's click on the sandbox bank page."""
    return Client().post(urlsplit(redirect_url).path, data)


def connected_check(profile: str) -> BankCheck:
    check, redirect_url = start()
    response = answer(redirect_url, {"profile": profile})
    assert response.status_code == 303
    return check


# --- the journey ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_starting_records_consent_and_sends_the_customer_to_the_sandbox_bank(clock):
    check, redirect_url = start()

    check.refresh_from_db()
    assert check.status == BankCheck.Status.STARTED
    assert check.consent_at == NOW
    assert check.created_at == NOW
    assert (check.livemode, check.purpose, check.subject) == (False, "checkout", "payment_abc")
    assert check.account_holder == "Camille Martin"
    # The sandbox uses our id as the connection's reference.
    assert check.provider_reference == check.public_id
    assert urlsplit(redirect_url).path == reverse(
        "verification:sandbox-bank", args=[check.public_id]
    )
    page = Client().get(urlsplit(redirect_url).path)
    assert page.status_code == 200
    for profile in PROFILES.values():
        assert f'value="{profile.name}"' in page.content.decode()


@pytest.mark.django_db
def test_the_sandbox_bank_sends_the_browser_back_with_the_reference(clock):
    check, redirect_url = start()

    response = answer(redirect_url, {"profile": "salaried"})

    assert response.status_code == 303
    back = urlsplit(response["Location"])
    assert back._replace(query="").geturl() == "https://shop.test/checkout/payment_abc/bank"
    assert parse_qs(back.query) == {"lang": ["fr"], "bankcheck": [check.provider_reference]}


@pytest.mark.django_db
def test_a_salaried_customer_has_a_good_capacity_and_no_flag(clock):
    check = connected_check("salaried")

    check = bank_check_complete(check_id=check.public_id, now=NOW)

    check.refresh_from_db()
    assert check.status == BankCheck.Status.ANALYSED
    assert check.error_code == ""
    assert check.bank_name == "Banque Exemple"
    assert check.analysed_at == NOW
    assert check.evidence_delete_after == NOW + timedelta(days=30)
    assert (str(check.period_start), str(check.period_end)) == ("2025-03-01", "2025-06-15")
    assert check.monthly_income_cents == 240000
    assert check.repayment_capacity_cents > 0
    assert check.repayment_capacity_cents == check.analysis["repayment_capacity_cents"]
    assert check.analysis["flags"] == []
    assert check.analysis["months_analysed"] == 3
    assert check.analysis["bank_holder_name"] == "Camille Martin"
    labels = {transaction["label"] for transaction in check.transactions}
    assert {
        "VIR SALAIRE ACME SAS",
        "PRLV LOYER SCI LES TILLEULS",
        "PRLV EDF CLIENTS PARTICULIERS",
    } <= labels
    assert all(isinstance(t["amount_cents"], int) for t in check.transactions)
    assert max(t["booked_on"] for t in check.transactions) <= "2025-06-15"


@pytest.mark.django_db
def test_an_overindebted_customer_has_a_negative_capacity_and_is_flagged(clock):
    check = connected_check("overindebted")

    check = bank_check_complete(check_id=check.public_id, now=NOW)

    assert check.status == BankCheck.Status.ANALYSED
    assert check.monthly_income_cents == 160000
    assert check.repayment_capacity_cents < 0
    assert "heavy_existing_credit" in check.analysis["flags"]
    assert "frequent_overdraft" in check.analysis["flags"]
    assert check.analysis["debt_to_income_bps"] >= 3500


@pytest.mark.django_db
def test_a_gambling_customer_is_flagged(clock):
    check = connected_check("gambling")

    check = bank_check_complete(check_id=check.public_id, now=NOW)

    assert check.analysis["flags"] == ["gambling"]
    assert check.analysis["gambling_cents"] >= 100_00


@pytest.mark.django_db
def test_a_freelancer_is_fine_on_average_but_flagged_irregular(clock):
    check = connected_check("irregular")

    check = bank_check_complete(check_id=check.public_id, now=NOW)

    assert check.analysis["flags"] == ["irregular_income"]
    assert check.repayment_capacity_cents > 0
    assert sorted(check.analysis["income_by_month_cents"]) == [140000, 230000, 360000]


@pytest.mark.django_db
def test_the_sandbox_accounts_do_not_change_when_fetched_again(clock):
    provider = SandboxBankDataProvider()
    first = connected_check("gambling")
    second = connected_check("gambling")

    one = provider.transactions(reference=first.provider_reference)
    other = provider.transactions(reference=second.provider_reference)

    assert isinstance(one, AccountData)
    assert one == other


# --- the customer's other answers -------------------------------------------------------------


@pytest.mark.django_db
def test_a_customer_who_cancels_at_the_bank_gives_a_cancelled_check(clock):
    check, redirect_url = start()

    response = answer(redirect_url, {"cancel": "1"})
    check = bank_check_complete(check_id=check.public_id, now=NOW)

    assert response.status_code == 303
    assert parse_qs(urlsplit(response["Location"]).query)["bankcheck"] == [check.public_id]
    assert check.status == BankCheck.Status.CANCELLED
    assert check.transactions == []
    assert check.analysed_at is None


@pytest.mark.django_db
def test_only_the_first_answer_on_the_sandbox_bank_counts(clock):
    check, redirect_url = start()

    answer(redirect_url, {"cancel": "1"})
    second = answer(redirect_url, {"profile": "salaried"})
    check = bank_check_complete(check_id=check.public_id, now=NOW)

    assert second.status_code == 303
    assert check.status == BankCheck.Status.CANCELLED
    page = Client().get(urlsplit(redirect_url).path)
    assert 'name="profile"' not in page.content.decode()


@pytest.mark.django_db
def test_the_sandbox_bank_refuses_an_unknown_profile_or_connection(clock):
    _check, redirect_url = start()

    wrong_profile = answer(redirect_url, {"profile": "millionaire"})
    unknown = Client().get(reverse("verification:sandbox-bank", args=["bankcheck_nope"]))

    assert wrong_profile.status_code == 400
    assert unknown.status_code == 404


@pytest.mark.django_db
def test_completing_before_the_customer_answered_changes_nothing(clock):
    check, _redirect_url = start()

    with pytest.raises(BankConnectionPending):
        bank_check_complete(check_id=check.public_id, now=NOW)

    check.refresh_from_db()
    assert check.status == BankCheck.Status.STARTED


@pytest.mark.django_db
def test_a_connection_expired_at_the_aggregator_fails_the_check(clock):
    check, _redirect_url = start()
    later = NOW + timedelta(hours=1, seconds=1)  # the sandbox keeps its connections an hour
    clock.move_to(later, tick=False)

    check = bank_check_complete(check_id=check.public_id, now=later)

    assert check.status == BankCheck.Status.FAILED
    assert check.error_code == "connection_expired"


# --- the aggregator down ----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_aggregator_timing_out_fails_the_check_and_says_so(clock):
    check = connected_check("unavailable")

    with pytest.raises(BankDataUnavailable) as raised:
        bank_check_complete(check_id=check.public_id, now=NOW)

    check.refresh_from_db()
    assert raised.value.code == "bank_data_unavailable"
    assert raised.value.http_status == 503
    assert check.status == BankCheck.Status.FAILED
    assert check.error_code == "provider_unavailable"
    assert check.transactions == []
    # Completing again returns the failed check: the journey starts a new one to retry.
    assert bank_check_complete(check_id=check.public_id, now=NOW).status == "failed"


class DownBankProvider(SandboxBankDataProvider):
    def connection_start(self, *, reference_hint, return_url, livemode):
        raise TimeoutError("read timed out")


@pytest.mark.django_db
def test_an_aggregator_down_at_the_start_fails_the_check(clock, settings):
    settings.BANK_DATA_PROVIDER = f"{THIS_MODULE}.DownBankProvider"

    with pytest.raises(BankDataUnavailable):
        start()

    check = BankCheck.objects.get()
    assert check.status == BankCheck.Status.FAILED
    assert check.error_code == "provider_unavailable"
    assert check.consent_at == NOW


# --- idempotency and concurrency --------------------------------------------------------------


@pytest.mark.django_db
def test_completing_twice_returns_the_first_analysis_without_asking_the_aggregator(clock):
    check = connected_check("salaried")
    first = bank_check_complete(check_id=check.public_id, now=NOW)
    SandboxBankConnection.objects.all().delete()  # the aggregator forgot the connection

    again = bank_check_complete(check_id=check.public_id, now=NOW + timedelta(minutes=5))

    assert again.status == BankCheck.Status.ANALYSED
    assert again.analysed_at == first.analysed_at == NOW
    assert again.analysis == first.analysis
    assert BankCheck.objects.count() == 1


class RecordingBankProvider(SandboxBankDataProvider):
    """The sandbox, noting whether each call came inside a database transaction and letting
    two completions meet before either records its result."""

    calls: list[tuple[str, bool]] = []
    meeting: threading.Barrier | None = None

    def _note(self, name: str) -> None:
        RecordingBankProvider.calls.append((name, connection.in_atomic_block))

    def connection_start(self, **kwargs) -> ConnectionStart:
        self._note("connection_start")
        return super().connection_start(**kwargs)

    def connection_status(self, **kwargs) -> str:
        self._note("connection_status")
        return super().connection_status(**kwargs)

    def transactions(self, **kwargs) -> AccountData:
        self._note("transactions")
        if RecordingBankProvider.meeting is not None:
            RecordingBankProvider.meeting.wait(timeout=10)
        return super().transactions(**kwargs)


@pytest.fixture
def recording_provider(settings):
    settings.BANK_DATA_PROVIDER = f"{THIS_MODULE}.RecordingBankProvider"
    RecordingBankProvider.calls = []
    RecordingBankProvider.meeting = None
    yield RecordingBankProvider
    RecordingBankProvider.calls = []
    RecordingBankProvider.meeting = None


@pytest.mark.django_db(transaction=True)
def test_the_aggregator_is_never_called_inside_a_database_transaction(clock, recording_provider):
    check = connected_check("salaried")

    bank_check_complete(check_id=check.public_id, now=NOW)

    assert [name for name, _ in recording_provider.calls] == [
        "connection_start",
        "connection_status",
        "transactions",
    ]
    assert not any(inside for _, inside in recording_provider.calls)


@pytest.mark.django_db(transaction=True)
def test_two_completions_at_once_record_one_analysis(clock, recording_provider):
    check = connected_check("salaried")
    recording_provider.meeting = threading.Barrier(2)
    moments = [NOW + timedelta(seconds=1), NOW + timedelta(seconds=2)]
    results: list[BankCheck] = []
    errors: list[BaseException] = []

    def complete(now: datetime) -> None:
        try:
            results.append(bank_check_complete(check_id=check.public_id, now=now))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=complete, args=(moment,)) for moment in moments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert errors == []
    check.refresh_from_db()
    assert check.analysed_at in moments
    # Both calls fetched the account; only the first to lock the row recorded it, and the
    # other returned that record instead of its own.
    assert [name for name, _ in recording_provider.calls].count("transactions") == 2
    assert [result.analysed_at for result in results] == [check.analysed_at] * 2


# --- reading and retention --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_check_is_found_with_or_without_its_prefix(clock):
    check, _redirect_url = start()

    assert bank_check_get(check_id=check.public_id) == check
    assert bank_check_get(check_id=check.public_id.removeprefix("bankcheck_")) == check
    assert bank_check_latest(purpose="checkout", subject="payment_abc", livemode=False) == check
    assert bank_check_latest(purpose="checkout", subject="payment_abc", livemode=True) is None
    with pytest.raises(BankCheckNotFound):
        bank_check_get(check_id="bankcheck_unknown")


@pytest.mark.django_db
def test_transactions_are_deleted_after_the_retention_period_and_the_analysis_kept(clock):
    check = bank_check_complete(check_id=connected_check("salaried").public_id, now=NOW)
    deadline = NOW + timedelta(days=30)

    before = bank_evidence_delete_expired(now=deadline - timedelta(seconds=1))
    at_deadline = bank_evidence_delete_expired(now=deadline)
    again = bank_evidence_delete_expired(now=deadline + timedelta(days=1))

    check.refresh_from_db()
    assert (before, at_deadline, again) == (0, 1, 0)
    assert check.transactions == []
    assert check.evidence_deleted_at == deadline
    assert check.analysis["monthly_income_cents"] == 240000
    assert check.repayment_capacity_cents > 0


@pytest.mark.django_db
def test_the_retention_sweep_works_in_batches(clock):
    for _ in range(3):
        bank_check_complete(check_id=connected_check("irregular").public_id, now=NOW)
    later = NOW + timedelta(days=31)

    first = bank_evidence_delete_expired(now=later, limit=2)
    second = bank_evidence_delete_expired(now=later, limit=2)

    assert (first, second) == (2, 1)
    assert not BankCheck.objects.exclude(transactions=[]).exists()


# --- the operators' view ----------------------------------------------------------------------


@pytest.mark.django_db
def test_operators_see_the_analysis_as_a_table_and_cannot_edit(clock, admin_client):
    check = bank_check_complete(check_id=connected_check("overindebted").public_id, now=NOW)

    page = admin_client.get(
        reverse("admin:verification_bankcheck_change", args=[check.pk]), HTTP_ACCEPT_LANGUAGE="en"
    )
    listing = admin_client.get(reverse("admin:verification_bankcheck_changelist"))

    html = page.content.decode()
    assert page.status_code == 200
    assert listing.status_code == 200
    assert "Repayment capacity per month" in html
    assert "heavy_existing_credit" in html
    assert "frequent_overdraft" in html
    assert f'<div class="readonly">{len(check.transactions)}</div>' in html
    assert "<th>Overdraft days</th><td>" in html
    assert 'name="_save"' not in html
