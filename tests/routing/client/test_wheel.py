"""The signalbox-client wheel on its own: built from the repository, installed into a fresh venv
without Django, it holds one top-level package and completes a round trip against a live server
(fetch the policy, decide, record, flush; the decision lands in the server's table). The server's
wheel does not ship the client a second time.

Builds go through `uv build` (sdist, then the wheel from it) with `--offline` first: the build
backend and the client's dependencies normally come from uv's cache; without a cache, the same
commands run online."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from signalbox_client import SDK_VERSION
from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[3]
UV = shutil.which("uv")
SERVER_PACKAGES = {"controlplane", "routing", "metrics"}

LIST_FILES = "import importlib.metadata as m, json; print(json.dumps([str(f) for f in m.files('signalbox-client')]))"

ROUND_TRIP = """
import importlib.util, json, sys
from signalbox_client import RoutingClient, SDK_VERSION

base_url, secret, policy = sys.argv[1:4]
# Generous timeouts: the live server's first answer can take seconds on a busy machine.
with RoutingClient(base_url, secret, policy, app="wheel-test", jitter=0, refresh_interval=60, timeout=30) as client:
    ready = client.wait_until_ready(60)
    decision = client.decide("extraction")
    event_id = client.record(decision, outcome="ok", latency_ms=12.5, tokens_in=300, tokens_out=40)
    flushed = client.flush(timeout=60)
    version = client.policy_version
print(json.dumps({
    "ready": ready,
    "flushed": flushed,
    "version": version,
    "route": decision.route,
    "model": decision.model,
    "event_id": event_id,
    "sdk_version": SDK_VERSION,
    "importable": {name: importlib.util.find_spec(name) is not None
                   for name in ("django", "rest_framework", "routing", "metrics", "controlplane")},
    "location": importlib.util.find_spec("signalbox_client").origin,
}))
"""


def _uv(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run uv offline, then online if the cache lacks something; fail with uv's output."""
    assert UV is not None
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT")}
    for extra in (["--offline"], []):
        done = subprocess.run(
            [UV, *args[:2], *extra, *args[2:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )
        if done.returncode == 0:
            return done
    raise AssertionError(f"uv {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def _name(requirement: str) -> str:
    """The project name of a requirement string ("httpx<1,>=0.27" -> "httpx")."""
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower()


def _top_level(names: list[str]) -> set[str]:
    """Top-level names of a wheel's files (or an installed RECORD), without its .dist-info."""
    return {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if UV is None:
        pytest.skip("needs uv on PATH (the README's commands install it)")
    out = tmp_path_factory.mktemp("wheels")
    _uv("build", "--out-dir", str(out), "routing/client")
    _uv("build", "--out-dir", str(out), ".")
    return {
        "client": next(out.glob("signalbox_client-*.whl")),
        "server": next(out.glob("signalbox-*.whl")),
    }


@pytest.fixture(scope="module")
def venv_python(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the client wheel and its dependencies only."""
    venv = tmp_path_factory.mktemp("venv") / "client"
    _uv("venv", "--python", sys.executable, str(venv))
    python = venv / "bin" / "python"
    _uv("pip", "install", "--python", str(python), str(wheels["client"]))
    return python


@pytest.fixture
def _decisions_emptied(transactional_db: Any) -> Iterator[None]:
    from django.db import connection

    yield
    with connection.cursor() as cursor:  # the raw table is unmanaged: the flush skips it
        cursor.execute("TRUNCATE metrics_decision")


def test_client_wheel__holds_exactly_the_signalbox_client_package(wheels: dict[str, Path]) -> None:
    names = zipfile.ZipFile(wheels["client"]).namelist()

    assert _top_level(names) == {"signalbox_client"}
    assert "signalbox_client/py.typed" in names
    assert "signalbox_client/engine/policy.schema.json" in names
    metadata = zipfile.ZipFile(wheels["client"]).read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    requires = {
        line.removeprefix("Requires-Dist: ")
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist:")
    }
    project = tomllib.loads((ROOT / "routing" / "client" / "pyproject.toml").read_text())["project"]
    base = {r for r in requires if "extra ==" not in r}
    assert {_name(r) for r in base} == {_name(d) for d in project["dependencies"]}
    extras = {}
    for extra in ("cli", "openai", "litellm"):
        extras[extra] = {r for r in requires if f'extra == "{extra}"' in r}
        assert {_name(r) for r in extras[extra]} == {_name(d) for d in project["optional-dependencies"][extra]}
    assert requires == base.union(*extras.values())
    assert not {_name(r) for r in requires} & {"django", "djangorestframework", "celery", "psycopg"}
    assert f"Version: {SDK_VERSION}" in metadata.decode()


def test_server_wheel__ships_the_server_packages_and_not_the_client(wheels: dict[str, Path]) -> None:
    names = zipfile.ZipFile(wheels["server"]).namelist()

    assert _top_level(names) == SERVER_PACKAGES
    assert not [n for n in names if n.startswith(("signalbox_client/", "routing/client/"))]
    metadata = zipfile.ZipFile(wheels["server"]).read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    assert b"Requires-Dist: signalbox-client" in metadata


def test_client_wheel__installed__puts_one_top_level_package_into_site_packages(venv_python: Path) -> None:
    listing = subprocess.run(
        [
            str(venv_python),
            "-c",
            LIST_FILES,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    files = json.loads(listing.stdout)

    assert _top_level([f for f in files if not f.startswith("../")]) == {"signalbox_client"}
    assert [f.rpartition("/")[2] for f in files if f.startswith("../")] == ["signalbox"]  # the console script


def test_client_wheel__without_the_cli_extra__signalbox_names_the_extra(venv_python: Path) -> None:
    result = subprocess.run([str(venv_python.parent / "signalbox"), "--help"], capture_output=True, text=True)

    assert result.returncode == 1
    assert "pip install 'signalbox-client[cli]'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.usefixtures("_decisions_emptied")
def test_client_wheel__live_round_trip_from_the_fresh_venv(venv_python: Path, live_server: Any, tmp_path: Path) -> None:
    from metrics.models import Decision

    checkout = factories.policy("checkout")
    _, secret = factories.sdk_key(checkout)
    script = tmp_path / "round_trip.py"  # run from tmp_path: the checkout is not on sys.path
    script.write_text(ROUND_TRIP)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE")}

    done = subprocess.run(
        [str(venv_python), "-I", str(script), live_server.url, secret, "checkout"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["importable"] == dict.fromkeys(
        ("django", "rest_framework", "routing", "metrics", "controlplane"), False
    )
    assert Path(result["location"]).is_relative_to(venv_python.parent.parent)
    assert (result["ready"], result["flushed"], result["version"]) == (True, True, 1)
    assert (result["route"], result["model"]) == ("extraction", "gpt-4o-mini")
    stored = Decision.objects.get(event_id=result["event_id"])
    assert (stored.model, stored.route, stored.outcome, stored.client_app) == (
        "gpt-4o-mini",
        "extraction",
        "ok",
        "wheel-test",
    )
    assert stored.client_sdk_version == result["sdk_version"] == SDK_VERSION
