"""Operator metrics for Prometheus at `/metrics` (the text exposition format): every series is
defined here, incremented where the work happens (the ingest, the policy fetch, the alert
evaluation), and the scrape-time gauges (rollup lag, Celery queue depth) are read when scraped.

Several processes (gunicorn workers, Celery workers): with `PROMETHEUS_MULTIPROC_DIR` set in
the environment before start, prometheus_client keeps each process's counters in files there and a
scrape adds up every process's (docs/deployment.md). Without it, a scrape sees only the counters of
the process that answers it.

Access (`METRICS_TOKEN`): with a token set, a scrape must send `Authorization: Bearer <token>`;
without one, `/metrics` answers 403 unless DEBUG is on (the demo).
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

INGEST_BATCHES = Counter(
    "signalbox_ingest_batches",
    "Decision batches through the ingest, by source (client: the SDK's upload; otlp: /v1/traces).",
    ["source"],
)
INGEST_RECORDS = Counter(
    "signalbox_ingest_records",
    "Decision records through the ingest, by source and status (accepted, duplicate, rejected).",
    ["source", "status"],
)
OTLP_SPANS_IGNORED = Counter(
    "signalbox_otlp_spans_ignored", "Spans exported to /v1/traces without gen_ai attributes, ignored."
)
POLICY_FETCHES = Counter("signalbox_policy_fetches", "Client policy fetches, by HTTP status.", ["status"])
ALERT_EVALUATIONS = Counter(
    "signalbox_alert_evaluations", "Alert evaluations of one policy, by result (ok, failed).", ["result"]
)
ALERT_EVALUATION_SECONDS = Histogram(
    "signalbox_alert_evaluation_seconds",
    "Seconds to evaluate one policy's alerts and apply the verdicts.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# The policy fetch is the hottest endpoint: its children are looked up once per status.
_fetch_children: dict[int, Any] = {}


def policy_fetch_count(status: int) -> None:
    child = _fetch_children.get(status)
    if child is None:
        child = _fetch_children[status] = POLICY_FETCHES.labels(str(status))
    child.inc()


def ingest_count(source: str, *, accepted: int, duplicates: int, rejected: int, batches: int = 1) -> None:
    if batches:
        INGEST_BATCHES.labels(source).inc(batches)
    for status, n in (("accepted", accepted), ("duplicate", duplicates), ("rejected", rejected)):
        if n:
            INGEST_RECORDS.labels(source, status).inc(n)


class ScrapeTimeCollector(Collector):
    """Gauges read when scraped, from the database and the broker: never stored by a process."""

    def collect(self) -> Iterator[Any]:
        from metrics.rollups.selectors import rollup_inbox_state

        try:
            pending, last_fold = rollup_inbox_state()
        except Exception:  # the database is down: the scrape still answers, without these
            logger.warning("rollup state unreadable for /metrics", exc_info=True)
        else:
            yield GaugeMetricFamily(
                "signalbox_rollup_inbox_pending",
                "Rollup deltas stored but not yet folded into the hourly cells (counted up to 100,000).",
                value=pending,
            )
            if last_fold is not None:
                yield GaugeMetricFamily(
                    "signalbox_rollup_last_fold_timestamp_seconds",
                    "When the last rollup fold started (Unix time).",
                    value=last_fold,
                )
                lag = 0.0 if pending == 0 else max(0.0, time.time() - last_fold)
                yield GaugeMetricFamily(
                    "signalbox_rollup_lag_seconds",
                    "How far the rollups may be behind: 0 with nothing pending, else the time since the last "
                    "fold started (an upper bound on the age of the oldest pending delta).",
                    value=lag,
                )
        depth = celery_queue_depth()
        if depth is not None:
            family = GaugeMetricFamily(
                "signalbox_celery_queue_depth", "Tasks waiting in the broker's queue.", labels=["queue"]
            )
            family.add_metric([depth[0]], depth[1])
            yield family


def celery_queue_depth() -> tuple[str, int] | None:
    """(queue, tasks waiting) of Celery's default queue, asked of the broker in one try; None when
    tasks run in-process (no broker) or the broker does not answer."""
    from controlplane.celery import app

    if app.conf.task_always_eager:
        return None
    queue = app.conf.task_default_queue
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=0)
            declared = connection.default_channel.queue_declare(queue=queue, passive=True)
            return queue, int(declared.message_count)
    except Exception:  # a queue never declared yet, or the broker down: no gauge this scrape
        logger.warning("Celery queue depth unreadable for /metrics", exc_info=True)
        return None


def exposition() -> bytes:
    """Every series in the Prometheus text format: the counters of this process (or of every
    process, in multiprocess mode) and the scrape-time gauges."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        counters = generate_latest(registry)
    else:
        counters = generate_latest(REGISTRY)
    live = CollectorRegistry()
    live.register(ScrapeTimeCollector())
    return counters + generate_latest(live)


def metrics_scrape(request: Any) -> Any:
    """`GET /metrics`: the exposition, behind METRICS_TOKEN (see the module docstring)."""
    from django.conf import settings
    from django.http import HttpResponse

    from controlplane.errors import json_error

    if request.method not in {"GET", "HEAD"}:
        return json_error(405, "Only GET.", {"method": ["only GET"]}, headers={"Allow": "GET, HEAD"})
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, sent = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
            message = "Send the metrics token as 'Authorization: Bearer <METRICS_TOKEN>'."
            return json_error(401, message, {"authorization": [message]}, headers={"WWW-Authenticate": "Bearer"})
    elif not settings.DEBUG:
        message = "Metrics are off: set METRICS_TOKEN to expose them."
        return json_error(403, message, {"authorization": [message]})
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
