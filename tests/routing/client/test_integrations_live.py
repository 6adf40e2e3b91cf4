"""The OpenAI and LiteLLM integrations end to end: calls to the local fake OpenAI API, decisions
shipped by the real client SDK to a live Signalbox, priced from the catalog and found on the cost
dashboard's API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import litellm
import openai
import pytest
from django.urls import reverse

from metrics.models import Decision
from metrics.rollups.services import rollups_update
from signalbox_client import STREAM_END_ATTRIBUTE, AsyncRoutingClient, RoutingClient
from signalbox_client.litellm import RoutedRouter, SignalboxLogger
from signalbox_client.openai import AsyncRoutedOpenAI, RoutedOpenAI
from tests import factories

from .fake_llm import CONTENT, FakeOpenAI
from .test_litellm import callbacks, litellm_router  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]
HAIKU = "claude-3-5-haiku-20241022"  # the fallback of gpt-4o-mini in the test policy's routes
# The test catalog's prices (tests/factories.py) of the fake's usage: 1000 tokens in and 200 out
# for a stream, 12 in and 5 out for a whole completion.
MINI_STREAM = Decimal("0.00015") + Decimal("0.00012")
HAIKU_STREAM = Decimal("0.0008") + Decimal("0.0008")
MINI_COMPLETION = Decimal("0.0000018") + Decimal("0.000003")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


@pytest.fixture
def secret(live_server: Any, transactional_db: Any) -> Iterator[str]:
    """An SDK key of the published policy 'checkout' on the live server."""
    from django.db import connection

    yield factories.sdk_key(factories.policy("checkout"))[1]
    with connection.cursor() as cursor:  # the raw table is unmanaged: the flush skips it
        cursor.execute("TRUNCATE metrics_decision")


@pytest.fixture
def url(live_server: Any) -> str:
    """The live server's address by IP: the async HTTP client would resolve "localhost"."""
    return str(live_server.url).replace("localhost", "127.0.0.1")


@pytest.fixture
def client(url: str, secret: str) -> Iterator[RoutingClient]:
    router = RoutingClient(url, secret, "checkout", app="support-bot", start=False)
    assert router.refresh() == "installed"
    yield router
    router.close(timeout=1)


def stored() -> list[tuple[Any, ...]]:
    rows = Decision.objects.order_by("ts")
    return [(d.model, d.outcome, d.tokens_in, d.tokens_out, d.cost_usd) for d in rows]


def cost_dashboard(api: Any, viewer: Any) -> dict[str, Any]:
    rollups_update()  # as beat does every minute
    answer: dict[str, Any] = api(viewer).get(reverse("metrics-api:cost"), {"policy": "checkout"}).json()
    return answer


def test_openai_stream__fallback_and_final_usage__priced_on_the_cost_dashboard(client, fake, api, viewer):
    routed = RoutedOpenAI(client, openai.OpenAI(base_url=fake.url, api_key="sk-test", max_retries=0, timeout=0.3))
    fake.script["gpt-4o-mini"] = [429]

    first = "".join(c.choices[0].delta.content or "" for c in routed.stream("chat", messages=MESSAGES))
    with routed.chat.completions.create(task_type="chat", messages=MESSAGES, stream=True) as second:
        assert "".join(c.choices[0].delta.content or "" for c in second) == "".join(CONTENT)
    assert client.flush(timeout=5) is True

    assert first == "".join(CONTENT)
    assert stored() == [
        ("gpt-4o-mini", "rate_limited", 0, 0, Decimal(0)),
        (HAIKU, "ok", 1000, 200, HAIKU_STREAM),
        ("gpt-4o-mini", "ok", 1000, 200, MINI_STREAM),
    ]
    cost = cost_dashboard(api, viewer)
    assert cost["requests"] == 2
    assert cost["total_cost_usd"] == pytest.approx(float(HAIKU_STREAM + MINI_STREAM))
    assert {(m["model"], m["decisions"]) for m in cost["by_model"]} == {("gpt-4o-mini", 2), (HAIKU, 1)}


def test_openai_async_stream__closed_early__stored_once_as_closed(url, secret, fake):
    async def scenario() -> None:
        router = AsyncRoutingClient(url, secret, "checkout", start=False)
        assert await router.refresh() == "installed"
        routed = AsyncRoutedOpenAI(
            router, openai.AsyncOpenAI(base_url=fake.url, api_key="sk-test", max_retries=0, timeout=0.3)
        )
        async with await routed.stream("chat", messages=MESSAGES) as stream:
            await stream.__anext__()
        assert await router.flush(timeout=5) is True
        await router.close(timeout=1)

    asyncio.run(scenario())

    [decision] = Decision.objects.all()
    assert (decision.model, decision.outcome, decision.tokens_out) == ("gpt-4o-mini", "ok", 0)
    assert decision.attributes == {STREAM_END_ATTRIBUTE: "closed"}


