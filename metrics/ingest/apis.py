"""The client protocol's decision upload: `POST /api/v1/client/decisions`.

A plain Django view, like the policy fetch (`routing.client_api`): DRF's parsing and rendering
would cost more than storing a record. Bodies are parsed and answered with orjson.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from controlplane import ratelimit
from controlplane.errors import DomainError, json_error
from metrics.ingest import services as ingest
from routing.client_api import client_key
from signalbox_client.protocol import MAX_BATCH_BYTES, MAX_BATCH_RECORDS


def _too_large(message: str, field: str, reason: str) -> HttpResponse:
    return json_error(413, message, {field: [reason]})


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

    limit = MAX_BATCH_BYTES
    too_large = f"A batch is at most {limit:,} bytes.", "body", f"at most {limit} bytes"
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        return _too_large(*too_large)
    try:
        body = request.body
    except RequestDataTooBig:  # no Content-Length (chunked) and over DATA_UPLOAD_MAX_MEMORY_SIZE
        return _too_large(*too_large)
    if len(body) > limit:
        return _too_large(*too_large)

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
