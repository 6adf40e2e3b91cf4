"""`signalbox`: policy as code on Signalbox's management REST API (docs/cli.md).

Installed with the `cli` extra (`pip install 'signalbox-client[cli]'`); `import signalbox_client`
never imports this package. Commands: login, pull, validate, plan (alias diff), push, publish,
rollback, status, whatif (and promote, which needs environments). Every failure is a message and
an exit code (`signalbox_client.cli._http`), never a traceback."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from signalbox_client import engine
from signalbox_client.cli import _files as files
from signalbox_client.cli._http import (
    ENV_TOKEN,
    ENV_URL,
    EXIT_CHANGES,
    EXIT_CONFLICT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAUTHORIZED,
    EXIT_USAGE,
    Api,
    CliError,
    config_read,
    config_write,
)
from signalbox_client.diff import document_diff

__all__ = ["cli", "main"]

DEFAULT_DIR = "policies"
OUTPUTS = ("table", "json")


# --- output --------------------------------------------------------------------------------------


def _emit(ctx: click.Context, data: Any, table: Callable[[], None]) -> None:
    if ctx.obj["output"] == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        table()


def _table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    click.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _change_line(change: dict[str, Any]) -> str:
    sign = {"added": "+", "removed": "-", "changed": "~"}[change["op"]]
    if change["op"] == "added":
        return f"  {sign} {change['path']}: {_short(change['new'])}"
    if change["op"] == "removed":
        return f"  {sign} {change['path']}: {_short(change['old'])}"
    return f"  {sign} {change['path']}: {_short(change['old'])} -> {_short(change['new'])}"


def _fail(ctx: click.Context, exc: CliError) -> None:
    if ctx.obj and ctx.obj.get("output") == "json":
        click.echo(json.dumps({"error": exc.message, "errors": exc.errors, "exit_code": exc.code}, sort_keys=True))
    else:
        click.echo(f"error: {exc.message}", err=True)
        for field, reasons in exc.errors.items():
            for reason in reasons:
                click.echo(f"  {field}: {reason}", err=True)
    ctx.exit(exc.code)


# --- the command group ---------------------------------------------------------------------------


class _Group(click.Group):
    """Click's group, with usage errors on exit code 64 (2 means "changes" to `plan`) and every
    CliError as a message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            _fail(ctx, exc)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.UsageError as exc:
            exc.show()
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(EXIT_FAILED)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(EXIT_FAILED)
        except OSError as exc:  # a folder or file the command can't write
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)
        except Exception as exc:  # an answer this CLI doesn't understand: a message, not a traceback
            click.echo(f"error: unexpected {type(exc).__name__}: {exc}", err=True)
            sys.exit(EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


@click.group(cls=_Group)
@click.option("--url", envvar=ENV_URL, help=f"Signalbox's base URL (default: ${ENV_URL}, then the login config).")
@click.option(
    "--output", "-o", type=click.Choice(OUTPUTS), default="table", show_default=True, help="json: for scripts."
)
@click.pass_context
def cli(ctx: click.Context, url: str | None, output: str) -> None:
    """Signalbox policy as code: pull, validate, plan, push, publish and roll back routing policies."""
    ctx.ensure_object(dict)
    ctx.obj.update(url=url, output=output)


@contextmanager
def _api(ctx: click.Context) -> Iterator[Api]:
    config = config_read()
    url = ctx.obj.get("url") or config.get("url")
    token = os.environ.get(ENV_TOKEN) or config.get("token")
    if not url:
        raise CliError(f"No Signalbox URL: pass --url, set {ENV_URL}, or run `signalbox login`.", EXIT_UNAUTHORIZED)
    if not token:
        raise CliError(f"No API token: set {ENV_TOKEN} or run `signalbox login`.", EXIT_UNAUTHORIZED)
    api = Api(url, token, transport=ctx.obj.get("transport"))
    try:
        yield api
    finally:
        api.close()


# --- login ---------------------------------------------------------------------------------------


@cli.command()
@click.option("--token-stdin", is_flag=True, help="Read the token from standard input (else $SIGNALBOX_TOKEN, or ask).")
@click.pass_context
def login(ctx: click.Context, token_stdin: bool) -> None:
    """Check a token against the server and keep it (with the URL) in a config file readable by you only."""
    url = ctx.obj.get("url") or config_read().get("url")
    if not url:
        raise CliError(f"Pass --url (or set {ENV_URL}): where Signalbox runs.", EXIT_USAGE)
    if token_stdin:
        token = sys.stdin.readline().strip()
    else:
        token = os.environ.get(ENV_TOKEN) or getpass.getpass("API token: ").strip()
    if not token:
        raise CliError("No token given.", EXIT_UNAUTHORIZED)
    api = Api(url, token, transport=ctx.obj.get("transport"))
    try:
        api.get("/policies/", limit=1)
    finally:
        api.close()
    path = config_write(url, token)
    _emit(ctx, {"url": url, "config": str(path)}, lambda: click.echo(f"Logged in to {url}; token kept in {path}."))


# --- pull ----------------------------------------------------------------------------------------


@cli.command()
@click.argument("policies", nargs=-1)
@click.option("--dir", "folder", default=DEFAULT_DIR, show_default=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.option("--draft", is_flag=True, help="Pull each policy's draft where it has one (default: the live version).")
@click.pass_context
def pull(ctx: click.Context, policies: tuple[str, ...], folder: str, fmt: str, draft: bool) -> None:
    """Write each policy's document to <dir>/<policy>.yaml (or .json), keys sorted."""
    out = Path(folder)
    rows: list[dict[str, Any]] = []
    with _api(ctx) as api:
        listed = list(api.pages("/policies/"))
        known = {p["slug"] for p in listed}
        missing = [slug for slug in policies if slug not in known]
        if missing:
            raise CliError(f"No policy {', '.join(missing)} (or this token can't reach it).", 5)
        wanted = [p for p in listed if not policies or p["slug"] in policies]
        documents: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for policy in wanted:
            version = api.get_or_none(f"/policies/{policy['slug']}/versions/draft/") if draft else None
            version = version or api.get_or_none(f"/policies/{policy['slug']}/versions/live/")
            version = version or api.get_or_none(f"/policies/{policy['slug']}/versions/draft/")
            if version is None:
                rows.append({"policy": policy["slug"], "file": None, "version": None})
                continue
            documents.append((policy, version))
    out.mkdir(parents=True, exist_ok=True)
    state = files.state_read(out)
    suffix = ".json" if fmt == "json" else ".yaml"
    for policy, version in documents:
        slug = policy["slug"]
        for other in files.SUFFIXES:  # one file per policy
            if other != suffix and (out / f"{slug}{other}").exists():
                (out / f"{slug}{other}").unlink()
        path = out / f"{slug}{suffix}"
        files.write_atomic(path, files.dumps(version["document"], fmt))
        state[slug] = {"live_version": policy["live_version"]}
        label = f"v{version['number']}" if version["number"] else f"draft r{version['revision']}"
        rows.append({"policy": slug, "file": str(path), "version": label})
    files.state_write(out, state)
    _emit(
        ctx,
        {"policies": rows},
        lambda: _table(
            ["policy", "version", "file"], [[r["policy"], r["version"] or "-", r["file"] or "(empty)"] for r in rows]
        ),
    )


# --- validate ------------------------------------------------------------------------------------


def _validated(paths: tuple[str, ...]) -> tuple[list[files.PolicyFile], list[str]]:
    """The files and every problem: syntax (with line and column), then the schema and the
    engine's checks, one line per path, as the admin's editor shows them."""
    loaded, problems = files.load_all(paths)
    for item in loaded:
        problems.extend(f"{item.path}: {error}" for error in engine.validate_document(item.document))
    return loaded, problems


@cli.command()
@click.argument("paths", nargs=-1)
@click.pass_context
def validate(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Check policy files offline: the JSON Schema and the engine's checks (exit 1 on errors)."""
    loaded, problems = _validated(paths or (DEFAULT_DIR,))
    if not loaded and not problems:
        raise CliError(f"No policy files (*.yaml, *.yml, *.json) in {', '.join(paths or (DEFAULT_DIR,))}.")

    def table() -> None:
        for line in problems:
            click.echo(line, err=True)
        valid = len(loaded) - len({line.split(":", 1)[0] for line in problems})
        click.echo(f"{max(valid, 0)} valid, {len(problems)} problem{'s' if len(problems) != 1 else ''}.")

    _emit(ctx, {"files": [str(f.path) for f in loaded], "problems": problems, "valid": not problems}, table)
    ctx.exit(EXIT_FAILED if problems else EXIT_OK)


# --- plan / diff and push ------------------------------------------------------------------------


def _plan(api: Api, loaded: list[files.PolicyFile]) -> list[dict[str, Any]]:
    """Per file: the action push would take and the changes, against the draft if there is one,
    else the live version. `stale`: a version was published since the pull."""
    plans: list[dict[str, Any]] = []
    for item in loaded:
        policy = api.get_or_none(f"/policies/{item.slug}/")
        entry: dict[str, Any] = {"policy": item.slug, "file": str(item.path), "stale": None}
        if policy is None:
            entry.update(action="create", base=None, changes=document_diff({}, item.document), draft_revision=None)
            plans.append(entry)
            continue
        pulled = files.state_read(item.path.parent).get(item.slug, {}).get("live_version")
        if pulled is not None and pulled != policy["live_version"]:
            entry["stale"] = f"pulled at v{pulled}, v{policy['live_version']} is live now"
        draft = api.get_or_none(f"/policies/{item.slug}/versions/draft/")
        base = draft or api.get_or_none(f"/policies/{item.slug}/versions/live/")
        changes = document_diff(base["document"] if base else {}, item.document)
        entry.update(
            action="update" if changes else "none",
            base=(f"draft r{draft['revision']}" if draft else (f"v{base['number']}" if base else None)),
            changes=changes,
            draft_revision=draft["revision"] if draft else None,
        )
        plans.append(entry)
    return plans


def _show_plan(plans: list[dict[str, Any]]) -> None:
    for entry in plans:
        if entry["action"] == "none":
            click.echo(f"{entry['policy']}: no changes (matches {entry['base']})")
            continue
        verb = "create policy" if entry["action"] == "create" else f"update the draft (now {entry['base']})"
        click.echo(f"{entry['policy']}: {verb}, {len(entry['changes'])} change(s)")
        for change in entry["changes"]:
            click.echo(_change_line(change))
        if entry["stale"]:
            click.echo(f"  ! {entry['stale']}: pull again before pushing")


def _load_valid(paths: tuple[str, ...]) -> list[files.PolicyFile]:
    loaded, problems = _validated(paths or (DEFAULT_DIR,))
    if problems:
        raise CliError("Invalid policy files; nothing was sent:\n" + "\n".join(problems), EXIT_FAILED)
    if not loaded:
        raise CliError(f"No policy files in {', '.join(paths or (DEFAULT_DIR,))}.")
    return loaded


@cli.command(name="plan")
@click.argument("paths", nargs=-1)
@click.pass_context
def plan_command(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Show what `push` would change; exit 0 when nothing, 2 when something (6: published since the pull)."""
    loaded = _load_valid(paths)
    with _api(ctx) as api:
        plans = _plan(api, loaded)
    changed = any(p["action"] != "none" for p in plans)
    _emit(ctx, {"policies": plans, "changed": changed}, lambda: _show_plan(plans))
    if any(p["stale"] for p in plans):
        ctx.exit(EXIT_CONFLICT)
    ctx.exit(EXIT_CHANGES if changed else EXIT_OK)


cli.add_command(plan_command, name="diff")


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--force", is_flag=True, help="Push even though a version was published since the pull.")
@click.pass_context
def push(ctx: click.Context, paths: tuple[str, ...], force: bool) -> None:
    """Save each changed file as its policy's draft (a new policy when none exists). The same
    content again changes nothing. Every document is checked by the server first: all or none."""
    loaded = _load_valid(paths)
    with _api(ctx) as api:
        plans = _plan(api, loaded)
        stale = [p for p in plans if p["stale"]]
        if stale and not force:
            raise CliError(
                "Published since your pull; nothing was pushed:\n"
                + "\n".join(f"{p['policy']}: {p['stale']}" for p in stale)
                + "\nPull again (or pass --force to push over it).",
                EXIT_CONFLICT,
            )
        todo = [p for p in plans if p["action"] != "none"]
        by_slug = {item.slug: item for item in loaded}
        for entry in todo:  # the server's own check (the catalog too) before anything is written
            try:
                api.request(
                    "POST", "/policy-document/validate/", json_body={"document": by_slug[entry["policy"]].document}
                )
            except CliError as exc:
                exc.message = f"{entry['policy']}: {exc.message} (nothing was pushed)"
                raise
        for entry in todo:
            document = by_slug[entry["policy"]].document
            if entry["action"] == "create":
                api.request(
                    "POST",
                    "/policies/",
                    json_body={"slug": entry["policy"], "name": entry["policy"], "document": document},
                )
            else:
                api.request(
                    "PUT",
                    f"/policies/{entry['policy']}/draft/",
                    json_body={"document": document, "expected_revision": entry["draft_revision"] or 0},
                )
    rows = [{"policy": p["policy"], "action": p["action"], "changes": len(p["changes"])} for p in plans]
    _emit(
        ctx,
        {"policies": rows, "pushed": len(todo)},
        lambda: _table(["policy", "action", "changes"], [[r["policy"], r["action"], r["changes"]] for r in rows]),
    )


# --- publish, rollback, promote ------------------------------------------------------------------


def _note_live(folder: str, slug: str, number: int) -> None:
    """Keep the pull state true after this CLI published (so the next push isn't "stale")."""
    path = Path(folder)
    state = files.state_read(path)
    if slug in state:
        state[slug] = {"live_version": number}
        files.state_write(path, state)


@cli.command()
@click.argument("policy")
@click.option("--comment", "-m", required=True, help="Why (kept in the audit log).")
@click.option("--dir", "folder", default=DEFAULT_DIR, show_default=True, help="Where the pulled files are.")
@click.pass_context
def publish(ctx: click.Context, policy: str, comment: str, folder: str) -> None:
    """Publish the policy's draft as its next version."""
    with _api(ctx) as api:
        draft = api.get(f"/policies/{policy}/versions/draft/")
        version = api.request(
            "POST",
            f"/policies/{policy}/publish/",
            json_body={"comment": comment, "expected_revision": draft["revision"]},
        )
    _note_live(folder, policy, version["number"])
    _emit(
        ctx,
        {"policy": policy, "version": version["number"]},
        lambda: click.echo(f"{policy}: v{version['number']} is live."),
    )


@cli.command()
@click.argument("policy")
@click.option("--to", "to_version", type=int, required=True, help="The version whose document goes live again.")
@click.option("--comment", "-m", required=True, help="Why (kept in the audit log).")
@click.option("--dir", "folder", default=DEFAULT_DIR, show_default=True, help="Where the pulled files are.")
@click.pass_context
def rollback(ctx: click.Context, policy: str, to_version: int, comment: str, folder: str) -> None:
    """Publish a new version equal to an older one (history stays append-only)."""
    with _api(ctx) as api:
        version = api.request(
            "POST", f"/policies/{policy}/rollback/", json_body={"to_version": to_version, "comment": comment}
        )
    _note_live(folder, policy, version["number"])
    _emit(
        ctx,
        {"policy": policy, "version": version["number"], "rollback_of": to_version},
        lambda: click.echo(f"{policy}: v{version['number']} is live (the document of v{to_version})."),
    )


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def promote(args: tuple[str, ...]) -> None:
    """(Not yet) Promote the live version of one environment to the next."""
    raise CliError(
        "promote needs environments (staging, production), which this Signalbox server does not have yet. "
        "Until then a policy has one live version: use `signalbox publish`.",
        EXIT_FAILED,
    )


# --- status and whatif ---------------------------------------------------------------------------


@cli.command()
@click.argument("policies", nargs=-1)
@click.pass_context
def status(ctx: click.Context, policies: tuple[str, ...]) -> None:
    """Each policy's live version, draft, month-to-date budget and open alerts."""
    rows: list[dict[str, Any]] = []
    with _api(ctx) as api:
        listed = [p for p in api.pages("/policies/") if not policies or p["slug"] in policies]
        missing = sorted(set(policies) - {p["slug"] for p in listed})
        if missing:
            raise CliError(f"No policy {', '.join(missing)} (or this token can't reach it).", 5)
        for policy in listed:
            slug = policy["slug"]
            draft = api.get_or_none(f"/policies/{slug}/versions/draft/")
            budget = api.get("/metrics/budget/", policy=slug)
            alerts = list(api.pages("/metrics/alerts/", policy=slug, status="open"))
            rows.append(
                {
                    "policy": slug,
                    "live_version": policy["live_version"],
                    "live_published_at": policy["live_published_at"],
                    "draft_revision": draft["revision"] if draft else None,
                    "budget": {
                        "month": budget.get("month"),
                        "spent_usd": budget.get("spent_usd"),
                        "monthly_usd": (budget.get("budget") or {}).get("monthly_usd"),
                        "fraction": budget.get("fraction"),
                    },
                    "open_alerts": [
                        {"id": a["id"], "severity": a["severity"], "route": a["route"], "summary": a["summary"]}
                        for a in alerts
                    ],
                }
            )

    def table() -> None:
        def spend(b: dict[str, Any]) -> str:
            spent = f"${b['spent_usd'] or 0:,.2f}"
            if b["monthly_usd"]:
                return f"{spent} of ${b['monthly_usd']:,.2f} ({(b['fraction'] or 0):.0%})"
            return f"{spent} (no budget)"

        _table(
            ["policy", "live", "draft", "budget (month)", "open alerts"],
            [
                [
                    r["policy"],
                    f"v{r['live_version']}" if r["live_version"] else "-",
                    f"r{r['draft_revision']}" if r["draft_revision"] else "-",
                    spend(r["budget"]),
                    len(r["open_alerts"]),
                ]
                for r in rows
            ],
        )
        for r in rows:
            for alert in r["open_alerts"]:
                click.echo(f"  {r['policy']} [{alert['severity']}] {alert['route'] or '(policy)'}: {alert['summary']}")

    _emit(ctx, {"policies": rows}, table)


@cli.command()
@click.argument("policy")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True, help="Replay the last N days.")
@click.pass_context
def whatif(ctx: click.Context, policy: str, file: str | None, days: int) -> None:
    """Replay the last days' logged traffic through FILE (default: the saved draft) and compare."""
    body: dict[str, Any] = {"policy": policy}
    if file:
        body["document"] = files.load(Path(file))
    end = datetime.now(UTC).date() - timedelta(days=1)  # the last whole day (UTC, as the server counts)
    body.update(start=(end - timedelta(days=days - 1)).isoformat(), end=end.isoformat())
    if ctx.obj["output"] != "json":
        click.echo(f"Replaying {days} day(s) of {policy}'s traffic...", err=True)  # it can take a while
    with _api(ctx) as api:
        api.timeout = 300.0
        result = api.request("POST", "/metrics/whatif/", json_body=body)

    def table() -> None:
        if result.get("empty"):
            click.echo(result.get("message") or "No logged traffic in the period.")
            return
        total = result["total"]
        click.echo(f"{result['requests']:,} requests, {result['period']['start']} to {result['period']['end']}")

        def money(value: Any) -> str:
            return "-" if value is None else f"${value:,.2f}"

        _table(
            ["", "cost", "escalation rate", "p95 ms"],
            [
                [
                    "actual",
                    money(total["actual"]["cost_usd"]),
                    total["actual"]["escalation_rate"],
                    total["actual"]["p95_ms"],
                ],
                [
                    "draft",
                    money(total["draft"]["cost_usd"]),
                    total["draft"]["escalation_rate"],
                    total["draft"]["p95_ms"],
                ],
            ],
        )
        click.echo(f"savings: {money(total['savings_usd'])}")

    _emit(ctx, result, table)


def main() -> None:
    """The console script."""
    cli.main(prog_name="signalbox")
