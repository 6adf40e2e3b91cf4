"""Schema fuzzing: every operation of /api/schema/, driven by schemathesis against the in-process
WSGI app with a publisher's token and seeded data, answers without a 500 and as documented
(status code, content type, headers and body).

Bounded and deterministic: derandomized Hypothesis, MAX_EXAMPLES per operation and mode.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from signalbox_client.protocol import CLIENT_PREFIX, OTLP_TRACES_PATH
from tests import factories

MAX_EXAMPLES = 40

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    deterministic=True,
    max_examples=MAX_EXAMPLES,
    allow_x00=True,
)


@pytest.fixture
def seeded(db: Any, publisher: Any, _keep_test_connection: None, settings: Any) -> dict[str, Any]:
    """A published policy with two versions and a draft, the catalog, an SDK key; a publisher's token.
    The throttle of made-up SDK keys is off: the fuzzer sends hundreds of them on purpose, and that
    throttle's 429 has its own tests (tests/security/test_sdk_key_abuse.py)."""
    settings.CLIENT_RATE_LIMIT_UNKNOWN_KEY = "off"
    from routing import services

    policy = factories.policy("checkout")
    factories.publish(policy, factories.document(default_route="extraction"))
    services.draft_save(policy=policy, document=factories.document(default_route="long_context"), user=None)
    factories.policy("unpublished", publish=False)
    key, secret = factories.sdk_key(policy)
    token = factories.api_token(publisher)
    return {"slug": policy.slug, "model_id": "gpt-4o", "key_id": key.pk, "token": token, "secret": secret}


# Left out, deliberately: the schema cannot express the domain's rules (a document the engine
# accepts, a version that exists, something to publish), so a schema-valid request may be refused
# with 400; and DRF's fields coerce scalars (0 -> "0", "1.5" -> 1.5), so some schema-invalid
# requests are accepted. Every other check runs: no 5xx, documented status codes, content types,
# headers and bodies, authentication enforced, unsupported methods refused.
LENIENT_CHECKS = [positive_data_acceptance, negative_data_rejection]

# Path parameters are mostly replaced with seeded values so the cases reach past the 404.
SEEDED_PATH_PARAMETERS = {"slug", "model_id", "key_id"}


@pytest.mark.slow
@schema.parametrize()
@settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_every_operation__fuzzed__no_500_and_conforms_to_the_schema(case: Any, seeded: dict[str, Any]) -> None:
    for name in SEEDED_PATH_PARAMETERS & set(case.path_parameters or {}):
        if zlib.crc32(repr(case.path_parameters[name]).encode()) % 4:  # a quarter keep the generated value
            case.path_parameters[name] = seeded[name]
    sdk_key = case.path.startswith(CLIENT_PREFIX + "/") or case.path == OTLP_TRACES_PATH
    auth = f"Bearer {seeded['secret']}" if sdk_key else f"Token {seeded['token']}"
    case.call_and_validate(headers={"Authorization": auth}, excluded_checks=LENIENT_CHECKS)


def _hostile_cases(seeded: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], Any, set[int]]]:
    """The inputs of the security review (docs/security.md), each as (method, path, path
    parameters, body, the statuses it may get)."""
    from tests.metrics.conftest import record
    from tests.security.test_policy_cost import hostile_rule, ten_thousand_regexes

    slug = {"slug": seeded["slug"]}
    redos = factories.document(default_route="extraction", rules=[hostile_rule()])
    backreference = factories.document(default_route="extraction", rules=[hostile_rule("(a)\\1")])
    nested: Any = "x"
    for _ in range(200):
        nested = {"a": nested}
    preview = {"version": "draft", "request": {"task_type": "chat", "text": "a" * 99_999 + "!"}}
    period = {"start": "2026-11-01", "end": "2026-11-30"}
    orphans = [
        record(policy=seeded["slug"], route="extraction", tier=2, attempt=2, outcome=o) for o in ("ok", "escalated")
    ]
    channel = {"name": "internal", "kind": "webhook", "min_severity": "ticket"}
    return [
        ("PUT", "/api/v1/policies/{slug}/draft/", slug, {"document": redos}, {200}),
        ("POST", "/api/v1/policies/{slug}/preview/", slug, preview, {200}),
        ("PUT", "/api/v1/policies/{slug}/draft/", slug, {"document": backreference}, {400}),
        ("POST", "/api/v1/policy-document/validate/", {}, {"document": ten_thousand_regexes()}, {400}),
        ("POST", "/api/v1/policy-document/validate/", {}, {"document": nested}, {400}),
        ("POST", "/api/v1/metrics/whatif/", {}, {"policy": seeded["slug"], "document": redos, **period}, {200}),
        (
            "POST",
            "/api/v1/metrics/whatif/",
            {},
            {"policy": seeded["slug"], "document": ten_thousand_regexes(), **period},
            {400},
        ),
        ("POST", "/api/v1/client/decisions", {}, {"decisions": orphans}, {200}),
        *(
            ("POST", "/api/v1/metrics/channels/", {}, {**channel, "url": url}, {400})
            for url in (
                "http://127.0.0.1:9/hook",
                "http://10.0.0.1/hook",
                "http://169.254.169.254/latest/meta-data/",
                "http://[::1]/hook",
                "http://0x7f000001/hook",
                "https://user:secret@hooks.example.com/hook",
            )
        ),
    ]


@pytest.mark.slow
def test_hostile_inputs__through_the_schema__refused_or_answered_as_documented(seeded: dict[str, Any]) -> None:
    """The security review's hostile inputs, sent as schemathesis cases so every answer is also
    checked against the schema (documented status, content type, headers, body); the order
    matters: the ReDoS draft is saved before it is previewed."""
    for method, path, parameters, body, statuses in _hostile_cases(seeded):
        case = schema[path][method].Case(path_parameters=parameters, body=body, media_type="application/json")
        auth = f"Bearer {seeded['secret']}" if path.startswith(CLIENT_PREFIX + "/") else f"Token {seeded['token']}"
        response = case.call_and_validate(headers={"Authorization": auth}, excluded_checks=LENIENT_CHECKS)
        assert response.status_code in statuses, (method, path, response.status_code, response.text[:300])
        assert response.elapsed < 5, (method, path, response.elapsed)
