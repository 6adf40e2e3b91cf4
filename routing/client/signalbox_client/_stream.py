"""Streamed responses of ``run_stream()``: the chunks reach the caller unchanged and as they come,
and the attempt that streamed is logged once, when the stream ends, errs, is closed or dropped.

Until its first chunk a streamed attempt is an attempt like any other (a failure falls back or
escalates as the policy says); once a chunk has reached the caller, nothing is retried.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from signalbox_client.engine import OUTCOMES

from ._run import RunState, classify_exception
from ._state import logger
from ._types import Attempt, AttemptRecord

# The attribute a record of a stream that did not run to its end carries: "closed" by the caller
# (close(), leaving its `with` block) or "abandoned" (dropped unread, found by the garbage collector).
STREAM_END_ATTRIBUTE = "stream_end"

UsageOf = Callable[[Any], "tuple[int, int] | None"]
"""Reads (tokens in, tokens out) from a chunk that carries the usage, None from any other."""

END: Any = object()  # the source ended before its first chunk

ClassifyOf = Callable[[BaseException], "str | None"]
"""The outcome of an exception raised while reading chunks, or None for ``classify_exception``'s."""

StreamOptions = tuple["UsageOf | None", "Callable[[Any], bool] | None", "ClassifyOf | None"]


class _StreamLog:
    """The one end of a streamed attempt: the usage seen so far and a guard against a second log."""

    __slots__ = ("_classify", "_ended", "_hide", "_lock", "_usage", "attempt", "state", "tokens")

    def __init__(self, state: RunState, options: StreamOptions) -> None:
        assert state.current is not None
        self.state = state
        self.attempt: Attempt = state.current
        self._usage, self._hide, self._classify = options
        self._lock = threading.Lock()
        self._ended = False
        self.tokens = (0, 0)

    @property
    def ended(self) -> bool:
        return self._ended

    def failed(self, exc: Exception) -> None:
        self.end(classified(self._classify, exc) or classify_exception(exc), exc)

    def passes(self, chunk: Any) -> bool:
        """Read the chunk's usage; True when the caller is to see it."""
        if self._usage is not None:
            try:
                usage = self._usage(chunk)
            except Exception:
                logger.debug("usage() raised on a chunk; ignoring it", exc_info=True)
                usage = None
            if usage is not None:
                self.tokens = usage
        if self._hide is None:
            return True
        try:
            return not self._hide(chunk)
        except Exception:
            return True

    def end(self, outcome: str, exc: BaseException | None = None, *, how: str | None = None) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
        state = self.state
        attributes = None
        if how is not None:
            base = state.attributes if state.attributes is not None else state.decision.attributes
            attributes = {**base, STREAM_END_ATTRIBUTE: how}
        try:
            state.stream_ended(
                outcome, tokens_in=self.tokens[0], tokens_out=self.tokens[1], exc=exc, attributes=attributes
            )
        except Exception:  # never raise into the caller's loop over the chunks
            logger.exception("logging the end of a stream failed")


