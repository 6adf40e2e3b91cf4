"""canary_guardrail: each split of the live version with `guardrails`, its arms against the control
over the canary's records (`metrics.canary`): an arm judged worse past a limit is a breach (a
ticket; with `on_breach: "stop"` the evaluator also stops the arm, `metrics.canary.services`)."""

from __future__ import annotations

from metrics.alerts.detectors.base import CanaryView, Context, Detector, Evaluation
from metrics.stats import Evidence, Finding
from metrics.stats.canary import METRIC_ALPHA, guardrail_breaches

WINDOW = "the canary's records (the versions that ran this split) in the last 30 days"


class CanaryGuardrail(Detector):
    name = "canary_guardrail"

    def evaluate(self, context: Context) -> list[Evaluation]:
        return [self._judge(view) for view in context.canaries if view.guardrails]

    def _judge(self, view: CanaryView) -> Evaluation:
        verdict = view.verdict
        breaches = guardrail_breaches(verdict, view.guardrails)
        numbers = {
            "route": view.route,
            "control": verdict.control,
            "versions": list(view.versions),
            "guardrails": dict(view.guardrails),
            "arms": {a.name: {"weight": a.weight, "requests": a.requests} for a in verdict.arms},
            "srm_p_value": verdict.srm.p_value,
            "breaches": [
                {
                    "arm": b.arm,
                    "guardrail": b.guardrail,
                    "limit": b.limit,
                    "metric": b.comparison.metric,
                    "control": b.comparison.control,
                    "value": b.comparison.arm,
                    "difference": b.comparison.difference,
                    "relative": b.comparison.relative,
                    "sequence": list(b.comparison.sequence) if b.comparison.sequence else None,
                }
                for b in breaches
            ],
        }
        test = f"canary verdict: always-valid mixture SPRT sequences, α = {METRIC_ALPHA:g} per metric"
        if breaches:
            status, severity = "alert", "ticket"
            summary = f"route {view.route} canary guardrail breached: " + "; ".join(b.summary for b in breaches)
        elif verdict.blocked:
            status, severity = "insufficient_data", "info"
            summary = f"route {view.route} canary: sample ratio mismatch, no verdict"
        else:
            status, severity = "ok", "info"
            summary = f"route {view.route} canary: every arm within its guardrails"
        finding = Finding(self.name, status, severity, summary, Evidence(test=test, window=WINDOW, numbers=numbers))  # type: ignore[arg-type]
        return Evaluation(self.name, view.route, finding, "guardrails", {"guardrails": status})


DETECTOR = CanaryGuardrail()
