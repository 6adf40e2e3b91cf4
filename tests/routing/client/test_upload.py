"""Decision-log upload: batching, retries with backoff, 413 splitting, drops, and the disk spool."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest

from signalbox_client import RoutingClient

from .conftest import BASE_URL
from .fakes import KEY, SLUG, FakeServer, wait_for


def record_n(client, n: int, **fields) -> list[str]:
    decision = client.decide("support", **fields)
    return [client.record(decision, outcome="ok", latency_ms=12.5, tokens_in=100, tokens_out=20) for _ in range(n)]


def ready_client(make_client, **options):
    client = make_client(**options)
    assert client.refresh() == "installed"
    return client


def test_flush__server_accepts__every_record_delivered_once_in_batches(server, make_client):
    client = ready_client(make_client, batch_size=4)
    ids = record_n(client, 10)

    assert client.flush() is True

    assert server.delivered_ids == sorted(ids)
    assert [len(batch) for batch in server.posts] == [4, 4, 2]
    stats = client.stats()
    assert (stats.recorded, stats.sent, stats.queued, stats.retried) == (10, 10, 0, 0)


def test_flush__5xx_timeout_and_network_errors__retried_with_capped_full_jitter_backoff(server, make_client, clock):
    client = ready_client(make_client)
    ids = record_n(client, 3)
    server.post_faults = [500, "timeout", "connect", 503, 408]

    assert client.flush(timeout=60) is True

    assert server.delivered_ids == sorted(ids)
    assert client.stats().retried == 5
    # Full jitter: the n-th wait is uniform in [0, min(30, 0.5 * 2**n)).
    assert len(clock.sleeps) == 5
    for n, waited in enumerate(clock.sleeps):
        assert 0 <= waited <= min(30.0, 0.5 * 2**n)


def test_flush__429__waits_exactly_retry_after(server, make_client, clock):
    client = ready_client(make_client)
    ids = record_n(client, 2)
    server.post_faults = [(429, {"Retry-After": "7"})]

    assert client.flush(timeout=60) is True

    assert clock.sleeps == [7.0]
    assert server.delivered_ids == sorted(ids)


def test_flush__backoff_longer_than_timeout__returns_false_and_keeps_records(server, make_client, clock):
    client = ready_client(make_client)
    ids = record_n(client, 2)
    server.post_faults = [(429, {"Retry-After": "120"})]

    assert client.flush(timeout=5) is False

    assert clock.sleeps == []
    assert client.stats().queued == 2
    clock.now += 120
    assert client.flush() is True
    assert server.delivered_ids == sorted(ids)


def test_flush__batch_processed_but_answer_lost__resend_counted_as_duplicate_not_twice(server, make_client):
    client = ready_client(make_client)
    ids = record_n(client, 3)

    def process_then_fail(request: httpx.Request) -> httpx.Response:
        server._post(request)  # stored, but the answer is lost on the way back
        return httpx.Response(502)

    server.post_faults = [process_then_fail]

    assert client.flush(timeout=60) is True

    assert server.delivered_ids == sorted(ids)
    assert all(count == 2 for count in server.accepted.values())  # seen twice, stored once
    stats = client.stats()
    assert (stats.sent, stats.duplicates) == (0, 3)


def test_flush__413__batch_split_until_it_fits(server, make_client):
    client = ready_client(make_client, batch_size=8)
    ids = record_n(client, 7)
    server.max_records = 2

    assert client.flush() is True

    assert server.delivered_ids == sorted(ids)
    # 7 -> 413, halves 3 and 4; 3 -> 413, halves 1 and 2 (accepted); 4 -> 413, 2 and 2 (accepted).
    assert [len(b) for b in server.posts] == [7, 3, 1, 2, 4, 2, 2]
    stats = client.stats()
    assert (stats.sent, stats.rejected, stats.retried) == (7, 0, 0)


def test_flush__4xx_for_whole_batch__dropped_counted_never_retried_warned_once(server, make_client, caplog):
    client = ready_client(make_client, batch_size=2)
    record_n(client, 4)
    server.post_faults = [400, 400]

    with caplog.at_level(logging.WARNING, logger="signalbox.client"):
        assert client.flush() is True

    stats = client.stats()
    assert (stats.rejected, stats.sent, stats.retried) == (4, 0, 0)
    assert server.delivered_ids == []
    assert sum("answered 400" in r.getMessage() for r in caplog.records) == 1


def test_flush__rejected_records__dropped_and_counted_the_rest_delivered(server, make_client):
    client = ready_client(make_client)
    ids = record_n(client, 4)
    server.reject_ids = {ids[1]}

    assert client.flush() is True

    stats = client.stats()
    assert (stats.sent, stats.rejected, stats.retried) == (3, 1, 0)
    assert len(server.posts) == 1
    assert server.delivered_ids == sorted(ids[:1] + ids[2:])


MALFORMED_POST_ANSWERS = {
    "not JSON": b"<html>proxy</html>",
    "nested too deeply to parse": b"[" * 100_000 + b"]" * 100_000,
    "JSON but not an object": b'["accepted", "accepted"]',
    "results not a list": b'{"results": "?"}',
    "results of the wrong length": b'{"results": [{"status": "accepted"}]}',
    "results not objects": b'{"results": [1, 2]}',
    "counts of the wrong type": b'{"accepted": "2", "duplicates": 0, "rejected": 0}',
    "negative counts": b'{"accepted": 3, "duplicates": -1, "rejected": 0}',
    "boolean counts": b'{"accepted": true, "duplicates": true, "rejected": false}',
}


@pytest.mark.parametrize("content", MALFORMED_POST_ANSWERS.values(), ids=MALFORMED_POST_ANSWERS.keys())
def test_flush__malformed_200__batch_retried_never_raised(server, make_client, content):
    client = ready_client(make_client)
    ids = record_n(client, 2)
    server.post_faults = [lambda request: httpx.Response(200, content=content)]

    assert client.flush(timeout=60) is True

    stats = client.stats()
    assert (stats.retried, stats.sent, stats.rejected) == (1, 2, 0)
    assert server.delivered_ids == sorted(ids)
    assert len(server.posts) == 1  # the fault answered the first POST before the fake stored it


@pytest.mark.parametrize("errors", [5, [1, "a"], "bad", None, {"tier": ["bad"], "1": 2}])
def test_flush__rejected_result_with_odd_errors__counted_never_raised(server, make_client, errors):
    client = ready_client(make_client)
    record_n(client, 2)
    server.post_faults = [
        lambda request: httpx.Response(
            200, json={"results": [{"status": "accepted"}, {"status": "rejected", "errors": errors}]}
        )
    ]

    assert client.flush() is True

    stats = client.stats()
    assert (stats.sent, stats.rejected, stats.retried) == (1, 1, 0)


def test_spool__outage_then_recovery__every_record_delivered_exactly_once(tmp_path, make_client):
    down = FakeServer()
    down.post_faults = [503] * 1000
    first = ready_client(make_client, transport=down.transport(), spool_dir=tmp_path, batch_size=4)
    ids = record_n(first, 10)
    assert first.flush(timeout=1) is False  # retries during the outage, within the time bound

    first.close(timeout=0)

    assert first.stats().spooled == 10
    assert first.stats().spool_bytes > 0
    up = FakeServer()
    second = ready_client(make_client, transport=up.transport(), spool_dir=tmp_path)
    assert second.stats().spool_bytes > 0

    assert second.flush() is True

    assert up.delivered_ids == sorted(ids)
    assert all(count == 1 for count in up.accepted.values())
    assert second.stats().spool_bytes == 0
    assert second.flush() is True
    assert len(up.posts) == 3


def test_spool__queue_full__oldest_spilled_to_disk_then_sent(server, make_client, tmp_path):
    client = ready_client(make_client, queue_size=10, batch_size=4, spool_dir=tmp_path)

    ids = record_n(client, 25)

    stats = client.stats()
    # Full at 10: each overflow spills the oldest 4 (one fsync per chunk) -> 4 spills of 4.
    assert (stats.queued, stats.spooled, stats.dropped) == (9, 16, 0)
    assert client.flush() is True
    assert server.delivered_ids == sorted(ids)
    assert all(count == 1 for count in server.accepted.values())


def test_queue_full_without_spool__overflow_dropped_and_counted(server, make_client):
    client = ready_client(make_client, queue_size=5)

    ids = record_n(client, 8)

    assert client.stats().dropped == 3
    assert client.flush() is True
    assert server.delivered_ids == sorted(ids[3:])  # the newest are kept


def test_spool__over_capacity__oldest_dropped_and_counted(server, make_client, tmp_path):
    client = ready_client(make_client, queue_size=4, batch_size=4, spool_dir=tmp_path, spool_max_bytes=6_000)

    ids = record_n(client, 40)

    stats = client.stats()
    assert stats.dropped > 0
    assert stats.spool_bytes <= 6_000
    client.flush()
    delivered = server.delivered_ids
    assert len(delivered) + stats.dropped == 40
    assert ids[-1] in delivered
    assert ids[0] not in delivered


def test_spool__corrupt_line__skipped_and_counted_rest_delivered(server, make_client, tmp_path):
    writer = ready_client(make_client, spool_dir=tmp_path, transport=FakeServer().transport())
    ids = record_n(writer, 3)
    writer.close(timeout=0)  # spools: nothing was flushed
    segment = next((tmp_path / SLUG).glob("seg-*.jsonl"))
    segment.write_bytes(segment.read_bytes() + b"{torn line\n")

    reader = ready_client(make_client, spool_dir=tmp_path)
    assert reader.flush() is True

    assert server.delivered_ids == sorted(ids)
    assert reader.stats().dropped == 1


def test_close__flushes_within_time_bound_then_spools_the_rest(tmp_path):
    down = FakeServer()
    down.post_faults = ["connect"] * 10_000
    client = RoutingClient(
        BASE_URL, KEY, SLUG, transport=down.transport(), spool_dir=tmp_path, flush_interval=0.01, refresh_interval=0.01
    )
    assert client.wait_until_ready(2)
    ids = record_n(client, 5)

    started = time.monotonic()
    client.close(timeout=0.3)

    assert time.monotonic() - started < 1.0
    assert client.stats().spooled == 5
    spooled = [
        json.loads(line)["event_id"] for path in (tmp_path / SLUG).glob("seg-*") for line in path.read_text().split()
    ]
    assert sorted(spooled) == sorted(ids)


def test_background_upload__by_size_and_by_interval():
    server = FakeServer()
    by_size = RoutingClient(
        BASE_URL, KEY, SLUG, transport=server.transport(), batch_size=5, flush_interval=60, refresh_interval=60
    )
    by_interval = RoutingClient(
        BASE_URL, KEY, SLUG, transport=server.transport(), flush_interval=0.02, refresh_interval=60
    )
    try:
        assert by_size.wait_until_ready(2)
        assert by_interval.wait_until_ready(2)
        full = record_n(by_size, 5)
        assert wait_for(lambda: set(full) <= set(server.accepted))
        one = record_n(by_interval, 1)
        assert wait_for(lambda: set(one) <= set(server.accepted))
    finally:
        by_size.close(timeout=1)
        by_interval.close(timeout=1)


def test_close__context_manager_delivers_what_is_queued():
    server = FakeServer()
    with RoutingClient(
        BASE_URL, KEY, SLUG, transport=server.transport(), flush_interval=60, refresh_interval=60
    ) as client:
        assert client.wait_until_ready(2)
        ids = record_n(client, 3)

    assert server.delivered_ids == sorted(ids)


def test_record_after_close__goes_to_the_spool_not_a_dead_queue(server, make_client, tmp_path):
    client = ready_client(make_client, spool_dir=tmp_path)
    decision = client.decide("support")
    client.close(timeout=1)

    event_id = client.record(decision, outcome="ok", latency_ms=1)

    assert client.stats().spooled == 1
    reader = ready_client(make_client, spool_dir=tmp_path)
    assert reader.flush() is True
    assert server.delivered_ids == [event_id]
