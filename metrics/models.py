"""Decision logs (raw, time-partitioned), their hourly rollups, and the inbox of rollup deltas.

The raw table `metrics_decision` is created by a migration with raw SQL: on PostgreSQL it is
`PARTITION BY RANGE (ts)` with one partition per UTC day (see `metrics.partitions`); on SQLite
(the embedded demo) it is a plain table. Django maps it read-only (`managed = False`); every
write goes through `metrics.services`.
"""

from __future__ import annotations

from django.db import models

from metrics.schema import (  # noqa: F401  (re-exported: the dashboards import them from here)
    BUCKET_FIELDS,
    LATENCY_BOUNDS_MS,
    LATENCY_BUCKETS,
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

    def from_db_value(self, value, expression, connection):  # type: ignore[no-untyped-def]
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
    """The dimensions and measures shared by a rollup cell and a rollup delta."""

    hour = models.DateTimeField(help_text="Start of the UTC hour.")

    count = models.BigIntegerField(default=0, help_text="Decision records (attempts).")
    requests = models.BigIntegerField(default=0, help_text="Records with attempt = 1.")
    escalations = models.BigIntegerField(default=0, help_text="Records with escalated = true.")
    cost_usd = models.DecimalField(max_digits=30, decimal_places=15, default=0,
                                   help_text="Sum of the priced records' cost.")
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

    class Meta:
        db_table = "metrics_rollup_hourly"
        constraints = [
            models.UniqueConstraint(fields=list(ROLLUP_DIMENSIONS), name="rollup_hourly_cell"),
        ]
        indexes = [
            # Covers the dashboards' per-policy time-range sums (cost by task type per day), so
            # they read the index alone.
            models.Index(fields=["policy_id", "hour"], name="rollup_hourly_policy_cost",
                         include=["task_type", "cost_usd", "count", "requests", "unpriced"]),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.route}/{self.model}/t{self.tier}/{self.outcome}"


class RollupInbox(_RollupFields):
    """A rollup delta: the sums of the records one ingest inserted, waiting for `rollups_update`.

    Written in the same statement as the raw rows (so only records actually inserted count) and
    deleted in the same transaction that adds it to `RollupHourly` (so it counts exactly once).
    """

    id = models.BigAutoField(primary_key=True)

    class Meta:
        db_table = "metrics_rollup_inbox"

    def __str__(self) -> str:
        return f"delta {self.pk} for {self.hour:%Y-%m-%d %H}h"
