"""Plotly figures for the dashboards and reports, built in Python from dashboard data.

Every function takes the plain data a `metrics.dashboards.selectors.dashboard_*` function returns
and gives a `plotly.graph_objects.Figure`; `figure_json` turns one into what the templates embed
with `json_script` (static/signalbox/dashboards.js draws it with plotly.min.js). The shared looks
(colours, layout, version markers) are `metrics.dashboards.chart_style`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from metrics.dashboards.chart_style import (
    BAD,
    BAND_FILL,
    GOOD,
    INK,
    MUTED,
    WATCH,
    WHITE_TEMPLATE,
    add_version_markers,
    base_layout,
    colors_for,
    hline,
    tier_color,
    time_axis,
)

# Plotly renders a subset of HTML (links, styles) in every label and hover text, and reads `%{…}`
# in a hovertemplate as its own syntax: names from decision records (routes, task types, models,
# providers) are shown as text only.
_PLOTLY_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_TEMPLATE_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "%": "&#37;"})
# Trace fields that hold data (names, categories): `text` is left alone, as the charts put their own
# markup there (a line break, a smaller count) around numbers only.
_TRACE_TEXT_FIELDS = ("x", "y", "name", "labels", "ids")


def plotly_text(value: str) -> str:
    """`value` as plain text inside a hovertemplate (where `%{` would start a template field)."""
    return value.translate(_TEMPLATE_TEXT)


def _as_text(value: Any) -> Any:
    if isinstance(value, str):
        return value.translate(_PLOTLY_TEXT)
    if isinstance(value, list):
        return [_as_text(v) for v in value]
    return value


def figure_json(fig: go.Figure) -> dict[str, Any]:
    """The figure as JSON-ready data for `json_script`, every trace's category and name strings
    as plain text (`plotly_text`)."""
    data = json.loads(fig.to_json())
    for trace in data.get("data", []):
        for name in _TRACE_TEXT_FIELDS:
            if name in trace:
                trace[name] = _as_text(trace[name])
        if "customdata" in trace:
            trace["customdata"] = _as_text(trace["customdata"])
    layout = data.setdefault("layout", {})
    if "layout" not in (layout.get("template") or {}):  # built on BARE_TEMPLATE
        layout["template"] = WHITE_TEMPLATE
    return data


def overview_daily(data: dict[str, Any], markers: Sequence[dict[str, Any]]) -> go.Figure:
    """Daily spend (bars, $) with requests (line, right axis)."""
    days = data["daily"]["days"]
    fig = go.Figure()
    fig.add_bar(
        x=days,
        y=data["daily"]["cost_usd"],
        name="Spend",
        marker_color="#3b6fd8",
        hovertemplate="%{x|%b %d}: $%{y:,.2f}<extra>Spend</extra>",
    )
    fig.add_scatter(
        x=days,
        y=data["daily"]["requests"],
        name="Requests",
        yaxis="y2",
        mode="lines",
        line={"color": "#e07a1f", "width": 2},
        hovertemplate="%{x|%b %d}: %{y:,} requests<extra></extra>",
    )
    base_layout(fig, y_title="Spend per day ($)", y_format="$,.2f", hovermode="x unified")
    fig.update_layout(
        yaxis2={
            "title": {"text": "Requests per day", "font": {"size": 12, "color": MUTED}},
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "rangemode": "tozero",
            "tickformat": ",.3~s",
            "tickmode": "auto",
            "nticks": 6,
        }
    )
    fig.update_layout(margin={"r": 64})
    time_axis(fig, days)
    return add_version_markers(fig, markers)


def cost_over_time(data: dict[str, Any], markers: Sequence[dict[str, Any]]) -> go.Figure:
    """Stacked daily cost per task type."""
    fig = go.Figure()
    colors = colors_for([s["task_type"] for s in data["over_time"]])
    for s in data["over_time"]:
        fig.add_scatter(
            x=data["days"],
            y=s["cost_usd"],
            name=s["task_type"],
            mode="lines",
            stackgroup="cost",
            line={"width": 1, "color": colors[s["task_type"]]},
            fillcolor=colors[s["task_type"]],
            hovertemplate=f"{plotly_text(s['task_type'])}: $%{{y:,.2f}}<extra></extra>",
        )
    base_layout(fig, y_title="Cost per day ($)", y_format="$,.2f", hovermode="x unified", height=360)
    time_axis(fig, data["days"])
    return add_version_markers(fig, markers)


def cost_per_request(data: dict[str, Any]) -> go.Figure:
    """Cost per request per task type (red when over the route's maximum), with the maximum."""
    rows = [r for r in data["per_request"] if r["cost_per_request_usd"] is not None][::-1]
    labels = [f"{r['task_type']} ({r['route']})" if r["task_type"] != r["route"] else r["task_type"] for r in rows]
    fig = go.Figure()
    fig.add_bar(
        y=labels,
        x=[r["cost_per_request_usd"] for r in rows],
        orientation="h",
        name="Cost per request",
        marker_color=[BAD if r["routing_failure"] else "#3b6fd8" for r in rows],
        customdata=[
            [r["requests"], r["max_cost_per_request_usd"] or 0, "ROUTING FAILURE" if r["routing_failure"] else ""]
            for r in rows
        ],
        hovertemplate="%{y}<br>$%{x:.4f} per request over %{customdata[0]:,} requests"
        "<br>max $%{customdata[1]:.4f} %{customdata[2]}<extra></extra>",
    )
    limits = [
        (lab, r["max_cost_per_request_usd"])
        for lab, r in zip(labels, rows, strict=True)
        if r["max_cost_per_request_usd"] is not None
    ]
    if limits:
        fig.add_scatter(
            y=[lab for lab, _ in limits],
            x=[v for _, v in limits],
            mode="markers",
            name="Route's max cost per request",
            marker={"symbol": "line-ns", "size": 22, "line": {"width": 3, "color": INK}},
            hovertemplate="max $%{x:.4f} per request<extra></extra>",
        )
    base_layout(fig, x_title="Cost per request ($)", height=max(220, 60 + 34 * len(rows)))
    fig.update_xaxes(tickformat="$,.4f", rangemode="tozero")
    fig.update_layout(margin={"l": 160})
    return fig


def spend_by_model(data: dict[str, Any]) -> go.Figure:
    """Spend per model, coloured by provider."""
    rows = data["by_model"][::-1]
    fig = go.Figure()
    seen: set[str] = set()
    colors = colors_for(sorted({r["provider"] for r in rows}))
    for r in rows:
        fig.add_bar(
            y=[r["model"]],
            x=[r["cost_usd"]],
            orientation="h",
            name=r["provider"],
            legendgroup=r["provider"],
            showlegend=r["provider"] not in seen,
            marker_color=colors[r["provider"]],
            customdata=[[r["provider"], r["tier"], r["decisions"], r["unpriced"]]],
            hovertemplate="%{y} (%{customdata[0]}, tier %{customdata[1]})<br>$%{x:,.2f} over "
            "%{customdata[2]:,} decisions<br>%{customdata[3]:,} unpriced"
            "<extra></extra>",
        )
        seen.add(r["provider"])
    base_layout(fig, x_title="Spend ($)", height=max(220, 60 + 30 * len(rows)))
    fig.update_xaxes(tickformat="$,.2f", rangemode="tozero")
    fig.update_layout(barmode="stack", margin={"l": 200})
    return fig


def escalation_rates(data: dict[str, Any]) -> go.Figure:
    """Each tier transition's rate per route as bars over its expected band (green shading)."""
    from plotly.subplots import make_subplots

    routes = list(data["routes"])[::-1]
    names = [r["route"] for r in routes]
    depth = max((len(r["steps"]) for r in routes), default=2)
    fig = make_subplots(
        rows=1,
        cols=depth,
        shared_yaxes=True,
        horizontal_spacing=0.06 if depth <= 2 else 0.03,
        subplot_titles=[f"Tier {t} → {t + 1}" for t in range(1, depth + 1)],
    )
    colors = {"in band": GOOD, "below band": WATCH, "above band": BAD, "no data": MUTED}
    for col, idx in ((i + 1, i) for i in range(depth)):
        xs, cols, custom = [], [], []
        for i, r in enumerate(routes):
            step = r["steps"][idx]
            xs.append(step["rate"] if step["rate"] is not None else 0)
            cols.append(colors.get(step["status"], MUTED))
            band = step.get("band")
            expected = f"expected {band['min']:.0%}–{band['max']:.0%}" if band else "no band"
            custom.append([step["escalated"], step["reached"], expected, step["status"]])
            if step["reached"] and step.get("band"):
                fig.add_shape(
                    type="rect",
                    row=1,
                    col=col,
                    x0=band["min"],
                    x1=band["max"],
                    y0=i - 0.45,
                    y1=i + 0.45,
                    fillcolor=BAND_FILL,
                    line={"color": GOOD, "width": 1, "dash": "dot"},
                    layer="below",
                )
        fig.add_bar(
            y=names,
            x=xs,
            orientation="h",
            marker_color=cols,
            showlegend=False,
            row=1,
            col=col,
            customdata=custom,
            width=0.5,
            hovertemplate="%{y}: %{x:.1%} (%{customdata[0]:,} of %{customdata[1]:,})<br>"
            "%{customdata[2]}: %{customdata[3]}<extra></extra>",
        )
    base_layout(fig, height=max(240, 90 + 44 * len(routes)), legend=False)
    fig.update_xaxes(
        tickformat=".0%",
        rangemode="tozero",
        title={"text": "Escalation rate (%)", "font": {"size": 12, "color": MUTED}},
    )
    fig.update_layout(margin={"l": 130, "t": 48})
    return fig


def escalation_funnel(data: dict[str, Any]) -> go.Figure:
    stages = data["funnel"]
    fig = go.Figure(
        go.Funnel(
            y=[s["stage"] for s in stages],
            x=[s["count"] for s in stages],
            marker={"color": [tier_color(s["tier"]) for s in stages]},
            texttemplate="%{value:,}<br>%{percentInitial:.1%}",
            hovertemplate="%{y}: %{x:,} requests<extra></extra>",
        )
    )
    base_layout(fig, height=260, legend=False)
    fig.update_layout(margin={"l": 150})
    return fig


def escalation_daily(data: dict[str, Any], markers: Sequence[dict[str, Any]]) -> go.Figure:
    days = data["daily"]["days"]
    fig = go.Figure()
    fig.add_scatter(
        x=days,
        y=data["daily"]["tier_1_to_2"],
        name="Tier 1 → 2",
        mode="lines+markers",
        line={"color": tier_color(2), "width": 2},
        marker={"size": 4},
        connectgaps=False,
        hovertemplate="%{y:.1%}<extra>Tier 1 → 2</extra>",
    )
    fig.add_scatter(
        x=days,
        y=data["daily"]["tier_2_to_3"],
        name="Tier 2 → 3",
        mode="lines+markers",
        line={"color": tier_color(3), "width": 2},
        marker={"size": 4},
        connectgaps=False,
        hovertemplate="%{y:.1%}<extra>Tier 2 → 3</extra>",
    )
    base_layout(fig, y_title="Escalation rate (%)", y_format=".0%", hovermode="x unified")
    rates = [v for v in (*data["daily"]["tier_1_to_2"], *data["daily"]["tier_2_to_3"]) if v is not None]
    fig.update_yaxes(range=[0, max([data["advisory_rate"] * 1.25, *rates]) * 1.05])
    hline(fig, data["advisory_rate"], "40%: route directly to the stronger tier", BAD)
    time_axis(fig, days)
    return add_version_markers(fig, markers)


def quality_heatmap(data: dict[str, Any]) -> go.Figure:
    """Pass rate per task type × tier, coloured by band: below 75%, 75–95%, at least 95%."""
    tts, tiers = data["task_types"], data["tiers"]
    cell = {(c["task_type"], c["tier"]): c for c in data["cells"]}
    good, poor = data["marks"]["good"], data["marks"]["poor"]
    z, text, custom = [], [], []
    for tt in tts:
        zr, tr, cr = [], [], []
        for t in tiers:
            c = cell.get((tt, t))
            rate = c["pass_rate"] if c else None
            zr.append(None if rate is None else 2 if rate >= good else 1 if rate >= poor else 0)
            tr.append(
                f"{rate:.1%}<br><span style='font-size:10px'>n={c['attempts']:,}</span>"
                if c and rate is not None
                else ""
            )
            cr.append([rate if rate is not None else 0, c["ok"] if c else 0, c["attempts"] if c else 0])
        z.append(zr)
        text.append(tr)
        custom.append(cr)
    scale = [
        [0, "#f4b4ae"],
        [1 / 3, "#f4b4ae"],
        [1 / 3, "#fbe3a0"],
        [2 / 3, "#fbe3a0"],
        [2 / 3, "#a8e0b6"],
        [1, "#a8e0b6"],
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"Tier {t}" for t in tiers],
            y=tts,
            zmin=-0.5,
            zmax=2.5,
            colorscale=scale,
            text=text,
            texttemplate="%{text}",
            textfont={"size": 13, "color": INK},
            customdata=custom,
            xgap=4,
            ygap=4,
            colorbar={
                "title": {"text": "Pass rate", "side": "top"},
                "tickvals": [0, 1, 2],
                "ticktext": [f"< {poor:.0%}", f"{poor:.0%}–{good:.0%}", f"≥ {good:.0%}"],
                "thickness": 14,
                "len": 0.8,
            },
            hovertemplate="%{y}, %{x}: %{customdata[0]:.1%} pass<br>%{customdata[1]:,} ok of "
            "%{customdata[2]:,} attempts<extra></extra>",
        )
    )
    base_layout(fig, height=max(240, 80 + 56 * len(tts)), legend=False)
    fig.update_yaxes(autorange="reversed", gridcolor="rgba(0,0,0,0)", linecolor="rgba(0,0,0,0)")
    fig.update_xaxes(side="top", gridcolor="rgba(0,0,0,0)", linecolor="rgba(0,0,0,0)")
    fig.update_layout(margin={"l": 120, "t": 40})
    return fig


