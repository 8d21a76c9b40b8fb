"""Reads of the ledger: balances now and as of any time, merchant balances, statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import QuerySet

from apps.common.errors import NotFound
from apps.common.keyset import rows_after
from apps.common.money import CURRENCY, decimal_to_cents

from .models import (
    DEBIT_NORMAL,
    Account,
    AccountKind,
    Leg,
    Payout,
    PayoutEvent,
    account_key,
)

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


# --- the merchant dashboard's payouts pages --------------------------------------------------

PAYOUTS_PER_PAGE = 25


@dataclass(frozen=True)
class PayoutPage:
    """One page of a merchant's payouts, newest first; ``next_after`` continues the list."""

    payouts: list[Payout]
    next_after: str | None


def payouts_page(
    *, merchant_id: int, livemode: bool, after: str | None = None, limit: int = PAYOUTS_PER_PAGE
) -> PayoutPage:
    """The merchant's payouts in one mode, newest first, after the payout ``after`` (a public
    id from this list; an unknown one starts from the top). Keyset pagination on
    (created_at, id), read down ledger_payout_idx."""
    payouts = Payout.objects.filter(merchant_id=merchant_id, livemode=livemode)
    if after:
        cursor = payouts.filter(public_id=after).values_list("created_at", "pk").first()
        if cursor is not None:
            created_at, pk = cursor
            payouts = rows_after(
                payouts, field="created_at", value=created_at, pk=pk, descending=True
            )
    rows = list(payouts.order_by("-created_at", "-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return PayoutPage(payouts=rows, next_after=rows[-1].public_id if more else None)


def payout_get(*, merchant_id: int, livemode: bool, public_id: str) -> Payout:
    """One of the merchant's payouts in one mode; NotFound for anyone else's, or the other
    mode's."""
    payout = (
        Payout.objects.filter(merchant_id=merchant_id, livemode=livemode, public_id=public_id)
        .select_related("run")
        .first()
    )
    if payout is None:
        raise NotFound("payout", public_id)
    return payout


def payout_events(*, payout: Payout) -> list[PayoutEvent]:
    """The payout's status history, oldest first."""
    return list(payout.events.order_by("created_at", "pk"))


@dataclass(frozen=True)
class PayoutLine:
    """One amount a payout settles, on the merchant's side (what it adds to the payout).

    ``kind`` is the posting's kind (``payment_captured``, ``refund_issued``,
    ``payout_failed``, ``reserve_held``...), or ``merchant_fee`` for the fee taken from a
    sale, which shows apart from the sale's gross amount.
    """

    kind: str
    posted_at: datetime
    reference: str  # the payment (or the payout) the movement is about
    memo: str
    cents: int


# The legs on the merchant's balance that a payout settles: those before the payout's own
# leg that were available then (not a sale still within the settlement delay, exactly as
# merchant_balance and check_ledger count it), less those the previous payout had already
# settled. The payout took the whole available balance each time, so these legs sum to the
# payout's amount.
_PAYOUT_LEG = """
SELECT l.id, l.account_id, l.posted_at FROM ledger_leg l
  JOIN ledger_posting p ON p.id = l.posting_id
 WHERE p.source = 'payout' AND p.reference = %s AND p.kind = 'payout_sent' AND l.amount > 0
"""
_PREVIOUS_PAYOUT_LEG = """
SELECT l.id, l.posted_at, o.settlement_delay_days FROM ledger_leg l
  JOIN ledger_posting p ON p.id = l.posting_id
  JOIN ledger_payout o ON o.public_id = p.reference
 WHERE l.account_id = %(account)s AND p.source = 'payout' AND p.kind = 'payout_sent'
   AND (l.posted_at, l.id) < (%(at)s, %(leg)s)
 ORDER BY l.posted_at DESC, l.id DESC
 LIMIT 1
"""
_PAYOUT_LINES = """
SELECT p.kind, l.posted_at, p.reference, p.memo, -l.amount,
       coalesce((SELECT -sum(f.amount) FROM ledger_leg f
                  WHERE f.posting_id = p.id AND f.account_id = %(fee_account)s), 0)
  FROM ledger_leg l JOIN ledger_posting p ON p.id = l.posting_id
 WHERE l.account_id = %(account)s
   AND (l.posted_at, l.id) < (%(at)s, %(leg)s)
   AND p.kind <> 'payout_sent'
   AND NOT (p.kind = ANY(%(settling)s) AND l.amount < 0
            AND l.posted_at > %(at)s - make_interval(days => %(delay)s))
   {after_previous}
 ORDER BY l.posted_at, l.id
"""
_AFTER_PREVIOUS = """
   AND l.posted_at >= %(previous_at)s - make_interval(days => %(previous_delay)s)
   AND ((l.posted_at, l.id) > (%(previous_at)s, %(previous_leg)s)
        OR (p.kind = ANY(%(settling)s) AND l.amount < 0
            AND l.posted_at > %(previous_at)s - make_interval(days => %(previous_delay)s)))
"""


def payout_lines(*, payout: Payout) -> list[PayoutLine]:
    """What the payout settles: each sale (its gross amount, then its merchant fee apart),
    refund, returned payout or reserve movement on the merchant's balance, in time order."""
    with connection.cursor() as cursor:
        cursor.execute(_PAYOUT_LEG, [payout.public_id])
        row = cursor.fetchone()
        if row is None:
            return []
        leg_id, account_id, posted_at = row
        params = {
            "account": account_id,
            "at": posted_at,
            "leg": leg_id,
            "delay": payout.settlement_delay_days,
            "settling": SETTLING_KINDS,
        }
        cursor.execute(_PREVIOUS_PAYOUT_LEG, params)
        previous = cursor.fetchone()
        fee_account = merchant_account(
            merchant_id=payout.merchant_id,
            kind=AccountKind.MERCHANT_FEE_REVENUE,
            livemode=payout.livemode,
        )
        params["fee_account"] = fee_account.pk if fee_account is not None else 0
        after_previous = ""
        if previous is not None:
            after_previous = _AFTER_PREVIOUS
            params.update(
                previous_leg=previous[0], previous_at=previous[1], previous_delay=previous[2]
            )
        cursor.execute(_PAYOUT_LINES.format(after_previous=after_previous), params)
        rows = cursor.fetchall()
    lines: list[PayoutLine] = []
    for kind, at, reference, memo, amount, fee in rows:
        cents, fee_cents = decimal_to_cents(amount), decimal_to_cents(fee)
        if kind == "payment_captured" and fee_cents:
            lines.append(PayoutLine(kind, at, reference, memo, cents + fee_cents))
            lines.append(PayoutLine("merchant_fee", at, reference, memo, -fee_cents))
        else:
            lines.append(PayoutLine(kind, at, reference, memo, cents))
    return lines


_REFUNDS_BY_DAY = """
SELECT (l.posted_at AT TIME ZONE %(tz)s)::date AS day, sum(l.amount)
  FROM ledger_leg l JOIN ledger_posting p ON p.id = l.posting_id
 WHERE l.account_id = %(account)s AND l.posted_at >= %(start)s AND l.posted_at < %(end)s
   AND l.amount > 0 AND p.kind = 'refund_issued'
 GROUP BY day
"""


def refunds_by_day(
    *, merchant_id: int, livemode: bool, start: datetime, end: datetime, tz: str
) -> dict[date, int]:
    """Refunded cents per calendar day (in time zone ``tz``) taken from the merchant's balance
    in [start, end): one GROUP BY over the balance's legs in time (ledger_leg_account_time_idx).
    """
    account = merchant_account(
        merchant_id=merchant_id, kind=AccountKind.MERCHANT_BALANCE, livemode=livemode
    )
    if account is None:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            _REFUNDS_BY_DAY, {"tz": tz, "account": account.pk, "start": start, "end": end}
        )
        return {day: decimal_to_cents(total) for day, total in cursor.fetchall()}
