"""Budgets: the spend thresholds every budget surface uses, and the budget state sent to clients.

May import `metrics.models`, `metrics.rules`, `metrics.rollups`, `metrics.stats` and `routing`.
"""
