"""A scriptable stand-in for the control plane's client API, played through httpx.MockTransport."""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

KEY = "sbk_test_secret_key"
SLUG = "checkout"

# The shape of the engine's example policy (docs/policy-document.md): a cheap-first cascade with
# fallbacks, a task-type map, a rule, and a budget-guarded route.
DOCUMENT: dict[str, Any] = {
    "schema_version": 1,
    "default_route": "general",
    "task_types": {"extraction": "extraction", "support": "general"},
    "rules": [
        {
            "id": "long-context",
            "when": {"field": "prompt_tokens", "op": "gt", "value": 100_000},
            "route": "long",
        }
    ],
    "routes": {
        "general": {
            "tiers": [
                {"model": "gpt-4o-mini", "fallbacks": ["claude-3-5-haiku"]},
                {"model": "gpt-4o"},
            ],
            "escalate": {"min_confidence": 0.7, "on_validation_failure": True},
            "fallback_on": ["timeout", "rate_limited", "error"],
        },
        "extraction": {
            "tiers": [{"model": "gpt-4o-mini"}, {"model": "gpt-4o"}],
            "start_tier": 2,
            "budget": {"daily_usd": 50, "downgrade_at": 0.8},
        },
        "long": {"tiers": [{"model": "gemini-1.5-pro"}]},
    },
}

MODELS: dict[str, Any] = {
    "gpt-4o-mini": {
        "provider": "openai",
        "context_window": 128_000,
        "supports_vision": True,
        "supports_tools": True,
        "input_cost_per_mtok": 0.15,
        "output_cost_per_mtok": 0.6,
    },
    "gpt-4o": {
        "provider": "openai",
        "context_window": 128_000,
        "supports_vision": True,
        "supports_tools": True,
        "input_cost_per_mtok": 2.5,
        "output_cost_per_mtok": 10.0,
    },
    "claude-3-5-haiku": {
        "provider": "anthropic",
        "context_window": 200_000,
        "supports_vision": False,
        "supports_tools": True,
        "input_cost_per_mtok": 0.8,
        "output_cost_per_mtok": 4.0,
    },
    "gemini-1.5-pro": {
        "provider": "google",
        "context_window": 2_000_000,
        "supports_vision": True,
        "supports_tools": True,
        "input_cost_per_mtok": 1.25,
        "output_cost_per_mtok": 5.0,
    },
}


def body(version: int = 1, document: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A policy GET answer, as the server sends it."""
    return {
        "policy": SLUG,
        "version": version,
        "published_at": "2026-11-22T06:00:00Z",
        "document": copy.deepcopy(document if document is not None else DOCUMENT),
        "models": copy.deepcopy(MODELS),
        **extra,
    }


class FakeServer:
    """Plays GET /policies/<slug> and POST /decisions.

    ``policy_faults`` and ``post_faults`` are consumed one per request, before the normal answer:
    an int status, a (status, headers) pair, "timeout", "connect", "junk" (200 not JSON),
    or a callable(request) -> httpx.Response.
    """

    def __init__(self, policy: dict[str, Any] | None = None) -> None:
        self.lock = threading.Lock()
        self.policy = policy if policy is not None else body()
        self.etag = '"v1"'
        self.policy_faults: list[Any] = []
        self.post_faults: list[Any] = []
        self.max_records: int | None = None  # above this many records in a batch: 413
        self.reject_ids: set[str] = set()
        self.gets: list[httpx.Request] = []
        self.posts: list[list[dict[str, Any]]] = []  # every batch that reached the handler
        self.accepted: Counter[str] = Counter()
        self.records: dict[str, dict[str, Any]] = {}

    def publish(self, policy: dict[str, Any], etag: str) -> None:
        with self.lock:
            self.policy, self.etag = policy, etag

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def async_transport(self) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            await request.aread()
            return self.handle(request)

        return httpx.MockTransport(handle)

    @property
    def delivered_ids(self) -> list[str]:
        return sorted(self.accepted)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return httpx.Response(401, json={"message": "bad key", "errors": {}})
        if request.method == "GET":
            return self._get(request)
        return self._post(request)

    def _fault(self, faults: list[Any], request: httpx.Request) -> httpx.Response | None:
        with self.lock:
            fault = faults.pop(0) if faults else None
        if fault is None:
            return None
        if fault == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if fault == "junk":
            return httpx.Response(200, content=b"<html>proxy</html>")
        if isinstance(fault, int):
            return httpx.Response(fault, json={"message": "nope", "errors": {}})
        if isinstance(fault, tuple):
            status, headers = fault
            return httpx.Response(status, headers=headers, json={"message": "slow down"})
        return fault(request)

    def _get(self, request: httpx.Request) -> httpx.Response:
        self.gets.append(request)
        fault = self._fault(self.policy_faults, request)
        if fault is not None:
            return fault
        with self.lock:
            policy, etag = self.policy, self.etag
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers={"ETag": etag})
        return httpx.Response(200, headers={"ETag": etag}, json=policy)

    def _post(self, request: httpx.Request) -> httpx.Response:
        fault = self._fault(self.post_faults, request)
        if fault is not None:
            return fault
        records = json.loads(request.content)["decisions"]
        with self.lock:
            self.posts.append(records)
            if self.max_records is not None and len(records) > self.max_records:
                return httpx.Response(413, json={"message": "too large", "errors": {}})
            results = []
            for record in records:
                event_id = record["event_id"]
                if event_id in self.reject_ids:
                    results.append({"event_id": event_id, "status": "rejected", "errors": {"tier": ["bad"]}})
                elif event_id in self.accepted:
                    self.accepted[event_id] += 1
                    results.append({"event_id": event_id, "status": "duplicate"})
                else:
                    self.accepted[event_id] = 1
                    self.records[event_id] = record
                    results.append({"event_id": event_id, "status": "accepted"})
        statuses = Counter(r["status"] for r in results)
        return httpx.Response(
            200,
            json={
                "results": results,
                "accepted": statuses["accepted"],
                "duplicates": statuses["duplicate"],
                "rejected": statuses["rejected"],
            },
        )


class FakeClock:
    """Monotonic time that only moves when told to; ``sleep`` moves it and remembers the wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll a condition set by a background thread; True once it holds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()
