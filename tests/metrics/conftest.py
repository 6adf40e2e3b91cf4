"""Fixtures for the metrics tests: a policy with an SDK key, record builders, the endpoint."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from tests import factories

URL = "/api/v1/client/decisions"


@pytest.fixture(autouse=True)
def _fresh_metrics_memory() -> Iterator[None]:
    from metrics import partitions, pricing, services

    pricing.forget()
    services.scope_forget()
    partitions.forget()
    yield
    pricing.forget()
    services.scope_forget()
    partitions.forget()


@pytest.fixture
def _truncate_decisions(transactional_db: Any) -> Iterator[None]:
    """Transactional tests commit; the raw table is unmanaged, so Django's flush skips it."""
    yield
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE metrics_decision")


@pytest.fixture
def scoped(db: Any) -> tuple[Any, str]:
    """(policy 'checkout', the secret of an SDK key scoped to it)."""
    policy = factories.policy("checkout")
    _, secret = factories.sdk_key(policy)
    return policy, secret


@pytest.fixture
def scope(scoped: Any) -> tuple[int, frozenset[int]]:
    """(key id, policy ids) of the `scoped` key: what the service takes."""
    from routing.models import SdkKey

    policy, _ = scoped
    return SdkKey.objects.get().pk, frozenset({policy.pk})


def record(**changes: Any) -> dict[str, Any]:
    """A valid decision record for policy 'checkout' (timestamp: an hour ago)."""
    base: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "timestamp": (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "policy": "checkout",
        "policy_version": 1,
        "route": "extraction",
        "task_type": "extraction",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "tier": 1,
        "attempt": 1,
        "request_id": uuid.uuid4().hex,
        "reason": {"route_by": "task_type", "tier_by": "start"},
        "outcome": "ok",
        "confidence": 0.9,
        "tokens_in": 1000,
        "tokens_out": 200,
        "latency_ms": 420.5,
        "client": {"app": "tests", "instance": "host:1", "sdk_version": "0.1.0"},
        "attributes": {"user_tier": "pro"},
    }
    for name, value in changes.items():
        if value is _DROP:
            base.pop(name, None)
        else:
            base[name] = value
    return base


_DROP = object()
DROP = _DROP


@pytest.fixture
def post(client: Any) -> Callable[..., Any]:
    """post(records_or_body, secret) -> the response of the decisions endpoint."""

    def send(payload: Any, secret: str | None, **extra: Any) -> Any:
        body = payload if isinstance(payload, bytes) else orjson.dumps(
            {"decisions": payload} if isinstance(payload, list) else payload)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
        return client.post(URL, data=body, content_type="application/json", **headers, **extra)

    return send
