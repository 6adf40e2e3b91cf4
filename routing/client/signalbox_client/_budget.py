"""Budget state for decisions: the protocol's ``budget`` object checked, the server's
``Signalbox-Budget`` feed (header or policy body) with its expiry, and the app's own override from
``set_budget()``. Each change swaps in a snapshot that carries the effective state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from signalbox_client.engine import State

from . import protocol
from ._state import CoreState, Snapshot, logger
from ._wire import loads_json

BUDGET_HEADER = protocol.BUDGET_HEADER.lower()  # the server's budget state, on every 200 and 304 of the policy GET
BUDGET_STATE_MAX_AGE = 600.0  # seconds a server budget state is used without being sent again
MAX_BUDGET_HEADER = protocol.MAX_BUDGET_HEADER_BYTES


def _fraction(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _budget_dict(budget: Any) -> dict[str, Any]:
    """The protocol's ``budget`` object checked and trimmed to what ``State.from_dict`` reads.

    Raises ValueError for a wrong type anywhere: the engine compares these numbers in every
    ``decide()``, so a string that got through would make each decision raise. Unknown keys are
    dropped (the protocol may add fields).
    """
    if not isinstance(budget, Mapping):
        raise ValueError("budget is not an object")

    def spend(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} is not an object")
        out = {k: value.get(k) for k in ("daily", "monthly")}
        if not all(_fraction(v) for v in out.values()):
            raise ValueError(f"{where}: daily and monthly must be numbers or null")
        return out

    policy, routes, dimensions = budget.get("policy"), budget.get("routes"), budget.get("dimensions")
    if routes is not None and not isinstance(routes, Mapping):
        raise ValueError("budget.routes is not an object")
    if dimensions is not None and not isinstance(dimensions, Mapping):
        raise ValueError("budget.dimensions is not an object")
    out: dict[str, Any] = {
        "policy": spend(policy, "budget.policy") if policy is not None else None,
        "routes": {str(name): spend(value, f"budget.routes.{name}") for name, value in (routes or {}).items()},
    }
    if dimensions:
        per_key: dict[str, Any] = {}
        for key, values in dimensions.items():
            if not isinstance(values, Mapping):
                raise ValueError(f"budget.dimensions.{key} is not an object")
            per_key[str(key)] = {
                str(value): spend(f, f"budget.dimensions.{key}.{value}") for value, f in values.items()
            }
        out["dimensions"] = per_key
    return out


class BudgetState(CoreState):
    """The budget part of a client core."""

    budget_max_age: float
    _feed: State | None
    _feed_at: float
    _feed_header: str | None
    _override: State | None
    _override_set: bool

    def _init_budget(self) -> None:
        # Budget state: the server's feed (header, or a body's "budget"), with the clock() time it
        # was last sent, and the app's own from set_budget(), which takes precedence while set.
        self.budget_max_age = BUDGET_STATE_MAX_AGE
        self._feed = None
        self._feed_at = 0.0
        self._feed_header = None
        self._override = None
        self._override_set = False

    def _parse_budget(self, budget: Any) -> State | None:
        """The engine State of a protocol ``budget`` object; None (and a warning) when malformed."""
        try:
            return State.from_dict(_budget_dict(budget))
        except Exception as exc:
            self.warn_once(("budget", type(exc)), "ignoring malformed budget state: %s", exc)
            return None

    def _effective_state(self) -> State | None:
        """The app's budget while it set one, else the server's; callers hold ``_policy_lock``."""
        return self._override if self._override_set else self._feed

    def _publish_state(self) -> None:
        """Swap in a snapshot carrying the effective budget state; callers hold ``_policy_lock``."""
        current = self.snapshot
        state = self._effective_state()
        if current is not None and current.state is not state:
            self.snapshot = Snapshot(
                current.compiled, current.version, current.etag, state, current.body, current.source
            )

    def set_budget(self, budget: Mapping[str, Any] | None) -> None:
        """Set the budget state decisions use (the protocol's ``budget`` object), over the server's.

        ``None`` hands the budget back to the server's ``Signalbox-Budget`` feed; ``{}`` means no
        spend known (no downgrade) whatever the server says. A malformed object is ignored with a
        warning and the previous state kept.
        """
        with self._policy_lock:
            if budget is None:
                self._override, self._override_set = None, False
            else:
                state = self._parse_budget(budget)
                if state is None:
                    return
                self._override, self._override_set = state, True
            self._publish_state()

    def _budget_answered(self, headers: Mapping[str, str]) -> None:
        """Apply the ``Signalbox-Budget`` header of a 200 or 304; never raises.

        An absent or malformed header keeps the last state until it is ``budget_max_age`` old.
        """
        try:
            value = headers.get(BUDGET_HEADER)
        except Exception:
            value = None
        if isinstance(value, str) and value:
            with self._policy_lock:
                if value == self._feed_header:
                    self._feed_at = self.clock()
                    return
            state = None
            if len(value) > MAX_BUDGET_HEADER:
                self.warn_once("budget-header-size", "ignoring a budget state header over %d bytes", MAX_BUDGET_HEADER)
            else:
                try:
                    data = loads_json(value)
                except ValueError as exc:
                    self.warn_once(("budget", ValueError), "ignoring malformed budget state: %s", exc)
                else:
                    state = self._parse_budget(data)
            if state is not None:
                with self._policy_lock:
                    self._feed, self._feed_at, self._feed_header = state, self.clock(), value
                    self._publish_state()
                return
        self._budget_expire()

    def _budget_expire(self) -> None:
        """Drop the server's budget state once it was not sent for ``budget_max_age`` seconds."""
        with self._policy_lock:
            if self._feed is None or self.clock() - self._feed_at <= self.budget_max_age:
                return
            self._feed, self._feed_header = None, None
            self._publish_state()
        logger.info("policy %s: budget state not sent for %.0f s, dropped", self.slug, self.budget_max_age)
