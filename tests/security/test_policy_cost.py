"""Hostile policy documents and patterns through the management API: answered fast, refused by name."""

from __future__ import annotations

import json
import time

import pytest

from routing.models import PolicyVersion
from signalbox_client.engine.validation import MAX_REGEXES
from tests import factories

pytestmark = pytest.mark.django_db

PREVIEW = "/api/v1/policies/checkout/preview/"
VALIDATE = "/api/v1/policy-document/validate/"
DRAFT = "/api/v1/policies/checkout/draft/"


def hostile_rule(pattern: str = "^(a+)+$") -> dict:
    return {"id": "hostile", "when": {"field": "text", "op": "regex", "value": pattern}, "route": "general"}


def ten_thousand_regexes() -> dict:
    """A schema-valid shape (200 rules × 50 regexes) of just under the 1,000,000-byte document limit."""
    doc = factories.document()
    pad = "b" * 38
    doc["rules"] = [
        {
            "id": f"r{r}",
            "route": "general",
            "when": {"or": [{"field": "text", "op": "regex", "value": f"^(a+)+{pad}{r}-{i}$"} for i in range(50)]},
        }
        for r in range(200)
    ]
    size = len(json.dumps(doc).encode())
    assert 900_000 < size < 1_000_000, size
    return doc


def best_of(n: int, call) -> tuple[float, object]:
    """The least CPU time of n calls (this process's: the test client serves in process). CPU time,
    not wall time, is what a hostile input costs the server, and other load does not inflate it."""
    best, result = float("inf"), None
    for _ in range(n):
        started = time.process_time()
        result = call()
        best = min(best, time.process_time() - started)
    return best, result


def test_preview__pathological_regex_on_long_text__decides_in_under_50_ms(api, viewer):
    doc = factories.document(rules=[hostile_rule()])
    factories.policy("checkout", doc=doc)
    client = api(viewer)
    body = {"version": "live", "request": {"task_type": "chat", "text": "a" * 10_000 + "!"}}

    elapsed, response = best_of(3, lambda: client.post(PREVIEW, body, format="json"))

    assert response.status_code == 200, response.json()
    assert response.json()["decision"]["reason"]["route_by"] == "task_type"  # no match: the rule did not fire
    assert elapsed < 0.05


def test_draft_save__backreference__refused_with_the_path_of_the_pattern(api, editor):
    factories.policy("checkout")
    doc = factories.document(rules=[hostile_rule("(a)\\1")])

    response = api(editor).put(DRAFT, {"document": doc}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["rules.0.when.value"] == [
        "invalid regular expression: backreferences are not supported (patterns use RE2 syntax)"
    ]


def test_validate__ten_thousand_regexes_in_a_megabyte__400_in_under_200_ms(api, viewer):
    client = api(viewer)
    payload = json.dumps({"document": ten_thousand_regexes()})

    elapsed, response = best_of(2, lambda: client.generic("POST", VALIDATE, payload, content_type="application/json"))

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["rules.2.when.or.0"] == [f"too many regex conditions: at most {MAX_REGEXES} in a document"]
    assert elapsed < 0.2


def test_draft_save__ten_thousand_regexes__refused_in_under_200_ms(api, editor):
    factories.policy("checkout")
    client = api(editor)
    payload = json.dumps({"document": ten_thousand_regexes()})

    elapsed, response = best_of(1, lambda: client.generic("PUT", DRAFT, payload, content_type="application/json"))

    assert response.status_code == 400
    assert "rules.2.when.or.0" in response.json()["errors"]
    assert elapsed < 0.2


def test_preview__stored_draft_past_the_limits__400_naming_the_limit_in_under_200_ms(api, viewer):
    policy = factories.policy("checkout")
    factories.publish(policy, factories.document())
    # A draft saved before the limits existed: written past the services, as a migration would find it.
    PolicyVersion.objects.create(policy=policy, document=ten_thousand_regexes(), base_number=1)
    client = api(viewer)
    body = {"request": {"task_type": "chat", "text": "a" * 10_000 + "!"}}

    elapsed, response = best_of(2, lambda: client.post(PREVIEW, body, format="json"))

    assert response.status_code == 400
    assert response.json()["errors"]["rules.2.when.or.0"] == [
        f"too many regex conditions: at most {MAX_REGEXES} in a document"
    ]
    assert elapsed < 0.2
