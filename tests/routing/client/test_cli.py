"""The `signalbox` CLI (signalbox_client.cli) run through Click's CliRunner against the real control
plane (pytest-django's live_server), with scoped API tokens: pull, validate, plan, push (idempotent),
publish, rollback, status, whatif, and every failure as a message and an exit code."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from django.utils import timezone

from routing import services
from routing.models import ApiToken, AuditEntry, PolicyVersion
from signalbox_client.cli import cli
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def checkout() -> Any:
    return factories.policy("checkout")


@pytest.fixture
def billing(checkout: Any) -> Any:
    return factories.policy("billing")


@pytest.fixture
def publisher_key(make_user: Callable[..., Any]) -> str:
    return factories.api_token(make_user("publisher"), name="ci")


@pytest.fixture
def run(live_server: Any, tmp_path: Path) -> Callable[..., Result]:
    """run(*args, token=None, output=None) -> the CLI's result against the live server."""

    def invoke(*args: str, token: str | None = None, output: str | None = None, stdin: str | None = None) -> Result:
        env = {"SIGNALBOX_URL": live_server.url, "SIGNALBOX_CONFIG": str(tmp_path / "config" / "signalbox.json")}
        env["SIGNALBOX_TOKEN"] = token or ""
        argv = (["--output", output] if output else []) + list(args)
        return CliRunner().invoke(cli, argv, env=env, input=stdin, catch_exceptions=False)

    return invoke


def _policy_file(folder: Path, slug: str) -> Path:
    return folder / f"{slug}.yaml"


def test_cli__pull_edit_validate_plan_push_publish_rollback__round_trip(
    run: Callable[..., Result], checkout: Any, publisher_key: str, tmp_path: Path
) -> None:
    folder = tmp_path / "policies"

    pulled = run("pull", "--dir", str(folder), token=publisher_key)
    first = _policy_file(folder, "checkout").read_bytes()
    again = run("pull", "--dir", str(folder), token=publisher_key)

    assert (pulled.exit_code, again.exit_code) == (0, 0), pulled.output
    assert _policy_file(folder, "checkout").read_bytes() == first  # stable: keys sorted
    assert yaml.safe_load(first) == factories.document()
    assert list(yaml.safe_load(first)) == sorted(factories.document())
    assert run("plan", str(folder), token=publisher_key).exit_code == 0

    edited = {**factories.document(), "default_route": "extraction"}
    _policy_file(folder, "checkout").write_text(yaml.safe_dump(edited))
    assert run("validate", str(folder)).exit_code == 0
    plan = run("plan", str(folder), token=publisher_key)
    assert plan.exit_code == 2, plan.output
    assert "default_route" in plan.output
    assert "extraction" in plan.output

    pushed = run("push", str(folder), token=publisher_key)
    assert pushed.exit_code == 0, pushed.output
    draft = PolicyVersion.objects.get(policy=checkout, status="draft")
    assert (draft.document, draft.revision) == (edited, 1)
    audit_after_first_push = AuditEntry.objects.count()

    assert run("plan", str(folder), token=publisher_key).exit_code == 0
    repeat = run("push", str(folder), token=publisher_key, output="json")
    assert repeat.exit_code == 0, repeat.output
    assert json.loads(repeat.output)["pushed"] == 0
    assert PolicyVersion.objects.get(policy=checkout, status="draft").revision == 1  # no second version
    assert AuditEntry.objects.count() == audit_after_first_push

    published = run(
        "publish", "checkout", "-m", "route by default to extraction", "--dir", str(folder), token=publisher_key
    )
    assert published.exit_code == 0, published.output
    checkout.refresh_from_db()
    assert (checkout.live_version.number, checkout.live_version.document) == (2, edited)
    assert run("plan", str(folder), token=publisher_key).exit_code == 0  # the pull state follows the publish

    rolled = run(
        "rollback", "checkout", "--to", "1", "-m", "back", "--dir", str(folder), token=publisher_key, output="json"
    )
    assert rolled.exit_code == 0, rolled.output
    assert json.loads(rolled.output) == {"policy": "checkout", "version": 3, "rollback_of": 1}
    checkout.refresh_from_db()
    assert checkout.live_version.document == factories.document()

    entry = AuditEntry.objects.filter(action=AuditEntry.Action.PUBLISH).latest("id")
    token = ApiToken.objects.get(name="ci")
    assert entry.api_token == token
    assert entry.actor_label.endswith(f"via token ci {token.prefix}")


def test_cli__push__new_file__creates_the_policy_with_a_draft(
    run: Callable[..., Result], checkout: Any, publisher_key: str, tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "search.json").write_text(json.dumps(factories.document()))

    plan = run("plan", str(folder), token=publisher_key, output="json")
    pushed = run("push", str(folder), token=publisher_key)

    assert plan.exit_code == 2
    assert json.loads(plan.output)["policies"][0]["action"] == "create"
    assert pushed.exit_code == 0, pushed.output
    assert PolicyVersion.objects.get(policy__slug="search", status="draft").document == factories.document()


