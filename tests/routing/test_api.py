"""The management API over HTTP: who may call what, the flows editors and publishers use, what
bad input gets back, what racing writers get, and how many queries each list costs."""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.urls import resolve
from rest_framework.test import APIClient

from controlplane.errors import Conflict, DomainError
from routing import selectors, services
from routing.models import ApiToken, AuditEntry, CatalogModel, ModelPrice, Policy, PolicyVersion, SdkKey
from routing.urls import api_urlpatterns
from tests import factories

API = "/api/v1"


# --- helpers ---------------------------------------------------------------------------------------


def doc_with(path: str, value: Any) -> dict[str, Any]:
    """The base document with one dotted path set (list indexes as numbers)."""
    doc = copy.deepcopy(factories.BASE_DOCUMENT)
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


def db_state() -> dict[str, Any]:
    """Everything a refused or invalid request must leave as it was."""
    return {
        "policies": list(
            Policy.objects.order_by("pk").values_list("slug", "name", "description", "live_version_id", "last_number")
        ),
        "versions": list(
            PolicyVersion.objects.order_by("pk").values_list(
                "pk", "status", "number", "revision", "base_number", "document", "comment"
            )
        ),
        "keys": list(SdkKey.objects.order_by("pk").values_list("pk", "name", "revoked_at")),
        "key_scopes": list(SdkKey.policies.through.objects.order_by("pk").values_list("sdkkey_id", "policy_id")),
        "audit": list(AuditEntry.objects.order_by("pk").values_list("pk", flat=True)),
    }


def assert_error_shape(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) >= {"message", "errors"}, body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["errors"], dict)
    for path, reasons in body["errors"].items():
        assert isinstance(path, str), body
        assert path, body
        assert isinstance(reasons, list), body
        assert all(isinstance(r, str) for r in reasons), body
    return body


DOC_V2 = doc_with("default_route", "extraction")
DOC_DRAFT = doc_with("routes.extraction.escalate.min_confidence", 0.8)


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    """checkout: v1 (base document), v2 (default_route changed) live, a draft on v2; one SDK key."""
    factories.catalog()
    policy = factories.policy("checkout")
    factories.publish(policy, DOC_V2, comment="route by default to extraction")
    services.draft_save(policy=policy, document=DOC_DRAFT, user=None)
    key, _ = factories.sdk_key(policy)
    return {"policy": policy, "key": key}


# --- auth and the role matrix ----------------------------------------------------------------------

VIEW, EDIT, PUBLISH = "view", "edit", "publish"
ALLOWED = {
    VIEW: {"viewer", "editor", "publisher", "superuser"},
    EDIT: {"editor", "publisher", "superuser"},
    PUBLISH: {"publisher", "superuser"},
}
PRINCIPALS = ["anonymous", "no-role", "viewer", "editor", "publisher", "superuser"]
# How a principal signs in: a session (the admin's login), its own API token, or a token narrowed to
# the principal's role but owned by a superuser (the token's role, not its owner, sets the limit).
CREDENTIALS = ["session", "token", "role-token"]

# (method, url, body, who may, status on success); {key} is the fixture key's id.
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, str, int]] = [
    ("get", f"{API}/policies/", None, VIEW, 200),
    ("post", f"{API}/policies/", {"slug": "search", "name": "Search", "document": factories.document()}, EDIT, 201),
    ("get", f"{API}/policies/checkout/", None, VIEW, 200),
    ("patch", f"{API}/policies/checkout/", {"name": "Checkout flow"}, EDIT, 200),
    ("get", f"{API}/policies/checkout/versions/", None, VIEW, 200),
    ("get", f"{API}/policies/checkout/versions/1/", None, VIEW, 200),
    ("get", f"{API}/policies/checkout/draft/", None, VIEW, 200),
    ("put", f"{API}/policies/checkout/draft/", {"document": factories.document(), "expected_revision": 1}, EDIT, 200),
    ("delete", f"{API}/policies/checkout/draft/", None, EDIT, 204),
    ("post", f"{API}/policies/checkout/publish/", {"comment": "ship it"}, PUBLISH, 201),
    ("post", f"{API}/policies/checkout/rollback/", {"to_version": 1, "comment": "bad routing"}, PUBLISH, 201),
    ("get", f"{API}/policies/checkout/diff/", None, VIEW, 200),
    ("post", f"{API}/policies/checkout/preview/", {"request": {"task_type": "extraction"}}, VIEW, 200),
    ("get", f"{API}/policy-document/schema/", None, VIEW, 200),
    ("post", f"{API}/policy-document/validate/", {"document": factories.document()}, VIEW, 200),
    ("get", f"{API}/catalog/models/", None, VIEW, 200),
    ("get", f"{API}/catalog/models/gpt-4o/", None, VIEW, 200),
    ("get", f"{API}/keys/", None, VIEW, 200),
    ("post", f"{API}/keys/", {"name": "checkout-web", "policies": ["checkout"]}, PUBLISH, 201),
    ("post", f"{API}/keys/{{key}}/revoke/", {"comment": "leaked"}, PUBLISH, 200),
    ("get", f"{API}/audit/", None, VIEW, 200),
    ("get", f"{API}/tokens/", None, VIEW, 200),
    ("post", f"{API}/tokens/", {"name": "ci", "role": "viewer"}, VIEW, 201),
    ("post", f"{API}/tokens/{{key}}/revoke/", {"comment": "rotated"}, VIEW, 200),  # {key}: the principal's token
]
WRITES = {"post", "put", "patch", "delete"}
READ_ONLY_POSTS = {f"{API}/policy-document/validate/", f"{API}/policies/checkout/preview/"}


def _principal(name: str, make_user: Callable[..., Any]) -> Any:
    if name == "anonymous":
        return None
    if name == "superuser":
        return make_user(None, superuser=True)
    return make_user(None if name == "no-role" else name)


def _call(client: APIClient, method: str, url: str, body: Any = None) -> Any:
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, format="json")


