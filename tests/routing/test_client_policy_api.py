"""The client protocol's policy fetch: GET /api/v1/client/policies/<policy> (a public contract)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from routing import services
from tests import factories
from tests.metrics.conftest import record

URL = "/api/v1/client/policies/{}"


def fetch(client: Client, slug: str, key: str | None, etag: str | None = None):
    headers = {}
    if key is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    if etag is not None:
        headers["HTTP_IF_NONE_MATCH"] = etag
    return client.get(URL.format(slug), **headers)


@pytest.fixture
def checkout(db):
    return factories.policy("checkout")


@pytest.fixture
def key(checkout):
    return factories.sdk_key(checkout)[1]


def test_fetch__valid_key__returns_live_document_with_strong_etag(client, checkout, key):
    response = fetch(client, "checkout", key)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["policy"] == "checkout"
    assert body["version"] == 1
    assert body["document"] == factories.document()
    assert body["published_at"].startswith(str(timezone.now().year))
    assert body["models"]["gpt-4o"]["provider"] == "openai"
    assert body["models"]["gpt-4o"]["context_window"] == 128_000
    assert body["models"]["gpt-4o"]["input_cost_per_mtok"] == 2.5
    etag = response["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert not etag.startswith("W/")


def test_fetch__matching_if_none_match__304_without_body(client, checkout, key):
    etag = fetch(client, "checkout", key)["ETag"]

    response = fetch(client, "checkout", key, etag)

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag


def test_fetch__etag_in_a_list_or_star__304(client, checkout, key):
    etag = fetch(client, "checkout", key)["ETag"]

    assert fetch(client, "checkout", key, f'"other", {etag}').status_code == 304
    assert fetch(client, "checkout", key, "*").status_code == 304
    assert fetch(client, "checkout", key, '"stale"').status_code == 200


def test_fetch__warm__304_and_200_make_no_database_query(client, checkout, key, django_assert_num_queries):
    etag = fetch(client, "checkout", key)["ETag"]  # warm-up: key and payload now in memory

    with django_assert_num_queries(0):
        assert fetch(client, "checkout", key, etag).status_code == 304
        assert fetch(client, "checkout", key).status_code == 200


def test_fetch__after_publish__serves_new_version_and_etag(client, checkout, key, django_capture_on_commit_callbacks):
    old_etag = fetch(client, "checkout", key)["ETag"]
    doc = factories.document(default_route="extraction")

    with django_capture_on_commit_callbacks(execute=True):
        factories.publish(checkout, doc)

    response = fetch(client, "checkout", key, old_etag)
    assert response.status_code == 200
    assert json.loads(response.content)["version"] == 2
    assert json.loads(response.content)["document"]["default_route"] == "extraction"
    assert response["ETag"] != old_etag


def test_fetch__after_rollback__serves_new_version_with_old_document(
    client, checkout, key, django_capture_on_commit_callbacks
):
    v1_etag = fetch(client, "checkout", key)["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        factories.publish(checkout, factories.document(default_route="extraction"))
    fetch(client, "checkout", key)

    with django_capture_on_commit_callbacks(execute=True):
        services.policy_rollback(policy=checkout, to_number=1, user=None, comment="bad change")

    response = fetch(client, "checkout", key, v1_etag)
    body = json.loads(response.content)
    assert response.status_code == 200, "the version number moved on, so the ETag must too"
    assert body["version"] == 3
    assert body["document"] == factories.document()


@pytest.mark.django_db(transaction=True)
def test_fetch__publish_rolled_back__old_version_still_served(client):
    checkout = factories.policy("checkout")
    key = factories.sdk_key(checkout)[1]
    etag = fetch(client, "checkout", key)["ETag"]
    from django.db import transaction

    def publish_in_a_failing_request() -> None:
        with transaction.atomic():
            factories.publish(checkout, factories.document(default_route="extraction"))
            raise RuntimeError("the surrounding request failed")

    with pytest.raises(RuntimeError, match="the surrounding request failed"):
        publish_in_a_failing_request()

    assert fetch(client, "checkout", key, etag).status_code == 304


def test_fetch__missing_or_malformed_authorization__401_json(client, checkout):
    for header in (None, "", "Token abc", "Bearer", "Bearer "):
        extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
        response = client.get(URL.format("checkout"), **extra)
        assert response.status_code == 401, header
        assert "Bearer" in response["WWW-Authenticate"]
        assert set(response.json()) == {"message", "errors"}


def test_fetch__unknown_key__401(client, checkout, key):
    assert fetch(client, "checkout", key[:-2] + "xx").status_code == 401
    assert fetch(client, "checkout", "sbx_nope_secret").status_code == 401
    assert fetch(client, "checkout", "not-a-signalbox-key").status_code == 401


def test_fetch__revoked_key__401(client, checkout, django_capture_on_commit_callbacks):
    sdk_key, secret = factories.sdk_key(checkout)
    assert fetch(client, "checkout", secret).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        services.sdk_key_revoke(key=sdk_key, user=None)

    response = fetch(client, "checkout", secret)
    assert response.status_code == 401
    assert "revoked" in response.json()["message"]


def test_fetch__key_scoped_to_another_policy__404_as_for_an_unknown_policy(client, checkout):
    other = factories.policy("support")
    secret = factories.sdk_key(other)[1]

    response = fetch(client, "checkout", secret)

    assert response.status_code == 404
    assert response.json()["errors"] == {"policy": ["not found for this key"]}


def test_fetch__unknown_policy__404(client, checkout, key):
    response = fetch(client, "nope", key)

    assert response.status_code == 404
    assert response.json()["errors"] == {"policy": ["not found for this key"]}


def test_fetch__nothing_published__404(client, db):
    draft_only = factories.policy("draft-only", publish=False)
    secret = factories.sdk_key(draft_only)[1]

    response = fetch(client, "draft-only", secret)

    assert response.status_code == 404
    assert "no published version" in response.json()["message"]


def test_fetch__post__405(client, checkout, key):
    response = client.post(URL.format("checkout"), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 405


def test_fetch__key_use__recorded_as_last_used(client, checkout):
    sdk_key, secret = factories.sdk_key(checkout)
    assert sdk_key.last_used_at is None

    fetch(client, "checkout", secret)

    sdk_key.refresh_from_db()
    assert sdk_key.last_used_at is not None


def test_fetch__publish_in_another_process__seen_after_the_check_interval(client, checkout, key, settings):
    """Another web process learns of a publish through the shared cache's generation token."""
    from routing import live

    settings.LIVE_POLICY_CHECK_SECONDS = 0  # every request consults the shared cache
    etag = fetch(client, "checkout", key)["ETag"]
    factories.publish(checkout, factories.document(default_route="extraction"))
    assert fetch(client, "checkout", key, etag).status_code == 304, "not invalidated yet"

    # What live.invalidate() does in the publishing process, seen from this one: only the shared
    # cache's token changes; this process's memory still holds v1.
    from django.core.cache import cache

    assert "checkout" in live._policies
    cache.set("signalbox:live-gen:checkout", "bumped-by-another-process", None)

    response = fetch(client, "checkout", key, etag)
    assert response.status_code == 200
    assert json.loads(response.content)["version"] == 2


