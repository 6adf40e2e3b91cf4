"""The client SDK against the real control plane (pytest-django's live_server): fetch, 304,
publish and rollback seen within one refresh interval, and routing on from cache when it's down."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from routing import services
from signalbox_client import RoutingClient
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

INTERVAL = 0.2


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


@pytest.fixture
def checkout() -> Any:
    return factories.policy("checkout")


@pytest.fixture
def secret(checkout: Any) -> str:
    return factories.sdk_key(checkout)[1]


@pytest.fixture
def make_client(live_server: Any, secret: str, tmp_path: Any):
    clients: list[RoutingClient] = []

    def make(url: str | None = None, **options: Any) -> RoutingClient:
        options.setdefault("refresh_interval", INTERVAL)
        options.setdefault("cache_dir", tmp_path / "cache")
        client = RoutingClient(url or live_server.url, secret, "checkout", jitter=0, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=1)


def test_client__first_fetch__decides_with_the_live_version(make_client):
    client = make_client()

    assert client.wait_until_ready(5)

    assert client.policy_version == 1
    decision = client.decide("extraction")
    assert (decision.route, decision.model, decision.tier) == ("extraction", "gpt-4o-mini", 1)
    assert client.decide("chat", context_tokens=400_000).route == "long_context"


def test_client__refresh_with_nothing_new__answered_304(make_client):
    client = make_client()
    client.wait_until_ready(5)

    assert eventually(lambda: client.stats().refresh_not_modified >= 2)
    assert client.stats().refresh_failures == 0


def test_client__publish__new_version_seen_within_one_interval(make_client, checkout):
    client = make_client()
    client.wait_until_ready(5)
    doc = factories.document()
    doc["routes"]["extraction"]["tiers"][0]["model"] = "gemini-1.5-flash"

    factories.publish(checkout, doc)
    published = time.monotonic()

    assert eventually(lambda: client.policy_version == 2, timeout=5)
    assert time.monotonic() - published < INTERVAL * 3
    assert client.decide("extraction").model == "gemini-1.5-flash"


def test_client__rollback__seen_as_a_newer_version_with_the_old_document(make_client, checkout):
    client = make_client()
    client.wait_until_ready(5)
    doc = factories.document()
    doc["routes"]["extraction"]["tiers"][0]["model"] = "gemini-1.5-flash"
    factories.publish(checkout, doc)
    assert eventually(lambda: client.policy_version == 2)

    services.policy_rollback(policy=checkout, to_number=1, user=None, comment="flash misbehaves")

    assert eventually(lambda: client.policy_version == 3)
    assert client.decide("extraction").model == "gpt-4o-mini"


def test_client__server_down__starts_from_disk_cache_and_keeps_deciding(make_client):
    warm = make_client()
    assert warm.wait_until_ready(5)
    warm.close(timeout=1)

    cold = make_client(url="http://127.0.0.1:9")  # nothing listens on the discard port

    assert cold.wait_until_ready(1)
    assert cold.policy_version == 1
    assert cold.decide("extraction").model == "gpt-4o-mini"
    assert eventually(lambda: cold.stats().refresh_failures >= 1)
    assert cold.policy_version == 1


def test_client__revoked_key__keeps_last_document_and_counts_failures(make_client, checkout, settings):
    settings.SDK_KEY_CACHE_SECONDS = 0
    client = make_client()
    client.wait_until_ready(5)
    from routing.models import SdkKey

    for key in SdkKey.objects.all():
        services.sdk_key_revoke(key=key, user=None)

    assert eventually(lambda: client.stats().refresh_failures >= 1)
    assert client.decide("extraction").model == "gpt-4o-mini"


def test_client__outage_then_recovery__every_decision_delivered_exactly_once(make_client, tmp_path):
    """Decisions made while the control plane is down are spooled to disk and delivered once it's back."""
    from metrics.models import Decision
    from signalbox_client import CallResult

    warm = make_client()  # leaves the policy in the disk cache
    assert warm.wait_until_ready(5)
    warm.close(timeout=1)
    spool = tmp_path / "spool"

    down = make_client(url="http://127.0.0.1:9", spool_dir=spool, flush_interval=0.05)
    assert down.wait_until_ready(1)
    calls = iter([CallResult("ok", confidence=0.4), *([CallResult("ok", confidence=0.9)] * 200)])
    results = [down.run("extraction", lambda attempt: next(calls), prompt_tokens=300) for _ in range(40)]
    sent = {a.event_id for r in results for a in r.attempts}
    assert len(sent) == 41, "the first request escalated once: 41 attempts"
    down.close(timeout=1)
    assert down.stats().spooled >= 41
    assert not Decision.objects.exists()

    back = make_client(spool_dir=spool, flush_interval=0.05)
    assert back.wait_until_ready(5)
    assert back.flush(timeout=5)

    assert eventually(lambda: Decision.objects.count() == 41, timeout=10)
    stored = list(Decision.objects.values_list("event_id", flat=True))
    assert {str(e) for e in stored} == sent
    assert len(stored) == len(set(stored)), "nothing delivered twice"
    escalated = Decision.objects.get(attempt=2)
    assert (escalated.tier, escalated.escalated, escalated.model) == (2, True, "gpt-4o")
