"""Settings come from the environment; production refuses to run without a secret key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
django.setup()
from django.conf import settings
from django.test import Client
try:
    Client().get("/admin/login/")
    print("served")
except Exception as exc:
    print(type(exc).__name__, exc)
print(settings.DATABASES["default"]["ENGINE"], settings.CELERY_TASK_ALWAYS_EAGER, settings.DEBUG)
"""


def run(env: dict[str, str]) -> list[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL", "CELERY_BROKER_URL", "ALLOWED_HOSTS")
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )
    return result.stdout.strip().splitlines()


def test_settings__debug_off_without_secret_key__refuses_to_serve():
    lines = run({"ALLOWED_HOSTS": "testserver"})

    assert lines[0] == "ImproperlyConfigured The SECRET_KEY setting must not be empty."


def test_settings__defaults__sqlite_and_in_process_tasks_for_the_demo():
    lines = run({"DEBUG": "true"})

    assert lines == ["served", "django.db.backends.sqlite3 True True"]


def test_settings__environment__database_and_broker_taken_from_it():
    lines = run(
        {
            "SECRET_KEY": "x" * 50,
            "ALLOWED_HOSTS": "testserver",
            "SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/9",
        }
    )

    assert lines[1] == "django.db.backends.postgresql False False"


@pytest.mark.slow
def test_collectstatic__production_storage__every_asset_hashed_and_compressed(tmp_path: Path) -> None:
    """The manifest storage of production resolves every reference in the vendored assets (a
    dangling source-map comment would abort the deploy)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "STATIC_ROOT")}
    env.update(
        DEBUG="false",
        SECRET_KEY="collectstatic-test-" + "x" * 40,
        ALLOWED_HOSTS="signalbox.example.com",
        STATIC_ROOT=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = (tmp_path / "staticfiles.json").read_text()
    for asset in ("vendor/plotly/plotly.min.js", "vendor/jsoneditor/jsoneditor.min.js", "signalbox/report.css"):
        assert f'"{asset}"' in manifest
    assert list(tmp_path.glob("vendor/jsoneditor/jsoneditor.min.*.js.gz"))


BOUNDS_PROBE = """
import os, runpy
from django.core.exceptions import ImproperlyConfigured
for name, value in [("API_COMPUTE_CONCURRENCY", "0"), ("API_COMPUTE_TIME_BUDGET_MS", "-5"),
                    ("ALERTS_FALSE_DISCOVERY_RATE", "1.5")]:
    env = dict(os.environ)
    os.environ[name] = value
    try:
        runpy.run_path("controlplane/settings.py")
        print(name, "accepted")
    except ImproperlyConfigured as exc:
        print(name, exc)
    os.environ.clear(); os.environ.update(env)
"""


def test_settings__bounds_out_of_range__start_up_refused_naming_the_setting() -> None:
    """Each bound is checked when the settings load (one interpreter runs the settings file per
    case), not at the first request or evaluation that reads it."""
    env = {**os.environ, "DEBUG": "true", "DATABASE_URL": "sqlite:///:memory:"}
    result = subprocess.run(
        [sys.executable, "-c", BOUNDS_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.stdout.strip().splitlines() == [
        "API_COMPUTE_CONCURRENCY API_COMPUTE_CONCURRENCY must be at least 1, not 0",
        "API_COMPUTE_TIME_BUDGET_MS API_COMPUTE_TIME_BUDGET_MS must be at least 1, not -5",
        "ALERTS_FALSE_DISCOVERY_RATE ALERTS_FALSE_DISCOVERY_RATE must be in [0, 1), got 1.5",
    ], result.stderr[-2000:]
