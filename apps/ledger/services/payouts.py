"""Payouts: each day, each merchant's available balance above its minimum goes to its IBAN.

A run is one (mode, day): ``payouts_run`` opens it, creates at most one payout per merchant
(each in its own short transaction, under the merchant balance's row lock, posting
``payout_sent``), then builds the run's SEPA file once and moves its payouts to ``sent``.
Running it again, or twice at the same time, creates nothing more: the run and each
(run, merchant) payout are unique, and once the file is built the run takes no new payout.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from schwifty import IBAN

from apps.common.errors import DomainError, InvalidTransition
from apps.common.money import to_cents, to_money
from apps.merchants.models import Merchant

from .. import recipes
from ..models import PAYOUT_TRANSITIONS, Account, AccountKind, Payout, PayoutEvent, PayoutRun
from ..postings import AccountRef, LedgerError
from ..selectors import merchant_balance
from ..sepa import Debtor, Transfer, credit_transfer_file
from .postings import accounts_resolve, posting_create

logger = logging.getLogger(__name__)


class PayoutRunClosed(LedgerError):
    code = "payout_run_closed"
    default_message = "This payout run's file is built; it takes no new payout."


def payouts_run(*, run_date: date, livemode: bool, now: datetime) -> PayoutRun:
    """Pay every eligible merchant for run_date in one mode. Safe to run twice, or at once."""
    run = payout_run_open(run_date=run_date, livemode=livemode, now=now)
    if run.file_built_at is None:
        for merchant in payable_merchants():
            try:
                payout_create(run=run, merchant=merchant, now=now)
            except PayoutRunClosed:
                break
            except (DomainError, ValueError):  # one merchant must not hold up the others
                logger.exception("No payout for merchant %s in run %s", merchant.pk, run)
    return payout_run_build_file(run=run, now=now)


def payable_merchants():
    """Active merchants with an IBAN, in id order (a stable order for locks and files)."""
    return (
        Merchant.objects.filter(status=Merchant.Status.ACTIVE)
        .exclude(payout_iban="")
        .order_by("pk")
    )


def payout_run_open(*, run_date: date, livemode: bool, now: datetime) -> PayoutRun:
    try:
        with transaction.atomic():
            run, _ = PayoutRun.objects.get_or_create(
                run_date=run_date, livemode=livemode, defaults={"created_at": now}
            )
    except IntegrityError:  # another worker opened it between our read and our insert
        run = PayoutRun.objects.get(run_date=run_date, livemode=livemode)
    return run


def payout_create(*, run: PayoutRun, merchant: Merchant, now: datetime) -> Payout | None:
    """The merchant's payout in this run, if its available balance reaches its minimum."""
    with transaction.atomic():
        # A share lock on the run: building the file waits for payouts being created, and
        # a payout is not created once the file is built.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT file_built_at FROM ledger_payoutrun WHERE id = %s FOR SHARE", [run.pk]
            )
            (file_built_at,) = cursor.fetchone()
        if file_built_at is not None:
            raise PayoutRunClosed()
        balance_ref = AccountRef(AccountKind.MERCHANT_BALANCE, merchant.pk)
        accounts = accounts_resolve({balance_ref}, livemode=run.livemode, currency="EUR")
        # The balance's row lock orders this payout with every posting on the merchant.
        Account.objects.select_for_update().filter(pk=accounts[balance_ref][0]).get()
        existing = Payout.objects.filter(run=run, merchant=merchant).first()
        if existing is not None:
            return existing
        # The merchant as it is now (its IBAN, status and settings may have just changed).
        merchant = Merchant.objects.select_for_update().get(pk=merchant.pk)
        if merchant.status != Merchant.Status.ACTIVE or not merchant.payout_iban:
            return None
        balance = merchant_balance(
            merchant_id=merchant.pk,
            livemode=run.livemode,
            settlement_delay_days=merchant.settlement_delay_days,
        )  # now, from the running balance this transaction has locked
        if balance.available_cents <= 0 or balance.available_cents < to_cents(
            merchant.payout_minimum
        ):
            return None
        iban = IBAN(merchant.payout_iban)
        payout = Payout.objects.create(
            run=run,
            merchant=merchant,
            livemode=run.livemode,
            amount=to_money(balance.available_cents),
            iban=iban.compact,
            bic=merchant.payout_bic or str(iban.bic or ""),
            account_holder=merchant.legal_name[:70],
            settlement_delay_days=merchant.settlement_delay_days,
            created_at=now,
        )
        posting_create(
            recipes.payout_sent(
                merchant_id=merchant.pk,
                livemode=run.livemode,
                payout_id=payout.public_id,
                cents=balance.available_cents,
                effective_at=now,
            )
        )
        PayoutEvent.objects.create(payout=payout, to_status=payout.status, created_at=now)
    return payout


