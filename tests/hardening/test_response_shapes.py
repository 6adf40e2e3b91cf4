"""Every GET of the metrics and management API, on a populated month (decisions ingested through the
client endpoint, rollups folded, alerts evaluated), answers exactly what its published OpenAPI schema
says: status, content type and body. Empty lists prove nothing, so each body here carries rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import schemathesis
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from metrics.models import Alert
from metrics.rollups import services as rollups
from routing import services
from signalbox_client import protocol
from tests import factories
from tests.metrics.rules.test_tier_bands_everywhere import document, last_full_month, traffic

pytestmark = pytest.mark.django_db

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def month(client: Any, publisher: Any) -> dict[str, Any]:
    """Policy 'tiers' (one route of four tiers, bands partly declared) with a month of traffic, an
    alert or two, and a publisher's token."""
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    policy = factories.policy("tiers", doc=document(4, "partly"))
    _, secret = factories.sdk_key(policy)
    first = last_full_month(now)
    moments = [datetime(first.year, first.month, 3 + d, 12, tzinfo=UTC) for d in range(20)]
    moments += [now - timedelta(hours=h) for h in range(1, 30, 2)]
    moments += [now - timedelta(days=d, hours=3) for d in range(2, 8)]
    records = traffic(4, moments)
    for start in range(0, len(records), protocol.MAX_BATCH_RECORDS):
        response = client.post(
            protocol.DECISIONS_PATH,
            data=orjson.dumps({"decisions": records[start : start + protocol.MAX_BATCH_RECORDS]}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )
        assert response.status_code == 200
    rollups.rollups_update()
    call_command("alerts_evaluate", "--at", now.isoformat())
    services.draft_save(policy=policy, document=document(4, "declared"), user=None)  # for diff and what-if
    alert = Alert.objects.filter(policy=policy).first()
    assert alert is not None
    token = factories.api_token(publisher)
    return {"policy": policy, "token": token, "first": first, "now": now, "alert_id": alert.pk}


# What a response must match (the fuzz test covers authentication and bad input).
SHAPE_CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def get_operations() -> list[tuple[str, str]]:
    raw = schema.raw_schema["paths"]
    return sorted(
        (path, "GET")
        for path, operations in raw.items()
        if "get" in operations and path.startswith(("/api/v1/metrics/", "/api/v1/policies/", "/api/v1/audit/"))
    )


def test_every_metrics_get__populated_month__body_matches_its_schema(
    month: dict[str, Any],
    _keep_test_connection: None,  # noqa: PT019 - after `month`: fixture order matters here
) -> None:
    # `month` first: Django's test client re-connects the handler `_keep_test_connection` removes.
    span = {"policy": "tiers", "start": month["first"].isoformat(), "end": month["now"].date().isoformat()}
    path_values = {
        "policy": "tiers",
        "month": f"{month['first']:%Y-%m}",
        "slug": "tiers",
        "ref": "1",
        "alert_id": month["alert_id"],
    }
    checked = []
    for path, method in get_operations():
        operation = schema[path][method]
        names = {p.name for p in operation.path_parameters} if operation.path_parameters else set()
        if names - set(path_values):
            continue  # an id (alert, channel) this month has none of
        query = {k: v for k, v in span.items() if path.startswith("/api/v1/metrics/") and "reports" not in path}
        case = operation.Case(path_parameters={n: path_values[n] for n in names}, query=query or None)
        response = case.call(headers={"Authorization": f"Token {month['token']}"})
        assert response.status_code == 200, (path, response.text[:300])
        case.validate_response(response, checks=SHAPE_CHECKS)
        checked.append(path)
    assert {"/api/v1/metrics/escalation/", "/api/v1/metrics/reports/{policy}/{month}/"} <= set(checked)
    assert len(checked) >= 10
