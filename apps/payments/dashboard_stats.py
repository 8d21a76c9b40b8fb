"""The figures of the dashboard's home page, for one merchant, one mode and one period.

One GROUP BY per figure, never a query per day: the payments of the period by day and plan
(read down payment_list_idx: merchant, mode, created_at), the instalments due in the period
by week (through the same index on their payments), and the refunds taken from the merchant's
balance by day (from the ledger, through its selector). Days are Europe/Paris calendar days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import (
    BooleanField,
    Case,
    Count,
    DecimalField,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import TruncDate, TruncWeek

from apps.common.dates import BUSINESS_TZ
from apps.common.money import BPS_PER_UNIT, decimal_to_cents, round_half_up_div
from apps.ledger.selectors import refunds_by_day
from apps.payments.models import Instalment, Payment, PaymentState

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
PAY_LATER = "PAY_LATER"
# An instalment is due at most about a year after its payment was created (12 monthly
# instalments, or a deferral of up to 12 months or 365 days), plus a postponement: the
# instalments due in the period are looked for among the payments created since this long
# before it, a range of payment_list_idx rather than every payment the merchant ever had.
SCHEDULE_SPAN = timedelta(days=450)


@dataclass(frozen=True)
class Period:
    """The last ``days`` calendar days up to and including ``last``."""

    first: date
    last: date

    @classmethod
    def ending(cls, last: date, *, days: int) -> Period:
        return cls(first=last - timedelta(days=days - 1), last=last)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=BUSINESS_TZ)

    @property
    def ends_at(self) -> datetime:
        """The first moment after the period (exclusive bound)."""
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=BUSINESS_TZ)

    @property
    def weeks(self) -> list[date]:
        """The Mondays of the weeks the period touches."""
        monday = self.first - timedelta(days=self.first.weekday())
        return [monday + timedelta(weeks=n) for n in range((self.last - monday).days // 7 + 1)]


def period_days(raw: str | None) -> int:
    """The period asked for in ``?days=``: 7, 30 or 90; anything else is the default."""
    try:
        days = int(raw or "")
    except ValueError:
        return DEFAULT_PERIOD
    return days if days in PERIODS else DEFAULT_PERIOD


def plan_key(installments_count: int, pay_later: bool) -> str:
    """The plan as Payment.kind names it: P1X, P3X..., or PAY_LATER."""
    return PAY_LATER if pay_later else f"P{installments_count}X"


def plan_order(key: str) -> tuple[int, int]:
    """P1X, P2X... in order, pay later last."""
    if key == PAY_LATER:
        return (1, 0)
    return (0, int(key[1:-1]))


@dataclass
class DaySales:
    volume_cents: dict[str, int] = field(default_factory=dict)  # accepted sales, by plan
    accepted: int = 0
    refused: int = 0


@dataclass(frozen=True)
class WeekCollection:
    due_cents: int
    collected_cents: int


@dataclass(frozen=True)
class HomeStats:
    period: Period
    sales: dict[date, DaySales]  # every day of the period
    plans: list[str]  # the plans sold in the period, in plan_order
    collections: dict[date, WeekCollection]  # by the Monday of each week
    refunds: dict[date, int]  # every day of the period

    @property
    def volume_cents(self) -> int:
        return sum(sum(day.volume_cents.values()) for day in self.sales.values())

    @property
    def accepted(self) -> int:
        return sum(day.accepted for day in self.sales.values())

    @property
    def refused(self) -> int:
        return sum(day.refused for day in self.sales.values())

    @property
    def average_basket_cents(self) -> int | None:
        if not self.accepted:
            return None
        return round_half_up_div(self.volume_cents, self.accepted)

    @property
    def acceptance_bps(self) -> int | None:
        return acceptance_bps(self.accepted, self.refused)

    @property
    def due_cents(self) -> int:
        return sum(week.due_cents for week in self.collections.values())

    @property
    def collected_cents(self) -> int:
        return sum(week.collected_cents for week in self.collections.values())

    @property
    def refunded_cents(self) -> int:
        return sum(self.refunds.values())

    @property
    def has_data(self) -> bool:
        return bool(self.accepted or self.refused or self.due_cents or self.refunded_cents)


def acceptance_bps(accepted: int, refused: int) -> int | None:
    """Accepted / (accepted + refused) in basis points; None when nothing was decided."""
    decided = accepted + refused
    if not decided:
        return None
    return round_half_up_div(accepted * BPS_PER_UNIT, decided)


_ACCEPTED = Q(accepted_at__isnull=False)
# Refused: the customer was refused credit and did not pay at once (p1x) afterwards.
_REFUSED = Q(state=PaymentState.SCORED_NO, accepted_at__isnull=True)


def sales_query(*, merchant_id: int, livemode: bool, period: Period) -> QuerySet:
    """The period's payments grouped by (day, plan): accepted volume and count, refusals.
    A range of payment_list_idx (merchant, mode, created_at)."""
    return (
        Payment.objects.filter(
            merchant_id=merchant_id,
            livemode=livemode,
            created_at__gte=period.starts_at,
            created_at__lt=period.ends_at,
        )
        .annotate(
            day=TruncDate("created_at", tzinfo=BUSINESS_TZ),
            pay_later=Case(
                When(Q(deferred_days__gt=0) | Q(deferred_months__gt=0), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
        )
        .values("day", "installments_count", "pay_later")
        .annotate(
            volume=Sum("purchase_amount", filter=_ACCEPTED),
            accepted=Count("pk", filter=_ACCEPTED),
            refused=Count("pk", filter=_REFUSED),
        )
        .order_by()
    )


def sales_by_day(*, merchant_id: int, livemode: bool, period: Period) -> dict[date, DaySales]:
    """Each day's accepted sales (volume by plan, count) and refusals, among the payments
    created that day (one query: sales_query)."""
    sales = {day: DaySales() for day in period.days}
    rows = sales_query(merchant_id=merchant_id, livemode=livemode, period=period)
    for row in rows:
        day = sales.get(row["day"])
        if day is None:  # cannot happen with the bounds above; never trust it blindly
            continue
        if row["accepted"]:
            key = plan_key(row["installments_count"], row["pay_later"])
            day.volume_cents[key] = day.volume_cents.get(key, 0) + decimal_to_cents(row["volume"])
        day.accepted += row["accepted"]
        day.refused += row["refused"]
    return sales


def collections_query(*, merchant_id: int, livemode: bool, period: Period) -> QuerySet:
    """The accepted payments' instalments due in the period, grouped by week: what they ask
    of customers (principal, fee and interest) and how much of it is paid. The payments are a
    range of payment_list_idx, their instalments found by (payment, number)."""
    total = F("purchase_amount") + F("customer_fee") + F("customer_interest")
    money = DecimalField(max_digits=16, decimal_places=2)
    return (
        Instalment.objects.filter(
            payment__merchant_id=merchant_id,
            payment__livemode=livemode,
            payment__created_at__gte=period.starts_at - SCHEDULE_SPAN,
            payment__created_at__lt=period.ends_at,
            payment__accepted_at__isnull=False,
            due_date__gte=period.first,
            due_date__lte=period.last,
        )
        .annotate(week=TruncWeek("due_date"))
        .values("week")
        .annotate(
            due=Sum(total, output_field=money),
            collected=Sum(total, filter=Q(state=Instalment.State.PAID), output_field=money),
        )
        .order_by()
    )


def collections_by_week(
    *, merchant_id: int, livemode: bool, period: Period
) -> dict[date, WeekCollection]:
    """For each week the period touches (by its Monday): due and collected cents."""
    rows = collections_query(merchant_id=merchant_id, livemode=livemode, period=period)
    found = {
        _as_date(row["week"]): WeekCollection(
            due_cents=decimal_to_cents(row["due"] or Decimal(0)),
            collected_cents=decimal_to_cents(row["collected"] or Decimal(0)),
        )
        for row in rows
    }
    empty = WeekCollection(due_cents=0, collected_cents=0)
    return {week: found.get(week, empty) for week in period.weeks}


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def home_stats(*, merchant_id: int, livemode: bool, period: Period) -> HomeStats:
    """Everything the home page shows, in three queries."""
    sales = sales_by_day(merchant_id=merchant_id, livemode=livemode, period=period)
    plans = sorted({plan for day in sales.values() for plan in day.volume_cents}, key=plan_order)
    refunded = refunds_by_day(
        merchant_id=merchant_id,
        livemode=livemode,
        start=period.starts_at,
        end=period.ends_at,
        tz=str(BUSINESS_TZ),
    )
    return HomeStats(
        period=period,
        sales=sales,
        plans=plans,
        collections=collections_by_week(merchant_id=merchant_id, livemode=livemode, period=period),
        refunds={day: refunded.get(day, 0) for day in period.days},
    )
