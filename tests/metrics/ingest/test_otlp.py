"""POST /v1/traces: OpenTelemetry GenAI spans exported by the stock OTLP/HTTP exporter become
decision records, priced from the catalog, on the cost dashboard; replays are stored once; bad
spans are named in the partial success; malformed bodies get 400 with the reason."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from django.urls import reverse
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from metrics.models import Decision
from metrics.rollups.services import rollups_update
from signalbox_client.protocol import KEY_HEADER, OTLP_TRACES_PATH
from tests import factories

# gpt-4o-mini in the demo catalog: 0.15 USD per million input tokens, 0.60 per million output.
PRICE_1000_IN_200_OUT = Decimal("0.00027")


def genai_spans(*attribute_sets: dict[str, Any], error: bool = False) -> list[ReadableSpan]:
    """Finished spans, one per attribute set, made by the OpenTelemetry SDK."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "billing-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests")
    for attributes in attribute_sets:
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes=attributes) as span:
            if error:
                span.set_status(Status(StatusCode.ERROR, "rate limit"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def chat(**more: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 200,
        **more,
    }


# -- the stock exporter against a live server --------------------------------------------------------


@pytest.fixture
def live_key(live_server: Any, transactional_db: Any) -> Iterator[tuple[str, str]]:
    """(the live server's /v1/traces URL, an SDK key scoped to the published policy 'checkout')."""
    from django.db import connection

    policy = factories.policy("checkout")
    yield live_server.url + OTLP_TRACES_PATH, factories.sdk_key(policy)[1]
    with connection.cursor() as cursor:  # the raw table is unmanaged: the flush skips it
        cursor.execute("TRUNCATE metrics_decision")


def test_otlp__stock_exporter__spans_on_the_cost_dashboard_at_the_catalog_price(live_key, api, viewer):
    url, secret = live_key
    exporter = OTLPSpanExporter(endpoint=url, headers={KEY_HEADER: secret}, compression=Compression.Gzip)
    spans = genai_spans(
        chat(**{"signalbox.route": "support", "signalbox.task_type": "billing"}),
        chat(**{"signalbox.route": "support", "signalbox.task_type": "billing", "signalbox.tier": 2}),
    )

    assert exporter.export(spans) == SpanExportResult.SUCCESS

    stored = Decision.objects.order_by("tier")
    assert [(d.route, d.task_type, d.model, d.provider, d.tier) for d in stored] == [
        ("support", "billing", "gpt-4o-mini", "openai", 1),
        ("support", "billing", "gpt-4o-mini", "openai", 2),
    ]
    assert [d.cost_usd for d in stored] == [PRICE_1000_IN_200_OUT] * 2
    assert stored[0].client_app == "billing-bot"
    assert stored[0].policy_version == 1, "the live version when the span names none"
    assert stored[0].attributes == {"gen_ai.response.model": "gpt-4o-mini-2024-07-18"}
    assert stored[0].request_id == format(spans[0].context.trace_id, "032x")
    rollups_update()  # as beat does every minute
    cost = api(viewer).get(reverse("metrics-api:cost"), {"policy": "checkout"}).json()
    assert cost["requests"] == 2
    assert Decimal(str(cost["total_cost_usd"])) == 2 * PRICE_1000_IN_200_OUT
    assert {(m["model"], m["tier"], m["decisions"]) for m in cost["by_model"]} == {
        ("gpt-4o-mini", 1, 1),
        ("gpt-4o-mini", 2, 1),
    }


def test_otlp__same_spans_exported_twice__stored_once(live_key):
    url, secret = live_key
    exporter = OTLPSpanExporter(endpoint=url, headers={"Authorization": f"Bearer {secret}"})
    spans = genai_spans(chat(), chat())

    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert exporter.export(spans) == SpanExportResult.SUCCESS

    assert Decision.objects.count() == 2


# -- the endpoint's answers ---------------------------------------------------------------------------


@pytest.fixture
def secret(db: Any) -> str:
    return factories.sdk_key(factories.policy("checkout"))[1]


def encoded(spans: list[ReadableSpan]) -> bytes:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return encode_spans(spans).SerializeToString()


def post(client: Any, body: bytes, secret: str | None, content_type: str = "application/x-protobuf", **extra: Any):
    headers = {f"HTTP_{KEY_HEADER.upper().replace('-', '_')}": secret} if secret else {}
    return client.post(OTLP_TRACES_PATH, data=body, content_type=content_type, **headers, **extra)


def answer(response: Any) -> ExportTraceServiceResponse:
    assert response["Content-Type"] == "application/x-protobuf"
    message = ExportTraceServiceResponse()
    message.ParseFromString(response.content)
    return message


def test_otlp__malformed_protobuf__400_naming_the_body(client, secret):
    response = post(client, b"\xff\xff\xff not protobuf", secret)

    assert response.status_code == 400
    assert "not an OTLP protobuf ExportTraceServiceRequest" in response.json()["message"]
    assert list(response.json()["errors"]) == ["body"]
    assert not Decision.objects.exists()


def test_otlp__bad_gzip_and_unknown_type__4xx_with_reason(client, secret):
    bad_gzip = post(client, b"not gzip", secret, HTTP_CONTENT_ENCODING="gzip")
    text = post(client, b"hello", secret, content_type="text/plain")

    assert (bad_gzip.status_code, bad_gzip.json()["errors"]) == (400, {"body": ["not valid gzip"]})
    assert text.status_code == 415
    assert "content-type" in text.json()["errors"]


def test_otlp__gzip_bomb__413(client, secret):
    body = gzip.compress(b"\x00" * 6_000_000)

    response = post(client, body, secret, HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 413


def test_otlp__no_key__401_naming_both_headers(client, db):
    response = post(client, encoded(genai_spans(chat())), None)

    assert response.status_code == 401
    assert KEY_HEADER in response.json()["message"]


def test_otlp__invalid_span__rejected_in_partial_success_others_stored(client, secret):
    spans = genai_spans(chat(), chat(**{"signalbox.tier": 9}), {"gen_ai.operation.name": "chat"})

    response = post(client, encoded(spans), secret)

    assert response.status_code == 200
    partial = answer(response).partial_success
    assert partial.rejected_spans == 2
    assert "tier: must be an integer from 1 to 5" in partial.error_message
    assert "gen_ai.request.model: required" in partial.error_message
    assert format(spans[1].context.span_id, "016x") in partial.error_message
    assert Decision.objects.count() == 1


def test_otlp__non_genai_spans__ignored_and_counted(client, secret):
    spans = genai_spans({"http.request.method": "GET"}, {"db.system": "postgresql"}, chat())

    response = post(client, encoded(spans), secret)

    partial = answer(response).partial_success
    assert partial.rejected_spans == 0
    assert partial.error_message == "2 span(s) without gen_ai attributes ignored"
    assert Decision.objects.count() == 1


def test_otlp__error_status_and_older_system_attribute__outcome_and_provider(client, secret):
    attributes = {
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-3-5-haiku",
        "error.type": "RateLimitError",
    }

    post(client, encoded(genai_spans(attributes, error=True)), secret)

    stored = Decision.objects.get()
    assert (stored.provider, stored.outcome, stored.task_type, stored.route) == (
        "anthropic",
        "rate_limited",
        "otel",
        "otel",
    )
    assert stored.attributes == {"error.type": "RateLimitError"}


def test_otlp__json_encoding__hex_ids_read_and_json_answered(client, secret):
    now = time.time_ns()
    attributes = [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1000"}},
        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 200}},
    ]
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "chat",
        "startTimeUnixNano": str(now - 250_000_000),
        "endTimeUnixNano": str(now),
        "attributes": attributes,
    }
    body = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})

    response = post(client, body, secret, content_type="application/json")
    again = post(client, gzip.compress(body), secret, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 200
    assert response.json() == {}  # full success: no partial_success
    assert again.status_code == 200
    stored = Decision.objects.get()
    assert stored.request_id == "5b8efff798038103d269b633813fc60c"
    assert stored.cost_usd == PRICE_1000_IN_200_OUT
    assert stored.latency_ms == pytest.approx(250, abs=0.01)


def test_otlp__json_with_bad_hex_id__400(client, secret):
    body = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]})

    response = post(client, body, secret, content_type="application/json")

    assert response.status_code == 400
    assert "traceId must be hex" in response.json()["message"]