def test_litellm_logger__sync_stream_and_async_failure__stored_and_priced(client, fake, callbacks, api, viewer):  # noqa: F811
    callbacks.append(SignalboxLogger(client))
    direct = {"api_base": fake.url, "api_key": "sk-test", "num_retries": 0, "timeout": 0.3}
    metadata = {"signalbox": {"task_type": "extraction"}}
    fake.script["gpt-4o-mini"] = ["ok", "ok", 429]

    litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, metadata=metadata, **direct)
    stream = litellm.completion(
        model="openai/gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        metadata=metadata,
        **direct,
    )
    assert list(stream)

    async def failing() -> None:
        with pytest.raises(litellm.RateLimitError):
            await litellm.acompletion(model="openai/gpt-4o-mini", messages=MESSAGES, metadata=metadata, **direct)
        for _ in range(100):  # LiteLLM logs from a task of its own
            if client.stats().recorded >= 3:
                return
            await asyncio.sleep(0.02)

    asyncio.run(failing())
    for _ in range(100):  # and sync calls from a thread of its own
        if client.stats().recorded >= 3:
            break
        asyncio.run(asyncio.sleep(0.02))
    assert client.flush(timeout=5) is True

    assert stored() == [
        ("gpt-4o-mini", "ok", 12, 5, MINI_COMPLETION),
        ("gpt-4o-mini", "ok", 1000, 200, MINI_STREAM),
        ("gpt-4o-mini", "rate_limited", 0, 0, Decimal(0)),
    ]
    assert set(Decision.objects.values_list("route", "task_type", "provider")) == {
        ("extraction", "extraction", "openai")
    }
    cost = cost_dashboard(api, viewer)
    assert cost["total_cost_usd"] == pytest.approx(float(MINI_COMPLETION + MINI_STREAM))


def test_litellm_routed_router__500_falls_back__each_attempt_stored_once(client, fake, callbacks, api, viewer):  # noqa: F811
    callbacks.append(SignalboxLogger(client))  # registered too: it leaves routed calls to RoutedRouter
    routed = RoutedRouter(client, litellm_router(fake, "gpt-4o-mini", HAIKU))
    fake.script["gpt-4o-mini"] = [500]

    answer = routed.completion(task_type="chat", messages=MESSAGES)
    assert client.flush(timeout=5) is True

    assert answer.choices[0].message.content == "It ships tomorrow."
    assert stored() == [
        ("gpt-4o-mini", "error", 0, 0, Decimal(0)),
        (HAIKU, "ok", 12, 5, Decimal("0.0000096") + Decimal("0.00002")),
    ]
    assert list(Decision.objects.order_by("ts").values_list("attempt", "tier")) == [(1, 1), (2, 1)]
    cost = cost_dashboard(api, viewer)
    assert cost["requests"] == 1


# -- the docs' examples, run as they are -------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[3]


def example(page: str) -> str:
    """The first Python block of a docs page."""
    text = (ROOT / "docs" / "integrations" / page).read_text()
    return text.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def example_env(monkeypatch: Any, url: str, secret: str, fake: FakeOpenAI) -> None:
    for name, value in {
        "SIGNALBOX_URL": url,
        "SIGNALBOX_SDK_KEY": secret,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": fake.url,
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("example_env")
def test_docs_example__openai__runs_and_its_decisions_are_stored(capsys):
    exec(compile(example("openai.md"), "openai.md", "exec"), {})  # noqa: S102 - the docs' own example

    printed = capsys.readouterr().out
    assert printed.count("".join(CONTENT)) == 2
    assert [(d.route, d.model, d.outcome) for d in Decision.objects.order_by("ts")] == [
        ("general", "gpt-4o-mini", "ok"),
        ("general", "gpt-4o-mini", "ok"),
    ]


@pytest.fixture
def litellm_quiet() -> Any:
    """LiteLLM's loggers at WARNING: their handlers write to stdout, and an earlier test of the same
    worker may have left the level at DEBUG, which echoes every response into what the example prints."""
    loggers = [logging.getLogger(name) for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.mark.usefixtures("example_env", "litellm_quiet")
def test_docs_example__litellm__runs_and_each_call_is_stored_once(capsys, callbacks):  # noqa: F811
    exec(compile(example("litellm.md"), "litellm.md", "exec"), {})  # noqa: S102 - the docs' own example

    printed = capsys.readouterr().out
    assert printed.count("".join(CONTENT)) == 3, printed
    assert sorted((d.route, d.model, d.tokens_out) for d in Decision.objects.all()) == [
        ("extraction", "gpt-4o-mini", 5),
        ("general", "gpt-4o-mini", 5),
        ("general", "gpt-4o-mini", 200),
    ]
