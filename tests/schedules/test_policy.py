from datetime import date

import pytest

from apps.schedules.policy import CONTACT, DEFAULT, DUNNING, Policy, next_retry_day, stage

POLICY = Policy()
DUE = date(2026, 2, 28)


@pytest.mark.parametrize(
    ("failed_on", "retry"),
    [
        (date(2026, 2, 28), date(2026, 3, 1)),
        (date(2026, 3, 1), date(2026, 3, 3)),
        (date(2026, 3, 3), date(2026, 3, 5)),
        (date(2026, 3, 5), date(2026, 3, 7)),
        (date(2026, 3, 7), None),
        (date(2026, 3, 2), date(2026, 3, 3)),  # a run that came a day late keeps the plan
    ],
)
def test_retries_fall_on_days_1_3_5_7_after_the_due_date(failed_on, retry):
    assert next_retry_day(POLICY, due_date=DUE, today=failed_on) == retry


@pytest.mark.parametrize(
    ("days", "where"), [(0, DUNNING), (7, DUNNING), (8, CONTACT), (15, CONTACT), (16, DEFAULT)]
)
def test_the_stage_follows_the_days_late(days, where):
    assert stage(POLICY, days=days) == where


@pytest.mark.parametrize(
    "fields",
    [
        {"retry_days": (3, 1)},
        {"retry_days": (0, 2)},
        {"retry_days": (1, 9)},
        {"contact_from_days": 20, "default_after_days": 15},
    ],
)
def test_an_inconsistent_policy_is_refused(fields):
    with pytest.raises(ValueError):
        Policy(**fields)