def test_role_matrix__covers_every_api_route_and_method() -> None:
    wanted = set()
    for pattern in api_urlpatterns:
        view = pattern.callback.view_class
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method):
                wanted.add((f"api/v1/{pattern.pattern}", method))
    covered = {(resolve(url.format(key=1)).route, method) for method, url, *_ in ENDPOINTS}
    assert covered == wanted


def _signed_in(credential: str, principal: str, make_user: Callable[..., Any], api: Callable[..., APIClient]) -> Any:
    """(client, the user the request acts as or None)."""
    user = _principal(principal, make_user)
    if user is None:
        return APIClient(), None
    if credential == "session":
        client = APIClient()
        client.force_login(user)
        return client, user
    if credential == "token":
        return api(user), user
    # role-token: a superuser's token of the principal's role (a no-role principal: a viewer-role token
    # of a user without a role, which reaches nothing).
    if principal in {"no-role", "superuser"}:
        key = factories.api_token(user)
        owner = user
    else:
        owner = make_user(None, superuser=True)
        key = factories.api_token(owner, role=principal)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client, owner


class _RolledBack(Exception):
    """Raised to roll one principal's savepoint back."""


def _role_matrix_case(
    world: dict[str, Any],
    api: Callable[..., APIClient],
    make_user: Callable[..., Any],
    credential: str,
    principal: str,
    endpoint: tuple[str, str, dict[str, Any] | None, str, int],
) -> str | None:
    """One principal against one endpoint: what went wrong, or None."""
    method, url, body, needs, ok = endpoint
    client, acting = _signed_in(credential, principal, make_user, api)
    if "/tokens/" in url:  # revoke a token of the acting user's own
        owner = acting or make_user("viewer")
        from routing.models import ApiToken

        factories.api_token(owner, name="to-revoke")
        url = url.format(key=ApiToken.objects.get(user=owner, name="to-revoke").pk)
    url = url.format(key=world["key"].pk)
    before = db_state()

    response = _call(client, method, url, body)

    if principal in ALLOWED[needs]:
        if response.status_code != ok:
            return f"{response.status_code}, wanted {ok}: {response.content[:200]!r}"
        if method in WRITES and url not in READ_ONLY_POSTS and len(db_state()["audit"]) <= len(before["audit"]):
            return "the write left no audit entry"
        return None
    expected = 401 if principal == "anonymous" else 403
    if response.status_code != expected:
        return f"{response.status_code}, wanted {expected}: {response.content[:200]!r}"
    assert_error_shape(response)
    if principal == "anonymous" and response["WWW-Authenticate"] != "Token":
        return "no WWW-Authenticate: Token"
    if db_state() != before:
        return "a refused request changed the database"
    return None


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize(
    "endpoint",
    ENDPOINTS,
    ids=[f"{m.upper()} {u.removeprefix(API)}" for m, u, *_ in ENDPOINTS],
)
def test_role_matrix__each_principal_gets_what_its_role_allows(
    world: dict[str, Any],
    api: Callable[..., APIClient],
    make_user: Callable[..., Any],
    credential: str,
    endpoint: tuple[str, str, dict[str, Any] | None, str, int],
) -> None:
    """Every principal in turn, each in a savepoint rolled back afterwards (so each meets the same
    world, built once per endpoint and credential); every mismatch is listed."""
    from django.core.cache import cache
    from django.db import transaction

    from controlplane.memory import forget_all

    problems = {}
    # Anonymous has no credential: it is asked once, with the session credential's cases.
    for principal in PRINCIPALS if credential == "session" else PRINCIPALS[1:]:
        try:
            with transaction.atomic():
                problem = _role_matrix_case(world, api, make_user, credential, principal, endpoint)
                raise _RolledBack
        except _RolledBack:
            pass
        forget_all()  # nothing a rolled-back write cached (a live version, a key's state) outlives it
        cache.clear()
        if problem:
            problems[principal] = problem
    assert problems == {}


def test_token_auth__unknown_token__401_in_error_shape(world: dict[str, Any]) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0000000000000000000000000000000000000000")

    response = client.get(f"{API}/policies/")

    assert response.status_code == 401
    assert "token" in assert_error_shape(response)["message"].lower()


def test_token_auth__inactive_user__401_and_nothing_written(
    world: dict[str, Any], api: Callable[..., APIClient], publisher: Any
) -> None:
    client = api(publisher)
    publisher.is_active = False
    publisher.save()
    before = db_state()

    response = client.post(f"{API}/policies/checkout/publish/", {"comment": "x"}, format="json")

    assert response.status_code == 401
    assert_error_shape(response)
    assert db_state() == before


def test_session_auth__logged_in_viewer__reads(world: dict[str, Any], viewer: Any) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(viewer)

    response = client.get(f"{API}/policies/checkout/")

    assert response.status_code == 200
    assert response.json()["live_version"] == 2


def test_session_auth__write_without_csrf_token__refused_and_nothing_written(
    world: dict[str, Any], publisher: Any
) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(publisher)
    before = db_state()

    response = client.post(f"{API}/policies/checkout/publish/", {"comment": "ship it"}, format="json")

    assert response.status_code == 403
    assert "csrf" in assert_error_shape(response)["message"].lower()
    assert db_state() == before


def test_session_auth__write_with_csrf_token__allowed(world: dict[str, Any], publisher: Any) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(publisher)
    request = HttpRequest()
    token = get_token(request)
    client.cookies["csrftoken"] = request.META["CSRF_COOKIE"]

    response = client.post(
        f"{API}/policies/checkout/publish/", {"comment": "ship it"}, format="json", HTTP_X_CSRFTOKEN=token
    )

    assert response.status_code == 201, response.content
    assert response.json()["number"] == 3


# --- flows -----------------------------------------------------------------------------------------


@pytest.fixture
def catalog(db: Any) -> None:
    factories.catalog()


def test_policy_create__with_document__creates_a_draft(
    catalog: None, api: Callable[..., APIClient], editor: Any
) -> None:
    response = api(editor).post(
        f"{API}/policies/", {"slug": "search", "name": "Search", "document": factories.document()}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["slug"], body["owner"], body["live_version"]) == ("search", editor.username, None)
    draft = api(editor).get(f"{API}/policies/search/draft/").json()
    assert (draft["status"], draft["revision"], draft["base_number"]) == ("draft", 1, None)
    assert draft["document"] == factories.document()


