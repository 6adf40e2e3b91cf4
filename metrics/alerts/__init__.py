"""Alerts: the detectors judged on rollup windows, the alert lifecycle and delivery through
notification channels. The statistics themselves are pure, in `metrics.stats`.

`windows` (which hours each detector compares), `reads` (the evaluator's two rollup reads),
`detectors/` (one module per detector behind one interface, and the registry), `checks` (the
expectation checks, no Django), `evaluation` (`alerts_evaluate`: every policy, each isolated),
`lifecycle` (open, escalate, acknowledge, resolve, reopen, with their events), `delivery`
(payloads, signing, sending, retries), `channels` (channel writes), `access` (permissions and
actors), `selectors` (reads of alerts) and `apis`.

May import `metrics.rollups`, `metrics.rules`, `metrics.budget`, `metrics.stats`, `metrics.canary`
(its reads, and the guardrail stop the evaluator applies), `metrics.models`, `metrics.shapes`,
`routing` and `controlplane`.
"""
