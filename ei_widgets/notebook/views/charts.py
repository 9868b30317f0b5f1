"""bqplot helpers shared by the dashboard's charts (time charts, breakdown, sizing scatter).

Figures in one style, marks that start empty, and data sent only when it changed: a timer pass
that finds the same numbers sends no message.
"""

from __future__ import annotations

import math
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

MARGIN = {"top": 30, "bottom": 40, "left": 70, "right": 15}
TEXT = "var(--jp-content-font-color1, #212121)"
"""Titles and axis labels: bqplot's own colour for them is orange in a dark theme (0.13.1)."""
TICKS = ",.3~r"  # three significant figures, plain decimals: never "900m" for 0.9


def figure(
    marks: list[Any],
    axes: list[bq.Axis],
    title: str,
    *,
    height: str = "210px",
    margin: dict[str, int] | None = None,
    min_width: str | None = "260px",
) -> bq.Figure:
    """A figure as wide as its cell, never animated, with a small title; its title and axis
    labels in the theme's text colour."""
    for axis in axes:
        axis.label_color = TEXT
    return bq.Figure(
        marks=marks,
        axes=axes,
        title=title,
        fig_margin=dict(margin or MARGIN),
        layout=w.Layout(width="100%", height=height, min_width=min_width),
        animation_duration=0,
        title_style={"font-size": "13px", "fill": TEXT},
    )


def round_ticks(top: float, count: int = 5) -> np.ndarray:
    """At most ``count`` round tick values from 0 up to ``top`` (steps of 1, 2, 2.5 or 5 times a
    power of ten). bqplot's own ``num_ticks`` spreads ticks evenly over the domain it pads for
    the markers, which labels them -0.0142, 0.2429, 0.5..."""
    if not (top > 0 and math.isfinite(top)):
        return np.zeros(1)
    raw = top / (count - 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    return np.round(np.arange(int(top / step + 1e-9) + 1) * step, 12)


def set_ticks(axis: bq.Axis, top: float) -> bool:
    """Give ``axis`` round ticks up to ``top``, sent only when they changed. True when sent."""
    ticks = round_ticks(top, axis.num_ticks or 5)
    if same(axis.tick_values, ticks):
        return False
    axis.tick_values = ticks
    return True


def line(scales: dict[str, bq.Scale], colour: str, label: str, **style: Any) -> bq.Lines:
    """An empty line of one colour."""
    return bq.Lines(
        x=np.zeros(0), y=np.zeros(0), scales=scales, colors=[colour], labels=[label], **style
    )


def scatter(
    scales: dict[str, bq.Scale],
    colour: str,
    label: str,
    *,
    display_names: bool = False,
    **style: Any,
) -> bq.Scatter:
    """An empty scatter of one colour (its legend is drawn in HTML by the panel)."""
    return bq.Scatter(
        x=np.zeros(0),
        y=np.zeros(0),
        names=[],
        display_names=display_names,
        scales=scales,
        colors=[colour],
        labels=[label],
        display_legend=False,
        **style,
    )


def same(a: Any, b: np.ndarray) -> bool:
    """Whether a mark's data ``a`` already equals ``b`` (NaN equal to NaN)."""
    try:
        return bool(np.array_equal(np.asarray(a, dtype=float), b, equal_nan=True))
    except (TypeError, ValueError):
        return False


def set_xy(mark: bq.Mark, x: np.ndarray, y: np.ndarray) -> bool:
    """Set a mark's data in one message, and only if it changed. True when sent."""
    if same(mark.x, x) and same(mark.y, y):
        return False
    with mark.hold_sync():
        mark.x = x
        mark.y = y
    return True


def clear_marks(*marks: bq.Mark) -> int:
    """Empty the marks' data (and a scatter's names); how many marks had data to clear."""
    empty = np.zeros(0)
    sent = 0
    for mark in marks:
        with mark.hold_sync():
            sent += set_xy(mark, empty, empty)
            if isinstance(mark, bq.Scatter) and mark.names is not None and len(mark.names):
                mark.names = []
    return sent
