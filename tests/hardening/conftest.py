"""Fixtures of the hardening tests: a policy with draft and versions, a second policy, SDK keys
scoped to each, and the decision-upload helpers of the metrics tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from tests import factories
from tests.metrics.conftest import record

__all__ = ["DECISIONS_URL", "FETCH_URL", "World", "record"]

FETCH_URL = "/api/v1/client/policies/{}"
DECISIONS_URL = "/api/v1/client/decisions"


@dataclass
class World:
    checkout: Any  # published twice, with a draft
    billing: Any  # published once; no key of `secret` reaches it
    key: Any
    secret: str  # scoped to checkout only
    billing_secret: str  # scoped to billing only


@pytest.fixture
def world(db: Any) -> World:
    from routing import services

    checkout = factories.policy("checkout")
    factories.publish(checkout, factories.document(default_route="extraction"))
    services.draft_save(policy=checkout, document=factories.document(default_route="long_context"), user=None)
    billing = factories.policy("billing")
    key, secret = factories.sdk_key(checkout, name="checkout-app")
    _, billing_secret = factories.sdk_key(billing, name="billing-app")
    checkout.refresh_from_db()
    return World(checkout, billing, key, secret, billing_secret)


@pytest.fixture
def fetch(client: Any) -> Callable[..., Any]:
    """fetch(slug, secret, etag=None) -> the response of the client policy fetch."""

    def get(slug: str, secret: str | None, etag: str | None = None, **extra: Any) -> Any:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
        if etag:
            headers["HTTP_IF_NONE_MATCH"] = etag
        return client.get(FETCH_URL.format(slug), **headers, **extra)

    return get


@pytest.fixture
def upload(client: Any) -> Callable[..., Any]:
    """upload(records_or_body, secret) -> the response of the decision upload."""

    def post(payload: Any, secret: str | None, **extra: Any) -> Any:
        body = (
            payload
            if isinstance(payload, bytes)
            else orjson.dumps({"decisions": payload} if isinstance(payload, list) else payload)
        )
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
        extra.setdefault("content_type", "application/json")
        return client.post(DECISIONS_URL, data=body, **headers, **extra)

    return post


def decision_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM metrics_decision")
        return cursor.fetchone()[0]


# -- fault scenarios (tests/hardening/test_faults.py) ----------------------------------------------


@pytest.fixture(scope="module")
def fault_stack() -> Iterator[Any]:
    """A private deployment (PostgreSQL, Redis cache, Redis broker, gunicorn, a Celery worker) on
    free ports in a temp directory, shared by one module's fault scenarios and stopped at its end.
    The machine's shared PostgreSQL and Redis are never touched."""
    from tests.hardening._stack import Stack, missing_binaries

    why = missing_binaries()
    if why:
        pytest.skip(why)
    stack = Stack()
    try:
        stack.start()
        yield stack
    finally:
        stack.close()


@pytest.fixture
def stack(fault_stack: Any) -> Iterator[Any]:
    """The module's private stack, emptied, with PostgreSQL, both Redis servers and gunicorn up."""
    for server in (fault_stack.pg, fault_stack.cache, fault_stack.broker, fault_stack.web):
        if server is not None and not server.running:
            server.start()
    fault_stack.reset()
    yield fault_stack
    if fault_stack.worker is not None:
        fault_stack.worker.stop()


@pytest.fixture
def _keep_test_connection() -> Iterator[None]:
    """The raw WSGI app (schemathesis' `from_wsgi`) closes the database connection after each
    request; the test's transaction lives on it (Django's test client disconnects the same handler)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
