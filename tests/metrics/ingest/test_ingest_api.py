"""POST /api/v1/client/decisions: per-record results, idempotency, limits, auth and scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics import schema
from metrics.ingest import copy_rows, records
from metrics.ingest.records import ALLOWED
from metrics.models import Decision
from routing import services as routing_services
from tests import factories
from tests.metrics.conftest import DROP, URL, record

pytestmark = pytest.mark.django_db


def _statuses(response: Any) -> list[str]:
    return [r["status"] for r in response.json()["results"]]


def test_ingest__valid_batch__all_accepted_and_stored(scoped: Any, post: Any) -> None:
    _, secret = scoped
    records = [record() for _ in range(5)]

    response = post(records, secret)

    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 5
    assert body["duplicates"] == 0
    assert body["rejected"] == 0
    assert [r["event_id"] for r in body["results"]] == [r["event_id"] for r in records]
    assert all("errors" not in r for r in body["results"])
    stored = Decision.objects.get(event_id=records[0]["event_id"])
    assert stored.route == "extraction"
    assert stored.tokens_in == 1000
    assert stored.reason == records[0]["reason"]
    assert stored.attributes == {"user_tier": "pro"}
    assert stored.client_app == "tests"
    assert stored.unpriced is False


def test_ingest__same_batch_twice__second_all_duplicates_and_row_count_unchanged(scoped: Any, post: Any) -> None:
    _, secret = scoped
    records = [record() for _ in range(20)]
    post(records, secret)

    again = post(records, secret)

    assert again.json()["duplicates"] == 20
    assert again.json()["accepted"] == 0
    assert set(_statuses(again)) == {"duplicate"}
    assert Decision.objects.count() == 20


def test_ingest__overlapping_batches__only_new_records_accepted(scoped: Any, post: Any) -> None:
    _, secret = scoped
    records = [record() for _ in range(10)]
    post(records[:6], secret)

    response = post(records[3:], secret)

    assert _statuses(response) == ["duplicate"] * 3 + ["accepted"] * 4
    assert Decision.objects.count() == 10


def test_ingest__event_id_twice_in_one_batch__first_wins(scoped: Any, post: Any) -> None:
    _, secret = scoped
    first = record(model="gpt-4o")
    second = record(event_id=first["event_id"].upper(), model="o1")

    response = post([first, second], secret)

    assert _statuses(response) == ["accepted", "duplicate"]
    assert list(Decision.objects.values_list("model", flat=True)) == ["gpt-4o"]


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"event_id": DROP}, "event_id"),
        ({"timestamp": "2026-01-01T10:00:00"}, "timestamp"),  # no zone
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"policy_version": 0}, "policy_version"),
        ({"policy_version": "1"}, "policy_version"),
        ({"route": ""}, "route"),
        ({"route": "r" * 201}, "route"),
        ({"route": "nul\x00byte"}, "route"),
        ({"client": {"app": "nul\x00"}}, "client.app"),
        ({"reason": {"note": "nul\x00"}}, "reason"),
        ({"model": 4}, "model"),
        ({"tier": 6}, "tier"),
        ({"tier": True}, "tier"),
        ({"attempt": 0}, "attempt"),
        ({"request_id": "x" * 201}, "request_id"),
        ({"reason": ["not", "an", "object"]}, "reason"),
        ({"reason": {"blob": "x" * 5000}}, "reason"),
        ({"reason": {"blob": "é" * 2100}}, "reason"),  # 2,100 characters, 4,200 bytes
        ({"outcome": "great"}, "outcome"),
        ({"confidence": 1.5}, "confidence"),
        ({"tokens_in": -1}, "tokens_in"),
        ({"tokens_out": 12.5}, "tokens_out"),
        ({"tokens_in": 10**9}, "tokens_in"),
        ({"cost_usd": -0.01}, "cost_usd"),
        ({"latency_ms": "fast"}, "latency_ms"),
        ({"client": {"app": 7}}, "client.app"),
        ({"client": {"app": "a", "colour": "red"}}, "client.colour"),
        ({"attributes": {"nested": {"a": 1}}}, "attributes.nested"),
        ({"attributes": {f"k{i}": i for i in range(21)}}, "attributes"),
        ({"surprise": 1}, "surprise"),
        # Shapes the one-pass check must hand to the full check (which names the field).
        ({"timestamp": "2026-13-01T10:00:00Z"}, "timestamp"),
        ({"timestamp": "2026-01-01T10:00:00+24:00"}, "timestamp"),
        ({"policy_version": 2**31}, "policy_version"),
        ({"latency_ms": 86_400_001}, "latency_ms"),
        ({"cost_usd": True}, "cost_usd"),
        ({"confidence": "0.5"}, "confidence"),
        ({"client": {"app": 0}}, "client.app"),
        ({"client": []}, "client"),
        ({"attributes": []}, "attributes"),
        ({"attributes": {"n": 2**60}}, "attributes.n"),
        ({"attributes": {"s": "v" * 257}}, "attributes.s"),
        ({"attributes": {"k" * 65: 1}}, "attributes." + "k" * 64),
    ],
)
def test_ingest__bad_record__rejected_with_field_path_and_good_records_stored(
    scoped: Any, post: Any, changes: dict[str, Any], path: str
) -> None:
    _, secret = scoped
    good_before, bad, good_after = record(), record(**changes), record()

    response = post([good_before, bad, good_after], secret)

    assert response.status_code == 200
    body = response.json()
    assert _statuses(response) == ["accepted", "rejected", "accepted"]
    assert path in body["results"][1]["errors"], body["results"][1]
    assert body["rejected"] == 1
    assert body["accepted"] == 2
    assert Decision.objects.count() == 2


def test_ingest__strings_with_tabs_newlines_and_backslashes__stored_verbatim(scoped: Any, post: Any) -> None:
    _, secret = scoped
    odd = "tab\there\nnew line \\ back\\slash\r"
    sent = record(route=odd, request_id=odd, client={"app": odd}, reason={"why": odd}, attributes={"k": odd})

    assert post([sent], secret).json()["accepted"] == 1

    stored = Decision.objects.get()
    assert stored.route == stored.request_id == stored.client_app == odd
    assert stored.reason == {"why": odd}
    assert stored.attributes == {"k": odd}


@pytest.mark.parametrize("sdk_shaped", [True, False], ids=["one-pass row", "field-by-field check"])
def test_ingest__awkward_confidence_and_latency__stored_rounded_to_6_and_3_decimals(
    scoped: Any, post: Any, sdk_shaped: bool
) -> None:
    """The COPY text writes exactly 6 and 3 decimals; PostgreSQL must read back round(value, n)."""
    _, secret = scoped
    values = [
        (0.0078125, 0.0005),
        (0.1234565, 1234.5675),
        (1 / 3, 86_400_000),
        (5e-324, 0.0015),
        (1, 2.675),
        (0, 86_399_999.9995),
        (0.9999995, 1e-9),
        (0.5, 123_456.0005),
    ]
    sent = [record(confidence=c, latency_ms=ms) for c, ms in values]
    if not sdk_shaped:  # a record without the optional fields takes the field-by-field check
        for rec in sent:
            del rec["request_id"]

    assert post(sent, secret).json()["accepted"] == len(sent)

    stored = {str(d.event_id): (d.confidence, d.latency_ms) for d in Decision.objects.all()}
    assert [stored[rec["event_id"]] for rec in sent] == [(round(float(c), 6), round(float(ms), 3)) for c, ms in values]


def test_ingest__attribute_integer_beyond_64_bits_next_to_a_nan__both_records_rejected_naming_them(
    scoped: Any, post: Any
) -> None:
    """A NaN makes orjson refuse the body; the standard parser then keeps a huge integer as an int,
    which the check must name (it was a 500), not serialize."""
    _, secret = scoped
    body = orjson.dumps({"decisions": [record(attributes={"n": 1}), record(confidence=0.5), record()]})
    body = body.replace(b'"attributes":{"n":1}', b'"attributes":{"n":123456789012345678901234567890}', 1)
    body = body.replace(b'"confidence":0.5', b'"confidence":NaN', 1)

    response = post(body, secret)

    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["errors"] == {"attributes.n": ["integer out of range"]}
    assert list(results[1]["errors"]) == ["confidence"]
    assert _statuses(response) == ["rejected", "rejected", "accepted"]


def test_ingest__nan_and_infinity__only_those_records_rejected(scoped: Any, post: Any) -> None:
    _, secret = scoped
    good = orjson.dumps(record()).decode()
    nan = orjson.dumps(record(confidence=0.5)).decode().replace('"confidence":0.5', '"confidence":NaN')
    inf = orjson.dumps(record()).decode().replace('"latency_ms":420.5', '"latency_ms":Infinity')
    body = f'{{"decisions":[{good},{nan},{inf}]}}'.encode()

    response = post(body, secret)

    assert _statuses(response) == ["accepted", "rejected", "rejected"]
    assert "confidence" in response.json()["results"][1]["errors"]
    assert "latency_ms" in response.json()["results"][2]["errors"]


def test_ingest__record_not_an_object__rejected_with_root_path(scoped: Any, post: Any) -> None:
    _, secret = scoped
    response = post([record(), "oops"], secret)
    assert response.json()["results"][1] == {
        "event_id": None,
        "status": "rejected",
        "errors": {"": ["must be an object"]},
    }


def test_ingest__timestamp_more_than_a_day_ahead__rejected(scoped: Any, post: Any) -> None:
    _, secret = scoped
    now = datetime.now(UTC)
    soon = record(timestamp=(now + timedelta(hours=23)).isoformat())
    too_far = record(timestamp=(now + timedelta(days=1, minutes=5)).isoformat())

    response = post([soon, too_far], secret)

    assert _statuses(response) == ["accepted", "rejected"]
    assert response.json()["results"][1]["errors"] == {"timestamp": ["more than 1 day in the future"]}


def test_ingest__timestamp_older_than_retention__rejected(scoped: Any, post: Any, settings: Any) -> None:
    _, secret = scoped
    settings.DECISION_RETENTION_DAYS = 30
    old = record(timestamp=(datetime.now(UTC) - timedelta(days=32)).isoformat())

    response = post([old], secret)

    assert response.json()["results"][0]["errors"] == {"timestamp": ["older than the retention period"]}


def test_ingest__other_time_zone__stored_as_the_same_instant(scoped: Any, post: Any) -> None:
    _, secret = scoped
    moment = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    utc = record(timestamp=moment.isoformat().replace("+00:00", "Z"))
    india = record(timestamp=moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat())

    response = post([utc, india], secret)

    assert response.json()["accepted"] == 2
    assert list(Decision.objects.values_list("ts", flat=True)) == [moment, moment]


@pytest.mark.parametrize(
    "written",
    [
        "{date}T{time}.123456789Z",  # nanoseconds: read to the microsecond
        "{date} {time}+00:00",  # space for T
        "{date}T{time}.5+00:00",
    ],
)
def test_ingest__other_iso_forms_of_a_timestamp__stored_as_the_instant_read(
    scoped: Any, post: Any, written: str
) -> None:
    _, secret = scoped
    moment = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    text = written.format(date=moment.date().isoformat(), time=moment.time().isoformat())

    response = post([record(timestamp=text)], secret)

    assert response.json()["accepted"] == 1
    assert Decision.objects.get().ts == datetime.fromisoformat(text)


def test_ingest__policy_outside_key_scope__that_record_rejected(scoped: Any, post: Any) -> None:
    _, secret = scoped
    factories.policy("other")

    response = post([record(), record(policy="other"), record(policy="missing")], secret)

    assert _statuses(response) == ["accepted", "rejected", "rejected"]
    assert response.json()["results"][1]["errors"] == {"policy": ["not in this key's scope"]}
    assert response.json()["results"][2]["errors"] == {"policy": ["not in this key's scope"]}


@pytest.mark.parametrize("header", [None, "Bearer sbk_nope_nothing", "Token abc"])
def test_ingest__missing_or_unknown_key__401(db: Any, client: Any, header: str | None) -> None:
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post(URL, data=orjson.dumps({"decisions": [record()]}), content_type="application/json", **extra)
    assert response.status_code == 401
    assert set(response.json()) == {"message", "errors"}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_ingest__revoked_key__401(scoped: Any, post: Any) -> None:
    _, secret = scoped
    from routing.models import SdkKey

    routing_services.sdk_key_revoke(key=SdkKey.objects.get(), user=None, comment="leaked")
    assert post([record()], secret).status_code == 401


def test_ingest__more_than_5000_records__413(scoped: Any, post: Any) -> None:
    _, secret = scoped
    one = record()
    response = post([one] * 5001, secret)
    assert response.status_code == 413
    assert response.json()["errors"] == {"decisions": ["at most 5000 records"]}
    assert Decision.objects.count() == 0


def test_ingest__exactly_5000_records__accepted(scoped: Any, post: Any) -> None:
    _, secret = scoped
    response = post([record(reason={}, attributes={}, client=DROP) for _ in range(5000)], secret)
    assert response.status_code == 200
    assert response.json()["accepted"] == 5000


def test_ingest__body_over_5_mb__413(scoped: Any, post: Any) -> None:
    _, secret = scoped
    padded = [record(reason={"pad": "x" * 4000}) for _ in range(1300)]  # ~5.9 MB
    response = post(padded, secret)
    assert response.status_code == 413
    assert "body" in response.json()["errors"]
    assert Decision.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"records": []}', "decisions"),
        (b'{"decisions": {"a": 1}}', "decisions"),
    ],
)
def test_ingest__malformed_body__400_naming_the_field(scoped: Any, post: Any, body: bytes, field: str) -> None:
    _, secret = scoped
    response = post(body, secret)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_ingest__get__405(scoped: Any, client: Any) -> None:
    assert client.get(URL).status_code == 405


def test_ingest__empty_batch__200_with_no_results(scoped: Any, post: Any) -> None:
    _, secret = scoped
    assert post([], secret).json() == {"results": [], "accepted": 0, "duplicates": 0, "rejected": 0}


def test_ingest__query_count__same_for_10_and_1000_records(
    scoped: Any, post: Any, django_assert_num_queries: Any
) -> None:
    """The endpoint's queries do not grow with the batch (no query per record)."""
    _, secret = scoped
    post([record()], secret)  # warms the key, scope and price caches
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        assert post([record() for _ in range(10)], secret).json()["accepted"] == 10
    with django_assert_num_queries(len(small.captured_queries)):
        assert post([record() for _ in range(1000)], secret).json()["accepted"] == 1000
    assert len(small.captured_queries) <= 9, [q["sql"][:80] for q in small.captured_queries]


