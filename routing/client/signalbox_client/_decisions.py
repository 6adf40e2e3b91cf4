"""Decisions and their records: ``decide()`` on the live snapshot, ``next_step()`` for cascade
and fallback, and the decision record (one per attempt) the client uploads."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from signalbox_client.engine import OUTCOMES, Decision, NextStep, Request, Step, decide, next_step

from ._state import CoreState
from ._types import SignalboxNotReady
from ._wire import clamp_confidence, clamp_cost, clamp_tokens, rfc3339, sanitize_attributes, uuid4_str


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


class Decisions(CoreState):
    """The decision part of a client core."""

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
        event_id: str | None = None,
    ) -> dict[str, Any]:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}, not {outcome!r}")
        return {
            "event_id": event_id or uuid4_str(),
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
            "reason": _attempt_reason(reason, decision.reason),
            "outcome": outcome,
            "confidence": clamp_confidence(confidence),
            "tokens_in": clamp_tokens(tokens_in),
            "tokens_out": clamp_tokens(tokens_out),
            "cost_usd": clamp_cost(cost_usd),
            "latency_ms": max(float(latency_ms), 0.0),
            "client": self.client_info,
            "attributes": sanitize_attributes(attributes if attributes is not None else decision.attributes),
        }


def _attempt_reason(reason: Mapping[str, Any] | None, first: Mapping[str, Any]) -> Any:
    """A later attempt's reason (its step's) keeps the decision's split arm, so every attempt of a
    request counts under its arm (escalations, retries, their cost)."""
    if reason is None:
        return first
    out = dict(reason)
    if "split" in first and "split" not in out:
        out["split"] = first["split"]
    return out
