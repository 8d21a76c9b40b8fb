"""What a posting is, before it is written: pure values and the rules they must follow.

A :class:`PostingSpec` names its accounts by :class:`AccountRef` (kind, owner, reference) and
carries signed integer cents: positive = debit, negative = credit. The service resolves the
accounts, writes the posting in one statement, and PostgreSQL checks the same rules again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from apps.common.errors import DomainError
from apps.common.money import CURRENCY

from .models import PER_PAYMENT, PLATFORM_WIDE, AccountKind, account_key


class LedgerError(DomainError):
    code = "ledger_error"
    http_status = 409


class UnbalancedPosting(LedgerError):
    code = "unbalanced_posting"


class InvalidLegAmount(LedgerError):
    code = "invalid_leg_amount"


class AccountClosed(LedgerError):
    code = "account_closed"


class PostingConflict(LedgerError):
    code = "posting_conflict"
    default_message = "A posting with this source and idempotency key exists with different legs."


@dataclass(frozen=True)
class AccountRef:
    """An account by what it is: its kind, its merchant (or none) and its reference."""

    kind: AccountKind
    merchant_id: int | None = None
    reference: str = ""

    def __post_init__(self) -> None:
        if (self.kind in PLATFORM_WIDE) != (self.merchant_id is None):
            owner = "no merchant" if self.kind in PLATFORM_WIDE else "a merchant"
            raise LedgerError(f"A {self.kind} account belongs to {owner}.")
        if (self.kind in PER_PAYMENT) != bool(self.reference):
            raise LedgerError(f"Only a per-payment account has a reference ({self.kind}).")

    def key(self, *, livemode: bool, currency: str) -> str:
        return account_key(
            kind=self.kind,
            livemode=livemode,
            currency=currency,
            merchant_id=self.merchant_id,
            reference=self.reference,
        )


@dataclass(frozen=True)
class LegSpec:
    account: AccountRef
    cents: int  # positive = debit, negative = credit


@dataclass(frozen=True)
class PostingSpec:
    kind: str
    source: str
    idempotency_key: str
    livemode: bool
    effective_at: datetime
    legs: tuple[LegSpec, ...]
    currency: str = CURRENCY
    merchant_id: int | None = None
    reference: str = ""
    processor_reference: str = ""
    memo: str = ""
    reverses_id: int | None = field(default=None)

    def __post_init__(self) -> None:
        check_legs(self.legs)
        if not self.source or not self.idempotency_key:
            raise LedgerError("A posting needs a source and an idempotency key.")


def check_legs(legs: tuple[LegSpec, ...]) -> None:
    """Two or more legs, none zero, whole cents, summing to zero."""
    if len(legs) < 2:
        raise UnbalancedPosting("A posting needs at least two legs.")
    for leg in legs:
        if isinstance(leg.cents, bool) or not isinstance(leg.cents, int):
            raise InvalidLegAmount(f"Leg amounts are integer cents, not {leg.cents!r}.")
        if leg.cents == 0:
            raise InvalidLegAmount(f"A leg on {leg.account.kind} is zero.")
    total = sum(leg.cents for leg in legs)
    if total != 0:
        raise UnbalancedPosting(f"The legs sum to {total} cents instead of zero.")


def debit(account: AccountRef, cents: int) -> LegSpec:
    return LegSpec(account, cents)


def credit(account: AccountRef, cents: int) -> LegSpec:
    return LegSpec(account, -cents)


def reversal_legs(legs: tuple[LegSpec, ...]) -> tuple[LegSpec, ...]:
    """The legs that undo a posting: the same accounts, opposite signs."""
    return tuple(LegSpec(leg.account, -leg.cents) for leg in legs)