# -- budget state: the Signalbox-Budget header ---------------------------------------------------

BUDGET_HEADER = "Signalbox-Budget"


def budget_of(response) -> dict | None:
    value = response.headers.get(BUDGET_HEADER)
    return json.loads(value) if value is not None else None


def write_budget(slug: str, daily: float) -> None:
    """What metrics publishes for a policy (tests/metrics/budget/test_budget_state.py covers the numbers)."""
    from datetime import UTC, datetime

    from routing import live

    live.budget_state_write(
        slug=slug,
        as_of=datetime(2026, 11, 22, 9, 0, tzinfo=UTC),
        state={"policy": None, "routes": {"extraction": {"daily": daily, "monthly": 0.125}}},
    )


@pytest.fixture
def metrics_memory():
    """The process caches, emptied around the test (as the autouse fixture does for every test)."""
    from controlplane.memory import forget_all

    forget_all()
    yield
    forget_all()


def test_fetch__budget_state__sent_on_200_and_304_as_compact_json(client, checkout, key):
    write_budget("checkout", 0.85)

    ok = fetch(client, "checkout", key)
    not_modified = fetch(client, "checkout", key, ok["ETag"])

    expected = {
        "as_of": "2026-11-22T09:00:00Z",
        "policy": None,
        "routes": {"extraction": {"daily": 0.85, "monthly": 0.125}},
    }
    assert budget_of(ok) == expected
    assert not_modified.status_code == 304
    assert budget_of(not_modified) == expected
    assert " " not in ok[BUDGET_HEADER]
    assert "budget" not in json.loads(ok.content), "the state is not part of the document"


def test_fetch__no_budget_state__no_header(client, checkout, key):
    response = fetch(client, "checkout", key)

    assert response.status_code == 200
    assert BUDGET_HEADER not in response.headers


def test_fetch__spend_changes_through_ingest_and_rollups__etag_unchanged_header_follows(
    client, checkout, key, metrics_memory, settings, django_capture_on_commit_callbacks
):
    from datetime import UTC, datetime

    from tests.metrics.conftest import record

    settings.ROLLUPS_DEBOUNCE_SECONDS = 0  # every ingest queues its rollup update
    etag = fetch(client, "checkout", key)["ETag"]
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    fractions = []
    for cost in (10.0, 30.0):  # extraction's daily budget is 50 USD
        with django_capture_on_commit_callbacks(execute=True):  # the rollup task runs after commit
            posted = client.post(
                "/api/v1/client/decisions",
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {key}",
                data={"decisions": [record(timestamp=now, cost_usd=cost)]},
            )
        assert posted.status_code == 200
        assert posted.json()["accepted"] == 1
        response = fetch(client, "checkout", key, etag)
        assert response.status_code == 304
        assert response["ETag"] == etag
        fractions.append(budget_of(response)["routes"]["extraction"]["daily"])

    assert fractions == [pytest.approx(0.2), pytest.approx(0.8)]


