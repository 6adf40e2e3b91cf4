"""Everything the sync and async clients share that is not network I/O.

The policy snapshot (start-up from cache or bootstrap, refresh answers, version guard), decisions,
the ``run()`` state machine, decision records, the bounded queue, retry scheduling and the spool.
The shells in ``_sync`` and ``_aio`` only move bytes and wait; every rule lives here, once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from signalbox_client.engine import (
    OUTCOMES,
    Decision,
    NextStep,
    PolicyError,
    Request,
    State,
    Step,
    compile_policy,
    decide,
    next_step,
)

from ._spool import Segment, Spool
from ._types import (
    Attempt,
    AttemptRecord,
    CallResult,
    ProviderError,
    RunResult,
    SignalboxNotReady,
    Stats,
)
from ._version import __version__

logger = logging.getLogger("signalbox.client")

PROTOCOL_PREFIX = "/api/v1/client"
MAX_BATCH_RECORDS = 5_000
MAX_BATCH_BYTES = 5_000_000
MAX_ATTRIBUTES = 20
MAX_ATTEMPTS = 16  # a guard against a policy that never stops; next_step() normally ends far sooner
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 300.0
POST_HEADERS = {"Content-Type": "application/json"}
BUDGET_HEADER = "signalbox-budget"  # the server's budget state, on every 200 and 304 of the policy GET
BUDGET_STATE_MAX_AGE = 600.0  # seconds a server budget state is used without being sent again
MAX_BUDGET_HEADER = 64_000


SDK_VERSION = __version__


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Every constructor argument of a client, as given; built once by the shell, read everywhere.

    The shells' signatures are the documented API and keep their defaults; this is the one
    internal copy. Adding an option means a parameter in both shells and a field here.
    """

    base_url: str
    sdk_key: str
    policy: str
    app: str | None
    bootstrap_path: str | os.PathLike[str] | None
    cache_dir: str | os.PathLike[str] | None
    refresh_interval: float
    jitter: float
    flush_interval: float
    batch_size: int
    queue_size: int
    spool_dir: str | os.PathLike[str] | None
    spool_max_bytes: int
    timeout: float
    transport: Any  # httpx.BaseTransport for the sync shell, httpx.AsyncBaseTransport for asyncio
    start: bool
    clock: Callable[[], float]
    sleep: Callable[[float], Any]  # time.sleep, or a coroutine function such as asyncio.sleep
    rng: random.Random | None

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> ClientOptions:
        """Build from a shell constructor's ``locals()``, taken before it binds anything else.

        Every argument must be a field: a parameter added to a shell but not here fails at once.
        """
        return cls(**{k: v for k, v in arguments.items() if k not in ("self", "__class__")})


