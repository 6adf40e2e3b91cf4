"""signalbox_client.litellm against a local fake of the OpenAI HTTP API called through LiteLLM:
the custom logger records every call (sync, async, streamed; success and failure), and the routed
Router lets the policy pick the model group with the engine's fallbacks, streaming included."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger

from signalbox_client import AsyncRunStream, RunStream
from signalbox_client.litellm import (
    DEFAULT_TASK_TYPE,
    AsyncRoutedRouter,
    RoutedRouter,
    SignalboxLogger,
)

from .fake_llm import CONTENT, STREAM_USAGE, USAGE, FakeOpenAI
from .fakes import FakeServer, wait_for
from .test_async import make as make_async

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]
TIMEOUT = 0.2  # seconds a call to the fake waits before LiteLLM gives up ("hang" and "stall")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


# LiteLLM's module globals that hold callbacks: `callbacks`, and the lists it sorts them into.
CALLBACK_LISTS = (
    "callbacks",
    "input_callback",
    "success_callback",
    "failure_callback",
    "_async_success_callback",
    "_async_failure_callback",
)


@pytest.fixture
def callbacks() -> Iterator[list[Any]]:
    """litellm.callbacks for one test, every callback list of LiteLLM's emptied before and after."""
    saved = {name: getattr(litellm, name) for name in CALLBACK_LISTS}
    for name in CALLBACK_LISTS:
        setattr(litellm, name, [])
    yield litellm.callbacks
    for name, value in saved.items():
        setattr(litellm, name, value)


@pytest.fixture
def router_client(make_client: Any) -> Any:
    client = make_client()
    assert client.refresh() == "installed"
    return client


@pytest.fixture
def logged(router_client: Any, callbacks: list[Any]) -> SignalboxLogger:
    logger = SignalboxLogger(router_client)
    callbacks.append(logger)
    return logger


def direct(fake: FakeOpenAI, **more: Any) -> dict[str, Any]:
    """The arguments of a plain litellm.completion() to the fake, no retries."""
    return {"api_base": fake.url, "api_key": "sk-test", "num_retries": 0, "timeout": TIMEOUT, **more}


def records(server: FakeServer, client: Any, count: int) -> list[dict[str, Any]]:
    """The records the control plane got, once `count` have arrived (LiteLLM logs sync calls from
    a thread of its own, after the call returns)."""
    assert wait_for(lambda: client.flush(timeout=1) and len(server.records) >= count), server.records
    return sorted(server.records.values(), key=lambda r: (r["request_id"], r["attempt"], r["timestamp"]))


def test_logger__sync_completion__one_record_with_route_usage_and_latency(logged, router_client, fake, server):
    metadata = {"signalbox": {"task_type": "extraction", "attributes": {"team": "billing"}}}

    answer = litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, metadata=metadata, **direct(fake))

    assert answer.choices[0].message.content == "It ships tomorrow."
    [record] = records(server, router_client, 1)
    assert (record["route"], record["task_type"], record["model"], record["provider"]) == (
        "extraction",
        "extraction",
        "gpt-4o-mini",
        "openai",
    )
    assert record["tier"] == 1, "the model's tier in the route, not the route's start tier"
    assert (record["outcome"], record["tokens_in"], record["tokens_out"]) == ("ok", 12, 5)
    assert record["attributes"] == {"team": "billing"}
    assert record["reason"] == {"source": "litellm"}
    assert record["latency_ms"] > 0
    assert record.get("cost_usd") is None, "priced by the server from the catalog"
    assert record["policy_version"] == 1
    assert logged.dropped == 0


@pytest.mark.parametrize(
    ("fault", "error", "outcome"),
    [
        (429, litellm.RateLimitError, "rate_limited"),
        (500, litellm.InternalServerError, "error"),
        ("hang", litellm.Timeout, "timeout"),
    ],
)
def test_logger__failed_call__raised_to_the_caller_and_logged_with_its_outcome(
    logged, router_client, fake, server, fault, error, outcome
):
    fake.script["gpt-4o-mini"] = [fault]

    with pytest.raises(error):
        litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, **direct(fake))

    [record] = records(server, router_client, 1)
    assert (record["model"], record["outcome"], record["tokens_out"]) == ("gpt-4o-mini", outcome, 0)
    assert record["task_type"] == DEFAULT_TASK_TYPE
    assert record["route"] == "general", "the policy's default route for a call that names no task type"


