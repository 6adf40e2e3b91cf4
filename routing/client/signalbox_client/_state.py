"""What every part of a client core shares: the live policy snapshot, the counters, and
``CoreState``, the fields and the warn-once log that the policy, budget, decision and upload parts
of ``ClientCore`` read (``ClientCore.__init__`` sets them)."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from signalbox_client.engine import State

from ._spool import Spool

logger = logging.getLogger("signalbox.client")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The live policy: compiled, with the version, ETag and budget state it came with."""

    compiled: Any
    version: int
    etag: str | None
    state: State | None
    body: dict[str, Any]
    source: str  # "server" | "cache" | "bootstrap"


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


class CoreState:
    """The fields of one client that more than one part of its core reads; set by ``ClientCore``."""

    slug: str
    clock: Callable[[], float]
    rng: random.Random
    batch_size: int
    queue_size: int
    flush_interval: float
    spool: Spool | None
    snapshot: Snapshot | None
    ready: threading.Event
    _policy_lock: threading.Lock
    lock: threading.Lock  # guards the counters and the upload queues
    counts: Counters
    warned: set[Any]
    decide_calls: int
    client_info: dict[str, str]

    def warn_once(self, key: Any, message: str, *args: Any) -> None:
        if key not in self.warned:
            self.warned.add(key)
            logger.warning(message, *args)
