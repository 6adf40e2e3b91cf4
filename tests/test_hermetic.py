"""The suite is hermetic: nothing beyond loopback is reachable, nothing outside the repository is read."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.conftest import NetworkBlockedError

ROOT = Path(__file__).resolve().parents[1]


def test_connect__non_loopback_address__refused_with_a_clear_error():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(NetworkBlockedError) as refused:
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: would time out, not refuse, if really tried

    assert "tests may not reach the network: '192.0.2.1'" in str(refused.value)


def test_connect_ex__non_loopback_ipv6__refused():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock, pytest.raises(NetworkBlockedError):
        sock.connect_ex(("2001:db8::1", 443, 0, 0))


def test_name_lookup__remote_host__refused_before_any_dns_query():
    with pytest.raises(NetworkBlockedError, match=r"example\.com"):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises(NetworkBlockedError):
        socket.create_connection(("example.com", 80), timeout=1)


def test_http_client__remote_url__fails_with_the_guard_named():
    with pytest.raises(httpx.ConnectError, match="tests may not reach the network"):
        httpx.get("https://example.com/", timeout=1)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_connect__loopback__allowed(host: str):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        with socket.create_connection((host, port), timeout=2):
            accepted, _ = server.accept()
            accepted.close()


def test_demo_catalog__read_from_the_repository():
    from routing import demo

    assert demo.demo_catalog_path().resolve().is_relative_to(ROOT)


def test_tests__read_no_path_outside_the_repository():
    """No test names the shared data folder beside the checkout (benchmarks may, by argument)."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("*.py")
        if "benchmarks" not in path.parts and path != Path(__file__) and '"shared"' in path.read_text()
    ]

    assert offenders == []
