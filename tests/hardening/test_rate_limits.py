"""Per-key rate limits on the client endpoints and per-user throttling of the management API:
429 with Retry-After (seconds) and the API's error body, counted in the shared cache."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from controlplane import ratelimit
from tests import factories
from tests.hardening.conftest import decision_count, record

ROOT = Path(__file__).resolve().parents[2]


def _assert_429(response: Any, window: int) -> None:
    assert response.status_code == 429, response.content[:300]
    assert 1 <= int(response["Retry-After"]) <= window
    body = response.json()
    assert set(body) == {"message", "errors"}
    assert body["message"]


def test_policy_fetch__over_the_key_rate__429_with_retry_after(world: Any, fetch: Any, settings: Any) -> None:
    settings.CLIENT_RATE_LIMIT_POLICY_FETCH = "3/hour"
    etag = fetch("checkout", world.secret)["ETag"]
    assert [fetch("checkout", world.secret, etag).status_code for _ in range(2)] == [304, 304]

    response = fetch("checkout", world.secret, etag)

    _assert_429(response, 3600)
    assert response.json()["errors"] == {"rate_limit": ["at most 3/hour per SDK key"]}


def test_policy_fetch__one_key_over_its_rate__other_keys_still_served(world: Any, fetch: Any, settings: Any) -> None:
    settings.CLIENT_RATE_LIMIT_POLICY_FETCH = "2/hour"
    for _ in range(2):
        fetch("checkout", world.secret)
    assert fetch("checkout", world.secret).status_code == 429

    assert fetch("billing", world.billing_secret).status_code == 200


@pytest.mark.parametrize("value", ["off", "0", ""])
def test_policy_fetch__limit_off__never_429(world: Any, fetch: Any, settings: Any, value: str) -> None:
    settings.CLIENT_RATE_LIMIT_POLICY_FETCH = value

    statuses = {fetch("checkout", world.secret).status_code for _ in range(30)}

    assert statuses == {200}


def test_decisions__over_the_key_rate__429_and_nothing_stored(world: Any, upload: Any, settings: Any) -> None:
    settings.CLIENT_RATE_LIMIT_DECISIONS = "2/hour"
    assert [upload([record()], world.secret).status_code for _ in range(2)] == [200, 200]
    stored = decision_count()

    response = upload([record()], world.secret)

    _assert_429(response, 3600)
    assert decision_count() == stored == 2


def test_decisions__unknown_key__401_before_counting(db: Any, upload: Any, settings: Any) -> None:
    settings.CLIENT_RATE_LIMIT_DECISIONS = "1/minute"

    statuses = [upload([record()], "sbk_nope_nope").status_code for _ in range(3)]

    assert statuses == [401, 401, 401]


def test_management_api__over_the_user_rate__429_with_retry_after(
    db: Any, api: Any, viewer: Any, editor: Any, settings: Any
) -> None:
    settings.API_RATE_LIMIT_USER = "2/hour"
    client = api(viewer)
    assert [client.get("/api/v1/policies/").status_code for _ in range(2)] == [200, 200]

    response = client.get("/api/v1/policies/")

    _assert_429(response, 3600)
    assert api(editor).get("/api/v1/policies/").status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/policy-document/validate/", {"document": factories.document()}),
        ("/api/v1/policies/checkout/preview/", {"version": "live", "request": {"task_type": "extraction"}}),
        (
            "/api/v1/metrics/whatif/",
            {"policy": "checkout", "document": factories.document(), "start": "2026-11-01", "end": "2026-11-02"},
        ),
    ],
    ids=["validate", "preview", "whatif"],
)
def test_compute_endpoints__over_the_compute_rate__429_while_reads_and_other_users_go_on(
    db: Any, api: Any, viewer: Any, editor: Any, settings: Any, path: str, body: dict[str, Any]
) -> None:
    """Preview, validate and what-if run the engine on what the caller sends: each user has a
    budget of its own for them (API_RATE_LIMIT_COMPUTE), below the general API rate."""
    settings.API_RATE_LIMIT_COMPUTE = "2/minute"
    factories.catalog()
    factories.publish(factories.policy("checkout"), factories.document())
    client = api(viewer)
    assert [client.post(path, body, format="json").status_code for _ in range(2)] == [200, 200]

    response = client.post(path, body, format="json")

    _assert_429(response, 60)
    assert client.get("/api/v1/policies/").status_code == 200, "the compute budget throttled a read"
    assert api(editor).post(path, body, format="json").status_code == 200, "one user's budget throttled another"


def _redis_or_skip() -> str:
    import redis

    url = "redis://127.0.0.1:6379/14"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    return url


@pytest.mark.parametrize("requests", [150, 1000])  # 1000: processes reserve 10 at a time
@pytest.mark.parametrize("backend", ["locmem", "redis"])
def test_hit__concurrent_clients__each_request_counted_once(
    db: Any, settings: Any, backend: str, requests: int
) -> None:
    """8 threads (on Redis each with its own client, like separate web nodes) sending more than the
    rate get exactly the rate admitted: the count is atomic and shared."""
    if backend == "redis":
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": _redis_or_skip(),
                "KEY_PREFIX": f"hardening-{os.getpid()}",
            }
        }
    rate = ratelimit.Rate(requests, 3600)
    per_thread = requests // 8 + 25
    allowed: list[bool] = []
    lock = threading.Lock()
    scope = f"atomic-{backend}-{requests}-{os.getpid()}"

    def work() -> None:
        for _ in range(per_thread):
            ok = ratelimit.hit(scope, 7, rate) is None
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=work) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        from django.core.cache import cache

        cache.clear()

    assert len(allowed) == 8 * per_thread > requests
    assert sum(allowed) == requests


@pytest.mark.parametrize(
    "setting",
    [
        "CLIENT_RATE_LIMIT_POLICY_FETCH",
        "CLIENT_RATE_LIMIT_DECISIONS",
        "API_RATE_LIMIT_USER",
        "API_RATE_LIMIT_ANON",
        "API_RATE_LIMIT_COMPUTE",
    ],
)
def test_settings__malformed_rate__start_up_refused_naming_the_setting(setting: str) -> None:
    env = {**os.environ, setting: "12/fortnight", "DEBUG": "true", "DATABASE_URL": "sqlite:///:memory:"}

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{setting}='12/fortnight' is not a rate" in result.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("6000/minute", ratelimit.Rate(6000, 60)),
        ("100/s", ratelimit.Rate(100, 1)),
        (" 5 / Hour ", ratelimit.Rate(5, 3600)),
        ("7/days", ratelimit.Rate(7, 86400)),
        ("off", None),
        ("0", None),
        ("0/minute", None),
        ("", None),
        (None, None),
    ],
)
def test_rate_parse__accepted_forms(value: str | None, expected: ratelimit.Rate | None) -> None:
    assert ratelimit.rate_parse(value, setting="X") == expected


@pytest.mark.parametrize("value", ["6000", "minute", "-1/minute", "1.5/minute", "10/fortnight", "10/60s"])
def test_rate_parse__malformed__improperly_configured(value: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="SOME_RATE="):
        ratelimit.rate_parse(value, setting="SOME_RATE")
