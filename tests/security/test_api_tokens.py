"""Management API tokens are stored as SHA-256 hashes; clients send `Authorization: Token <key>` as before."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.management import call_command
from django.db import connection

from routing.models import ApiToken

pytestmark = pytest.mark.django_db


def test_api_token_create__prints_the_key_once_and_stores_only_its_hash(client, viewer):
    out = io.StringIO()
    call_command("api_token_create", viewer.username, stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip()

    response = client.get("/api/v1/policies/", HTTP_AUTHORIZATION=f"Token {key}")

    assert response.status_code == 200
    token = ApiToken.objects.get(user=viewer)
    assert token.hashed_key == hashlib.sha256(key.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM routing_apitoken")
        assert all(key not in str(value) for row in cursor.fetchall() for value in row)


def test_token__unknown_or_of_an_inactive_user__401_as_drf_answers(client, viewer):
    out = io.StringIO()
    call_command("api_token_create", viewer.username, stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip()

    unknown = client.get("/api/v1/policies/", HTTP_AUTHORIZATION=f"Token {key}x")
    viewer.is_active = False
    viewer.save()
    inactive = client.get("/api/v1/policies/", HTTP_AUTHORIZATION=f"Token {key}")

    assert unknown.status_code == inactive.status_code == 401
    assert unknown["WWW-Authenticate"] == "Token"
    assert unknown.json()["message"] == "Invalid token."


def test_api_token_create__unknown_user__error():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("api_token_create", "nobody", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_migration_0004__existing_authtoken_keys_hashed_keep_working_and_leave_no_clear_copy(client, viewer):
    from django.db.migrations.executor import MigrationExecutor

    legacy = "0123456789abcdef0123456789abcdef01234567"  # DRF authtoken's 40 hex characters
    executor = MigrationExecutor(connection)
    executor.migrate([("routing", "0003_audit_report_review")])
    with connection.cursor() as cursor:  # the table rest_framework.authtoken had made
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz NOT NULL,"
            " user_id integer NOT NULL UNIQUE)"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [legacy, viewer.pk])
    try:
        executor = MigrationExecutor(connection)
        executor.migrate([("routing", "0004_api_tokens")])
        executor = MigrationExecutor(connection)  # then on to the latest (0005 adds the token scopes)
        executor.migrate(executor.loader.graph.leaf_nodes())

        response = client.get("/api/v1/policies/", HTTP_AUTHORIZATION=f"Token {legacy}")

        assert response.status_code == 200
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM authtoken_token")
            assert cursor.fetchone() == (0,)
        token = ApiToken.objects.get(user=viewer)
        assert token.prefix == legacy[:8]
        scope = list(token.policies.all())
        assert (token.role, token.expires_at, token.revoked_at, scope) == ("publisher", None, None, [])
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS authtoken_token")
