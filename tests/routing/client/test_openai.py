"""signalbox_client.openai: the OpenAI SDK routed by the policy, against a local fake of the
OpenAI HTTP API answering real response shapes, 429, 500 and requests it never answers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest

from signalbox_client.openai import AsyncRoutedOpenAI, RoutedOpenAI

from .test_async import make as make_async

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]


class FakeOpenAI:
    """An OpenAI-compatible /v1/chat/completions on a loopback port. `script[model]` is consumed
    one entry per request for that model: "ok", 429, 500, or "hang" (no answer until the test
    ends); an empty script answers "ok"."""

    def __init__(self) -> None:
        self.script: dict[str, list[Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, **body})
                steps = fake.script.get(body["model"], [])
                step = steps.pop(0) if steps else "ok"
                if step == "hang":
                    fake.release.wait(30)
                    return
                if step == 429:
                    error = {"message": "Rate limit reached", "type": "requests", "param": None}
                    self._send(429, {"error": {**error, "code": "rate_limit_exceeded"}}, {"retry-after": "0"})
                elif step == 500:
                    error = {"message": "The server had an error", "type": "server_error", "param": None}
                    self._send(500, {"error": {**error, "code": None}})
                else:
                    self._send(200, completion(body["model"]))

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def models(self) -> list[str]:
        return [r["model"] for r in self.requests]

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(model: str) -> dict[str, Any]:
    """A chat completion as the OpenAI API returns it."""
    return {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": f"{model}-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "It ships tomorrow.", "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 5,
            "total_tokens": 17,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_44709d6fcb",
    }


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


def openai_client(fake: FakeOpenAI, cls: Any = openai.OpenAI) -> Any:
    return cls(base_url=fake.url, api_key="sk-test", max_retries=0, timeout=0.5)


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


def test_create__model_or_stream_given__refused(routed, fake):
    with pytest.raises(TypeError, match="policy picks the model"):
        routed.chat.completions.create(task_type="support", messages=MESSAGES, model="gpt-4o")
    with pytest.raises(TypeError, match="streaming"):
        routed.chat.completions.create(task_type="support", messages=MESSAGES, stream=True)
    assert fake.requests == []


def test_async_create__policy_picks_and_429_falls_back(fake):
    from .fakes import FakeServer

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


def test_import_signalbox_client__does_not_import_openai():
    code = "import sys, signalbox_client; assert 'openai' not in sys.modules, 'openai imported'"

    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
