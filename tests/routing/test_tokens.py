"""Scoped management API tokens through their public surfaces: the API (/api/v1/tokens/), the admin
pages, and what a token may then do (role, policy scope, expiry, revocation, last use, audit)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from routing import services
from routing.models import ApiToken, AuditEntry, Policy
from tests import factories

pytestmark = pytest.mark.django_db
API = "/api/v1"


def _token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _session(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def checkout(db: Any) -> Policy:
    return factories.policy("checkout")


@pytest.fixture
def billing(checkout: Policy) -> Policy:
    return factories.policy("billing")


def test_token_create__api__key_answered_once_stored_hashed_and_works(checkout: Policy, editor: Any) -> None:
    response = _session(editor).post(
        f"{API}/tokens/", {"name": "ci", "role": "viewer", "policies": ["checkout"]}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    key = body["key"]
    assert key.startswith(f"sbt_{body['token']['prefix']}_")
    assert {k: body["token"][k] for k in ("name", "role", "policies", "user", "revoked_at")} == {
        "name": "ci",
        "role": "viewer",
        "policies": ["checkout"],
        "user": editor.username,
        "revoked_at": None,
    }
    listed = _session(editor).get(f"{API}/tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["ci"]
    assert key not in str(listed)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM routing_apitoken")
        assert all(key not in str(value) for row in cursor.fetchall() for value in row)
    assert _token_client(key).get(f"{API}/policies/checkout/").status_code == 200
    entry = AuditEntry.objects.get(action=AuditEntry.Action.TOKEN_CREATE)
    assert (entry.actor_label, entry.target) == (editor.username, f"token ci {body['token']['prefix']}")


def test_token_create__role_above_your_own__400_naming_role(editor: Any) -> None:
    response = _session(editor).post(f"{API}/tokens/", {"name": "ci", "role": "publisher"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"role": ["at most editor"]}
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "ci", "role": "admin"}, "role"),
        ({"name": "ci", "policies": ["nope"]}, "policies"),
        ({"name": "ci", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "ci", "expires_at": "soon"}, "expires_at"),
    ],
)
def test_token_create__bad_input__400_naming_the_field(
    checkout: Policy, publisher: Any, body: dict[str, Any], field: str
) -> None:
    response = _session(publisher).post(f"{API}/tokens/", body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not ApiToken.objects.exists()


def test_token__role_narrows_its_owner(checkout: Policy, make_user: Callable[..., Any]) -> None:
    key = factories.api_token(make_user(None, superuser=True), role="editor")
    client = _token_client(key)

    saved = client.put(
        f"{API}/policies/checkout/draft/", {"document": factories.document(default_route="extraction")}, format="json"
    )
    published = client.post(f"{API}/policies/checkout/publish/", {"comment": "go"}, format="json")

    assert saved.status_code == 200
    assert published.status_code == 403
    assert checkout.versions.filter(status="published").count() == 1


def test_token__policy_scope__other_policies_and_unscoped_operations_refused(
    checkout: Policy, billing: Policy, publisher: Any
) -> None:
    client = _token_client(factories.api_token(publisher, policies=[checkout]))

    listed = client.get(f"{API}/policies/")
    own = client.get(f"{API}/policies/checkout/versions/")
    other = client.get(f"{API}/policies/billing/")
    other_metrics = client.get(f"{API}/metrics/overview/", {"policy": "billing"})
    no_policy_metrics = client.get(f"{API}/metrics/overview/")
    other_alerts = client.get(f"{API}/metrics/alerts/")
    other_whatif = client.post(
        f"{API}/metrics/whatif/", {"policy": "billing", "start": "2026-01-01", "end": "2026-01-02"}, format="json"
    )
    keys = client.get(f"{API}/keys/")
    create = client.post(f"{API}/policies/", {"slug": "fresh", "name": "Fresh"}, format="json")
    catalog = client.get(f"{API}/catalog/models/")

    assert [p["slug"] for p in listed.json()["results"]] == ["checkout"]
    assert own.status_code == catalog.status_code == 200
    for refused in (other, other_metrics, no_policy_metrics, other_alerts, other_whatif, keys, create):
        assert refused.status_code == 403, (refused.request["PATH_INFO"], refused.content)
        assert "scoped to checkout" in refused.json()["message"]
    assert other.json()["errors"] == {"policy": ["outside this token's scope"]}
    assert client.get(f"{API}/metrics/overview/", {"policy": "checkout"}).status_code == 200


def test_token__expired_or_revoked__401(checkout: Policy, publisher: Any) -> None:
    expired = factories.api_token(publisher, name="old", expires_at=timezone.now() + timedelta(minutes=1))
    ApiToken.objects.filter(name="old").update(expires_at=timezone.now() - timedelta(seconds=1))
    key = _session(publisher).post(f"{API}/tokens/", {"name": "gone"}, format="json").json()
    assert _token_client(key["key"]).get(f"{API}/policies/").status_code == 200

    revoked = _session(publisher).post(
        f"{API}/tokens/{key['token']['id']}/revoke/", {"comment": "leaked"}, format="json"
    )

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    for secret, message in ((expired, "Token expired."), (key["key"], "Token revoked.")):
        response = _token_client(secret).get(f"{API}/policies/")
        assert response.status_code == 401
        assert response.json()["message"] == message
    assert AuditEntry.objects.filter(action=AuditEntry.Action.TOKEN_REVOKE, comment="leaked").exists()


def test_token_revoke__someone_elses__404_and_still_works(checkout: Policy, publisher: Any, editor: Any) -> None:
    key = factories.api_token(publisher, name="mine")
    token = ApiToken.objects.get(name="mine")

    response = _session(editor).post(f"{API}/tokens/{token.pk}/revoke/", {}, format="json")

    assert response.status_code == 404
    assert _token_client(key).get(f"{API}/policies/").status_code == 200


def test_token__last_used__recorded_at_most_once_a_minute(checkout: Policy, publisher: Any) -> None:
    key = factories.api_token(publisher, name="ci")
    client = _token_client(key)

    client.get(f"{API}/policies/")
    first = ApiToken.objects.get(name="ci").last_used_at
    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(name="ci").update(last_used_at=recent)
    client.get(f"{API}/policies/")
    kept = ApiToken.objects.get(name="ci").last_used_at
    ApiToken.objects.filter(name="ci").update(last_used_at=timezone.now() - timedelta(minutes=2))
    client.get(f"{API}/policies/")

    assert first is not None
    assert kept == recent  # no write within the minute
    assert ApiToken.objects.get(name="ci").last_used_at > recent


def test_token__audit_entries_name_the_token(checkout: Policy, publisher: Any) -> None:
    key = factories.api_token(publisher, name="deploy")
    token = ApiToken.objects.get(name="deploy")

    _token_client(key).patch(f"{API}/policies/checkout/", {"name": "Checkout flow"}, format="json")

    entry = AuditEntry.objects.get(action=AuditEntry.Action.POLICY_UPDATE)
    assert entry.api_token == token
    assert entry.actor_label == f"{publisher.username} via token deploy {token.prefix}"
    listed = _session(publisher).get(f"{API}/audit/", {"action": "policy.update"}).json()["results"]
    assert listed[0]["actor"] == entry.actor_label


def test_token__scoped_token_cannot_make_tokens(checkout: Policy, publisher: Any) -> None:
    client = _token_client(factories.api_token(publisher, policies=[checkout]))

    response = client.post(f"{API}/tokens/", {"name": "wider"}, format="json")

    assert response.status_code == 403
    assert ApiToken.objects.count() == 1


# --- admin ---------------------------------------------------------------------------------------


def test_admin_token_create__key_shown_once_scope_and_role_kept(client: Any, editor: Any, checkout: Policy) -> None:
    client.force_login(editor)
    response = client.post(
        reverse("admin:routing_apitoken_add"),
        {"name": "ci", "role": "viewer", "policies": [checkout.pk], "expires_at": "2099-01-01 00:00"},
    )

    assert response.status_code == 302, response.content
    token = ApiToken.objects.get(name="ci")
    page = client.get(response["Location"])
    key = page.context["secret"]
    assert key.startswith(f"sbt_{token.prefix}_")
    assert key in page.content.decode()
    assert "no-store" in page["Cache-Control"]
    assert services.api_token_hash(key) == token.hashed_key
    assert (token.user, token.role, list(token.policies.all())) == (editor, "viewer", [checkout])
    assert token.expires_at is not None
    assert key not in client.get(response["Location"]).content.decode()
    assert "ci" in client.get(reverse("admin:routing_apitoken_changelist")).content.decode()


def test_admin_token_create__role_above_your_own__form_error_no_token(client: Any, viewer: Any) -> None:
    client.force_login(viewer)

    response = client.post(reverse("admin:routing_apitoken_add"), {"name": "ci", "role": "publisher"})

    assert response.status_code == 200
    assert "role" in response.context["form"].errors
    assert not ApiToken.objects.exists()


def test_admin_token_revoke__own_token__revoked(client: Any, viewer: Any) -> None:
    factories.api_token(viewer, name="ci")
    token = ApiToken.objects.get(name="ci")
    client.force_login(viewer)

    response = client.post(reverse("admin:routing_apitoken_revoke", args=[token.pk]), {"comment": "rotated"})

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_admin_token_list__shows_only_your_own(client: Any, viewer: Any, editor: Any) -> None:
    factories.api_token(viewer, name="viewer-ci")
    factories.api_token(editor, name="editor-ci")
    client.force_login(viewer)

    page = client.get(reverse("admin:routing_apitoken_changelist")).content.decode()

    assert "viewer-ci" in page
    assert "editor-ci" not in page


def test_api_token_create_command__role_scope_expiry(checkout: Policy, viewer: Any) -> None:
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "api_token_create", viewer.username, "--name", "ci", "--role", "viewer", "--policy", "checkout",
        "--expires-days", "30", stdout=out, stderr=io.StringIO(),
    )  # fmt: skip

    token = ApiToken.objects.get(name="ci")
    assert (token.role, [p.slug for p in token.policies.all()]) == ("viewer", ["checkout"])
    assert token.expires_at is not None
    assert _token_client(out.getvalue().strip()).get(f"{API}/policies/").status_code == 200


def test_token_create__through_a_narrowed_token__capped_at_that_tokens_role(
    checkout: Policy, make_user: Callable[..., Any]
) -> None:
    client = _token_client(factories.api_token(make_user(None, superuser=True), role="viewer"))

    wider = client.post(f"{API}/tokens/", {"name": "wider", "role": "publisher"}, format="json")
    same = client.post(f"{API}/tokens/", {"name": "same"}, format="json")

    assert wider.status_code == 400
    assert wider.json()["errors"] == {"role": ["at most viewer"]}
    assert same.status_code == 201
    assert same.json()["token"]["role"] == "viewer"