class _StreamBase:
    __slots__ = ("__weakref__", "_first", "_log", "response")

    def __init__(self, log: _StreamLog, source: Any, first: Any) -> None:
        self._log = log
        self._first = first
        self.response = source  # what the call returned, e.g. the provider SDK's stream object

    @property
    def attempt(self) -> Attempt:
        """The attempt that streamed: its model, provider, tier and why it was picked."""
        return self._log.attempt

    @property
    def model(self) -> str:
        return self._log.attempt.model

    @property
    def request_id(self) -> str:
        return self._log.attempt.request_id

    @property
    def decision(self) -> Any:
        return self._log.state.decision

    @property
    def attempts(self) -> tuple[AttemptRecord, ...]:
        """Every attempt of the run logged so far (the streamed one once the stream has ended)."""
        return tuple(self._log.state.attempts)

    @property
    def finished(self) -> bool:
        """True once the streamed attempt has been logged."""
        return self._log.ended

    def __del__(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None and not log.ended:
            log.end("ok", how="abandoned")


class RunStream(_StreamBase):
    """The chunks of a streamed attempt (``RoutingClient.run_stream()``), passed on unchanged.

    Iterate it, or use it as a context manager; ``close()`` stops early. The attempt is logged
    when the chunks run out (``ok``), when reading one raises (the outcome of the error, which is
    re-raised), or when the stream is closed or dropped unread (``ok``, with the ``stream_end``
    attribute ``closed`` or ``abandoned``), once whichever comes first.
    """

    __slots__ = ("_iterator",)

    def __init__(self, log: _StreamLog, source: Any, iterator: Iterator[Any], first: Any) -> None:
        super().__init__(log, source, first)
        self._iterator = iterator

    def __iter__(self) -> RunStream:
        return self

    def __next__(self) -> Any:
        log = self._log
        while True:
            chunk = self._first
            if chunk is not None:
                self._first = None
            elif log.ended:
                raise StopIteration
            else:
                chunk = END
                try:
                    chunk = next(self._iterator)
                except StopIteration:
                    pass
                except Exception as exc:
                    log.failed(exc)
                    raise
            if chunk is END:
                log.end("ok")
                raise StopIteration
            if log.passes(chunk):
                return chunk

    def close(self) -> None:
        """Stop reading: the attempt is logged (if it was not yet) and the source closed."""
        self._log.end("ok", how="closed")
        close_quietly(self.response)

    def __enter__(self) -> RunStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncRunStream(_StreamBase):
    """``RunStream`` for asyncio (``AsyncRoutingClient.run_stream()``): ``async for`` over it,
    ``async with`` it, ``await stream.close()`` to stop early."""

    __slots__ = ("_iterator",)

    def __init__(self, log: _StreamLog, source: Any, iterator: AsyncIterator[Any], first: Any) -> None:
        super().__init__(log, source, first)
        self._iterator = iterator

    def __aiter__(self) -> AsyncRunStream:
        return self

    async def __anext__(self) -> Any:
        log = self._log
        while True:
            chunk = self._first
            if chunk is not None:
                self._first = None
            elif log.ended:
                raise StopAsyncIteration
            else:
                chunk = END
                try:
                    chunk = await self._iterator.__anext__()
                except StopAsyncIteration:
                    pass
                except Exception as exc:
                    log.failed(exc)
                    raise
            if chunk is END:
                log.end("ok")
                raise StopAsyncIteration
            if log.passes(chunk):
                return chunk

    async def close(self) -> None:
        """Stop reading: the attempt is logged (if it was not yet) and the source closed."""
        self._log.end("ok", how="closed")
        await aclose_quietly(self.response)

    aclose = close

    async def __aenter__(self) -> AsyncRunStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def classified(classify: ClassifyOf | None, exc: BaseException) -> str | None:
    """``classify(exc)``, or None when there is none (or it raised, or named no engine outcome)."""
    if classify is None:
        return None
    try:
        outcome = classify(exc)
    except Exception:
        return None
    return outcome if outcome in OUTCOMES else None


def close_quietly(source: Any) -> None:
    close = getattr(source, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            logger.debug("closing a stream raised", exc_info=True)


async def aclose_quietly(source: Any) -> None:
    close = getattr(source, "aclose", None) or getattr(source, "close", None)
    if callable(close):
        try:
            result = close()
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.debug("closing a stream raised", exc_info=True)


def open_stream(state: RunState, source: Any, options: StreamOptions) -> RunStream:
    """Read the first chunk of ``source``; raise what reading it raised (the attempt failed)."""
    iterator = iter(source)
    try:
        first = next(iterator, END)
    except BaseException:
        close_quietly(source)
        raise
    return RunStream(_StreamLog(state, options), source, iterator, first)


async def aopen_stream(state: RunState, source: Any, options: StreamOptions) -> AsyncRunStream:
    """``open_stream`` for an async iterable."""
    iterator = source.__aiter__()
    try:
        try:
            first = await iterator.__anext__()
        except StopAsyncIteration:
            first = END
    except BaseException:
        await aclose_quietly(source)
        raise
    return AsyncRunStream(_StreamLog(state, options), source, iterator, first)