def test_logger__sync_stream__chunks_reach_the_caller_one_record_with_the_final_usage(
    logged, router_client, fake, server
):
    stream = litellm.completion(
        model="openai/gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        metadata={"signalbox": {"task_type": "support", "route": "chat-stream"}},
        **direct(fake),
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    assert text == "".join(CONTENT)
    [record] = records(server, router_client, 1)
    assert (record["route"], record["outcome"]) == ("chat-stream", "ok")
    assert (record["tokens_in"], record["tokens_out"]) == (
        STREAM_USAGE["prompt_tokens"],
        STREAM_USAGE["completion_tokens"],
    )
    assert uuid.UUID(record["event_id"]).version == 5, (
        "named after LiteLLM's call id: a call reported twice is one record"
    )


def test_logger__async_calls__success_stream_and_failure_each_logged_once(fake, callbacks):
    server = FakeServer()
    fake.script["gpt-4o-mini"] = ["ok", "ok", 429]

    async def scenario() -> list[dict[str, Any]]:
        client = make_async(server)
        assert await client.refresh() == "installed"
        callbacks.append(SignalboxLogger(client, task_type="support"))
        await litellm.acompletion(model="openai/gpt-4o-mini", messages=MESSAGES, **direct(fake))
        stream = await litellm.acompletion(
            model="openai/gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            **direct(fake),
        )
        assert [c async for c in stream]
        with pytest.raises(litellm.RateLimitError):
            await litellm.acompletion(model="openai/gpt-4o-mini", messages=MESSAGES, **direct(fake))
        for _ in range(100):  # LiteLLM logs async calls from tasks of its own
            if client.stats().recorded >= 3:
                break
            await asyncio.sleep(0.02)
        assert await client.flush() is True
        await client.close()
        return sorted(server.records.values(), key=lambda r: r["timestamp"])

    got = asyncio.run(scenario())

    assert [(r["outcome"], r["tokens_in"], r["tokens_out"]) for r in got] == [
        ("ok", USAGE["prompt_tokens"], USAGE["completion_tokens"]),
        ("ok", STREAM_USAGE["prompt_tokens"], STREAM_USAGE["completion_tokens"]),
        ("rate_limited", 0, 0),
    ]
    assert {r["route"] for r in got} == {"general"}


def test_logger__two_loggers__both_log(router_client, make_client, fake, server, callbacks):
    other_server = FakeServer()
    other = make_client(transport=other_server.transport())
    assert other.refresh() == "installed"
    callbacks.extend([SignalboxLogger(router_client), SignalboxLogger(other)])

    litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, **direct(fake))

    assert len(records(server, router_client, 1)) == 1
    assert len(records(other_server, other, 1)) == 1


def test_logger__no_policy_loaded__call_unharmed_and_the_record_counted_as_dropped(
    make_client, fake, server, callbacks
):
    client = make_client()  # never refreshed: no policy
    logger = SignalboxLogger(client)
    callbacks.append(logger)

    answer = litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, **direct(fake))

    assert answer.choices[0].message.content == "It ships tomorrow."
    assert wait_for(lambda: logger.dropped == 1)
    assert client.flush(timeout=1)
    assert server.records == {}


def test_logger__send_cost__litellm_price_sent(router_client, fake, server, callbacks):
    callbacks.append(SignalboxLogger(router_client, send_cost=True))

    litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, **direct(fake))

    [record] = records(server, router_client, 1)
    # LiteLLM's own price map: gpt-4o-mini at 0.15 / 0.60 USD per million tokens in / out.
    assert record["cost_usd"] == pytest.approx(12 * 0.15e-6 + 5 * 0.6e-6)


