"""A client's core: everything the sync and async clients share that is not network I/O.

``ClientCore`` puts the parts together, each in a module of its own: the policy snapshot
(``_policy``), budget state (``_budget``), decisions and records (``_decisions``), the upload queue,
retries and the spool (``_upload``), on the shared fields of ``_state``; ``start_run()`` hands out
the ``run()`` state machine (``_run``). The shells in ``_sync`` and ``_aio`` only move bytes and
wait; every rule lives in the core, once.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from signalbox_client.engine import Request

from . import protocol
from ._decisions import Decisions
from ._policy import PolicyRefresh
from ._run import RunState
from ._spool import Spool
from ._state import Counters
from ._types import Stats
from ._upload import Uploads
from ._wire import MAX_BATCH_RECORDS, PROTOCOL_PREFIX, SDK_VERSION


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


class ClientCore(PolicyRefresh, Decisions, Uploads):
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
            "User-Agent": f"signalbox-client/{SDK_VERSION} (protocol {protocol.PROTOCOL_VERSION})",
            protocol.PROTOCOL_HEADER: str(protocol.PROTOCOL_VERSION),
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

        self.snapshot = None
        self.ready = threading.Event()
        self._policy_lock = threading.Lock()
        self._init_budget()
        self._init_process_state()
        self.load_startup()

    def _init_process_state(self) -> None:
        """State that belongs to one process: rebuilt from scratch in a forked child."""
        self.lock = threading.Lock()
        self.queue = deque()
        self.pending = deque()
        self.inflight = set()
        self.retry_at = 0.0
        self.failures = 0
        self.counts = Counters()
        self.decide_calls = 0
        self.warned = set()
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

    def start_run(
        self,
        task_type: str | Request,
        request: Request | None,
        fields: dict[str, Any],
        validate: Callable[[Any], Any] | None,
        attributes: Mapping[str, Any] | None,
        sink: Callable[[dict[str, Any]], Any],
    ) -> RunState:
        if attributes is not None and request is None and not isinstance(task_type, Request):
            # The decision sees the attributes its records carry: a dimension budget downgrades
            # exactly the runs whose spend it counts, and rules on attributes.* read them too.
            fields = {**fields, "attributes": attributes}
        decision = self.decide(task_type, request, fields)
        return RunState(self, decision, validate, attributes, sink)
