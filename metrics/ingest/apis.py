"""The client protocol's decision upload, `POST /api/v1/client/decisions`, and the OTLP/HTTP
trace export, `POST /v1/traces` (GenAI spans as decision records, docs/otel.md).

A plain Django view, like the policy fetch (`routing.client_api`): DRF's parsing and rendering
would cost more than storing a record. Bodies are parsed and answered with orjson.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import orjson
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from controlplane import ratelimit
from controlplane.errors import DomainError, json_error
from metrics.ingest import otlp
from metrics.ingest import services as ingest
from routing.client_api import client_key, key_header_secret
from signalbox_client.protocol import MAX_BATCH_BYTES, MAX_BATCH_RECORDS


def _too_large(message: str, field: str, reason: str) -> HttpResponse:
    return json_error(413, message, {field: [reason]})


def _bounded_body(request: HttpRequest, what: str) -> bytes | HttpResponse:
    """The request body, or the 413 that refuses it past MAX_BATCH_BYTES (told by Content-Length
    before it is read; counted when it is chunked)."""
    limit = MAX_BATCH_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = None
    if length <= limit:
        try:
            body = request.body
        except RequestDataTooBig:  # no Content-Length (chunked) and over DATA_UPLOAD_MAX_MEMORY_SIZE
            body = None
    if body is None or len(body) > limit:
        return _too_large(f"{what} is at most {limit:,} bytes.", "body", f"at most {limit} bytes")
    return body


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses NaN/Infinity; the standard parser takes them, so the record holding one
        # is rejected with its field path instead of the whole batch.
        return json.loads(body)


@csrf_exempt
@require_POST
def client_decisions_ingest(request: HttpRequest) -> HttpResponse:
    """Store a batch of decision records; answer per-record results once they are committed."""
    key = client_key(request, ratelimit.decisions_limit)
    if isinstance(key, HttpResponse):
        return key
    assert key.key_id is not None  # client_key answered 401 otherwise

    body = _bounded_body(request, "A batch")
    if isinstance(body, HttpResponse):
        return body

    try:
        payload = _parse(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return json_error(400, "The body is not valid JSON.", {"body": ["not valid JSON"]})
    if type(payload) is not dict:
        return json_error(400, "The body must be a JSON object.", {"body": ["must be an object"]})
    records = payload.get("decisions")
    if type(records) is not list:
        reason = "required" if "decisions" not in payload else "must be a list"
        return json_error(400, f"'decisions' is {reason}.", {"decisions": [reason]})
    if len(records) > MAX_BATCH_RECORDS:
        return _too_large(
            f"A batch is at most {MAX_BATCH_RECORDS:,} records.",
            "decisions",
            f"at most {MAX_BATCH_RECORDS} records",
        )

    try:
        result = ingest.decision_batch_ingest(key_id=key.key_id, policy_ids=key.policy_ids, records=records)
    except DomainError as exc:
        return json_error(exc.status_code, exc.message, exc.errors)
    return HttpResponse(orjson.dumps(result.as_body()), content_type="application/json")


# -- OTLP/HTTP: POST /v1/traces ---------------------------------------------------------------------

_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"


def _gunzip(body: bytes, limit: int) -> bytes | None:
    """The body inflated, or None past `limit` bytes (a small gzip can inflate a thousandfold)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        return None
    if not inflater.eof:
        raise zlib.error("truncated gzip stream")
    return out


@csrf_exempt
@require_POST
def otlp_traces_ingest(request: HttpRequest) -> HttpResponse:
    """Store the GenAI spans of an OTLP/HTTP trace export as decision records (docs/otel.md);
    answer an ExportTraceServiceResponse in the request's encoding, rejected spans in its
    partial success."""
    key = client_key(request, ratelimit.decisions_limit, secret_of=key_header_secret)
    if isinstance(key, HttpResponse):
        return key
    assert key.key_id is not None  # client_key answered 401 otherwise

    content_type = request.content_type or ""
    if content_type not in {_PROTOBUF, _JSON}:
        reason = f"must be {_PROTOBUF} or {_JSON}"
        return json_error(415, f"Content-Type {reason}.", {"content-type": [reason]})
    json = content_type == _JSON
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in {"gzip", "identity", ""}:
        reason = "must be gzip or absent"
        return json_error(415, f"Content-Encoding {reason}.", {"content-encoding": [reason]})

    limit = MAX_BATCH_BYTES
    body = _bounded_body(request, "An export")
    if isinstance(body, HttpResponse):
        return body
    if encoding == "gzip":
        try:
            inflated = _gunzip(body, limit)
        except zlib.error:
            return json_error(400, "The body is not valid gzip.", {"body": ["not valid gzip"]})
        if inflated is None:
            return _too_large(f"An export is at most {limit:,} bytes uncompressed.", "body", f"at most {limit} bytes")
        body = inflated

    try:
        export = otlp.decode_request(body, json=json)
    except otlp.OtlpDecodeError as exc:
        return json_error(400, f"The body is {exc}.", {"body": [str(exc)]})

    try:
        result = ingest.otlp_spans_ingest(key_id=key.key_id, policy_ids=key.policy_ids, request=export)
    except DomainError as exc:
        return json_error(exc.status_code, exc.message, exc.errors)
    answer = otlp.partial_success(result.rejected, result.ignored)
    return HttpResponse(otlp.encode_response(answer, json=json), content_type=_JSON if json else _PROTOBUF)