_VALUES = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        1,
        5,
        -1,
        2**31,
        2**60,
        0.5,
        1.5,
        -0.0,
        float("nan"),
        float("inf"),
        "",
        "x",
        "ok",
        "checkout",
        "nul\x00",
        "tab\t",
        "back\\slash",
        "é" * 300,
        [],
        {},
        {"from": {"tier": 1}},
        {"app": 0},
        {"app": "a", "colour": "red"},
        {"k": "v"},
        {"": 1},
        {"k": {"a": 1}},
        {"k": 2**60},
        "2026-13-01T10:00:00Z",
        "2026-01-01T10:00:00",
        "x" * 201,
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    changes=st.dictionaries(st.sampled_from(sorted(ALLOWED)), _VALUES, max_size=4),
    drop=st.sets(st.sampled_from(sorted(ALLOWED)), max_size=2),
)
def test_record_check__random_field_values__named_errors_or_consistent_values(
    changes: dict[str, Any], drop: set[str]
) -> None:
    """Any mix of odd values answers field-path errors (a missing field named "required") or values
    whose COPY text reads back as the same instant; never an exception."""
    rec = record(**changes)
    for name in drop:
        rec.pop(name, None)
    now = datetime.now(UTC).timestamp()
    limits = {"policies": {"checkout": 7}, "not_before": now - 30 * 86_400, "not_after": now + 86_400}

    checked = records.record_check(rec, **limits)

    if type(checked) is dict:
        assert checked
        assert all(type(path) is str and reasons for path, reasons in checked.items())
        assert all(checked[name] == ["required"] for name in drop & records.REQUIRED)
    else:
        assert not drop & records.REQUIRED
        assert checked.ts == datetime.fromisoformat(checked.ts_text)
        assert (
            copy_rows.checked_row(checked)[-1].count("\t")
            == len(schema.COPY_COLUMNS) - len(schema.COPY_LEAD_COLUMNS) - 1
        )


