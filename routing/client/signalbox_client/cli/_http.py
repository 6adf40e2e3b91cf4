"""The management REST API as the CLI speaks it: the base URL and token, one httpx client, and the
server's error shape (`{"message": ..., "errors": {field: [reasons]}}`) turned into a CliError with
the exit code of its status."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

API_PREFIX = "/api/v1"  # the management API (docs: /api/docs/)
TOKEN_SCHEME = "Token"  # noqa: S105 - Authorization: Token <key>, a scheme name
ENV_URL = "SIGNALBOX_URL"
ENV_TOKEN = "SIGNALBOX_TOKEN"  # noqa: S105 - the name of an environment variable
ENV_CONFIG = "SIGNALBOX_CONFIG"
PAGE_LIMIT = 200

# Exit codes (docs/cli.md lists them).
EXIT_OK = 0
EXIT_FAILED = 1  # invalid documents, unreadable files, anything not below
EXIT_CHANGES = 2  # plan/diff: push would change something
EXIT_UNAUTHORIZED = 3  # 401, or no token configured
EXIT_FORBIDDEN = 4  # 403
EXIT_NOT_FOUND = 5  # 404
EXIT_CONFLICT = 6  # 409, or a policy published since the last pull
EXIT_REFUSED = 7  # 400 / 413: the server refused the input
EXIT_UNAVAILABLE = 8  # unreachable, or a 5xx
EXIT_USAGE = 64  # a wrong command line

_STATUS_EXIT = {401: EXIT_UNAUTHORIZED, 403: EXIT_FORBIDDEN, 404: EXIT_NOT_FOUND, 409: EXIT_CONFLICT}


class CliError(Exception):
    """A failure shown to the user as a message (and field reasons), with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.errors = errors or {}


def config_path() -> Path:
    """Where `signalbox login` keeps the URL and token: $SIGNALBOX_CONFIG, else
    $XDG_CONFIG_HOME/signalbox/config.json (default ~/.config)."""
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "signalbox" / "config.json"


def config_read() -> dict[str, str]:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"Can't read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise CliError(f"{path} is not a JSON object; run `signalbox login` again.")
    return {k: str(v) for k, v in data.items() if isinstance(v, str)}


def config_write(url: str, token: str) -> Path:
    """Write the config file readable by its owner only (0600), created that way (never widened)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as out:
        json.dump({"url": url, "token": token}, out, indent=2, sort_keys=True)
    tmp.chmod(stat.S_IRUSR | stat.S_IWUSR)
    tmp.replace(path)
    return path


@dataclass
class Api:
    """The management API at `url`, authenticated with `token`."""

    url: str
    token: str
    transport: httpx.BaseTransport | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        self._client = httpx.Client(
            base_url=self.url.rstrip("/") + API_PREFIX,
            headers={"Authorization": f"{TOKEN_SCHEME} {self.token}", "Accept": "application/json"},
            timeout=self.timeout,
            transport=self.transport,
        )

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, *, json_body: Any = None, params: Any = None) -> Any:
        """The JSON answer of a 2xx; a CliError naming the server's reasons otherwise."""
        try:
            response = self._client.request(method, path, json=json_body, params=params)
        except httpx.HTTPError as exc:
            raise CliError(f"Can't reach Signalbox at {self.url}: {exc}", EXIT_UNAVAILABLE) from exc
        if response.status_code == 204:
            return None
        if response.is_success:
            try:
                return response.json()
            except ValueError as exc:
                raise CliError(f"{method} {path}: the answer is not JSON.", EXIT_UNAVAILABLE) from exc
        raise _refusal(method, path, response)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def get_or_none(self, path: str) -> Any:
        """The answer, or None on a 404."""
        try:
            return self.get(path)
        except CliError as exc:
            if exc.code == EXIT_NOT_FOUND:
                return None
            raise

    def pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every result of a paginated list."""
        offset = 0
        while True:
            page = self.get(path, **params, limit=PAGE_LIMIT, offset=offset)
            results = page.get("results", [])
            yield from results
            offset += len(results)
            if not page.get("next") or not results:
                return


def _refusal(method: str, path: str, response: httpx.Response) -> CliError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or body.get("detail") or response.reason_phrase or "request failed")
    raw = body.get("errors")
    raw = raw if isinstance(raw, dict) else {}
    errors = {str(k): [str(r) for r in (v if isinstance(v, list) else [v])] for k, v in raw.items()}
    if status >= 500:
        code = EXIT_UNAVAILABLE
    else:
        code = _STATUS_EXIT.get(status, EXIT_REFUSED if status in {400, 413, 422} else EXIT_FAILED)
    if status == 401:
        message += " Run `signalbox login`, or set SIGNALBOX_TOKEN to a valid token."
    return CliError(f"{status} {message}", code, errors)
