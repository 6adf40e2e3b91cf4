"""The policy snapshot's life in a client: start-up from the disk cache or the bootstrap file,
refresh answers (200, 304, errors), the version guard (versions never go backwards), and the
atomic write of the last good answer to the cache."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from signalbox_client.engine import PolicyError, compile_policy

from ._budget import BudgetState
from ._state import Snapshot, logger
from ._wire import loads_json, rfc3339


class PolicyRefresh(BudgetState):
    """The policy part of a client core: install documents, apply refresh answers."""

    refresh_interval: float
    jitter: float
    bootstrap_path: Path | None
    cache_path: Path | None

    def load_startup(self) -> None:
        """Install the best local document: the disk cache or the bootstrap file, newer first."""
        candidates = []
        if self.cache_path is not None:
            cached = self._read_json(self.cache_path, "policy cache")
            if cached is not None and isinstance(cached.get("body"), dict):
                candidates.append(("cache", cached["body"], cached.get("etag")))
        if self.bootstrap_path is not None:
            body = self._read_json(self.bootstrap_path, "bootstrap file")
            if body is not None:
                candidates.append(("bootstrap", body, None))
        # Newest version wins; on a tie the cache (it knows its ETag) comes first.
        candidates.sort(key=lambda c: -v if isinstance(v := c[1].get("version"), int) else 0)
        for source, body, etag in candidates:
            if self.install(body, etag if isinstance(etag, str) else None, source=source):
                return

    @staticmethod
    def _read_json(path: Path, what: str) -> dict[str, Any] | None:
        try:
            data = loads_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable %s %s: %s", what, path, exc)
            return None
        if not isinstance(data, dict):
            logger.warning("ignoring %s %s: not a JSON object", what, path)
            return None
        return data

    def install(self, body: Any, etag: str | None, *, source: str) -> bool:
        """Compile and install a policy body (the GET answer's JSON). Return True when installed.

        A body of the wrong shape or whose document does not compile is rejected and counted;
        an older version than the live one is ignored: versions never go backwards.
        """
        if not isinstance(body, dict):
            return self._reject(source, "body is not a JSON object")
        document, models, version = body.get("document"), body.get("models"), body.get("version")
        if not isinstance(document, dict):
            return self._reject(source, "'document' is not an object")
        if not isinstance(models, dict):
            return self._reject(source, "'models' is not an object")
        if not isinstance(version, int) or isinstance(version, bool):
            return self._reject(source, "'version' is not an integer")
        with self._policy_lock:
            current = self.snapshot
            if current is not None and version < current.version:
                with self.lock:
                    self.counts.refresh_stale += 1
                logger.info(
                    "ignoring policy %s version %d from %s: version %d is live",
                    self.slug,
                    version,
                    source,
                    current.version,
                )
                return False
            try:
                compiled = compile_policy(document, models)
            except PolicyError as exc:
                return self._reject(source, str(exc))
            except Exception as exc:  # an engine bug must not take the client down
                logger.exception("policy %s version %d from %s failed to compile", self.slug, version, source)
                return self._reject(source, repr(exc))
            budget = body.get("budget")
            if budget is not None:
                feed = self._parse_budget(budget)
                if feed is not None:
                    self._feed, self._feed_at, self._feed_header = feed, self.clock(), None
            self.snapshot = Snapshot(compiled, version, etag, self._effective_state(), body, source)
        self.ready.set()
        if current is None or current.version != version:
            logger.info("policy %s version %d installed from %s", self.slug, version, source)
        return True

    def _reject(self, source: str, why: str) -> bool:
        with self.lock:
            self.counts.policy_rejected += 1
        logger.warning("rejected policy %s from %s, keeping the current one: %s", self.slug, source, why)
        return False

    def policy_request_headers(self) -> dict[str, str]:
        snapshot = self.snapshot
        if snapshot is not None and snapshot.etag:
            return {"If-None-Match": snapshot.etag}
        return {}

    def next_refresh_delay(self) -> float:
        spread = self.refresh_interval * self.jitter
        return max(self.refresh_interval + self.rng.uniform(-spread, spread), 0.0)

    def policy_answered(self, status: int, headers: Mapping[str, str], content: bytes) -> str:
        """Apply the server's answer to a policy GET. Return what happened, for the shells' logs."""
        if status == 304:
            with self.lock:
                self.counts.refresh_not_modified += 1
            self._budget_answered(headers)
            return "not_modified"
        if status == 200:
            try:
                body = loads_json(content)
            except ValueError:
                return self._refresh_failed("the 200 answer is not JSON")
            before = self.counts.policy_rejected
            self._budget_answered(headers)  # first, so the new snapshot carries it from the start
            if self.install(body, headers.get("etag"), source="server"):
                with self.lock:
                    self.counts.refresh_ok += 1
                self._write_cache(body, headers.get("etag"))
                return "installed"
            if self.counts.policy_rejected != before:
                with self.lock:
                    self.counts.refresh_failures += 1
                return "rejected"
            return "stale"
        message = ""
        with contextlib.suppress(Exception):
            message = str(loads_json(content).get("message", ""))[:200]
        self.warn_once(("policy-status", status), "policy %s refresh answered %d %s", self.slug, status, message)
        return self._refresh_failed(f"status {status}", log=False)

    def policy_failed(self, exc: BaseException) -> str:
        return self._refresh_failed(f"{type(exc).__name__}: {exc}")

    def _refresh_failed(self, why: str, *, log: bool = True) -> str:
        with self.lock:
            self.counts.refresh_failures += 1
        self._budget_expire()
        if log:
            logger.warning("policy %s refresh failed, keeping the current document: %s", self.slug, why)
        return "failed"

    def _write_cache(self, body: dict[str, Any], etag: str | None) -> None:
        """Write the last good answer atomically: a reader sees the old file or the new one."""
        if self.cache_path is None:
            return
        data = json.dumps(
            {"etag": etag, "fetched_at": rfc3339(time.time()), "body": body}, separators=(",", ":")
        ).encode()
        directory = self.cache_path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=f".{self.cache_path.name}.", dir=directory)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                Path(temp).replace(self.cache_path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            self.warn_once(("cache", type(exc)), "cannot write policy cache %s: %s", self.cache_path, exc)