def _recent_timestamp(seconds: int, zone: int, z: bool) -> str:
    moment = datetime.now(UTC) - timedelta(seconds=seconds / 7)
    text = moment.astimezone(timezone(timedelta(minutes=zone))).isoformat()
    return text.replace("+00:00", "Z") if z else text


_TEXT = st.text(max_size=6)
_PLAIN = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _TEXT
# Per field, valid values of every kind (strings with COPY specials and NUL included).
_FIELD_VALUES = {
    "event_id": st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper()),
    "timestamp": st.builds(
        _recent_timestamp, st.integers(0, 7 * 86_400 * 7), st.sampled_from([0, 330, -300]), st.booleans()
    ),
    "policy": st.just("checkout"),
    "policy_version": st.integers(1, 2**31 - 1),
    "route": st.text(min_size=1, max_size=6),
    "task_type": st.text(min_size=1, max_size=6),
    "model": st.text(min_size=1, max_size=6),
    "provider": _TEXT,
    "request_id": st.none() | _TEXT,
    "tier": st.integers(1, 5),
    "attempt": st.integers(1, 4),
    "outcome": st.sampled_from(sorted(records.OUTCOMES)),
    "confidence": st.none() | st.floats(0, 1) | st.integers(0, 1),
    "tokens_in": st.integers(0, 10**9 - 1),
    "tokens_out": st.integers(0, 10**9 - 1),
    "cost_usd": st.none() | st.floats(0, 1e6) | st.integers(0, 10**6),
    "latency_ms": st.floats(0, 86_400_000) | st.integers(0, 86_400_000),
    "reason": st.none()
    | st.dictionaries(_TEXT, _PLAIN, max_size=3)
    | st.builds(lambda tier: {"from": {"tier": tier}}, st.integers(0, 6)),
    "client": st.none()
    | st.fixed_dictionaries(
        {}, optional={"app": st.none() | _TEXT, "instance": st.none() | _TEXT, "sdk_version": st.none() | _TEXT}
    ),
    "attributes": st.none() | st.dictionaries(st.text(min_size=1, max_size=4), _PLAIN, max_size=3),
}


