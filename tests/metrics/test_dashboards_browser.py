"""A real headless Chromium opens every dashboard: no console errors, every chart drawn by
plotly.js, and a screenshot of each page under test-output/screenshots/."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from routing import services
from routing.models import PolicyVersion
from tests import factories
from tests.metrics.test_dashboards import PAGES, seed_demo_rollups

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium"),
]


@pytest.fixture
def demo_data(transactional_db: Any, make_user: Any) -> Any:
    doc = factories.document(budget={"daily_usd": 4, "monthly_usd": 90, "downgrade_at": 0.9})
    doc["routes"]["general"]["expectations"] = {
        "escalation_bands": [{"min": 0.05, "max": 0.15}], "min_pass_rate": 0.9,
        "max_cost_per_request_usd": 0.003, "latency_p95_ms": 2500}
    policy = factories.policy("checkout", doc=doc)
    factories.publish(policy, {**doc, "default_route": "extraction"}, comment="send unknown tasks to extraction")
    services.policy_rollback(policy=policy, to_number=1, user=None, comment="extraction got expensive")
    now = datetime.now(UTC)
    for number, days_ago in ((1, 24), (2, 12), (3, 5)):
        PolicyVersion.objects.filter(policy=policy, number=number).update(
            published_at=now - timedelta(days=days_ago, hours=3))
    seed_demo_rollups(policy, days=60)
    make_user("viewer", username="lead")
    return policy


def test_every_dashboard__drawn_without_console_errors(live_server: Any, demo_data: Any) -> None:
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the live server thread uses the DB
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
            page.goto(f"{live_server.url}/admin/login/?next=/dashboards/")
            page.fill("#id_username", "lead")
            page.fill("#id_password", "pw-Signalbox-1")
            page.click("input[type=submit]")
            page.wait_for_url(f"{live_server.url}/dashboards/**")
            for name in PAGES:
                path = "/dashboards/" if name == "overview" else f"/dashboards/{name}/"
                response = page.goto(f"{live_server.url}{path}?policy=checkout")
                assert response is not None and response.status == 200, name
                charts = page.locator(".sb-chart[data-figure]")
                for i in range(charts.count()):
                    charts.nth(i).locator(".main-svg").first.wait_for(state="attached", timeout=10_000)
                    assert charts.nth(i).locator(".main-svg").count() >= 1, f"{name}: chart {i} not drawn"
                if name not in ("worksheet", "alerts"):
                    assert charts.count() >= 1, f"{name}: no charts"
                page.screenshot(path=str(SHOTS / f"dash-{name}.png"), full_page=True)
            # the admin links back to the dashboards
            page.goto(f"{live_server.url}/dashboards/alerts/?policy=checkout")
            assert page.locator("text=No alerts").count() >= 1
        finally:
            browser.close()
    assert errors == []
