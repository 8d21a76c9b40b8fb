"""Writing postings: the only way money moves in Tranche.

``posting_create`` resolves the spec's accounts (creating them on first use) and writes the
posting and its legs in one SQL statement; PostgreSQL then maintains the running balances and
checks the legs (migration 0002). A replay of the same (source, idempotency key) writes nothing
and returns the first posting; a replay with other legs is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction

from apps.common.money import decimal_to_cents, to_cents

from ..models import Account, Leg, Posting
from ..postings import (
    AccountClosed,
    AccountRef,
    LedgerError,
    LegSpec,
    PostingConflict,
    PostingSpec,
    reversal_legs,
)


@dataclass(frozen=True)
class Posted:
    posting_id: int
    created: bool  # False when the (source, idempotency key) had already been posted


_INSERT = """
WITH posting AS (
    INSERT INTO ledger_posting (
        kind, livemode, source, idempotency_key, merchant_id, reference,
        processor_reference, memo, effective_at, reverses_id
    )
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (source, idempotency_key) DO NOTHING
    RETURNING id
)
INSERT INTO ledger_leg (posting_id, account_id, amount, amount_currency)
SELECT posting.id, leg.account_id, leg.cents::numeric / 100, %s
  FROM posting, unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY AS leg(account_id, cents, n)
 ORDER BY leg.account_id, leg.n
RETURNING posting_id
"""
# Legs are written in account-id order, so concurrent postings lock accounts in one order.


def accounts_resolve(
    refs: set[AccountRef], *, livemode: bool, currency: str
) -> dict[AccountRef, tuple[int, datetime | None]]:
    """Account ids (and closing times) for refs, creating the missing accounts."""
    by_key = {ref.key(livemode=livemode, currency=currency): ref for ref in refs}
    found = dict(
        (key, (pk, closed_at))
        for key, pk, closed_at in Account.objects.filter(key__in=by_key).values_list(
            "key", "pk", "closed_at"
        )
    )
    # Sorted: concurrent creators take the new unique-key entries in one order.
    missing = sorted(key for key in by_key if key not in found)
    if missing:
        Account.objects.bulk_create(
            [
                Account(
                    key=key,
                    kind=by_key[key].kind,
                    livemode=livemode,
                    merchant_id=by_key[key].merchant_id,
                    reference=by_key[key].reference,
                    balance_currency=currency,
                )
                for key in missing
            ],
            ignore_conflicts=True,
        )
        found.update(
            (key, (pk, closed_at))
            for key, pk, closed_at in Account.objects.filter(key__in=missing).values_list(
                "key", "pk", "closed_at"
            )
        )
    return {ref: found[key] for key, ref in by_key.items()}


def posting_create(spec: PostingSpec) -> Posted:
    """Write one balanced posting, once per (source, idempotency key)."""
    with transaction.atomic():
        accounts = accounts_resolve(
            {leg.account for leg in spec.legs}, livemode=spec.livemode, currency=spec.currency
        )
        account_ids = [accounts[leg.account][0] for leg in spec.legs]
        closed = [ref for ref, (_pk, closed_at) in accounts.items() if closed_at is not None]
        if closed:
            existing = Posting.objects.filter(
                source=spec.source, idempotency_key=spec.idempotency_key
            ).first()
            if existing is None:
                raise AccountClosed(f"The {closed[0].kind} account is closed.")
            return _replayed(existing, spec, account_ids)  # posted before the account closed
        with connection.cursor() as cursor:
            try:
                cursor.execute(
                    _INSERT,
                    [
                        spec.kind,
                        spec.livemode,
                        spec.source,
                        spec.idempotency_key,
                        spec.merchant_id,
                        spec.reference,
                        spec.processor_reference,
                        spec.memo,
                        spec.effective_at,
                        spec.reverses_id,
                        spec.currency,
                        account_ids,
                        [leg.cents for leg in spec.legs],
                    ],
                )
            except IntegrityError as error:
                raise LedgerError(_database_reason(error)) from error
            inserted = cursor.fetchone()
        if inserted is not None:
            return Posted(posting_id=inserted[0], created=True)
        existing = Posting.objects.get(source=spec.source, idempotency_key=spec.idempotency_key)
        return _replayed(existing, spec, account_ids)


def _replayed(existing: Posting, spec: PostingSpec, account_ids: list[int]) -> Posted:
    """The answer to a replay: the first posting, if it has the same legs."""
    expected: dict[int, int] = {}
    for account_id, leg in zip(account_ids, spec.legs, strict=True):
        expected[account_id] = expected.get(account_id, 0) + leg.cents
    _check_same_legs(existing, expected)
    return Posted(posting_id=existing.pk, created=False)


def _database_reason(error: IntegrityError) -> str:
    """PostgreSQL's message for a refused write, without its context lines."""
    cause = error.__cause__
    diag = getattr(cause, "diag", None)
    return (diag.message_primary if diag and diag.message_primary else str(error)).strip()


def _check_same_legs(posting: Posting, expected: dict[int, int]) -> None:
    stored: dict[int, int] = {}
    for account_id, amount in Leg.objects.filter(posting=posting).values_list(
        "account_id", "amount"
    ):
        stored[account_id] = stored.get(account_id, 0) + decimal_to_cents(amount)
    if stored != expected:
        raise PostingConflict()


def posting_reverse(*, posting: Posting, reason: str, effective_at: datetime) -> Posted:
    """Undo a posting with its mirror image (the only correction the ledger allows)."""
    legs = tuple(
        LegSpec(
            AccountRef(leg.account.kind, leg.account.merchant_id, leg.account.reference),
            to_cents(leg.amount),
        )
        for leg in posting.legs.select_related("account").order_by("pk")
    )
    return posting_create(
        PostingSpec(
            kind="reversal",
            source="reversal",
            idempotency_key=str(posting.pk),
            livemode=posting.livemode,
            effective_at=effective_at,
            legs=reversal_legs(legs),
            currency=str(posting.legs.first().amount.currency),
            merchant_id=posting.merchant_id,
            reference=posting.reference,
            processor_reference=posting.processor_reference,
            memo=reason[:200],
            reverses_id=posting.pk,
        )
    )


def account_close(*, account: Account, now: datetime) -> Account:
    """Close an account with a zero balance; no leg may be posted to it afterwards."""
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        if locked.closed_at is not None:
            raise AccountClosed(f"The account {locked.key} is already closed.")
        if locked.balance.amount != 0:
            raise LedgerError(f"The account {locked.key} still holds {locked.balance}.")
        locked.closed_at = now
        locked.save(update_fields=["closed_at"])
    return locked
