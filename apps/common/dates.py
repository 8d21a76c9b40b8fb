"""Business dates: Europe/Paris calendar days, month arithmetic, and dates on the wire.

Time is stored in UTC; due dates, reminders and statements are calendar days in
Europe/Paris (settings.TIME_ZONE). The API speaks UNIX timestamps, so a business date goes
out as noon Europe/Paris that day: any client formatting it in a European time zone gets
the same calendar day back.
"""

from __future__ import annotations

import calendar
import functools
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Europe/Paris")
NOON = time(12, 0)


DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_in_month(year: int, month: int) -> int:
    # calendar.monthrange also computes a weekday: this is on the plans' hot path.
    if month == 2 and calendar.isleap(year):
        return 29
    return DAYS_IN_MONTH[month - 1]


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's end (31 Jan + 1 -> 28/29 Feb)."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    month += 1
    if day.day <= 28:
        return date(year, month, day.day)
    return date(year, month, min(day.day, days_in_month(year, month)))


def business_date(moment: datetime) -> date:
    """The Europe/Paris calendar day of an aware datetime."""
    return moment.astimezone(BUSINESS_TZ).date()


@functools.lru_cache(maxsize=4096)
def date_to_timestamp(day: date) -> int:
    """A business date as the UNIX timestamp of noon Europe/Paris on that day."""
    return int(datetime.combine(day, NOON, tzinfo=BUSINESS_TZ).timestamp())


def debit_time(day: date, *, hour: int) -> datetime:
    """When an instalment due on ``day`` is debited: ``hour`` o'clock Europe/Paris that day
    (an aware datetime; a DST change that day is handled by the time zone)."""
    return datetime.combine(day, time(hour, 0), tzinfo=BUSINESS_TZ)
