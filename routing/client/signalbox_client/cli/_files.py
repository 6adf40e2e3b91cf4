"""Policy documents as files: one per policy, `<slug>.yaml` / `.yml` / `.json`, keys sorted so a
pull is stable; loading with the line and column of a syntax error; the state a pull leaves
(`.signalbox-state.json`: the live version each file was pulled at)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from signalbox_client.cli._http import CliError

SUFFIXES = (".yaml", ".yml", ".json")
STATE_FILE = ".signalbox-state.json"


@dataclass(frozen=True)
class PolicyFile:
    slug: str
    path: Path
    document: Any


def _noted(path: Path, line: int | None, column: int | None, reason: str) -> str:
    where = f"{path}:{line}:{column}" if line is not None else str(path)
    return f"{where}: {reason}"


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, but dates stay strings (a policy document is JSON) and a repeated key is
    an error (YAML would silently keep the last one)."""


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r}", problem_mark=mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _as_string(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _as_string)


def load(path: Path) -> Any:
    """The document in `path`; a CliError with line and column when it doesn't parse."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: can't read it: {exc}") from exc
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(_noted(path, exc.lineno, exc.colno, f"invalid JSON: {exc.msg}")) from exc
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = f"invalid YAML: {exc.problem or exc.context}"
        raise CliError(
            _noted(path, mark.line + 1 if mark else None, mark.column + 1 if mark else None, reason)
        ) from exc
    except yaml.YAMLError as exc:
        raise CliError(f"{path}: invalid YAML: {exc}") from exc
    try:
        json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CliError(f"{path}: not a JSON document: {exc}") from exc
    return document


def discover(paths: tuple[str, ...]) -> list[Path]:
    """The policy files named, or inside the folders named, sorted; a CliError for a missing path."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found.extend(p for p in path.iterdir() if p.suffix in SUFFIXES and not p.name.startswith("."))
        elif path.is_file():
            found.append(path)
        else:
            raise CliError(f"{path}: no such file or folder.")
    found = sorted(set(found))
    slugs: dict[str, Path] = {}
    for path in found:
        if path.stem in slugs:
            raise CliError(f"{path} and {slugs[path.stem]} are both policy '{path.stem}'; keep one.")
        slugs[path.stem] = path
    return found


def load_all(paths: tuple[str, ...]) -> tuple[list[PolicyFile], list[str]]:
    """Every policy file's document, and a message per file that doesn't parse."""
    files: list[PolicyFile] = []
    problems: list[str] = []
    for path in discover(paths):
        try:
            files.append(PolicyFile(path.stem, path, load(path)))
        except CliError as exc:
            problems.append(exc.message)
    return files, problems


def dumps(document: Any, fmt: str) -> str:
    """The document as file text: keys sorted, so pulling twice writes the same bytes."""
    if fmt == "json":
        return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    text: str = yaml.safe_dump(document, sort_keys=True, allow_unicode=True, default_flow_style=False, width=100)
    return text


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` whole or not at all."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def state_read(folder: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def state_write(folder: Path, state: dict[str, dict[str, Any]]) -> None:
    write_atomic(folder / STATE_FILE, json.dumps(state, indent=2, sort_keys=True) + "\n")
