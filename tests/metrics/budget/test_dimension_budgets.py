"""Budgets per dimension value through the public surfaces: the policy document over the management
API (valid, and each invalid field refused with its path), decisions ingested through the client
endpoint until one team crosses its budget, then the client policy fetch's `Signalbox-Budget`,
the budget alerts and the budget page, per value."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse

from metrics.alerts.evaluation import alerts_evaluate
from metrics.models import Alert
from routing.models import AuditEntry, PolicyVersion
from signalbox_client import protocol
from tests import factories
from tests.metrics.conftest import record

pytestmark = pytest.mark.django_db

API = "/api/v1"
POLICY_URL = protocol.POLICY_PATH.format(policy="checkout")

BUDGETS: list[dict[str, Any]] = [
    {"dimension": "team", "value": "search", "daily_usd": 10, "downgrade_at": 0.8},
    {"dimension": "team", "value": "ads", "daily_usd": 10},
    {"dimension": "tenant", "value": "acme", "monthly_usd": 100, "downgrade_at": 0.9},
]
DOCUMENT = factories.document(dimensions=["team", "tenant"], dimension_budgets=BUDGETS)


def _with(budgets: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DOCUMENT)
    doc["dimension_budgets"] = budgets
    return doc


def _one(**changes: Any) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {"dimension": "team", "value": "search", "daily_usd": 10}
    for name, value in changes.items():
        if value is None:
            entry.pop(name)
        else:
            entry[name] = value
    return [entry]


# --- the document over the management API --------------------------------------------------------


def test_draft_save__dimension_budgets__saved_and_published(api: Any, publisher: Any) -> None:
    factories.policy("checkout")

    saved = api(publisher).put(
        f"{API}/policies/checkout/draft/", {"document": DOCUMENT, "expected_revision": None}, format="json"
    )
    published = api(publisher).post(f"{API}/policies/checkout/publish/", {"comment": "team budgets"}, format="json")

    assert saved.status_code == 200, saved.content
    assert published.status_code == 201, published.content
    assert PolicyVersion.objects.get(policy__slug="checkout", number=2).document["dimension_budgets"] == BUDGETS


INVALID = [
    pytest.param(
        _one(dimension="region"),
        "dimension_budgets.0.dimension",
        "'region' is not a declared dimension (list it in 'dimensions')",
        id="undeclared-dimension",
    ),
    pytest.param(
        _one(dimension="client"),
        "dimension_budgets.0.dimension",
        "'client' is a built-in dimension; budgets apply to declared keys",
        id="built-in-dimension",
    ),
    pytest.param(
        _one(daily_usd=None, downgrade_at=0.5),
        "dimension_budgets.0",
        "field 'daily_usd' or 'monthly_usd' is required",
        id="no-period",
    ),
    pytest.param(
        _one(daily_usd=0),
        "dimension_budgets.0.daily_usd",
        "0 is less than or equal to the minimum of 0",
        id="zero-amount",
    ),
    pytest.param(
        _one(daily_usd=None, monthly_usd=-5),
        "dimension_budgets.0.monthly_usd",
        "-5 is less than or equal to the minimum of 0",
        id="negative-amount",
    ),
    pytest.param(
        _one(daily_usd="10"),
        "dimension_budgets.0.daily_usd",
        "expected a number, got a string",
        id="amount-not-a-number",
    ),
    pytest.param(
        _one(downgrade_at=1.2),
        "dimension_budgets.0.downgrade_at",
        "1.2 is greater than the maximum of 1",
        id="downgrade-at-above-1",
    ),
    pytest.param(_one(value=""), "dimension_budgets.0.value", "must not be empty", id="empty-value"),
    pytest.param(_one(value="x" * 65), "dimension_budgets.0.value", "must be at most 64 characters", id="long-value"),
    pytest.param(_one(value=7), "dimension_budgets.0.value", "expected a string, got an integer", id="value-type"),
    pytest.param(
        _one(value="(none)"),
        "dimension_budgets.0.value",
        "'(none)' is a label of the rollups, not an attribute value",
        id="label-value",
    ),
    pytest.param(_one(value=None), "dimension_budgets.0", "field 'value' is required", id="no-value"),
    pytest.param(_one(weekly_usd=3), "dimension_budgets.0", "unknown field 'weekly_usd'", id="unknown-field"),
    pytest.param(
        _one() + _one(daily_usd=None, monthly_usd=50),
        "dimension_budgets.1",
        "duplicate budget for 'team' 'search' (first set at dimension_budgets.0)",
        id="duplicate-value",
    ),
    pytest.param(
        [{"dimension": "team", "value": f"t{i}", "daily_usd": 1} for i in range(protocol.MAX_DIMENSION_BUDGETS + 1)],
        "dimension_budgets",
        f"expected at most {protocol.MAX_DIMENSION_BUDGETS} items, got {protocol.MAX_DIMENSION_BUDGETS + 1}",
        id="too-many-values",
    ),
    pytest.param(
        {"team": {"search": {"daily_usd": 10}}}, "dimension_budgets", "expected an array, got an object", id="shape"
    ),
]


@pytest.mark.parametrize(("budgets", "path", "message"), INVALID)
def test_draft_save__invalid_dimension_budget__400_names_the_field_and_nothing_written(
    api: Any, editor: Any, budgets: Any, path: str, message: str
) -> None:
    factories.policy("checkout")
    before = (
        list(PolicyVersion.objects.order_by("pk").values_list("pk", "revision", "document")),
        AuditEntry.objects.count(),
    )

    response = api(editor).put(f"{API}/policies/checkout/draft/", {"document": _with(budgets)}, format="json")

    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert body["errors"] == {path: [message]}
    assert (
        list(PolicyVersion.objects.order_by("pk").values_list("pk", "revision", "document")),
        AuditEntry.objects.count(),
    ) == before


# --- spend per value: ingest, the policy fetch, alerts, the budget page ---------------------------


@pytest.fixture
def team_over_budget(client: Any, post: Any, django_capture_on_commit_callbacks: Any, settings: Any) -> str:
    """Policy 'checkout' with the budgets above; through the client endpoint, team search spends
    9 USD of its 10 (90%), ads 1 USD, billing (no budget) 40 USD, tenant acme 30 of 100 monthly.
    Returns the SDK key's secret."""
    settings.ROLLUPS_DEBOUNCE_SECONDS = 0
    policy = factories.policy("checkout", doc=DOCUMENT)
    secret = factories.sdk_key(policy)[1]
    now = datetime.now(UTC) - timedelta(seconds=5)
    stamp = now.isoformat().replace("+00:00", "Z")
    records = [
        record(timestamp=stamp, cost_usd=4.5, attributes={"team": "search"}),
        record(timestamp=stamp, cost_usd=4.5, route="general", task_type="chat", attributes={"team": "search"}),
        record(timestamp=stamp, cost_usd=1.0, attributes={"team": "ads", "tenant": "acme"}),
        record(timestamp=stamp, cost_usd=29.0, attributes={"team": "billing", "tenant": "acme"}),
        record(timestamp=stamp, cost_usd=11.0, attributes={"team": "billing"}),
    ]
    with django_capture_on_commit_callbacks(execute=True):  # the ingest queues the rollup update (eager)
        response = post(records, secret)
    assert response.status_code == 200, response.content
    assert [r["status"] for r in response.json()["results"]] == [protocol.ACCEPTED] * len(records)
    return secret