def test_fetch__budget_state__a_key_sees_only_its_policys_state(client, checkout, key):
    other = factories.policy("billing")
    other_key = factories.sdk_key(other)[1]
    write_budget("checkout", 0.5)
    write_budget("billing", 0.9)

    assert budget_of(fetch(client, "checkout", key))["routes"]["extraction"]["daily"] == 0.5
    assert budget_of(fetch(client, "billing", other_key))["routes"]["extraction"]["daily"] == 0.9
    refused = fetch(client, "billing", key)
    assert refused.status_code == 404
    assert BUDGET_HEADER not in refused.headers


def test_fetch__budget_state_warm__304_makes_no_database_query(client, checkout, key, django_assert_num_queries):
    write_budget("checkout", 0.85)
    etag = fetch(client, "checkout", key)["ETag"]

    with django_assert_num_queries(0):
        response = fetch(client, "checkout", key, etag)

    assert response.status_code == 304
    assert budget_of(response) is not None


def test_fetch__budget_state_from_another_process__seen_at_the_check_not_on_every_request(
    client, checkout, key, settings
):
    """The state is read with the generation token, every LIVE_POLICY_CHECK_SECONDS, not per request."""
    from django.core.cache import cache

    from routing import live

    settings.LIVE_POLICY_CHECK_SECONDS = 3600
    etag = fetch(client, "checkout", key)["ETag"]
    # What metrics writes from a worker process: the shared cache only, not this process's memory.
    cache.set(
        live.budget_state_key("checkout"),
        '{"as_of":"2026-11-22T09:00:00Z","policy":{"daily":0.9,"monthly":null},"routes":{}}',
    )

    assert BUDGET_HEADER not in fetch(client, "checkout", key, etag).headers, "memory still fresh"

    settings.LIVE_POLICY_CHECK_SECONDS = 0  # the check interval has passed
    response = fetch(client, "checkout", key, etag)
    assert response.status_code == 304
    assert budget_of(response)["policy"] == {"daily": 0.9, "monthly": None}


def test_fetch__budget_state_not_refreshed_for_max_age__no_longer_sent(client, checkout, key, settings):
    import time

    settings.LIVE_POLICY_CHECK_SECONDS = 0
    settings.BUDGET_STATE_MAX_AGE_SECONDS = 0.3
    write_budget("checkout", 0.85)
    assert BUDGET_HEADER in fetch(client, "checkout", key).headers

    time.sleep(0.4)

    assert BUDGET_HEADER not in fetch(client, "checkout", key).headers


def test_fetch__budget_state_removed__header_gone_at_once(client, checkout, key):
    from datetime import UTC, datetime

    from routing import live

    write_budget("checkout", 0.85)
    etag = fetch(client, "checkout", key)["ETag"]

    live.budget_state_write(slug="checkout", state=None, as_of=datetime.now(UTC))

    assert BUDGET_HEADER not in fetch(client, "checkout", key, etag).headers


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2", "version 2 is not spoken here; this server speaks 1"),
        ("one", "must be a protocol version number, such as 1"),
        ("1.5", "must be a protocol version number, such as 1"),
    ],
)
@pytest.mark.parametrize("endpoint", ["policy fetch", "decisions"])
def test_protocol_header__a_version_not_spoken__400_naming_the_header_and_nothing_stored(
    client, checkout, key, value, reason, endpoint
):
    from metrics.models import Decision

    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_SIGNALBOX_PROTOCOL": value}
    if endpoint == "policy fetch":
        response = client.get(URL.format("checkout"), **headers)
    else:
        body = {"decisions": [record()]}
        response = client.post("/api/v1/client/decisions", body, content_type="application/json", **headers)

    assert response.status_code == 400
    assert response.json() == {"message": f"Signalbox-Protocol: {reason}.", "errors": {"Signalbox-Protocol": [reason]}}
    assert Decision.objects.count() == 0


@pytest.mark.parametrize("value", [None, "1", " 1 "])
def test_protocol_header__absent_or_version_1__answered(client, checkout, key, value):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    if value is not None:
        headers["HTTP_SIGNALBOX_PROTOCOL"] = value

    assert client.get(URL.format("checkout"), **headers).status_code == 200
    response = client.post(
        "/api/v1/client/decisions", {"decisions": [record()]}, content_type="application/json", **headers
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
