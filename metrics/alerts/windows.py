"""The evaluation windows: which rollup hours each detector compares at a moment `at`, and the labels
the summaries print for them (docs/alerts.md, "Evaluation as implemented")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from metrics.rules.periods import midnight, month_days, month_start

DRIFT_WINDOW = "the last 24 h"
DRIFT_BASELINE = "the 7 days before"
SPIKE_WINDOW = "the last 1–2 h (this hour and the previous one)"
SPIKE_BASELINE = "the 24 h before"
SERIES_HOURS = 72  # the hourly series a slow-drift CUSUM accumulates over
SERIES_WINDOW = f"the last {SERIES_HOURS} h, hour by hour"
SERIES_BASELINE = "the 5 days before"


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Windows:
    """The evaluation windows at `at`, as half-open ranges of rollup hours.

    Drift: the 24 hourly cells ending with the current (partial) hour against the 7 days before.
    Slow drift: the 72 hourly cells ending with the current hour, hour by hour, against the drift
    baseline's hours before them (5 days). Spike: the previous and the current hour against the
    24 h before. Budgets: the UTC day and
    calendar month holding `at`; burn rate over the trailing 1 h and 6 h ending at `at`, the
    oldest hour's spend prorated by the part of it inside the window.
    """

    at: datetime

    @property
    def hour(self) -> datetime:
        return hour_floor(self.at)

    @property
    def end(self) -> datetime:
        return self.hour + timedelta(hours=1)

    @property
    def current_start(self) -> datetime:
        return self.hour - timedelta(hours=23)

    @property
    def baseline_start(self) -> datetime:
        return self.current_start - timedelta(days=7)

    @property
    def series_start(self) -> datetime:
        """The first hour of the slow-drift series (`SERIES_HOURS` cells ending with the current
        one); its baseline is the drift baseline less the hours it shares with the series."""
        return self.hour - timedelta(hours=SERIES_HOURS - 1)

    @property
    def series_hours(self) -> tuple[datetime, ...]:
        """The hours of the slow-drift series, oldest first."""
        return tuple(self.series_start + timedelta(hours=i) for i in range(SERIES_HOURS))

    @property
    def spike_start(self) -> datetime:
        return self.hour - timedelta(hours=1)

    @property
    def spike_baseline_start(self) -> datetime:
        return self.spike_start - timedelta(hours=24)

    @property
    def day_start(self) -> datetime:
        return midnight(self.at.astimezone(UTC).date())

    @property
    def month_start(self) -> datetime:
        return midnight(month_start(self.day_start.date()))

    @property
    def month_days(self) -> int:
        return month_days(self.month_start.date())

    @property
    def spend_start(self) -> datetime:
        return min(self.month_start, self.hour - timedelta(hours=6))

    def trailing(self, spend: Mapping[datetime, float], hours: int) -> float:
        """Spend over the `hours` hours ending at `at`: whole cells, the oldest prorated."""
        inside = (self.at.astimezone(UTC) - self.hour).total_seconds() / 3600
        total = sum(spend.get(self.hour - timedelta(hours=i), 0.0) for i in range(hours))
        return total + spend.get(self.hour - timedelta(hours=hours), 0.0) * (1 - inside)
