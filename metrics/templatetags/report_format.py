"""Formats of the monthly report: a metric by its unit, its change, and whether the change is good."""

from __future__ import annotations

from typing import Any

from django import template

from metrics.templatetags.dashboard_format import DASH, ms, num, pct, pp, signed_num, signed_pct, signed_usd, usd

register = template.Library()

# Which way is better for each compared metric (None: neither, e.g. traffic).
BETTER: dict[str, str | None] = {
    "cost_usd": "down",
    "requests": None,
    "cost_per_request_usd": "down",
    "escalation_rate": "down",
    "tier_1_to_2_rate": None,
    "tier_2_to_3_rate": None,
    "pass_rate": "up",
    "p95_ms": "down",
    "unpriced": "down",
}


@register.filter
def metric(value: Any, unit: str) -> str:
    """A metric's value in its unit: usd, usd_per_request, count, rate or ms."""
    if unit == "usd":
        return usd(value)
    if unit == "usd_per_request":
        return usd(value, 4)
    if unit == "rate":
        return pct(value)
    if unit == "ms":
        return ms(value)
    return num(value)


@register.filter
def metric_change(delta: dict[str, Any], unit: str) -> str:
    """The change of a metric: signed in its unit, rates in percentage points, plus the relative
    change for amounts ("new" when there was nothing before)."""
    change = delta.get("change")
    if change is None:
        return DASH if delta.get("current") is None else "new"
    if unit == "rate":
        return pp(change)
    if unit == "usd":
        text = signed_usd(change)
    elif unit == "usd_per_request":
        text = f"+${change:,.4f}" if change >= 0 else f"-${abs(change):,.4f}"
    elif unit == "ms":
        text = f"{change:+,.0f} ms"
    else:
        text = signed_num(change)
    if delta.get("previous"):
        return f"{text} ({signed_pct(delta.get('change_pct'))})"
    return text if change == 0 else f"{text} (new)"


@register.filter
def change_class(delta: dict[str, Any], key: str) -> str:
    """CSS class of a change: "better", "worse" or "" (no change, or no better direction)."""
    change, better = delta.get("change"), BETTER.get(key)
    if not change or better is None:
        return ""
    return "better" if (change < 0) == (better == "down") else "worse"


@register.filter
def get(mapping: Any, key: str) -> Any:
    """mapping[key] in a template (None when absent)."""
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def when(value: Any) -> str:
    """An ISO timestamp (UTC) as "2025-03-05 09:00 UTC"."""
    if not value:
        return DASH
    text = str(value)
    return f"{text[:10]} {text[11:16]} UTC" if len(text) >= 16 else text
