"""Bank-data checks: the customer connects their bank through the aggregator (read only), we
fetch 3 months of transactions and analyse them ourselves (``bank_analysis``).

Nothing here knows what a check is for: callers pass a ``purpose`` and a ``subject``. The
aggregator is called outside any database transaction; what it answered is recorded after,
in a short transaction that locks the check's row.

A check goes started -> analysed, failed or cancelled (``TRANSITIONS``); those three are
final: a check is never analysed twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.common.errors import InvalidTransition
from apps.common.ids import with_prefix
from apps.verification.bank_analysis import bank_analyse
from apps.verification.bank_errors import (
    BankCheckNotFound,
    BankConnectionPending,
    BankConnectionUnknown,
    BankDataError,
    BankDataUnavailable,
)
from apps.verification.bank_provider import (
    CANCELLED,
    CONNECTED,
    PENDING,
    AccountData,
    bank_data_provider,
)
from apps.verification.models import BANK_CHECK_ID_PREFIX, BankCheck

logger = logging.getLogger(__name__)

Status = BankCheck.Status
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.STARTED: frozenset({Status.ANALYSED, Status.FAILED, Status.CANCELLED}),
    Status.ANALYSED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}

# error_code values of failed checks.
ERROR_PROVIDER_UNAVAILABLE = "provider_unavailable"
ERROR_CONNECTION_EXPIRED = "connection_expired"
ERROR_CONNECTION_FAILED = "connection_failed"
ERROR_BANK_DATA_INVALID = "bank_data_invalid"


def bank_check_start(
    *,
    livemode: bool,
    purpose: str,
    subject: str,
    account_holder: str,
    return_url: str,
    now: datetime,
) -> tuple[BankCheck, str]:
    """Record the customer's consent (``consent_at=now``) and open a connection with the
    aggregator; returns the check and the URL to send the browser to. The aggregator sends
    it back to ``return_url`` with ``bankcheck=<reference>``; then call
    ``bank_check_complete``.

    The check is committed before the aggregator is called. When the aggregator is down the
    check is failed (``provider_unavailable``) and ``BankDataUnavailable`` is raised.
    """
    check = BankCheck.objects.create(
        livemode=livemode,
        purpose=purpose,
        subject=subject,
        account_holder=account_holder[:200],
        consent_at=now,
        created_at=now,
    )
    try:
        start = bank_data_provider().connection_start(
            reference_hint=check.public_id, return_url=return_url, livemode=livemode
        )
    except Exception as exc:
        error = _provider_error(exc, check)
        _transition(
            check_pk=check.pk, target=Status.FAILED, fields={"error_code": _error_code(error)}
        )
        raise error from exc
    check.provider_reference = start.reference[:100]
    check.save(update_fields=["provider_reference"])
    return check, start.redirect_url


def bank_check_complete(*, check_id: str, now: datetime) -> BankCheck:
    """The browser is back from the aggregator: ask it how the connection went and, when the
    customer connected, fetch the transactions, analyse them and record evidence and
    analysis (kept until ``now`` + ``VERIFICATION_EVIDENCE_RETENTION_DAYS``).

    Idempotent: a check already analysed, failed or cancelled is returned as is, and two
    calls racing record one outcome (the first to lock the row). The customer cancelled ->
    cancelled; the connection expired or failed at the aggregator -> failed. Raises
    ``BankConnectionPending`` while the customer has not answered, ``BankDataUnavailable``
    (the check failed, ``provider_unavailable``) when the aggregator is down.
    """
    check = bank_check_get(check_id=check_id)
    if check.status != Status.STARTED:
        return check
    provider = bank_data_provider()
    account: AccountData | None = None
    try:
        connection = provider.connection_status(reference=check.provider_reference)
        if connection == CONNECTED:
            account = provider.transactions(reference=check.provider_reference)
    except BankConnectionUnknown:
        return _transition(
            check_pk=check.pk,
            target=Status.FAILED,
            fields={"error_code": ERROR_CONNECTION_EXPIRED},
        )
    except Exception as exc:
        error = _provider_error(exc, check)
        code = _error_code(error)
        failed = _transition(check_pk=check.pk, target=Status.FAILED, fields={"error_code": code})
        if failed.status == Status.FAILED and failed.error_code == code:
            raise error from exc
        return failed  # another call recorded an outcome first
    if connection == PENDING:
        raise BankConnectionPending()
    if connection == CANCELLED:
        return _transition(check_pk=check.pk, target=Status.CANCELLED, fields={})
    if account is None:  # failed, or an answer the interface does not know
        if connection != "failed":
            logger.error("bank check %s: unknown connection status %r", check, connection)
        return _transition(
            check_pk=check.pk,
            target=Status.FAILED,
            fields={"error_code": ERROR_CONNECTION_FAILED},
        )
    try:
        analysis = bank_analyse(
            account.transactions, today=account.period_end, period_start=account.period_start
        )
    except (TypeError, ValueError):
        logger.exception("bank check %s: the aggregator's data cannot be analysed", check)
        return _transition(
            check_pk=check.pk,
            target=Status.FAILED,
            fields={"error_code": ERROR_BANK_DATA_INVALID},
        )
    return _transition(
        check_pk=check.pk,
        target=Status.ANALYSED,
        fields={
            "bank_name": account.bank_name[:100],
            "transactions": [t.to_json() for t in account.transactions],
            "period_start": account.period_start,
            "period_end": account.period_end,
            "analysis": {**analysis.to_json(), "bank_holder_name": account.holder_name},
            "monthly_income_cents": analysis.monthly_income_cents,
            "repayment_capacity_cents": analysis.repayment_capacity_cents,
            "analysed_at": now,
            "evidence_delete_after": now
            + timedelta(days=settings.VERIFICATION_EVIDENCE_RETENTION_DAYS),
        },
    )


def bank_check_get(*, check_id: str) -> BankCheck:
    """The check with this public id (given with or without its ``bankcheck_`` prefix)."""
    try:
        return BankCheck.objects.get(public_id=with_prefix(BANK_CHECK_ID_PREFIX, check_id))
    except BankCheck.DoesNotExist as exc:
        raise BankCheckNotFound(check_id) from exc


def bank_check_latest(*, purpose: str, subject: str, livemode: bool) -> BankCheck | None:
    """The latest check made for this purpose and subject, or None."""
    return (
        BankCheck.objects.filter(purpose=purpose, subject=subject, livemode=livemode)
        .order_by("-created_at", "-pk")
        .first()
    )


def bank_evidence_delete_expired(*, now: datetime, limit: int = 200) -> int:
    """Clear the transactions (the evidence) of up to ``limit`` checks whose retention date
    has passed; the analysis stays. Returns how many were cleared. Two runs at once share
    the rows (``SKIP LOCKED``) and a second run finds nothing left to do."""
    with transaction.atomic():
        due = list(
            BankCheck.objects.select_for_update(skip_locked=True)
            .filter(evidence_delete_after__lte=now, evidence_deleted_at__isnull=True)
            .order_by("evidence_delete_after", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        BankCheck.objects.filter(pk__in=due).update(transactions=[], evidence_deleted_at=now)
    return len(due)


def _transition(*, check_pk: int, target: str, fields: dict[str, Any]) -> BankCheck:
    """Move a check to a final status with what goes with it, under the row's lock. A check
    already final is returned as is (it was answered by a call that locked it first)."""
    with transaction.atomic():
        check = BankCheck.objects.select_for_update().get(pk=check_pk)
        if check.status != Status.STARTED:
            return check
        if target not in TRANSITIONS[check.status]:
            raise InvalidTransition("bank check", check.status, target)
        check.status = target
        for name, value in fields.items():
            setattr(check, name, value)
        check.save(update_fields=["status", *fields])
    return check


def _error_code(error: BankDataError) -> str:
    if isinstance(error, BankDataUnavailable):
        return ERROR_PROVIDER_UNAVAILABLE
    return error.code[:40]


def _provider_error(exc: Exception, check: BankCheck) -> BankDataError:
    """The aggregator's failure as a domain error: its own errors as they are (logged
    quietly), anything else as ``BankDataUnavailable`` (logged loudly)."""
    if isinstance(exc, BankDataUnavailable):
        logger.warning("bank check %s: the aggregator is unavailable", check)
        return BankDataUnavailable(detail=str(exc.extra.get("detail", "")))
    if isinstance(exc, BankDataError):
        logger.warning("bank check %s: the aggregator refused: %s", check, exc.code)
        return exc
    logger.exception("bank check %s: the aggregator failed unexpectedly", check)
    return BankDataUnavailable(detail=f"{type(exc).__name__}: {exc}")
