"""A real headless Chromium opens the monthly report: no console errors, every chart drawn, the
"Mark reviewed" form works, and the print layout holds up (screenshots under
test-output/screenshots/, the A4 PDF under test-output/)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from metrics.reports.selectors import report_last_full_month
from routing import services
from routing.models import PolicyVersion
from tests import factories
from tests.metrics.dashboards.test_dashboards import seed_demo_rollups

pytestmark = [pytest.mark.browser, pytest.mark.slow]
OUTPUT = Path(__file__).resolve().parents[3] / "test-output"


@pytest.fixture
def report_data(transactional_db: Any, make_user: Any) -> Any:
    """Two months of demo-shaped cells, a publish and a rollback inside the last full month."""
    doc = factories.document(budget={"daily_usd": 4, "monthly_usd": 90, "downgrade_at": 0.9})
    policy = factories.policy("checkout", doc=doc)
    factories.publish(policy, {**doc, "default_route": "extraction"}, comment="send unknown tasks to extraction")
    services.policy_rollback(policy=policy, to_number=1, user=None, comment="extraction got expensive")
    first = report_last_full_month()
    for number, when in (
        (1, first - timedelta(days=20)),
        (2, first + timedelta(days=9)),
        (3, first + timedelta(days=17)),
    ):
        PolicyVersion.objects.filter(policy=policy, number=number).update(
            published_at=datetime(when.year, when.month, when.day, 14, tzinfo=UTC)
        )
    seed_demo_rollups(policy, days=70)
    make_user("editor", username="lead")
    return first


def test_report__drawn_reviewed_and_printed_without_console_errors(report_data: Any, browser: Any) -> None:
    page = browser.page
    month = report_data.strftime("%Y-%m")
    browser.log_in("lead")

    # From the dashboards' "Monthly report" link to the last full month.
    page.click(".sb-report-link a")
    page.wait_for_url(f"{browser.url}/reports/checkout/{month}/")
    charts = page.locator(".sb-chart[data-figure]")
    assert charts.count() == 4
    for i in range(charts.count()):
        charts.nth(i).locator(".main-svg").first.wait_for(state="attached", timeout=10_000)
    assert page.locator("#summary tr[data-metric]").count() == 9
    assert page.locator("#changes tbody tr").count() == 2
    browser.screenshot("report")

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
    widths = page.eval_on_selector_all(
        ".sb-chart .main-svg:first-child", "els => els.map(e => e.getBoundingClientRect().width)"
    )
    assert widths, widths
    assert all(w <= 720 for w in widths), widths
    browser.screenshot("report-print")
    pdf = page.pdf(path=str(OUTPUT / "report.pdf"), format="A4", print_background=True, prefer_css_page_size=True)
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 2 <= pages <= 8, pages
    assert browser.errors == []
