"""decide(): which model serves a request; next_step(): what to try after an attempt."""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any, Literal

from signalbox_client.protocol import dimension_value_text

from .heuristic import difficulty_score
from .policy import Policy, guard_reason, guarded_plan
from .types import OUTCOMES, PROVIDER_ERRORS, Decision, NextStep, Request, State, Step

MAX_ATTEMPTS = 32
_NO_FRACTIONS: dict[str, Any] = {}


def decide(policy: Policy, request: Request, state: State | None = None) -> Decision:
    """Pick the route, tier and model for a request, with its cascade, fallbacks and reason.

    Order: rules (first match) -> task_types -> default_route; the route's split; start tier
    (rule tier, else score tier, else start_tier); budget downgrade; capability guard.
    """
    # 1. Route.
    rule = None
    for r in policy.rules:
        if r.predicate(request):
            rule = r
            break
    if rule is not None:
        name = rule.route
        reason: dict[str, Any] = {"route_by": "rule", "rule": rule.id}
    else:
        found = policy.task_types.get(request.task_type)
        if found is None:
            name = policy.default_route
            reason = {"route_by": "default"}
        else:
            name = found
            reason = {"route_by": "task_type"}
    route = policy.routes[name]

    # 2. Split.
    arm_model = None
    split = route.split
    if split is not None:
        arm, b = split.pick(request)
        split_reason: dict[str, Any] = {"arm": arm.name, "bucket": b}
        if b is None:
            split_reason["missing_key"] = split.key
        if arm.route is not None and arm.route != name:
            split_reason["from_route"] = name
            route = policy.routes[arm.route]
        arm_model = arm.model
        reason["split"] = split_reason

    # 3. Start tier.
    n = len(route.tiers)
    if rule is not None and rule.tier is not None:
        tier = rule.tier if rule.tier <= n else n
        reason["tier_by"] = "rule"
    elif route.thresholds is not None:
        source = route.score_source
        score = request.score
        if score is not None and (score != score or isinstance(score, bool)):
            score = None  # NaN or a boolean is no score
        if source == "heuristic" or (source == "auto" and score is None):
            score = difficulty_score(request)
            score_source = "heuristic"
        else:
            score_source = "client"
        if score is None:
            tier = route.start_tier
            reason["tier_by"] = "start"
        else:
            score = 0.0 if score < 0 else 1.0 if score > 1 else score
            tier = bisect_right(route.thresholds, score) + 1
            reason["tier_by"] = "score"
            reason["score"] = score
            reason["score_source"] = score_source
            reason["thresholds"] = list(route.thresholds)
    else:
        tier = route.start_tier
        reason["tier_by"] = "start"

    # 4. Budget.
    if state is not None:
        hit = None
        rb = route.budget
        if rb is not None:
            bf = state.routes.get(route.name)
            if bf is not None:
                f = bf.fraction
                if f is not None and f >= rb.downgrade_at:
                    hit = ("route", f, rb.downgrade_at)
        dim_hit = None
        if hit is None and policy.dimension_budgets:
            dim_hit = _dimension_hit(policy, request, state)
            if dim_hit is not None:
                hit = ("dimension", dim_hit[2], dim_hit[3])
        pb = policy.budget
        if hit is None and pb is not None and state.policy is not None:
            f = state.policy.fraction
            if f is not None and f >= pb.downgrade_at:
                hit = ("policy", f, pb.downgrade_at)
        if hit is not None:
            budget: dict[str, Any] = {"scope": hit[0], "fraction": hit[1], "downgrade_at": hit[2]}
            if dim_hit is not None:
                budget["dimension"] = dim_hit[0]
                budget["value"] = dim_hit[1]
            if route.critical:
                budget["exempt"] = "critical_route"
            elif request.critical:
                budget["exempt"] = "critical_request"
            elif tier == 1:
                budget["exempt"] = "lowest_tier"
            else:
                budget["from_tier"] = tier
                budget["to_tier"] = tier - 1
                tier -= 1
            reason["budget"] = budget

    # 5. Capability guard; the shared plan when every model of the route fits.
    ctx = request.context_tokens
    if ctx is None:
        ctx = request.prompt_tokens
    mcw = route.min_context_window
    if (
        (mcw is None or ctx <= mcw)
        and not (request.needs_vision and route.any_without_vision)
        and not (request.needs_tools and route.any_without_tools)
    ):
        plan = route.plans[(tier, arm_model.id if arm_model is not None else None)]
    else:
        plan, skipped, no_fit = guarded_plan(route, tier, arm_model, ctx, request.needs_vision, request.needs_tools)
        if skipped:
            reason["capability_guard"] = guard_reason(skipped, ctx)
        if no_fit:
            reason["no_fit"] = True
    return Decision(plan, reason)


