"""The dunning policy, pure: what happens on which day after an instalment's debit failed.

Days are counted in Europe/Paris calendar days from the due date of the oldest instalment
still unpaid ("days late"). With the default settings:

- day 0 (the due date): the debit; if it fails, the instalment is in ``incident`` and the
  payment ``late_dunning``;
- days 1, 3, 5 and 7: the debit is tried again (``DUNNING_RETRY_DAYS``), with an email each
  time it fails;
- days 8 to 15: ``late_contact_customer``: an email and an SMS ask the customer to pay or
  change the card (``DUNNING_CONTACT_FROM_DAYS``); no more automatic retries;
- over 15 days (day 16): ``default`` (``DUNNING_DEFAULT_AFTER_DAYS``): the instalments are
  ``claimed``, the principal still owed is written off as a credit loss, the merchant keeps
  what it was paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

DUNNING = "dunning"
CONTACT = "contact"
DEFAULT = "default"


@dataclass(frozen=True)
class Policy:
    retry_days: tuple[int, ...] = (1, 3, 5, 7)
    contact_from_days: int = 8
    default_after_days: int = 15

    def __post_init__(self) -> None:
        days = self.retry_days
        if any(day <= 0 for day in days) or list(days) != sorted(set(days)):
            raise ValueError("retry days must be increasing positive numbers")
        if days and days[-1] >= self.contact_from_days:
            raise ValueError("retries must end before the customer is contacted")
        if self.contact_from_days > self.default_after_days:
            raise ValueError("the customer is contacted before the default")


def policy_from_settings() -> Policy:
    from django.conf import settings

    return Policy(
        retry_days=tuple(settings.DUNNING_RETRY_DAYS),
        contact_from_days=settings.DUNNING_CONTACT_FROM_DAYS,
        default_after_days=settings.DUNNING_DEFAULT_AFTER_DAYS,
    )


def days_late(*, due_date: date, today: date) -> int:
    return (today - due_date).days


def next_retry_day(policy: Policy, *, due_date: date, today: date) -> date | None:
    """The day a failed debit of an instalment due on ``due_date`` is tried again, the
    failure having happened on ``today``; None when no retry is left."""
    late = days_late(due_date=due_date, today=today)
    for day in policy.retry_days:
        if day > late:
            return date.fromordinal(due_date.toordinal() + day)
    return None


def stage(policy: Policy, *, days: int) -> str:
    """Where a payment whose oldest unpaid instalment is ``days`` late stands."""
    if days > policy.default_after_days:
        return DEFAULT
    if days >= policy.contact_from_days:
        return CONTACT
    return DUNNING
