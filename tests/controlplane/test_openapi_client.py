"""The OpenAPI schema publishes the client protocol's endpoints, described from
`signalbox_client.protocol` (the record schema the server checks and the SDK sends)."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.openapi import oas30
from signalbox_client import protocol

pytestmark = pytest.mark.django_db


def test_schema__lists_the_client_endpoints_with_the_protocol_record(client: Any) -> None:
    schema = client.get("/api/schema/?format=json").json()
    assert "get" in schema["paths"][protocol.POLICY_PATH]
    assert "post" in schema["paths"][protocol.DECISIONS_PATH]
    fetch = schema["paths"][protocol.POLICY_PATH]["get"]
    assert {"200", "304", "401", "404", "429"} <= set(fetch["responses"])
    assert protocol.BUDGET_HEADER in fetch["responses"]["200"]["headers"]
    ingest = schema["paths"][protocol.DECISIONS_PATH]["post"]
    assert {"200", "400", "401", "413", "429"} <= set(ingest["responses"])
    assert schema["components"]["schemas"]["DecisionRecord"] == oas30(protocol.decision_record_schema())
    assert ingest["security"] == [{"sdkKey": []}]


def test_oas30__null_types_become_nullable() -> None:
    assert oas30({"type": ["number", "null"], "exclusiveMaximum": 5}) == {
        "type": "number",
        "nullable": True,
        "maximum": 5,
        "exclusiveMaximum": True,
    }
    assert oas30({"anyOf": [{"type": "string"}, {"type": "null"}]}) == {"type": "string", "nullable": True}
