"""Decision logs (raw, time-partitioned), their hourly and daily rollups, and the inbox of rollup deltas.

The raw table `metrics_decision` is created by a migration with raw SQL: on PostgreSQL it is
`PARTITION BY RANGE (ts)` with one partition per UTC day (see `metrics.ingest.partitions`); on SQLite
(the embedded demo) it is a plain table. Django maps it read-only (`managed = False`); every
write goes through `metrics.ingest.services` and `metrics.rollups.services`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from metrics.schema import (  # noqa: F401  (re-exported: the dashboards import them from here)
    BUCKET_FIELDS,
    LATENCY_BOUNDS_MS,
    LATENCY_BUCKETS,
    MAX_ATTRIBUTE_KEY,
    MAX_ATTRIBUTE_VALUE,
    MAX_MODEL,
    MAX_OUTCOME,
    MAX_PROVIDER,
    MAX_SHORT,
    OUTCOMES,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
)


class _JsonColumn(models.JSONField):
    """A JSONField over a PostgreSQL `json` column, which psycopg already decodes (Django only
    registers a text loader for `jsonb`)."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or not isinstance(value, str):
            return value
        return super().from_db_value(value, expression, connection)


class _Dimensions(models.Model):
    """The fields a decision row and a rollup cell share: every rollup dimension but the hour."""

    policy_id = models.IntegerField()
    policy_version = models.IntegerField()
    route = models.CharField(max_length=MAX_SHORT)
    task_type = models.CharField(max_length=MAX_SHORT)
    model = models.CharField(max_length=MAX_MODEL)
    provider = models.CharField(max_length=MAX_PROVIDER)
    tier = models.SmallIntegerField()
    outcome = models.CharField(max_length=MAX_OUTCOME)

    class Meta:
        abstract = True


class Decision(_Dimensions):
    """One decision record as stored: an attempt of a client request, as the SDK logged it.

    The primary key is (ts, event_id): a partitioned table's unique keys must contain the
    partition key. A client retries a record with the same bytes, hence the same timestamp,
    so the pair identifies the record as well as the event id alone. The columns themselves are
    defined once, in `metrics.schema`.
    """

    pk = models.CompositePrimaryKey("ts", "event_id")
    ts = models.DateTimeField()
    event_id = models.UUIDField()
    received_at = models.DateTimeField()
    key_id = models.IntegerField(help_text="The SDK key that sent the record.")
    attempt = models.SmallIntegerField()
    escalated = models.BooleanField(help_text="An attempt that moved to a higher tier than the attempt before it.")
    request_id = models.CharField(max_length=MAX_SHORT)
    reason = _JsonColumn()
    confidence = models.FloatField(null=True)
    tokens_in = models.IntegerField()
    tokens_out = models.IntegerField()
    cost_usd = models.DecimalField(max_digits=30, decimal_places=15, null=True)
    unpriced = models.BooleanField()
    latency_ms = models.FloatField()
    client_app = models.CharField(max_length=MAX_SHORT)
    client_instance = models.CharField(max_length=MAX_SHORT)
    client_sdk_version = models.CharField(max_length=MAX_SHORT)
    attributes = _JsonColumn()

    class Meta:
        managed = False
        db_table = "metrics_decision"
        ordering = ["ts"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.ts:%Y-%m-%d %H:%M:%S} {self.model} {self.outcome}"


class _RollupFields(_Dimensions):
    """The dimensions and measures shared by the rollup cells (hourly, daily) and a rollup delta;
    each model adds its own time column (`hour`, `day_start`)."""

    count = models.BigIntegerField(default=0, help_text="Decision records (attempts).")
    requests = models.BigIntegerField(default=0, help_text="Records with attempt = 1.")
    escalations = models.BigIntegerField(default=0, help_text="Records with escalated = true.")
    cost_usd = models.DecimalField(
        max_digits=30, decimal_places=15, default=0, help_text="Sum of the priced records' cost."
    )
    unpriced = models.BigIntegerField(default=0, help_text="Records with no cost (model not priced).")
    tokens_in = models.BigIntegerField(default=0)
    tokens_out = models.BigIntegerField(default=0)
    confidence_sum = models.DecimalField(max_digits=30, decimal_places=15, default=0)
    confidence_count = models.BigIntegerField(default=0)
    latency_sum_ms = models.DecimalField(max_digits=30, decimal_places=6, default=0)
    # latency_b0 … latency_b10: added below, one per name in BUCKET_FIELDS.

    class Meta:
        abstract = True

    @property
    def latency_buckets(self) -> list[int]:
        return [getattr(self, name) for name in BUCKET_FIELDS]


