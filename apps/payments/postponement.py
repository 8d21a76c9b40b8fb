"""Postponing an instalment from the customer portal: pure, no ORM, no clock.

The rule (product.md "The schedule's life"; settings POSTPONE_MAX_DAYS and
POSTPONEMENTS_PER_INSTALMENT):

- A customer may move the due date of one **unpaid** instalment (``pending``, or
  ``incident``: its debit failed, it is late) of an **open** plan (``in_progress``,
  ``late_dunning``, ``late_contact_customer``) to a date they pick.
- The new date is **later** than the current due date and **tomorrow at the earliest**
  (Europe/Paris business date); at most **POSTPONE_MAX_DAYS (15) days after the current
  due date**; and **strictly before the due date of the next unpaid instalment**: the later
  dates never move, the order of the schedule stays.
- The new date is within the saved card's validity (the last day of its expiry month).
- **Once per instalment** by default (POSTPONEMENTS_PER_INSTALMENT, counted in
  ``Instalment.postponements``).
- Free: no fee, no change of interest; a late fee already charged on a late instalment
  stays.
- Not while the instalment's debit is under way (a charge on it is waiting for the
  processor's answer: the debit run claimed it, or an early payment covers it).

Moving it (``apps.schedules.services.postponing.instalment_postpone``) sets the new due
date and debit time, keeps the first planned date in ``postponed_from``, makes a late
instalment ``pending`` again (the plan is back ``in_progress`` once no instalment is late),
records an ``instalment_postponed`` event and emails the customer; the reminder job sends a
reminder for the new date (``reminded_for`` differs from it). A delay the rule does not allow
is a request to support (``longer_delay_request``).

Why a refusal (``Refusal.code``), checked in this order:

=============================  ===============================================================
code                           when
=============================  ===============================================================
``already_paid``               the instalment is paid
``plan_in_default``            the plan is in default (the instalment is with collection)
``plan_closed``                the plan is paid off, stopped, closed, or not started
``debit_in_progress``          a charge on the instalment is waiting for the processor
``already_postponed``          moved POSTPONEMENTS_PER_INSTALMENT times already
``too_late``                   POSTPONE_MAX_DAYS days late or more: no day is left
``next_instalment_too_close``  the next unpaid instalment is due tomorrow or earlier
``card_expires``               the saved card is not valid any more tomorrow
``date_outside_window``        (``check_date``) the date picked is not in the window
=============================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from django.utils import formats
from django.utils.translation import gettext

from apps.common.dates import days_in_month

UNPAID_STATES = frozenset({"pending", "incident"})
OPEN_PAYMENT_STATES = frozenset({"in_progress", "late_dunning", "late_contact_customer"})
DEFAULT_PAYMENT_STATES = frozenset({"default", "collection_done"})

# What limits the last day of a window.
MAX_DAYS = "max_days"
NEXT_INSTALMENT = "next_instalment"
CARD_EXPIRY = "card_expiry"


@dataclass(frozen=True)
class PostponeFacts:
    """What the rule needs to know about an instalment, read from the database elsewhere."""

    instalment_state: str
    due_date: date
    postponements: int
    payment_state: str
    next_unpaid_due_date: date | None  # the following unpaid instalment's, None: the last
    in_flight: bool
    card_expiry: tuple[int, int] | None  # (year, month); None: unknown, not checked


@dataclass(frozen=True)
class Window:
    """The dates an instalment may move to: ``first`` to ``last``, both included."""

    first: date
    last: date
    limited_by: str  # MAX_DAYS, NEXT_INSTALMENT or CARD_EXPIRY

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


@dataclass(frozen=True)
class Refusal:
    """Why an instalment cannot move (or not to that date): a stable code, and what the
    message needs. ``message`` is written in the active language when it is read."""

    code: str
    first: date | None = None  # date_outside_window: the window
    last: date | None = None
    limit: date | None = None  # the next due date, or the card's last valid day
    max_days: int = 0
    per_instalment: int = 0

    @property
    def message(self) -> str:
        return _MESSAGES[self.code](self)


def _day(day: date | None) -> str:
    # apps.payments.emails.date_display, without importing the models.
    return formats.date_format(day, "DATE_FORMAT") if day else ""


def _already_postponed(refusal: Refusal) -> str:
    if refusal.per_instalment == 1:
        return gettext(
            "You have already moved this instalment: each instalment can be moved once. "
            "For a longer delay, ask our support."
        )
    return gettext(
        "You have already moved this instalment %(count)d times, the most allowed. "
        "For a longer delay, ask our support."
    ) % {"count": refusal.per_instalment}


_MESSAGES = {
    "already_paid": lambda r: gettext("This instalment is already paid."),
    "plan_in_default": lambda r: gettext(
        "This plan is in default: its dates can no longer be moved here. Please contact our "
        "support."
    ),
    "plan_closed": lambda r: gettext("This plan is closed: its dates can no longer be moved."),
    "debit_in_progress": lambda r: gettext(
        "This instalment is being debited right now. Please try again in a few minutes."
    ),
    "already_postponed": _already_postponed,
    "too_late": lambda r: (
        gettext(
            "This instalment has been late for %(days)d days or more: it can no longer be moved "
            "here. For a longer delay, ask our support."
        )
        % {"days": r.max_days}
    ),
    "next_instalment_too_close": lambda r: (
        gettext(
            "The next instalment is due on %(date)s: this one cannot be moved past it. For a "
            "longer delay, ask our support."
        )
        % {"date": _day(r.limit)}
    ),
    "card_expires": lambda r: (
        gettext("Your card expired on %(date)s: please change your card before moving a date.")
        % {"date": _day(r.limit)}
    ),
    "date_outside_window": lambda r: (
        gettext("Pick a date between %(first)s and %(last)s.")
        % {"first": _day(r.first), "last": _day(r.last)}
    ),
}


def card_valid_through(year: int, month: int) -> date:
    """A card works until the last day of its expiry month."""
    return date(year, month, days_in_month(year, month))


def postpone_window(
    facts: PostponeFacts, *, today: date, max_days: int, per_instalment: int
) -> Window | Refusal:
    """The dates the instalment may move to, or why it cannot move at all."""
    if facts.instalment_state == "paid":
        return Refusal("already_paid")
    if facts.payment_state in DEFAULT_PAYMENT_STATES:
        return Refusal("plan_in_default")
    if (
        facts.payment_state not in OPEN_PAYMENT_STATES
        or facts.instalment_state not in UNPAID_STATES
    ):
        return Refusal("plan_closed")
    if facts.in_flight:
        return Refusal("debit_in_progress")
    if facts.postponements >= per_instalment:
        return Refusal("already_postponed", per_instalment=per_instalment)
    first = max(today, facts.due_date) + timedelta(days=1)
    last, limited_by = facts.due_date + timedelta(days=max_days), MAX_DAYS
    if last < first:
        return Refusal("too_late", max_days=max_days)
    if facts.next_unpaid_due_date is not None:
        before_next = facts.next_unpaid_due_date - timedelta(days=1)
        if before_next < first:
            return Refusal("next_instalment_too_close", limit=facts.next_unpaid_due_date)
        if before_next < last:
            last, limited_by = before_next, NEXT_INSTALMENT
    if facts.card_expiry is not None:
        valid_through = card_valid_through(*facts.card_expiry)
        if valid_through < first:
            return Refusal("card_expires", limit=valid_through)
        if valid_through < last:
            last, limited_by = valid_through, CARD_EXPIRY
    return Window(first=first, last=last, limited_by=limited_by)


def can_postpone(facts: PostponeFacts, *, today: date, max_days: int, per_instalment: int) -> bool:
    window = postpone_window(facts, today=today, max_days=max_days, per_instalment=per_instalment)
    return isinstance(window, Window)


def check_date(
    facts: PostponeFacts, new_date: date, *, today: date, max_days: int, per_instalment: int
) -> Window | Refusal:
    """The window when ``new_date`` is in it; else why not (``date_outside_window`` names
    the window)."""
    window = postpone_window(facts, today=today, max_days=max_days, per_instalment=per_instalment)
    if isinstance(window, Refusal) or new_date in window:
        return window
    return Refusal("date_outside_window", first=window.first, last=window.last)


class _Row(Protocol):
    number: int
    state: str
    due_date: date


def next_unpaid_due_date(rows: Iterable[_Row], number: int) -> date | None:
    """The due date of the first unpaid instalment after instalment ``number`` (rows
    already loaded: instalments, or anything with ``number``, ``state`` and ``due_date``)."""
    later = [row for row in rows if row.number > number and row.state in UNPAID_STATES]
    return min(later, key=lambda row: row.number).due_date if later else None