@dataclass(frozen=True, slots=True)
class ClientDecision(Decision):
    """An engine :class:`~signalbox_client.engine.Decision` plus what a decision record needs later.

    ``decide()`` returns these, so ``record(decision, ...)`` knows the task type, the policy version
    the decision came from and the request id that ties attempts together.
    """

    task_type: str = ""
    policy_version: int = 0
    request_id: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict, repr=False)
    compiled: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The live policy: compiled, with the version, ETag and budget state it came with."""

    compiled: Any
    version: int
    etag: str | None
    state: State | None
    body: dict[str, Any]
    source: str  # "server" | "cache" | "bootstrap"


@dataclass(slots=True, eq=False)
class Batch:
    """Records sent in one POST; ``segment`` when they come from the spool."""

    records: list[dict[str, Any]]
    segment: Segment | None = None
    abandoned: bool = False


_second_cache: tuple[int, str] = (-1, "")


def rfc3339(epoch: float) -> str:
    """Return ``epoch`` as RFC 3339 UTC with microseconds, e.g. ``2026-11-22T06:54:10.123456Z``."""
    global _second_cache
    seconds = int(epoch)
    micros = round((epoch - seconds) * 1_000_000)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    cached_second, prefix = _second_cache  # one tuple: a racing thread sees old or new, whole
    if cached_second != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second_cache = (seconds, prefix)
    return f"{prefix}.{micros:06d}Z"


def uuid4_str() -> str:
    """A random (version 4) UUID in its canonical text form; uuid.uuid4() costs 4x more."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _loads(data: bytes | str) -> Any:
    """``json.loads``, with a document nested too deeply to parse reported as a ValueError."""
    try:
        return json.loads(data)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def _fraction(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _budget_dict(budget: Any) -> dict[str, Any]:
    """The protocol's ``budget`` object checked and trimmed to what ``State.from_dict`` reads.

    Raises ValueError for a wrong type anywhere: the engine compares these numbers in every
    ``decide()``, so a string that got through would make each decision raise. Unknown keys are
    dropped (the protocol may add fields).
    """
    if not isinstance(budget, Mapping):
        raise ValueError("budget is not an object")

    def spend(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} is not an object")
        out = {k: value.get(k) for k in ("daily", "monthly")}
        if not all(_fraction(v) for v in out.values()):
            raise ValueError(f"{where}: daily and monthly must be numbers or null")
        return out

    policy, routes = budget.get("policy"), budget.get("routes")
    if routes is not None and not isinstance(routes, Mapping):
        raise ValueError("budget.routes is not an object")
    return {
        "policy": spend(policy, "budget.policy") if policy is not None else None,
        "routes": {str(name): spend(value, f"budget.routes.{name}") for name, value in (routes or {}).items()},
    }


def classify_exception(exc: BaseException) -> str:
    """Map an exception raised by the caller's LLM call to one of the engine's outcomes."""
    if isinstance(exc, ProviderError) and exc.outcome in OUTCOMES:
        return exc.outcome
    if isinstance(exc, TimeoutError):
        return "timeout"
    try:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return "timeout"
    except ImportError:  # pragma: no cover - httpx is a dependency
        pass
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    if isinstance(status, int):
        if status == 429:
            return "rate_limited"
        if status in (408, 504):
            return "timeout"
    return "error"


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now_epoch
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def _sanitize_attributes(values: Mapping[str, Any] | None) -> dict[str, Any]:
    if not values:
        return {}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if len(out) >= MAX_ATTRIBUTES:
            break
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool) or (isinstance(value, float) and not math.isfinite(value)):
            value = str(value)
        out[str(key)] = value
    return out


