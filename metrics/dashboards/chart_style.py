"""The look every dashboard and report figure shares: one colour per tier, one stable colour per
model, task type or provider, the status colours, the base layout (fonts, margins, axis titles
with units), the publish/rollback markers every time chart carries, and the plotly_white
template the figures are serialised with."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
INK = "#1f2933"
MUTED = "#6b7785"
GRID = "#e8ecf0"
TIER_COLORS = {1: "#0f9d8a", 2: "#3b6fd8", 3: "#8e4fd1", 4: "#d97706", 5: "#c2410c"}
GOOD, WATCH, BAD = "#1a7f37", "#d08700", "#c62828"
BAND_FILL = "rgba(26, 127, 55, 0.12)"
MARKER_COLOR = "#7a8794"
ROLLBACK_COLOR = "#c62828"
PALETTE = ("#3b6fd8", "#e07a1f", "#0f9d8a", "#d1435b", "#8e4fd1", "#5b8c2a", "#c99a06", "#1f9bcf", "#a0527a", "#7a8794")


def color_for(name: str) -> str:
    """A stable colour for a model, task type or provider: the same on every page and report."""
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


def colors_for(names: Sequence[str]) -> dict[str, str]:
    """Colours for the names in one figure: each its stable colour unless another name in the
    figure took it first (names in sorted order), then the next free one, so a figure never
    shows two series in one colour while it has fewer series than the palette."""
    taken: dict[str, str] = {}
    used: set[str] = set()
    for name in sorted(names):
        start = zlib.crc32(name.encode()) % len(PALETTE)
        for k in range(len(PALETTE)):
            color = PALETTE[(start + k) % len(PALETTE)]
            if color not in used or len(used) >= len(PALETTE):
                break
        taken[name] = color
        used.add(color)
    return taken


def tier_color(tier: int) -> str:
    """The tier's colour (muted beyond the fifth)."""
    return TIER_COLORS.get(tier, MUTED)


# Figures are built on an empty template and get the plotly_white template as plain JSON when
# serialised: the same output, without plotly validating the whole template into every figure
# (about a third of a page's figure-building time).
BARE_TEMPLATE = go.layout.Template()
WHITE_TEMPLATE = json.loads(pio.json.to_json_plotly(pio.templates["plotly_white"].to_plotly_json()))


def base_layout(
    fig: go.Figure,
    *,
    height: int = 340,
    x_title: str | None = None,
    y_title: str | None = None,
    y_format: str | None = None,
    legend: bool = True,
    hovermode: str = "closest",
) -> go.Figure:
    """Apply the shared layout (fonts, margins, grid, legend, axis titles with units) to `fig`."""
    fig.update_layout(
        template=BARE_TEMPLATE,
        height=height,
        autosize=True,
        font={"family": FONT, "size": 12, "color": INK},
        margin={"l": 64, "r": 24, "t": 40, "b": 48},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        hovermode=hovermode,
        hoverlabel={"font": {"family": FONT}},
        showlegend=legend,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0, "font": {"size": 11}},
    )
    fig.update_xaxes(
        title={"text": x_title, "font": {"size": 12, "color": MUTED}} if x_title else None,
        gridcolor=GRID,
        linecolor=GRID,
        zeroline=False,
    )
    fig.update_yaxes(
        title={"text": y_title, "font": {"size": 12, "color": MUTED}} if y_title else None,
        gridcolor=GRID,
        linecolor=GRID,
        zeroline=False,
        tickformat=y_format,
    )
    return fig


def add_version_markers(fig: go.Figure, markers: Sequence[dict[str, Any]]) -> go.Figure:
    """Mark publishes (grey) and rollbacks (red) as labelled vertical lines."""
    for m in markers:
        color = ROLLBACK_COLOR if m.get("rollback_of") else MARKER_COLOR
        fig.add_shape(
            type="line",
            xref="x",
            yref="paper",
            x0=m["at"],
            x1=m["at"],
            y0=0,
            y1=1,
            line={"color": color, "width": 1.5, "dash": "dot"},
            layer="above",
        )
        fig.add_annotation(
            x=m["at"],
            xref="x",
            y=1,
            yref="paper",
            yanchor="bottom",
            text=m["label"],
            showarrow=False,
            font={"size": 11, "color": color},
            bgcolor="rgba(255,255,255,0.85)",
            hovertext=f"Published {m['label']} at {m['at'][:16].replace('T', ' ')} UTC"
            + (f": {m['comment']}" if m.get("comment") else ""),
        )
    if markers:
        fig.update_layout(margin={"t": 56})
    return fig


def time_axis(fig: go.Figure, days: Sequence[str]) -> None:
    """Make the x axis a date axis spanning the whole days shown."""
    if days:
        fig.update_xaxes(type="date", range=[f"{days[0]}T00:00:00", f"{days[-1]}T23:59:59"])


def hline(fig: go.Figure, y: float, text: str, color: str, *, dash: str = "dash") -> None:
    """A labelled horizontal reference line (a budget, a mark) across the plot."""
    fig.add_shape(
        type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y, line={"color": color, "width": 1.2, "dash": dash}
    )
    fig.add_annotation(
        xref="paper",
        x=0.01,
        y=y,
        yref="y",
        xanchor="left",
        yanchor="bottom",
        text=text,
        showarrow=False,
        font={"size": 11, "color": color},
    )
