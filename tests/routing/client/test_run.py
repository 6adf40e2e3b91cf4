"""run(), decide() and record(): local decisions, the attempt loop, and the records it leaves."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest

from signalbox_client import (
    OUTCOMES,
    CallResult,
    ProviderError,
    Request,
    classify_exception,
)


class RateLimited(Exception):
    status_code = 429


class ServerError(Exception):
    def __init__(self) -> None:
        super().__init__("boom")
        self.response = type("Response", (), {"status_code": 503})()


@pytest.fixture
def client(make_client):
    client = make_client(app="checkout-api")
    assert client.refresh() == "installed"
    return client


def records_of(client, server) -> list[dict]:
    assert client.flush() is True
    return sorted(server.records.values(), key=lambda r: (r["request_id"], r["attempt"]))


def test_decide__local__never_touches_the_network(client, server):
    requests_before = len(server.gets) + len(server.posts)

    decisions = [client.decide("support", prompt_tokens=10) for _ in range(50)]

    assert len(server.gets) + len(server.posts) == requests_before
    assert {d.model for d in decisions} == {"gpt-4o-mini"}
    assert client.stats().decisions == 50


def test_decide__accepts_a_request_and_applies_rules(client):
    decision = client.decide(Request("support", prompt_tokens=150_000, request_id="req-1"))

    assert (decision.route, decision.model, decision.reason["rule"]) == ("long", "gemini-1.5-pro", "long-context")
    assert decision.request_id == "req-1"


def test_decide__many_threads_during_refreshes__always_a_valid_decision(client, server):
    from .fakes import body

    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(2_000):
                assert client.decide("support").model in {"gpt-4o-mini", "gemini-1.5-pro"}
        except BaseException as exc:  # collected for the main thread
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for version in range(2, 12):
        server.publish(body(version), f'"v{version}"')
        client.refresh()
    for thread in threads:
        thread.join()

    assert errors == []
    assert client.policy_version == 11


def test_run__ok_first_try__one_record_with_every_protocol_field(client, server):
    result = client.run(
        "support",
        lambda attempt: CallResult("answer", confidence=0.9, tokens_in=120, tokens_out=30, cost_usd=0.0004),
        prompt_tokens=120,
        attributes={"tenant": "acme", "beta": True},
    )

    assert (result.response, result.final_outcome, result.model) == ("answer", "ok", "gpt-4o-mini")
    [record] = records_of(client, server)
    assert set(record) == {
        "event_id",
        "timestamp",
        "policy",
        "policy_version",
        "route",
        "task_type",
        "model",
        "provider",
        "tier",
        "attempt",
        "request_id",
        "reason",
        "outcome",
        "confidence",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "latency_ms",
        "client",
        "attributes",
    }
    assert uuid.UUID(record["event_id"]).version == 4
    assert record["timestamp"].endswith("Z")
    assert "T" in record["timestamp"]
    assert (record["policy"], record["policy_version"], record["route"], record["task_type"]) == (
        "checkout",
        1,
        "general",
        "support",
    )
    assert (record["model"], record["provider"], record["tier"], record["attempt"]) == ("gpt-4o-mini", "openai", 1, 1)
    assert (record["outcome"], record["confidence"], record["tokens_in"], record["tokens_out"], record["cost_usd"]) == (
        "ok",
        0.9,
        120,
        30,
        0.0004,
    )
    assert record["reason"] == {"route_by": "task_type", "tier_by": "start"}
    assert record["latency_ms"] >= 0
    assert record["client"]["app"] == "checkout-api"
    assert record["client"]["sdk_version"]
    assert record["attributes"] == {"tenant": "acme", "beta": True}
    assert record["request_id"] == result.request_id


def test_run__low_confidence__escalates_to_next_tier(client, server):
    confidences = {"gpt-4o-mini": 0.4, "gpt-4o": 0.95}

    result = client.run("support", lambda a: CallResult(a.model, confidence=confidences[a.model]))

    assert result.response == "gpt-4o"
    assert [(a.model, a.kind, a.outcome) for a in result.attempts] == [
        ("gpt-4o-mini", "initial", "low_confidence"),
        ("gpt-4o", "escalate", "ok"),
    ]
    first, second = records_of(client, server)
    assert first["request_id"] == second["request_id"] == result.request_id
    assert (first["outcome"], second["attempt"], second["tier"]) == ("low_confidence", 2, 2)
    assert second["reason"]["trigger"] == "low_confidence"


def test_run__split_route__every_attempt_carries_the_arm(client, server):
    """The control plane counts escalations and retries under the arm the request was split to."""
    import copy

    from .fakes import DOCUMENT, body

    document = copy.deepcopy(DOCUMENT)
    document["routes"]["general"]["split"] = {
        "key": "request_id",
        "arms": [{"name": "control", "weight": 50}, {"name": "canary", "weight": 50}],
    }
    server.publish(body(2, document), '"v2"')
    assert client.refresh() == "installed"
    confidences = {"gpt-4o-mini": 0.4, "gpt-4o": 0.95}

    result = client.run(
        Request("support", request_id="r-7"), lambda a: CallResult(a.model, confidence=confidences[a.model])
    )

    first, second = records_of(client, server)
    assert second["attempt"] == 2
    assert second["reason"]["trigger"] == "low_confidence"
    assert result.attempts[1].kind == "escalate"
    assert second["reason"]["split"] == first["reason"]["split"]
    assert first["reason"]["split"]["arm"] in ("control", "canary")


def test_run__validation_failure__escalates(client, server):
    result = client.run(
        "support", lambda a: {"model": a.model}, validate=lambda response: response["model"] == "gpt-4o"
    )

    assert [a.outcome for a in result.attempts] == ["validation_failed", "ok"]
    assert result.response == {"model": "gpt-4o"}
    assert [r["outcome"] for r in records_of(client, server)] == ["validation_failed", "ok"]


def test_run__rate_limited__falls_back_to_the_next_provider(client, server):
    def call(attempt):
        if attempt.provider == "openai":
            raise RateLimited("429")
        return "from anthropic"

    result = client.run("support", call)

    assert result.response == "from anthropic"
    assert [(a.model, a.kind, a.outcome) for a in result.attempts] == [
        ("gpt-4o-mini", "initial", "rate_limited"),
        ("claude-3-5-haiku", "fallback", "ok"),
    ]
    assert [r["provider"] for r in records_of(client, server)] == ["openai", "anthropic"]


def test_run__every_attempt_raises__callers_last_exception_reraised_attempts_logged(client, server):
    seen = []

    def call(attempt):
        seen.append(attempt.model)
        raise TimeoutError(attempt.model)

    with pytest.raises(TimeoutError, match="claude-3-5-haiku"):
        client.run("support", call)

    assert seen == ["gpt-4o-mini", "claude-3-5-haiku"]
    assert [r["outcome"] for r in records_of(client, server)] == ["timeout", "timeout"]


def test_run__last_attempt_raises_after_an_answer__earlier_answer_returned(client):
    def call(attempt):
        if attempt.tier == 1:
            return CallResult("weak", confidence=0.1)
        raise ServerError()

    result = client.run("support", call)

    assert (result.response, result.final_outcome) == ("weak", "error")
    assert [(a.tier, a.outcome) for a in result.attempts] == [(1, "low_confidence"), (2, "error")]
    assert isinstance(result.attempts[-1].error, ServerError)


def test_run__validate_raising__counted_as_validation_failure(client):
    def validate(response):
        raise KeyError("missing")

    result = client.run("support", lambda a: a.tier, validate=validate)

    assert [a.outcome for a in result.attempts] == ["validation_failed", "validation_failed"]


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (httpx.ReadTimeout("slow"), "timeout"),
        (TimeoutError(), "timeout"),
        (RateLimited(), "rate_limited"),
        (ServerError(), "error"),
        (ValueError("bad"), "error"),
        (ProviderError("rate_limited"), "rate_limited"),
        (ProviderError("validation_failed"), "validation_failed"),
    ],
)
def test_classify_exception__maps_caller_errors_to_outcomes(exc, outcome):
    assert classify_exception(exc) == outcome


def test_record__caller_runs_the_loop__records_follow_the_steps(client, server):
    decision = client.decide("support", request_id="r-42")
    first = client.record(decision, outcome="rate_limited", latency_ms=30)
    step = client.next_step(decision, attempt=1, outcome="rate_limited", elapsed_ms=30)
    second = client.record(decision, outcome="ok", latency_ms=80, attempt=2, step=step, confidence=1.7, tokens_in=-5)

    assert step is not None
    assert step.kind == "fallback"
    by_id = {r["event_id"]: r for r in records_of(client, server)}
    assert by_id[first]["model"] == "gpt-4o-mini"
    assert (by_id[second]["model"], by_id[second]["attempt"], by_id[second]["request_id"]) == (
        "claude-3-5-haiku",
        2,
        "r-42",
    )
    assert (by_id[second]["confidence"], by_id[second]["tokens_in"]) == (1.0, 0)  # clamped
    with pytest.raises(ValueError, match="outcome must be one of"):
        client.record(decision, outcome="meh", latency_ms=1)
    assert "meh" not in OUTCOMES


def test_record__attributes_kept_small_and_flat(client, server):
    decision = client.decide("support")
    attributes = {"nested": {"a": 1}, "nan": float("nan"), "none": None} | {f"k{i}": i for i in range(30)}

    client.record(decision, outcome="ok", latency_ms=1, attributes=attributes)

    [record] = records_of(client, server)
    # The first 20 kept in order; None skipped; anything not a JSON scalar sent as its str().
    assert record["attributes"] == {"nested": "{'a': 1}", "nan": "nan"} | {f"k{i}": i for i in range(18)}


def test_logs__never_contain_the_key_or_prompt_text(make_client, server, caplog):
    import logging

    server.post_faults = [400, 500]
    client = make_client()
    with caplog.at_level(logging.DEBUG, logger="signalbox.client"):
        client.refresh()
        client.run("support", lambda a: "ok", text="my secret prompt about tax fraud")
        client.flush(timeout=60)
        client.run("support", lambda a: "ok", text="my secret prompt about tax fraud")
        client.flush(timeout=60)

    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "answered 400" in text  # the failures were logged, just not the secrets
    assert "secret prompt" not in text
    assert "sbk_test" not in text
    assert len(server.records) == 1  # the first batch was dropped (400), the second retried (500)
    assert "secret prompt" not in str(server.records)
