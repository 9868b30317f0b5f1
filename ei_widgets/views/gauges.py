"""Live gauges: throughput and latency over time, memory and utilisation, the latency breakdown.

The panel is passive: ``refresh()`` is called by the dashboard's one timer thread (about 5 times
a second) with a metrics snapshot and its per-second series, and sends a widget message only for
the figures whose data changed. Nothing here runs per inference.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

from ei_widgets.estimate import TERMS, Estimate
from ei_widgets.metrics import MetricsSnapshot, SeriesPoint
from ei_widgets.views.common import SIMULATED, fmt_bytes, fmt_ms, fmt_percent, set_if_changed

SERIES_SECONDS = 120
"""Seconds of history drawn in the time charts (the stream keeps its own bounded ring)."""

QUANTILE_POINTS = 600
"""p50/p95 samples kept for the latency chart (one per refresh that saw new calls)."""

HOST_BOUND_SHARE = 0.5
"""Show the host-bound mark when at least this share of calls were host-bound (per the session)."""

TERM_COLOURS = {
    "network": "#6c8ebf",
    "compute": "#82b366",
    "memory": "#d6b656",
    "launch": "#b39ddb",
    "host": "#e57373",
}

_MARGIN = {"top": 30, "bottom": 40, "left": 70, "right": 15}
_LABEL_OFFSET = "55px"


def _figure(marks: list[Any], axes: list[bq.Axis], title: str, height: str = "210px") -> bq.Figure:
    return bq.Figure(
        marks=marks,
        axes=axes,
        title=title,
        fig_margin=dict(_MARGIN),
        layout=w.Layout(width="100%", height=height, min_width="260px"),
        animation_duration=0,
        title_style={"font-size": "13px"},
    )


def _same(a: Any, b: np.ndarray) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a, dtype=float), b, equal_nan=True))
    except (TypeError, ValueError):
        return False


def _set_xy(mark: bq.Mark, x: np.ndarray, y: np.ndarray) -> bool:
    """Set a mark's data in one message, and only if it changed. True when sent."""
    if _same(mark.x, x) and _same(mark.y, y):
        return False
    with mark.hold_sync():
        mark.x = x
        mark.y = y
    return True