def test_policy_create__existing_slug__conflict(
    world: dict[str, Any], api: Callable[..., APIClient], editor: Any
) -> None:
    before = db_state()

    response = api(editor).post(f"{API}/policies/", {"slug": "checkout", "name": "Again"}, format="json")

    assert response.status_code == 409
    assert assert_error_shape(response)["errors"] == {"slug": ["already exists"]}
    assert db_state() == before


def test_policy_create__invalid_document__no_policy_left_behind(
    catalog: None, api: Callable[..., APIClient], editor: Any
) -> None:
    before = db_state()

    response = api(editor).post(
        f"{API}/policies/",
        {"slug": "search", "name": "Search", "document": doc_with("default_route", "nowhere")},
        format="json",
    )

    assert response.status_code == 400
    assert "default_route" in assert_error_shape(response)["errors"]
    assert db_state() == before


def test_draft_save__expected_revision_current__revision_goes_up(
    world: dict[str, Any], api: Callable[..., APIClient], editor: Any
) -> None:
    new = doc_with("routes.extraction.latency_budget_ms", 8000)

    response = api(editor).put(
        f"{API}/policies/checkout/draft/", {"document": new, "expected_revision": 1}, format="json"
    )

    assert response.status_code == 200, response.content
    assert (response.json()["revision"], response.json()["document"]) == (2, new)
    assert response.json()["author"] == editor.username


def test_draft_save__stale_expected_revision__rejected_with_conflict(
    world: dict[str, Any], api: Callable[..., APIClient], editor: Any
) -> None:
    services.draft_save(policy=world["policy"], document=factories.document(), user=None)  # revision 2
    before = db_state()

    response = api(editor).put(
        f"{API}/policies/checkout/draft/", {"document": DOC_V2, "expected_revision": 1}, format="json"
    )

    assert response.status_code == 409
    body = assert_error_shape(response)
    assert body["current_revision"] == 2
    assert "expected_revision" in body["errors"]
    assert db_state() == before


