"""Page-level additions to the Content-Security-Policy (controlplane/settings.py holds the policy)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

# The admin's JSON editor (jsoneditor) validates against the policy schema with Ajv, which compiles
# each schema into a function (eval). Only the policy page needs it; every other page keeps
# script-src 'self' alone. 'unsafe-eval' lets a script already on the page evaluate strings; it
# does not let markup injected into the page run, which is what script-src without
# 'unsafe-inline' guards against.
JSON_EDITOR = {"script-src": ["'unsafe-eval'"]}


def allow_json_editor(view: Callable[..., Any]) -> Callable[..., Any]:
    """Add JSON_EDITOR to the policy of the view's responses (enforced and report-only alike)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        response = view(*args, **kwargs)
        response._csp_update = JSON_EDITOR
        response._csp_update_ro = JSON_EDITOR
        return response

    return wrapped