for _name in BUCKET_FIELDS:  # before the concrete models below inherit the abstract fields
    _RollupFields.add_to_class(_name, models.BigIntegerField(default=0))


class RollupHourly(_RollupFields):
    """One hourly rollup cell: the sums of every decision in that hour with these dimensions."""

    hour = models.DateTimeField(help_text="Start of the UTC hour.")

    class Meta:
        db_table = "metrics_rollup_hourly"
        constraints = [
            models.UniqueConstraint(fields=list(ROLLUP_DIMENSIONS), name="rollup_hourly_cell"),
        ]
        indexes = [
            # Covers the dashboards' per-policy time-range sums (cost by task type per day), so
            # they read the index alone.
            models.Index(
                fields=["policy_id", "hour"],
                name="rollup_hourly_policy_cost",
                include=["task_type", "cost_usd", "count", "requests", "unpriced"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.route}/{self.model}/t{self.tier}/{self.outcome}"


class RollupDaily(_RollupFields):
    """One daily rollup cell: the sum of the hourly cells of that UTC day with these dimensions.

    Never written by Python: database triggers on `metrics_rollup_hourly` apply every insert,
    update and delete of hourly cells to their day in the same statement (migration 0004), so
    whatever writes the hourly cells (the inbox fold, a rebuild) keeps the days equal to them.
    Whole-day reads (30 days per day) take a 24th of the rows from here.
    """

    day_start = models.DateTimeField(help_text="Start of the UTC day.")

    class Meta:
        db_table = "metrics_rollup_daily"
        constraints = [
            models.UniqueConstraint(fields=["day_start", *ROLLUP_DIMENSIONS[1:]], name="rollup_daily_cell"),
        ]
        indexes = [
            models.Index(
                fields=["policy_id", "day_start"],
                name="rollup_daily_policy_cost",
                include=["task_type", "cost_usd", "count", "requests", "unpriced"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day_start:%Y-%m-%d} {self.route}/{self.model}/t{self.tier}/{self.outcome}"


class RollupInbox(_RollupFields):
    """A rollup delta: the sums of the records one ingest inserted, waiting for `rollups_update`.

    Written in the same statement as the raw rows (so only records actually inserted count) and
    deleted in the same transaction that adds it to `RollupHourly` (so it counts exactly once).
    """

    id = models.BigAutoField(primary_key=True)
    hour = models.DateTimeField(help_text="Start of the UTC hour.")

    class Meta:
        db_table = "metrics_rollup_inbox"

    def __str__(self) -> str:
        return f"delta {self.pk} for {self.hour:%Y-%m-%d %H}h"


class _DimensionFields(_RollupFields):
    """A rollup cell split further by one dimension: the routing fields of `_Dimensions`, one
    dimension key (`arm`, `client` or an attribute key the policy declares) and its value, and the
    same measures as the plain cells.

    Why a table of its own beside `metrics_rollup_hourly` rather than more columns there: a cell
    with every dimension as a column multiplies the plain cells by the product of the dimensions'
    values (3 dimensions of 1,000 values: up to 10^9 per routing cell), and every existing read
    would pay for it. Keyed by one (key, value) at a time, the rows grow by the *sum* of the values
    kept (bounded per day by `DIMENSION_VALUES_PER_DAY`), the plain rollups, their indexes and
    every query over them stay as they were, and a breakdown by one dimension combined with any
    routing field (team × route, tenant × model, arm × outcome) reads one key's rows. What it does
    not answer is a breakdown by two declared dimensions at once (team × tenant).
    """

    dim_key = models.CharField(max_length=MAX_ATTRIBUTE_KEY)
    dim_value = models.CharField(max_length=MAX_ATTRIBUTE_VALUE)

    class Meta:
        abstract = True


class DimensionRollupHourly(_DimensionFields):
    """One hourly dimension cell; written only by `metrics.rollups.dimensions`."""

    hour = models.DateTimeField(help_text="Start of the UTC hour.")

    class Meta:
        db_table = "metrics_dimension_hourly"
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "policy_id", "dim_key", "dim_value", *ROLLUP_DIMENSIONS[2:]],
                name="dimension_hourly_cell",
            ),
        ]
        indexes = [models.Index(fields=["policy_id", "dim_key", "hour"], name="dimension_hourly_key")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.dim_key}={self.dim_value} {self.route}/{self.model}"


class DimensionRollupDaily(_DimensionFields):
    """One daily dimension cell: the day's hourly dimension cells summed (written with them)."""

    day_start = models.DateTimeField(help_text="Start of the UTC day.")

    class Meta:
        db_table = "metrics_dimension_daily"
        constraints = [
            models.UniqueConstraint(
                fields=["day_start", "policy_id", "dim_key", "dim_value", *ROLLUP_DIMENSIONS[2:]],
                name="dimension_daily_cell",
            ),
        ]
        indexes = [models.Index(fields=["policy_id", "dim_key", "day_start"], name="dimension_daily_key")]

    def __str__(self) -> str:
        return f"{self.day_start:%Y-%m-%d} {self.dim_key}={self.dim_value} {self.route}/{self.model}"


class DimensionInbox(_DimensionFields):
    """A dimension delta of one ingest, with the value as the record carried it (not yet capped)."""

    id = models.BigAutoField(primary_key=True)
    hour = models.DateTimeField(help_text="Start of the UTC hour.")

    class Meta:
        db_table = "metrics_dimension_inbox"

    def __str__(self) -> str:
        return f"dimension delta {self.pk} for {self.hour:%Y-%m-%d %H}h"


class DimensionValue(models.Model):
    """A value admitted under a dimension for one policy and UTC day: the first
    `DIMENSION_VALUES_PER_DAY` values seen that day (the heaviest first within one fold) are kept,
    the rest of the day's values count under `(other)`."""

    day_start = models.DateTimeField()
    policy_id = models.IntegerField()
    dim_key = models.CharField(max_length=MAX_ATTRIBUTE_KEY)
    dim_value = models.CharField(max_length=MAX_ATTRIBUTE_VALUE)

    class Meta:
        db_table = "metrics_dimension_value"
        constraints = [
            models.UniqueConstraint(fields=["day_start", "policy_id", "dim_key", "dim_value"], name="dimension_value"),
        ]

    def __str__(self) -> str:
        return f"{self.day_start:%Y-%m-%d} {self.dim_key}={self.dim_value}"


class ReportReview(models.Model):
    """A "Mark reviewed" of one policy's monthly report: who reviewed which month, when, with an
    optional note. Append-only: marking a month again adds a review, the newest one shows."""

    policy = models.ForeignKey("routing.Policy", on_delete=models.CASCADE, related_name="report_reviews")
    month = models.DateField(help_text="First day of the reviewed month.")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_by_label = models.CharField(max_length=150, help_text="Username at the time.")
    reviewed_at = models.DateTimeField()
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-reviewed_at", "-id"]
        indexes = [models.Index(fields=["policy", "month"], name="report_review_policy_month")]

    def __str__(self) -> str:
        return f"{self.policy_id} {self.month:%Y-%m} reviewed by {self.reviewed_by_label}"


# --- alerts and their delivery (written by metrics.alerts) ----------------------------------------


class Severity(models.TextChoices):
    """Where an alert goes: page (wake someone), ticket (next working day), info (history and UI)."""

    PAGE = "page", "page"
    TICKET = "ticket", "ticket"
    INFO = "info", "info"


SEVERITY_RANK: dict[str, int] = {Severity.INFO: 0, Severity.TICKET: 1, Severity.PAGE: 2}


class Alert(models.Model):
    """One drift or budget problem of a policy's route ("" = policy-wide), from open to resolved.

    At most one alert per policy, detector and route is open or acknowledged at a time (the
    conditional unique constraint); its history is in `AlertEvent`.
    """

    class Status(models.TextChoices):
        OPEN = "open", "open"
        ACKNOWLEDGED = "acknowledged", "acknowledged"
        RESOLVED = "resolved", "resolved"

    ACTIVE = (Status.OPEN, Status.ACKNOWLEDGED)

    policy = models.ForeignKey("routing.Policy", on_delete=models.CASCADE, related_name="alerts")
    route = models.CharField(max_length=200, blank=True, help_text='"" = the whole policy (its budget).')
    detector = models.CharField(max_length=64)
    severity = models.CharField(
        max_length=16, choices=Severity.choices, help_text="The highest severity seen while the alert was active."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    summary = models.TextField(help_text="One sentence with the numbers, from the latest evaluation.")
    evidence = models.JSONField(default=dict, help_text="Window, baseline, numbers and test of the latest evaluation.")
    opened_at = models.DateTimeField()
    last_evaluated_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "detector", "route"],
                condition=models.Q(status__in=["open", "acknowledged"]),
                name="alert_one_active_per_detector_route",
            ),
        ]
        indexes = [
            models.Index(fields=["policy", "status"], name="alert_policy_status"),
            models.Index(fields=["opened_at"], name="alert_opened_at"),
        ]

    def __str__(self) -> str:
        where = self.route or "(policy)"
        return f"{self.detector} on {where}: {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class AlertEvent(models.Model):
    """One step in an alert's history: what happened, who did it (none for the evaluator), why."""

    class Kind(models.TextChoices):
        OPENED = "opened", "opened"
        ESCALATED = "escalated", "escalated"
        ACKNOWLEDGED = "acknowledged", "acknowledged"
        RESOLVED = "resolved", "resolved"
        REOPENED = "reopened", "reopened"

    # Kinds that notify the message channels (acknowledging tells no one: the person who did it
    # knows). A PagerDuty channel takes acknowledgements too: they stop the page's escalation.
    NOTIFY = (Kind.OPENED, Kind.ESCALATED, Kind.RESOLVED, Kind.REOPENED)

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text='Username at the time; "system" for the evaluator.')
    note = models.TextField(blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    summary = models.TextField(blank=True)
    evidence = models.JSONField(default=dict)

    class Meta:
        ordering = ["id"]  # the order things happened in, even when evaluated `--at` a past moment
        indexes = [models.Index(fields=["alert", "at"], name="alert_event_alert_at")]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M} by {self.actor_label}"


