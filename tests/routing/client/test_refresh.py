"""Policy refresh: 304 keeps, 200 recompiles, failures keep the current document, no going back."""

from __future__ import annotations

import copy
import json
import logging

import httpx
import pytest

from .fakes import DOCUMENT, KEY, FakeServer, body, wait_for


def test_refresh__sends_bearer_key_and_etag__304_keeps_document(server, make_client):
    client = make_client()
    assert client.refresh() == "installed"

    assert client.refresh() == "not_modified"

    assert server.gets[0].headers["authorization"] == f"Bearer {KEY}"
    assert "if-none-match" not in server.gets[0].headers
    assert server.gets[1].headers["if-none-match"] == '"v1"'
    stats = client.stats()
    assert (stats.refresh_ok, stats.refresh_not_modified, stats.policy_version) == (1, 1, 1)


def test_refresh__new_version__recompiled_and_used_by_decide(server, make_client):
    client = make_client()
    client.refresh()
    changed = copy.deepcopy(DOCUMENT)
    changed["task_types"]["support"] = "long"
    server.publish(body(2, changed), '"v2"')

    assert client.refresh() == "installed"

    assert client.decide("support").model == "gemini-1.5-pro"
    assert client.decide("support").policy_version == 2


def test_refresh__older_version__ignored_version_never_goes_backwards(server, make_client):
    server.publish(body(7), '"v7"')
    client = make_client()
    client.refresh()
    stale = copy.deepcopy(DOCUMENT)
    stale["default_route"] = "long"
    server.publish(body(6, stale), '"v6"')

    assert client.refresh() == "stale"

    assert client.policy_version == 7
    assert client.decide("unknown-task").route == "general"
    assert client.stats().refresh_stale == 1


def test_refresh__document_that_fails_to_compile__rejected_old_one_kept(server, make_client):
    client = make_client()
    client.refresh()
    broken = copy.deepcopy(DOCUMENT)
    broken["default_route"] = "no-such-route"
    server.publish(body(2, broken), '"v2"')

    assert client.refresh() == "rejected"

    stats = client.stats()
    assert (stats.policy_version, stats.policy_rejected, stats.refresh_failures) == (1, 1, 1)
    assert client.decide("support").model == "gpt-4o-mini"


def _with(**changes):
    return {**body(2), **changes}


MALFORMED_POLICY_ANSWERS = {
    # name: (content, what refresh() says)
    "not JSON": (b"<html>proxy</html>", "failed"),
    "not UTF-8": (b"\xff\xfe{\x00", "failed"),
    "nested too deeply to parse": (b"[" * 100_000 + b"]" * 100_000, "failed"),
    "null": (b"null", "rejected"),
    "an array": (b'["not", "an", "object"]', "rejected"),
    "no document": (json.dumps({"version": 2, "models": {}}).encode(), "rejected"),
    "document an array": (json.dumps(_with(document=[])).encode(), "rejected"),
    "models an array": (json.dumps(_with(models=[])).encode(), "rejected"),
    "version a string": (json.dumps(_with(version="2")).encode(), "rejected"),
    "version a boolean": (json.dumps(_with(version=True)).encode(), "rejected"),
    "version a float": (json.dumps(_with(version=2.0)).encode(), "rejected"),
    "routes an array": (json.dumps(_with(document={**DOCUMENT, "routes": []})).encode(), "rejected"),
    "tier model a number": (
        json.dumps(
            _with(document={**DOCUMENT, "routes": {**DOCUMENT["routes"], "long": {"tiers": [{"model": 5}]}}})
        ).encode(),
        "rejected",
    ),
}


@pytest.mark.parametrize(("content", "result"), MALFORMED_POLICY_ANSWERS.values(), ids=MALFORMED_POLICY_ANSWERS.keys())
def test_refresh__malformed_body__counted_document_kept_never_raised(server, make_client, content, result):
    client = make_client()
    client.refresh()
    server.policy_faults = [lambda request: httpx.Response(200, content=content)]

    assert client.refresh() == result

    stats = client.stats()
    assert (stats.refresh_ok, stats.refresh_failures) == (1, 1)
    assert stats.policy_rejected == (1 if result == "rejected" else 0)
    assert client.policy_version == 1
    assert client.decide("support").model == "gpt-4o-mini"


