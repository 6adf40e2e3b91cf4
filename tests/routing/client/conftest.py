"""Fixtures for the client SDK tests: a fake control plane, a fake clock, client factories."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from signalbox_client import RoutingClient

from .fakes import KEY, SLUG, FakeClock, FakeServer

BASE_URL = "http://signalbox.test"


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(server: FakeServer, clock: FakeClock) -> Iterator[Any]:
    """Build RoutingClients on the fake server; no threads unless start=True; closed afterwards."""
    made: list[RoutingClient] = []

    def make(**overrides: Any) -> RoutingClient:
        options: dict[str, Any] = {
            "transport": server.transport(),
            "start": False,
            "clock": clock,
            "sleep": clock.sleep,
            "rng": random.Random(7),
            "flush_interval": 0.01,
            "refresh_interval": 0.01,
        }
        options.update(overrides)
        client = RoutingClient(BASE_URL, KEY, SLUG, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close(timeout=0)
