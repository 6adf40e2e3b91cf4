"""The role matrix: every management API operation (enumerated from the OpenAPI schema) and every
admin page (enumerated from the admin's URL patterns), asked by each identity — anonymous, an SDK
key presented as a management token, a staff user without a role, viewer, editor, publisher,
superuser. An operation or page missing from the expectation tables fails the test by name."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from tests import factories

ROLES = ["viewer", "editor", "publisher", "superuser"]  # in increasing order of power
# Each role signs in three ways: its own API token (the bare role name), a session (the admin's
# login), and a token of that role owned by a superuser (the token's role, not its owner, limits it).
SESSIONS = [f"session:{r}" for r in ROLES]
ROLE_TOKENS = [f"role_token:{r}" for r in ROLES[:-1]]
IDENTITIES = ["anonymous", "sdk_key_bearer", "sdk_key_token", "no_role", *ROLES, *SESSIONS, *ROLE_TOKENS]


def _operations() -> list[tuple[str, str, str]]:
    schema = SchemaGenerator().get_schema(public=True)
    return sorted(
        (op["operationId"], method.upper(), path)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if method in {"get", "post", "put", "patch", "delete"}
    )


def _doc() -> dict[str, Any]:
    return factories.document(default_route="extraction")


# operation id -> (the least role allowed, the body that passes validation so the service's own
# permission check is reached, the status an allowed role gets; None: anything but 401/403/5xx).
API: dict[str, tuple[str, Callable[[], Any] | None, int | None]] = {
    "policies_list": ("viewer", None, 200),
    "policies_create": ("editor", lambda: {"slug": "fresh", "name": "Fresh"}, 201),
    "policies_retrieve": ("viewer", None, 200),
    "policies_update": ("editor", lambda: {"name": "Renamed"}, 200),
    "policies_versions_list": ("viewer", None, 200),
    "policies_versions_retrieve": ("viewer", None, 200),
    "policies_draft_retrieve": ("viewer", None, 200),
    "policies_draft_save": ("editor", lambda: {"document": _doc(), "rebase": True}, 200),
    "policies_draft_discard": ("editor", None, 204),
    "policies_publish": ("publisher", lambda: {"comment": "ship it"}, 201),
    "policies_rollback": ("publisher", lambda: {"to_version": 1, "comment": "back"}, 201),
    "policies_diff": ("viewer", None, 200),
    "policies_preview": ("viewer", lambda: {"request": {"task_type": "chat"}}, 200),
    "policy_document_schema": ("viewer", None, 200),
    "policy_document_validate": ("viewer", lambda: {"document": _doc()}, 200),
    "catalog_list": ("viewer", None, 200),
    "catalog_retrieve": ("viewer", None, 200),
    "keys_list": ("viewer", None, 200),
    "keys_create": ("publisher", lambda: {"name": "new-app", "policies": ["checkout"]}, 201),
    "keys_revoke": ("publisher", lambda: {"comment": "leaked"}, 200),
    "audit_list": ("viewer", None, 200),
    "tokens_list": ("viewer", None, 200),
    "tokens_create": ("viewer", lambda: {"name": "ci", "role": "viewer"}, 201),
    "tokens_revoke": ("viewer", None, None),  # someone else's token: 404
    "metrics_overview": ("viewer", None, 200),
    "metrics_cost": ("viewer", None, 200),
    "metrics_escalation": ("viewer", None, 200),
    "metrics_quality": ("viewer", None, 200),
    "metrics_latency": ("viewer", None, 200),
    "metrics_budget": ("viewer", None, 200),
    "metrics_worksheet": ("viewer", None, 200),
    "metrics_canary": ("viewer", None, 200),
    "metrics_attribution": ("viewer", None, 200),
    "metrics_report": ("viewer", None, None),
    "metrics_whatif": ("viewer", None, None),
    "alerts_list": ("viewer", None, 200),
    "alerts_read": ("viewer", None, None),
    "alerts_acknowledge": ("editor", None, None),
    "alerts_resolve": ("editor", None, None),
    "channels_list": ("publisher", None, 200),
    "channels_create": ("publisher", None, None),
    "channels_read": ("publisher", None, None),
    "channels_update": ("publisher", None, None),
    "channels_delete": ("publisher", None, None),
    "channels_test": ("publisher", None, None),
    # The client protocol: an SDK key as a bearer token and nothing else (a user's token is not a key).
    "client_policy_fetch": ("sdk_key_bearer", None, 200),
    "client_decisions_ingest": ("sdk_key_bearer", lambda: {"decisions": []}, 200),
    "otlp_traces_ingest": ("sdk_key_bearer", lambda: {"resourceSpans": []}, 200),
}
CLIENT = "sdk_key_bearer"

OPERATIONS = _operations()


def test_api_table__covers_every_operation_of_the_schema() -> None:
    missing = sorted({op for op, _, _ in OPERATIONS} - set(API))
    stale = sorted(set(API) - {op for op, _, _ in OPERATIONS})
    assert not missing, f"add these operations to API in {__file__}: {missing}"
    assert not stale, f"operations no longer in the schema: {stale}"


@pytest.fixture
def identities(world: Any, make_user: Any) -> dict[str, tuple[Any, dict[str, str]]]:
    """identity -> (the test client it uses, the request headers it sends)."""
    from django.test import Client

    from tests.factories import api_token

    headers = {
        "anonymous": {},
        "sdk_key_bearer": {"HTTP_AUTHORIZATION": f"Bearer {world.secret}"},
        "sdk_key_token": {"HTTP_AUTHORIZATION": f"Token {world.secret}"},
    }
    users = {
        "no_role": make_user(None),
        **{r: make_user(r) for r in ROLES[:-1]},
        "superuser": make_user(None, superuser=True),
    }
    for name, user in users.items():
        headers[name] = {"HTTP_AUTHORIZATION": f"Token {api_token(user)}"}
    owner = make_user(None, superuser=True)
    for name in ROLE_TOKENS:
        headers[name] = {"HTTP_AUTHORIZATION": f"Token {api_token(owner, role=_role(name))}"}
    out: dict[str, tuple[Any, dict[str, str]]] = {name: (Client(), h) for name, h in headers.items()}
    for name in SESSIONS:
        session = Client()
        session.force_login(users[_role(name)])
        out[name] = (session, {})
    return out


def _role(identity: str) -> str:
    """The role an identity holds ("session:editor" and "role_token:editor" hold editor)."""
    return identity.rpartition(":")[2]


def _fill(path: str, world: Any) -> str:
    values = {
        "slug": "checkout",
        "ref": "1",
        "model_id": "gpt-4o",
        "key_id": str(world.key.pk),
        "policy": "checkout",
        "month": timezone.now().strftime("%Y-%m"),
    }
    return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), "1"), path)


def _written() -> tuple[int, ...]:
    from routing.models import AuditEntry, Policy, PolicyVersion, SdkKey

    return (
        AuditEntry.objects.count(),
        Policy.objects.count(),
        PolicyVersion.objects.count(),
        SdkKey.objects.filter(revoked_at__isnull=True).count(),
    )


def _allowed(identity: str, least: str) -> bool:
    return _role(identity) in ROLES and ROLES.index(_role(identity)) >= ROLES.index(least)


def _each_in_a_savepoint(names: list[str], check: Callable[[str], None]) -> None:
    """Run `check(name)` for each name, undoing its writes (and its rate counts) afterwards."""
    from django.core.cache import cache
    from django.db import transaction

    from routing import live

    for name in names:
        savepoint = transaction.savepoint()
        try:
            check(name)
        finally:
            transaction.savepoint_rollback(savepoint)
            cache.clear()
            live.clear()


@pytest.mark.parametrize(("operation", "method", "path"), OPERATIONS, ids=[o for o, _, _ in OPERATIONS])
def test_api__each_identity_on_each_operation__allowed_or_refused_per_role(
    world: Any, identities: dict[str, tuple[Any, dict[str, str]]], operation: str, method: str, path: str
) -> None:
    if operation not in API:
        pytest.fail(f"{operation} is missing from the API expectation table")
    least, body, ok_status = API[operation]

    def check(identity: str) -> None:
        before = _written()
        client, headers = identities[identity]
        response = getattr(client, method.lower())(
            _fill(path, world), data=body() if body else None, content_type="application/json", **headers
        )
        where = (identity, response.status_code, response.content[:200])
        assert response.status_code < 500, where
        if least == CLIENT:
            assert response.status_code == (ok_status if identity == CLIENT else 401), where
        elif identity in {"anonymous", "sdk_key_bearer", "sdk_key_token"}:
            assert response.status_code == 401, where
        elif not _allowed(identity, least):
            assert response.status_code == 403, where
        elif ok_status is not None:
            assert response.status_code == ok_status, where
        else:
            assert response.status_code not in {401, 403}, where
        if response.status_code in {401, 403}:
            assert set(response.json()) == {"message", "errors"}, where
            assert _written() == before, f"a refused request wrote something: {where}"

    _each_in_a_savepoint(IDENTITIES, check)


# --- admin ---------------------------------------------------------------------------------------

# URL name -> (the least role that may open it, the least role that may POST to it; None: no POST
# form). "superuser": only superusers. Pages a role may not open answer 403 (302 to the login page
# for anonymous users).
NOBODY = "nobody"  # refused to everyone, superusers included
ADMIN: dict[str, tuple[str, str | None]] = {
    "index": ("no_role", None),
    "login": ("anonymous", None),
    "logout": ("anonymous", "anonymous"),
    "password_change": ("no_role", "no_role"),
    "password_change_done": ("no_role", None),
    "autocomplete": (NOBODY, None),  # refused without its query (app, model, field)
    "jsi18n": ("no_role", None),
    "view_on_site": (NOBODY, None),  # no model has a page outside the admin
    "auth_group_changelist": ("superuser", "superuser"),
    "auth_group_add": ("superuser", "superuser"),
    "auth_group_history": ("superuser", None),
    "auth_group_delete": ("superuser", "superuser"),
    "auth_group_change": ("superuser", "superuser"),
    "auth_user_password_change": ("superuser", "superuser"),
    "auth_user_changelist": ("superuser", "superuser"),
    "auth_user_add": ("superuser", "superuser"),
    "auth_user_history": ("superuser", None),
    "auth_user_delete": ("superuser", "superuser"),
    "auth_user_change": ("superuser", "superuser"),
    "routing_policy_publish": ("viewer", "publisher"),
    "routing_policy_rollback": ("viewer", "publisher"),
    "routing_policy_version": ("viewer", None),
    "routing_policy_version_diff": ("viewer", None),
    "routing_policy_preview": ("viewer", "viewer"),
    "routing_policy_discard": ("viewer", "editor"),
    "routing_policy_changelist": ("viewer", "editor"),
    "routing_policy_add": ("editor", "editor"),
    "routing_policy_history": ("viewer", None),
    "routing_policy_delete": (NOBODY, NOBODY),
    "routing_policy_change": ("viewer", "editor"),
    "routing_catalogmodel_changelist": ("viewer", "publisher"),
    "routing_catalogmodel_add": (NOBODY, NOBODY),
    "routing_catalogmodel_history": ("viewer", None),
    "routing_catalogmodel_delete": (NOBODY, NOBODY),
    "routing_catalogmodel_change": ("viewer", "publisher"),
    "routing_sdkkey_created": ("viewer", None),
    "routing_sdkkey_revoke": ("viewer", "publisher"),
    "routing_sdkkey_changelist": ("viewer", "publisher"),
    "routing_sdkkey_add": ("publisher", "publisher"),
    "routing_sdkkey_history": ("viewer", None),
    "routing_sdkkey_delete": (NOBODY, NOBODY),
    "routing_sdkkey_change": ("viewer", "superuser"),
    # Each user sees their own tokens only; the page's token is a superuser's.
    "routing_apitoken_created": ("superuser", None),
    "routing_apitoken_revoke": ("superuser", "superuser"),
    "routing_apitoken_changelist": ("viewer", None),
    "routing_apitoken_add": ("viewer", "viewer"),
    "routing_apitoken_history": ("superuser", None),
    "routing_apitoken_delete": (NOBODY, NOBODY),
    "routing_apitoken_change": ("superuser", NOBODY),
    "routing_auditentry_changelist": ("viewer", "superuser"),
    "routing_auditentry_add": (NOBODY, NOBODY),
    "routing_auditentry_history": ("viewer", None),
    "routing_auditentry_delete": (NOBODY, NOBODY),
    "routing_auditentry_change": ("viewer", "superuser"),
    "metrics_alert_changelist": ("viewer", None),
    "metrics_alert_add": (NOBODY, NOBODY),
    "metrics_alert_history": ("viewer", None),
    "metrics_alert_delete": (NOBODY, NOBODY),
    "metrics_alert_change": ("viewer", None),
    "metrics_notificationchannel_changelist": ("publisher", "publisher"),
    "metrics_notificationchannel_add": ("publisher", "publisher"),
    "metrics_notificationchannel_history": ("publisher", None),
    "metrics_notificationchannel_delete": ("publisher", "publisher"),
    "metrics_notificationchannel_change": ("publisher", "publisher"),
    "metrics_delivery_changelist": ("publisher", None),
    "metrics_delivery_add": (NOBODY, NOBODY),
    "metrics_delivery_history": ("publisher", None),
    "metrics_delivery_delete": (NOBODY, NOBODY),
    "metrics_delivery_change": ("publisher", None),
}
ADMIN_LEVELS = ["anonymous", "no_role", *ROLES]


def _rank(level: str) -> int:
    return len(ADMIN_LEVELS) if level == NOBODY else ADMIN_LEVELS.index(level)


def _admin_patterns() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name and p.name not in {"app_list"}:
                out.append((p.name, prefix + str(p.pattern)))

    walk(admin.site.get_urls(), "/admin/")
    return sorted(set(out))


ADMIN_PATTERNS = _admin_patterns()


def test_admin_table__covers_every_admin_page() -> None:
    missing = sorted({name for name, _ in ADMIN_PATTERNS} - set(ADMIN))
    assert not missing, f"add these admin pages to ADMIN in {__file__}: {missing}"


def _admin_url(route: str, world: Any, objects: dict[str, Any]) -> str:
    from django.contrib.contenttypes.models import ContentType

    model = next((m for m in objects if f"/{m}/" in route), None)
    pk = str(objects[model].pk) if model else "1"
    values = {
        "object_id": pk,
        "number": "1",
        "id": pk,
        "content_type_id": str(ContentType.objects.get_for_model(world.checkout).pk),
    }
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route)


@pytest.fixture
def admin_clients(world: Any, make_user: Any) -> dict[str, Any]:
    from django.test import Client

    clients = {"anonymous": Client()}
    users = {
        "no_role": make_user(None),
        **{r: make_user(r) for r in ROLES[:-1]},
        "superuser": make_user(None, superuser=True),
    }
    for name, user in users.items():
        clients[name] = Client()
        clients[name].force_login(user)
    return clients


@pytest.fixture
def admin_objects(world: Any, admin_clients: Any) -> dict[str, Any]:
    from django.contrib.auth.models import Group, User

    from routing.models import AuditEntry, CatalogModel

    user = User.objects.filter(is_superuser=False).first()
    return {
        "policy": world.checkout,
        "catalogmodel": CatalogModel.objects.get(model_id="gpt-4o"),
        "sdkkey": world.key,
        "auditentry": AuditEntry.objects.first(),
        "user": user,
        "group": Group.objects.get(name="viewer"),
        "apitoken": _superuser_token(),
    }


def _superuser_token() -> Any:
    from django.contrib.auth.models import User

    from routing.models import ApiToken

    factories.api_token(User.objects.filter(is_superuser=True).first(), name="superuser-token")
    return ApiToken.objects.get(name="superuser-token")


def _admin_written() -> tuple[int, ...]:
    from django.contrib.auth.models import Group, User

    from routing.models import ApiToken

    return (*_written(), User.objects.count(), Group.objects.count(), ApiToken.objects.count())


@pytest.mark.parametrize(("name", "route"), ADMIN_PATTERNS, ids=[n for n, _ in ADMIN_PATTERNS])
def test_admin__each_role_on_each_page__opened_or_refused(
    world: Any, admin_clients: Any, admin_objects: Any, name: str, route: str
) -> None:
    if name not in ADMIN:
        pytest.fail(f"{name} is missing from the ADMIN expectation table")
    least_get, least_post = ADMIN[name]
    url = _admin_url(route, world, admin_objects)

    def check(identity: str) -> None:
        client = admin_clients[identity]
        level = ADMIN_LEVELS.index(identity)
        if name != "logout":
            response = client.get(url)
            where = (identity, url, response.status_code)
            assert response.status_code < 500, where
            if level >= _rank(least_get):
                assert response.status_code in {200, 302}, where
                if response.status_code == 302:
                    assert "/login/" not in response["Location"], where
            elif identity == "anonymous":
                assert response.status_code == 302, where
                assert "/login/" in response["Location"], where
            else:  # 404, or 302 to the index: the admin says no more than "not here"
                assert response.status_code in {403, 404} or response["Location"] == "/admin/", where
        if least_post is not None and level < _rank(least_post):
            before = _admin_written()
            response = client.post(url, {"name": "x", "comment": "x", "post": "yes"})
            where = (identity, url, response.status_code)
            assert response.status_code < 500, where
            if identity == "anonymous":
                assert response.status_code == 302, where
                assert "/login/" in response["Location"], where
            # Some forms re-render or redirect with the service's refusal: what counts is that
            # nothing was written.
            assert _admin_written() == before, f"{identity} wrote through {url}"

    _each_in_a_savepoint(ADMIN_LEVELS, check)


# Admin actions each role sees on each changelist (by model label); running one it lacks writes nothing.
_NONE = {"viewer": set(), "editor": set(), "publisher": set(), "superuser": set()}
_SUPERUSER_DELETES = {**_NONE, "superuser": {"delete_selected"}}
ADMIN_ACTIONS: dict[str, dict[str, set[str]]] = {
    "auth.group": _SUPERUSER_DELETES,
    "auth.user": _SUPERUSER_DELETES,
    "routing.policy": _NONE,
    "routing.catalogmodel": _NONE,
    "routing.sdkkey": {**_NONE, "publisher": {"revoke_selected"}, "superuser": {"revoke_selected"}},
    "routing.auditentry": _NONE,
    "routing.apitoken": _NONE,
    "metrics.alert": {
        "viewer": set(),
        "editor": {"acknowledge_selected", "resolve_selected"},
        "publisher": {"acknowledge_selected", "resolve_selected"},
        "superuser": {"acknowledge_selected", "resolve_selected"},
    },
    "metrics.notificationchannel": {
        **_NONE,
        "publisher": {"delete_selected", "enable_selected", "test_selected"},
        "superuser": {"delete_selected", "enable_selected", "test_selected"},
    },
    "metrics.delivery": _NONE,
}
REGISTERED = sorted(model._meta.label_lower for model in admin.site._registry)


@pytest.mark.parametrize("label", REGISTERED)
def test_admin_actions__offered_per_role__and_refused_to_the_rest(
    world: Any, admin_clients: Any, admin_objects: Any, label: str
) -> None:
    from django.apps import apps
    from django.test import RequestFactory

    if label not in ADMIN_ACTIONS:
        pytest.fail(f"{label} is missing from the ADMIN_ACTIONS expectation table")
    model = apps.get_model(label)
    model_admin = admin.site._registry[model]
    every = {"delete_selected"}.union(*(a for roles in ADMIN_ACTIONS.values() for a in roles.values()))
    target = admin_objects.get(model._meta.model_name)
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"

    for role in ROLES:
        request = RequestFactory().get("/")
        request.user = _session_user(admin_clients[role])
        offered = set(model_admin.get_actions(request))
        assert offered == ADMIN_ACTIONS[label][role], (label, role)
        if target is None:
            continue
        before = _admin_written()
        for action in sorted(every - offered):
            response = admin_clients[role].post(
                url, {"action": action, "_selected_action": [target.pk], "post": "yes", "comment": "x"}
            )
            assert response.status_code < 500
        assert _admin_written() == before, (label, role)


def _session_user(client: Any) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(pk=client.session["_auth_user_id"])
