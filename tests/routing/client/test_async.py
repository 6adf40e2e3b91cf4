"""AsyncRoutingClient behaves as RoutingClient does: same decisions, retries, spool and run()."""

from __future__ import annotations

import asyncio
import json
import random

import httpx
import pytest

from signalbox_client import AsyncRoutingClient, CallResult, RoutingClient, SignalboxNotReady

from .conftest import BASE_URL
from .fakes import KEY, SLUG, FakeClock, FakeServer, body


def make(server: FakeServer, clock: FakeClock | None = None, **options) -> AsyncRoutingClient:
    clock = clock or FakeClock()
    defaults = {
        "transport": server.async_transport(),
        "start": False,
        "clock": clock,
        "sleep": clock.async_sleep,
        "rng": random.Random(7),
    }
    return AsyncRoutingClient(BASE_URL, KEY, SLUG, **(defaults | options))


def test_async_run__low_confidence_escalates_and_429_falls_back_like_the_sync_client():
    server = FakeServer()

    async def scenario():
        client = make(server)
        assert await client.refresh() == "installed"

        async def call(attempt):
            await asyncio.sleep(0)
            if attempt.attempt == 1:
                return CallResult("weak", confidence=0.2)
            return CallResult("strong", confidence=0.99)

        escalated = await client.run("support", call)

        def limited(attempt):  # a plain function works too
            if attempt.provider == "openai":
                raise httpx.HTTPStatusError(
                    "429", request=httpx.Request("POST", "https://llm.test"), response=httpx.Response(429)
                )
            return "fallback"

        fell_back = await client.run("support", limited)
        assert await client.flush() is True
        await client.close()
        return escalated, fell_back

    escalated, fell_back = asyncio.run(scenario())

    assert [(a.model, a.outcome) for a in escalated.attempts] == [("gpt-4o-mini", "low_confidence"), ("gpt-4o", "ok")]
    assert [(a.model, a.kind, a.outcome) for a in fell_back.attempts] == [
        ("gpt-4o-mini", "initial", "rate_limited"),
        ("claude-3-5-haiku", "fallback", "ok"),
    ]
    event_ids = [a.event_id for r in (escalated, fell_back) for a in r.attempts]
    assert server.delivered_ids == sorted(event_ids)
    assert [server.records[e]["outcome"] for e in event_ids] == ["low_confidence", "ok", "rate_limited", "ok"]


def test_async_run__decisions_match_the_sync_client():
    server = FakeServer()
    sync_client = RoutingClient(BASE_URL, KEY, SLUG, transport=server.transport(), start=False)
    sync_client.refresh()
    requests = [{"prompt_tokens": n, "critical": n % 2 == 0} for n in (10, 90_000, 150_000)]

    async def decide_all():
        client = make(server)
        await client.refresh()
        return [
            client.decide(task, **fields).to_dict()
            for task in ("support", "extraction", "other")
            for fields in requests
        ]

    try:
        assert asyncio.run(decide_all()) == [
            sync_client.decide(task, **fields).to_dict()
            for task in ("support", "extraction", "other")
            for fields in requests
        ]
    finally:
        sync_client.close(timeout=0)


def test_async_refresh__malformed_answers__counted_document_kept_never_raised():
    server = FakeServer()
    server.policy_faults = [None]  # the first GET is answered normally
    server.policy_faults += [
        lambda request: httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000),
        lambda request: httpx.Response(200, json={**body(2), "version": "2"}),
        lambda request: httpx.Response(200, json=body(2, budget={"policy": {"daily": "x"}})),
    ]

    async def scenario():
        client = make(server)
        results = [await client.refresh() for _ in range(4)]
        decision = client.decide("support")
        await client.close()
        return results, decision, client.stats()

    results, decision, stats = asyncio.run(scenario())

    assert results == ["installed", "failed", "rejected", "installed"]
    assert (decision.policy_version, decision.model) == (2, "gpt-4o-mini")
    assert (stats.refresh_failures, stats.policy_rejected) == (2, 1)