def test_policy_fetch__team_past_its_budget__header_carries_each_value_fraction(client: Any, team_over_budget: str):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {team_over_budget}"}

    fetched = client.get(POLICY_URL, **auth)
    again = client.get(POLICY_URL, HTTP_IF_NONE_MATCH=fetched["ETag"], **auth)

    assert fetched.status_code == 200
    state = json.loads(fetched[protocol.BUDGET_HEADER])
    assert state["dimensions"] == {
        "team": {
            "search": {"daily": pytest.approx(0.9), "monthly": None},
            "ads": {"daily": pytest.approx(0.1), "monthly": None},
        },
        "tenant": {"acme": {"daily": None, "monthly": pytest.approx(0.3)}},
    }
    assert state["routes"]["extraction"]["daily"] == pytest.approx(45.5 / 50), "the route budget as before"
    assert again.status_code == 304
    assert json.loads(again[protocol.BUDGET_HEADER])["dimensions"] == state["dimensions"]


def test_policy_fetch__no_dimension_budgets__header_has_no_dimensions_field(
    client: Any, post: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.ROLLUPS_DEBOUNCE_SECONDS = 0
    policy = factories.policy("checkout", doc=factories.document(dimensions=["team"]))
    secret = factories.sdk_key(policy)[1]
    with django_capture_on_commit_callbacks(execute=True):
        post([record(timestamp=datetime.now(UTC).isoformat(), cost_usd=1.0, attributes={"team": "search"})], secret)

    fetched = client.get(POLICY_URL, HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert set(json.loads(fetched[protocol.BUDGET_HEADER])) == {"as_of", "policy", "routes"}


def test_alerts__team_past_80_percent__threshold_alert_for_that_value_only(team_over_budget: str) -> None:
    alerts_evaluate(at=datetime.now(UTC))

    thresholds = {a.route: a for a in Alert.objects.filter(detector="budget_thresholds")}
    assert "team=search" in thresholds
    search = thresholds["team=search"]
    assert (search.severity, search.status) == ("ticket", "open")
    assert search.summary.startswith("team 'search' budget (daily)")
    assert search.evidence["numbers"]["budget"] == 10
    assert "team=ads" not in thresholds, "10% of its budget"
    assert "tenant=acme" not in thresholds, "30% of its monthly budget"
    burn = {a.route for a in Alert.objects.filter(detector="burn_rate")}
    assert "team=search" in burn, "9 of 10 daily USD in the last hour"
    assert "team=ads" not in burn


def test_alerts__value_budget_removed__its_alert_resolves(team_over_budget: str) -> None:
    from routing.models import Policy

    alerts_evaluate(at=datetime.now(UTC))
    assert Alert.objects.filter(route="team=search", status__in=Alert.ACTIVE).exists()
    factories.publish(Policy.objects.get(slug="checkout"), _with([BUDGETS[1]]))

    alerts_evaluate(at=datetime.now(UTC))

    assert not Alert.objects.filter(route="team=search", status__in=Alert.ACTIVE).exists()


def test_budget_page__dimension_budgets__each_value_spend_and_fractions(
    client: Any, api: Any, make_user: Any, team_over_budget: str
) -> None:
    viewer = make_user("viewer")
    body = api(viewer).get(reverse("metrics-api:budget"), {"policy": "checkout"}).json()
    client.force_login(viewer)
    page = client.get(reverse("dashboards:budget") + "?policy=checkout").content.decode()

    rows = {(r["dimension"], r["value"]): r for r in body["dimensions"]}
    assert list(rows) == [("team", "search"), ("team", "ads"), ("tenant", "acme")]
    search = rows[("team", "search")]
    assert search["today_usd"] == pytest.approx(9.0)
    assert search["daily_fraction"] == pytest.approx(0.9)
    assert search["spent_usd"] == pytest.approx(9.0)
    assert (search["monthly_usd"], search["fraction"], search["downgrade_at"]) == (None, None, 0.8)
    acme = rows[("tenant", "acme")]
    assert (acme["spent_usd"], acme["fraction"], acme["downgrade_at"]) == (
        pytest.approx(30.0),
        pytest.approx(0.3),
        0.9,
    )
    assert acme["projected_usd"] >= 30.0
    assert 'id="budget-dimensions"' in page
    assert "search" in page
    assert "90%" in page


def test_fold__budgeted_value_after_the_daily_cap__kept_under_its_name_and_judged(
    client: Any, post: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.ROLLUPS_DEBOUNCE_SECONDS = 0
    budgets = [{"dimension": "tenant", "value": "acme", "daily_usd": 20}]
    policy = factories.policy("checkout", doc=factories.document(dimensions=["tenant"], dimension_budgets=budgets))
    secret = factories.sdk_key(policy)[1]
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    tail = [
        record(timestamp=stamp, cost_usd=0.001, attributes={"tenant": f"t{i:04d}"})
        for i in range(protocol.DIMENSION_VALUES_PER_DAY)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        post(tail, secret)  # the day's cap is full
    with django_capture_on_commit_callbacks(execute=True):
        post([record(timestamp=stamp, cost_usd=17.0, attributes={"tenant": t}) for t in ("acme", "late")], secret)

    fetched = client.get(POLICY_URL, HTTP_AUTHORIZATION=f"Bearer {secret}")

    state = json.loads(fetched[protocol.BUDGET_HEADER])
    assert state["dimensions"] == {"tenant": {"acme": {"daily": pytest.approx(17 / 20), "monthly": None}}}
    from metrics.rollups import selectors

    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    values = {
        r["dim_value"]
        for r in selectors.dimension_totals(
            policy_id=policy.pk, dim_key="tenant", start=day, end=day + timedelta(days=1)
        )
    }
    assert "acme" in values
    assert "late" not in values, "an unbudgeted value past the cap still folds into (other)"
    assert protocol.DIMENSION_OTHER in values


def test_budget_state_refresh__dimension_budgets__one_query_per_budgeted_dimension(
    db: Any, django_assert_num_queries: Any
) -> None:
    from metrics.budget.state import budget_state_refresh
    from routing import live

    factories.policy("checkout", doc=DOCUMENT)  # budgets on two dimensions

    with django_assert_num_queries(1 + 1 + 2):  # the live documents, the policy's sums, team, tenant
        assert budget_state_refresh() == 1

    assert live.budget_state_read("checkout")["dimensions"]["team"]["search"] == {"daily": 0.0, "monthly": None}
