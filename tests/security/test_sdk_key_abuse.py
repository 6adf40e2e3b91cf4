"""Made-up SDK keys are throttled per address; the key cache evicts one entry at a time; a key
cannot tell another team's policy from a policy that does not exist."""

from __future__ import annotations

import pytest

from routing import live
from tests import factories

pytestmark = pytest.mark.django_db

FETCH = "/api/v1/client/policies/{slug}"


def fetch(client, slug: str, secret: str, address: str = "203.0.113.7"):
    return client.get(FETCH.format(slug=slug), HTTP_AUTHORIZATION=f"Bearer {secret}", REMOTE_ADDR=address)


def made_up(i: int) -> str:
    return f"sbk_fake{i:06d}_{'x' * 32}"


def test_unknown_keys__past_the_rate__429_per_address_without_a_key_lookup(client, settings, django_assert_num_queries):
    settings.CLIENT_RATE_LIMIT_UNKNOWN_KEY = "5/minute"
    factories.policy("checkout")
    for i in range(5):
        assert fetch(client, "checkout", made_up(i)).status_code == 401

    with django_assert_num_queries(0):
        refused = fetch(client, "checkout", made_up(99))

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert refused.json()["errors"] == {"rate_limit": ["at most 5/minute refused keys per address"]}


def test_unknown_keys__other_address_and_valid_keys_elsewhere__unaffected(client, settings):
    settings.CLIENT_RATE_LIMIT_UNKNOWN_KEY = "5/minute"
    policy = factories.policy("checkout")
    secret = factories.sdk_key(policy)[1]
    for i in range(10):
        fetch(client, "checkout", made_up(i))

    assert fetch(client, "checkout", secret, address="198.51.100.9").status_code == 200
    assert fetch(client, "checkout", made_up(1), address="198.51.100.9").status_code == 401


def test_unknown_keys__decision_upload_counts_and_is_throttled_too(client, settings):
    settings.CLIENT_RATE_LIMIT_UNKNOWN_KEY = "3/minute"
    for i in range(3):
        posted = client.post(
            "/api/v1/client/decisions",
            data={"decisions": []},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {made_up(i)}",
            REMOTE_ADDR="203.0.113.7",
        )
        assert posted.status_code == 401

    assert fetch(client, "checkout", made_up(7)).status_code == 429


def test_key_cache__flood_of_made_up_keys__a_key_in_use_stays_cached(
    client, settings, monkeypatch, django_assert_num_queries
):
    settings.CLIENT_RATE_LIMIT_UNKNOWN_KEY = "off"
    monkeypatch.setattr(live._keys, "size", 50)
    policy = factories.policy("checkout")
    secret = factories.sdk_key(policy)[1]
    etag = fetch(client, "checkout", secret)["ETag"]

    for i in range(120):  # more than the cache holds: the old code emptied it here
        fetch(client, "checkout", made_up(i))
        if i % 10 == 0:
            assert fetch(client, "checkout", secret).status_code == 200  # in use: recently used

    with django_assert_num_queries(0):
        response = client.get(
            FETCH.format(slug="checkout"), HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_IF_NONE_MATCH=etag
        )
    assert response.status_code == 304


def test_key_cache__bounded(client, settings, monkeypatch):
    settings.CLIENT_RATE_LIMIT_UNKNOWN_KEY = "off"
    monkeypatch.setattr(live._keys, "size", 20)

    for i in range(60):
        fetch(client, "checkout", made_up(i))

    assert len(live._keys) == 20


def test_fetch__unknown_and_unscoped_policy__same_status_and_body(client):
    mine = factories.policy("checkout")
    factories.policy("billing")
    secret = factories.sdk_key(mine)[1]

    unknown = fetch(client, "no-such-policy", secret)
    unscoped = fetch(client, "billing", secret)

    assert unknown.status_code == unscoped.status_code == 404
    assert unknown.json()["errors"] == unscoped.json()["errors"] == {"policy": ["not found for this key"]}
    assert unknown.json()["message"].replace("no-such-policy", "billing") == unscoped.json()["message"]
