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


def range_compared(start: date, end: date) -> tuple[date, date]:
    """The range [start, end] (inclusive) is compared with: month over month when it starts on a
    month's first day and ends inside that month (the whole previous month for a whole month, the
    same days of the previous month for a month to date, cut at its end), else the same number of
    days immediately before."""
    if start.day == 1 and month_start(end) == start:
        previous = month_previous(start)
        if end == month_end(start):
            return previous, month_end(previous)
        return previous, previous.replace(day=min(end.day, month_days(previous)))
    days = (end - start).days + 1
    return start - timedelta(days=days), start - timedelta(days=1)
