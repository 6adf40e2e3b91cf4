"""RoutingClient: the thread-based shell around :class:`ClientCore`."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from signalbox_client.engine import Request

from ._base import DEFAULT_SPOOL_MAX_BYTES, ClientBase
from ._core import ClientOptions
from ._stream import ClassifyOf, RunStream, UsageOf, classified, open_stream
from ._types import Attempt, RunResult
from ._wire import POST_HEADERS

logger = logging.getLogger("signalbox.client")


class RoutingClient(ClientBase):
    """The Signalbox client for threaded code: local decisions, background refresh and upload.

    ``decide()`` and ``run()`` never touch the network. A daemon thread polls the policy every
    ``refresh_interval`` seconds (± ``jitter`` as a fraction); another uploads decision records in
    batches of ``batch_size`` or every ``flush_interval`` seconds. See ``docs/client.md``.

    ``clock``, ``sleep`` and ``rng`` exist for tests: ``clock`` is monotonic seconds, ``sleep`` is
    what ``flush()`` calls to wait out a backoff.
    """

    def __init__(
        self,
        base_url: str,
        sdk_key: str,
        policy: str,
        *,
        app: str | None = None,
        bootstrap_path: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        refresh_interval: float = 30.0,
        jitter: float = 0.1,
        flush_interval: float = 2.0,
        batch_size: int = 500,
        queue_size: int = 10_000,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        start: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        # locals() first, before anything else is bound: it is exactly the arguments.
        super().__init__(ClientOptions.from_arguments(locals()))
        self._init_threads()
        if start:
            self.start()

    def _init_threads(self) -> None:
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._restart_pending = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background refresh and upload threads (idempotent)."""
        with self._start_lock:
            if self._threads or self._closed:
                return
            self._restart_pending = False
            for name, target in (("refresh", self._refresh_loop), ("upload", self._upload_loop)):
                thread = threading.Thread(target=target, name=f"signalbox-{name}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _after_fork_in_child(self) -> None:
        # The parent's threads do not exist here and its locks may be held by them: start over.
        super()._after_fork_in_child()
        self._init_threads()
        self._restart_pending = self._options.start and not self._closed

    def _ensure_started(self) -> None:
        if self._restart_pending:
            self.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the threads, upload what is queued within ``timeout`` seconds, spool the rest."""
        if self._closed:
            return
        self._closed = True
        deadline = self._clock() + max(timeout, 0.0)
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(max(deadline - self._clock(), 0.0))
        remaining = deadline - self._clock()
        if remaining > 0:
            self._flush(remaining, include_spool=False)
        self._core.drain_to_spool()
        with self._http_lock:
            if self._http is not None:
                self._http.close()
                self._http = None
        self._unregister()

    def _close_at_exit(self, timeout: float) -> None:
        self.close(timeout)

    def __enter__(self) -> RoutingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Wait until a policy document is loaded. Return False if ``timeout`` passed first."""
        self._ensure_started()
        return self._core.ready.wait(timeout)

    def _wake_sender(self) -> None:
        self._wake.set()

    def run(
        self,
        task_type: str | Request,
        call: Callable[[Attempt], Any],
        *,
        validate: Callable[[Any], bool] | None = None,
        request: Request | None = None,
        attributes: Mapping[str, Any] | None = None,
        **request_fields: Any,
    ) -> RunResult:
        """Decide, call ``call(attempt)``, and escalate or fall back as the policy says.

        Every attempt is logged. When no attempt returned a response, the last exception raised by
        ``call`` is re-raised; the SDK raises nothing else (bar ``SignalboxNotReady``).
        """
        self._ensure_started()
        state = self._core.start_run(task_type, request, request_fields, validate, attributes, self._enqueue)
        while state.current is not None:
            state.begin()
            try:
                value = call(state.current)
            except Exception as exc:
                state.raised(exc)
            else:
                state.returned(value)
        return state.finish()

    def run_stream(
        self,
        task_type: str | Request,
        call: Callable[[Attempt], Any],
        *,
        usage: UsageOf | None = None,
        hide: Callable[[Any], bool] | None = None,
        classify: ClassifyOf | None = None,
        request: Request | None = None,
        attributes: Mapping[str, Any] | None = None,
        **request_fields: Any,
    ) -> RunStream:
        """Decide, and stream what ``call(attempt)`` returns (an iterable of chunks).

        An attempt that raises before its first chunk is logged and falls back as the policy says
        (as in ``run()``); the first attempt that yields a chunk is the last one: its chunks pass
        through the returned ``RunStream`` unchanged, and it is logged when the stream ends.
        ``usage(chunk)`` returns ``(tokens_in, tokens_out)`` from the chunk that carries them (the
        last such wins); chunks for which ``hide(chunk)`` is true are read but not passed on.
        ``classify(exc)`` names the outcome of an error raised while reading the chunks (None: as
        ``classify_exception``). When no attempt starts a stream, the last exception raised is
        re-raised.
        """
        self._ensure_started()
        state = self._core.start_run(task_type, request, request_fields, None, attributes, self._enqueue)
        while state.current is not None:
            state.begin()
            try:
                return open_stream(state, call(state.current), (usage, hide, classify))
            except Exception as exc:
                state.raised(exc, classified(classify, exc))
        state.finish()  # raises the last attempt's exception
        raise AssertionError("unreachable: a run without a stream has an exception")

    # -- network ---------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        with self._http_lock:
            if self._http is None:
                self._http = httpx.Client(
                    transport=self._options.transport, timeout=self._options.timeout, headers=self._core.headers
                )
            return self._http

    def refresh(self) -> str:
        """Fetch the policy now: "installed", "not_modified", "stale", "rejected" or "failed"."""
        core = self._core
        try:
            response = self._client().get(core.policy_url, headers=core.policy_request_headers())
        except Exception as exc:  # network errors, and a client closed under our feet
            return core.policy_failed(exc)
        return core.policy_answered(response.status_code, response.headers, response.content)

    def flush(self, timeout: float = 5.0) -> bool:
        """Upload queued records and the spool now, waiting out backoffs up to ``timeout``.

        Return True when nothing is left in memory or in the spool.
        """
        self._ensure_started()
        return self._flush(timeout, include_spool=True)

    def _flush(self, timeout: float, *, include_spool: bool) -> bool:
        core = self._core
        deadline = self._clock() + max(timeout, 0.0)
        if not self._send_lock.acquire(timeout=max(timeout, 0.0)):
            return False
        try:
            while True:
                self._send_due(deadline, include_spool=include_spool)
                wait = core.flush_wait(self._clock(), deadline, include_spool=include_spool)
                if wait is None:
                    return core.flushed(include_spool=include_spool)
                if wait > 0:
                    self._options.sleep(wait)
        finally:
            self._send_lock.release()

    def _send_due(self, deadline: float | None, *, include_spool: bool = True) -> None:
        """Send every batch that is due now; stop at the first failure (it schedules a retry)."""
        core = self._core
        while send := core.next_send(self._clock(), deadline, self._options.timeout, include_spool=include_spool):
            batch, body, timeout = send
            try:
                response = self._client().post(core.decisions_url, content=body, timeout=timeout, headers=POST_HEADERS)
            except Exception as exc:
                core.send_failed(batch, exc, self._clock())
                return
            if core.sent(batch, response.status_code, response.headers, response.content, self._clock()) == "retry":
                return

    # -- background threads ----------------------------------------------------------------

    def _refresh_loop(self) -> None:
        stop = self._stop
        while not stop.is_set():
            try:
                self.refresh()
            except Exception:
                logger.exception("policy refresh crashed; retrying later")
            if stop.wait(self._core.next_refresh_delay()):
                return

    def _upload_loop(self) -> None:
        core = self._core
        stop, wake = self._stop, self._wake
        while not stop.is_set():
            backoff = core.retry_at - self._clock()
            if backoff > 0:
                # While backing off, a full queue must not wake this loop over and over.
                if stop.wait(backoff):
                    return
            else:
                wake.wait(core.flush_interval)
                wake.clear()
            if stop.is_set():
                return
            with self._send_lock:
                try:
                    self._send_due(None)
                except Exception:
                    core.upload_crashed()