def test_publish__draft__version_one_goes_live(catalog: None, api: Callable[..., APIClient], publisher: Any) -> None:
    factories.policy("search", publish=False)

    response = api(publisher).post(f"{API}/policies/search/publish/", {"comment": "first"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["number"], body["status"], body["comment"], body["author"]) == (
        1,
        "published",
        "first",
        publisher.username,
    )
    assert api(publisher).get(f"{API}/policies/search/").json()["live_version"] == 1
    assert api(publisher).get(f"{API}/policies/search/draft/").status_code == 404
    entry = AuditEntry.objects.get(action=AuditEntry.Action.PUBLISH, policy__slug="search")
    token = ApiToken.objects.get(user=publisher)
    assert (entry.target, entry.comment, entry.actor_label) == (
        "search:v1",
        "first",
        f"{publisher.username} via token tests {token.prefix}",
    )
    assert entry.api_token == token


@pytest.mark.parametrize("body", [{}, {"comment": ""}, {"comment": "   "}], ids=["missing", "empty", "blank"])
def test_publish__without_comment__400_names_comment(
    world: dict[str, Any], api: Callable[..., APIClient], publisher: Any, body: dict[str, Any]
) -> None:
    before = db_state()

    response = api(publisher).post(f"{API}/policies/checkout/publish/", body, format="json")

    assert response.status_code == 400
    assert "comment" in assert_error_shape(response)["errors"]
    assert db_state() == before


def test_publish__stale_draft__rejected_with_conflict_and_changes(
    world: dict[str, Any], api: Callable[..., APIClient], publisher: Any
) -> None:
    """The draft was made on v2; a rollback made v3 live meanwhile."""
    services.policy_rollback(policy=world["policy"], to_number=1, user=None, comment="undo")
    before = db_state()

    response = api(publisher).post(f"{API}/policies/checkout/publish/", {"comment": "ship"}, format="json")

    assert response.status_code == 409
    body = assert_error_shape(response)
    assert (body["base_number"], body["live_number"]) == (2, 3)
    assert body["changes"] == [{"op": "changed", "path": "default_route", "old": "extraction", "new": "general"}]
    assert db_state() == before


def test_publish__stale_expected_revision__rejected_with_conflict(
    world: dict[str, Any], api: Callable[..., APIClient], publisher: Any
) -> None:
    before = db_state()

    response = api(publisher).post(
        f"{API}/policies/checkout/publish/", {"comment": "ship", "expected_revision": 7}, format="json"
    )

    assert response.status_code == 409
    assert assert_error_shape(response)["current_revision"] == 1
    assert db_state() == before


def test_rollback__to_v1_after_v2__publishes_v3_with_v1_document(
    world: dict[str, Any], api: Callable[..., APIClient], publisher: Any
) -> None:
    response = api(publisher).post(
        f"{API}/policies/checkout/rollback/", {"to_version": 1, "comment": "v2 misroutes"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    v1 = api(publisher).get(f"{API}/policies/checkout/versions/1/").json()
    assert (body["number"], body["rollback_of"], body["base_number"]) == (3, 1, 2)
    assert body["document"] == v1["document"] == factories.document()
    assert api(publisher).get(f"{API}/policies/checkout/versions/live/").json()["number"] == 3
    entry = AuditEntry.objects.filter(action=AuditEntry.Action.ROLLBACK).get()
    assert entry.comment.startswith("rollback to v1")
    assert entry.target == "checkout:v3"


@pytest.mark.parametrize(
    ("to_version", "status", "field"), [(2, 409, "to_version"), (9, 404, "to_version")], ids=["already-live", "unknown"]
)
def test_rollback__to_live_or_unknown_version__refused(
    world: dict[str, Any], api: Callable[..., APIClient], publisher: Any, to_version: int, status: int, field: str
) -> None:
    before = db_state()

    response = api(publisher).post(
        f"{API}/policies/checkout/rollback/", {"to_version": to_version, "comment": "undo"}, format="json"
    )

    assert response.status_code == status
    assert field in assert_error_shape(response)["errors"]
    assert db_state() == before


def test_draft_discard__deletes_the_draft_then_404(
    world: dict[str, Any], api: Callable[..., APIClient], editor: Any
) -> None:
    client = api(editor)

    assert client.delete(f"{API}/policies/checkout/draft/").status_code == 204
    assert client.get(f"{API}/policies/checkout/draft/").status_code == 404
    assert client.delete(f"{API}/policies/checkout/draft/").status_code == 404
    assert PolicyVersion.objects.filter(status="draft").count() == 0


def test_diff__between_two_versions__lists_the_changes(
    world: dict[str, Any], api: Callable[..., APIClient], viewer: Any
) -> None:
    response = api(viewer).get(f"{API}/policies/checkout/diff/?from=1&to=2")

    assert response.status_code == 200
    assert response.json() == {
        "from": "v1",
        "to": "v2",
        "changes": [{"op": "changed", "path": "default_route", "old": "general", "new": "extraction"}],
    }


def test_diff__default_is_live_against_draft(world: dict[str, Any], api: Callable[..., APIClient], viewer: Any) -> None:
    response = api(viewer).get(f"{API}/policies/checkout/diff/")

    body = response.json()
    assert (body["from"], body["to"]) == ("v2", "draft")
    assert sorted(body["changes"], key=lambda c: c["path"]) == [
        {"op": "changed", "path": "default_route", "old": "extraction", "new": "general"},
        {"op": "changed", "path": "routes.extraction.escalate.min_confidence", "old": 0.7, "new": 0.8},
    ]


@pytest.mark.parametrize("query", ["from=1&to=9", "from=x", "to=-1"])
def test_diff__bad_reference__404(
    world: dict[str, Any], api: Callable[..., APIClient], viewer: Any, query: str
) -> None:
    response = api(viewer).get(f"{API}/policies/checkout/diff/?{query}")

    assert response.status_code == 404
    assert "version" in assert_error_shape(response)["errors"]


def test_versions_list__published_newest_first_without_the_draft(
    world: dict[str, Any], api: Callable[..., APIClient], viewer: Any
) -> None:
    response = api(viewer).get(f"{API}/policies/checkout/versions/")

    body = response.json()
    assert body["count"] == 2
    assert [(v["number"], v["status"], v["comment"]) for v in body["results"]] == [
        (2, "published", "route by default to extraction"),
        (1, "published", "first version"),
    ]
    assert "document" not in body["results"][0]


@pytest.mark.parametrize(
    ("ref", "number", "document"),
    [("1", 1, factories.document()), ("2", 2, DOC_V2), ("live", 2, DOC_V2), ("draft", None, DOC_DRAFT)],
)
def test_version_detail__by_number_live_or_draft(
    world: dict[str, Any],
    api: Callable[..., APIClient],
    viewer: Any,
    ref: str,
    number: int | None,
    document: dict[str, Any],
) -> None:
    response = api(viewer).get(f"{API}/policies/checkout/versions/{ref}/")

    assert response.status_code == 200
    assert (response.json()["number"], response.json()["document"]) == (number, document)


@pytest.mark.parametrize("ref", ["3", "0", "latest", "+1", "1_0", "01x", "9" * 5000])
def test_version_detail__bad_reference__404(
    world: dict[str, Any], api: Callable[..., APIClient], viewer: Any, ref: str
) -> None:
    response = api(viewer).get(f"{API}/policies/checkout/versions/{ref}/")

    assert response.status_code == 404
    assert "version" in assert_error_shape(response)["errors"]


def test_policy_unknown_slug__404(world: dict[str, Any], api: Callable[..., APIClient], viewer: Any) -> None:
    response = api(viewer).get(f"{API}/policies/nope/versions/")

    assert response.status_code == 404
    assert assert_error_shape(response)["errors"] == {"policy": ["not found"]}


def test_catalog_list__filters_by_provider_and_search(
    catalog: None, api: Callable[..., APIClient], viewer: Any
) -> None:
    client = api(viewer)

    by_provider = client.get(f"{API}/catalog/models/?provider=anthropic").json()
    by_search = client.get(f"{API}/catalog/models/?search=4O").json()
    both = client.get(f"{API}/catalog/models/?provider=openai&search=mini").json()

    assert [m["model_id"] for m in by_provider["results"]] == [
        "claude-3-5-haiku-20241022",
        "claude-3-5-sonnet-20241022",
    ]
    assert [m["model_id"] for m in by_search["results"]] == ["gpt-4o", "gpt-4o-mini"]
    assert [m["model_id"] for m in both["results"]] == ["gpt-4o-mini"]


def test_catalog_detail__prices_newest_first(catalog: None, api: Callable[..., APIClient], viewer: Any) -> None:
    from django.utils import timezone

    model = CatalogModel.objects.get(model_id="gpt-4o")
    newer = timezone.now() - timezone.timedelta(days=1)
    ModelPrice.objects.create(
        model=model, input_per_mtok="2.000000", output_per_mtok="8.000000", effective_from=newer, source="price cut"
    )

    response = api(viewer).get(f"{API}/catalog/models/gpt-4o/")

    body = response.json()
    assert (body["provider"], body["tier"], body["context_window"]) == ("openai", 2, 128_000)
    assert [(p["input_per_mtok"], p["output_per_mtok"], p["source"]) for p in body["prices"]] == [
        (2.0, 8.0, "price cut"),
        (2.5, 10.0, "tests"),
    ]


def test_catalog_detail__model_id_with_slashes(catalog: None, api: Callable[..., APIClient], viewer: Any) -> None:
    CatalogModel.objects.create(model_id="openrouter/anthropic/claude-3.5-sonnet", provider="openrouter")

    response = api(viewer).get(f"{API}/catalog/models/openrouter/anthropic/claude-3.5-sonnet/")

    assert response.status_code == 200
    assert response.json()["model_id"] == "openrouter/anthropic/claude-3.5-sonnet"
    assert api(viewer).get(f"{API}/catalog/models/gpt-5/").status_code == 404


def test_key_create__secret_shown_once_and_stored_as_sha256(
    world: dict[str, Any], api: Callable[..., APIClient], publisher: Any
) -> None:
    client = api(publisher)

    response = client.post(f"{API}/keys/", {"name": "checkout-web", "policies": ["checkout"]}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["secret"]
    assert secret.startswith(f"sbx_{body['key']['prefix']}_")
    assert body["key"]["policies"] == ["checkout"]
    assert body["key"]["created_by"] == publisher.username
    stored = SdkKey.objects.get(pk=body["key"]["id"])
    assert stored.hashed_secret == hashlib.sha256(secret.encode()).hexdigest()
    listing = client.get(f"{API}/keys/")
    assert secret not in listing.content.decode()
    assert stored.hashed_secret not in listing.content.decode()
    assert "secret" not in listing.json()["results"][0]
    assert "hashed_secret" not in listing.json()["results"][0]


def test_key_create__unknown_policy__400_and_no_key(
    world: dict[str, Any], api: Callable[..., APIClient], publisher: Any
) -> None:
    before = db_state()

    response = api(publisher).post(f"{API}/keys/", {"name": "x", "policies": ["checkout", "nope"]}, format="json")

    assert response.status_code == 400
    assert assert_error_shape(response)["errors"] == {"policies": ["unknown policies: nope"]}
    assert db_state() == before


def test_key_revoke__sets_revoked_at_and_twice_is_a_conflict(
    world: dict[str, Any], api: Callable[..., APIClient], publisher: Any
) -> None:
    client = api(publisher)
    url = f"{API}/keys/{world['key'].pk}/revoke/"

    first = client.post(url, {"comment": "leaked"}, format="json")
    revoked_at = SdkKey.objects.get(pk=world["key"].pk).revoked_at
    second = client.post(url, {"comment": "again"}, format="json")

    assert first.status_code == 200
    assert first.json()["revoked_at"] is not None
    assert revoked_at is not None
    assert second.status_code == 409
    assert assert_error_shape(second)["errors"] == {"key": ["already revoked"]}
    assert SdkKey.objects.get(pk=world["key"].pk).revoked_at == revoked_at
    assert AuditEntry.objects.filter(action=AuditEntry.Action.KEY_REVOKE).count() == 1


def test_key_revoke__unknown_key__404(world: dict[str, Any], api: Callable[..., APIClient], publisher: Any) -> None:
    response = api(publisher).post(f"{API}/keys/999999/revoke/", {}, format="json")

    assert response.status_code == 404
    assert assert_error_shape(response)["errors"] == {"key": ["not found"]}


def test_audit_list__filters_by_policy_and_action(
    world: dict[str, Any], api: Callable[..., APIClient], viewer: Any
) -> None:
    factories.policy("search")
    client = api(viewer)

    checkout = client.get(f"{API}/audit/?policy=checkout").json()
    publishes = client.get(f"{API}/audit/?action=policy.publish").json()
    both = client.get(f"{API}/audit/?policy=search&action=policy.publish").json()

    assert [e["action"] for e in checkout["results"]] == [
        "draft.save",
        "policy.publish",
        "draft.save",
        "policy.publish",
        "draft.save",
        "policy.create",
    ]
    assert {e["policy"] for e in checkout["results"]} == {"checkout"}
    assert [e["target"] for e in publishes["results"]] == ["search:v1", "checkout:v2", "checkout:v1"]
    assert [(e["target"], e["comment"], e["actor"]) for e in both["results"]] == [
        ("search:v1", "first version", "system")
    ]


def test_audit_list__unknown_action__400(world: dict[str, Any], api: Callable[..., APIClient], viewer: Any) -> None:
    response = api(viewer).get(f"{API}/audit/?action=policy.delete")

    assert response.status_code == 400
    assert "action" in assert_error_shape(response)["errors"]


def test_list__limit_and_offset_page_the_results(
    world: dict[str, Any], api: Callable[..., APIClient], viewer: Any
) -> None:
    body = api(viewer).get(f"{API}/audit/?limit=2&offset=1").json()

    assert body["count"] == AuditEntry.objects.count()
    assert len(body["results"]) == 2
    assert body["previous"] is not None
    assert body["next"] is not None


# --- racing writers (real transactions on PostgreSQL) ---------------------------------------------


def _race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at once, each in its own thread and DB connection; return result or exception."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        try:
            barrier.wait(timeout=10)
            return call()
        except Exception as exc:  # the outcome under test
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.fixture
def race_world(transactional_db: Any, make_user: Callable[..., Any]) -> dict[str, Any]:
    factories.catalog()
    policy = factories.policy("checkout")
    services.draft_save(policy=policy, document=DOC_V2, user=None)
    return {
        "policy": policy,
        "publishers": [make_user("publisher"), make_user("publisher")],
        "editors": [make_user("editor"), make_user("editor")],
    }


def _published_numbers(slug: str) -> list[int]:
    return list(
        PolicyVersion.objects.filter(policy__slug=slug, status="published")
        .order_by("number")
        .values_list("number", flat=True)
    )


@pytest.mark.django_db(transaction=True)
def test_publish__two_racing_on_the_same_draft__exactly_one_wins(race_world: dict[str, Any]) -> None:
    for round_ in range(3):
        policy = selectors.policy_get("checkout")
        if round_:
            services.draft_save(
                policy=policy,
                document=doc_with("routes.general.latency_budget_ms", 1000 + round_),
                user=None,
                rebase=True,
            )
        revision = selectors.policy_draft(policy).revision

        outcomes = _race(
            *[
                lambda user=user, n=round_, rev=revision: services.policy_publish(
                    policy=selectors.policy_get("checkout"), user=user, comment=f"round {n}", expected_revision=rev
                )
                for user in race_world["publishers"]
            ]
        )

        won = [o for o in outcomes if isinstance(o, PolicyVersion)]
        lost = [o for o in outcomes if isinstance(o, DomainError)]
        assert (len(won), len(lost)) == (1, 1), outcomes
        assert lost[0].status_code in (404, 409)

    numbers = _published_numbers("checkout")
    assert numbers == [1, 2, 3, 4]
    policy = Policy.objects.select_related("live_version").get(slug="checkout")
    assert (policy.last_number, policy.live_version.number) == (4, 4)
    assert AuditEntry.objects.filter(action=AuditEntry.Action.PUBLISH).count() == 4


@pytest.mark.django_db(transaction=True)
def test_publish__two_racing_with_expected_revision__loser_gets_conflict(race_world: dict[str, Any]) -> None:
    revision = selectors.policy_draft(selectors.policy_get("checkout")).revision

    outcomes = _race(
        *[
            lambda user=user: services.policy_publish(
                policy=selectors.policy_get("checkout"), user=user, comment="ship", expected_revision=revision
            )
            for user in race_world["publishers"]
        ]
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "PolicyVersion"]


@pytest.mark.django_db(transaction=True)
def test_draft_save__two_editors_on_the_same_revision__one_wins_other_conflict(race_world: dict[str, Any]) -> None:
    docs = [doc_with("routes.extraction.latency_budget_ms", ms) for ms in (7000, 9000)]

    outcomes = _race(
        *[
            lambda user=user, doc=doc: services.draft_save(
                policy=selectors.policy_get("checkout"), document=doc, user=user, expected_revision=1
            )
            for user, doc in zip(race_world["editors"], docs, strict=True)
        ]
    )

    won = [o for o in outcomes if isinstance(o, PolicyVersion)]
    lost = [o for o in outcomes if not isinstance(o, PolicyVersion)]
    assert (len(won), len(lost)) == (1, 1), outcomes
    assert isinstance(lost[0], Conflict)
    assert lost[0].extra == {"current_revision": 2}
    draft = selectors.policy_draft(selectors.policy_get("checkout"))
    assert (draft.revision, draft.document) == (2, won[0].document)
    assert AuditEntry.objects.filter(action=AuditEntry.Action.DRAFT_SAVE).count() == 3


@pytest.mark.django_db(transaction=True)
def test_publish_racing_a_draft_save__no_unreviewed_change_goes_live(race_world: dict[str, Any]) -> None:
    """A publisher reviewed revision 1; an editor saves revision 2 at the same moment."""
    editor, publisher = race_world["editors"][0], race_world["publishers"][0]
    unreviewed = doc_with("routes.extraction.latency_budget_ms", 1)

    save, publish = _race(
        lambda: services.draft_save(
            policy=selectors.policy_get("checkout"), document=unreviewed, user=editor, expected_revision=1
        ),
        lambda: services.policy_publish(
            policy=selectors.policy_get("checkout"), user=publisher, comment="reviewed", expected_revision=1
        ),
    )

    outcomes = sorted(type(o).__name__ for o in (save, publish))
    assert outcomes == ["Conflict", "PolicyVersion"], (save, publish)
    live = selectors.policy_get("checkout").live_version
    if isinstance(publish, PolicyVersion):
        assert live.number == 2
        assert live.document == DOC_V2
    else:
        assert live.number == 1
        assert selectors.policy_draft(selectors.policy_get("checkout")).document == unreviewed


# --- bad input -------------------------------------------------------------------------------------

# (method, url, a valid body, a wrong-typed field and value)
WRITE_ENDPOINTS: list[tuple[str, str, dict[str, Any], str, Any]] = [
    ("post", f"{API}/policies/", {"slug": "search", "name": "Search"}, "name", {"a": 1}),
    ("patch", f"{API}/policies/checkout/", {"name": "Checkout"}, "name", ["x"]),
    ("put", f"{API}/policies/checkout/draft/", {"document": factories.document()}, "expected_revision", "x"),
    ("post", f"{API}/policies/checkout/publish/", {"comment": "ship"}, "expected_revision", [1]),
    ("post", f"{API}/policies/checkout/rollback/", {"to_version": 1, "comment": "undo"}, "to_version", "x"),
    ("post", f"{API}/policy-document/validate/", {"document": factories.document()}, "document", None),
    ("post", f"{API}/keys/", {"name": "web", "policies": ["checkout"]}, "policies", "checkout"),
    ("post", f"{API}/keys/{{key}}/revoke/", {"comment": "leaked"}, "comment", {"why": "leaked"}),
    ("post", f"{API}/policies/checkout/preview/", {"request": {"task_type": "extraction"}}, "request", "x"),
    ("post", f"{API}/tokens/", {"name": "ci"}, "policies", "checkout"),
    ("post", f"{API}/tokens/{{key}}/revoke/", {"comment": "rotated"}, "comment", {"why": "rotated"}),
]
WRITE_IDS = [f"{m.upper()} {u.removeprefix(API)}" for m, u, *_ in WRITE_ENDPOINTS]
DOCUMENT_ENDPOINTS = [e for e in WRITE_ENDPOINTS if "document" in e[2]] + [
    (
        "post",
        f"{API}/policies/",
        {"slug": "search", "name": "Search", "document": factories.document()},
        "document",
        None,
    )
]
DOCUMENT_IDS = [f"{m.upper()} {u.removeprefix(API)}" for m, u, *_ in DOCUMENT_ENDPOINTS]


def test_bad_input__covers_every_api_route_that_takes_a_body() -> None:
    wanted = set()
    for pattern in api_urlpatterns:
        view = pattern.callback.view_class
        for method in ("post", "put", "patch"):
            if hasattr(view, method):
                wanted.add((f"api/v1/{pattern.pattern}", method))
    covered = {(resolve(url.format(key=1)).route, method) for method, url, *_ in WRITE_ENDPOINTS}
    assert covered == wanted


MALFORMED_BODIES = {
    "truncated": '{"comment": "ship',
    "not-json": "comment=ship",
    "trailing-comma": '{"comment": "ship",}',
    "nan": '{"comment": NaN}',
    "infinity": '{"comment": Infinity}',
    "minus-infinity": '{"expected_revision": -Infinity}',
    "deep-array": '{"comment": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "deep-object": '{"comment": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}",
    "nested-past-limit": '{"comment": ' + "[" * 70 + "]" * 70 + "}",
    "huge-integer": '{"to_version": ' + "9" * 5_000 + "}",
    "invalid-utf8": b'{"comment": "\xff\xfe"}',
}


@pytest.fixture
def admin_client(world: dict[str, Any], api: Callable[..., APIClient], make_user: Callable[..., Any]) -> APIClient:
    return api(make_user(None, superuser=True))


def _url(url: str, world: dict[str, Any]) -> str:
    return url.format(key=world["key"].pk)


@pytest.mark.parametrize("case", MALFORMED_BODIES)
@pytest.mark.parametrize(("method", "url", "body", "field", "wrong"), WRITE_ENDPOINTS, ids=WRITE_IDS)
def test_bad_input__malformed_body__400_names_the_body_and_nothing_written(
    world: dict[str, Any],
    admin_client: APIClient,
    method: str,
    url: str,
    body: Any,
    field: str,
    wrong: Any,
    case: str,
) -> None:
    before = db_state()

    response = getattr(admin_client, method)(_url(url, world), MALFORMED_BODIES[case], content_type="application/json")

    assert response.status_code == 400, response.content
    error = assert_error_shape(response)
    assert "body" in error["message"]
    assert list(error["errors"]) == ["body"]
    assert db_state() == before


@pytest.mark.parametrize(("method", "url", "body", "field", "wrong"), WRITE_ENDPOINTS, ids=WRITE_IDS)
def test_bad_input__wrong_type__400_names_the_field(
    world: dict[str, Any], admin_client: APIClient, method: str, url: str, body: Any, field: str, wrong: Any
) -> None:
    before = db_state()

    response = getattr(admin_client, method)(_url(url, world), {**body, field: wrong}, format="json")

    assert response.status_code == 400, response.content
    error = assert_error_shape(response)
    assert field in error["errors"]
    assert field in error["message"]
    assert db_state() == before


@pytest.mark.parametrize(("method", "url", "body", "field", "wrong"), WRITE_ENDPOINTS, ids=WRITE_IDS)
def test_bad_input__unknown_field__400_names_it(
    world: dict[str, Any], admin_client: APIClient, method: str, url: str, body: Any, field: str, wrong: Any
) -> None:
    before = db_state()

    response = getattr(admin_client, method)(_url(url, world), {**body, "comentt": "typo"}, format="json")

    assert response.status_code == 400, response.content
    error = assert_error_shape(response)
    assert error["errors"] == {"comentt": ["unknown field"]}
    assert "comentt" in error["message"]
    assert db_state() == before


@pytest.mark.parametrize("payload", ["[]", '"ship"', "42", "null", "true"])
@pytest.mark.parametrize(("method", "url", "body", "field", "wrong"), WRITE_ENDPOINTS, ids=WRITE_IDS)
def test_bad_input__body_not_an_object__400_at_the_root(
    world: dict[str, Any],
    admin_client: APIClient,
    method: str,
    url: str,
    body: Any,
    field: str,
    wrong: Any,
    payload: str,
) -> None:
    before = db_state()

    response = getattr(admin_client, method)(_url(url, world), payload, content_type="application/json")

    assert response.status_code == 400, response.content
    assert list(assert_error_shape(response)["errors"]) == ["(root)"]
    assert db_state() == before


def _big_document(size: int) -> dict[str, Any]:
    doc = factories.document()
    doc["routes"]["general"]["description"] = "x" * size
    return doc


@pytest.mark.parametrize("size", [1_010_000, 1_200_000], ids=["document-over-1MB", "body-over-limit"])
@pytest.mark.parametrize(("method", "url", "body", "field", "wrong"), DOCUMENT_ENDPOINTS, ids=DOCUMENT_IDS)
def test_bad_input__document_over_1mb__413(
    world: dict[str, Any],
    admin_client: APIClient,
    method: str,
    url: str,
    body: Any,
    field: str,
    wrong: Any,
    size: int,
) -> None:
    before = db_state()

    response = getattr(admin_client, method)(_url(url, world), {**body, "document": _big_document(size)}, format="json")

    assert response.status_code == 413, response.content[:300]
    assert "document" in assert_error_shape(response)["errors"]
    assert db_state() == before


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


DOCUMENT_ERRORS = [
    pytest.param(
        doc_with("routes.extraction.tiers.1.model", "gpt-9"),
        "routes.extraction.tiers.1.model",
        None,
        id="unknown-model",
    ),
    pytest.param(
        doc_with("routes.extraction.escalate.min_confidence", 1.4),
        "routes.extraction.escalate.min_confidence",
        "routes.extraction.escalate.min_confidence: 1.4 is greater than the maximum of 1",
        id="schema",
    ),
    pytest.param(
        doc_with("routes.general.description", "a\x00b"), "routes.general.description", None, id="nul-character"
    ),
    pytest.param(doc_with("schema_version", 2**70), "schema_version", None, id="number-out-of-range"),
    pytest.param(doc_with("routes.general.description", _nested(50)), None, None, id="nested-past-the-engine-limit"),
    pytest.param([1, 2], "(root)", None, id="not-an-object"),
    pytest.param(
        doc_with("dimensions", ["team", "arm"]),
        "dimensions.1",
        "'arm' is always a dimension",
        id="reserved-dimension",
    ),
    pytest.param(
        doc_with("dimensions", ["a", "b", "c", "d", "e", "f"]),
        "dimensions",
        "expected at most 5 items, got 6",
        id="too-many-dimensions",
    ),
]


@pytest.mark.parametrize(("document", "path", "message"), DOCUMENT_ERRORS)
@pytest.mark.parametrize(("method", "url", "body", "field", "wrong"), DOCUMENT_ENDPOINTS, ids=DOCUMENT_IDS)
def test_bad_input__invalid_document__400_names_the_path_and_nothing_written(
    world: dict[str, Any],
    admin_client: APIClient,
    method: str,
    url: str,
    body: Any,
    field: str,
    wrong: Any,
    document: Any,
    path: str | None,
    message: str | None,
) -> None:
    before = db_state()

    response = getattr(admin_client, method)(_url(url, world), {**body, "document": document}, format="json")

    assert response.status_code == 400, response.content[:500]
    error = assert_error_shape(response)
    if path is not None:
        assert path in error["errors"], error
    if message is not None:
        assert message in response.content.decode()
    assert db_state() == before


def test_bad_input__infinite_number_in_body__400_not_500(world: dict[str, Any], admin_client: APIClient) -> None:
    """1e999 is valid JSON syntax but decodes to infinity."""
    before = db_state()

    response = admin_client.put(
        f"{API}/policies/checkout/draft/", '{"document": {"a": 1e999}}', content_type="application/json"
    )

    assert response.status_code == 400
    assert_error_shape(response)
    assert db_state() == before


def test_bad_input__content_length_not_a_number__400(world: dict[str, Any], admin_client: APIClient) -> None:
    response = admin_client.post(
        f"{API}/policy-document/validate/", "{}", content_type="application/json", CONTENT_LENGTH="many"
    )

    assert response.status_code == 400
    assert_error_shape(response)


def test_bad_input__unsupported_media_type__415(world: dict[str, Any], admin_client: APIClient) -> None:
    response = admin_client.post(f"{API}/policies/checkout/publish/", "comment: ship", content_type="text/yaml")

    assert response.status_code == 415
    assert_error_shape(response)


# --- query counts ----------------------------------------------------------------------------------

# Every authenticated request: the token with its user, then the user's and the groups' permissions.
AUTH_QUERIES = 3


@pytest.fixture
def reader(world: dict[str, Any], api: Callable[..., APIClient], publisher: Any) -> APIClient:
    return api(publisher)


def test_queries__policies_list_of_5(
    world: dict[str, Any], reader: APIClient, make_user: Callable[..., Any], django_assert_num_queries: Any
) -> None:
    for i in range(4):
        factories.policy(f"p{i}", user=make_user("publisher"))

    with django_assert_num_queries(AUTH_QUERIES + 2):  # count, page (live version and owner joined)
        response = reader.get(f"{API}/policies/")

    assert [(p["slug"], p["live_version"]) for p in response.json()["results"]] == [
        ("checkout", 2),
        ("p0", 1),
        ("p1", 1),
        ("p2", 1),
        ("p3", 1),
    ]
    assert all(p["owner"] for p in response.json()["results"][1:])


def test_queries__policy_detail(
    world: dict[str, Any], reader: APIClient, make_user: Callable[..., Any], django_assert_num_queries: Any
) -> None:
    factories.policy("owned", user=make_user("publisher"))

    with django_assert_num_queries(AUTH_QUERIES + 1):
        response = reader.get(f"{API}/policies/owned/")

    assert response.json()["owner"]


def test_queries__versions_list(
    world: dict[str, Any], reader: APIClient, make_user: Callable[..., Any], django_assert_num_queries: Any
) -> None:
    for n in range(3):
        factories.publish(
            world["policy"], doc_with("routes.general.latency_budget_ms", 1000 + n), user=make_user("publisher")
        )

    with django_assert_num_queries(AUTH_QUERIES + 3):  # policy, count, page (authors joined)
        response = reader.get(f"{API}/policies/checkout/versions/")

    assert [v["number"] for v in response.json()["results"]] == [5, 4, 3, 2, 1]
    assert all(v["author"] for v in response.json()["results"][:3])


def test_queries__catalog_list_of_20_with_prices(
    world: dict[str, Any], reader: APIClient, django_assert_num_queries: Any
) -> None:
    factories.catalog({f"extra-{i:02}": ("local", 1, 8_192, "0.1", "0.2", False, False) for i in range(13)})
    factories.catalog({"gpt-4o": factories.CATALOG["gpt-4o"]}, effective_from=factories.timezone.now())

    with django_assert_num_queries(AUTH_QUERIES + 3):  # count, page, prices
        response = reader.get(f"{API}/catalog/models/")

    body = response.json()
    assert body["count"] == len(body["results"]) == 20
    assert sum(len(m["prices"]) for m in body["results"]) == 21


def test_queries__keys_list_of_5(
    world: dict[str, Any], reader: APIClient, publisher: Any, django_assert_num_queries: Any
) -> None:
    other = factories.policy("search")
    for i in range(4):
        services.sdk_key_create(name=f"app{i}", policies=[world["policy"], other], user=publisher)

    with django_assert_num_queries(AUTH_QUERIES + 3):  # count, page (creator joined), policies
        response = reader.get(f"{API}/keys/")

    keys = response.json()["results"]
    assert len(keys) == 5
    assert [k["policies"] for k in keys[:4]] == [["checkout", "search"]] * 4
    assert [k["created_by"] for k in keys[:4]] == [publisher.username] * 4


def test_queries__audit_list_of_20(
    world: dict[str, Any], reader: APIClient, publisher: Any, django_assert_num_queries: Any
) -> None:
    for i in range(AuditEntry.objects.count(), 20):
        services.policy_update(policy=world["policy"], user=publisher, name=f"Checkout {i}")

    with django_assert_num_queries(AUTH_QUERIES + 2):  # count, page (actor and policy joined)
        response = reader.get(f"{API}/audit/")

    entries = response.json()["results"]
    assert len(entries) == 20
    assert entries[0]["actor"] == publisher.username
    assert entries[0]["policy"] == "checkout"


def test_draft_save__same_document_twice__no_second_revision_no_audit(
    world: dict[str, Any], api: Callable[..., APIClient], editor: Any
) -> None:
    client = api(editor)
    first = client.put(f"{API}/policies/checkout/draft/", {"document": DOC_V2}, format="json")
    before = db_state()

    again = client.put(f"{API}/policies/checkout/draft/", {"document": DOC_V2}, format="json")

    assert first.status_code == again.status_code == 200
    assert again.json()["revision"] == first.json()["revision"]
    assert db_state() == before