@pytest.mark.parametrize(
    "models",
    [
        {"gpt-4o-mini": "not an object"},
        {"gpt-4o-mini": {"provider": 5, "context_window": "big", "supports_tools": "yes"}},
    ],
)
def test_refresh__model_catalog_entry_of_the_wrong_type__treated_as_unknown(server, make_client, models):
    server.publish({**body(1), "models": {**body(1)["models"], **models}}, '"m1"')
    client = make_client()

    assert client.refresh() == "installed"

    decision = client.decide("support", prompt_tokens=10)
    assert (decision.model, decision.provider) == ("gpt-4o-mini", "unknown")
    assert client.run("support", lambda attempt: "fine").response == "fine"


@pytest.mark.parametrize(
    "budget",
    [
        {"routes": {"extraction": {"daily": "0.85"}}},  # a string the engine would compare
        {"policy": {"daily": True}},
        {"policy": 5},
        {"routes": []},
        {"routes": {"extraction": None}},
        "0.85",
    ],
)
def test_refresh__budget_of_the_wrong_type__ignored_decisions_unaffected(server, make_client, budget):
    server.publish(body(1, budget=budget), '"b1"')
    client = make_client()

    assert client.refresh() == "installed"

    decision = client.decide("extraction")
    assert (decision.tier, decision.model) == (2, "gpt-4o")  # the start tier: no budget state
    assert client.run("extraction", lambda attempt: "fine").response == "fine"


def test_refresh__budget_with_unknown_keys__the_known_ones_used(server, make_client):
    server.publish(
        body(
            1,
            budget={
                "routes": {"extraction": {"daily": 0.85, "hourly": 0.1}},
                "currency": "USD",
            },
        ),
        '"b1"',
    )
    client = make_client()

    assert client.refresh() == "installed"

    assert client.decide("extraction").tier == 1  # downgraded: route spend 0.85 >= 0.8


def test_refresh__errors_and_network_failures__counted_and_logged_once_per_status(server, make_client, caplog):
    client = make_client()
    client.refresh()
    server.policy_faults = [401, 401, 404, 503, "timeout", "connect"]

    with caplog.at_level(logging.WARNING, logger="signalbox.client"):
        results = [client.refresh() for _ in range(6)]

    assert results == ["failed"] * 6
    assert client.stats().refresh_failures == 6
    assert client.decide("support").model == "gpt-4o-mini"
    assert sum("answered 401" in r.getMessage() for r in caplog.records) == 1
    assert all(KEY not in r.getMessage() for r in caplog.records)


def test_refresh__unknown_fields_ignored_and_budget_fed_to_state(server, make_client):
    server.publish(
        body(
            1,
            new_field={"anything": True},
            budget={
                "policy": {"daily": 0.4, "monthly": 0.7},
                "routes": {"extraction": {"daily": 0.85, "monthly": None}},
            },
        ),
        '"b1"',
    )
    client = make_client()

    assert client.refresh() == "installed"

    decision = client.decide("extraction")
    assert decision.tier == 1  # start tier 2, downgraded: route spend 0.85 >= downgrade_at 0.8
    assert decision.reason["budget"]["scope"] == "route"
    assert client.decide("extraction", critical=True).tier == 2


def test_background_refresh__picks_up_a_new_version_without_being_asked():
    server = FakeServer()
    from signalbox_client import RoutingClient

    client = RoutingClient(
        "http://signalbox.test",
        KEY,
        "checkout",
        transport=server.transport(),
        refresh_interval=0.01,
        flush_interval=0.01,
    )
    try:
        assert client.wait_until_ready(timeout=2)
        server.publish(body(2), '"v2"')
        assert wait_for(lambda: client.policy_version == 2)
        assert wait_for(lambda: client.stats().refresh_not_modified >= 1)
    finally:
        client.close(timeout=1)
