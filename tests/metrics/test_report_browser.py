"""A real headless Chromium opens the monthly report: no console errors, every chart drawn, the
"Mark reviewed" form works, and the print layout holds up (screenshots under
test-output/screenshots/, the A4 PDF under test-output/)."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from metrics.report_selectors import report_last_full_month
from routing import services
from routing.models import PolicyVersion
from tests import factories
from tests.metrics.test_dashboards import seed_demo_rollups
from tests.metrics.test_dashboards_browser import CHROMIUM, SHOTS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium"),
]
OUTPUT = SHOTS.parent


@pytest.fixture
def report_data(transactional_db: Any, make_user: Any) -> Any:
    """Two months of demo-shaped cells, a publish and a rollback inside the last full month."""
    doc = factories.document(budget={"daily_usd": 4, "monthly_usd": 90, "downgrade_at": 0.9})
    policy = factories.policy("checkout", doc=doc)
    factories.publish(policy, {**doc, "default_route": "extraction"}, comment="send unknown tasks to extraction")
    services.policy_rollback(policy=policy, to_number=1, user=None, comment="extraction got expensive")
    first = report_last_full_month()
    for number, when in ((1, first - timedelta(days=20)), (2, first + timedelta(days=9)),
                         (3, first + timedelta(days=17))):
        PolicyVersion.objects.filter(policy=policy, number=number).update(
            published_at=datetime(when.year, when.month, when.day, 14, tzinfo=UTC))
    seed_demo_rollups(policy, days=70)
    make_user("editor", username="lead")
    return first


def test_report__drawn_reviewed_and_printed_without_console_errors(live_server: Any, report_data: Any) -> None:
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the live server thread uses the DB
    SHOTS.mkdir(parents=True, exist_ok=True)
    month = report_data.strftime("%Y-%m")
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

            # From the dashboards' "Monthly report" link to the last full month.
            page.click(".sb-report-link a")
            page.wait_for_url(f"{live_server.url}/reports/checkout/{month}/")
            charts = page.locator(".sb-chart[data-figure]")
            assert charts.count() == 4
            for i in range(charts.count()):
                charts.nth(i).locator(".main-svg").first.wait_for(state="attached", timeout=10_000)
            assert page.locator("#summary tr[data-metric]").count() == 9
            assert page.locator("#changes tbody tr").count() == 2
            page.screenshot(path=str(SHOTS / "report.png"), full_page=True)

            # Mark reviewed: the form posts (with its CSRF token) and the page shows the review.
            page.fill("input[name=note]", "agreed: route summarize to tier 2")
            page.click("text=Mark reviewed")
            page.wait_for_url(re.compile(r".*/reports/checkout/\d{4}-\d{2}/#review$"))
            assert "Reviewed" in page.locator("#review").inner_text()
            assert "agreed: route summarize to tier 2" in page.locator("#review").inner_text()

            # Print: no navigation or forms, charts redrawn at the A4 width, an A4 PDF.
            page.set_viewport_size({"width": 794, "height": 1123})
            page.emulate_media(media="print")
            page.wait_for_timeout(300)
            for selector in (".sb-topbar", ".sb-report-toolbar", ".sb-review-form", ".sb-csv"):
                assert not page.locator(selector).first.is_visible(), selector
            widths = page.eval_on_selector_all(".sb-chart .main-svg:first-child",
                                               "els => els.map(e => e.getBoundingClientRect().width)")
            assert widths and all(w <= 720 for w in widths), widths
            page.screenshot(path=str(SHOTS / "report-print.png"), full_page=True)
            pdf = page.pdf(path=str(OUTPUT / "report.pdf"), format="A4", print_background=True,
                           prefer_css_page_size=True)
            assert pdf.startswith(b"%PDF")
            pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
            assert 2 <= pages <= 8, pages
        finally:
            browser.close()
    assert errors == []
