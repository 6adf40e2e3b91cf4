"""After os.fork() the child starts clean: its own queue, its own threads, no parent records."""

from __future__ import annotations

import os
import threading

import pytest

from signalbox_client import RoutingClient

from .conftest import BASE_URL
from .fakes import KEY, SLUG, FakeServer


def _signalbox_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("signalbox-")}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork__child_forgets_parent_queue_restarts_threads_and_sends_only_its_own():
    server = FakeServer()
    client = RoutingClient(BASE_URL, KEY, SLUG, transport=server.transport(), flush_interval=60, refresh_interval=60)
    assert client.wait_until_ready(2)
    decision = client.decide("support")
    parent_ids = [client.record(decision, outcome="ok", latency_ms=1) for _ in range(3)]
    assert _signalbox_threads() == {"signalbox-refresh", "signalbox-upload"}

    pid = os.fork()
    if pid == 0:  # the child: every check is one bit of the exit status
        status = 0
        try:
            checks = [
                client.stats().queued == 0,  # the parent's records are the parent's to send
                client.ready,  # the policy survives the fork
                _signalbox_threads() == set(),  # the parent's threads do not exist here
            ]
            child_ids = [client.record(client.decide("support"), outcome="ok", latency_ms=2) for _ in range(2)]
            checks.append(_signalbox_threads() == {"signalbox-refresh", "signalbox-upload"})
            checks.append(client.flush(timeout=2))
            checks.append(set(server.accepted) == set(child_ids))
            instance = server.records[child_ids[0]]["client"]["instance"]
            checks.append(instance.endswith(f":{os.getpid()}"))
            client.close(timeout=1)
            status = sum(1 << i for i, ok in enumerate(checks) if not ok)
        except BaseException:
            status = 255
        os._exit(status)

    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0, "child check bits failed"
    assert client.flush(timeout=2)
    assert set(server.accepted) == set(parent_ids)
    assert server.records[parent_ids[0]]["client"]["instance"].endswith(f":{os.getpid()}")
    client.close(timeout=1)
