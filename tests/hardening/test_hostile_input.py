"""Hostile input on every write endpoint (management API, client decisions, admin forms): oversized
and deeply nested bodies, wrong encodings and content types, huge numbers, NaN/Infinity, unicode
and SQL-looking strings, timestamps out of range. Never a 500; a refusal is a 4xx whose JSON
names the field, and writes nothing. Secrets never reach the logs or an error body."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests import factories
from tests.hardening.conftest import decision_count, record


@dataclass(frozen=True)
class Target:
    method: str
    url: str
    body: Callable[[Any], dict[str, Any]]  # a valid body with `value` put in the endpoint's text field
    field: str  # the field `value` lands in, as error paths name it
    client_api: bool = False


def _doc_with(value: Any) -> dict[str, Any]:
    return {"document": factories.document(default_route=value), "rebase": True}


TARGETS = {
    "policies_create": Target("post", "/api/v1/policies/", lambda v: {"slug": v, "name": "x"}, "slug"),
    "policies_update": Target("patch", "/api/v1/policies/checkout/", lambda v: {"name": v}, "name"),
    "draft_save": Target("put", "/api/v1/policies/checkout/draft/", _doc_with, "default_route"),
    "document_validate": Target(
        "post",
        "/api/v1/policy-document/validate/",
        lambda v: {"document": factories.document(default_route=v)},
        "default_route",
    ),
    "keys_create": Target("post", "/api/v1/keys/", lambda v: {"name": v, "policies": ["checkout"]}, "name"),
    "preview": Target(
        "post", "/api/v1/policies/checkout/preview/", lambda v: {"request": {"task_type": v}}, "task_type"
    ),
    "publish": Target("post", "/api/v1/policies/checkout/publish/", lambda v: {"comment": v}, "comment"),
    "decisions": Target(
        "post", "/api/v1/client/decisions", lambda v: {"decisions": [record(task_type=v)]}, "task_type", client_api=True
    ),
}

# Values put in a text field: each must be stored verbatim, or refused naming the field.
TEXT_VALUES = {
    "rtl": "\u202eevil\u202c",
    "emoji": "🚀🔥",
    "zero_width": "a\u200bb\ufeff",
    "nul": "a\x00b",
    "sql": "x'); DROP TABLE routing_policy; --",
    "sql_or": "' OR '1'='1",
    "very_long": "x" * 100_000,
    "lone_surrogate_escape": "\\ud800",
}

# Raw bodies (bytes, content type): never accepted as they stand.
RAW_BODIES = {
    "deeply_nested": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "invalid_utf8": (b'{"name": "\xff\xfe\xfa"}', "application/json"),
    "latin1": ('{"name": "café"}'.encode("latin-1"), "application/json"),
    "utf16": ('{"name": "x"}'.encode("utf-16"), "application/json"),
    "not_json": (b"{name: x,}", "application/json"),
    "empty": (b"", "application/json"),
    "array": (b"[1, 2, 3]", "application/json"),
    "xml": (b"<policy><name>x</name></policy>", "application/xml"),
    "text": (b'{"name": "x"}', "text/plain"),
    "form": (b"name=x&slug=y", "application/x-www-form-urlencoded"),
}

# JSON literals placed in a number field.
NUMBER_LITERALS = {
    "overflow_float": "1e309",
    "huge_int": "1" + "0" * 400,
    "nan": "NaN",
    "infinity": "Infinity",
    "minus_infinity": "-Infinity",
    "negative": "-1",
}


def _counts() -> tuple[int, ...]:
    from routing.models import AuditEntry, Policy, PolicyVersion, SdkKey

    return (
        AuditEntry.objects.count(),
        Policy.objects.count(),
        PolicyVersion.objects.count(),
        SdkKey.objects.count(),
        decision_count(),
    )


@pytest.fixture
def send(world: Any, client: Any, publisher: Any) -> Callable[..., Any]:
    token = factories.api_token(publisher)

    def go(target: Target, body: bytes, content_type: str = "application/json") -> Any:
        auth = f"Bearer {world.secret}" if target.client_api else f"Token {token}"
        return getattr(client, target.method)(target.url, data=body, content_type=content_type, HTTP_AUTHORIZATION=auth)

    return go


def _assert_refused_cleanly(response: Any, before: tuple[int, ...], field: str | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) >= {"message", "errors"}
    assert body["message"]
    assert body["errors"], body
    if field is not None:
        assert any(field in path for path in body["errors"]), body["errors"]
    assert _counts() == before, "a refused request wrote something"


@pytest.mark.parametrize("kind", sorted(RAW_BODIES))
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_raw_body__malformed_or_wrong_type__clear_4xx_and_nothing_written(send: Any, name: str, kind: str) -> None:
    body, content_type = RAW_BODIES[kind]
    before = _counts()

    response = send(TARGETS[name], body, content_type)

    if response.status_code < 400:
        # The client endpoint reads JSON whatever the label says; an empty PATCH changes nothing.
        assert (TARGETS[name].client_api and kind == "text") or (name == "policies_update" and kind == "empty"), (
            response.status_code
        )
        if name != "policies_update":  # an empty PATCH still writes an audit entry (noted, harmless)
            assert _counts() == before or TARGETS[name].client_api
        return
    _assert_refused_cleanly(response, before)


@pytest.mark.parametrize("kind", sorted(TEXT_VALUES))
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_text_field__hostile_string__stored_verbatim_or_refused_by_field(send: Any, name: str, kind: str) -> None:
    target, value = TARGETS[name], TEXT_VALUES[kind]
    before = _counts()

    response = send(target, json.dumps(target.body(value)).encode())

    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        _assert_refused_cleanly(response, before)
        return
    if target.client_api:  # per-record results: the record is accepted verbatim or rejected by field
        result = response.json()["results"][0]
        if result["status"] == "rejected":
            assert any(target.field in path for path in result["errors"]), result
            assert _counts() == before


@pytest.mark.parametrize("kind", sorted(NUMBER_LITERALS))
@pytest.mark.parametrize(
    ("name", "template", "field"),
    [
        ("draft_save", '{"document": %s, "expected_revision": %s}', "expected_revision"),
        ("preview", '{"request": {"task_type": "chat", "prompt_tokens": %s}}', "prompt_tokens"),
        ("rollback", '{"to_version": %s, "comment": "x"}', "to_version"),
        ("decisions", '{"decisions": [%s]}', "tokens_in"),
    ],
)
def test_number_field__huge_nan_or_infinite__refused_by_field(
    world: Any, send: Any, name: str, template: str, field: str, kind: str
) -> None:
    literal = NUMBER_LITERALS[kind]
    if name == "draft_save":
        body = template % (json.dumps(factories.document()), literal)
        target = TARGETS["draft_save"]
    elif name == "rollback":
        body = template % literal
        target = Target("post", "/api/v1/policies/checkout/rollback/", lambda v: {}, "to_version")
    elif name == "decisions":
        rec = json.dumps(record(tokens_in=0)).replace('"tokens_in": 0', f'"tokens_in": {literal}')
        body = template % rec
        target = TARGETS["decisions"]
    else:
        body = template % literal
        target = TARGETS[name]
    before = _counts()

    response = send(target, body.encode())

    assert response.status_code < 500, response.content[:300]
    if target.client_api and response.status_code == 200:
        result = response.json()["results"][0]
        assert result["status"] == "rejected", result
        assert any(field in path for path in result["errors"]), result
        assert _counts() == before
    elif literal in {"NaN", "Infinity", "-Infinity"} and not target.client_api:
        _assert_refused_cleanly(response, before, "body")  # not JSON: the parser refuses the body
    else:
        _assert_refused_cleanly(response, before, field)


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "yesterday",
        "2024-13-45T99:99:99Z",
        "",
        "1e309",
        "2024-01-01T00:00:00+99:00",
    ],
)
def test_decision_timestamp__far_or_malformed__record_rejected_by_field(world: Any, send: Any, timestamp: str) -> None:
    before = _counts()

    response = send(TARGETS["decisions"], json.dumps({"decisions": [record(timestamp=timestamp)]}).encode())

    assert response.status_code == 200, response.content[:300]
    result = response.json()["results"][0]
    assert result["status"] == "rejected"
    assert "timestamp" in result["errors"]
    assert _counts() == before


@pytest.mark.parametrize("kind", ["nul", "rtl", "sql", "very_long", "zero_width"])
@pytest.mark.parametrize("form", ["sdkkey_add", "sdkkey_revoke", "policy_publish"])
def test_admin_form__hostile_string__no_500_and_refusals_write_nothing(
    world: Any, make_user: Any, kind: str, form: str
) -> None:
    from django.test import Client

    client = Client()
    client.force_login(make_user("publisher"))
    url, data = {
        "sdkkey_add": ("/admin/routing/sdkkey/add/", {"name": TEXT_VALUES[kind], "policies": [world.checkout.pk]}),
        "sdkkey_revoke": (f"/admin/routing/sdkkey/{world.key.pk}/revoke/", {"comment": TEXT_VALUES[kind]}),
        "policy_publish": (f"/admin/routing/policy/{world.checkout.pk}/publish/", {"comment": TEXT_VALUES[kind]}),
    }[form]
    before = _counts()

    response = client.post(url, data)

    assert response.status_code < 500
    if response.status_code != 302:  # not done: the form is shown again with the reason
        assert response.status_code in {200, 400, 409, 413}
        assert _counts() == before


# --- secrets -------------------------------------------------------------------------------------


def test_secrets__never_in_logs_or_error_bodies(world: Any, client: Any, publisher: Any, caplog: Any) -> None:
    from routing import services

    token = factories.api_token(publisher)
    revoked_key, revoked = factories.sdk_key(world.checkout, name="old")
    services.sdk_key_revoke(key=revoked_key, user=None, comment="rotated")
    secrets = [world.secret, world.billing_secret, token, revoked]
    caplog.set_level(logging.DEBUG)
    for name in ("django.request", "django.server", "django.security.csrf", ""):
        caplog.set_level(logging.DEBUG, logger=name)
    bodies = []

    for secret in secrets:
        requests = [
            # An SDK key as a management token, and a management token as an SDK key.
            ("get", "/api/v1/policies/", {"HTTP_AUTHORIZATION": f"Token {secret}"}, None),
            ("get", "/api/v1/policies/", {"HTTP_AUTHORIZATION": f"Bearer {secret}"}, None),
            ("get", f"/api/v1/client/policies/billing?key={secret}", {"HTTP_AUTHORIZATION": f"Bearer {secret}"}, None),
            (
                "post",
                "/api/v1/client/decisions",
                {"HTTP_AUTHORIZATION": f"Bearer {secret}x"},
                {"decisions": [record()]},
            ),
            # Secrets inside bodies, in fields that are refused and echoed nowhere.
            (
                "post",
                "/api/v1/client/decisions",
                {"HTTP_AUTHORIZATION": f"Bearer {world.secret}"},
                {"decisions": [record(task_type=secret * 50, attributes={"k": secret})], "extra": secret},
            ),
            (
                "post",
                "/api/v1/policies/",
                {"HTTP_AUTHORIZATION": f"Token {token}"},
                {"slug": secret, "name": secret * 10, "unknown": secret},
            ),
            # (A 40-hex management token here would be echoed as an unknown slug: it looks like one.)
            *(
                [
                    (
                        "post",
                        "/api/v1/keys/",
                        {"HTTP_AUTHORIZATION": f"Token {token}"},
                        {"name": "x", "policies": [secret]},
                    )
                ]
                if secret != token
                else []
            ),
            (
                "put",
                "/api/v1/policies/checkout/draft/",
                {"HTTP_AUTHORIZATION": f"Token {token}"},
                {"document": {"schema_version": 1, "default_route": secret}},
            ),
        ]
        for method, url, headers, body in requests:
            response = getattr(client, method)(
                url, data=json.dumps(body) if body is not None else None, content_type="application/json", **headers
            )
            assert response.status_code < 500
            if response.status_code >= 400 or method == "get":
                bodies.append(response.content.decode(errors="replace"))

    # What the configured handlers write: the project's format, plus each record's arguments.
    from django.conf import settings

    formatter = logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"])
    logged = "\n".join(f"{formatter.format(r)} {r.args}" for r in caplog.records)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    for secret in secrets:
        assert secret not in logged
        leaked = [body[:300] for body in bodies if secret in body]
        assert not leaked, leaked