def litellm_router(fake: FakeOpenAI, *groups: str, **options: Any) -> litellm.Router:
    """A Router with one deployment per group, all served by the fake."""
    model_list = [
        {
            "model_name": group,
            "litellm_params": {
                "model": f"openai/{model}",
                "api_base": fake.url,
                "api_key": "sk-test",
                "timeout": TIMEOUT,
            },
        }
        for group, model in (g.split("=") if "=" in g else (g, g) for g in groups)
    ]
    return litellm.Router(model_list=model_list, **options)


def test_logger__router_fallback_of_its_own__two_attempts_of_one_request(logged, router_client, fake, server):
    router = litellm_router(fake, "gpt-4o-mini", "claude-3-5-haiku", fallbacks=[{"gpt-4o-mini": ["claude-3-5-haiku"]}])
    fake.script["gpt-4o-mini"] = [429]

    answer = router.completion(model="gpt-4o-mini", messages=MESSAGES, num_retries=0)

    assert answer.model.startswith("claude-3-5-haiku")
    got = records(server, router_client, 2)
    assert [(r["model"], r["outcome"], r["attempt"]) for r in got] == [
        ("gpt-4o-mini", "rate_limited", 1),
        ("claude-3-5-haiku", "ok", 2),
    ]
    assert len({r["request_id"] for r in got}) == 1
    assert got[1]["tier"] == 1, "the fallback's tier in the route"


# -- the Router, routed by the policy -----------------------------------------------------------------


def test_routed_router__policy_picks_the_group__response_returned_and_logged_once(logged, router_client, fake, server):
    routed = RoutedRouter(router_client, litellm_router(fake, "mini=gpt-4o-mini"), models={"gpt-4o-mini": "mini"})

    answer = routed.completion(task_type="support", messages=MESSAGES, metadata={"team": "billing"})

    assert answer.choices[0].message.content == "It ships tomorrow."
    assert fake.models() == ["gpt-4o-mini"]
    assert fake.requests[0].get("metadata") is None, "Signalbox's metadata stays in LiteLLM"
    [record] = records(server, router_client, 1)
    assert (record["model"], record["outcome"], record["tokens_in"], record["tokens_out"]) == (
        "gpt-4o-mini",
        "ok",
        12,
        5,
    )
    time.sleep(0.1)  # the logger's thread, had it logged the routed call
    client_flushed = router_client.flush(timeout=1)
    assert client_flushed
    assert len(server.records) == 1, "the logger leaves the routed call to RoutedRouter"


@pytest.mark.parametrize(("fault", "outcome"), [(429, "rate_limited"), (500, "error"), ("hang", "timeout")])
def test_routed_router__fault__engine_falls_back_router_does_not_retry(
    logged, router_client, fake, server, fault, outcome
):
    routed = RoutedRouter(router_client, litellm_router(fake, "gpt-4o-mini", "claude-3-5-haiku"))
    fake.script["gpt-4o-mini"] = [fault]

    result = routed.run("support", messages=MESSAGES)

    assert [(a.model, a.kind, a.outcome) for a in result.attempts] == [
        ("gpt-4o-mini", "initial", outcome),
        ("claude-3-5-haiku", "fallback", "ok"),
    ]
    assert fake.models() == ["gpt-4o-mini", "claude-3-5-haiku"], "no retry or fallback of the Router's own"
    assert [(r["model"], r["outcome"]) for r in records(server, router_client, 2)] == [
        ("gpt-4o-mini", outcome),
        ("claude-3-5-haiku", "ok"),
    ]


def test_routed_router__every_attempt_fails__last_litellm_error_raised(router_client, fake, server):
    routed = RoutedRouter(router_client, litellm_router(fake, "gpt-4o-mini", "claude-3-5-haiku"))
    fake.script = {"gpt-4o-mini": [429], "claude-3-5-haiku": [500]}

    with pytest.raises(litellm.InternalServerError):
        routed.completion(task_type="support", messages=MESSAGES)

    assert [r["outcome"] for r in records(server, router_client, 2)] == ["rate_limited", "error"]


