"""What-if: replaying a draft policy document over the traffic the rollups recorded (`replay`),
and its API (`apis`). docs/whatif.md describes the model.

May import `metrics.rollups`, `metrics.rules`, `metrics.ingest.pricing`, `metrics.models`,
`metrics.shapes`, `routing` and the engine.
"""