def _dimension_hit(policy: Policy, request: Request, state: State) -> tuple[str, str, float, float] | None:
    """(dimension, value, fraction, downgrade_at) of the first budgeted value of the request's
    attributes (the document's order) whose fraction reached its downgrade_at; else None."""
    attributes = request.attributes
    if not attributes:
        return None
    for dims in policy.dimension_budgets:
        raw = attributes.get(dims.key)
        if raw is None:
            continue
        if type(raw) is str:
            value = raw
        elif isinstance(raw, int) or (isinstance(raw, float) and math.isfinite(raw)):  # bool is an int
            value = dimension_value_text(raw)
        else:  # what the SDK's record carries for it (its text), never an error
            value = str(raw)
        budget = dims.values.get(value)
        if budget is None:
            continue
        bf = state.dimensions.get(dims.key, _NO_FRACTIONS).get(value)
        if bf is not None:
            f = bf.fraction
            if f is not None and f >= budget.downgrade_at:
                return dims.key, value, f, budget.downgrade_at
    return None


def next_step(
    policy: Policy,
    decision: Decision,
    *,
    attempt: int,
    outcome: str,
    confidence: float | None,
    elapsed_ms: float,
    current: Step | None = None,
) -> NextStep | None:
    """What to try after attempt number ``attempt`` ended with ``outcome``; None = stop.

    ``current`` is the step that produced the outcome (default: the decision's first step; pass
    the previous NextStep.step after a fallback or escalation). Provider errors listed in
    fallback_on move to the next fallback of the same tier; low confidence (confidence below
    min_confidence, or outcome low_confidence when no confidence is given) and validation_failed
    (when enabled) escalate to the next cascade step. A step whose tier's expected_latency_ms
    would take elapsed_ms past latency_budget_ms is not started.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {sorted(OUTCOMES)}")
    if attempt >= MAX_ATTEMPTS:
        return None
    plan = decision.plan
    if current is None:
        current = Step(plan.tier, plan.model, plan.provider)

    # Where the current step sits: level 0 is the decision's tier, level k is cascade[k-1].
    if current.tier == plan.tier:
        level = 0
        chain = (Step(plan.tier, plan.model, plan.provider), *plan.fallbacks)
    else:
        for k, step in enumerate(plan.cascade):
            if step.tier == current.tier:
                level = k + 1
                chain = (step, *plan.cascade_fallbacks[k])
                break
        else:
            return None
    position = len(chain) - 1
    for i, step in enumerate(chain):
        if step.model == current.model:
            position = i
            break

    base: dict[str, Any] = {
        "trigger": outcome,
        "attempt": attempt + 1,
        "from": {"tier": current.tier, "model": current.model},
    }
    if outcome in PROVIDER_ERRORS:
        if outcome not in plan.fallback_on or position + 1 >= len(chain):
            return None
        target = chain[position + 1]
        kind: Literal["fallback", "escalate"] = "fallback"
    else:
        min_conf = plan.min_confidence
        if outcome == "validation_failed":
            escalate = plan.escalate_on_validation_failure
        elif confidence is not None and confidence == confidence:
            escalate = min_conf is not None and confidence < min_conf
            if escalate:
                base["trigger"] = "low_confidence"
                base["confidence"] = confidence
                base["min_confidence"] = min_conf
        else:
            escalate = outcome == "low_confidence" and min_conf is not None
        if not escalate or level >= len(plan.cascade) or level >= plan.max_depth:
            return None
        target = plan.cascade[level]
        kind = "escalate"
        base["depth"] = level + 1

    budget = plan.latency_budget_ms
    if budget is not None:
        route = policy.routes.get(plan.route)
        expected = 0.0
        if route is not None and 1 <= target.tier <= len(route.tiers):
            expected = route.tiers[target.tier - 1].expected_latency_ms or 0.0
        if elapsed_ms + expected > budget:
            return None
    return NextStep(kind, target, base)
