"""Day and month boundaries of budgets, dashboards and reports (UTC, half-open ranges), and the
dates a filter or period may name."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta

# Filter dates outside these bounds are refused: the previous period, the budget month and the
# day after `end` must all stay inside what `datetime.date` can hold.
FIRST_DATE = date(2000, 1, 1)
LAST_DATE = date(2999, 12, 31)


def midnight(day: date) -> datetime:
    """The UTC instant a day starts."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_of(at: datetime) -> date:
    """The UTC day an instant falls in."""
    return at.astimezone(UTC).date()


def month_start(day: date) -> date:
    """The first day of the month holding `day`."""
    return day.replace(day=1)


def month_end(day: date) -> date:
    """The last day of the month holding `day`."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def month_days(day: date) -> int:
    """How many days the month holding `day` has."""
    return calendar.monthrange(day.year, day.month)[1]


def month_previous(day: date) -> date:
    """The first day of the month before the one holding `day`."""
    return (month_start(day) - timedelta(days=1)).replace(day=1)


def month_next(day: date) -> date:
    """The first day of the month after the one holding `day`."""
    return month_end(day) + timedelta(days=1)
