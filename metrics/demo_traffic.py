"""Realistic decision traffic for the demo policies, made by the real client SDK.

A `RoutingClient` per policy decides with the engine (`decide()` / `next_step()`), and every
attempt of a simulated LLM call is logged with `record()`, exactly as an application does. The
client's uploads go through an in-process httpx transport straight into the ingest service
(`decision_batch_ingest`), in batches of 5,000: the same validation, pricing, storage and rollup
deltas as `POST /api/v1/client/decisions`, without a web server. Timestamps spread over the past
N days with a daily and weekly cycle; each route has its own escalation rate, each provider its
own latency and 429/timeout rates (plus one rate-limit incident), and one route runs over budget
for a few days, so the engine downgrades it.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from metrics.ingest import services as ingest
from routing import live
from routing.models import Policy
from signalbox_client import RoutingClient

# What each demo task type looks like: share of its policy's traffic, prompt/completion tokens
# (median), request features the policy's rules read.
TASKS: dict[str, dict[str, tuple[float, int, int, dict[str, Any]]]] = {
    "support-assistant": {
        "faq": (0.42, 900, 180, {}),
        "troubleshooting": (0.22, 2600, 420, {"needs_tools": True}),
        "billing": (0.12, 1400, 260, {"user_tier": "pro"}),
        "refund": (0.06, 1500, 240, {"text": "I want a refund for my last invoice"}),
        "smalltalk": (0.18, 300, 90, {}),
    },
    "document-pipeline": {
        "extraction": (0.38, 6200, 700, {}),
        "summarization": (0.22, 9000, 500, {"latency_class": "batch"}),
        "classification": (0.28, 1200, 20, {}),
        "translation": (0.12, 1800, 1700, {}),
    },
}
# Share of tier-1 answers a route's confidence check sends up (roughly its expectation band).
ESCALATION = {
    "faq": 0.24,
    "troubleshooting": 0.27,
    "billing": 0.14,
    "general": 0.09,
    "long_context": 0.16,
    "extraction": 0.25,
    "summarization": 0.1,
    "classification": 0.14,
    "translation": 0.2,
}
# Median latency (ms) per provider; larger tiers are slower.
LATENCY_MS = {"openai": 850, "anthropic": 1100, "gemini": 950, "mistral": 500, "deepseek": 1300}
PROVIDER_ERRORS = {"openai": 0.012, "anthropic": 0.01, "gemini": 0.015, "mistral": 0.02, "deepseek": 0.03}
VALIDATION_FAILURE = {"extraction": 0.05, "translation": 0.02}


@dataclass
class TrafficReport:
    decisions: int = 0
    records: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0
    per_policy: dict[str, int] = field(default_factory=dict)


DEMO_TEAMS = ("search", "billing", "onboarding", "risk")
DEMO_TENANTS = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne")


def _diurnal(hour: float) -> float:
    """Relative traffic by UTC hour: a working-day peak around 14:00, a trough at night."""
    return 0.25 + math.exp(-((hour - 14.0) ** 2) / 18.0)


def _transport(key_id: int, policy_ids: frozenset[int], report: TrafficReport) -> httpx.MockTransport:
    """Answer the SDK's requests in process: the policy fetch from the live payload, decision
    uploads through the ingest service."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.startswith("/api/v1/client/policies/"):
            entry = live.live_entry(path.rsplit("/", 1)[-1])
            if entry.body is None:
                return httpx.Response(404, json={"message": "not found", "errors": {}})
            return httpx.Response(200, content=entry.body, headers={"ETag": entry.etag or ""})
        if request.method == "POST" and path == "/api/v1/client/decisions":
            records = orjson.loads(request.content)["decisions"]
            result = ingest.decision_batch_ingest(key_id=key_id, policy_ids=policy_ids, records=records)
            report.accepted += result.accepted
            report.duplicates += result.duplicates
            report.rejected += result.rejected
            return httpx.Response(200, content=orjson.dumps(result.as_body()))
        return httpx.Response(404, json={"message": "not found", "errors": {}})

    return httpx.MockTransport(handle)