def quality_daily(data: dict[str, Any], markers: Sequence[dict[str, Any]]) -> go.Figure:
    days = data["daily"]["days"]
    fig = go.Figure()
    fig.add_scatter(
        x=days,
        y=data["daily"]["pass_rate"],
        name="Pass rate",
        mode="lines+markers",
        line={"color": GOOD, "width": 2},
        marker={"size": 4},
        hovertemplate="%{x|%b %d}: %{y:.1%} of requests ok<extra></extra>",
    )
    base_layout(fig, y_title="Pass rate (%)", y_format=".0%", legend=False, height=300)
    rates = [v for v in data["daily"]["pass_rate"] if v is not None]
    low = min([data["marks"]["poor"], *rates]) if rates else data["marks"]["poor"]
    fig.update_yaxes(range=[max(0.0, low - 0.05), 1.01])
    hline(fig, data["marks"]["good"], "95%", GOOD)
    hline(fig, data["marks"]["poor"], "75%", WATCH)
    time_axis(fig, days)
    return add_version_markers(fig, markers)


def latency_percentiles(data: dict[str, Any]) -> go.Figure:
    rows = data["rows"]
    labels = [f"{r['route']} · {r['model']}" for r in rows]
    fig = go.Figure()
    for key, color in (("p50", "#a9c1ef"), ("p95", "#3b6fd8"), ("p99", "#1d3f8a")):
        fig.add_bar(
            x=labels,
            y=[r[key] for r in rows],
            name=key,
            marker_color=color,
            customdata=[[r["attempts"]] for r in rows],
            hovertemplate=f"%{{x}}<br>{key}: %{{y:,.0f}} ms (%{{customdata[0]:,}} attempts)<extra></extra>",
        )
    budgets = [(lab, r["p95_budget_ms"]) for lab, r in zip(labels, rows, strict=True) if r["p95_budget_ms"]]
    if budgets:
        fig.add_scatter(
            x=[lab for lab, _ in budgets],
            y=[v for _, v in budgets],
            mode="markers",
            name="Route's p95 budget",
            marker={"symbol": "line-ew", "size": 40, "line": {"width": 3, "color": BAD}},
            hovertemplate="p95 budget %{y:,.0f} ms<extra></extra>",
        )
    base_layout(fig, y_title="Latency (ms)", y_format=",.0f", height=380)
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_xaxes(tickangle=-20)
    return fig