def test_cli__login__token_from_stdin__config_written_0600_and_used(
    run: Callable[..., Result], checkout: Any, publisher_key: str, tmp_path: Path
) -> None:
    result = run("login", "--token-stdin", stdin=publisher_key + "\n")

    config = tmp_path / "config" / "signalbox.json"
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text())["token"] == publisher_key
    assert run("status", output="json").exit_code == 0  # no SIGNALBOX_TOKEN: the config's token


def test_cli__login__bad_token__exit_3_and_nothing_written(run: Callable[..., Result], tmp_path: Path) -> None:
    result = run("login", "--token-stdin", stdin="sbt_nope\n")

    assert result.exit_code == 3
    assert "401" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "config" / "signalbox.json").exists()


def test_cli__validate__invalid_document__exit_1_with_path_precise_messages(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    doc = factories.document()
    doc["routes"]["extraction"]["escalate"]["min_confidence"] = 1.4
    (folder / "checkout.yaml").write_text(yaml.safe_dump(doc))

    result = run("validate", str(folder))

    assert result.exit_code == 1
    assert "routes.extraction.escalate.min_confidence" in result.output


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("checkout.yaml", "schema_version: 1\nroutes: [unclosed\n", "checkout.yaml:3:1"),
        ("checkout.yaml", "a: 1\na: 2\n", "checkout.yaml:2:1: invalid YAML: duplicate key 'a'"),
        ("checkout.json", '{"schema_version": 1,\n "routes": }', "checkout.json:2:12: invalid JSON"),
    ],
)
def test_cli__malformed_file__line_and_column__exit_1__nothing_pushed(
    run: Callable[..., Result], checkout: Any, publisher_key: str, tmp_path: Path, name: str, text: str, where: str
) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / name).write_text(text)

    validated = run("validate", str(folder))
    pushed = run("push", str(folder), token=publisher_key)

    assert validated.exit_code == pushed.exit_code == 1
    assert where in validated.output, validated.output
    assert "nothing was sent" in pushed.output
    assert not PolicyVersion.objects.filter(policy=checkout, status="draft").exists()


