"""What-if: replaying a draft policy document over the traffic the rollups recorded. `core` is the
pure replay math (no Django) and `results` what it returns; `replay` reads the rollups, prices and
documents around it; `apis` is its endpoint. docs/whatif.md describes the model.

May import `metrics.rollups`, `metrics.rules`, `metrics.ingest.pricing`, `metrics.models`,
`metrics.shapes`, `routing` and the engine; `core` and `results` import only the engine,
`metrics.schema` and `metrics.rules`.
"""
