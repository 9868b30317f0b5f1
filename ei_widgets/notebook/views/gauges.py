"""Live gauges: throughput and latency over time, memory and utilisation, the latency breakdown.

The panel is passive: ``refresh()`` is called by the dashboard's one timer thread (about 5 times
a second) with a metrics snapshot and its per-second series, and sends a widget message only for
the figures whose data changed. Nothing here runs per inference.

How the figures read:

- **One time base.** Both time charts run on simulated seconds since the run started, whichever
  clock ran (a paced session's timeline leaves out the delays this machine added), so a paced and
  a virtual run of the same model show the same steady-state throughput.
- **Whole seconds.** Throughput is drawn for complete seconds: the run's first and the
  still-filling (or last) second are left out, so partial seconds never draw ramps. A run
  shorter than that (at most two seconds touched) draws each second's inferences over the part
  of it the run covered, so a sub-second run still shows its rate.
- **The run's own calls.** The Run tab passes the snapshot and series of the current run only
  (``scope="run"``); before any run it passes every metered call in the kernel and the summary
  says so (``scope="kernel"``).
- **Time from zero.** The time axes start at 0 and run at least one second, with tick labels
  precise enough that two ticks never read the same.
- **Warm-up out of the scale.** The session's warm-up call is not in the latency quantiles or
  the per-second means; the legend marks it with its latency.
- **Gauges, not bars.** Memory and utilisation read as used / capacity with the number, as
  JupyterLab's resource meter shows RAM.
- **Charts only where seen.** The bqplot figures are put on the page when ``show_charts()`` is
  called (the dashboard does so when the Run tab is first opened): a chart drawn in a hidden tab
  has no width, and bqplot then draws negative-width rectangles. While the Run tab is not the one
  shown, the charts' data is kept but not sent (``refresh(charts=False)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

from ei_widgets.device.estimate import TERMS, Estimate
from ei_widgets.device.metrics import MetricsSnapshot, SeriesPoint
from ei_widgets.notebook.views.charts import (
    TICKS,
    clear_marks,
    figure,
    line,
    same,
    set_ticks,
    set_xy,
)
from ei_widgets.notebook.views.common import modelled_badge, set_if_changed
from ei_widgets.notebook.views.gauges_html import (
    HOST_BOUND_TEXT,
    LINE_COLOURS,
    TERM_COLOURS,
    breakdown_html,
    device_gauges_html,
    latency_legend_html,
    summary_html,
)

SERIES_SECONDS = 120
"""Seconds of history drawn in the time charts (the stream keeps its own bounded ring)."""

QUANTILE_POINTS = 600
"""p50/p95 samples kept for the latency chart (one per refresh that saw new calls)."""

HOST_BOUND_SHARE = 0.5
"""Show the host-bound mark when at least this share of calls were host-bound (per the session)."""

TARGET_SPAN = 3.0
"""The latency target is drawn when it lies within this factor of the highest latency shown."""

TIME_AXIS = "simulated seconds since the run started"
TIME_TICKS = ",~r"  # up to six significant figures, trailing zeros trimmed: 119.2, never "119 119"
THROUGHPUT_TITLE = "Throughput, whole seconds"
THROUGHPUT_SHORT = "Throughput over partial seconds"  # fits a 260-pixel chart
THROUGHPUT_WAITING = "Throughput: no call yet"
AXIS_TICKS = 5
"""Ticks on each chart axis at most (bqplot's default crowds a 260-pixel chart), at round values
(``charts.set_ticks``)."""


def _time_axes(x: bq.Scale, y: bq.Scale, label: str) -> list[bq.Axis]:
    """Simulated seconds across, ``label`` up the left side."""
    return [
        bq.Axis(scale=x, label=TIME_AXIS, tick_format=TIME_TICKS, num_ticks=AXIS_TICKS),
        bq.Axis(
            scale=y,
            side="left",
            label=label,
            tick_format=TICKS,
            label_offset="55px",
            num_ticks=AXIS_TICKS,
        ),
    ]


class GaugesPanel(w.VBox):
    """Throughput, latency p50/p95, memory against capacity, utilisation, latency breakdown."""

    def __init__(self, accuracy: str) -> None:
        """``accuracy``: the latency model's validated error (``Catalog.latency_accuracy``),
        shown with every modelled figure here."""
        self.accuracy = accuracy
        self.heading = w.HTML(f"<b>Live gauges</b> {modelled_badge(accuracy)}")
        self._chart_boxes: tuple[w.VBox, ...] | None = None
        self._origin: int | None = None  # first stream second shown, so x starts at 0
        self._quantiles = _Ring(QUANTILE_POINTS)  # (run second, p50 ms, p95 ms)
        self._last_calls = -1
        self._target_ms: float | None = None
        self._warmup_ms: float | None = None  # the last warm-up call's latency, if any
        self._legend_key: tuple[Any, ...] | None = None
        self._gauge_key: tuple[Any, ...] | None = None
        self.messages_sent = 0  # widget updates actually sent (coalescing check in tests)

        tx, ty = bq.LinearScale(min=0, max=1), bq.LinearScale(min=0)
        # markers, so a run of one or two seconds still shows its points
        self.throughput = line(
            {"x": tx, "y": ty},
            "var(--jp-brand-color1, #1f77b4)",
            "inferences/s",
            stroke_width=2,
            marker="circle",
            marker_size=16,
        )
        self.throughput_figure = figure(
            [self.throughput],
            _time_axes(tx, ty, "inferences/s"),
            THROUGHPUT_TITLE,
        )

        self.latency_scale = bq.LinearScale(min=0)
        scales = {"x": bq.LinearScale(min=0, max=1), "y": self.latency_scale}
        self.time_scales = (tx, scales["x"])
        # markers on the per-second means, so a run shorter than two seconds still shows a point
        self.latency_mean = line(
            scales, LINE_COLOURS["mean"], "mean per second", marker="circle", marker_size=16
        )
        # p95 wider and under p50: when the two are equal (steady calls) both stay visible
        self.latency_p50 = line(scales, LINE_COLOURS["p50"], "p50", stroke_width=2)
        self.latency_p95 = line(scales, LINE_COLOURS["p95"], "p95", stroke_width=5)
        self.latency_target = line(
            scales, LINE_COLOURS["target"], "latency target", line_style="dashed"
        )
        self.latency_figure = figure(
            [self.latency_mean, self.latency_p95, self.latency_p50, self.latency_target],
            _time_axes(scales["x"], self.latency_scale, "ms per call"),
            "Latency per call",
        )
        self.latency_legend = w.HTML()

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
        self.breakdown_figure = figure(
            [self.breakdown],
            [
                bq.Axis(scale=bx, side="left"),
                bq.Axis(scale=by, label="ms per call", tick_format=TICKS, num_ticks=AXIS_TICKS),
            ],
            "Latency breakdown",
            height="150px",
        )
        self.breakdown_text = w.HTML()

        self.summary = w.HTML()
        self.host_bound = w.HTML(HOST_BOUND_TEXT, layout=w.Layout(display="none"))
        self.memory_gauge = w.HTML()
        self.utilisation_gauge = w.HTML()
        # two columns side by side, one under the other when the dashboard is narrow
        columns = "repeat(auto-fit, minmax(260px, 1fr))"
        self.grid = w.GridBox(layout=w.Layout(grid_template_columns=columns, width="100%"))
        super().__init__(
            [
                self.heading,
                self.summary,
                self.host_bound,
                self.memory_gauge,
                self.utilisation_gauge,
                self.grid,
            ]
        )
        self.set_breakdown(None)
        self._render_legend(None)

    @property
    def figures(self) -> tuple[bq.Figure, ...]:
        return (self.throughput_figure, self.latency_figure, self.breakdown_figure)

    @property
    def charts_shown(self) -> bool:
        return bool(self.grid.children)

    @property
    def chart_boxes(self) -> tuple[w.VBox, ...]:
        """The boxes that hold the charts on the page, made once."""
        if self._chart_boxes is None:
            self._chart_boxes = (
                w.VBox([self.throughput_figure]),
                w.VBox([self.latency_figure, self.latency_legend]),
                w.VBox([self.breakdown_figure, self.breakdown_text]),
            )
        return self._chart_boxes

    def show_charts(self) -> None:
        """Put the charts on the page (once their tab is visible, so they have a width)."""
        if not self.charts_shown:
            self.grid.children = self.chart_boxes

    def hide_charts(self) -> None:
        """Take the charts off the page while their tab is hidden: a new view of the dashboard
        (a split view) would otherwise draw them where they have no width."""
        if self.charts_shown:
            self.grid.children = ()

    # --- updates -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the drawn history and clear the time charts (a new run starts)."""
        self._origin = None
        self._quantiles.clear()
        self._last_calls = -1
        self.messages_sent += clear_marks(
            self.throughput,
            self.latency_mean,
            self.latency_p50,
            self.latency_p95,
            self.latency_target,
        )

    def set_target(self, target_ms: float | None) -> None:
        """The latency target drawn on the latency chart (the Sizing tab's)."""
        self._target_ms = target_ms

    def set_breakdown(self, estimate: Estimate | None, accuracy: str | None = None) -> None:
        """Show the modelled per-call breakdown (network, compute, memory, launch, host), with
        how far the chosen model's modelled latencies can be trusted (``accuracy``)."""
        if accuracy is not None and accuracy != self.accuracy:
            self.accuracy = accuracy
            self.heading.value = f"<b>Live gauges</b> {modelled_badge(accuracy)}"
        if estimate is None:
            values = np.zeros((len(TERMS), 1))
        else:
            values = np.array([[estimate.breakdown[t] * 1e3] for t in TERMS])
        if not same(self.breakdown.y, values):
            self.breakdown.y = values
            self.messages_sent += 1
        self.messages_sent += set_ticks(self.breakdown_figure.axes[1], float(values.sum()))
        text = breakdown_html(estimate, [float(v[0]) for v in values], self.accuracy)
        set_if_changed(self.breakdown_text, value=text)

    def _render_legend(self, warmup_ms: float | None, target_shown: bool = True) -> int:
        target = self._target_ms
        key = (target, warmup_ms, target_shown)
        if key == self._legend_key:  # drawn each pass: skip the string work when unchanged
            return 0
        self._legend_key = key
        value = latency_legend_html(target, warmup_ms, target_shown)
        before = self.latency_legend.value
        set_if_changed(self.latency_legend, value=value)
        return int(self.latency_legend.value != before)

    def refresh(
        self,
        snapshot: MetricsSnapshot,
        series: Sequence[SeriesPoint],
        capacity_bytes: int | None,
        *,
        paced: bool = False,
        attached: str | None = None,
        charts: bool = True,
        scope: str = "run",
    ) -> int:
        """Draw the latest metrics; returns how many widget updates were sent (0 if none).

        ``paced``: the run keeps wall time (only then can this machine fall behind). ``attached``:
        the accelerator attached now (named in the memory gauge before any call). ``charts``:
        the time charts are on screen (else their data is kept but not sent; the next pass with
        ``charts`` sends it). ``scope``: what the figures cover, ``"run"`` (the current run's
        calls) or ``"kernel"`` (every metered call in the kernel, before any run), said in the
        summary.
        """

        def put(mark: bq.Mark, x: np.ndarray, y: np.ndarray) -> int:
            return set_xy(mark, x, y) if charts else 0

        sent = 0
        self._warmup_ms = None if math.isnan(snapshot.warmup_ms) else snapshot.warmup_ms
        points = list(series)[-SERIES_SECONDS:]
        top = 0.0
        if points:
            if self._origin is None or points[0].second < self._origin:
                self._origin = points[0].second
            x = np.array([p.second - self._origin for p in points], dtype=float)
            if len(points) > 2:  # the first and the last second are partial: left out
                title = THROUGHPUT_TITLE
                tx = x[1:-1]
                ty = np.array([p.inferences for p in points[1:-1]], dtype=float)
            else:  # a short run: each second's inferences over the part of it the run covered
                covered = [i for i, p in enumerate(points) if p.span_s > 0 and p.inferences]
                title = THROUGHPUT_SHORT if covered else THROUGHPUT_WAITING
                tx = x[covered]
                ty = np.array([points[i].inferences / points[i].span_s for i in covered])
            sent += put(self.throughput, tx, ty)
            if charts:
                set_if_changed(self.throughput_figure, title=title)
                span = max(float(x[-1]), 1.0)
                for scale in self.time_scales:
                    set_if_changed(scale, min=0.0, max=span)
                for chart in (self.throughput_figure, self.latency_figure):
                    sent += set_ticks(chart.axes[0], span)
                sent += set_ticks(self.throughput_figure.axes[1], float(ty.max(initial=0.0)))
            lat = np.array([p.mean_latency_ms for p in points], dtype=float)
            timed = lat > 0  # seconds with calls other than the warm-up
            sent += put(self.latency_mean, x[timed], lat[timed])
            if timed.any():
                top = float(lat[timed].max())
            if snapshot.calls != self._last_calls and snapshot.calls > 0:
                self._last_calls = snapshot.calls
                if not (math.isnan(snapshot.p50_ms) or math.isnan(snapshot.p95_ms)):
                    self._quantiles.append(x[-1], snapshot.p50_ms, snapshot.p95_ms)
        elif self._origin is not None and charts:
            self.reset()
        if len(self._quantiles):
            q = self._quantiles.rows()
            # keep the quantile lines on the same time span as the series
            q = q[q[:, 0] >= (0 if not points else points[0].second - (self._origin or 0))]
            sent += put(self.latency_p50, q[:, 0], q[:, 1])
            sent += put(self.latency_p95, q[:, 0], q[:, 2])
            if len(q):
                top = max(top, float(q[:, 2].max()))
        else:
            empty = np.zeros(0)
            sent += put(self.latency_p50, empty, empty)
            sent += put(self.latency_p95, empty, empty)
        if charts:
            sent += self._draw_target(points, top)
            if len(self.latency_target.x) and self._target_ms is not None:
                top = max(top, self._target_ms)  # the target line is on the scale too
            sent += set_ticks(self.latency_figure.axes[1], top)

        sent += self._gauges(snapshot, capacity_bytes, attached)

        summary = summary_html(snapshot, scope)
        before = self.summary.value
        set_if_changed(self.summary, value=summary)
        sent += self.summary.value != before

        bound = paced and snapshot.calls > 0 and snapshot.host_bound_share >= HOST_BOUND_SHARE
        display = "" if bound else "none"
        if self.host_bound.layout.display != display:
            self.host_bound.layout.display = display
            sent += 1
        self.messages_sent += sent
        return sent

    def _draw_target(self, points: list[SeriesPoint], top: float) -> int:
        """The target line across the chart when it lies near the data; the scale follows the
        steady calls (warm-up is not in them), so a 4 ms line is never pressed to the floor."""
        target = self._target_ms
        shown = target is not None and points and top > 0 and target <= TARGET_SPAN * top
        sent = 0
        if shown and target is not None:
            span = float(max(len(points) - 1, 1))
            sent += set_xy(self.latency_target, np.array([0.0, span]), np.array([target, target]))
        else:
            empty = np.zeros(0)
            sent += set_xy(self.latency_target, empty, empty)
        return sent + self._render_legend(self._warmup_ms, bool(shown) or not points)

    def _gauges(
        self, snapshot: MetricsSnapshot, capacity_bytes: int | None, attached: str | None
    ) -> int:
        name = snapshot.accelerator or attached
        key = (name, capacity_bytes, snapshot.memory_bytes, snapshot.peak_memory_bytes,
               round(snapshot.utilisation, 4))  # fmt: skip
        if key == self._gauge_key:
            return 0
        self._gauge_key = key
        memory, utilisation = device_gauges_html(snapshot, capacity_bytes, name)
        sent = 0
        for widget, value in ((self.memory_gauge, memory), (self.utilisation_gauge, utilisation)):
            if widget.value != value:
                widget.value = value
                sent += 1
        return sent


class _Ring:
    """The last ``size`` rows of three floats, in preallocated arrays (no per-pass list work)."""

    def __init__(self, size: int) -> None:
        self._data = np.zeros((size, 3))
        self._next = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, a: float, b: float, c: float) -> None:
        self._data[self._next] = (a, b, c)
        self._next = (self._next + 1) % len(self._data)
        self._count = min(self._count + 1, len(self._data))

    def clear(self) -> None:
        self._next = self._count = 0

    def rows(self) -> np.ndarray:
        """Oldest first."""
        if self._count < len(self._data):
            return self._data[: self._count]
        return np.concatenate((self._data[self._next :], self._data[: self._next]))