class GaugesPanel(w.VBox):
    """Throughput, latency p50/p95, memory against capacity, utilisation, latency breakdown."""

    def __init__(self) -> None:
        self._origin: int | None = None  # first stream second shown, so x starts at 0
        self._quantiles: deque[tuple[float, float, float]] = deque(maxlen=QUANTILE_POINTS)
        self._last_calls = -1
        self.messages_sent = 0  # widget updates actually sent (coalescing check in tests)

        tx, ty = bq.LinearScale(), bq.LinearScale(min=0)
        self.throughput = bq.Lines(
            x=np.zeros(0),
            y=np.zeros(0),
            scales={"x": tx, "y": ty},
            colors=["#1f77b4"],
            stroke_width=2,
            labels=["inferences/s"],
        )
        self.throughput_figure = _figure(
            [self.throughput],
            [
                bq.Axis(scale=tx, label="run time (s)"),
                bq.Axis(
                    scale=ty,
                    side="left",
                    label="inferences/s",
                    tick_format=".3s",
                    label_offset=_LABEL_OFFSET,
                ),
            ],
            "Throughput (simulated time)",
        )

        lx, ly = bq.LinearScale(), bq.LinearScale(min=0)
        self.latency_mean = bq.Lines(
            x=np.zeros(0),
            y=np.zeros(0),
            scales={"x": lx, "y": ly},
            colors=["#bbbbbb"],
            labels=["mean per second"],
        )
        self.latency_p50 = bq.Lines(
            x=np.zeros(0),
            y=np.zeros(0),
            scales={"x": lx, "y": ly},
            colors=["#2ca02c"],
            labels=["p50"],
            stroke_width=2,
        )
        self.latency_p95 = bq.Lines(
            x=np.zeros(0),
            y=np.zeros(0),
            scales={"x": lx, "y": ly},
            colors=["#d62728"],
            labels=["p95"],
            stroke_width=2,
        )
        self.latency_figure = _figure(
            [self.latency_mean, self.latency_p50, self.latency_p95],
            [
                bq.Axis(scale=lx, label="run time (s)"),
                bq.Axis(
                    scale=ly,
                    side="left",
                    label="ms",
                    tick_format=".3g",
                    label_offset=_LABEL_OFFSET,
                ),
            ],
            "Latency per call (simulated): p50, p95, mean per second",
        )

        ux, uy = bq.OrdinalScale(), bq.LinearScale(min=0, max=100)
        self.usage = bq.Bars(
            x=["memory", "utilisation"],
            y=np.zeros(2),
            scales={"x": ux, "y": uy},
            colors=["#6c8ebf", "#82b366"],
            color_mode="element",
            padding=0.4,
        )
        self.usage_figure = _figure(
            [self.usage],
            [
                bq.Axis(scale=ux),
                bq.Axis(
                    scale=uy, side="left", label="% of capacity / peak", label_offset=_LABEL_OFFSET
                ),
            ],
            "Accelerator memory and utilisation (modelled)",
        )

        bx, by = bq.OrdinalScale(), bq.LinearScale(min=0)
        self.breakdown = bq.Bars(
            x=["per call"],
            y=np.zeros((len(TERMS), 1)),
            scales={"x": bx, "y": by},
            type="stacked",
            orientation="horizontal",
            colors=[TERM_COLOURS[t] for t in TERMS],
            labels=list(TERMS),
            padding=0.3,
        )
        self.breakdown_figure = _figure(
            [self.breakdown],
            [
                bq.Axis(scale=bx, side="left"),
                bq.Axis(scale=by, label="ms per call", tick_format=".3g"),
            ],
            "Latency breakdown (modelled)",
            height="150px",
        )
        self.breakdown_text = w.HTML()

        self.summary = w.HTML()
        self.host_bound = w.HTML(layout=w.Layout(display="none"))
        self.host_bound.value = (
            '<span style="background:#e57373;color:white;font-weight:600;padding:2px 10px;'
            'border-radius:10px" title="Most calls spent their time in ops that run on the '
            "notebook instance's CPUs\">HOST-BOUND</span> the notebook instance's CPUs limit "
            "this run; a larger accelerator will not make it faster."
        )
        self.usage_text = w.HTML()
        grid = w.GridBox(
            [
                self.throughput_figure,
                self.latency_figure,
                self.usage_figure,
                w.VBox([self.breakdown_figure, self.breakdown_text, self.usage_text]),
            ],
            layout=w.Layout(grid_template_columns="repeat(2, minmax(260px, 1fr))", width="100%"),
        )
        super().__init__(
            [w.HTML(f"<b>Live gauges</b> {SIMULATED}"), self.summary, self.host_bound, grid]
        )

    # --- updates -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the drawn history and clear the time charts (a new run starts)."""
        self._origin = None
        self._quantiles.clear()
        self._last_calls = -1
        empty = np.zeros(0)
        for mark in (self.throughput, self.latency_mean, self.latency_p50, self.latency_p95):
            self.messages_sent += _set_xy(mark, empty, empty)

    def set_breakdown(self, estimate: Estimate | None) -> None:
        """Show the modelled per-call breakdown (network, compute, memory, launch, host)."""
        if estimate is None:
            values = np.zeros((len(TERMS), 1))
            title = "Latency breakdown (modelled)"
        else:
            parts = estimate.breakdown
            values = np.array([[parts[t] * 1e3] for t in TERMS])
            title = (
                f"Latency breakdown (modelled): {estimate.target}, batch {estimate.batch_size},"
                f" {estimate.precision}; {estimate.bound}-bound"
            )
        if not _same(self.breakdown.y, values):
            self.breakdown.y = values
            self.messages_sent += 1
        set_if_changed(self.breakdown_figure, title=title)
        legend = " ".join(
            f'<span style="white-space:nowrap"><span style="display:inline-block;width:10px;'
            f'height:10px;background:{TERM_COLOURS[t]};margin-right:3px"></span>{t}'
            + (f" {fmt_ms(float(v[0]))}" if estimate is not None else "")
            + "</span>"
            for t, v in zip(TERMS, values, strict=True)
        )
        set_if_changed(
            self.breakdown_text,
            value=f'<div style="font-size:12px;display:flex;flex-wrap:wrap;gap:8px">{legend}</div>',
        )

    def refresh(
        self,
        snapshot: MetricsSnapshot,
        series: Sequence[SeriesPoint],
        capacity_bytes: int | None,
    ) -> int:
        """Draw the latest metrics; returns how many widget updates were sent (0 if none)."""
        sent = 0
        points = list(series)[-SERIES_SECONDS:]
        if points:
            if self._origin is None or points[0].second < self._origin:
                self._origin = points[0].second
            x = np.array([p.second - self._origin for p in points], dtype=float)
            sent += _set_xy(self.throughput, x, np.array([p.inferences for p in points], float))
            calls = np.array([p.calls for p in points])
            lat = np.array([p.mean_latency_ms for p in points], dtype=float)
            sent += _set_xy(self.latency_mean, x[calls > 0], lat[calls > 0])
            if snapshot.calls != self._last_calls and snapshot.calls > 0:
                self._last_calls = snapshot.calls
                if not (math.isnan(snapshot.p50_ms) or math.isnan(snapshot.p95_ms)):
                    self._quantiles.append((x[-1], snapshot.p50_ms, snapshot.p95_ms))
        elif self._origin is not None:
            self.reset()
        if self._quantiles:
            q = np.array(self._quantiles, dtype=float)
            # keep the quantile lines on the same time span as the series
            q = q[q[:, 0] >= (0 if not points else points[0].second - (self._origin or 0))]
            sent += _set_xy(self.latency_p50, q[:, 0], q[:, 1])
            sent += _set_xy(self.latency_p95, q[:, 0], q[:, 2])
        else:
            empty = np.zeros(0)
            sent += _set_xy(self.latency_p50, empty, empty)
            sent += _set_xy(self.latency_p95, empty, empty)

        memory_pct = 100.0 * snapshot.memory_bytes / capacity_bytes if capacity_bytes else 0.0
        usage = np.array([min(memory_pct, 100.0), 100.0 * snapshot.utilisation])
        if not _same(self.usage.y, usage):
            self.usage.y = usage
            sent += 1
        capacity = fmt_bytes(capacity_bytes) if capacity_bytes else "no accelerator"
        over = (
            " — over capacity" if capacity_bytes and snapshot.memory_bytes > capacity_bytes else ""
        )
        usage_text = (
            f'<div style="font-size:12px">Memory {fmt_bytes(snapshot.memory_bytes)} of {capacity}'
            f" (peak {fmt_bytes(snapshot.peak_memory_bytes)}){over}; utilisation"
            f" {fmt_percent(snapshot.utilisation)} of peak FLOP/s.</div>"
        )
        before = self.usage_text.value
        set_if_changed(self.usage_text, value=usage_text)
        sent += self.usage_text.value != before

        summary = (
            '<div style="font-size:13px;font-variant-numeric:tabular-nums">'
            f"<b>{snapshot.throughput_per_s:,.1f}</b> inferences/s"
            f" &nbsp;·&nbsp; p50 <b>{fmt_ms(_num(snapshot.p50_ms))}</b>"
            f" &nbsp;·&nbsp; p95 <b>{fmt_ms(_num(snapshot.p95_ms))}</b>"
            f" &nbsp;·&nbsp; {snapshot.calls:,} calls, {snapshot.inferences:,} inferences"
            f"{f', {snapshot.errors:,} errors' if snapshot.errors else ''}"
            f" &nbsp;·&nbsp; simulated time {snapshot.simulated_seconds:,.2f} s</div>"
        )
        before = self.summary.value
        set_if_changed(self.summary, value=summary)
        sent += self.summary.value != before

        bound = snapshot.calls > 0 and snapshot.host_bound_share >= HOST_BOUND_SHARE
        display = "" if bound else "none"
        if self.host_bound.layout.display != display:
            self.host_bound.layout.display = display
            sent += 1
        self.messages_sent += sent
        return sent


def _num(value: float) -> float | None:
    return None if math.isnan(value) else value