def latency_daily(data: dict[str, Any], markers: Sequence[dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    colors = colors_for([s["route"] for s in data["daily"]])
    for s in data["daily"]:
        fig.add_scatter(
            x=data["days"],
            y=s["p95"],
            name=s["route"],
            mode="lines+markers",
            line={"color": colors[s["route"]], "width": 2},
            marker={"size": 4},
            hovertemplate=f"{plotly_text(s['route'])}: %{{y:,.0f}} ms<extra></extra>",
        )
    base_layout(fig, y_title="p95 latency (ms)", y_format=",.0f", hovermode="x unified")
    fig.update_yaxes(rangemode="tozero")
    time_axis(fig, data["days"])
    return add_version_markers(fig, markers)


def budget_burn(data: dict[str, Any], markers: Sequence[dict[str, Any]]) -> go.Figure:
    """Cumulative spend, the forecast to month end with its interval (a band), the budget and its
    50/80/100% marks."""
    days = data["days"]
    elapsed = len(data["cumulative_usd"])
    fig = go.Figure()
    fig.add_bar(
        x=days[:elapsed],
        y=data["daily_spend_usd"],
        name="Spend per day",
        marker_color="#c9d6f2",
        hovertemplate="%{x|%b %d}: $%{y:,.2f} that day<extra></extra>",
    )
    fig.add_scatter(
        x=days[:elapsed],
        y=data["cumulative_usd"],
        name="Cumulative spend",
        mode="lines",
        line={"color": "#3b6fd8", "width": 3},
        hovertemplate="%{x|%b %d}: $%{y:,.2f} so far<extra></extra>",
    )
    fc = data["forecast"]
    if fc and elapsed and fc.get("high_usd") is not None:
        conf = f"{fc['confidence']:.0%}" if fc.get("confidence") else ""
        fig.add_scatter(
            x=[days[elapsed - 1], days[-1], days[-1], days[elapsed - 1]],
            y=[data["spent_usd"], fc["high_usd"], fc["low_usd"], data["spent_usd"]],
            name=f"Forecast {conf} interval".replace("  ", " "),
            mode="lines",
            fill="toself",
            fillcolor="rgba(59, 111, 216, 0.15)",
            line={"width": 0},
            hoverinfo="skip",
        )
    if fc and elapsed:
        fig.add_scatter(
            x=[days[elapsed - 1], days[-1]],
            y=[data["spent_usd"], fc["projected_usd"]],
            name="Forecast (recent rate)" if fc["method"] == "recent_weighted" else "Forecast (run rate)",
            mode="lines+markers",
            line={"color": "#3b6fd8", "width": 2, "dash": "dash"},
            marker={"size": [0, 8]},
            hovertemplate="%{x|%b %d}: $%{y:,.2f} projected<extra></extra>",
        )
    monthly = data["budget"]["monthly_usd"]
    if monthly:
        for t in data["thresholds"]:
            color = BAD if t["fraction"] >= 1 else WATCH if t["fraction"] >= 0.8 else MUTED
            label = (
                f"Budget ${t['amount_usd']:,.0f}"
                if t["fraction"] >= 1
                else f"{t['fraction']:.0%} (${t['amount_usd']:,.0f})"
            )
            hline(fig, t["amount_usd"], label, color, dash="solid" if t["fraction"] >= 1 else "dot")
    base_layout(fig, y_title="Spend this month ($)", y_format="$,.0f", hovermode="x unified", height=380)
    top = max(
        [
            monthly or 0,
            *(data["cumulative_usd"] or [0]),
            fc["projected_usd"] if fc else 0,
            (fc or {}).get("high_usd") or 0,
        ]
    )
    fig.update_yaxes(range=[0, top * 1.08 if top else 1])
    fig.update_xaxes(type="date", range=[f"{days[0]}T00:00:00", f"{days[-1]}T23:59:59"])
    return add_version_markers(fig, markers)


def report_spend_change(data: dict[str, Any]) -> go.Figure:
    """Monthly report: spend per task type, this month against the month before (grouped bars)."""
    rows = [
        r for r in data["task_types"] if r["metrics"]["cost_usd"]["current"] or r["metrics"]["cost_usd"]["previous"]
    ][::-1]
    names = [r["task_type"] for r in rows]
    fig = go.Figure()
    fig.add_bar(
        y=names,
        x=[r["metrics"]["cost_usd"]["previous"] for r in rows],
        orientation="h",
        name=data["previous_month_label"],
        marker_color="#b8c4d1",
        hovertemplate="%{y}: $%{x:,.2f}<extra>" + data["previous_month_label"] + "</extra>",
    )
    fig.add_bar(
        y=names,
        x=[r["metrics"]["cost_usd"]["current"] for r in rows],
        orientation="h",
        name=data["month_label"],
        marker_color="#3b6fd8",
        hovertemplate="%{y}: $%{x:,.2f}<extra>" + data["month_label"] + "</extra>",
    )
    base_layout(fig, x_title="Spend ($)", height=max(220, 80 + 44 * len(rows)))
    fig.update_xaxes(tickformat="$,.2f", rangemode="tozero")
    fig.update_layout(barmode="group", margin={"l": 140})
    return fig


VERDICT_COLORS = {"better": GOOD, "worse": BAD, "no difference yet": MUTED, "blocked": WATCH, "too little data": MUTED}


def canary_differences(split: dict[str, Any]) -> go.Figure:
    """Each arm's difference from the control per metric, relative to the control: the point
    estimate, the always-valid sequence (thick, what the verdict reads) and the 95% interval
    (thin), coloured by verdict."""
    fig = go.Figure()
    labels, xs, seq_lo, seq_hi, ci_lo, ci_hi, colors, hover = [], [], [], [], [], [], [], []
    for comparison in split["comparisons"]:
        for m in comparison["metrics"]:
            if m["relative"] is None or not m["control"]:
                continue
            base = m["control"]
            labels.append(f"{comparison['arm']} · {m['label']}")
            xs.append(m["relative"])
            seq = m["sequence"] or [m["difference"], m["difference"]]
            ci = m["interval"] or seq
            seq_lo.append(m["relative"] - seq[0] / base)
            seq_hi.append(seq[1] / base - m["relative"])
            ci_lo.append(m["relative"] - ci[0] / base)
            ci_hi.append(ci[1] / base - m["relative"])
            colors.append(VERDICT_COLORS.get(m["verdict"], MUTED))
            hover.append(m["verdict"])
    labels, xs = labels[::-1], xs[::-1]
    for arrays in (seq_lo, seq_hi, ci_lo, ci_hi, colors, hover):
        arrays.reverse()
    fig.add_scatter(
        y=labels,
        x=xs,
        mode="markers",
        name="95% interval",
        marker={"size": 1, "color": MUTED},
        error_x={"type": "data", "symmetric": False, "array": ci_hi, "arrayminus": ci_lo, "color": MUTED, "width": 6},
        hoverinfo="skip",
    )
    fig.add_scatter(
        y=labels,
        x=xs,
        mode="markers",
        name="Always-valid sequence (verdict)",
        marker={"size": 11, "color": colors, "line": {"width": 1, "color": INK}},
        error_x={
            "type": "data",
            "symmetric": False,
            "array": seq_hi,
            "arrayminus": seq_lo,
            "color": INK,
            "thickness": 3,
            "width": 0,
        },
        customdata=[[h] for h in hover],
        hovertemplate="%{y}<br>%{x:+.1%} against the control<br>%{customdata[0]}<extra></extra>",
    )
    fig.add_vline(x=0, line={"color": INK, "width": 1})
    base_layout(fig, x_title="Arm − control, relative to the control", height=max(240, 70 + 38 * len(labels)))
    fig.update_xaxes(tickformat="+.0%", zeroline=False)
    fig.update_layout(margin={"l": 200})
    return fig


def attribution_cost(data: dict[str, Any]) -> go.Figure:
    """Cost per row of the table (its first 25, in its order), this period against the compared
    one, with requests, cost per request and the change on hover; (other), (none) and the
    everything-else row in grey."""
    rows = data["rows"][:25][::-1]
    special = (data["other_label"], data["none_label"])
    fig = go.Figure()
    labels = [r["value"] for r in rows]
    fig.add_bar(
        y=labels,
        x=[r["previous_cost_usd"] for r in rows],
        orientation="h",
        name=f"{data['previous_period']['start']} – {data['previous_period']['end']}",
        marker_color="#c9d6f2",
        customdata=[[r["previous_requests"]] for r in rows],
        hovertemplate="%{y}<br>compared period: $%{x:,.2f} over %{customdata[0]:,} requests<extra></extra>",
    )
    fig.add_bar(
        y=labels,
        x=[r["cost_usd"] for r in rows],
        orientation="h",
        name=f"{data['period']['start']} – {data['period']['end']}",
        marker_color=[MUTED if r["rest"] or r["value"] in special else "#3b6fd8" for r in rows],
        customdata=[
            [
                r["requests"],
                r["cost_per_request_usd"] or 0,
                "new" if r["cost_change_pct"] is None else f"{r['cost_change_pct']:+.0%}",
            ]
            for r in rows
        ],
        hovertemplate="%{y}<br>$%{x:,.2f} over %{customdata[0]:,} requests"
        "<br>$%{customdata[1]:.5f} per request<br>%{customdata[2]} against the compared period<extra></extra>",
    )
    base_layout(fig, x_title="Cost ($)", height=max(240, 80 + 34 * len(rows)))
    fig.update_xaxes(tickformat="$,.2f", rangemode="tozero")
    fig.update_layout(margin={"l": 180}, barmode="group", bargap=0.25, bargroupgap=0.05)
    return fig
