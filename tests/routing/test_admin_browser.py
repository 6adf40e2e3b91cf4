"""The policy page in a real browser: the JSON editor draws without console errors, a threshold
change is saved into the draft, and the draft is published with a comment.

Screenshots land in test-output/screenshots/ for a human to look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from routing.models import PolicyVersion
from tests import factories

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Any:
    # Playwright's sync API runs its own event loop; Django's async-safety check would trip on it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.problems = problems  # type: ignore[attr-defined]
        yield page
        browser.close()
        # Queries made while Playwright's event loop runs use their own connection (Django keys
        # connections by async context); close it, or the test database can't be dropped.
        from django.db import connections

        connections.close_all()


def _shot(page: Any, name: str, selector: str | None = None) -> None:
    target = page.locator(selector).first if selector else page
    kwargs = {} if selector else {"full_page": True}
    target.screenshot(path=str(SCREENSHOTS / f"{name}.png"), **kwargs)


def test_policy_page__edit_threshold_save_and_publish(
    transactional_db: Any, live_server: Any, make_user: Any, browser_page: Any
) -> None:
    # transactional_db first: session fixtures tear down in reverse, so the live server (and its
    # database connection) stops before the test database is dropped.
    policy = factories.policy("checkout")
    factories.policy("support")
    publisher = make_user("publisher", username="pat")
    page = browser_page

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", publisher.username)
    page.fill("#id_password", "pw-Signalbox-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    page.goto(f"{live_server.url}/admin/routing/policy/")
    page.wait_for_selector("#result_list")
    _shot(page, "01-policy-list")

    page.goto(f"{live_server.url}/admin/routing/policy/{policy.pk}/change/")
    # The editor replaces the textarea: its Ace surface is drawn and the textarea hidden.
    page.wait_for_selector("#sb-jsoneditor .jsoneditor .ace_content", state="visible")
    assert page.locator("textarea.sb-document-text").is_hidden()
    assert "schema_version" in page.locator("#sb-jsoneditor .ace_content").inner_text()
    page.wait_for_function("document.getElementById('sb-editor-status').textContent.length > 0")
    assert "no problems" in page.locator("#sb-editor-status").inner_text()
    _shot(page, "02-policy-page")
    _shot(page, "03-draft-editor", "#draft")

    page.fill("#id_extraction__min_confidence", "0.55")
    page.click("#save-thresholds")
    page.wait_for_selector(".messagelist .success")
    draft = PolicyVersion.objects.get(policy=policy, status=PolicyVersion.Status.DRAFT)
    assert draft.document["routes"]["extraction"]["escalate"]["min_confidence"] == 0.55
    assert page.locator("#draft-diff").inner_text().count("min_confidence") == 1
    _shot(page, "04-thresholds-saved", "#thresholds")

    # A schema error typed into the editor is reported by the server next to the editor, and the
    # text survives the round trip.
    page.evaluate("""() => {
        const doc = window.sbPolicyEditor.get();
        doc.routes.extraction.escalate.min_confidence = 1.4;
        window.sbPolicyEditor.set(doc);
    }""")
    page.click("#save-draft")
    page.wait_for_selector(".sb-errors")
    assert (
        "routes.extraction.escalate.min_confidence: 1.4 is greater than the maximum of 1"
        in page.locator(".sb-errors").inner_text()
    )
    page.wait_for_selector("#sb-jsoneditor .ace_content", state="visible")
    assert window_text(page).count("1.4") >= 1
    _shot(page, "05-draft-error", "#draft")

    page.click("text=Publish draft…")
    page.wait_for_selector("#publish-form")
    _shot(page, "06-publish-confirm")
    page.click("#confirm-publish")  # no comment: refused, nothing published
    page.wait_for_selector(".sb-field--error")
    policy.refresh_from_db()
    assert policy.live_version.number == 1  # type: ignore[union-attr]
    page.fill("#id_comment", "Escalate less on extraction")
    page.click("#confirm-publish")
    page.wait_for_selector(".messagelist .success")
    policy.refresh_from_db()
    assert policy.live_version.number == 2  # type: ignore[union-attr]
    assert policy.live_version.comment == "Escalate less on extraction"  # type: ignore[union-attr]
    _shot(page, "07-published", "#versions")

    page.click("text=Roll back to this version")
    page.wait_for_selector("#rollback-form")
    _shot(page, "08-rollback-confirm")

    assert page.problems == []  # type: ignore[attr-defined]


def window_text(page: Any) -> str:
    return page.evaluate("() => window.sbPolicyEditor.getText()")