def demo_traffic_generate(
    *,
    days: int,
    decisions: int,
    policies: list[Policy],
    key_id: int,
    seed: int = 7,
    now: datetime | None = None,
    progress: Callable[[str], Any] | None = None,
) -> TrafficReport:
    """Generate `decisions` decisions (each one or more attempts) over the past `days` days."""
    rng = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    report = TrafficReport()
    started = time.perf_counter()
    policy_ids = frozenset(p.pk for p in policies)
    transport = _transport(key_id, policy_ids, report)
    day_weights = [(0.45 if (now - timedelta(days=d)).weekday() >= 5 else 1.0) for d in range(days)]
    hour_weights = [_diurnal(h + 0.5) for h in range(24)]
    budget_days = {3, 4, 5} if days > 5 else set()  # troubleshooting runs hot: tier downgrades
    incident_day = min(9, days - 1)  # an OpenAI rate-limit incident: fallbacks all day

    with tempfile.TemporaryDirectory() as cache:
        clients = {
            p.slug: RoutingClient(
                "http://signalbox.internal",
                "in-process",
                p.slug,
                app="demo-traffic",
                cache_dir=cache,
                batch_size=5000,
                queue_size=1_000_000,
                flush_interval=3600,
                start=False,
                transport=transport,
                rng=random.Random(seed),
            )
            for p in policies
        }
        for client in clients.values():
            client.refresh()
        flushed_at = 0
        share = {slug: 0.6 if slug == "support-assistant" else 0.4 for slug in clients}
        total = sum(share.values())
        for slug, client in clients.items():
            tasks = TASKS.get(slug)
            if not tasks:
                continue
            n_policy = round(decisions * share[slug] / total)
            report.per_policy[slug] = n_policy
            names = list(tasks)
            task_weights = [tasks[t][0] for t in names]
            per_day = _split(n_policy, day_weights)
            for day_index in sorted(range(days), reverse=True):  # oldest day first
                day_start = now.replace(hour=0) - timedelta(days=day_index)
                client.set_budget(
                    {"routes": {"troubleshooting": {"daily": 0.93}}} if day_index in budget_days else None
                )
                hours = rng.choices(range(24), weights=hour_weights, k=per_day[day_index])
                for hour, task in zip(hours, rng.choices(names, weights=task_weights, k=len(hours)), strict=True):
                    at = day_start + timedelta(hours=hour, seconds=rng.random() * 3600)
                    if at > now:
                        at -= timedelta(days=1)
                    _one_request(
                        client,
                        rng,
                        task,
                        tasks[task],
                        at.timestamp(),
                        incident=(day_index == incident_day),
                        report=report,
                    )
                    if report.records - flushed_at >= 5000:
                        client.flush(timeout=60)
                        flushed_at = report.records
                if progress:
                    progress(f"{slug}: day -{day_index} done ({report.records:,} records so far)")
            client.flush(timeout=120)
            client.close(timeout=10)
    report.seconds = time.perf_counter() - started
    return report


def _split(n: int, weights: list[float]) -> list[int]:
    total = sum(weights)
    parts = [int(n * w / total) for w in weights]
    parts[0] += n - sum(parts)
    return parts


def _one_request(
    client: RoutingClient,
    rng: random.Random,
    task: str,
    shape: tuple[float, int, int, dict[str, Any]],
    started_at: float,
    *,
    incident: bool,
    report: TrafficReport,
) -> None:
    """One user request: decide, then call / record / next_step until the engine says stop."""
    _, tokens_in_median, tokens_out_median, features = shape
    prompt_tokens = max(20, int(rng.lognormvariate(math.log(tokens_in_median), 0.5)))
    fields = dict(features)
    if rng.random() < 0.05:
        fields["needs_vision"] = True
    if rng.random() < 0.01:
        fields["context_tokens"] = 150_000
    decision = client.decide(
        task,
        # A request id per request: the demo canary's split (document-pipeline, classification)
        # hashes it, so a tenth of those requests reach the canary arm.
        request_id=f"demo-{report.decisions:09d}",
        prompt_tokens=prompt_tokens,
        user_tier=fields.pop("user_tier", rng.choice(("free", "pro", "enterprise"))),
        **fields,
    )
    report.decisions += 1
    # The demo's declared dimensions (team, tenant), drawn from the request count, not from `rng`,
    # so the rest of the traffic is the same with or without them.
    attributes = {
        "team": DEMO_TEAMS[(report.decisions * 7) % len(DEMO_TEAMS)],
        "tenant": DEMO_TENANTS[(report.decisions * 13) % len(DEMO_TENANTS) % (1 + report.decisions % 7)],
    }
    step = None
    attempt = 1
    elapsed = 0.0
    at = started_at
    while True:
        current = step.step if step is not None else decision.step
        outcome, confidence, latency = _simulate(
            rng, decision.route, task, current.provider, current.tier, decision.min_confidence, incident
        )
        tokens_out = (
            0
            if outcome in ("timeout", "rate_limited", "error")
            else max(1, int(rng.lognormvariate(math.log(tokens_out_median), 0.6)))
        )
        client.record(
            decision,
            outcome=outcome,
            latency_ms=latency,
            attempt=attempt,
            step=step,
            confidence=confidence,
            tokens_in=prompt_tokens,
            tokens_out=tokens_out,
            started_at=at,
            attributes=attributes,
        )
        report.records += 1
        elapsed += latency
        at += latency / 1000.0
        step = client.next_step(
            decision, attempt=attempt, outcome=outcome, confidence=confidence, elapsed_ms=elapsed, current=current
        )
        if step is None:
            return
        attempt += 1


def _simulate(
    rng: random.Random, route: str, task: str, provider: str, tier: int, min_confidence: float | None, incident: bool
) -> tuple[str, float | None, float]:
    """Outcome, confidence and latency of one simulated LLM call."""
    latency = rng.lognormvariate(math.log(LATENCY_MS.get(provider, 900) * (1 + 0.8 * (tier - 1))), 0.45)
    error_rate = PROVIDER_ERRORS.get(provider, 0.02) + (0.3 if incident and provider == "openai" else 0.0)
    draw = rng.random()
    if draw < error_rate * 0.6:
        return "rate_limited", None, min(latency, 300.0)
    if draw < error_rate * 0.9:
        return "timeout", None, 30_000.0
    if draw < error_rate:
        return "error", None, min(latency, 800.0)
    if rng.random() < VALIDATION_FAILURE.get(task, 0.0) / tier:
        return "validation_failed", None, latency
    threshold = min_confidence if min_confidence is not None else 0.7
    low = ESCALATION.get(route, 0.15) / (2.5 if tier > 1 else 1.0)
    if rng.random() < low:
        return "low_confidence", round(rng.uniform(0.2, max(0.21, threshold - 0.01)), 3), latency
    return "ok", round(rng.uniform(threshold, 0.99), 3), latency
