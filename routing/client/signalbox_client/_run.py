"""``run()`` without the call itself: the attempt loop (outcome of each attempt, its record,
cascade and fallback through ``next_step()``), and the mapping of a caller's exception to an
outcome. The shells make the calls, sync or async."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from signalbox_client.engine import OUTCOMES, Step

from ._decisions import ClientDecision, Decisions
from ._state import logger
from ._types import Attempt, AttemptRecord, CallResult, ProviderError, RunResult
from ._wire import clamp_confidence

MAX_ATTEMPTS = 16  # a guard against a policy that never stops; next_step() normally ends far sooner


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
        return outcome_of_status(status)
    return "error"


def outcome_of_status(status: int) -> str:
    """The outcome of a failed LLM call by its HTTP status: 429 is rate limited, 408 and 504 a
    timeout, anything else an error."""
    if status == 429:
        return "rate_limited"
    if status in (408, 504):
        return "timeout"
    return "error"


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
        core: Decisions,
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
            level = clamp_confidence(confidence)
            if threshold is not None and level is not None and level < threshold:
                outcome = "low_confidence"
        self.response = response
        self.last_exception = None
        self._finish_attempt(outcome, latency_ms, confidence, extra, None)

    def raised(self, exc: Exception, outcome: str | None = None) -> None:
        """The attempt raised ``exc``: its outcome is ``outcome``, else ``classify_exception``'s."""
        latency_ms = (time.perf_counter() - self._perf_started) * 1000.0
        self.last_exception = exc
        self._finish_attempt(outcome or classify_exception(exc), latency_ms, None, (0, 0, None), exc)

    def stream_ended(
        self,
        outcome: str,
        *,
        tokens_in: int = 0,
        tokens_out: int = 0,
        exc: BaseException | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """Log the current attempt, a stream that started, as the run's last one: once a chunk has
        reached the caller there is no fallback or escalation (``run_stream()``)."""
        latency_ms = (time.perf_counter() - self._perf_started) * 1000.0
        if exc is not None:
            self.last_exception = exc
        self._finish_attempt(outcome, latency_ms, None, (tokens_in, tokens_out, None), exc, attributes, last=True)

    def _finish_attempt(
        self,
        outcome: str,
        latency_ms: float,
        confidence: Any,
        extra: tuple[Any, Any, Any],
        exc: BaseException | None,
        attributes: Mapping[str, Any] | None = None,
        *,
        last: bool = False,
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
            attributes=attributes if attributes is not None else self.attributes,
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
        if last or attempt.attempt >= MAX_ATTEMPTS:
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
