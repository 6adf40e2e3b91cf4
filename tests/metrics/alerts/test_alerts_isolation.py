"""Alert evaluation that one policy's data cannot stop: records the protocol allows (an escalation
with no attempt at the lower tier) are judged "insufficient data", never a crash, and any failure
of one policy's evaluation is logged, reported by `manage.py alerts_evaluate` and the beat task,
while every other policy is still evaluated."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from metrics.models import Alert
from tests import factories
from tests.metrics.conftest import record

pytestmark = pytest.mark.django_db


def active(policy: Any) -> list[tuple[str, str, str]]:
    return sorted(
        Alert.objects.filter(policy=policy, status__in=Alert.ACTIVE).values_list("detector", "route", "severity")
    )


@pytest.fixture
def two_policies(scoped: tuple[Any, str]) -> tuple[Any, str, Any, str]:
    """(checkout, its key's secret, support, its key's secret): support is evaluated after checkout."""
    checkout, checkout_secret = scoped
    support = factories.policy("support")
    _, support_secret = factories.sdk_key(support, name="support-app")
    return checkout, checkout_secret, support, support_secret


def ingest(post: Callable[..., Any], capture: Any, *batches: tuple[list[dict[str, Any]], str]) -> None:
    """POST each (records, secret) batch to the decisions endpoint, then fold the rollups once (the
    ingest queues rollups_update after commit, eagerly, debounced)."""
    with capture(execute=True):
        for records, secret in batches:
            response = post(records, secret)
            assert response.status_code == 200, response.content
            assert response.json()["accepted"] == len(records)


def escalations_without_first_attempts() -> list[dict[str, Any]]:
    """60 requests that start on tier 1 and 100 second attempts on tier 2 whose first attempt never
    arrived: 100 escalations into tier 2 out of 60 requests that reached tier 1."""
    started = [record() for _ in range(60)]
    orphans = [record(attempt=2, tier=2, model="gpt-4o", outcome="ok") for _ in range(100)]
    return started + orphans


def provider_outage(policy: str) -> list[dict[str, Any]]:
    """60 requests of `policy` in the last hour, every one a provider error: an error spike."""
    return [record(policy=policy, outcome="error") for _ in range(60)]


def test_evaluate__escalations_without_lower_tier_attempts__no_crash_and_next_policy_evaluated(
    two_policies: Any, post: Any, django_capture_on_commit_callbacks: Any
) -> None:
    checkout, checkout_secret, support, support_secret = two_policies
    ingest(
        post,
        django_capture_on_commit_callbacks,
        (escalations_without_first_attempts(), checkout_secret),
        (provider_outage("support"), support_secret),
    )

    out = io.StringIO()
    call_command("alerts_evaluate", stdout=out)

    assert "Evaluated 2 policies" in out.getvalue()
    assert not Alert.objects.filter(policy=checkout, detector="escalation_band").exists()
    assert ("error_spike", "extraction", "page") in active(support)


def test_evaluate__escalations_without_lower_tier_attempts__beat_task_finishes(
    two_policies: Any, post: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from metrics import tasks

    _, checkout_secret, support, support_secret = two_policies
    ingest(
        post,
        django_capture_on_commit_callbacks,
        (escalations_without_first_attempts(), checkout_secret),
        (provider_outage("support"), support_secret),
    )

    result = tasks.alerts_evaluate.delay().get()

    assert result["policies"] == 2
    assert ("error_spike", "extraction", "page") in active(support)


@pytest.fixture
def first_policy_fails(monkeypatch: Any) -> None:
    """A detector raises in the first policy evaluated (checkout, by slug) and works after that."""
    from metrics.alerts.detectors import mix_shift

    checked = mix_shift.DETECTOR.checked  # what the evaluation asks a detector made of checks
    calls: list[int] = []

    def fails_once(context: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("detector bug")
        return checked(context)

    monkeypatch.setattr(mix_shift.DETECTOR, "checked", fails_once)


@pytest.mark.usefixtures("first_policy_fails")
def test_evaluate__one_policy_raises__logged_named_exit_1_and_the_next_policy_still_evaluated(
    two_policies: Any, post: Any, django_capture_on_commit_callbacks: Any, caplog: Any
) -> None:
    """Any exception in one policy's evaluation: that policy is rolled back and reported, the
    others are evaluated as if nothing happened."""
    checkout, checkout_secret, support, support_secret = two_policies
    ingest(
        post,
        django_capture_on_commit_callbacks,
        (provider_outage("checkout"), checkout_secret),
        (provider_outage("support"), support_secret),
    )
    out, err = io.StringIO(), io.StringIO()

    with (
        caplog.at_level(logging.ERROR, logger="metrics.alerts.evaluation"),
        pytest.raises(CommandError, match=r"Evaluation failed for 1 policy: checkout \(") as failed,
    ):
        call_command("alerts_evaluate", stdout=out, stderr=err)

    assert failed.value.returncode == 1
    assert "Evaluated 1 policy" in out.getvalue()
    assert "failed    checkout: RuntimeError: detector bug" in err.getvalue()
    assert active(checkout) == []
    assert ("error_spike", "extraction", "page") in active(support)
    [logged] = [r for r in caplog.records if r.name == "metrics.alerts.evaluation"]
    assert logged.getMessage() == "alert evaluation failed for policy checkout"
    assert logged.exc_info is not None
    assert "RuntimeError: detector bug" in caplog.text


@pytest.mark.usefixtures("first_policy_fails")
def test_evaluate__one_policy_raises__beat_task_finishes_and_evaluates_the_others(
    two_policies: Any, post: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from metrics import tasks

    checkout, checkout_secret, support, support_secret = two_policies
    ingest(
        post,
        django_capture_on_commit_callbacks,
        (provider_outage("checkout"), checkout_secret),
        (provider_outage("support"), support_secret),
    )

    result = tasks.alerts_evaluate.delay().get()

    assert result["policies"] == 1
    assert active(checkout) == []
    assert ("error_spike", "extraction", "page") in active(support)
