"""Start-up: the client routes from its disk cache or bootstrap file when the server is down."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from signalbox_client import RoutingClient, SignalboxNotReady

from .conftest import BASE_URL
from .fakes import KEY, SLUG, FakeServer, body


def down_transport() -> httpx.MockTransport:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    return httpx.MockTransport(refuse)


def write_bootstrap(tmp_path, version: int = 3):
    path = tmp_path / "bootstrap.json"
    path.write_text(json.dumps(body(version)))
    return path


def test_constructor__server_down_no_document__does_not_raise_and_decide_says_not_ready(tmp_path):
    client = RoutingClient(BASE_URL, KEY, SLUG, transport=down_transport(), refresh_interval=0.01, cache_dir=tmp_path)
    try:
        assert client.wait_until_ready(timeout=0.05) is False
        with pytest.raises(SignalboxNotReady):
            client.decide("support")
        with pytest.raises(SignalboxNotReady):
            client.run("support", lambda attempt: "never called")
        assert client.stats().refresh_failures >= 1
    finally:
        client.close(timeout=0)


def test_startup__server_down_with_bootstrap__routes_from_bootstrap(tmp_path, make_client):
    client = make_client(transport=down_transport(), bootstrap_path=write_bootstrap(tmp_path))

    assert client.refresh() == "failed"

    decision = client.decide("support")
    assert (decision.route, decision.model) == ("general", "gpt-4o-mini")
    assert decision.policy_version == 3
    assert client.wait_until_ready(timeout=0) is True


def test_startup__server_down_with_cache__routes_from_last_good_document(tmp_path, make_client):
    server = FakeServer(body(version=5))
    first = make_client(transport=server.transport(), cache_dir=tmp_path)
    assert first.refresh() == "installed"

    second = make_client(transport=down_transport(), cache_dir=tmp_path)

    assert second.policy_version == 5
    assert second.decide("extraction").model == "gpt-4o"
    # The cached ETag is offered to the server, so an unchanged policy costs a 304 only.
    third = make_client(transport=server.transport(), cache_dir=tmp_path)
    assert third.refresh() == "not_modified"
    assert server.gets[-1].headers["if-none-match"] == '"v1"'


def test_startup__bootstrap_newer_than_cache__newer_version_wins(tmp_path, make_client):
    server = FakeServer(body(version=2))
    make_client(transport=server.transport(), cache_dir=tmp_path).refresh()

    client = make_client(
        transport=down_transport(), cache_dir=tmp_path, bootstrap_path=write_bootstrap(tmp_path, version=9)
    )

    assert client.policy_version == 9


def test_startup__corrupt_cache__falls_back_to_bootstrap(tmp_path, make_client):
    (tmp_path / f"{SLUG}.json").write_text("{not json")

    client = make_client(
        transport=down_transport(), cache_dir=tmp_path, bootstrap_path=write_bootstrap(tmp_path, version=4)
    )

    assert client.policy_version == 4


def test_startup__invalid_bootstrap_document__rejected_and_not_ready(tmp_path, make_client):
    path = tmp_path / "bootstrap.json"
    path.write_text(json.dumps(body(document={"schema_version": 1, "routes": {}})))

    client = make_client(transport=down_transport(), bootstrap_path=path)

    assert client.ready is False
    assert client.stats().policy_rejected == 1


def test_cache__written_atomically__a_concurrent_reader_never_sees_a_partial_file(tmp_path, make_client):
    server = FakeServer()
    client = make_client(transport=server.transport(), cache_dir=tmp_path)
    cache_file = tmp_path / f"{SLUG}.json"
    client.refresh()
    # A big body widens the window in which a non-atomic write would be visible half-done.
    padding = {f"pad-{i}": "x" * 200 for i in range(1500)}
    stop = threading.Event()
    bad_reads: list[str] = []

    def read_forever() -> None:
        while not stop.is_set():
            raw = cache_file.read_bytes()
            try:
                json.loads(raw)
            except ValueError:
                bad_reads.append(raw[:40].decode(errors="replace"))

    reader = threading.Thread(target=read_forever)
    reader.start()
    try:
        for version in range(2, 14):
            server.publish(body(version, padding=padding), f'"v{version}"')
            assert client.refresh() == "installed"
    finally:
        stop.set()
        reader.join()

    assert bad_reads == []
    saved = json.loads(cache_file.read_bytes())
    assert saved["etag"] == '"v13"'
    assert saved["body"]["version"] == 13
    assert [p.name for p in tmp_path.iterdir()] == [cache_file.name]  # no temp files left behind
