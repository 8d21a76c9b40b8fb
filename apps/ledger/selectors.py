"""Reads of the ledger: balances now and as of any time, merchant balances, statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import QuerySet

from apps.common.money import CURRENCY, decimal_to_cents

from .models import DEBIT_NORMAL, Account, AccountKind, Leg, account_key

_BALANCE_AS_OF = """
SELECT balance_after FROM ledger_leg
 WHERE account_id = %s AND posted_at <= %s
 ORDER BY posted_at DESC, id DESC
 LIMIT 1
"""


def account_balance_cents(*, account_id: int, as_of: datetime | None = None) -> int:
    """The signed balance (debits positive) now, or just after the last leg at or before as_of.

    Both are one indexed probe: the running balance on the account row, or ``balance_after``
    of the account's last leg by time (index-only scan of ledger_leg_account_time_idx).
    """
    with connection.cursor() as cursor:
        if as_of is None:
            cursor.execute("SELECT balance FROM ledger_account WHERE id = %s", [account_id])
        else:
            cursor.execute(_BALANCE_AS_OF, [account_id, as_of])
        row = cursor.fetchone()
    return decimal_to_cents(row[0]) if row else 0


def natural_cents(kind: str, signed_cents: int) -> int:
    """A signed balance on the account's normal side (what a merchant is owed is positive)."""
    return signed_cents if kind in DEBIT_NORMAL else -signed_cents


def merchant_account(*, merchant_id: int, kind: str, livemode: bool) -> Account | None:
    key = account_key(kind=kind, livemode=livemode, currency=CURRENCY, merchant_id=merchant_id)
    return Account.objects.filter(key=key).first()


@dataclass(frozen=True)
class MerchantBalance:
    """What Tranche owes a merchant, in cents.

    ``pending`` is what sales credited within the settlement delay; ``available`` is the rest
    (negative when refunds took more than what had settled); only ``available`` is paid out.
    """

    total_cents: int
    pending_cents: int
    available_cents: int
    reserve_cents: int
    in_transit_cents: int


# Only sales wait for the settlement delay; money coming back to the balance (a failed
# payout, a released reserve) is available at once.
SETTLING_KINDS = ["payment_captured"]

_CREDITS_SINCE = """
SELECT coalesce(-sum(l.amount), 0) FROM ledger_leg l JOIN ledger_posting p ON p.id = l.posting_id
 WHERE l.account_id = %s AND l.amount < 0 AND p.kind = ANY(%s)
   AND l.posted_at > %s AND l.posted_at <= %s
"""
# The current balance's pending part, on the database's clock (the legs' clock).
_CREDITS_RECENT = """
SELECT coalesce(-sum(l.amount), 0) FROM ledger_leg l JOIN ledger_posting p ON p.id = l.posting_id
 WHERE l.account_id = %s AND l.amount < 0 AND p.kind = ANY(%s)
   AND l.posted_at > clock_timestamp() - make_interval(days => %s)
"""


def merchant_balance(
    *,
    merchant_id: int,
    livemode: bool,
    settlement_delay_days: int,
    as_of: datetime | None = None,
) -> MerchantBalance:
    """The merchant's balances as of a time, or now (``as_of`` None: the running balances,
    which a caller holding the balance's row lock can act on)."""

    def natural(kind: str) -> tuple[Account | None, int]:
        account = merchant_account(merchant_id=merchant_id, kind=kind, livemode=livemode)
        if account is None:
            return None, 0
        return account, natural_cents(
            kind, account_balance_cents(account_id=account.pk, as_of=as_of)
        )

    balance_account, total = natural(AccountKind.MERCHANT_BALANCE)
    pending = 0
    if balance_account is not None and settlement_delay_days:
        with connection.cursor() as cursor:
            if as_of is None:
                cursor.execute(
                    _CREDITS_RECENT, [balance_account.pk, SETTLING_KINDS, settlement_delay_days]
                )
            else:
                since = as_of - timedelta(days=settlement_delay_days)
                cursor.execute(_CREDITS_SINCE, [balance_account.pk, SETTLING_KINDS, since, as_of])
            pending = min(decimal_to_cents(cursor.fetchone()[0]), max(total, 0))
    return MerchantBalance(
        total_cents=total,
        pending_cents=pending,
        available_cents=total - pending,
        reserve_cents=natural(AccountKind.MERCHANT_RESERVE)[1],
        in_transit_cents=natural(AccountKind.PAYOUTS_IN_TRANSIT)[1],
    )


def account_statement(*, account: Account) -> QuerySet[Leg]:
    """An account's legs, newest first, each with its posting and the balance after it."""
    return (
        Leg.objects.filter(account=account).select_related("posting").order_by("-posted_at", "-id")
    )
