"""The part of the public surface the sync and async clients share: everything that never waits."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from signalbox_client.engine import NextStep, Request, Step

from ._core import ClientCore, ClientOptions
from ._decisions import ClientDecision
from ._types import Attempt, Stats

logger = logging.getLogger("signalbox.client")

DEFAULT_SPOOL_MAX_BYTES = 64 * 1024 * 1024
ATEXIT_TIMEOUT = 5.0

_live: weakref.WeakSet[ClientBase] = weakref.WeakSet()
_hooks_lock = threading.Lock()
_hooks_installed = False


def _install_process_hooks(client: ClientBase) -> None:
    """Register one fork hook and one exit hook for every client of the process."""
    global _hooks_installed
    with _hooks_lock:
        _live.add(client)
        if _hooks_installed:
            return
        _hooks_installed = True
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
    atexit.register(_close_all_at_exit)


def _after_fork_in_child() -> None:
    global _hooks_lock
    _hooks_lock = threading.Lock()  # it may have been held by another thread of the parent
    for client in list(_live):
        try:
            client._after_fork_in_child()
        except Exception:  # never break the application's fork
            logger.exception("signalbox client reset after fork failed")


def _close_all_at_exit() -> None:
    deadline = time.monotonic() + ATEXIT_TIMEOUT
    for client in list(_live):
        try:
            client._close_at_exit(max(deadline - time.monotonic(), 0.0))
        except Exception:
            logger.exception("signalbox client close at exit failed")


class ClientBase:
    """Local operations over a :class:`ClientCore`; subclasses add the network and the waiting."""

    def __init__(self, options: ClientOptions) -> None:
        self._options = options
        self._core = ClientCore(options)
        self._clock = options.clock
        self._closed = False
        _install_process_hooks(self)

    def _unregister(self) -> None:
        _live.discard(self)

    def _after_fork_in_child(self) -> None:
        """Forget the parent's background work; the subclass restarts its own lazily."""
        # The parent's queued records stay the parent's to send: the child forgets them.
        self._core.reset_after_fork()

    def _close_at_exit(self, timeout: float) -> None:
        """Called by the interpreter's exit hook: spool whatever is still in memory."""
        self._core.drain_to_spool()

    def _ensure_started(self) -> None:
        """Start (or, after a fork, restart) background work if it is due; cheap when it is not."""

    def _enqueue(self, record: dict[str, Any]) -> None:
        if self._closed:  # nothing will upload it from memory any more
            self._core.spill([record], reason="client closed")
        elif self._core.enqueue(record):
            self._wake_sender()

    def _wake_sender(self) -> None:
        """A batch is full: have the background upload send it now rather than at the interval."""
        raise NotImplementedError

    @property
    def ready(self) -> bool:
        """True once a policy document is loaded (from cache, bootstrap or server)."""
        return self._core.snapshot is not None

    @property
    def policy_version(self) -> int | None:
        """Version of the live policy document, or None before the first one."""
        snapshot = self._core.snapshot
        return snapshot.version if snapshot else None

    def stats(self) -> Stats:
        """Counters since start (see ``Stats`` and ``docs/client.md``)."""
        return self._core.stats()

    def set_budget(self, budget: Mapping[str, Any] | None) -> None:
        """Set the budget state (``{"policy": {...}, "routes": {...}}``) decisions use.

        It takes precedence over the state the server sends in ``Signalbox-Budget``; ``None`` hands
        control back to the server's state, and ``{}`` means "never downgrade".
        """
        self._core.set_budget(budget)

    def decide(self, task_type: str | Request, **request_fields: Any) -> ClientDecision:
        """Pick a model for a request, locally, without I/O.

        Takes a task type and ``Request`` fields, or a ``Request``. Raises ``SignalboxNotReady``
        only while no policy document is loaded at all.
        """
        self._ensure_started()
        return self._core.decide(task_type, None, request_fields)

    def next_step(
        self,
        decision: ClientDecision,
        *,
        attempt: int,
        outcome: str,
        confidence: float | None = None,
        elapsed_ms: float = 0.0,
        current: Step | None = None,
    ) -> NextStep | None:
        """What to do after an attempt of ``decision`` (for callers who run the loop themselves).

        ``current`` is the step the attempt ran (the previous ``NextStep.step``); default: the
        decision's first model. None means stop.
        """
        return self._core.next_step(
            decision, attempt=attempt, outcome=outcome, confidence=confidence, elapsed_ms=elapsed_ms, current=current
        )

    def record(
        self,
        decision: ClientDecision,
        *,
        outcome: str,
        latency_ms: float,
        attempt: int = 1,
        step: NextStep | Attempt | Step | None = None,
        confidence: float | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float | None = None,
        attributes: Mapping[str, Any] | None = None,
        started_at: float | None = None,
        request_id: str | None = None,
        event_id: str | None = None,
    ) -> str:
        """Log one attempt the caller ran itself; return its event id. Never does I/O.

        ``step`` is the ``NextStep`` (or ``Step``/``Attempt``) the attempt ran; without it the
        attempt is the decision's first model. ``started_at`` is epoch seconds (default: now minus
        ``latency_ms``). ``request_id`` ties attempts together (default: the decision's);
        ``event_id`` (a UUID, default: a new one) makes logging the same attempt twice count once
        on the server. Raises ``ValueError`` only for an outcome outside ``OUTCOMES``.
        """
        self._ensure_started()
        model = provider = tier = reason = None
        if isinstance(step, NextStep):
            model, provider, tier, reason = (step.step.model, step.step.provider, step.step.tier, step.reason)
        elif isinstance(step, Attempt):
            model, provider, tier, reason = step.model, step.provider, step.tier, step.reason
        elif isinstance(step, Step):
            model, provider, tier = step.model, step.provider, step.tier
        if started_at is None:
            started_at = time.time() - max(latency_ms, 0.0) / 1000.0
        record = self._core.make_record(
            decision,
            outcome=outcome,
            latency_ms=latency_ms,
            started_at=started_at,
            attempt=attempt,
            model=model,
            provider=provider,
            tier=tier,
            reason=reason,
            confidence=confidence,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=cost_usd,
            attributes=attributes,
            request_id=request_id,
            event_id=event_id,
        )
        self._enqueue(record)
        logged: str = record["event_id"]
        return logged