def tranche_debtor() -> Debtor:
    account = settings.TRANCHE_BANK_ACCOUNT
    return Debtor(name=account["name"], iban=account["iban"], bic=account["bic"])


def payout_run_build_file(*, run: PayoutRun, now: datetime) -> PayoutRun:
    """Build the run's SEPA file once, from its pending payouts, and mark them sent."""
    with transaction.atomic():
        locked = PayoutRun.objects.select_for_update().get(pk=run.pk)
        if locked.file_built_at is not None:
            return locked
        payouts = list(locked.payouts.filter(status=Payout.Status.PENDING).order_by("pk"))
        if payouts:
            locked.message_id, locked.sepa_file = credit_transfer_file(
                debtor=tranche_debtor(),
                transfers=[_transfer(payout) for payout in payouts],
                execution_date=locked.run_date,
            )
        locked.payout_count = len(payouts)
        locked.total = to_money(sum(to_cents(payout.amount) for payout in payouts))
        locked.file_built_at = now
        locked.save(
            update_fields=["message_id", "sepa_file", "payout_count", "total", "file_built_at"]
        )
        for payout in payouts:
            _transition(payout, Payout.Status.SENT, now=now)
    if payouts:
        logger.info("Payout run %s: %d payouts, %s", locked, locked.payout_count, locked.total)
    return locked


def _transfer(payout: Payout) -> Transfer:
    return Transfer(
        end_to_end_id=payout.public_id.removeprefix("payout_")[:35],
        creditor_name=payout.account_holder,
        iban=payout.iban,
        bic=payout.bic,
        cents=to_cents(payout.amount),
        description=f"Tranche {payout.public_id} {payout.run.run_date.isoformat()}",
    )


def _transition(
    payout: Payout,
    to_status: str,
    *,
    now: datetime,
    actor: AbstractBaseUser | None = None,
    detail: str = "",
) -> Payout:
    """Move a locked payout along PAYOUT_TRANSITIONS and record the event."""
    if to_status not in PAYOUT_TRANSITIONS[payout.status]:
        raise InvalidTransition("payout", payout.status, to_status)
    from_status = payout.status
    payout.status = to_status
    fields = ["status"]
    stamp = {"sent": "sent_at", "paid": "paid_at", "failed": "failed_at"}[to_status]
    setattr(payout, stamp, now)
    fields.append(stamp)
    if to_status == Payout.Status.FAILED:
        payout.failure_reason = detail[:200]
        fields.append("failure_reason")
    payout.save(update_fields=fields)
    PayoutEvent.objects.create(
        payout=payout,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        detail=detail[:200],
        created_at=now,
    )
    return payout


def payout_mark_paid(
    *, payout: Payout, now: datetime, actor: AbstractBaseUser | None = None
) -> Payout:
    """The bank statement shows the transfer: the money has left Tranche's bank account."""
    return _payout_finish(payout, Payout.Status.PAID, recipes.payout_paid, now=now, actor=actor)


def payout_fail(
    *, payout: Payout, reason: str, now: datetime, actor: AbstractBaseUser | None = None
) -> Payout:
    """The transfer was rejected or returned: the money goes back to the merchant's balance."""
    if not reason.strip():
        raise LedgerError("Say why the payout failed.")
    return _payout_finish(
        payout,
        Payout.Status.FAILED,
        recipes.payout_failed,
        now=now,
        actor=actor,
        detail=reason.strip(),
    )


def _payout_finish(
    payout: Payout,
    to_status: str,
    recipe,
    *,
    now: datetime,
    actor: AbstractBaseUser | None,
    detail: str = "",
) -> Payout:
    """A sent payout's last status change and its posting, under the payout's row lock."""
    with transaction.atomic():
        locked = Payout.objects.select_for_update().get(pk=payout.pk)
        _transition(locked, to_status, now=now, actor=actor, detail=detail)
        posting_create(
            recipe(
                merchant_id=locked.merchant_id,
                livemode=locked.livemode,
                payout_id=locked.public_id,
                cents=to_cents(locked.amount),
                effective_at=now,
            )
        )
    return locked
