"""GET /metrics: the operator series in the Prometheus text format (checked by parsing it with
prometheus_client's parser), moved by the work they count, behind METRICS_TOKEN."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from metrics.alerts.evaluation import alerts_evaluate
from metrics.rollups.services import rollups_update
from signalbox_client.protocol import DECISIONS_PATH, OTLP_TRACES_PATH, POLICY_PATH
from tests import factories

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-for-tests"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def token(settings: Any) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


@pytest.fixture
def secret(db: Any) -> str:
    return factories.sdk_key(factories.policy("checkout"))[1]


def scrape(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def record(**changes: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "timestamp": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "policy": "checkout",
        "policy_version": 1,
        "route": "extraction",
        "task_type": "extraction",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "tier": 1,
        "attempt": 1,
        "outcome": "ok",
        "tokens_in": 10,
        "tokens_out": 5,
        "latency_ms": 12.0,
        **changes,
    }


def test_metrics__ingest_fetch_and_alerts__counted_in_the_exposition(client, token, secret):
    before = scrape(client)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    good = record()
    body = orjson.dumps({"decisions": [good, good, record(tier=9)]})

    client.post(DECISIONS_PATH, data=body, content_type="application/json", **auth)
    client.get(POLICY_PATH.format(policy="checkout"), **auth)
    client.get(POLICY_PATH.format(policy="nope"), **auth)
    client.get(POLICY_PATH.format(policy="checkout"))  # no key: 401
    client.post(OTLP_TRACES_PATH, data=b"{}", content_type="application/json", **auth)  # no spans: no batch
    alerts_evaluate()
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("signalbox_ingest_batches_total", source="client") == 1
    assert moved("signalbox_ingest_records_total", source="client", status="accepted") == 1
    assert moved("signalbox_ingest_records_total", source="client", status="duplicate") == 1
    assert moved("signalbox_ingest_records_total", source="client", status="rejected") == 1
    assert moved("signalbox_ingest_batches_total", source="otlp") == 0
    assert moved("signalbox_policy_fetches_total", status="200") == 1
    assert moved("signalbox_policy_fetches_total", status="404") == 1
    assert moved("signalbox_policy_fetches_total", status="401") == 1
    assert moved("signalbox_alert_evaluations_total", result="ok") == 1
    assert moved("signalbox_alert_evaluation_seconds_count") == 1
    assert after[("signalbox_rollup_inbox_pending", ())] == 1
    assert ("signalbox_celery_queue_depth", (("queue", "celery"),)) not in after, "eager Celery: no broker"


def test_metrics__otlp_export__spans_counted_by_status_and_ignored(client, token, secret):
    from tests.metrics.ingest.test_otlp import chat, encoded, genai_spans

    spans = genai_spans(chat(), chat(**{"signalbox.tier": 9}), {"http.request.method": "GET"})
    before = scrape(client)

    client.post(
        OTLP_TRACES_PATH,
        data=encoded(spans),
        content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("signalbox_ingest_batches_total", source="otlp") == 1
    assert moved("signalbox_ingest_records_total", source="otlp", status="accepted") == 1
    assert moved("signalbox_ingest_records_total", source="otlp", status="rejected") == 1
    assert moved("signalbox_otlp_spans_ignored_total") == 1


def test_metrics__rollup_fold__lag_back_to_zero(client, token, secret):
    body = orjson.dumps({"decisions": [record()]})
    client.post(DECISIONS_PATH, data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}")
    rollups_update()

    after = scrape(client)

    assert after[("signalbox_rollup_inbox_pending", ())] == 0
    assert after[("signalbox_rollup_lag_seconds", ())] == 0
    assert after[("signalbox_rollup_last_fold_timestamp_seconds", ())] > 0


def test_metrics__token_set__wrong_or_missing_token_refused(client, token):
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.status_code == 401
    assert set(wrong.json()) == {"message", "errors"}


def test_metrics__no_token__refused_unless_debug(client, settings, db):
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False
    refused = client.get("/metrics")
    settings.DEBUG = True
    shown = client.get("/metrics")

    assert refused.status_code == 403
    assert "METRICS_TOKEN" in refused.json()["message"]
    assert shown.status_code == 200


def test_metrics__multiprocess_dir__counts_of_every_process_added_up(tmp_path):
    """Two processes count into PROMETHEUS_MULTIPROC_DIR; a third one's exposition sums them (its
    scrape-time gauges may be missing: its database is not the test database)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from controlplane import prometheus; prometheus.policy_fetch_count(304)"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, cwd=REPO, check=True, timeout=60)
    show = "import django; django.setup(); from controlplane import prometheus; print(prometheus.exposition().decode())"
    out = subprocess.run([sys.executable, "-c", show], env=env, cwd=REPO, check=True, timeout=60, capture_output=True)

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(out.stdout.decode())
        for s in family.samples
    }
    assert samples[("signalbox_policy_fetches_total", (("status", "304"),))] == 2


REDIS = "redis://127.0.0.1:6379/13"


@pytest.fixture
def redis_broker() -> Any:
    """Celery pointed at the local Redis as its broker (not eager), its default queue emptied."""
    redis = pytest.importorskip("redis")
    from controlplane.celery import app

    connection = redis.Redis.from_url(REDIS, socket_connect_timeout=1)
    try:
        connection.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    queue = app.conf.task_default_queue
    connection.delete(queue)
    names = ("task_always_eager", "broker_url", "broker_read_url")
    saved = {name: app.conf[name] for name in names}
    app.conf.update(task_always_eager=False, broker_url=REDIS, broker_read_url=REDIS)
    yield connection, queue
    app.conf.update(saved)
    connection.delete(queue)


def test_metrics__redis_broker__queue_depth_from_the_broker(client, token, redis_broker):
    connection, queue = redis_broker
    connection.lpush(queue, b"{}", b"{}", b"{}")

    after = scrape(client)

    assert after[("signalbox_celery_queue_depth", (("queue", queue),))] == 3
