"""Signalbox routing engine: the policy document, its validation contract, and decide().

Pure Python (stdlib, jsonschema, and google-re2 for linear-time regexes); the client SDK and the
server run this same code.
"""

from .decide import decide, next_step
from .errors import DocumentError, PolicyError
from .heuristic import difficulty_score
from .policy import Policy, compile_policy
from .schema import SCHEMA
from .types import OUTCOMES, BudgetFraction, Decision, NextStep, Request, State, Step
from .validation import referenced_models, validate_document

__all__ = [
    "OUTCOMES",
    "SCHEMA",
    "BudgetFraction",
    "Decision",
    "DocumentError",
    "NextStep",
    "Policy",
    "PolicyError",
    "Request",
    "State",
    "Step",
    "compile_policy",
    "decide",
    "difficulty_score",
    "next_step",
    "referenced_models",
    "validate_document",
]
