"""SDK key scoping, revocation and storage; CSRF on every form; request size limits; the
production settings pass `manage.py check --deploy`."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests import factories
from tests.hardening.conftest import decision_count, record

ROOT = Path(__file__).resolve().parents[2]


# --- SDK keys ------------------------------------------------------------------------------------


def test_key__policy_outside_its_scope__404_like_an_unknown_one_and_no_document(world: Any, fetch: Any) -> None:
    response = fetch("billing", world.secret)

    assert response.status_code == 404
    assert b"document" not in response.content
    assert response.json()["errors"] == {"policy": ["not found for this key"]}


def test_key__unknown_policy__404(world: Any, fetch: Any) -> None:
    assert fetch("nope", world.secret).status_code == 404


def test_key__records_for_another_policy__rejected_per_record_and_not_written(world: Any, upload: Any) -> None:
    own, foreign = record(), record(policy="billing")

    response = upload([own, foreign], world.secret)

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert "policy" in str(results[1]["errors"])
    assert decision_count() == 1


def test_key__only_foreign_records__nothing_written(world: Any, upload: Any) -> None:
    response = upload([record(policy="billing"), record(policy="billing")], world.secret)

    assert {r["status"] for r in response.json()["results"]} == {"rejected"}
    assert decision_count() == 0


def test_key__revoked__refused_within_sdk_key_cache_seconds(world: Any, fetch: Any, settings: Any) -> None:
    """Each web process trusts its copy of a key for SDK_KEY_CACHE_SECONDS (30 s by default)."""
    from routing import services

    settings.SDK_KEY_CACHE_SECONDS = 0.3
    assert fetch("checkout", world.secret).status_code == 200
    services.sdk_key_revoke(key=world.key, user=None, comment="leaked")
    time.sleep(0.35)  # no shortcut: the key's cache lifetime alone must end it

    response = fetch("checkout", world.secret)

    assert response.status_code == 401
    assert response.json()["errors"] == {"authorization": ["The SDK key is unknown or revoked."]}


def test_key__stored_hashed__no_plaintext_secret_in_the_database(world: Any) -> None:
    from django.db import connection

    secret_part = world.secret.rsplit("_", 1)[-1]
    hits = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            if any(secret_part in str(value) for row in cursor.fetchall() for value in row):
                hits.append(table)
    assert hits == []


def test_key__compared_in_constant_time_on_its_hash() -> None:
    """The lookup is by public prefix; the stored SHA-256 is compared with hmac.compare_digest."""
    import inspect

    from routing import live
    from routing.credentials import secret_hash

    source = inspect.getsource(live.key_entry)
    assert "hmac.compare_digest(" in source
    assert "hashed = secret_hash(secret)" in source
    assert secret_hash("sbx_ab_cd") == hashlib.sha256(b"sbx_ab_cd").hexdigest()


# --- CSRF ----------------------------------------------------------------------------------------


def _forms(world: Any) -> list[str]:
    key = world.key.pk
    policy = world.checkout.pk
    return [
        "/admin/login/",
        "/admin/logout/",
        "/admin/password_change/",
        "/admin/routing/policy/add/",
        f"/admin/routing/policy/{policy}/change/",
        f"/admin/routing/policy/{policy}/publish/",
        f"/admin/routing/policy/{policy}/rollback/1/",
        f"/admin/routing/policy/{policy}/preview/",
        f"/admin/routing/policy/{policy}/draft/discard/",
        "/admin/routing/policy/",
        "/admin/routing/sdkkey/add/",
        f"/admin/routing/sdkkey/{key}/revoke/",
        "/admin/routing/sdkkey/",
        "/admin/routing/catalogmodel/",
    ]


def test_csrf__every_post_form_without_a_token__refused(world: Any, make_user: Any) -> None:
    superuser = make_user(None, superuser=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    before = decision_count(), _audit()

    refused = {url: client.post(url, {"comment": "x", "post": "yes", "name": "x"}).status_code for url in _forms(world)}
    # The session-authenticated management API is covered by the same middleware.
    refused["/api/v1/policies/"] = client.post(
        "/api/v1/policies/", {"slug": "x", "name": "x"}, content_type="application/json"
    ).status_code

    assert refused == dict.fromkeys(refused, 403)
    assert (decision_count(), _audit()) == before
    # A token-authenticated API client needs no CSRF token (no cookie, nothing to forge).
    token = factories.api_token(superuser)
    api = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {token}")
    assert (
        api.post("/api/v1/policy-document/validate/", {"document": {}}, content_type="application/json").status_code
        == 400
    )


def _audit() -> int:
    from routing.models import AuditEntry

    return AuditEntry.objects.count()


# --- request size limits -------------------------------------------------------------------------


def test_size__decision_batch_over_the_limit__413_json(world: Any, upload: Any) -> None:
    from signalbox_client import protocol

    body = b'{"decisions": [' + b'"' + b"x" * (protocol.MAX_BATCH_BYTES + 10) + b'"]}'

    response = upload(body, world.secret)

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"message", "errors"}
    assert decision_count() == 0


def test_size__policy_document_over_the_limit__413_json(world: Any, api: Any, publisher: Any, settings: Any) -> None:
    settings.POLICY_DOCUMENT_MAX_BYTES = 10_000
    big = {"document": {"schema_version": 1, "padding": "x" * 200_000}}

    response = api(publisher).put("/api/v1/policies/checkout/draft/", big, format="json")

    assert response.status_code == 413
    assert set(response.json()) == {"message", "errors"}


def test_size__form_over_data_upload_max_memory_size__refused_without_500(
    world: Any, make_user: Any, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    client = Client()
    client.force_login(make_user("publisher"))
    before = _audit()

    response = client.post(f"/admin/routing/sdkkey/{world.key.pk}/revoke/", {"comment": "x" * 20_000})

    assert response.status_code in {400, 413}
    assert _audit() == before


# --- deployment ----------------------------------------------------------------------------------

# The production environment of docs/deployment.md (values are examples).
PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "Zq3v-production-example-secret-key-that-is-long-and-random-4f9c2e7b1a",
    "ALLOWED_HOSTS": "signalbox.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://signalbox.example.com",
    "DATABASE_URL": "postgres://signalbox@127.0.0.1:5432/signalbox",
    "CACHE_URL": "redis://127.0.0.1:6379/1",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
}


@pytest.mark.slow
def test_deploy__documented_production_env__check_deploy_clean() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DJANGO_"))}
    env.update(PRODUCTION_ENV)
    for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        env.pop(name, None)

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_deploy__documented_env__matches_docs() -> None:
    docs = (ROOT / "docs" / "deployment.md").read_text()
    for name in PRODUCTION_ENV:
        assert f"`{name}`" in docs, name


@pytest.mark.slow
@pytest.mark.parametrize("relaxed", ["SECURE_HSTS_SECONDS=0", "SESSION_COOKIE_SECURE=false"])
def test_deploy__insecure_override__check_deploy_warns(relaxed: str) -> None:
    name, value = relaxed.split("=")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DJANGO_"))}
    env.update(PRODUCTION_ENV, **{name: value})

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
