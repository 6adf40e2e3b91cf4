"""Day and month boundaries of budgets, dashboards and reports (UTC, half-open ranges)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta


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