@settings(max_examples=500, deadline=None)
@given(
    changes=st.fixed_dictionaries({}, optional=_FIELD_VALUES),
    odd=st.dictionaries(st.sampled_from(sorted(ALLOWED)), _VALUES, max_size=1),
    drop=st.sets(st.sampled_from(sorted(ALLOWED)), max_size=1),
)
def test_copy_row__random_field_values__the_row_of_the_full_check_or_none(
    changes: dict[str, Any], odd: dict[str, Any], drop: set[str]
) -> None:
    """The hot path's COPY row accepts nothing the full check refuses, and is the row the full
    check's values give."""
    rec = record(**{**changes, **odd})
    for name in drop:
        rec.pop(name, None)
    now = datetime.now(UTC).timestamp()
    limits = {"policies": {"checkout": 7}, "not_before": now - 30 * 86_400, "not_after": now + 86_400}

    row = copy_rows.copy_row(rec, *limits.values())

    if row is not None:
        checked = records.record_check(rec, **limits)
        assert type(checked) is not dict, checked
        assert row == copy_rows.checked_row(checked)
        assert row[-1].count("\t") == len(schema.COPY_COLUMNS) - len(schema.COPY_LEAD_COLUMNS) - 1


def test_copy_row__the_sdks_record__takes_the_one_pass_path() -> None:
    now = datetime.now(UTC).timestamp()
    rec = record(confidence=0.25, latency_ms=12, cost_usd=0.5)

    row = copy_rows.copy_row(rec, {"checkout": 7}, now - 86_400, now + 86_400)

    assert row is not None
    event_id, model, _, tokens_in, tokens_out, cost, text = row
    assert (event_id, model, tokens_in, tokens_out, cost) == (rec["event_id"], "gpt-4o-mini", 1000, 200, 0.5)
    columns = dict(zip(schema.COPY_COLUMNS[len(schema.COPY_LEAD_COLUMNS) :], text.split("\t"), strict=True))
    assert columns["ts"] == rec["timestamp"]
    assert columns["policy_id"] == "7"
    assert (columns["confidence"], columns["latency_ms"], columns["escalated"]) == ("0.250000", "12.000", "f")
    assert columns["client_app"] == "tests"
    assert columns["attributes"] == '{"user_tier":"pro"}'


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_truncate_decisions")
def test_ingest__committed_batches_on_one_connection__staging_table_created_once() -> None:
    """Outside a transaction the staging table is created on a connection's first ingest only, and
    again on a new connection."""
    from django.test.utils import CaptureQueriesContext

    from metrics.ingest import services as ingest_services

    policy = factories.policy("checkout")
    key, _ = factories.sdk_key(policy)
    scope = {"key_id": key.pk, "policy_ids": frozenset({policy.pk})}

    def ingest() -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            assert ingest_services.decision_batch_ingest(records=[record(), record()], **scope).accepted == 2
        return [
            q["sql"]
            for q in queries.captured_queries
            if "CREATE TEMP TABLE" in q["sql"] and "metrics_decision_staging" in q["sql"]
        ]

    before = Decision.objects.count()  # a live-server test of the same worker may have left rows
    assert len(ingest()) == 1
    assert ingest() == []
    connection.close()
    assert len(ingest()) == 1
    assert Decision.objects.count() - before == 6