def test_otlp__policy_outside_the_key_scope__rejected(client, secret):
    response = post(client, encoded(genai_spans(chat(**{"signalbox.policy": "someone-else"}))), secret)

    partial = answer(response).partial_success
    assert partial.rejected_spans == 1
    assert "signalbox.policy: not in this key's scope" in partial.error_message


@pytest.mark.parametrize(
    ("error_type", "outcome"),
    [
        ("RateLimitError", "rate_limited"),
        ("429", "rate_limited"),
        ("APITimeoutError", "timeout"),
        ("GenerateError", "error"),  # "rate" inside a word is no rate limit
        ("InternalServerError", "error"),
    ],
)
def test_otlp__error_type__mapped_to_the_outcome(client, secret, error_type, outcome):
    post(client, encoded(genai_spans(chat(**{"error.type": error_type}))), secret)

    assert Decision.objects.get().outcome == outcome


def test_otlp__span_times_out_of_range__rejected_not_a_500(client, secret):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    export = ExportTraceServiceRequest.FromString(encoded(genai_spans(chat(), chat())))
    spans = export.resource_spans[0].scope_spans[0].spans
    spans[0].start_time_unix_nano = 2**64 - 1
    spans[1].start_time_unix_nano = 0

    response = post(client, export.SerializeToString(), secret)

    partial = answer(response).partial_success
    assert partial.rejected_spans == 2
    assert "start_time_unix_nano: required" in partial.error_message
    assert not Decision.objects.exists()


def test_otlp__json_rejection__partial_success_in_otlp_json(client, secret):
    body = orjson.dumps(
        {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": "5b8efff798038103d269b633813fc60c",
                                    "spanId": "eee19b7ec3c1b174",
                                    "startTimeUnixNano": str(time.time_ns()),
                                    "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "openai"}}],
                                }
                            ]
                        }
                    ]
                }
            ]
        }
    )

    response = post(client, body, secret, content_type="application/json")

    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"  # an int64, written as a string by OTLP/JSON
    assert "gen_ai.request.model: required" in partial["errorMessage"]
