"""Errors the engine reports about a policy document."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DocumentError:
    """One problem in a policy document.

    ``path`` is dotted, list indexes as numbers (``routes.extraction.tiers.1.model``);
    the document root is ``""`` and renders as ``(root)``.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(root)'}: {self.message}"


class PolicyError(ValueError):
    """Raised by compile_policy() when a document is invalid; ``errors`` lists every problem."""

    def __init__(self, errors: list[DocumentError]) -> None:
        self.errors = list(errors)
        head = "; ".join(str(e) for e in self.errors[:3])
        more = f" (and {len(self.errors) - 3} more)" if len(self.errors) > 3 else ""
        super().__init__(f"invalid policy document: {head}{more}")