def test_routed_router__stream__falls_back_before_the_first_chunk_and_logs_the_final_usage(
    logged, router_client, fake, server
):
    routed = RoutedRouter(router_client, litellm_router(fake, "gpt-4o-mini", "claude-3-5-haiku"))
    fake.script["gpt-4o-mini"] = [500]

    stream = routed.completion(task_type="support", messages=MESSAGES, stream=True)
    assert isinstance(stream, RunStream)
    chunks = list(stream)

    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "".join(CONTENT)
    assert fake.requests[-1]["stream_options"] == {"include_usage": True}
    got = records(server, router_client, 2)
    assert [(r["model"], r["outcome"], r["tokens_out"]) for r in got] == [
        ("gpt-4o-mini", "error", 0),
        ("claude-3-5-haiku", "ok", STREAM_USAGE["completion_tokens"]),
    ]


def test_routed_router__stream_stalls_after_the_first_chunk__timeout_logged_no_fallback(router_client, fake, server):
    routed = RoutedRouter(router_client, litellm_router(fake, "gpt-4o-mini", "claude-3-5-haiku"))
    fake.script["gpt-4o-mini"] = ["stall"]

    stream = routed.stream("support", messages=MESSAGES)
    next(stream)
    with pytest.raises(litellm.Timeout):
        list(stream)

    assert fake.models() == ["gpt-4o-mini"]
    [record] = records(server, router_client, 1)
    assert (record["model"], record["outcome"]) == ("gpt-4o-mini", "timeout")


def test_async_routed_router__429_falls_back__completion_and_stream(fake, callbacks):
    server = FakeServer()
    fake.script["gpt-4o-mini"] = [429, 429]

    async def scenario() -> tuple[Any, list[Any]]:
        client = make_async(server)
        assert await client.refresh() == "installed"
        callbacks.append(SignalboxLogger(client))
        routed = AsyncRoutedRouter(client, litellm_router(fake, "gpt-4o-mini", "claude-3-5-haiku"))
        answer = await routed.acompletion(task_type="support", messages=MESSAGES)
        stream = await routed.acompletion(task_type="support", messages=MESSAGES, stream=True)
        assert isinstance(stream, AsyncRunStream)
        chunks = [c async for c in stream]
        await asyncio.sleep(0.05)  # the logger's tasks, had it logged the routed calls
        assert await client.flush() is True
        await client.close()
        return answer, chunks

    answer, chunks = asyncio.run(scenario())

    assert answer.model.startswith("claude-3-5-haiku")
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "".join(CONTENT)
    got = sorted(server.records.values(), key=lambda r: r["timestamp"])
    assert [(r["model"], r["outcome"], r["tokens_out"]) for r in got] == [
        ("gpt-4o-mini", "rate_limited", 0),
        ("claude-3-5-haiku", "ok", USAGE["completion_tokens"]),
        ("gpt-4o-mini", "rate_limited", 0),
        ("claude-3-5-haiku", "ok", STREAM_USAGE["completion_tokens"]),
    ]


def test_routed_router__model_given__refused(router_client, fake):
    routed = RoutedRouter(router_client, litellm_router(fake, "gpt-4o-mini"))

    with pytest.raises(TypeError, match="policy picks the model"):
        routed.completion(task_type="support", messages=MESSAGES, model="gpt-4o")
    assert fake.requests == []


def test_logger__same_call_reported_twice__one_record_even_across_loggers(router_client, fake, server, callbacks):
    reported: list[tuple[Any, ...]] = []

    class Capture(CustomLogger):
        def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
            reported.append((kwargs, response_obj, start_time, end_time))

    callbacks.append(Capture())
    litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, **direct(fake))
    assert wait_for(lambda: len(reported) == 1)
    first = SignalboxLogger(router_client)

    first.log_success_event(*reported[0])
    first.log_success_event(*reported[0])  # the same logger again: skipped
    SignalboxLogger(router_client).log_success_event(*reported[0])  # another process, say: same event id

    [record] = records(server, router_client, 1)
    assert server.accepted[record["event_id"]] == 2, "sent twice, stored once"
