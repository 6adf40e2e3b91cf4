"""Decision records as rows of PostgreSQL's COPY (no Django import). `copy_row(...)` turns a
valid record as the SDK writes it straight into its COPY row (the hot path), or answers None;
`checked_row` turns a `metrics.ingest.records.Checked` (the full check's answer) into the same
row; `copy_text` escapes a string for COPY's text format. The fields and their limits are
`metrics.ingest.records`'.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from metrics import schema
from metrics.ingest.records import (
    ALLOWED,
    CLIENT_FIELDS,
    INT_LIMIT,
    OUTCOMES,
    RFC3339_FORMAT,
    UUID_FORMAT,
    Checked,
)
from signalbox_client.protocol import (
    MAX_ATTEMPT,
    MAX_ATTRIBUTE_KEY,
    MAX_ATTRIBUTE_VALUE,
    MAX_ATTRIBUTES,
    MAX_COST_USD,
    MAX_LATENCY_MS,
    MAX_MODEL,
    MAX_PROVIDER,
    MAX_REASON_BYTES,
    MAX_SHORT,
    MAX_TIER,
    MAX_TOKENS,
    MAX_VERSION,
)

# Characters PostgreSQL's COPY text format needs escaped (NUL is refused by validation).
_COPY_SPECIAL = re.compile(r"[\\\t\n\r\x00]")

# One valid record for PostgreSQL's COPY: (event id, model, epoch, tokens in, tokens out, cost or
# None, text). The text holds the columns of `schema.COPY_COLUMNS` after the lead ones, tab-separated
# and escaped for COPY's text format, with no line end; the service prices the record and writes
# `key \t cost \t unpriced \t text \n`.
CopyRow = tuple[str, str, float, int, int, float | None, str]
# Tabs in a row's text: one between each two of its columns.
_ROW_TABS = len(schema.COPY_COLUMNS) - len(schema.COPY_LEAD_COLUMNS) - 1
_EMPTY: dict[str, Any] = {}


def copy_row(rec: Any, policies: Mapping[str, int], not_before: float, not_after: float) -> CopyRow | None:
    """The COPY row of a record the SDK wrote — all 20 fields present, every one valid, no string
    needing COPY escapes — built straight from its values; None for any other record, which
    `record_check` then validates (naming its errors) and `checked_row` turns into the same row.

    The ingest's hot path on PostgreSQL: one pass with no error bookkeeping and no `Checked` tuple
    in between; it accepts nothing `record_check` refuses (a property test holds its rows to
    `checked_row` of the full check). SQLite (the demo) and unusual records take `record_check`.
    """
    if type(rec) is not dict or len(rec) != len(ALLOWED):
        return None
    try:
        event_id, raw_ts, slug, version = rec["event_id"], rec["timestamp"], rec["policy"], rec["policy_version"]
        route, task_type, model, provider = rec["route"], rec["task_type"], rec["model"], rec["provider"]
        tier, attempt, outcome, latency = rec["tier"], rec["attempt"], rec["outcome"], rec["latency_ms"]
        tokens_in, tokens_out, request_id = rec["tokens_in"], rec["tokens_out"], rec["request_id"]
        confidence, cost, reason = rec["confidence"], rec["cost_usd"], rec["reason"]
        client, attributes = rec["client"], rec["attributes"]
    except KeyError:  # as many keys, not the same ones
        return None
    if not (
        type(event_id) is str
        and len(event_id) == 36
        and UUID_FORMAT.fullmatch(event_id)
        and type(raw_ts) is str
        and RFC3339_FORMAT.fullmatch(raw_ts)
        and type(slug) is str
        and type(version) is int
        and 1 <= version <= MAX_VERSION
        and type(route) is str
        and 0 < len(route) <= MAX_SHORT
        and type(task_type) is str
        and 0 < len(task_type) <= MAX_SHORT
        and type(model) is str
        and 0 < len(model) <= MAX_MODEL
        and type(provider) is str
        and len(provider) <= MAX_PROVIDER
        and type(tier) is int
        and 1 <= tier <= MAX_TIER
        and type(attempt) is int
        and 1 <= attempt <= MAX_ATTEMPT
        and type(outcome) is str
        and outcome in OUTCOMES
        and type(tokens_in) is int
        and 0 <= tokens_in < MAX_TOKENS
        and type(tokens_out) is int
        and 0 <= tokens_out < MAX_TOKENS
        and (type(latency) is float or type(latency) is int)
        and 0 <= latency <= MAX_LATENCY_MS
    ):
        return None
    policy_id = policies.get(slug)
    if policy_id is None:
        return None
    try:
        epoch = datetime.fromisoformat(raw_ts).timestamp()
    except ValueError:  # the right shape, an impossible date (month 13, offset +24:00)
        return None
    if not not_before <= epoch <= not_after:
        return None
    if request_id is None:
        request_id = ""
    elif not (type(request_id) is str and len(request_id) <= MAX_SHORT):
        return None
    if confidence is None:
        confidence_text = "\\N"
    elif (type(confidence) is float or type(confidence) is int) and 0 <= confidence <= 1:
        confidence_text = f"{confidence:.6f}"  # the value round(confidence, 6) is; see checked_row
    else:
        return None
    if cost is not None:
        if not ((type(cost) is float or type(cost) is int) and 0 <= cost <= MAX_COST_USD):
            return None
        cost = float(cost)
    if reason is None:
        reason, reason_json = _EMPTY, "{}"
    elif type(reason) is dict:
        try:
            reason_bytes = orjson.dumps(reason)
        except (TypeError, orjson.JSONEncodeError):
            return None
        if len(reason_bytes) > MAX_REASON_BYTES or b"\\u0000" in reason_bytes:
            return None
        reason_json = reason_bytes.decode()
    else:
        return None
    if client is None:
        app = instance = sdk_version = ""
    elif type(client) is dict and len(client) == len(CLIENT_FIELDS):  # the SDK sends all three
        try:
            app, instance, sdk_version = client["app"], client["instance"], client["sdk_version"]
        except KeyError:
            return None
        if not (
            type(app) is str
            and len(app) <= MAX_SHORT
            and type(instance) is str
            and len(instance) <= MAX_SHORT
            and type(sdk_version) is str
            and len(sdk_version) <= MAX_SHORT
        ):
            return None
    else:
        return None
    if not attributes:  # None or {}
        if attributes is not None and type(attributes) is not dict:
            return None
        attributes_json = "{}"
    elif type(attributes) is dict and len(attributes) <= MAX_ATTRIBUTES:
        for key, value in attributes.items():
            t = type(value)
            if not (
                0 < len(key) <= MAX_ATTRIBUTE_KEY
                and "\x00" not in key
                and (
                    (t is str and len(value) <= MAX_ATTRIBUTE_VALUE and "\x00" not in value)
                    or t is bool
                    or (t is int and -INT_LIMIT <= value <= INT_LIMIT)
                    or (t is float and math.isfinite(value))
                )
            ):
                return None
        attributes_json = orjson.dumps(attributes).decode()
    else:
        return None
    if attempt <= 1:
        escalated = "f"
    else:
        came_from = reason.get("from")
        previous = came_from.get("tier") if type(came_from) is dict else None
        escalated = "t" if (tier > previous if type(previous) is int else tier > 1) else "f"
    event_id = event_id.lower()
    text = (
        f"{raw_ts}\t{event_id}\t{policy_id}\t{version}\t{route}\t{task_type}\t{model}\t"
        f"{provider}\t{tier}\t{attempt}\t{escalated}\t{request_id}\t{reason_json}\t{outcome}\t"
        f"{confidence_text}\t{tokens_in}\t{tokens_out}\t{latency:.3f}\t{app}\t{instance}\t"
        f"{sdk_version}\t{attributes_json}"
    )
    # A string holding a COPY special (or NUL, which the full check names) takes the slow path; the
    # JSON texts cannot hold a raw tab or line break, so the tab count checks the eight strings.
    if "\\" in text or "\n" in text or "\r" in text or "\x00" in text or text.count("\t") != _ROW_TABS:
        return None
    return event_id, model, epoch, tokens_in, tokens_out, cost, text


def checked_row(c: Checked) -> CopyRow:
    """The COPY row of a checked record (`copy_row`'s answer for the records it takes).

    Confidence and latency are written with exactly their 6 and 3 decimals (`%.6f`, `%.3f`: a third
    of the cost of `repr`): PostgreSQL reads that decimal as the double `round(value, n)` is, the
    value `Checked` holds, so the stored number is the same either way (tested).
    """
    esc = copy_text
    text = "\t".join(
        (
            c.ts_text,
            c.event_id,
            str(c.policy_id),
            str(c.policy_version),
            esc(c.route),
            esc(c.task_type),
            esc(c.model),
            esc(c.provider),
            str(c.tier),
            str(c.attempt),
            "t" if c.escalated else "f",
            esc(c.request_id),
            esc(c.reason_json),
            c.outcome,
            "\\N" if c.confidence is None else f"{c.confidence:.6f}",
            str(c.tokens_in),
            str(c.tokens_out),
            f"{c.latency_ms:.3f}",
            esc(c.client_app),
            esc(c.client_instance),
            esc(c.client_sdk_version),
            esc(c.attributes_json),
        )
    )
    return c.event_id, c.model, c.epoch, c.tokens_in, c.tokens_out, c.cost_usd, text


def copy_text(value: str) -> str:
    """`value` escaped for PostgreSQL's COPY text format."""
    if _COPY_SPECIAL.search(value) is None:
        return value
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
