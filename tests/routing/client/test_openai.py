"""signalbox_client.openai: the OpenAI SDK routed by the policy, against a local fake of the
OpenAI HTTP API answering real response shapes, 429, 500, requests it never answers and streams."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from signalbox_client import STREAM_END_ATTRIBUTE, AsyncRunStream, RunStream
from signalbox_client.openai import _TIMEOUTS, AsyncRoutedOpenAI, RoutedOpenAI

from .fake_llm import CONTENT, STREAM_USAGE, FakeOpenAI
from .fakes import FakeServer
from .test_async import make as make_async

# What a stream that stalls after its first chunk raises: the SDK's HTTP library's read timeout.
STALLED = (openai.APITimeoutError, TimeoutError, *_TIMEOUTS)

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


def openai_client(fake: FakeOpenAI, cls: Any = openai.OpenAI, timeout: float = 0.5) -> Any:
    return cls(base_url=fake.url, api_key="sk-test", max_retries=0, timeout=timeout)


@pytest.fixture
def routed(make_client: Any, fake: FakeOpenAI) -> RoutedOpenAI:
    router = make_client()
    assert router.refresh() == "installed"
    return RoutedOpenAI(router, openai_client(fake))


def records_of(routed: RoutedOpenAI, server: Any) -> list[dict[str, Any]]:
    assert routed.router.flush() is True
    return sorted(server.records.values(), key=lambda r: (r["request_id"], r["attempt"]))


def test_create__policy_picks_the_model__completion_returned_and_usage_logged(routed, fake, server):
    answer = routed.chat.completions.create(task_type="support", messages=MESSAGES, temperature=0)

    assert isinstance(answer, openai.types.chat.ChatCompletion)
    assert answer.choices[0].message.content == "It ships tomorrow."
    assert fake.models() == ["gpt-4o-mini"]
    assert fake.requests[0]["temperature"] == 0
    [record] = records_of(routed, server)
    assert (record["model"], record["provider"], record["outcome"]) == ("gpt-4o-mini", "openai", "ok")
    assert (record["tokens_in"], record["tokens_out"]) == (12, 5)
    assert record.get("cost_usd") is None, "priced by the server from the catalog"


@pytest.mark.parametrize(("fault", "outcome"), [(429, "rate_limited"), (500, "error"), ("hang", "timeout")])
def test_create__provider_fault__engine_falls_back_and_logs_each_attempt(make_client, fake, server, fault, outcome):
    other = FakeOpenAI()  # the fallback model's provider, an OpenAI-compatible API of its own
    try:
        router = make_client()
        router.refresh()
        routed = RoutedOpenAI(router, openai_client(fake), clients={"anthropic": openai_client(other)})
        fake.script["gpt-4o-mini"] = [fault]

        result = routed.run("support", messages=MESSAGES)
    finally:
        other.close()

    assert [(a.model, a.kind, a.outcome) for a in result.attempts] == [
        ("gpt-4o-mini", "initial", outcome),
        ("claude-3-5-haiku", "fallback", "ok"),
    ]
    assert other.models() == ["claude-3-5-haiku"]
    assert [(r["model"], r["outcome"]) for r in records_of(routed, server)] == [
        ("gpt-4o-mini", outcome),
        ("claude-3-5-haiku", "ok"),
    ]


def test_create__validation_fails__escalates_to_the_next_tier(routed, fake, server):
    seen: list[str] = []

    def validate(answer: Any) -> bool:
        seen.append(answer.model)
        return len(seen) > 1

    result = routed.run("support", messages=MESSAGES, validate=validate)

    assert [(a.model, a.kind, a.outcome) for a in result.attempts] == [
        ("gpt-4o-mini", "initial", "validation_failed"),
        ("gpt-4o", "escalate", "ok"),
    ]
    assert fake.models() == ["gpt-4o-mini", "gpt-4o"]


def test_create__every_attempt_fails__the_openai_error_raised_and_all_logged(routed, fake, server):
    fake.script = {"gpt-4o-mini": [429], "claude-3-5-haiku": ["hang"]}

    with pytest.raises(openai.APITimeoutError):
        routed.chat.completions.create(task_type="support", messages=MESSAGES)

    assert [r["outcome"] for r in records_of(routed, server)] == ["rate_limited", "timeout"]


def test_create__model_given_or_run_asked_to_stream__refused(routed, fake):
    with pytest.raises(TypeError, match="policy picks the model"):
        routed.chat.completions.create(task_type="support", messages=MESSAGES, model="gpt-4o")
    with pytest.raises(TypeError, match="policy picks the model"):
        routed.chat.completions.create(task_type="support", messages=MESSAGES, model="gpt-4o", stream=True)
    with pytest.raises(TypeError, match="use stream"):
        routed.run("support", messages=MESSAGES, stream=True)
    assert fake.requests == []


def test_async_create__policy_picks_and_429_falls_back(fake):
    server = FakeServer()
    fake.script["gpt-4o-mini"] = [429]

    async def scenario() -> Any:
        router = make_async(server)
        assert await router.refresh() == "installed"
        routed = AsyncRoutedOpenAI(router, openai_client(fake, openai.AsyncOpenAI))
        answer = await routed.chat.completions.create(task_type="support", messages=MESSAGES)
        assert await router.flush() is True
        await router.close()
        return answer

    answer = asyncio.run(scenario())

    assert answer.model == "claude-3-5-haiku-2024-07-18"
    assert fake.models() == ["gpt-4o-mini", "claude-3-5-haiku"]
    assert sorted((r["model"], r["outcome"]) for r in server.records.values()) == [
        ("claude-3-5-haiku", "ok"),
        ("gpt-4o-mini", "rate_limited"),
    ]


def test_import_signalbox_client__imports_neither_openai_nor_litellm():
    code = "import sys, signalbox_client; assert not {'openai', 'litellm'} & set(sys.modules), 'imported'"

    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- streaming -----------------------------------------------------------------------------------


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks)


def test_stream__chunks_passed_unchanged__usage_of_the_final_chunk_logged_once(routed, fake, server):
    stream = routed.chat.completions.create(task_type="support", messages=MESSAGES, stream=True)

    assert isinstance(stream, RunStream)
    assert fake.requests[0]["stream"] is True
    assert fake.requests[0]["stream_options"] == {"include_usage": True}, "asked for, as the caller did not"
    assert records_of(routed, server) == [], "nothing logged before the stream ends"
    chunks = list(stream)

    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    assert text_of(chunks) == "".join(CONTENT)
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop", "the usage-only chunk it added is not passed on"
    assert all(c.choices for c in chunks)
    stream.close()
    del stream  # no reference cycle: dropped at once
    [record] = records_of(routed, server)
    assert (record["model"], record["outcome"], record["attempt"]) == ("gpt-4o-mini", "ok", 1)
    assert (record["tokens_in"], record["tokens_out"]) == (
        STREAM_USAGE["prompt_tokens"],
        STREAM_USAGE["completion_tokens"],
    )
    assert STREAM_END_ATTRIBUTE not in record["attributes"]


def test_stream__caller_asked_for_usage__the_usage_chunk_reaches_the_caller(routed, fake, server):
    with routed.stream("support", messages=MESSAGES, stream_options={"include_usage": True}) as stream:
        chunks = list(stream)

    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == STREAM_USAGE["completion_tokens"]
    [record] = records_of(routed, server)
    assert record["tokens_out"] == STREAM_USAGE["completion_tokens"]


def test_stream__caller_turned_usage_off__respected_and_no_tokens_logged(routed, fake, server):
    chunks = list(routed.stream("support", messages=MESSAGES, stream_options={"include_usage": False}))

    assert fake.requests[0]["stream_options"] == {"include_usage": False}
    assert text_of(chunks) == "".join(CONTENT)
    [record] = records_of(routed, server)
    assert (record["outcome"], record["tokens_in"], record["tokens_out"]) == ("ok", 0, 0)


@pytest.mark.parametrize(
    ("fault", "outcome"), [(429, "rate_limited"), (500, "error"), ("hang", "timeout"), ("silent", "timeout")]
)
def test_stream__fault_before_the_first_chunk__falls_back_per_the_engine(make_client, fake, server, fault, outcome):
    other = FakeOpenAI()
    try:
        router = make_client()
        router.refresh()
        routed = RoutedOpenAI(
            router, openai_client(fake, timeout=0.2), clients={"anthropic": openai_client(other, timeout=0.2)}
        )
        fake.script["gpt-4o-mini"] = [fault]

        stream = routed.stream("support", messages=MESSAGES)
        assert stream.model == "claude-3-5-haiku"
        chunks = list(stream)
    finally:
        other.close()

    assert text_of(chunks) == "".join(CONTENT)
    assert [(a.model, a.kind, a.outcome) for a in stream.attempts] == [
        ("gpt-4o-mini", "initial", outcome),
        ("claude-3-5-haiku", "fallback", "ok"),
    ]
    assert [(r["model"], r["outcome"], r["tokens_out"]) for r in records_of(routed, server)] == [
        ("gpt-4o-mini", outcome, 0),
        ("claude-3-5-haiku", "ok", STREAM_USAGE["completion_tokens"]),
    ]


def test_stream__every_attempt_fails_before_a_chunk__last_openai_error_raised_all_logged(make_client, fake, server):
    router = make_client()
    router.refresh()
    routed = RoutedOpenAI(router, openai_client(fake, timeout=0.2))
    fake.script = {"gpt-4o-mini": [429], "claude-3-5-haiku": [500]}

    with pytest.raises(openai.InternalServerError):
        routed.stream("support", messages=MESSAGES)

    assert [r["outcome"] for r in records_of(routed, server)] == ["rate_limited", "error"]


def test_stream__stalls_after_the_first_chunk__chunk_delivered_then_timeout_logged_no_fallback(
    make_client, fake, server
):
    router = make_client()
    router.refresh()
    routed = RoutedOpenAI(router, openai_client(fake, timeout=0.2))
    fake.script["gpt-4o-mini"] = ["stall"]

    stream = routed.stream("support", messages=MESSAGES)
    first = next(stream)  # reached the caller while the provider is still silent: chunks pass lazily
    assert first.choices[0].delta.role == "assistant"
    with pytest.raises((openai.APITimeoutError, TimeoutError, __import__("httpx").TimeoutException)):
        next(stream)

    assert fake.models() == ["gpt-4o-mini"], "no fallback once a chunk reached the caller"
    [record] = records_of(routed, server)
    assert (record["model"], record["outcome"]) == ("gpt-4o-mini", "timeout")
    with pytest.raises(StopIteration):
        next(stream)
    stream.close()
    assert len(records_of(routed, server)) == 1, "never logged twice"


def test_stream__error_event_mid_stream__raised_and_logged_as_error(routed, fake, server):
    fake.script["gpt-4o-mini"] = ["sse-error"]

    with pytest.raises(openai.APIError, match="server had an error"):
        list(routed.stream("support", messages=MESSAGES))

    assert [(r["model"], r["outcome"]) for r in records_of(routed, server)] == [("gpt-4o-mini", "error")]
    assert fake.models() == ["gpt-4o-mini"]


def test_stream__closed_early__logged_once_as_closed(routed, fake, server):
    with routed.stream("support", messages=MESSAGES, attributes={"channel": "chat"}) as stream:
        next(stream)
    stream.close()

    [record] = records_of(routed, server)
    assert record["outcome"] == "ok"
    assert record["attributes"] == {"channel": "chat", STREAM_END_ATTRIBUTE: "closed"}
    assert list(stream) == []


def test_stream__dropped_unread__logged_as_abandoned(routed, fake, server):
    stream = routed.stream("support", messages=MESSAGES)
    next(stream)

    del stream  # no reference cycle: dropped at once, as CPython does

    [record] = records_of(routed, server)
    assert (record["outcome"], record["attributes"][STREAM_END_ATTRIBUTE]) == ("ok", "abandoned")


def test_async_stream__falls_back_on_429__chunks_unchanged__usage_logged_and_early_close_once(fake):
    server = FakeServer()
    fake.script["gpt-4o-mini"] = [429]

    async def scenario() -> tuple[list[Any], Any]:
        router = make_async(server)
        assert await router.refresh() == "installed"
        routed = AsyncRoutedOpenAI(router, openai_client(fake, openai.AsyncOpenAI, timeout=0.2))
        stream = await routed.chat.completions.create(task_type="support", messages=MESSAGES, stream=True)
        assert isinstance(stream, AsyncRunStream)
        chunks = [chunk async for chunk in stream]
        async with await routed.stream("support", messages=MESSAGES) as early:
            await early.__anext__()
        await early.aclose()
        assert await router.flush() is True
        await router.close()
        return chunks, stream

    chunks, stream = asyncio.run(scenario())

    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    assert text_of(chunks) == "".join(CONTENT)
    assert [(a.model, a.outcome) for a in stream.attempts] == [
        ("gpt-4o-mini", "rate_limited"),
        ("claude-3-5-haiku", "ok"),
    ]
    records = sorted(server.records.values(), key=lambda r: r["timestamp"])
    assert [
        (r["model"], r["outcome"], r["tokens_out"], r["attributes"].get(STREAM_END_ATTRIBUTE)) for r in records
    ] == [
        ("gpt-4o-mini", "rate_limited", 0, None),
        ("claude-3-5-haiku", "ok", STREAM_USAGE["completion_tokens"], None),
        ("gpt-4o-mini", "ok", 0, "closed"),
    ]


def test_async_stream__stalls_after_the_first_chunk__timeout_logged_and_raised(fake):
    server = FakeServer()
    fake.script["gpt-4o-mini"] = ["stall"]

    async def scenario() -> None:
        router = make_async(server)
        await router.refresh()
        routed = AsyncRoutedOpenAI(router, openai_client(fake, openai.AsyncOpenAI, timeout=0.2))
        stream = await routed.stream("support", messages=MESSAGES)
        await stream.__anext__()
        with pytest.raises(STALLED):
            await stream.__anext__()
        await stream.aclose()
        assert await router.flush() is True
        await router.close()

    asyncio.run(scenario())

    assert [(r["model"], r["outcome"]) for r in server.records.values()] == [("gpt-4o-mini", "timeout")]
    assert fake.models() == ["gpt-4o-mini"]
