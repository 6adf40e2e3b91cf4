"""The shared cache (Redis in production) down: the client endpoints keep serving from process
memory and the database, nothing is refused, nothing is lost, and a publish made meanwhile is seen
once the cache answers again."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from routing import live
from tests import factories
from tests.hardening.conftest import World, decision_count, record


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DOWN = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
    }
}


@pytest.fixture
def cache_down(settings: Any) -> Iterator[None]:
    """The shared cache unreachable, checked on every request."""
    settings.LIVE_POLICY_CHECK_SECONDS = 0
    with override_settings(CACHES=DOWN):
        yield


def test_cache_down__policy_fetch__served_200_and_304(world: World, fetch: Any, cache_down: Any) -> None:
    first = fetch("checkout", world.secret)
    assert first.status_code == 200, first.content
    assert fetch("checkout", world.secret, etag=first["ETag"]).status_code == 304
    assert fetch("billing", world.secret).status_code == 404  # scoping does not depend on the cache


def test_cache_down__decision_upload__accepted_and_stored(world: World, upload: Any, cache_down: Any) -> None:
    answer = upload([record(), record()], world.secret)
    assert answer.status_code == 200, answer.content
    assert [r["status"] for r in answer.json()["results"]] == ["accepted", "accepted"]
    assert decision_count() == 2


def test_cache_down__publish_meanwhile__other_processes_serve_it_once_the_cache_returns(
    world: World, fetch: Any, publisher: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Another web process holds the old version through the outage; the publish cannot bump the
    generation token then, yet that process serves the new version once the cache answers."""
    settings.LIVE_POLICY_CHECK_SECONDS = 0
    before = fetch("checkout", world.secret)  # cache up: the entry carries the current token
    with override_settings(CACHES=DOWN):
        assert fetch("checkout", world.secret)["ETag"] == before["ETag"]  # served from memory
        held = live._policies.get("checkout")  # what the other process holds through the outage
        with django_capture_on_commit_callbacks(execute=True):
            factories.publish(world.checkout, factories.document(default_route="long_context"), user=publisher)
        during = fetch("checkout", world.secret)
        assert during.status_code == 200
        assert during["ETag"] != before["ETag"]
        live._policies.set("checkout", held)
    after = fetch("checkout", world.secret)  # the token in the cache never changed
    assert after.status_code == 200
    assert after["ETag"] == during["ETag"]


def test_cache_down__budget_state_held_in_memory__no_longer_sent_until_the_cache_returns(
    world: World, fetch: Any, settings: Any
) -> None:
    """Metrics cannot refresh the state while the cache is down, so the process stops sending the
    one it holds (the client keeps its last state for its own max age) and sends it again after."""
    from datetime import UTC, datetime

    settings.LIVE_POLICY_CHECK_SECONDS = 0
    live.budget_state_write(
        slug="checkout",
        as_of=datetime(2026, 11, 22, 9, 0, tzinfo=UTC),
        state={"policy": {"daily": 0.9, "monthly": 0.2}, "routes": {}},
    )
    before = fetch("checkout", world.secret)
    assert live.BUDGET_HEADER in before.headers
    with override_settings(CACHES=DOWN):
        during = fetch("checkout", world.secret, etag=before["ETag"])
        assert during.status_code == 304
        assert live.BUDGET_HEADER not in during.headers
    after = fetch("checkout", world.secret, etag=before["ETag"])
    assert after[live.BUDGET_HEADER] == before[live.BUDGET_HEADER]