class NotificationChannel(models.Model):
    """Where alerts are sent: a generic webhook (Slack-compatible JSON, HMAC-signed), email
    addresses, a Slack incoming webhook, a PagerDuty Events API v2 integration (trigger,
    acknowledge, resolve) or a Microsoft Teams incoming webhook or workflow (an Adaptive Card).

    A channel takes alerts of `min_severity` and above, of one policy or of all. It is disabled
    automatically after ALERTS_CHANNEL_MAX_FAILURES failed attempts in a row (`disabled_at`,
    `disabled_reason`); enabling it again resets the count.
    """

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "webhook"
        EMAIL = "email", "email"
        SLACK = "slack", "Slack"
        PAGERDUTY = "pagerduty", "PagerDuty"
        TEAMS = "teams", "Microsoft Teams"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    url = models.URLField(
        max_length=2000,
        blank=True,
        help_text="Webhook, Slack, Teams: where alerts are POSTed. PagerDuty: the Events API v2 endpoint.",
    )
    secret = models.CharField(
        max_length=200, blank=True, help_text="Webhook: the HMAC-SHA256 key of the X-Signalbox-Signature header."
    )
    routing_key = models.CharField(
        max_length=32,
        blank=True,
        help_text="PagerDuty: the integration key of an Events API v2 integration (a secret, never shown in full).",
    )
    emails = models.JSONField(default=list, blank=True, help_text="Email: the addresses alerts go to.")
    enabled = models.BooleanField(default=True)
    min_severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.TICKET)
    policy = models.ForeignKey(
        "routing.Policy",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification_channels",
        help_text="Empty: every policy.",
    )
    consecutive_failures = models.IntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def routing_key_hint(self) -> str:
        """The routing key as it may be shown: its last four characters, or "" when there is none."""
        return f"…{self.routing_key[-4:]}" if self.routing_key else ""


class Delivery(models.Model):
    """One alert event sent (or being sent) to one channel."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SENT = "sent", "sent"
        FAILED = "failed", "failed (will retry)"
        GIVEN_UP = "given_up", "given up"

    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)
    response_status = models.IntegerField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "channel"], name="delivery_one_per_event_channel")]

    def __str__(self) -> str:
        return f"event {self.event_id} → channel {self.channel_id}: {self.status}"
