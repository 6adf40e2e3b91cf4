"""Migrations never change: none imports project code (so editing a module cannot silently change
what an old migration creates), and the models match the migrations."""

from __future__ import annotations

import ast
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]
PROJECT = {"controlplane", "routing", "metrics", "signalbox_client", "tests"}
MIGRATIONS = sorted(p for app in ("routing", "metrics") for p in (ROOT / app / "migrations").glob("0*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_migrations__exist() -> None:
    assert len(MIGRATIONS) >= 9


@pytest.mark.parametrize("path", MIGRATIONS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_migration__imports_no_project_module(path: Path) -> None:
    project = sorted(m for m in imported_modules(path) if m.split(".")[0] in PROJECT)
    assert project == [], f"{path.name} imports {project}: freeze what it needs into the migration"


@pytest.mark.django_db
def test_models__match_the_migrations() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_migrate__postgres__decision_partitions_exist_for_today() -> None:
    from django.db import connection
    from django.utils import timezone

    from metrics.ingest.partitions import partition_name

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [partition_name(timezone.now().date())])
        assert cursor.fetchone()[0] is not None