def _confidence(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(number):
        return None
    return min(max(number, 0.0), 1.0)


def _tokens(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def _cost(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


@dataclass(slots=True)
class Counters:
    """Plain integer counters; callers hold the core's lock while they change them."""

    dropped: int = 0
    duplicates: int = 0
    policy_rejected: int = 0
    recorded: int = 0
    refresh_failures: int = 0
    refresh_not_modified: int = 0
    refresh_ok: int = 0
    refresh_stale: int = 0
    rejected: int = 0
    retried: int = 0
    sent: int = 0
    spooled: int = 0


class ClientCore:
    """The state of one client, shared by the sync and async shells."""

    def __init__(self, options: ClientOptions) -> None:
        policy = options.policy
        if not policy:
            raise ValueError("policy slug is required")
        base = options.base_url.rstrip("/")
        slug = quote(policy, safe="")
        self.slug = policy
        self.policy_url = f"{base}{PROTOCOL_PREFIX}/policies/{slug}"
        self.decisions_url = f"{base}{PROTOCOL_PREFIX}/decisions"
        self.headers = {
            "Authorization": f"Bearer {options.sdk_key}",
            "Accept": "application/json",
            "User-Agent": f"signalbox-client/{SDK_VERSION}",
        }
        self.app = options.app or os.environ.get("SIGNALBOX_APP") or "default"
        self.refresh_interval = max(float(options.refresh_interval), 0.0)
        self.jitter = min(max(float(options.jitter), 0.0), 1.0)
        self.flush_interval = max(float(options.flush_interval), 0.0)
        self.batch_size = min(max(int(options.batch_size), 1), MAX_BATCH_RECORDS)
        self.queue_size = max(int(options.queue_size), 1)
        self.clock = options.clock
        self.rng = options.rng or random.Random()
        self.bootstrap_path = Path(options.bootstrap_path) if options.bootstrap_path else None
        self.cache_path = Path(options.cache_dir) / f"{slug}.json" if options.cache_dir else None
        self.spool = Spool(Path(options.spool_dir) / slug, options.spool_max_bytes) if options.spool_dir else None

        self.snapshot: Snapshot | None = None
        self.ready = threading.Event()
        self._policy_lock = threading.Lock()
        # Budget state: the server's feed (header, or a body's "budget"), with the clock() time it
        # was last sent, and the app's own from set_budget(), which takes precedence while set.
        self.budget_max_age = BUDGET_STATE_MAX_AGE
        self._feed: State | None = None
        self._feed_at = 0.0
        self._feed_header: str | None = None
        self._override: State | None = None
        self._override_set = False
        self._init_process_state()
        self.load_startup()

    def _init_process_state(self) -> None:
        """State that belongs to one process: rebuilt from scratch in a forked child."""
        self.lock = threading.Lock()
        self.queue: deque[dict[str, Any]] = deque()
        self.pending: deque[Batch] = deque()
        self.inflight: set[Batch] = set()
        self.retry_at = 0.0
        self.failures = 0
        self.counts = Counters()
        self.decide_calls = 0
        self.warned: set[Any] = set()
        self.client_info = {
            "app": self.app,
            "instance": f"{socket.gethostname()}:{os.getpid()}",
            "sdk_version": SDK_VERSION,
        }

    def reset_after_fork(self) -> None:
        """Forget the parent's queue, retries and locks; keep the policy (it is immutable)."""
        self._policy_lock = threading.Lock()
        ready = self.ready.is_set()
        self.ready = threading.Event()
        if ready:
            self.ready.set()
        self._init_process_state()

    def warn_once(self, key: Any, message: str, *args: Any) -> None:
        if key not in self.warned:
            self.warned.add(key)
            logger.warning(message, *args)

    # -- policy ----------------------------------------------------------------------------

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
            data = _loads(path.read_bytes())
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

    def _parse_budget(self, budget: Any) -> State | None:
        """The engine State of a protocol ``budget`` object; None (and a warning) when malformed."""
        try:
            return State.from_dict(_budget_dict(budget))
        except Exception as exc:
            self.warn_once(("budget", type(exc)), "ignoring malformed budget state: %s", exc)
            return None

    def _effective_state(self) -> State | None:
        """The app's budget while it set one, else the server's; callers hold ``_policy_lock``."""
        return self._override if self._override_set else self._feed

    def _publish_state(self) -> None:
        """Swap in a snapshot carrying the effective budget state; callers hold ``_policy_lock``."""
        current = self.snapshot
        state = self._effective_state()
        if current is not None and current.state is not state:
            self.snapshot = Snapshot(
                current.compiled, current.version, current.etag, state, current.body, current.source
            )

    def set_budget(self, budget: Mapping[str, Any] | None) -> None:
        """Set the budget state decisions use (the protocol's ``budget`` object), over the server's.

        ``None`` hands the budget back to the server's ``Signalbox-Budget`` feed; ``{}`` means no
        spend known (no downgrade) whatever the server says. A malformed object is ignored with a
        warning and the previous state kept.
        """
        with self._policy_lock:
            if budget is None:
                self._override, self._override_set = None, False
            else:
                state = self._parse_budget(budget)
                if state is None:
                    return
                self._override, self._override_set = state, True
            self._publish_state()

    def _budget_answered(self, headers: Mapping[str, str]) -> None:
        """Apply the ``Signalbox-Budget`` header of a 200 or 304; never raises.

        An absent or malformed header keeps the last state until it is ``budget_max_age`` old.
        """
        try:
            value = headers.get(BUDGET_HEADER)
        except Exception:
            value = None
        if isinstance(value, str) and value:
            with self._policy_lock:
                if value == self._feed_header:
                    self._feed_at = self.clock()
                    return
            state = None
            if len(value) > MAX_BUDGET_HEADER:
                self.warn_once("budget-header-size", "ignoring a budget state header over %d bytes", MAX_BUDGET_HEADER)
            else:
                try:
                    data = _loads(value)
                except ValueError as exc:
                    self.warn_once(("budget", ValueError), "ignoring malformed budget state: %s", exc)
                else:
                    state = self._parse_budget(data)
            if state is not None:
                with self._policy_lock:
                    self._feed, self._feed_at, self._feed_header = state, self.clock(), value
                    self._publish_state()
                return
        self._budget_expire()

    def _budget_expire(self) -> None:
        """Drop the server's budget state once it was not sent for ``budget_max_age`` seconds."""
        with self._policy_lock:
            if self._feed is None or self.clock() - self._feed_at <= self.budget_max_age:
                return
            self._feed, self._feed_header = None, None
            self._publish_state()
        logger.info("policy %s: budget state not sent for %.0f s, dropped", self.slug, self.budget_max_age)

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
                body = _loads(content)
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
            message = str(_loads(content).get("message", ""))[:200]
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

    # -- decisions -------------------------------------------------------------------------

    def decide(self, task_type: str | Request, request: Request | None, fields: dict[str, Any]) -> ClientDecision:
        snapshot = self.snapshot
        if snapshot is None:
            raise SignalboxNotReady(
                f"no document for policy {self.slug!r} yet: no cache, no bootstrap file and no "
                "answer from the server; call wait_until_ready() or pass bootstrap_path"
            )
        if isinstance(task_type, Request):
            request = task_type
        elif request is None:
            request = Request(task_type, **fields)
        decision = decide(snapshot.compiled, request, snapshot.state)
        self.decide_calls += 1  # a lost increment under a thread race costs less than a lock here
        return ClientDecision(
            decision.plan,
            decision.reason,
            request.task_type,
            snapshot.version,
            request.request_id or os.urandom(16).hex(),
            request.attributes,
            snapshot.compiled,
        )

    def next_step(
        self,
        decision: ClientDecision,
        *,
        attempt: int,
        outcome: str,
        confidence: float | None,
        elapsed_ms: float,
        current: Step | None = None,
    ) -> NextStep | None:
        compiled = decision.compiled
        if compiled is None:
            snapshot = self.snapshot
            compiled = snapshot.compiled if snapshot else None
        if compiled is None:
            return None
        return next_step(
            compiled,
            decision,
            attempt=attempt,
            outcome=outcome,
            confidence=confidence,
            elapsed_ms=elapsed_ms,
            current=current,
        )

    def make_record(
        self,
        decision: ClientDecision,
        *,
        outcome: str,
        latency_ms: float,
        started_at: float,
        attempt: int = 1,
        model: str | None = None,
        provider: str | None = None,
        tier: int | None = None,
        reason: Mapping[str, Any] | None = None,
        confidence: Any = None,
        tokens_in: Any = 0,
        tokens_out: Any = 0,
        cost_usd: Any = None,
        attributes: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}, not {outcome!r}")
        return {
            "event_id": uuid4_str(),
            "timestamp": rfc3339(started_at),
            "policy": self.slug,
            "policy_version": decision.policy_version,
            "route": decision.route,
            "task_type": decision.task_type,
            "model": model if model is not None else decision.model,
            "provider": provider if provider is not None else decision.provider,
            "tier": tier if tier is not None else decision.tier,
            "attempt": attempt,
            "request_id": request_id or decision.request_id,
            "reason": dict(reason) if reason is not None else decision.reason,
            "outcome": outcome,
            "confidence": _confidence(confidence),
            "tokens_in": _tokens(tokens_in),
            "tokens_out": _tokens(tokens_out),
            "cost_usd": _cost(cost_usd),
            "latency_ms": max(float(latency_ms), 0.0),
            "client": self.client_info,
            "attributes": _sanitize_attributes(attributes if attributes is not None else decision.attributes),
        }

    def enqueue(self, record: dict[str, Any]) -> bool:
        """Queue a record. Return True when a batch is full and the sender should wake."""
        overflow: list[dict[str, Any]] | None = None
        with self.lock:
            queue = self.queue
            if len(queue) >= self.queue_size:
                # Spill a whole chunk so the fsync is paid once per chunk, not per record.
                take = min(self.batch_size, len(queue)) if self.spool else 1
                overflow = [queue.popleft() for _ in range(take)]
            queue.append(record)
            self.counts.recorded += 1
            full = len(queue) >= self.batch_size
        if overflow:
            self.spill(overflow, reason="queue full")
        return full

    # -- sending ---------------------------------------------------------------------------

    def next_batch(self, now: float, *, include_spool: bool = True) -> Batch | None:
        """The next batch due for sending, or None (nothing to send, or backing off)."""
        with self.lock:
            if now < self.retry_at:
                return None
            if self.pending:
                batch = self.pending.popleft()
            elif self.queue:
                queue = self.queue
                batch = Batch([queue.popleft() for _ in range(min(self.batch_size, len(queue)))])
            else:
                batch = None
            if batch is not None:
                self.inflight.add(batch)
                return batch
        if include_spool and self.spool is not None:
            segment, corrupt = self.spool.claim_oldest()
            if corrupt:
                with self.lock:
                    self.counts.dropped += corrupt
                self.warn_once("spool-corrupt", "dropped %d unreadable spooled records", corrupt)
            if segment is not None:
                batch = Batch(segment.records, segment)
                with self.lock:
                    self.inflight.add(batch)
                return batch
        return None

    def next_send(
        self, now: float, deadline: float | None, timeout: float, *, include_spool: bool
    ) -> tuple[Batch, bytes, float] | None:
        """The next batch due, its POST body and the HTTP timeout left for it; None to stop.

        Stops at ``deadline`` (None: no deadline), and when nothing is due.
        """
        while deadline is None or now < deadline:
            batch = self.next_batch(now, include_spool=include_spool)
            if batch is None:
                return None
            body = self.encode(batch)
            if body is not None:
                if deadline is not None:
                    timeout = max(min(timeout, deadline - now), 0.001)
                return batch, body, timeout
        return None

    def flush_wait(self, now: float, deadline: float, *, include_spool: bool) -> float | None:
        """Seconds a flush sleeps before its next round of sends; None when the flush is over.

        Over means nothing is left (see ``flushed()``), or what is left cannot go before
        ``deadline``.
        """
        if self.flushed(include_spool=include_spool):
            return None
        wait = self.wait_hint(now)
        if wait is None and self._spool_left(include_spool):
            wait = max(self.retry_at - now, 0.0)
        if wait is None or now + wait >= deadline:
            return None
        return wait

    def flushed(self, *, include_spool: bool) -> bool:
        """True when nothing is left in memory and, with ``include_spool``, in the spool."""
        return self.idle() and not self._spool_left(include_spool)

    def _spool_left(self, include_spool: bool) -> bool:
        return include_spool and self.spool is not None and self.spool.has_segments()

    def upload_crashed(self) -> None:
        """After an unexpected error in a background upload round: try again one interval on."""
        logger.error("decision upload crashed; retrying later")
        with self.lock:
            self.retry_at = self.clock() + self.flush_interval

    def encode(self, batch: Batch) -> bytes | None:
        """The POST body for a batch; None when it was too large and got split instead."""
        body = json.dumps({"decisions": batch.records}, separators=(",", ":"), default=str).encode()
        if len(body) > MAX_BATCH_BYTES:
            self._split(batch, "over 5 MB")
            return None
        return body

    def wait_hint(self, now: float) -> float | None:
        """Seconds until a retry is due, 0 when something can go now, None when idle."""
        with self.lock:
            if self.retry_at > now and (self.pending or self.queue):
                return self.retry_at - now
            if self.pending or self.queue:
                return 0.0
        return None

    def idle(self) -> bool:
        """True when nothing is queued, pending or in flight in memory."""
        with self.lock:
            return not (self.queue or self.pending or self.inflight)

    def sent(self, batch: Batch, status: int, headers: Mapping[str, str], content: bytes, now: float) -> str:
        """Apply the answer to a POST of ``batch``. Return "delivered", "retry", "split", "drop"."""
        if batch.abandoned:
            return "abandoned"
        if 200 <= status < 300:
            counted = self._count_results(batch, content)
            if counted is None:
                self.warn_once(
                    "malformed-post", "decision upload answered %d with an unreadable body; retrying the batch", status
                )
                self._retry(batch, self._backoff(), now)
                return "retry"
            accepted, duplicates, rejected = counted
            with self.lock:
                self.inflight.discard(batch)
                self.counts.sent += accepted
                self.counts.duplicates += duplicates
                self.counts.rejected += rejected
                self.failures = 0
                self.retry_at = 0.0
            self._finish_segment(batch)
            return "delivered"
        if status == 413:
            self._split(batch, "413")
            return "split"
        if status == 429:
            wait = parse_retry_after(headers.get("retry-after"), time.time())
            self._retry(batch, wait if wait is not None else self._backoff(), now)
            return "retry"
        if status == 408 or status >= 500 or status < 200 or 300 <= status < 400:
            self._retry(batch, self._backoff(), now)
            return "retry"
        self.warn_once(
            ("post-status", status),
            "decision upload answered %d: dropping batches this status rejects (%d records now)",
            status,
            len(batch.records),
        )
        with self.lock:
            self.inflight.discard(batch)
            self.counts.rejected += len(batch.records)
            self.failures = 0
            self.retry_at = 0.0
        self._finish_segment(batch)
        return "drop"

    def send_failed(self, batch: Batch, exc: BaseException, now: float) -> str:
        if batch.abandoned:
            return "abandoned"
        self.warn_once(("post-error", type(exc)), "decision upload failed (%s), will retry", type(exc).__name__)
        logger.debug("decision upload failed: %r", exc)
        self._retry(batch, self._backoff(), now)
        return "retry"

    def _count_results(self, batch: Batch, content: bytes) -> tuple[int, int, int] | None:
        try:
            body = _loads(content)
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        results = body.get("results")
        if (
            isinstance(results, list)
            and len(results) == len(batch.records)
            and all(isinstance(r, dict) for r in results)
        ):
            accepted = duplicates = rejected = 0
            for result in results:
                status = result.get("status")
                if status == "accepted":
                    accepted += 1
                elif status == "duplicate":
                    duplicates += 1
                else:
                    rejected += 1
                    errors = result.get("errors")
                    fields = tuple(sorted(map(str, errors))) if isinstance(errors, dict) else ()
                    self.warn_once(("rejected", fields), "the server rejected a decision record: %s", errors)
            return accepted, duplicates, rejected
        counts = [
            c
            for k in ("accepted", "duplicates", "rejected")
            if isinstance(c := body.get(k), int) and not isinstance(c, bool) and c >= 0
        ]
        if len(counts) == 3 and sum(counts) == len(batch.records):
            return counts[0], counts[1], counts[2]
        return None

    def _backoff(self) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**failures))."""
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(self.failures, 16)))
        return self.rng.uniform(0.0, ceiling)

    def _retry(self, batch: Batch, delay: float, now: float) -> None:
        with self.lock:
            self.inflight.discard(batch)
            self.pending.appendleft(batch)
            self.failures += 1
            self.retry_at = now + delay
            self.counts.retried += 1

    def _split(self, batch: Batch, why: str) -> None:
        records = batch.records
        with self.lock:
            self.inflight.discard(batch)
        if len(records) <= 1:
            self.warn_once(("too-large", why), "dropping a decision record the server refuses as too large (%s)", why)
            with self.lock:
                self.counts.rejected += len(records)
            self._finish_segment(batch)
            return
        middle = len(records) // 2
        halves = [records[:middle], records[middle:]]
        if batch.segment is not None and self.spool is not None:
            # Halves of a spooled segment go back to disk, so a crash now loses nothing.
            for half in halves:
                self.spool.write(half, len(half))
            self.spool.finish(batch.segment)
            return
        with self.lock:
            for half in reversed(halves):
                self.pending.appendleft(Batch(half))

    def _finish_segment(self, batch: Batch) -> None:
        if batch.segment is not None and self.spool is not None:
            self.spool.finish(batch.segment)

    # -- spool -----------------------------------------------------------------------------

    def spill(self, records: list[dict[str, Any]], *, reason: str) -> None:
        """Write records to the spool, or drop and count them when there is no spool."""
        if not records:
            return
        if self.spool is None:
            with self.lock:
                self.counts.dropped += len(records)
            self.warn_once(("drop", reason), "dropping decision records (%s) and no spool_dir is set", reason)
            return
        try:
            written, dropped = self.spool.write(records, self.batch_size)
        except OSError as exc:
            with self.lock:
                self.counts.dropped += len(records)
            self.warn_once(("spool-error", type(exc)), "cannot write the decision spool: %s", exc)
            return
        with self.lock:
            self.counts.spooled += written
            self.counts.dropped += dropped

    def requeue_inflight(self) -> None:
        """Put batches whose send was interrupted (a cancelled task) back at the front."""
        with self.lock:
            for batch in self.inflight:
                self.pending.appendleft(batch)
            self.inflight.clear()

    def drain_to_spool(self) -> None:
        """Move everything held in memory to the spool (close, exit): nothing stays in RAM."""
        with self.lock:
            batches = list(self.pending) + list(self.inflight)
            self.pending.clear()
            self.inflight.clear()
            records = list(self.queue)
            self.queue.clear()
        memory: list[dict[str, Any]] = []
        for batch in batches:
            batch.abandoned = True
            if batch.segment is not None and self.spool is not None:
                self.spool.release(batch.segment)
            else:
                memory.extend(batch.records)
        memory.extend(records)
        self.spill(memory, reason="closing")

    # -- stats -----------------------------------------------------------------------------

    def stats(self) -> Stats:
        snapshot = self.snapshot
        spool_bytes = self.spool.size_bytes() if self.spool is not None else 0
        with self.lock:
            c = self.counts
            return Stats(
                decisions=self.decide_calls,
                recorded=c.recorded,
                sent=c.sent,
                duplicates=c.duplicates,
                rejected=c.rejected,
                retried=c.retried,
                spooled=c.spooled,
                spool_bytes=spool_bytes,
                dropped=c.dropped,
                queued=len(self.queue) + sum(len(b.records) for b in self.pending),
                refresh_ok=c.refresh_ok,
                refresh_not_modified=c.refresh_not_modified,
                refresh_failures=c.refresh_failures,
                refresh_stale=c.refresh_stale,
                policy_rejected=c.policy_rejected,
                policy_version=snapshot.version if snapshot else None,
            )

    # -- run() -----------------------------------------------------------------------------

    def start_run(
        self,
        task_type: str | Request,
        request: Request | None,
        fields: dict[str, Any],
        validate: Callable[[Any], Any] | None,
        attributes: Mapping[str, Any] | None,
        sink: Callable[[dict[str, Any]], Any],
    ) -> RunState:
        decision = self.decide(task_type, request, fields)
        return RunState(self, decision, validate, attributes, sink)


_MISSING: Any = object()


class RunState:
    """The attempt loop of ``run()`` without the call itself: the shells call, this decides.

    Shell loop::

        state = core.start_run(...)
        while state.current is not None:
            state.begin()
            try:
                value = call(state.current)
            except Exception as exc:
                state.raised(exc)
            else:
                state.returned(value)
        return state.finish()
    """

    __slots__ = (
        "_attempt_started",
        "_perf_started",
        "_run_started",
        "attempts",
        "attributes",
        "core",
        "current",
        "decision",
        "last_exception",
        "last_outcome",
        "response",
        "sink",
        "validate",
    )

    def __init__(
        self,
        core: ClientCore,
        decision: ClientDecision,
        validate: Callable[[Any], Any] | None,
        attributes: Mapping[str, Any] | None,
        sink: Callable[[dict[str, Any]], Any],
    ) -> None:
        self.core = core
        self.sink = sink
        self.decision = decision
        self.validate = validate
        self.attributes = attributes
        self.attempts: list[AttemptRecord] = []
        self.response: Any = _MISSING
        self.last_exception: BaseException | None = None
        self.last_outcome = "error"
        self._run_started = time.perf_counter()
        self._perf_started = self._run_started
        self._attempt_started = 0.0
        self.current: Attempt | None = Attempt(
            decision.model,
            decision.provider,
            decision.tier,
            1,
            "initial",
            decision.route,
            decision.request_id,
            decision.reason,
        )

    def begin(self) -> None:
        self._attempt_started = time.time()
        self._perf_started = time.perf_counter()

    def returned(self, value: Any) -> None:
        latency_ms = (time.perf_counter() - self._perf_started) * 1000.0
        if isinstance(value, CallResult):
            response, confidence = value.response, value.confidence
            extra = (value.tokens_in, value.tokens_out, value.cost_usd)
        else:
            response, confidence, extra = value, None, (0, 0, None)
        outcome = "ok"
        if self.validate is not None:
            try:
                valid = bool(self.validate(response))
            except Exception as exc:
                logger.debug("validate() raised %s; counting a validation failure", type(exc).__name__)
                valid = False
            if not valid:
                outcome = "validation_failed"
        if outcome == "ok" and confidence is not None:
            threshold = self.decision.min_confidence
            level = _confidence(confidence)
            if threshold is not None and level is not None and level < threshold:
                outcome = "low_confidence"
        self.response = response
        self.last_exception = None
        self._finish_attempt(outcome, latency_ms, confidence, extra, None)

    def raised(self, exc: Exception) -> None:
        latency_ms = (time.perf_counter() - self._perf_started) * 1000.0
        self.last_exception = exc
        self._finish_attempt(classify_exception(exc), latency_ms, None, (0, 0, None), exc)

    def _finish_attempt(
        self, outcome: str, latency_ms: float, confidence: Any, extra: tuple[Any, Any, Any], exc: BaseException | None
    ) -> None:
        attempt = self.current
        assert attempt is not None
        core = self.core
        record = core.make_record(
            self.decision,
            outcome=outcome,
            latency_ms=latency_ms,
            started_at=self._attempt_started,
            attempt=attempt.attempt,
            model=attempt.model,
            provider=attempt.provider,
            tier=attempt.tier,
            reason=attempt.reason,
            confidence=confidence,
            tokens_in=extra[0],
            tokens_out=extra[1],
            cost_usd=extra[2],
            attributes=self.attributes,
        )
        self.sink(record)
        self.attempts.append(
            AttemptRecord(
                attempt.attempt,
                attempt.model,
                attempt.provider,
                attempt.tier,
                attempt.kind,
                outcome,
                record["confidence"],
                record["latency_ms"],
                record["event_id"],
                exc,
            )
        )
        self.last_outcome = outcome
        self.current = None
        if attempt.attempt >= MAX_ATTEMPTS:
            return
        elapsed_ms = (time.perf_counter() - self._run_started) * 1000.0
        try:
            step = core.next_step(
                self.decision,
                attempt=attempt.attempt,
                outcome=outcome,
                confidence=record["confidence"],
                elapsed_ms=elapsed_ms,
                current=Step(attempt.tier, attempt.model, attempt.provider),
            )
        except Exception:
            logger.exception("next_step() failed; ending the run after attempt %d", attempt.attempt)
            return
        if step is not None:
            self.current = Attempt(
                step.step.model,
                step.step.provider,
                step.step.tier,
                attempt.attempt + 1,
                step.kind,
                self.decision.route,
                self.decision.request_id,
                step.reason,
            )

    def finish(self) -> RunResult:
        """The run's result, or the caller's last exception when no attempt returned anything."""
        if self.response is _MISSING:
            assert self.last_exception is not None
            raise self.last_exception
        return RunResult(
            self.response, self.decision, tuple(self.attempts), self.last_outcome, self.decision.request_id
        )
