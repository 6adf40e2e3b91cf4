"""Fixtures for the metrics tests: a policy with an SDK key, record builders, the endpoint."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests import factories

URL = "/api/v1/client/decisions"


@pytest.fixture
def _truncate_decisions(transactional_db: Any) -> Iterator[None]:
    """Transactional tests commit; the raw table is unmanaged, so Django's flush skips it."""
    yield
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE metrics_decision")


@pytest.fixture
def scoped(db: Any) -> tuple[Any, str]:
    """(policy 'checkout', the secret of an SDK key scoped to it)."""
    policy = factories.policy("checkout")
    _, secret = factories.sdk_key(policy)
    return policy, secret


@pytest.fixture
def scope(scoped: Any) -> tuple[int, frozenset[int]]:
    """(key id, policy ids) of the `scoped` key: what the service takes."""
    from routing.models import SdkKey

    policy, _ = scoped
    return SdkKey.objects.get().pk, frozenset({policy.pk})


def record(**changes: Any) -> dict[str, Any]:
    """A valid decision record for policy 'checkout' (timestamp: an hour ago)."""
    base: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "timestamp": (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "policy": "checkout",
        "policy_version": 1,
        "route": "extraction",
        "task_type": "extraction",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "tier": 1,
        "attempt": 1,
        "request_id": uuid.uuid4().hex,
        "reason": {"route_by": "task_type", "tier_by": "start"},
        "outcome": "ok",
        "confidence": 0.9,
        "tokens_in": 1000,
        "tokens_out": 200,
        "latency_ms": 420.5,
        "client": {"app": "tests", "instance": "host:1", "sdk_version": "0.1.0"},
        "attributes": {"user_tier": "pro"},
    }
    for name, value in changes.items():
        if value is _DROP:
            base.pop(name, None)
        else:
            base[name] = value
    return base


_DROP = object()
DROP = _DROP


@pytest.fixture
def post(client: Any) -> Callable[..., Any]:
    """post(records_or_body, secret) -> the response of the decisions endpoint."""

    def send(payload: Any, secret: str | None, **extra: Any) -> Any:
        body = (
            payload
            if isinstance(payload, bytes)
            else orjson.dumps({"decisions": payload} if isinstance(payload, list) else payload)
        )
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
        return client.post(URL, data=body, content_type="application/json", **headers, **extra)

    return send


# --- a real browser (tests marked `browser`) -------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@dataclass
class Browser:
    """A headless Chromium page on the live server and the console and page errors it has seen."""

    page: Any
    url: str
    errors: list[str] = field(default_factory=list)

    def log_in(self, username: str, *, then: str = "/dashboards/", password: str = "pw-Signalbox-1") -> None:
        """Log in through the admin's login form (tests/conftest.py's make_user password); the page
        then lands on `then`."""
        self.page.goto(f"{self.url}/admin/login/?next={then}")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("input[type=submit]")
        self.page.wait_for_url(f"{self.url}{then}**")

    def screenshot(self, name: str, target: Any = None) -> Path:
        """The page (whole) or `target` (a locator) as test-output/screenshots/<name>.png."""
        path = SCREENSHOTS / f"{name}.png"
        if target is None:
            self.page.screenshot(path=str(path), full_page=True)
        else:
            target.screenshot(path=str(path))
        return path


@pytest.fixture
def browser(live_server: Any) -> Iterator[Browser]:
    """A `Browser` against the live server; skipped when Debian's chromium is not installed.

    Request the test's data fixtures before this one: database work done under Playwright's event
    loop leaves a connection that keeps the test database from being dropped at the session's end."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    # The live server thread uses the DB under Playwright's event loop; left set for the session,
    # so that the test database can still be closed and dropped at its end.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = chromium.new_page(viewport={"width": 1440, "height": 900})
            opened = Browser(page, live_server.url)
            page.on("console", lambda m: opened.errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: opened.errors.append(f"{page.url}: {e}"))
            yield opened
        finally:
            chromium.close()
