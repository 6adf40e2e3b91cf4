"""Fixtures shared by every test: no outbound network, nothing read from outside the repository,
fresh hot-path memory, users per role."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # Only what makes tests fast or independent of collectstatic.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test has its own node id, so pytest-xdist (which schedules by id) runs each one.

    pytest 9.2 builds a Function's id from its original name and callspec; schemathesis names each
    operation's item `test[GET /path]` without a callspec, so the 40 operations of the schema fuzz
    shared one id, and under xdist 39 of them silently never ran. Such items get their name back as
    their id; any duplicate left stops the run instead of losing tests."""
    for item in items:
        node_id = getattr(item, "_id", None)
        if getattr(node_id, "params", "") is None and item.name.endswith("]") and "[" in item.name:
            item._id = node_id.with_params(item.name.partition("[")[2][:-1])  # type: ignore[attr-defined]
    seen: dict[str, int] = {}
    for item in items:
        seen[item.nodeid] = seen.get(item.nodeid, 0) + 1
    duplicates = sorted(node for node, count in seen.items() if count > 1)
    if duplicates:
        raise pytest.UsageError(f"tests share a node id (xdist would run only one of each): {duplicates[:5]}")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """One test database per pytest process, so concurrent runs on one machine never collide."""
    from django.conf import settings

    test = settings.DATABASES["default"].setdefault("TEST", {})
    base = test.get("NAME") or f"test_{settings.DATABASES['default']['NAME']}"
    test["NAME"] = f"{base}_{os.getpid()}"


class NetworkBlockedError(ConnectionRefusedError):
    """Raised for any connection or name lookup beyond this machine during a test."""


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_loopback(host: Any) -> bool:
    if host is None or host in ("", "localhost", "localhost.localdomain"):
        return True  # None and "" are the wildcard of a server's bind, never a remote host
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        address = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return str(host).lower().endswith(".localhost")
    return address.is_loopback or address.is_unspecified  # 0.0.0.0 and :: reach this machine only


def _refuse(host: Any) -> NetworkBlockedError:
    return NetworkBlockedError(f"tests may not reach the network: {host!r} is not a loopback address")


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise _refuse(address[0])
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise _refuse(address[0])
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_loopback(host):  # no DNS lookup leaves the machine either
        raise _refuse(host)
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def _no_outbound_network() -> Iterator[None]:
    """Tests talk to loopback only (the live server, PostgreSQL, Redis, the private fault stack).
    Child processes (Chromium, gunicorn, Celery workers) are not covered; they are given loopback
    URLs only. libpq (psycopg) connects from C, beneath this guard; its URLs are loopback too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _guarded_connect)
        patch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
        patch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
        yield


@pytest.fixture(autouse=True)
def _demo_catalog_bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo loads its bundled catalog, never the full price map beside the checkout."""
    from routing import demo

    monkeypatch.setattr(demo, "demo_catalog_path", lambda: demo.FIXTURES / "demo_catalog.json")


@pytest.fixture(autouse=True)
def _fresh_process_memory() -> Iterator[None]:
    """Every process cache (live policies and keys, rate-limit leases, prices, key scopes, known
    partitions: `controlplane.memory`) and the shared cache start empty in each test."""
    from django.core.cache import cache

    from controlplane.memory import forget_all

    forget_all()
    cache.clear()
    yield
    forget_all()


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    """make_user("publisher") -> an active user in that role's group (None = no role)."""
    from django.contrib.auth.models import Group, Permission, User

    from routing.roles import role_groups_sync

    counter = {"n": 0}

    def make(role: str | None = None, *, superuser: bool = False, **fields: Any) -> User:
        if role and not Group.objects.filter(name=role).exists():  # a transactional test flushed it
            role_groups_sync(Group, Permission)
        counter["n"] += 1
        name = fields.pop("username", f"{role or 'nobody'}{counter['n']}")
        user = User.objects.create_user(
            username=name, password="pw-Signalbox-1", is_staff=True, is_superuser=superuser, **fields
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def publisher(make_user: Callable[..., Any]) -> Any:
    return make_user("publisher")


@pytest.fixture
def editor(make_user: Callable[..., Any]) -> Any:
    return make_user("editor")


@pytest.fixture
def viewer(make_user: Callable[..., Any]) -> Any:
    return make_user("viewer")


@pytest.fixture
def api(db: Any) -> Callable[..., Any]:
    """api(user) -> a DRF APIClient authenticated with that user's token (None = anonymous)."""
    from django.utils import timezone
    from rest_framework.test import APIClient

    from routing.models import ApiToken
    from routing.services import API_TOKEN_PREFIX, api_token_hash

    keys: dict[int, str] = {}

    def make(user: Any = None) -> APIClient:
        client = APIClient()
        if user is not None:
            if user.pk not in keys:
                # Made beside the service (no audit entry), so a test's audit snapshot sees only
                # the requests under test; publisher role, every policy: the user's own rights.
                key = f"{API_TOKEN_PREFIX}{user.pk:08x}_{secrets.token_urlsafe(32)}"
                ApiToken.objects.create(
                    user=user,
                    name="tests",
                    prefix=f"{user.pk:08x}",
                    hashed_key=api_token_hash(key),
                    last_used_at=timezone.now(),  # no last-use write inside a query count
                )
                keys[user.pk] = key
            client.credentials(HTTP_AUTHORIZATION=f"Token {keys[user.pk]}")
        return client

    return make


@pytest.fixture(autouse=True)
def _raw_decisions_emptied(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that commits (transactional, or a live server) leaves no decision rows behind: the raw
    table is unmanaged, so Django's flush skips it, and the next test on the worker would count them."""
    marker = request.node.get_closest_marker("django_db")
    commits = (marker is not None and marker.kwargs.get("transaction")) or bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
    )
    if not commits:
        yield
        return
    request.getfixturevalue("transactional_db")  # torn down after this fixture: the table is still there
    yield
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE metrics_decision")
