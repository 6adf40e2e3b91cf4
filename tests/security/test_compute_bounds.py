"""Preview, validate and what-if run within a time budget and in a bounded number of compute slots
(controlplane/compute.py): past the budget the caller gets 422 naming the field, with every slot
busy 429 with Retry-After, at once; client policy fetches never wait for either."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.db import connection

from controlplane import compute
from routing.models import PolicyVersion
from signalbox_client.engine.validation import MAX_REGEXES
from tests import factories

pytestmark = pytest.mark.django_db

PREVIEW = "/api/v1/policies/checkout/preview/"
VALIDATE = "/api/v1/policy-document/validate/"
WHATIF = "/api/v1/metrics/whatif/"


def heavy_document() -> dict[str, Any]:
    """A valid document that takes tens of milliseconds to validate and compile: the most regex
    rules a document may hold and long keyword lists."""
    doc = factories.document()
    doc["rules"] = [
        {"id": f"h{i}", "when": {"field": "text", "op": "regex", "value": "^(a+)+$"}, "route": "general"}
        for i in range(MAX_REGEXES)
    ] + [
        {
            "id": f"kw{r}",
            "when": {"field": "text", "op": "contains_any", "value": [f"k{r}-{i}" for i in range(1000)]},
            "route": "general",
        }
        for r in range(5)
    ]
    return doc


@pytest.fixture
def checkout(db: Any) -> Any:
    factories.catalog()
    policy = factories.policy("checkout")
    factories.publish(policy, factories.document())
    PolicyVersion.objects.create(policy=policy, document=heavy_document(), base_number=1)  # a new draft
    return policy


CALLS = [
    pytest.param(
        PREVIEW, lambda: {"request": {"task_type": "chat", "text": "a" * 5000 + "!"}}, "request", id="preview"
    ),
    pytest.param(VALIDATE, lambda: {"document": heavy_document()}, "document", id="validate"),
    pytest.param(
        WHATIF,
        lambda: {"policy": "checkout", "document": heavy_document(), "start": "2026-11-01", "end": "2026-11-30"},
        "document",
        id="whatif",
    ),
]


@pytest.mark.parametrize(("path", "body", "field"), CALLS)
def test_compute__past_its_time_budget__422_naming_the_field_then_the_next_call_runs(
    api: Any, viewer: Any, settings: Any, checkout: Any, path: str, body: Any, field: str
) -> None:
    client = api(viewer)
    settings.API_COMPUTE_TIME_BUDGET_MS = 1

    response = client.post(path, body(), format="json")

    assert response.status_code == 422, response.content
    payload = response.json()
    assert "time budget of 1 ms" in payload["message"]
    assert payload["errors"] == {field: ["too much to compute within 1 ms (API_COMPUTE_TIME_BUDGET_MS): send less"]}
    settings.API_COMPUTE_TIME_BUDGET_MS = 10_000
    again = client.post(path, body(), format="json")
    assert again.status_code == 200, again.content


@pytest.fixture
def held_slot(db: Any) -> Any:
    """Every compute slot taken by another session of the same database (another web worker)."""
    params = connection.get_connection_params()
    other = psycopg.connect(
        dbname=connection.settings_dict["NAME"],
        host=params.get("host"),
        port=params.get("port"),
        user=params.get("user"),
        autocommit=True,
    )
    other.execute("SELECT pg_advisory_lock(%s, 0)", [compute._LOCK_CLASS])
    try:
        yield other
    finally:
        other.close()


@pytest.mark.parametrize(("path", "body", "field"), CALLS)
def test_compute__every_slot_busy__429_with_retry_after_at_once_then_runs_when_free(
    api: Any, viewer: Any, checkout: Any, held_slot: Any, path: str, body: Any, field: str
) -> None:
    client = api(viewer)

    response = client.post(path, body(), format="json")

    assert response.status_code == 429, response.content
    assert response["Retry-After"] == "1"
    assert "already running 1 preview, validation or what-if computation at once" in response.json()["message"]
    held_slot.execute("SELECT pg_advisory_unlock(%s, 0)", [compute._LOCK_CLASS])
    assert client.post(path, body(), format="json").status_code == 200


def test_compute__slot_busy__client_policy_fetch_and_reads_go_on(
    api: Any, viewer: Any, client: Any, checkout: Any, held_slot: Any
) -> None:
    _, key = factories.sdk_key(checkout)

    assert api(viewer).get("/api/v1/policies/checkout/").status_code == 200
    assert client.get("/api/v1/client/policies/checkout", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200


def test_compute__two_slots__a_second_session_holding_one_leaves_the_other(
    api: Any, viewer: Any, settings: Any, checkout: Any, held_slot: Any
) -> None:
    settings.API_COMPUTE_CONCURRENCY = 2

    assert api(viewer).post(VALIDATE, {"document": factories.document()}, format="json").status_code == 200


def test_admin_preview__every_slot_busy__the_page_says_so(
    client: Any, viewer: Any, checkout: Any, held_slot: Any
) -> None:
    client.force_login(viewer)

    response = client.get(
        f"/admin/routing/policy/{checkout.pk}/preview/", {"task_type": "chat", "version": "live", "prompt_tokens": 100}
    )

    assert response.status_code == 200
    assert response.context["result"] is None
    assert "already running 1 preview" in response.context["error"]
