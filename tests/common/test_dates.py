from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.common.dates import add_months, business_date, date_to_timestamp, days_in_month

PARIS = ZoneInfo("Europe/Paris")

any_day = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 15), 1, date(2026, 2, 15)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 1, 31), 2, date(2026, 3, 31)),
        (date(2026, 1, 31), 3, date(2026, 4, 30)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2028, 1, 31), 2, date(2028, 3, 31)),
        (date(2026, 3, 30), 11, date(2027, 2, 28)),
        (date(2026, 5, 15), 0, date(2026, 5, 15)),
    ],
)
def test_adding_months_keeps_the_day_clamped_to_the_month_end(day, months, expected):
    result = add_months(day, months)

    assert result == expected


def test_adding_months_counts_from_the_original_day_not_from_the_clamped_one():
    purchase = date(2026, 1, 31)

    step_by_step = add_months(add_months(purchase, 1), 1)
    from_the_purchase = add_months(purchase, 2)

    assert step_by_step == date(2026, 3, 28)
    assert from_the_purchase == date(2026, 3, 31)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2026, 1, 15), -1, date(2025, 12, 15)),
        (date(2026, 1, 31), -13, date(2024, 12, 31)),
        (date(2028, 3, 29), -1, date(2028, 2, 29)),
    ],
)
def test_negative_months_go_back_in_time_with_the_same_clamping(day, months, expected):
    result = add_months(day, months)

    assert result == expected


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 12, 31), 1, date(2027, 1, 31)),
        (date(2026, 1, 15), 24, date(2028, 1, 15)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2028, 2, 29), 48, date(2032, 2, 29)),
    ],
)
def test_adding_months_rolls_over_the_year(day, months, expected):
    result = add_months(day, months)

    assert result == expected


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [(2026, 2, 28), (2028, 2, 29), (2000, 2, 29), (2100, 2, 28), (2026, 4, 30), (2026, 12, 31)],
)
def test_february_has_29_days_only_in_leap_years(year, month, expected):
    assert days_in_month(year, month) == expected


@given(day=any_day, months=st.integers(min_value=-240, max_value=240))
def test_adding_months_moves_exactly_that_many_calendar_months(day, months):
    result = add_months(day, months)

    assert (result.year * 12 + result.month) - (day.year * 12 + day.month) == months
    assert result.day == min(day.day, days_in_month(result.year, result.month))


@given(day=any_day, months=st.integers(min_value=-240, max_value=240))
def test_adding_then_removing_months_returns_to_any_day_that_exists_in_every_month(day, months):
    day = day.replace(day=min(day.day, 28))

    result = add_months(add_months(day, months), -months)

    assert result == day


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 3, 28, 23, 30, tzinfo=UTC), date(2026, 3, 29)),
        (datetime(2026, 3, 28, 22, 59, tzinfo=UTC), date(2026, 3, 28)),
        # 29 March 2026: clocks go forward at 01:00 UTC (CET -> CEST).
        (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), date(2026, 3, 29)),
        (datetime(2026, 3, 29, 21, 59, tzinfo=UTC), date(2026, 3, 29)),
        (datetime(2026, 3, 29, 22, 0, tzinfo=UTC), date(2026, 3, 30)),
        # 25 October 2026: clocks go back at 01:00 UTC (CEST -> CET).
        (datetime(2026, 10, 24, 21, 59, tzinfo=UTC), date(2026, 10, 24)),
        (datetime(2026, 10, 24, 22, 0, tzinfo=UTC), date(2026, 10, 25)),
        (datetime(2026, 10, 25, 22, 59, tzinfo=UTC), date(2026, 10, 25)),
        (datetime(2026, 10, 25, 23, 0, tzinfo=UTC), date(2026, 10, 26)),
        (datetime(2026, 12, 31, 23, 0, tzinfo=UTC), date(2027, 1, 1)),
    ],
)
def test_the_business_date_is_the_calendar_day_in_paris(moment, expected):
    result = business_date(moment)

    assert result == expected


def test_the_business_date_of_a_paris_datetime_is_its_own_day():
    moment = datetime(2026, 7, 14, 0, 5, tzinfo=PARIS)

    result = business_date(moment)

    assert result == date(2026, 7, 14)


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        (date(2026, 1, 15), 11),
        (date(2026, 3, 28), 11),
        (date(2026, 3, 29), 10),
        (date(2026, 7, 15), 10),
        (date(2026, 10, 24), 10),
        (date(2026, 10, 25), 11),
        (date(2028, 2, 29), 11),
    ],
)
def test_a_business_date_goes_on_the_wire_as_noon_in_paris(day, utc_hour):
    timestamp = date_to_timestamp(day)

    assert datetime.fromtimestamp(timestamp, PARIS) == datetime.combine(
        day, time(12, 0), tzinfo=PARIS
    )
    assert datetime.fromtimestamp(timestamp, UTC) == datetime.combine(
        day, time(utc_hour, 0), tzinfo=UTC
    )


def test_consecutive_business_dates_are_a_day_apart_on_the_wire_except_across_dst():
    around_spring = [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)]

    timestamps = [date_to_timestamp(day) for day in around_spring]

    assert timestamps[1] - timestamps[0] == int(timedelta(hours=23).total_seconds())
    assert timestamps[2] - timestamps[1] == int(timedelta(hours=24).total_seconds())


@given(day=st.dates(min_value=date(1971, 1, 1), max_value=date(2100, 12, 31)))
def test_a_timestamp_read_back_in_paris_gives_the_same_business_date(day):
    timestamp = date_to_timestamp(day)

    result = business_date(datetime.fromtimestamp(timestamp, UTC))

    assert result == day
    assert isinstance(timestamp, int)
