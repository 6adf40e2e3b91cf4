"""AsyncRoutingClient: the asyncio shell around :class:`ClientCore`."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from signalbox_client.engine import Request

from ._base import DEFAULT_SPOOL_MAX_BYTES, ClientBase
from ._core import ClientOptions
from ._stream import AsyncRunStream, ClassifyOf, UsageOf, aopen_stream, classified
from ._types import Attempt, RunResult
from ._wire import POST_HEADERS

logger = logging.getLogger("signalbox.client")


class AsyncRoutingClient(ClientBase):
    """The Signalbox client for asyncio code; the same surface as ``RoutingClient``.

    ``decide()`` and ``record()`` are plain methods (they never wait); ``run()``, ``refresh()``,
    ``flush()``, ``wait_until_ready()`` and ``close()`` are coroutines. Background refresh and
    upload run as tasks of the event loop the client is first used in (created at construction
    when a loop is running, else on first use). Use the client from that loop's thread only.
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
        transport: httpx.AsyncBaseTransport | None = None,
        start: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        # locals() first, before anything else is bound: it is exactly the arguments.
        super().__init__(ClientOptions.from_arguments(locals()))
        self._init_tasks()
        if start:
            self._ensure_started()

    def _init_tasks(self) -> None:
        self._http: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._ready: asyncio.Event | None = None
        self._send_lock: asyncio.Lock | None = None
        self._start_pending = self._options.start and not self._closed

    # -- lifecycle -------------------------------------------------------------------------

    def _bind(self) -> None:
        """Bind the loop-owned primitives to the running loop (once)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._ready = asyncio.Event()
            self._send_lock = asyncio.Lock()
            if self._core.snapshot is not None:
                self._ready.set()

    def start(self) -> None:
        """Start the background tasks in the running event loop (idempotent)."""
        if self._tasks or self._closed:
            return
        self._bind()
        self._start_pending = False
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._refresh_loop(), name="signalbox-refresh"),
            loop.create_task(self._upload_loop(), name="signalbox-upload"),
        ]

    def _ensure_started(self) -> None:
        if self._start_pending:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop yet: start on first use inside one
            self.start()

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        self._init_tasks()

    async def close(self, timeout: float = 5.0) -> None:
        """Stop the tasks, upload what is queued within ``timeout`` seconds, spool the rest."""
        if self._closed:
            return
        self._closed = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        # A send cancelled mid-flight goes back in line; event ids make a second send harmless.
        self._core.requeue_inflight()
        if self._loop is not None or self._core.queue or self._core.pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush(timeout, include_spool=False), timeout=max(timeout, 0.0))
        await asyncio.to_thread(self._core.drain_to_spool)
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        self._unregister()

    aclose = close

    async def __aenter__(self) -> AsyncRoutingClient:
        self._ensure_started()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Wait until a policy document is loaded. Return False if ``timeout`` passed first."""
        if self._core.snapshot is not None:
            return True
        self._bind()
        self._ensure_started()
        assert self._ready is not None
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return self._core.snapshot is not None
        return True

    def _wake_sender(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def run(
        self,
        task_type: str | Request,
        call: Callable[[Attempt], Any],
        *,
        validate: Callable[[Any], bool] | None = None,
        request: Request | None = None,
        attributes: Mapping[str, Any] | None = None,
        **request_fields: Any,
    ) -> RunResult:
        """Decide, await ``call(attempt)``, and escalate or fall back as the policy says.

        ``call`` may be a coroutine function or a plain function. Every attempt is logged. When no
        attempt returned a response, the last exception raised by ``call`` is re-raised.
        """
        self._ensure_started()
        state = self._core.start_run(task_type, request, request_fields, validate, attributes, self._enqueue)
        while state.current is not None:
            state.begin()
            try:
                value = call(state.current)
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                state.raised(exc)
            else:
                state.returned(value)
        return state.finish()

    async def run_stream(
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
    ) -> AsyncRunStream:
        """``RoutingClient.run_stream()`` for asyncio: ``call`` returns an async iterable of
        chunks, or an awaitable of one."""
        self._ensure_started()
        state = self._core.start_run(task_type, request, request_fields, None, attributes, self._enqueue)
        while state.current is not None:
            state.begin()
            try:
                source = call(state.current)
                if inspect.isawaitable(source):
                    source = await source
                return await aopen_stream(state, source, (usage, hide, classify))
            except Exception as exc:
                state.raised(exc, classified(classify, exc))
        state.finish()  # raises the last attempt's exception
        raise AssertionError("unreachable: a run without a stream has an exception")

    # -- network ---------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=self._options.transport, timeout=self._options.timeout, headers=self._core.headers
            )
        return self._http

    async def refresh(self) -> str:
        """Fetch the policy now: "installed", "not_modified", "stale", "rejected" or "failed"."""
        self._bind()
        core = self._core
        try:
            response = await self._client().get(core.policy_url, headers=core.policy_request_headers())
        except Exception as exc:
            return core.policy_failed(exc)
        if response.status_code == 200:
            # Compiling and writing the cache file stay off the event loop.
            result = await asyncio.to_thread(
                core.policy_answered, response.status_code, response.headers, response.content
            )
        else:
            result = core.policy_answered(response.status_code, response.headers, response.content)
        if core.snapshot is not None and self._ready is not None:
            self._ready.set()
        return result

    async def flush(self, timeout: float = 5.0) -> bool:
        """Upload queued records and the spool now, waiting out backoffs up to ``timeout``.

        Return True when nothing is left in memory or in the spool.
        """
        self._bind()
        self._ensure_started()
        return await self._flush(timeout, include_spool=True)

    async def _flush(self, timeout: float, *, include_spool: bool) -> bool:
        self._bind()
        assert self._send_lock is not None
        core = self._core
        deadline = self._clock() + max(timeout, 0.0)
        async with self._send_lock:
            while True:
                await self._send_due(deadline, include_spool=include_spool)
                wait = core.flush_wait(self._clock(), deadline, include_spool=include_spool)
                if wait is None:
                    return core.flushed(include_spool=include_spool)
                if wait > 0:
                    await self._options.sleep(wait)

    async def _send_due(self, deadline: float | None, *, include_spool: bool = True) -> None:
        """Send every batch that is due now; stop at the first failure (it schedules a retry)."""
        core = self._core
        while send := core.next_send(self._clock(), deadline, self._options.timeout, include_spool=include_spool):
            batch, body, timeout = send
            try:
                response = await self._client().post(
                    core.decisions_url, content=body, timeout=timeout, headers=POST_HEADERS
                )
            except Exception as exc:
                core.send_failed(batch, exc, self._clock())
                return
            if core.sent(batch, response.status_code, response.headers, response.content, self._clock()) == "retry":
                return

    # -- background tasks ------------------------------------------------------------------

    async def _refresh_loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                logger.exception("policy refresh crashed; retrying later")
            await asyncio.sleep(self._core.next_refresh_delay())

    async def _upload_loop(self) -> None:
        core = self._core
        assert self._wake is not None
        assert self._send_lock is not None
        wake = self._wake
        while True:
            backoff = core.retry_at - self._clock()
            if backoff > 0:
                await asyncio.sleep(backoff)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), core.flush_interval)
                wake.clear()
            async with self._send_lock:
                try:
                    await self._send_due(None)
                except Exception:
                    core.upload_crashed()
