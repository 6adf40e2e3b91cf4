"""Ingestion under concurrency (committed transactions), and rollups computed by a real Celery
worker against the Redis broker on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from metrics.ingest import services as ingest
from metrics.models import Decision, RollupHourly, RollupInbox
from metrics.rollups import services as rollups
from tests import factories
from tests.metrics.conftest import record

ROOT = Path(__file__).resolve().parents[3]
BROKER = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture
def committed_scope(_truncate_decisions: Any) -> tuple[int, frozenset[int], str]:
    policy = factories.policy("checkout")
    key, secret = factories.sdk_key(policy)
    return key.pk, frozenset({policy.pk}), secret


def _in_threads(n: int, work: Any) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def test_ingest__identical_batches_from_two_threads__counted_once(committed_scope: Any) -> None:
    key_id, policy_ids, _ = committed_scope
    batch = [record() for _ in range(300)]

    results = _in_threads(2, lambda: ingest.decision_batch_ingest(key_id=key_id, policy_ids=policy_ids, records=batch))
    rollups.rollups_update()

    assert sum(r.accepted for r in results) == 300
    assert sum(r.duplicates for r in results) == 300
    assert Decision.objects.count() == 300
    assert sum(RollupHourly.objects.values_list("count", flat=True)) == 300


def test_ingest__overlapping_batches_from_four_threads__each_record_counted_once(committed_scope: Any) -> None:
    key_id, policy_ids, _ = committed_scope
    pool = [record() for _ in range(400)]
    batches = [pool[i * 100 : i * 100 + 200] for i in range(3)] + [pool[::2]]
    lock = threading.Lock()
    order = iter(batches)

    def work() -> Any:
        with lock:
            batch = next(order)
        return ingest.decision_batch_ingest(key_id=key_id, policy_ids=policy_ids, records=batch)

    results = _in_threads(4, work)
    rollups.rollups_update()

    assert sum(r.accepted for r in results) == 400
    assert Decision.objects.count() == 400
    assert sum(RollupHourly.objects.values_list("count", flat=True)) == 400


def test_rollups_update__two_threads_racing__every_delta_folded_once(committed_scope: Any) -> None:
    key_id, policy_ids, _ = committed_scope
    for _ in range(20):
        ingest.decision_batch_ingest(
            key_id=key_id, policy_ids=policy_ids, records=[record(task_type=f"t{i}") for i in range(10)]
        )

    pending = RollupInbox.objects.count()  # the eager task queued by the first commit took some

    folded = _in_threads(2, lambda: rollups.rollups_update(limit=7))

    assert sum(folded) == pending
    assert RollupInbox.objects.count() == 0
    assert sum(RollupHourly.objects.values_list("count", flat=True)) == 200


@pytest.mark.broker
@pytest.mark.slow
def test_rollups__real_celery_worker_on_redis__rollups_appear(
    committed_scope: Any, client: Any, tmp_path: Path
) -> None:
    """Given a worker process on the Redis broker, an ingest over HTTP queues rollups_update after
    commit, and the worker folds the batch into the hourly rollups."""
    import redis

    from controlplane.celery import app

    try:
        redis.Redis.from_url(BROKER).ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis broker at {BROKER}")
    redis.Redis.from_url(BROKER).flushdb()
    db = connection.settings_dict
    env = {
        **os.environ,
        "CELERY_BROKER_URL": BROKER,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "SECRET_KEY": "worker-test-secret-key-0000000000000000000000",
        "DEBUG": "false",
        "CACHE_URL": "locmemcache://worker",
    }
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "controlplane",
            "worker",
            "-P",
            "solo",
            "-c",
            "1",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "info",
            "-f",
            str(log),
        ],
        cwd=ROOT,
        env=env,
    )
    saved = {"task_always_eager": app.conf.task_always_eager, "broker_url": app.conf.broker_url}
    app.conf.update(task_always_eager=False, broker_url=BROKER)
    app._pool = None
    app.amqp._producer_pool = None
    try:
        _, _, secret = committed_scope
        response = client.post(
            "/api/v1/client/decisions",
            data={"decisions": [record() for _ in range(25)]},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )
        assert response.json()["accepted"] == 25
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            total = sum(RollupHourly.objects.values_list("count", flat=True))
            if total:
                break
            time.sleep(0.25)
        assert total == 25, log.read_text() if log.exists() else "no worker log"
        assert "metrics.rollups_update" in log.read_text()
    finally:
        worker.terminate()
        worker.wait(30)
        app.conf.update(saved)
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None
