"""Public value types and errors of the client SDK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class SignalboxError(Exception):
    """Base class of the errors the SDK itself raises."""


class SignalboxNotReady(SignalboxError):
    """No policy document is loaded yet: no cache, no bootstrap file, and no answer from the server.

    Raised only by ``decide()`` and ``run()``; ``wait_until_ready()`` waits for a document instead.
    """


class ProviderError(Exception):
    """An LLM call failure the caller has already classified into one of the engine's outcomes.

    Raise it from the ``call`` given to ``run()`` when the exception type alone would not tell the
    SDK what happened (for example a provider SDK's own rate-limit error)::

        raise ProviderError("rate_limited", "openai said slow down") from exc
    """

    def __init__(self, outcome: str, message: str = "") -> None:
        super().__init__(message or outcome)
        self.outcome = outcome


@dataclass(frozen=True, slots=True)
class CallResult:
    """What the ``call`` given to ``run()`` may return instead of the bare response."""

    response: Any
    confidence: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a ``run()``, handed to the caller's ``call``: which model to call, and why."""

    model: str
    provider: str
    tier: int
    attempt: int
    kind: str  # "initial" | "fallback" | "escalate"
    route: str
    request_id: str
    reason: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What happened in one attempt of a ``run()``."""

    attempt: int
    model: str
    provider: str
    tier: int
    kind: str
    outcome: str
    confidence: float | None
    latency_ms: float
    event_id: str
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of ``run()``: the response kept, the first decision and every attempt."""

    response: Any
    decision: Any
    attempts: tuple[AttemptRecord, ...]
    final_outcome: str
    request_id: str

    @property
    def model(self) -> str:
        """The model of the last attempt."""
        return self.attempts[-1].model


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters of one client since it started (see ``docs/client.md`` for each one)."""

    decisions: int = 0
    recorded: int = 0
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    retried: int = 0
    spooled: int = 0
    spool_bytes: int = 0
    dropped: int = 0
    queued: int = 0
    refresh_ok: int = 0
    refresh_not_modified: int = 0
    refresh_failures: int = 0
    refresh_stale: int = 0
    policy_rejected: int = 0
    policy_version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}
