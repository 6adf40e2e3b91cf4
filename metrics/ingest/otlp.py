"""OpenTelemetry GenAI spans as decision records: the OTLP/HTTP trace export's body decoded
(protobuf or JSON) and each GenAI span mapped onto the client protocol's record shape, which then
goes through the one ingest path (`services.decision_batch_ingest`) like any SDK upload.

No Django import. The mapping (docs/otel.md) reads the GenAI semantic conventions
(`gen_ai.*`, `error.type`, the span's status and times) and Signalbox's routing attributes
(`signalbox.*`, names in `signalbox_client.protocol`); a span without any `gen_ai.operation.name`,
`gen_ai.provider.name` or `gen_ai.system` attribute is not a GenAI span and is ignored.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from signalbox_client import protocol
from signalbox_client.protocol import MAX_ATTRIBUTE_KEY, MAX_ATTRIBUTE_VALUE, MAX_ATTRIBUTES, MAX_SHORT

# Every span's event id is uuid5(SPAN_NAMESPACE, trace id hex + span id hex): a re-exported span
# is the same record, so the ingest counts it once.
SPAN_NAMESPACE = uuid.UUID("5b0a3c1e-7f1d-4c6e-9a57-0d7e4e0b7a11")
# The GenAI semantic conventions' attributes read (https://opentelemetry.io/docs/specs/semconv/gen-ai/).
GENAI_MARKERS = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system")
# A span attribute `signalbox.attributes.<key>` becomes the record's attribute `<key>`.
ATTRIBUTES_PREFIX = "signalbox.attributes."
# Defaults when a span carries no routing attribute (docs/otel.md).
DEFAULT_ROUTE = "otel"
DEFAULT_TASK_TYPE = "otel"  # when the span has no gen_ai.operation.name either
MAX_ERROR_MESSAGE_SPANS = 5  # rejections spelled out in the partial-success message


class OtlpDecodeError(ValueError):
    """The body is not an OTLP trace export in the encoding it claims."""


def decode_request(body: bytes, *, json: bool) -> ExportTraceServiceRequest:
    """Parse an ExportTraceServiceRequest from its protobuf or OTLP/JSON encoding."""
    message = ExportTraceServiceRequest()
    if not json:
        try:
            message.ParseFromString(body)
        except (DecodeError, RecursionError) as exc:
            raise OtlpDecodeError(f"not an OTLP protobuf ExportTraceServiceRequest ({exc})") from exc
        return message
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpDecodeError(f"not valid JSON ({exc})") from exc
    if type(payload) is not dict:
        raise OtlpDecodeError("the JSON body must be an object")
    try:
        _ids_to_base64(payload)
        json_format.ParseDict(payload, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise OtlpDecodeError(f"not an OTLP/JSON ExportTraceServiceRequest ({exc})") from exc
    return message


def _ids_to_base64(payload: dict[str, Any]) -> None:
    """OTLP/JSON writes trace and span ids as hex; the protobuf JSON mapping reads bytes as base64."""
    for resource_spans in _list(payload, "resourceSpans", "resource_spans"):
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            for span in _list(scope_spans, "spans"):
                items = [span, *_list(span, "links")]
                for item in items:
                    for name in ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"):
                        value = item.get(name) if type(item) is dict else None
                        if type(value) is str and value:
                            try:
                                item[name] = base64.b64encode(bytes.fromhex(value)).decode()
                            except ValueError as exc:
                                raise ValueError(f"{name} must be hex") from exc


def _list(obj: Any, *names: str) -> list[Any]:
    if type(obj) is not dict:
        return []
    for name in names:
        value = obj.get(name)
        if type(value) is list:
            return value
    return []


def encode_response(response: ExportTraceServiceResponse, *, json: bool) -> bytes:
    if json:
        return orjson.dumps(json_format.MessageToDict(response))
    return response.SerializeToString()


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind in {"string_value", "bool_value", "int_value", "double_value"}:
        return getattr(value, kind)
    return None  # arrays, maps and bytes carry nothing a record takes


def _attributes(items: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


def _int(value: Any, default: int) -> Any:
    """An integer attribute; a string of digits is taken too (some SDKs only set strings).
    Anything else is passed on for the record check to name."""
    if value is None:
        return default
    if type(value) is str and value.strip().isdigit():
        return int(value)
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _timestamp(unix_nano: int) -> str | None:
    """RFC 3339 text of a span time, or None when it is unset or beyond what a datetime holds."""
    if not unix_nano:
        return None
    try:
        return datetime.fromtimestamp(unix_nano / 1e9, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def _short(value: Any) -> str:
    return value[:MAX_SHORT] if type(value) is str else ""


# Words of an error type or status message that name a timeout or a rate limit (RateLimitError,
# rate_limit_exceeded, "429 Too Many Requests", APITimeoutError, "timed out", …).
_TIMEOUT = re.compile(r"time[ _-]?out|timed out|deadline")
_RATE_LIMITED = re.compile(r"rate[ _-]?limit|\b429\b|too many requests|throttl")


def _outcome(span: Span, error_type: Any) -> str:
    if span.status.code != Status.STATUS_CODE_ERROR and not error_type:
        return "ok"
    text = f"{error_type or ''} {span.status.message}".lower()
    if _TIMEOUT.search(text):
        return "timeout"
    if _RATE_LIMITED.search(text):
        return "rate_limited"
    return "error"


@dataclass(slots=True)
class SpanBatch:
    """The GenAI spans of one export as records (with the span each came from), the spans
    refused before the record check, and the count of non-GenAI spans ignored."""

    records: list[dict[str, Any]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # "<trace id>/<span id>" per record
    refused: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    ignored: int = 0


def _spans(request: ExportTraceServiceRequest) -> Iterator[tuple[dict[str, Any], Span]]:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield resource, span


def spans_to_records(
    request: ExportTraceServiceRequest,
    *,
    policies: Callable[[str | None], str | None],
    live_version: Callable[[str], int | None],
) -> SpanBatch:
    """Map the export's GenAI spans onto decision records.

    `policies(slug)` answers the slug a span writes to (the one it names, or the key's only policy
    when it names none), or None when it cannot be chosen; `live_version(slug)` the policy's live
    version number, the default of `signalbox.policy_version`.
    """
    batch = SpanBatch()
    for resource, span in _spans(request):
        attrs = _attributes(span.attributes)
        if not any(attrs.get(name) for name in GENAI_MARKERS):
            batch.ignored += 1
            continue
        label = f"{span.trace_id.hex()}/{span.span_id.hex()}"
        errors: dict[str, list[str]] = {}
        if len(span.trace_id) != 16 or len(span.span_id) != 8:
            errors["span"] = ["needs a 16-byte trace id and an 8-byte span id"]
        timestamp = _timestamp(span.start_time_unix_nano)
        if timestamp is None:
            errors["start_time_unix_nano"] = ["required: a time after 1970 and before 9999"]
        named = attrs.get(protocol.OTLP_POLICY_ATTRIBUTE) or resource.get(protocol.OTLP_POLICY_ATTRIBUTE)
        slug = policies(named if type(named) is str else None)
        if slug is None:
            reason = "not in this key's scope" if named else "required: the SDK key writes to several policies"
            errors[protocol.OTLP_POLICY_ATTRIBUTE] = [reason]
        model = attrs.get("gen_ai.request.model") or attrs.get("gen_ai.response.model")
        if not model:
            errors["gen_ai.request.model"] = ["required (or gen_ai.response.model)"]
        version = attrs.get(protocol.OTLP_POLICY_VERSION_ATTRIBUTE)
        if version is None and slug is not None:
            version = live_version(slug)
            if version is None:
                errors[protocol.OTLP_POLICY_VERSION_ATTRIBUTE] = ["required: the policy has no published version"]
        if errors:
            batch.refused.append((label, errors))
            continue
        assert slug is not None
        error_type = attrs.get("error.type")
        start = span.start_time_unix_nano
        latency_ms = max(0, span.end_time_unix_nano - start) / 1e6 if span.end_time_unix_nano else 0.0
        operation = attrs.get("gen_ai.operation.name")
        tokens_in = attrs.get("gen_ai.usage.input_tokens", attrs.get("gen_ai.usage.prompt_tokens"))
        tokens_out = attrs.get("gen_ai.usage.output_tokens", attrs.get("gen_ai.usage.completion_tokens"))
        extra: dict[str, Any] = {}
        response_model = attrs.get("gen_ai.response.model")
        if response_model and response_model != model:
            extra["gen_ai.response.model"] = response_model
        if error_type:
            extra["error.type"] = str(error_type)[:MAX_ATTRIBUTE_VALUE]
        for key, value in attrs.items():
            if key.startswith(ATTRIBUTES_PREFIX) and value is not None:
                extra[key[len(ATTRIBUTES_PREFIX) :][:MAX_ATTRIBUTE_KEY]] = value
        language, sdk = resource.get("telemetry.sdk.language"), resource.get("telemetry.sdk.version")
        record: dict[str, Any] = {
            "event_id": str(uuid.uuid5(SPAN_NAMESPACE, label)),
            "timestamp": timestamp,
            "policy": slug,
            "policy_version": _int(version, 1),
            "route": attrs.get(protocol.OTLP_ROUTE_ATTRIBUTE) or DEFAULT_ROUTE,
            "task_type": attrs.get(protocol.OTLP_TASK_TYPE_ATTRIBUTE) or operation or DEFAULT_TASK_TYPE,
            "model": model,
            "provider": attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system") or "",
            "tier": _int(attrs.get(protocol.OTLP_TIER_ATTRIBUTE), 1),
            "attempt": _int(attrs.get(protocol.OTLP_ATTEMPT_ATTRIBUTE), 1),
            "request_id": span.trace_id.hex(),
            "reason": {"source": "otlp", "span": span.name[:MAX_SHORT]},
            "outcome": _outcome(span, error_type),
            "tokens_in": _int(tokens_in, 0),
            "tokens_out": _int(tokens_out, 0),
            "latency_ms": latency_ms,
            "client": {
                "app": _short(resource.get("service.name")),
                "instance": _short(resource.get("service.instance.id")),
                "sdk_version": _short(f"otel-{language}/{sdk}" if language and sdk else ""),
            },
        }
        if extra:
            record["attributes"] = dict(list(extra.items())[:MAX_ATTRIBUTES])
        batch.records.append(record)
        batch.labels.append(label)
    return batch


def partial_success(rejected: list[tuple[str, dict[str, list[str]]]], ignored: int) -> ExportTraceServiceResponse:
    """The export's answer: the rejected spans counted and the first few named with their reasons;
    with none rejected, a warning counting the non-GenAI spans ignored (OTLP lets a server warn so)."""
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = len(rejected)
        named = "; ".join(
            f"span {label}: " + ", ".join(f"{path}: {' '.join(reasons)}" for path, reasons in errors.items())
            for label, errors in rejected[:MAX_ERROR_MESSAGE_SPANS]
        )
        more = len(rejected) - MAX_ERROR_MESSAGE_SPANS
        parts = [named + (f"; and {more} more" if more > 0 else "")]
    else:
        parts = []
    if ignored:
        parts.append(f"{ignored} span(s) without gen_ai attributes ignored")
    if parts:
        response.partial_success.error_message = "; ".join(parts)
    return response