def test_cli__push__published_since_the_pull__exit_6_and_nothing_written(
    run: Callable[..., Result], checkout: Any, publisher_key: str, tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    run("pull", "--dir", str(folder), token=publisher_key)
    factories.publish(checkout, {**factories.document(), "default_route": "long_context"})  # someone else
    _policy_file(folder, "checkout").write_text(yaml.safe_dump({**factories.document(), "default_route": "extraction"}))

    plan = run("plan", str(folder), token=publisher_key)
    pushed = run("push", str(folder), token=publisher_key)

    assert plan.exit_code == pushed.exit_code == 6
    assert "pulled at v1, v2 is live now" in pushed.output
    assert not PolicyVersion.objects.filter(policy=checkout, status="draft").exists()


def test_cli__push__document_the_server_refuses__exit_7_with_the_field_and_nothing_written(
    run: Callable[..., Result], checkout: Any, billing: Any, publisher_key: str, tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    run("pull", "--dir", str(folder), token=publisher_key)
    good = {**factories.document(), "default_route": "extraction"}
    unknown_model = factories.document()
    unknown_model["routes"]["general"]["tiers"][0]["model"] = "not-in-the-catalog"  # valid offline only
    _policy_file(folder, "billing").write_text(yaml.safe_dump(good))
    _policy_file(folder, "checkout").write_text(yaml.safe_dump(unknown_model))

    pushed = run("push", str(folder), token=publisher_key)

    assert pushed.exit_code == 7, pushed.output
    assert "routes.general.tiers.0.model" in pushed.output
    assert "nothing was pushed" in pushed.output
    assert not PolicyVersion.objects.filter(status="draft").exists()  # not billing either


def test_cli__viewer_token__cannot_push_or_publish__exit_4(
    run: Callable[..., Result], checkout: Any, make_user: Callable[..., Any], tmp_path: Path
) -> None:
    viewer = factories.api_token(make_user("viewer"))
    narrowed = factories.api_token(make_user(None, superuser=True), role="viewer")  # the role limits a superuser's
    folder = tmp_path / "policies"
    assert run("pull", "--dir", str(folder), token=viewer).exit_code == 0
    _policy_file(folder, "checkout").write_text(yaml.safe_dump({**factories.document(), "default_route": "extraction"}))
    draft = {**factories.document(), "default_route": "long_context"}
    services.draft_save(policy=checkout, document=draft, user=None)  # something to publish

    for key in (viewer, narrowed):
        pushed = run("push", str(folder), token=key)
        published = run("publish", "checkout", "-m", "x", token=key)
        assert pushed.exit_code == published.exit_code == 4, (pushed.output, published.output)
        assert "403" in pushed.output
        assert "permission" in pushed.output
    assert PolicyVersion.objects.get(policy=checkout, status="draft").document == draft
    checkout.refresh_from_db()
    assert checkout.live_version.number == 1


def test_cli__token_scoped_to_one_policy__cannot_reach_another(
    run: Callable[..., Result], checkout: Any, billing: Any, make_user: Callable[..., Any], tmp_path: Path
) -> None:
    key = factories.api_token(make_user("publisher"), policies=[checkout])
    folder = tmp_path / "policies"

    pulled = run("pull", "--dir", str(folder), token=key)
    other = run("pull", "billing", "--dir", str(tmp_path / "other"), token=key)
    published = run("rollback", "billing", "--to", "1", "-m", "x", token=key)
    status = run("status", "billing", token=key)

    assert pulled.exit_code == 0
    assert sorted(p.name for p in folder.iterdir()) == [".signalbox-state.json", "checkout.yaml"]
    assert other.exit_code == status.exit_code == 5
    assert published.exit_code == 4
    assert "scoped to checkout" in published.output
    assert "policy: outside this token's scope" in published.output
    assert run("status", "checkout", token=key).exit_code == 0


def test_cli__expired_or_revoked_token__exit_3(
    run: Callable[..., Result], checkout: Any, make_user: Callable[..., Any]
) -> None:
    user = make_user("publisher")
    expired = factories.api_token(user, name="old", expires_at=timezone.now() + timedelta(seconds=60))
    ApiToken.objects.filter(name="old").update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked = factories.api_token(user, name="gone")
    services.api_token_revoke(token=ApiToken.objects.get(name="gone"), user=None)

    for key, reason in ((expired, "Token expired."), (revoked, "Token revoked.")):
        result = run("status", token=key)
        assert result.exit_code == 3, result.output
        assert reason in result.output


def test_cli__no_token__exit_3_with_what_to_do(run: Callable[..., Result]) -> None:
    result = run("status")

    assert result.exit_code == 3
    assert "SIGNALBOX_TOKEN" in result.output


def test_cli__unknown_policy__exit_5(run: Callable[..., Result], checkout: Any, publisher_key: str) -> None:
    result = run("publish", "nope", "-m", "x", token=publisher_key)

    assert result.exit_code == 5
    assert "No policy 'nope'" in result.output


def test_cli__publish_without_a_draft__exit_5_naming_the_draft(
    run: Callable[..., Result], checkout: Any, publisher_key: str
) -> None:
    result = run("publish", "checkout", "-m", "x", token=publisher_key, output="json")

    assert result.exit_code == 5
    assert json.loads(result.output)["exit_code"] == 5


def test_cli__rollback_to_the_live_version__409_exit_6_with_the_field(
    run: Callable[..., Result], checkout: Any, publisher_key: str
) -> None:
    result = run("rollback", "checkout", "--to", "1", "-m", "x", token=publisher_key)

    assert result.exit_code == 6
    assert "to_version: already live" in result.output


def test_cli__status__live_version_draft_budget_and_open_alerts(
    run: Callable[..., Result], checkout: Any, publisher_key: str
) -> None:
    services.draft_save(policy=checkout, document={**factories.document(), "default_route": "extraction"}, user=None)

    table = run("status", token=publisher_key)
    as_json = run("status", token=publisher_key, output="json")

    assert table.exit_code == as_json.exit_code == 0, table.output
    assert "checkout" in table.output
    assert "v1" in table.output
    assert "r1" in table.output
    (row,) = json.loads(as_json.output)["policies"]
    assert (row["policy"], row["live_version"], row["draft_revision"], row["open_alerts"]) == ("checkout", 1, 1, [])
    assert set(row["budget"]) == {"month", "spent_usd", "monthly_usd", "fraction"}


def test_cli__whatif__no_traffic__says_so(run: Callable[..., Result], checkout: Any, publisher_key: str) -> None:
    services.draft_save(policy=checkout, document={**factories.document(), "default_route": "extraction"}, user=None)

    result = run("whatif", "checkout", token=publisher_key, output="json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["empty"] is True


def test_cli__promote__needs_environments__clear_message(run: Callable[..., Result]) -> None:
    result = run("promote", "checkout", "--from", "staging")

    assert result.exit_code == 1
    assert "needs environments" in result.output


def test_cli__usage_error__exit_64_not_the_plan_code(run: Callable[..., Result]) -> None:
    assert run("plna").exit_code == 64


def test_import_signalbox_client__does_not_import_the_cli() -> None:
    code = (
        "import sys, signalbox_client\n"
        "print(sorted(m for m in sys.modules if m.startswith(('signalbox_client.cli', 'yaml'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=dict(os.environ))

    assert out.stdout.strip() == "[]"
