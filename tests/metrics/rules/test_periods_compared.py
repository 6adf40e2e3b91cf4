"""The range a dashboard range is compared with (`metrics.rules.periods.range_compared`)."""

from __future__ import annotations

from datetime import date

import pytest

from metrics.rules.periods import range_compared


@pytest.mark.parametrize(
    ("start", "end", "compared"),
    [
        (date(2026, 3, 1), date(2026, 3, 31), (date(2026, 2, 1), date(2026, 2, 28))),  # a whole month
        (date(2026, 3, 1), date(2026, 3, 4), (date(2026, 2, 1), date(2026, 2, 4))),  # month to date
        (date(2026, 3, 1), date(2026, 3, 30), (date(2026, 2, 1), date(2026, 2, 28))),  # cut at February's end
        (date(2026, 1, 1), date(2026, 1, 31), (date(2025, 12, 1), date(2025, 12, 31))),  # over the year
        (date(2026, 3, 5), date(2026, 3, 11), (date(2026, 2, 26), date(2026, 3, 4))),  # 7 days just before
        (date(2026, 2, 15), date(2026, 3, 16), (date(2026, 1, 16), date(2026, 2, 14))),  # 30 days across months
    ],
)
def test_range_compared__month_over_month_for_a_month_else_the_days_before(
    start: date, end: date, compared: tuple[date, date]
) -> None:
    assert range_compared(start, end) == compared