def test_options__both_shells_take_the_same_arguments_with_the_same_defaults():
    import dataclasses
    import inspect

    from signalbox_client._core import ClientOptions

    sync = inspect.signature(RoutingClient.__init__).parameters
    aio = inspect.signature(AsyncRoutingClient.__init__).parameters
    fields = [f.name for f in dataclasses.fields(ClientOptions)]

    assert list(sync)[1:] == list(aio)[1:] == fields
    differ = {"transport", "sleep"}  # a sync or an async transport and sleep
    assert {n: p.default for n, p in sync.items() if n not in differ} == {
        n: p.default for n, p in aio.items() if n not in differ
    }


def test_async_flush__429_waits_retry_after_then_5xx_backs_off():
    server = FakeServer()
    clock = FakeClock()
    server.post_faults = [(429, {"Retry-After": "3"}), 500]

    async def scenario():
        client = make(server, clock)
        await client.refresh()
        decision = client.decide("support")
        ids = [client.record(decision, outcome="ok", latency_ms=1) for _ in range(3)]
        assert await client.flush(timeout=60) is True
        stats = client.stats()
        await client.close()
        return ids, stats

    ids, stats = asyncio.run(scenario())

    assert clock.sleeps[0] == 3.0
    assert len(clock.sleeps) == 2
    assert clock.sleeps[1] <= 1.0
    assert server.delivered_ids == sorted(ids)
    assert stats.retried == 2


def test_async_spool__outage_then_recovery__delivered_exactly_once(tmp_path):
    down = FakeServer()
    down.post_faults = [503] * 1000
    up = FakeServer()

    async def outage():
        client = make(down, spool_dir=tmp_path)
        await client.refresh()
        decision = client.decide("support")
        ids = [client.record(decision, outcome="ok", latency_ms=1) for _ in range(6)]
        assert await client.flush(timeout=1) is False
        await client.close(timeout=0)
        return ids, client.stats()

    async def recovery():
        client = make(up, spool_dir=tmp_path)
        await client.refresh()
        assert await client.flush() is True
        await client.close()

    ids, stats = asyncio.run(outage())
    assert stats.spooled == 6
    asyncio.run(recovery())

    assert up.delivered_ids == sorted(ids)
    assert all(count == 1 for count in up.accepted.values())


def test_async_startup__server_down__bootstrap_then_background_tasks_take_over(tmp_path):
    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_text(json.dumps(body(version=1)))
    server = FakeServer()
    server.publish(body(version=2), '"v2"')
    server.policy_faults = ["connect"]

    async def scenario():
        client = AsyncRoutingClient(
            BASE_URL,
            KEY,
            SLUG,
            transport=server.async_transport(),
            bootstrap_path=bootstrap,
            refresh_interval=0.01,
            flush_interval=0.01,
        )
        assert client.decide("support").policy_version == 1  # from the bootstrap
        decision = client.decide("support")
        event_id = client.record(decision, outcome="ok", latency_ms=1)
        for _ in range(300):
            if client.policy_version == 2 and event_id in server.accepted:
                break
            await asyncio.sleep(0.01)
        version = client.policy_version
        await client.close(timeout=1)
        return version, event_id

    version, event_id = asyncio.run(scenario())

    assert version == 2
    assert event_id in server.accepted


def test_async_not_ready__decide_raises_and_wait_times_out():
    server = FakeServer()
    server.policy_faults = ["connect"] * 1000

    async def scenario():
        async with AsyncRoutingClient(
            BASE_URL, KEY, SLUG, transport=server.async_transport(), refresh_interval=0.01
        ) as client:
            with pytest.raises(SignalboxNotReady):
                client.decide("support")
            return await client.wait_until_ready(timeout=0.05)

    assert asyncio.run(scenario()) is False


def test_async_close__flushes_queued_records():
    server = FakeServer()

    async def scenario():
        async with AsyncRoutingClient(
            BASE_URL, KEY, SLUG, transport=server.async_transport(), flush_interval=60, refresh_interval=60
        ) as client:
            assert await client.wait_until_ready(timeout=2)
            decision = client.decide("support")
            return [client.record(decision, outcome="ok", latency_ms=1) for _ in range(4)]

    ids = asyncio.run(scenario())

    assert server.delivered_ids == sorted(ids)
