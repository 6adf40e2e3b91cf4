"""Alert evaluation and lifecycle through `manage.py alerts_evaluate`: synthetic hourly rollups with
an injected change open an alert naming the right route, clean streams open none, and alerts go
open → acknowledged → resolved (by hand or automatically), one active per detector and route."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from metrics.alerts import lifecycle
from metrics.alerts.evaluation import alerts_evaluate
from metrics.models import Alert, AlertEvent, RollupHourly
from tests import factories

AT = datetime(2025, 3, 20, 12, 30, tzinfo=UTC)


def _binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(1 for _ in range(n) if rng.random() < p)


def stream(
    policy: Any,
    *,
    at: datetime = AT,
    hours: int = 8 * 24 + 1,
    seed: int = 1,
    route: str = "extraction",
    per_hour: int = 100,
    escalation: float = 0.25,
    pass_rate: float = 0.96,
    failures: float = 0.01,
    cost_per_request: float = 0.003,
    change_hours: int = 0,
    change: dict[str, float] | None = None,
) -> None:
    """Hourly rollup cells of one route: `hours` hours ending with the hour holding `at`.

    Per hour: `per_hour` requests on tier 1 split over two task types; a share fails at the
    provider, a share escalates to tier 2, a share of the rest fails validation (1 − pass_rate);
    cost and latency with noise. In the last `change_hours` hours the rates in `change` replace
    these (escalation, pass_rate, failures, cost_per_request).
    """
    rng = random.Random(seed)
    end = at.replace(minute=0, second=0, microsecond=0)
    cells = []
    for i in range(hours - 1, -1, -1):
        hour = end - timedelta(hours=i)
        p = {
            "escalation": escalation,
            "pass_rate": pass_rate,
            "failures": failures,
            "cost_per_request": cost_per_request,
        }
        if i < change_hours:
            p.update(change or {})
        n = max(1, per_hour + rng.randint(-10, 10))
        for task_type, share in (("extraction", 0.7), ("invoice", 0.3)):
            requests = _binomial(rng, n, share)
            if requests == 0:
                continue
            failed = _binomial(rng, requests, p["failures"])
            escalated = _binomial(rng, requests - failed, p["escalation"])
            bad = _binomial(rng, requests - failed - escalated, 1 - p["pass_rate"])
            first_ok = requests - failed - escalated - bad
            third = _binomial(rng, escalated, 0.07)  # the route expects 5–10% of tier 2 to reach tier 3
            second_ok = _binomial(rng, escalated - third, min(1.0, p["pass_rate"] + 0.03))
            unit = p["cost_per_request"] * rng.uniform(0.9, 1.1)
            common = {
                "policy_id": policy.pk,
                "hour": hour,
                "policy_version": 1,
                "route": route,
                "task_type": task_type,
                "provider": "openai",
            }
            cells.append(
                RollupHourly(
                    **common,
                    model="gpt-4o-mini",
                    tier=1,
                    outcome="ok",
                    count=first_ok,
                    requests=first_ok,
                    cost_usd=Decimal(str(round(unit * first_ok, 9))),
                    latency_b5=first_ok - first_ok // 20,
                    latency_b6=first_ok // 20,
                )
            )
            cells.append(
                RollupHourly(
                    **common,
                    model="gpt-4o-mini",
                    tier=1,
                    outcome="low_confidence",
                    count=escalated,
                    requests=escalated,
                    cost_usd=Decimal(str(round(unit * escalated * 0.5, 9))),
                    latency_b5=escalated,
                )
            )
            cells.append(
                RollupHourly(
                    **common,
                    model="gpt-4o-mini",
                    tier=1,
                    outcome="validation_failed",
                    count=bad,
                    requests=bad,
                    cost_usd=Decimal(str(round(unit * bad, 9))),
                    latency_b5=bad,
                )
            )
            if failed:
                cells.append(
                    RollupHourly(
                        **common,
                        model="gpt-4o-mini",
                        tier=1,
                        outcome="error",
                        count=failed,
                        requests=failed,
                        latency_b7=failed,
                    )
                )
            if escalated:
                cells.append(
                    RollupHourly(
                        **common,
                        model="gpt-4o",
                        tier=2,
                        outcome="ok",
                        count=second_ok,
                        escalations=second_ok,
                        cost_usd=Decimal(str(round(unit * second_ok * 0.5, 9))),
                        latency_b6=second_ok,
                    )
                )
                failed_2 = escalated - third - second_ok
                cells.append(
                    RollupHourly(
                        **common,
                        model="gpt-4o",
                        tier=2,
                        outcome="validation_failed",
                        count=failed_2,
                        escalations=failed_2,
                        latency_b6=failed_2,
                    )
                )
                cells.append(
                    RollupHourly(
                        **common,
                        model="gpt-4o",
                        tier=2,
                        outcome="low_confidence",
                        count=third,
                        escalations=third,
                        latency_b6=third,
                    )
                )
                cells.append(
                    RollupHourly(
                        **common,
                        model="o1",
                        tier=3,
                        outcome="ok",
                        count=third,
                        escalations=third,
                        cost_usd=Decimal(str(round(unit * third, 9))),
                        latency_b6=third,
                    )
                )
    RollupHourly.objects.bulk_create([c for c in cells if c.count])


def evaluate(*args: str, at: datetime = AT) -> str:
    out = io.StringIO()
    call_command("alerts_evaluate", "--at", at.isoformat(), *args, stdout=out)
    return out.getvalue()


def active(policy: Any) -> list[tuple[str, str, str]]:
    return sorted(
        Alert.objects.filter(policy=policy, status__in=Alert.ACTIVE).values_list("detector", "route", "severity")
    )


@pytest.fixture
def checkout(db: Any) -> Any:
    return factories.policy("checkout")


# ------------------------------------------------------------------------------------ detection


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_evaluate__clean_stream__opens_no_alert(checkout: Any, seed: int) -> None:
    stream(checkout, seed=seed)
    output = evaluate()
    assert active(checkout) == []
    assert "0 opened" in output


@pytest.mark.parametrize(
    ("change", "detector", "severity"),
    [
        ({"escalation": 0.45}, "escalation_band", "ticket"),
        ({"pass_rate": 0.80}, "pass_rate_drop", "ticket"),
        ({"cost_per_request": 0.006}, "cost_per_request_regression", "ticket"),
        ({"failures": 0.4}, "error_spike", "page"),
    ],
)
def test_evaluate__injected_change__opens_one_alert_naming_the_route(
    checkout: Any, change: dict[str, float], detector: str, severity: str
) -> None:
    other = factories.policy("other")
    stream(checkout, change_hours=24 if detector != "error_spike" else 2, change=change)
    stream(other, seed=9)  # a clean policy next to it stays quiet

    output = evaluate()

    alert = Alert.objects.get(policy=checkout, detector=detector)
    assert (alert.route, alert.severity, alert.status) == ("extraction", severity, "open")
    assert alert.summary.startswith("route extraction: ")
    assert alert.evidence["window"]
    assert alert.evidence["test"]
    assert alert.evidence["numbers"]
    assert f"opened    #{alert.pk} checkout/extraction {detector} [{severity}]" in output
    assert active(other) == []
    assert list(alert.events.values_list("kind", "actor_label")) == [("opened", "system")]


def test_evaluate__pass_rate_under_expected_minimum_without_baseline_change__alert_states_the_minimum(
    checkout: Any,
) -> None:
    stream(checkout, hours=48, pass_rate=0.80)
    evaluate()
    alert = Alert.objects.get(policy=checkout, detector="pass_rate_drop")
    assert alert.evidence["check"] == "against expected minimum"
    assert "expected minimum 95.0%" in alert.summary


def test_evaluate__latency_over_route_p95_budget__ticket(checkout: Any) -> None:
    doc = factories.document()
    doc["routes"]["extraction"]["expectations"]["latency_p95_ms"] = 900
    factories.publish(checkout, doc)
    stream(checkout)
    evaluate()
    alert = Alert.objects.get(policy=checkout, detector="latency_p95_regression")
    assert (alert.route, alert.evidence["check"]) == ("extraction", "against p95 budget")


def test_evaluate__route_budget_spent_past_80_percent__ticket_then_page_at_100(checkout: Any) -> None:
    # extraction's budget: $50 a day. 100 requests an hour at $0.03 each is $3/h.
    at = AT.replace(hour=14)
    stream(checkout, hours=15, at=at, cost_per_request=0.03)
    evaluate(at=at)  # 15 h today ≈ $45: past 80%, burn 1.4× (no burn alert)
    alert = Alert.objects.get(policy=checkout, detector="budget_thresholds", route="extraction")
    assert alert.severity == "ticket"
    assert alert.evidence["check"] == "daily"
    assert not Alert.objects.filter(detector="burn_rate").exists()

    later = at + timedelta(hours=3)
    stream(checkout, hours=3, at=later, seed=5, cost_per_request=0.03)  # 18 h ≈ $53
    output = evaluate(at=later)
    alert.refresh_from_db()
    assert (alert.severity, alert.status) == ("page", "open")
    assert "escalated" in output
    assert [e.kind for e in alert.events.all()] == ["opened", "escalated"]


def test_evaluate__spend_spike__burn_rate_pages_on_the_policy_budget(checkout: Any) -> None:
    factories.publish(checkout, factories.document(budget={"monthly_usd": 1000}))
    stream(checkout, hours=72, cost_per_request=0.001)
    # Another route spends $30/h for the last 2 h against $1000 / 31 days = $1.34/h: over the
    # trailing hour (half of 11:00, 12:00 until 12:30) burn ≈ 33× (page above 14.4).
    stream(checkout, hours=2, seed=3, route="burst", cost_per_request=0.3)
    evaluate()
    alert = Alert.objects.get(policy=checkout, detector="burn_rate")
    assert (alert.route, alert.severity) == ("", "page")
    assert "policy budget (monthly)" in alert.summary


# ------------------------------------------------------------------------------------ lifecycle


def test_lifecycle__still_firing__one_active_alert_and_no_new_event(checkout: Any) -> None:
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    evaluate()
    output = evaluate(at=AT + timedelta(minutes=5))
    alert = Alert.objects.get(policy=checkout, detector="escalation_band")
    assert alert.events.count() == 1
    assert alert.last_evaluated_at == AT + timedelta(minutes=5)
    assert "0 opened" in output
    assert "0 escalated" in output


def test_evaluate__quiet_routes__add_no_query_and_each_active_alert_one(
    checkout: Any, django_assert_num_queries: Any
) -> None:
    """Per policy: its row lock, three rollup reads and its active alerts; a route adds a query only
    through an alert that is active (its refresh); the delivery sweep is one query per run."""
    for i in range(2):
        stream(checkout, route=f"quiet{i}", seed=i)
    # the live policies; in a savepoint: the policy's lock, route totals, the slow-drift series, hourly
    # spend (the policy has a budget), active alerts; the delivery sweep
    with django_assert_num_queries(9):
        alerts_evaluate(at=AT)
    for i in range(2, 6):
        stream(checkout, route=f"quiet{i}", seed=i)
    with django_assert_num_queries(9):
        alerts_evaluate(at=AT)
    stream(checkout, route="drifting", seed=7, change_hours=24, change={"escalation": 0.45})
    evaluate()
    with django_assert_num_queries(10):  # + the still-firing alert's refresh
        alerts_evaluate(at=AT + timedelta(minutes=5))


def test_lifecycle__back_in_band__resolved_automatically_with_history(checkout: Any) -> None:
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    evaluate()
    # The next day's traffic is back at 25%: the last 24 h are clean again.
    stream(checkout, hours=24, at=AT + timedelta(days=1), seed=11)
    output = evaluate(at=AT + timedelta(days=1))
    alert = Alert.objects.get(policy=checkout, detector="escalation_band")
    assert alert.status == "resolved"
    assert alert.resolved_at == AT + timedelta(days=1)
    assert [e.kind for e in alert.events.all()] == ["opened", "resolved"]
    assert alert.events.last().note.startswith("Resolved automatically")
    assert f"resolved  #{alert.pk}" in output


def test_lifecycle__insufficient_data__keeps_the_alert_open(checkout: Any) -> None:
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    evaluate()
    # Two days later with no traffic at all: no opinion, so nothing resolves.
    evaluate(at=AT + timedelta(days=2))
    alert = Alert.objects.get(policy=checkout, detector="escalation_band")
    assert alert.status == "open"
    assert alert.last_evaluated_at == AT + timedelta(days=2)


def test_lifecycle__fires_again_after_resolution__same_alert_reopened(checkout: Any, editor: Any) -> None:
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    evaluate()
    alert = Alert.objects.get(policy=checkout, detector="escalation_band")
    lifecycle.alert_resolve(alert=alert, user=editor, note="tuned the threshold")
    output = evaluate(at=AT + timedelta(minutes=5))
    alert.refresh_from_db()
    assert alert.status == "open"
    assert alert.resolved_at is None
    assert [e.kind for e in alert.events.all()] == ["opened", "resolved", "reopened"]
    assert Alert.objects.filter(policy=checkout, detector="escalation_band").count() == 1
    assert "reopened" in output


def test_lifecycle__acknowledge_then_resolve__history_with_actor_and_note(checkout: Any, editor: Any) -> None:
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    evaluate()
    alert = Alert.objects.get(policy=checkout, detector="escalation_band")
    lifecycle.alert_acknowledge(alert=alert, user=editor, note="looking at the new prompt")
    lifecycle.alert_resolve(alert=alert, user=editor, note="prompt reverted")
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by, alert.resolved_by) == ("resolved", editor, editor)
    assert [(e.kind, e.actor_label, e.note) for e in alert.events.all()] == [
        ("opened", "system", ""),
        ("acknowledged", editor.username, "looking at the new prompt"),
        ("resolved", editor.username, "prompt reverted"),
    ]


def test_lifecycle__second_active_alert_for_same_detector_and_route__refused_by_the_database(checkout: Any) -> None:
    fields = {
        "policy": checkout,
        "route": "extraction",
        "detector": "escalation_band",
        "severity": "ticket",
        "summary": "s",
        "opened_at": AT,
        "last_evaluated_at": AT,
    }
    Alert.objects.create(**fields, status="acknowledged")
    Alert.objects.create(**fields, status="resolved")  # any number of resolved ones
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(**fields, status="open")


def test_lifecycle__route_removed_from_policy__its_alert_resolves(checkout: Any) -> None:
    stream(checkout, change_hours=24, change={"escalation": 0.45}, route="legacy")
    evaluate()
    assert ("escalation_band", "legacy", "ticket") in active(checkout)
    RollupHourly.objects.filter(route="legacy").delete()
    evaluate(at=AT + timedelta(minutes=5))
    assert active(checkout) == []
    assert (
        AlertEvent.objects.filter(alert__route="legacy", kind="resolved")
        .get()
        .note.endswith("no longer in the live policy.")
    )


# ------------------------------------------------------------------------------------- command


def test_command__unknown_policy_or_naive_time__refused_by_name(checkout: Any) -> None:
    with pytest.raises(CommandError, match="--policy: no policy 'nope'"):
        call_command("alerts_evaluate", "--policy", "nope")
    with pytest.raises(CommandError, match="--at: give a time zone"):
        call_command("alerts_evaluate", "--at", "2025-03-20T12:00:00")
    with pytest.raises(CommandError, match="--at: 'soon' is not"):
        call_command("alerts_evaluate", "--at", "soon")


def test_command__one_policy__evaluates_only_that_one(checkout: Any) -> None:
    other = factories.policy("other")
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    stream(other, change_hours=24, change={"escalation": 0.45})
    output = evaluate("--policy", "other")
    assert "Evaluated 1 policy" in output
    assert active(checkout) == []
    assert active(other) == [("escalation_band", "extraction", "ticket")]


def test_task__scheduled_by_beat__evaluates_now(checkout: Any, settings: Any) -> None:
    from django.utils import timezone

    from metrics import tasks

    assert settings.CELERY_BEAT_SCHEDULE["metrics-alerts-evaluate"] == {
        "task": "metrics.alerts_evaluate",
        "schedule": settings.ALERTS_EVALUATE_SECONDS,
    }
    stream(checkout, at=timezone.now(), change_hours=24, change={"escalation": 0.45})
    assert tasks.alerts_evaluate.delay().get() == {"policies": 1, "opened": 1, "resolved": 0}
    assert active(checkout) == [("escalation_band", "extraction", "ticket")]


def test_lifecycle__forecast_alert_on_the_first_day_of_a_month__kept_open_without_opinion(checkout: Any) -> None:
    alert = Alert.objects.create(
        policy=checkout,
        route="extraction",
        detector="budget_forecast",
        severity="ticket",
        summary="forecast over",
        evidence={"check": "monthly"},
        opened_at=AT,
        last_evaluated_at=AT,
    )
    first_hour = datetime(2025, 4, 1, 1, 0, tzinfo=UTC)
    evaluate(at=first_hour)
    alert.refresh_from_db()
    assert (alert.status, alert.last_evaluated_at) == ("open", first_hour)
    evaluate(at=first_hour + timedelta(days=1))  # a day of (no) spend: the forecast is back under budget
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert alert.events.get().note == "Resolved automatically: back within limits."


@pytest.mark.django_db(transaction=True)
def test_lifecycle__acknowledged_while_an_evaluation_runs__acknowledgement_kept(
    make_user: Any, monkeypatch: Any
) -> None:
    """An editor acknowledges the alert while the evaluator holds its copy: the acknowledgement
    waits for the evaluation, then succeeds (no deadlock) and is not overwritten by it."""
    import threading

    from django.db import connection

    checkout = factories.policy("checkout")
    editor = make_user("editor")
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    evaluate()
    alert = Alert.objects.get(policy=checkout, detector="escalation_band")
    outcome: list[Any] = []

    def acknowledge() -> None:
        try:
            outcome.append(lifecycle.alert_acknowledge(alert=alert, user=editor, note="on it"))
        except Exception as exc:  # reported by the assertion below
            outcome.append(exc)
        finally:
            connection.close()

    racer = threading.Thread(target=acknowledge)
    record = lifecycle.alert_record

    def record_while_acknowledged(**kwargs: Any) -> Any:
        if not racer.is_alive() and not outcome:
            racer.start()
            racer.join(timeout=1.0)  # done at once unless the row is locked
        return record(**kwargs)

    monkeypatch.setattr(lifecycle, "alert_record", record_while_acknowledged)
    evaluate(at=AT + timedelta(minutes=5))
    racer.join(timeout=10)

    assert [type(o).__name__ for o in outcome] == ["Alert"], outcome
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by, alert.last_evaluated_at) == (
        "acknowledged",
        editor,
        AT + timedelta(minutes=5),
    )
