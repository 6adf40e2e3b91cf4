"""The OpenAPI schema at /api/schema/ and the docs page at /api/docs/: a valid document that
describes every management route as it really answers, rendered from local assets only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from routing.urls import api_urlpatterns
from tests import factories


@pytest.fixture
def schema(db: Any, api: Any, viewer: Any) -> dict[str, Any]:
    response = api(viewer).get("/api/schema/?format=json")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return response.json()


def _openapi_path(route: str) -> str:
    """policies/<str:slug>/versions/<str:ref>/ -> /api/v1/policies/{slug}/versions/{ref}/"""
    return "/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_schema__is_a_valid_openapi_document(schema: dict[str, Any]) -> None:
    validate(schema)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Signalbox API"


def test_schema__yaml_by_default(db: Any, api: Any, viewer: Any) -> None:
    response = api(viewer).get("/api/schema/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi;")
    assert response.content.startswith(b"openapi: 3.")


def test_schema__documents_every_api_route_and_method(schema: dict[str, Any]) -> None:
    wanted = set()
    for pattern in api_urlpatterns:
        view = pattern.callback.view_class
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method):
                wanted.add((_openapi_path(str(pattern.pattern)), method))
    documented = {
        (path, method)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }

    assert wanted <= documented, sorted(wanted - documented)


def test_schema__each_request_body_has_its_own_component(schema: dict[str, Any]) -> None:
    """Nested serializers all named InputSerializer must not collapse into one component."""
    refs: dict[str, str] = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody")
            if body:
                ref = body["content"]["application/json"]["schema"]["$ref"]
                assert ref not in refs.values(), f"{method} {path} shares {ref}"
                refs[f"{method} {path}"] = ref
    assert len(refs) >= 9
    publish = _resolve(schema, {"$ref": refs["post /api/v1/policies/{slug}/publish/"]})
    assert set(publish["properties"]) == {"comment", "expected_revision"}


def test_schema__operations_require_token_or_session(schema: dict[str, Any]) -> None:
    for pattern in api_urlpatterns:
        path = _openapi_path(str(pattern.pattern))
        for method, operation in schema["paths"][path].items():
            assert {"tokenAuth": []} in operation["security"], (method, path)
            assert {} not in operation["security"], f"{method} {path} is documented as anonymous"


# GET endpoints whose real answers are compared with the schema's top-level properties.
READS = [
    ("/api/v1/policies/", "/api/v1/policies/"),
    ("/api/v1/policies/{slug}/", "/api/v1/policies/checkout/"),
    ("/api/v1/policies/{slug}/versions/", "/api/v1/policies/checkout/versions/"),
    ("/api/v1/policies/{slug}/versions/{ref}/", "/api/v1/policies/checkout/versions/1/"),
    ("/api/v1/policies/{slug}/draft/", "/api/v1/policies/checkout/draft/"),
    ("/api/v1/policies/{slug}/diff/", "/api/v1/policies/checkout/diff/"),
    ("/api/v1/catalog/models/", "/api/v1/catalog/models/"),
    ("/api/v1/catalog/models/{model_id}/", "/api/v1/catalog/models/gpt-4o/"),
    ("/api/v1/keys/", "/api/v1/keys/"),
    ("/api/v1/audit/", "/api/v1/audit/"),
]


@pytest.mark.parametrize(("path", "url"), READS, ids=[p for p, _ in READS])
def test_schema__responses_have_the_documented_shape(
    schema: dict[str, Any], api: Any, publisher: Any, path: str, url: str
) -> None:
    """What the client SDK reads is a contract: the documented fields are the fields sent."""
    from routing import services

    policy = factories.policy("checkout")
    services.draft_save(policy=policy, document=factories.document(default_route="extraction"), user=None)
    factories.sdk_key(policy)
    documented = _resolve(
        schema, schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    )

    body = api(publisher).get(url).json()

    assert set(body) == set(documented["properties"]), url
    if "results" in documented["properties"]:
        item = _resolve(schema, documented["properties"]["results"]["items"])
        assert body["results"], url
        assert set(body["results"][0]) == set(item["properties"]), url
        assert {p["name"] for p in schema["paths"][path]["get"]["parameters"]} >= {"limit", "offset"}


def test_schema__key_creation_documents_the_secret(schema: dict[str, Any]) -> None:
    created = _resolve(
        schema, schema["paths"]["/api/v1/keys/"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    )

    assert set(created["properties"]) == {"key", "secret"}
    key = _resolve(schema, created["properties"]["key"])
    assert key["properties"]["policies"]["items"]["type"] == "string"
    assert "hashed_secret" not in key["properties"]


# Redoc's stock template loads Google Fonts; the docs must work offline and leak nothing.
def test_docs__render_with_local_assets_only(db: Any, viewer: Any) -> None:
    client = APIClient()
    client.force_login(viewer)

    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", html)
    assert any(a.startswith("/static/") and "redoc" in a for a in assets), assets
    remote = [a for a in assets if re.match(r"^(?:https?:)?//", a)]
    assert remote == []


def test_docs__render_redoc_from_local_static(db: Any, viewer: Any) -> None:
    client = APIClient()
    client.force_login(viewer)

    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    scripts = re.findall(r"""<script\b[^>]*?\bsrc=["']([^"']+)["']""", html)
    assert scripts, html
    assert all(s.startswith("/static/") for s in scripts), scripts
    assert "/api/schema/" in html
    static = client.get(scripts[0])
    assert static.status_code == 200
