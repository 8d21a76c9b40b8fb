"""Writing postings: the only way money moves in Tranche.

``postings_create`` (and ``posting_create`` for one) resolves the specs' accounts in one query
(creating them on first use) and writes the postings and their legs in one SQL statement;
PostgreSQL then maintains the running balances and checks the legs (migration 0002). A replay
of the same (source, idempotency key) writes nothing and returns the first posting; a replay
with other legs is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import Q

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
WITH locked AS MATERIALIZED (
    SELECT id, balance FROM ledger_account WHERE id = ANY(%s) ORDER BY id FOR UPDATE
), clock AS MATERIALIZED (
    SELECT clock_timestamp() AS now FROM (SELECT count(*) FROM locked) AS after_the_locks
), new_posting AS (
    INSERT INTO ledger_posting (
        kind, livemode, source, idempotency_key, merchant_id, reference,
        processor_reference, memo, effective_at, reverses_id
    )
    SELECT * FROM unnest(
        %s::varchar[], %s::boolean[], %s::varchar[], %s::varchar[], %s::bigint[],
        %s::varchar[], %s::varchar[], %s::varchar[], %s::timestamptz[], %s::bigint[]
    )
    ON CONFLICT (source, idempotency_key) DO NOTHING
    RETURNING id, source, idempotency_key
), new_leg AS (
    INSERT INTO ledger_leg (
        posting_id, account_id, amount, amount_currency, balance_after, posted_at
    )
    SELECT new_posting.id, leg.account_id, leg.cents::numeric / 100, leg.currency,
           locked.balance + sum(leg.cents) OVER (
               PARTITION BY leg.account_id ORDER BY leg.n
           )::numeric / 100,
           clock.now
      FROM unnest(%s::varchar[], %s::varchar[], %s::bigint[], %s::bigint[], %s::varchar[])
           WITH ORDINALITY AS leg(source, idempotency_key, account_id, cents, currency, n)
      JOIN new_posting
        ON new_posting.source = leg.source
       AND new_posting.idempotency_key = leg.idempotency_key
      JOIN locked ON locked.id = leg.account_id
     CROSS JOIN clock
     ORDER BY leg.account_id, leg.n
    RETURNING 1
)
SELECT id, source, idempotency_key FROM new_posting
"""
# One statement writes every posting of a batch and their legs. It first locks the accounts
# in id order (concurrent writers queue there), then takes the time, so each account's legs
# are in time order; each leg carries the balance after it (the locked balance plus the
# running sum of the statement's legs on the account, in the order they are inserted), which
# PostgreSQL checks before moving the balance. A posting already stored under its (source,
# idempotency key) gets no new row and no legs.


def _account_keys(spec: PostingSpec) -> list[str]:
    return [leg.account.key(livemode=spec.livemode, currency=spec.currency) for leg in spec.legs]


def _accounts_by_key(wanted: dict[str, tuple[AccountRef, bool, str]]):
    """{key: (id, closed_at)} for the wanted accounts, creating the missing ones."""

    def read(keys) -> dict[str, tuple[int, datetime | None]]:
        return {
            key: (pk, closed_at)
            for key, pk, closed_at in Account.objects.filter(key__in=keys).values_list(
                "key", "pk", "closed_at"
            )
        }

    found = read(list(wanted))
    # Sorted: concurrent creators take the new unique-key entries in one order.
    missing = sorted(key for key in wanted if key not in found)
    if missing:
        Account.objects.bulk_create(
            [
                Account(
                    key=key,
                    kind=wanted[key][0].kind,
                    livemode=wanted[key][1],
                    merchant_id=wanted[key][0].merchant_id,
                    reference=wanted[key][0].reference,
                    balance_currency=wanted[key][2],
                )
                for key in missing
            ],
            ignore_conflicts=True,
        )
        found.update(read(missing))
    return found


def accounts_resolve(
    refs: set[AccountRef], *, livemode: bool, currency: str
) -> dict[AccountRef, tuple[int, datetime | None]]:
    """Account ids (and closing times) for refs, creating the missing accounts."""
    keys = {ref: ref.key(livemode=livemode, currency=currency) for ref in refs}
    found = _accounts_by_key({key: (ref, livemode, currency) for ref, key in keys.items()})
    return {ref: found[key] for ref, key in keys.items()}


def posting_create(spec: PostingSpec) -> Posted:
    """Write one balanced posting, once per (source, idempotency key)."""
    return postings_create([spec])[0]


