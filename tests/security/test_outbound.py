"""Outbound requests made for users (alert webhooks and "send test") cannot reach this server or
its private network, carry no credentials in the URL, and fail with one text whatever the transport
error, so a channel cannot be used to scan or call internal services (issue 18: SSRF)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from controlplane.outbound import UNREACHABLE, outbound_post
from metrics.models import NotificationChannel

pytestmark = pytest.mark.django_db

CHANNELS = "/api/v1/metrics/channels/"


@pytest.fixture
def listener() -> Iterator[dict[str, Any]]:
    """An HTTP server on 127.0.0.1 that counts what reaches it."""
    seen: dict[str, Any] = {"requests": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen["requests"] += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen["port"] = server.server_address[1]
    yield seen
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",
        "http://[::1]:{port}/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://192.168.1.1/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "https://user:secret@hooks.example.com/T1",
        "ftp://hooks.example.com/T1",
    ],
)
def test_channel_create__private_or_credentialed_url__400_naming_url_nothing_stored(
    api: Any, publisher: Any, listener: dict[str, Any], url: str
) -> None:
    response = api(publisher).post(
        CHANNELS, {"name": "n", "kind": "webhook", "url": url.format(port=listener["port"])}, format="json"
    )
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["url"]
    assert NotificationChannel.objects.count() == 0
    assert listener["requests"] == 0


def test_send_test__host_resolving_to_loopback__refused_before_any_connection(
    api: Any, publisher: Any, listener: dict[str, Any], monkeypatch: Any
) -> None:
    """A public-looking name whose DNS answer is 127.0.0.1 (rebinding) is refused at send time."""
    import socket

    real = socket.getaddrinfo

    def rebinding(host: str, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1", *args, **kwargs) if host == "hooks.example.com" else real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    created = api(publisher).post(
        CHANNELS,
        {"name": "n", "kind": "webhook", "url": f"http://hooks.example.com:{listener['port']}/hook"},
        format="json",
    )
    assert created.status_code == 201, created.content
    answer = api(publisher).post(f"{CHANNELS}{created.json()['id']}/test/", {}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["ok"] is False
    assert "does not resolve to a public address" in answer.json()["error"]
    assert listener["requests"] == 0


def test_outbound__refused_reset_and_protocol_errors__one_text(settings: Any, listener: dict[str, Any]) -> None:
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True  # to reach the local ports at all
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens: connection refused
    refused = outbound_post(f"http://127.0.0.1:{port}/", b"{}", {}, timeout=2)

    garbage = socket.socket()
    garbage.bind(("127.0.0.1", 0))
    garbage.listen()

    def answer_garbage() -> None:
        conn, _ = garbage.accept()
        conn.recv(65536)
        conn.sendall(b"not http at all\r\n\r\n")
        conn.close()

    threading.Thread(target=answer_garbage, daemon=True).start()
    protocol = outbound_post(f"http://127.0.0.1:{garbage.getsockname()[1]}/", b"{}", {}, timeout=2)
    garbage.close()
    assert refused.error == protocol.error == UNREACHABLE
    assert (refused.ok, protocol.ok) == (False, False)


def test_outbound__allowed_receiver__delivered_once(settings: Any, listener: dict[str, Any]) -> None:
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
    result = outbound_post(f"http://localhost:{listener['port']}/hook", b"{}", {"X-A": "1"}, timeout=2)
    assert (result.ok, result.status, listener["requests"]) == (True, 200, 1)
