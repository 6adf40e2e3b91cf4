"""Number formats the dashboards and reports share: dollars, percentages, milliseconds."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()
DASH = "—"


@register.filter
def usd(value: Any, digits: int = 2) -> str:
    """$1,234.56; small amounts (cost per request) keep 4 decimals."""
    if value is None or value == "":
        return DASH
    v = float(value)
    if 0 < abs(v) < 0.1 and int(digits) <= 2:
        return f"${v:,.4f}"
    return f"-${abs(v):,.{int(digits)}f}" if v < 0 else f"${v:,.{int(digits)}f}"


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    if value is None or value == "":
        return DASH
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def pp(value: Any) -> str:
    """A change of a rate in percentage points, signed."""
    if value is None or value == "":
        return DASH
    return f"{float(value) * 100:+.1f} pp"


@register.filter
def signed_usd(value: Any) -> str:
    if value is None:
        return DASH
    v = float(value)
    return f"+${v:,.2f}" if v >= 0 else f"-${abs(v):,.2f}"


@register.filter
def signed_pct(value: Any) -> str:
    if value is None:
        return "new"
    return f"{float(value) * 100:+.0f}%"


@register.filter
def ms(value: Any) -> str:
    if value is None or value == "":
        return DASH
    return f"{float(value):,.0f} ms"


@register.filter
def num(value: Any, digits: int = 0) -> str:
    if value is None or value == "":
        return DASH
    return f"{float(value):,.{int(digits)}f}"


@register.filter
def signed_num(value: Any) -> str:
    if value is None:
        return DASH
    return f"{int(value):+,}"


@register.filter
def bar_width(value: Any) -> str:
    """A fraction as a CSS width percentage, clamped to 0..100."""
    if value is None or value == "":
        return "0"
    return f"{min(100.0, max(0.0, float(value) * 100)):.1f}"


@register.filter
def change(value: Any, before: Any) -> str:
    """Relative change from `before` to `value`, signed ("new" from nothing)."""
    if value is None or before is None:
        return "—"
    v, b = float(value), float(before)
    if b == 0:
        return "new" if v else "±0%"
    return f"{(v - b) / b * 100:+.0f}%"


# How the canary page shows each metric of `metrics.stats.canary.METRICS`.
_CANARY_RATES = frozenset({"pass_rate", "escalation_rate", "error_rate"})


@register.filter
def metric_value(value: Any, metric: str) -> str:
    """A canary metric's value: a rate in %, a cost in $ (6 decimals), a latency in ms."""
    if value is None or value == "":
        return DASH
    if metric in _CANARY_RATES:
        return pct(value)
    if metric == "cost_per_request":
        return f"${float(value):,.6f}"
    return ms(value)


@register.filter
def metric_difference(value: Any, metric: str) -> str:
    """A canary difference (arm − control): points for rates, $ or ms otherwise, signed."""
    if value is None or value == "":
        return DASH
    if metric in _CANARY_RATES:
        return pp(value)
    if metric == "cost_per_request":
        return f"{'+' if float(value) >= 0 else '-'}${abs(float(value)):,.6f}"
    return f"{float(value):+,.0f} ms"


@register.filter
def metric_range(pair: Any, metric: str) -> str:
    """An interval of a canary difference: "low to high"."""
    if not pair:
        return DASH
    return f"{metric_difference(pair[0], metric)} to {metric_difference(pair[1], metric)}"