def postings_create(specs: list[PostingSpec]) -> list[Posted]:
    """Write postings in one transaction and one statement (a job's batch, or one event).

    Each is written once per (source, idempotency key): a replay, in the batch or of a
    stored posting, writes nothing and answers the first posting if its legs are the same.
    """
    first: dict[tuple[str, str], PostingSpec] = {}
    for spec in specs:
        first.setdefault((spec.source, spec.idempotency_key), spec)
    wanted = {  # every spec's accounts, so a replay with other legs can be compared
        key: (leg.account, spec.livemode, spec.currency)
        for spec in specs
        for key, leg in zip(_account_keys(spec), spec.legs, strict=True)
    }
    with transaction.atomic():
        accounts = _accounts_by_key(wanted)
        closed = {key for key, (_pk, closed_at) in accounts.items() if closed_at is not None}
        to_write = [spec for spec in first.values() if not closed.intersection(_account_keys(spec))]
        created = _insert(to_write, accounts) if to_write else {}
        stored = _stored([identity for identity in first if identity not in created])
        results = []
        answered: set[tuple[str, str]] = set()
        for spec in specs:
            identity = (spec.source, spec.idempotency_key)
            if identity in created:
                if identity not in answered:
                    answered.add(identity)
                    results.append(Posted(posting_id=created[identity], created=True))
                    continue
                # the same event twice in one batch
                posting_id, legs = created[identity], _net_legs(first[identity], accounts)
            elif identity in stored:
                posting_id, legs = stored[identity]
            else:  # not written because an account is closed, and not posted before
                key = next(key for key in _account_keys(spec) if key in closed)
                raise AccountClosed(f"The account {key} is closed.")
            if legs != _net_legs(spec, accounts):
                raise PostingConflict()
            results.append(Posted(posting_id=posting_id, created=False))
        return results


def _net_legs(spec: PostingSpec, accounts) -> dict[int, int]:
    net: dict[int, int] = {}
    for key, leg in zip(_account_keys(spec), spec.legs, strict=True):
        account_id = accounts[key][0]
        net[account_id] = net.get(account_id, 0) + leg.cents
    return net


def _insert(specs: list[PostingSpec], accounts) -> dict[tuple[str, str], int]:
    legs = [
        (spec.source, spec.idempotency_key, accounts[key][0], leg.cents, spec.currency)
        for spec in specs
        for key, leg in zip(_account_keys(spec), spec.legs, strict=True)
    ]
    columns = [
        sorted({leg[2] for leg in legs}),
        [spec.kind for spec in specs],
        [spec.livemode for spec in specs],
        [spec.source for spec in specs],
        [spec.idempotency_key for spec in specs],
        [spec.merchant_id for spec in specs],
        [spec.reference for spec in specs],
        [spec.processor_reference for spec in specs],
        [spec.memo for spec in specs],
        [spec.effective_at for spec in specs],
        [spec.reverses_id for spec in specs],
        *([leg[i] for leg in legs] for i in range(5)),
    ]
    with connection.cursor() as cursor:
        try:
            cursor.execute(_INSERT, columns)
        except IntegrityError as error:
            raise LedgerError(_database_reason(error)) from error
        return {(source, key): pk for pk, source, key in cursor.fetchall()}


def _stored(identities) -> dict[tuple[str, str], tuple[int, dict[int, int]]]:
    """The stored postings of these (source, idempotency key) pairs, with their net legs."""
    if not identities:
        return {}
    query = Q()
    for source, key in identities:
        query |= Q(source=source, idempotency_key=key)
    postings = {
        (source, key): pk
        for pk, source, key in Posting.objects.filter(query).values_list(
            "pk", "source", "idempotency_key"
        )
    }
    net: dict[int, dict[int, int]] = {pk: {} for pk in postings.values()}
    for posting_id, account_id, amount in Leg.objects.filter(posting_id__in=list(net)).values_list(
        "posting_id", "account_id", "amount"
    ):
        net[posting_id][account_id] = net[posting_id].get(account_id, 0) + decimal_to_cents(amount)
    return {identity: (pk, net[pk]) for identity, pk in postings.items()}


def _database_reason(error: IntegrityError) -> str:
    """PostgreSQL's message for a refused write, without its context lines."""
    cause = error.__cause__
    diag = getattr(cause, "diag", None)
    return (diag.message_primary if diag and diag.message_primary else str(error)).strip()


def posting_reverse(*, posting: Posting, reason: str, effective_at: datetime) -> Posted:
    """Undo a posting with its mirror image (the only correction the ledger allows).

    Payout postings follow the payout's own states (a failed payout posts its money back);
    reversing one would pay the merchant twice.
    """
    if posting.kind.startswith("payout_"):
        raise LedgerError("A payout's postings follow its states; mark the payout failed instead.")
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
