"""Content-Security-Policy on every page: scripts from this origin only, never framed.

The browser tests (tests/routing/test_admin_browser.py, tests/metrics/*_browser.py) fail on any
console error, so a CSP violation that broke the charts or the JSON editor fails them."""

from __future__ import annotations

import pytest

from tests import factories

pytestmark = pytest.mark.django_db


def directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    out = {}
    for part in header.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


@pytest.mark.parametrize(
    "url",
    ["/admin/login/", "/admin/", "/dashboards/", "/dashboards/cost/", "/api/docs/", "/admin/routing/policy/"],
)
def test_every_page__csp_refuses_inline_script_and_framing(client, publisher, url):
    factories.policy("checkout")
    client.force_login(publisher)

    response = client.get(url)

    assert response.status_code in (200, 302)  # the login page sends a signed-in user on
    csp = directives(response)
    assert csp["script-src"][0] == "'self'"
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["default-src"] == ["'self'"]


def test_api_responses__carry_the_policy_too(api, viewer):
    response = api(viewer).get("/api/v1/policies/")

    assert directives(response)["frame-ancestors"] == ["'none'"]


def test_policy_page__only_it_allows_eval_for_the_json_editor(client, publisher):
    policy = factories.policy("checkout")
    client.force_login(publisher)

    response = client.get(f"/admin/routing/policy/{policy.pk}/change/")

    csp = directives(response)
    assert "'unsafe-eval'" in csp["script-src"]
    assert "'unsafe-inline'" not in csp["script-src"]
    assert csp["frame-ancestors"] == ["'none'"]


def test_templates__no_inline_script_without_the_nonce(client, publisher):
    """The API docs' start-up script is the one inline script; it carries the response's nonce."""
    client.force_login(publisher)

    response = client.get("/api/docs/")
    body = response.content.decode()
    nonces = [v for v in directives(response)["script-src"] if v.startswith("'nonce-")]

    inline = [chunk for chunk in body.split("<script")[1:] if "src=" not in chunk.split(">")[0]]
    for chunk in inline:
        assert nonces, "an inline script on a page whose policy has no nonce"
        assert f'nonce="{nonces[0][7:-1]}"' in chunk.split(">")[0]
