"""Live gauges: throughput and latency over time, memory and utilisation, the latency breakdown.

The panel is passive: ``refresh()`` is called by the dashboard's one timer thread (about 5 times
a second) with a metrics snapshot and its per-second series, and sends a widget message only for
the figures whose data changed. Nothing here runs per inference.

How the figures read:

- **One time base.** Both time charts run on simulated seconds since the run started, whichever
  clock ran (a paced session's timeline leaves out the delays this machine added), so a paced and
  a virtual run of the same model show the same steady-state throughput.
- **Whole seconds only.** Throughput is drawn for complete seconds: the run's first and the
  still-filling (or last) second are left out, so partial seconds never draw ramps.
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

from ei_widgets.estimate import TERMS, Estimate
from ei_widgets.metrics import MetricsSnapshot, SeriesPoint
from ei_widgets.units import format_bytes, format_ms, format_percent, significant
from ei_widgets.views.common import SIMULATED, esc, set_if_changed

SERIES_SECONDS = 120
"""Seconds of history drawn in the time charts (the stream keeps its own bounded ring)."""

QUANTILE_POINTS = 600
"""p50/p95 samples kept for the latency chart (one per refresh that saw new calls)."""

HOST_BOUND_SHARE = 0.5
"""Show the host-bound mark when at least this share of calls were host-bound (per the session)."""

TARGET_SPAN = 3.0
"""The latency target is drawn when it lies within this factor of the highest latency shown."""

TERM_COLOURS = {
    "network": "#6c8ebf",
    "compute": "#82b366",
    "memory": "#d6b656",
    "launch": "#b39ddb",
    "host": "#e57373",
}
LINE_COLOURS = {"p50": "#2ca02c", "p95": "#d62728", "mean": "#999999", "target": "#1f5fa8"}

TIME_AXIS = "simulated seconds since the run started"
THROUGHPUT_TITLE = "Throughput, whole seconds"
THROUGHPUT_WAITING = "Throughput: no whole simulated second yet"
HOST_BOUND_TEXT = (
    '<span style="background:#e57373;color:white;font-weight:600;padding:2px 10px;'
    'border-radius:10px" title="Most calls took longer on this machine&#39;s CPU than their '
    'simulated latency, so the paced run could not keep the simulated pace">HOST-BOUND</span>'
    " This machine cannot keep up with the simulated device; the simulated figures are"
    " unaffected."
)

_MARGIN = {"top": 30, "bottom": 40, "left": 70, "right": 15}
_LABEL_OFFSET = "55px"
_TICKS = ",.3~r"  # three significant figures, plain decimals: never "900m" for 0.9


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


def _line(scales: dict[str, bq.Scale], colour: str, label: str, **style: Any) -> bq.Lines:
    return bq.Lines(
        x=np.zeros(0), y=np.zeros(0), scales=scales, colors=[colour], labels=[label], **style
    )


def _swatch(colour: str, text: str, dashed: bool = False) -> str:
    line = "dashed" if dashed else "solid"
    return (
        f'<span style="white-space:nowrap"><span style="display:inline-block;width:14px;'
        f'border-top:2px {line} {colour};margin:0 4px 3px 0"></span>{text}</span>'
    )


def gauge_html(label: str, fraction: float | None, text: str, colour: str) -> str:
    """One horizontal gauge: a label, a bar filled to ``fraction`` (0..1) and the number."""
    width = 0.0 if fraction is None else max(0.0, min(fraction, 1.0)) * 100
    over = fraction is not None and fraction > 1
    fill = "#a4262c" if over else colour
    return (
        '<div style="display:flex;align-items:center;gap:8px;font-size:12px;margin:3px 0">'
        f'<span style="width:150px">{esc(label)}</span>'
        '<span style="flex:0 0 160px;height:10px;background:#e8e8e8;border-radius:5px;'
        f'overflow:hidden"><span style="display:block;height:100%;width:{width:.1f}%;'
        f'background:{fill}"></span></span>'
        f'<span style="font-variant-numeric:tabular-nums">{esc(text)}</span></div>'
    )


class GaugesPanel(w.VBox):
    """Throughput, latency p50/p95, memory against capacity, utilisation, latency breakdown."""

    def __init__(self) -> None:
        self._origin: int | None = None  # first stream second shown, so x starts at 0
        self._quantiles = _Ring(QUANTILE_POINTS)  # (run second, p50 ms, p95 ms)
        self._last_calls = -1
        self._target_ms: float | None = None
        self._warmup_ms: float | None = None  # the last warm-up call's latency, if any
        self._legend_key: tuple[Any, ...] | None = None
        self._gauge_key: tuple[Any, ...] | None = None
        self.messages_sent = 0  # widget updates actually sent (coalescing check in tests)

        tx, ty = bq.LinearScale(), bq.LinearScale(min=0)
        self.throughput = _line({"x": tx, "y": ty}, "#1f77b4", "inferences/s", stroke_width=2)
        self.throughput_figure = _figure(
            [self.throughput],
            [
                bq.Axis(scale=tx, label=TIME_AXIS, tick_format=_TICKS),
                bq.Axis(
                    scale=ty,
                    side="left",
                    label="inferences/s",
                    tick_format=_TICKS,
                    label_offset=_LABEL_OFFSET,
                ),
            ],
            THROUGHPUT_TITLE,
        )

        self.latency_scale = bq.LinearScale(min=0)
        scales = {"x": bq.LinearScale(), "y": self.latency_scale}
        # markers on the per-second means, so a run shorter than two seconds still shows a point
        self.latency_mean = _line(
            scales, LINE_COLOURS["mean"], "mean per second", marker="circle", marker_size=16
        )
        self.latency_p50 = _line(scales, LINE_COLOURS["p50"], "p50", stroke_width=2)
        self.latency_p95 = _line(scales, LINE_COLOURS["p95"], "p95", stroke_width=2)
        self.latency_target = _line(
            scales, LINE_COLOURS["target"], "latency target", line_style="dashed"
        )
        self.latency_figure = _figure(
            [self.latency_mean, self.latency_p50, self.latency_p95, self.latency_target],
            [
                bq.Axis(scale=scales["x"], label=TIME_AXIS, tick_format=_TICKS),
                bq.Axis(
                    scale=self.latency_scale,
                    side="left",
                    label="ms per call",
                    tick_format=_TICKS,
                    label_offset=_LABEL_OFFSET,
                ),
            ],
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
        self.breakdown_figure = _figure(
            [self.breakdown],
            [
                bq.Axis(scale=bx, side="left"),
                bq.Axis(scale=by, label="ms per call", tick_format=_TICKS),
            ],
            "Latency breakdown",
            height="150px",
        )
        self.breakdown_text = w.HTML()

        self.summary = w.HTML()
        self.host_bound = w.HTML(HOST_BOUND_TEXT, layout=w.Layout(display="none"))
        self.memory_gauge = w.HTML()
        self.utilisation_gauge = w.HTML()
        self.grid = w.GridBox(
            layout=w.Layout(grid_template_columns="repeat(2, minmax(260px, 1fr))", width="100%")
        )
        super().__init__(
            [
                w.HTML(f"<b>Live gauges</b> {SIMULATED}"),
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

    def show_charts(self) -> None:
        """Put the charts on the page (once their tab is visible, so they have a width)."""
        if not self.charts_shown:
            self.grid.children = (
                w.VBox([self.throughput_figure]),
                w.VBox([self.latency_figure, self.latency_legend]),
                w.VBox([self.breakdown_figure, self.breakdown_text]),
            )

    # --- updates -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the drawn history and clear the time charts (a new run starts)."""
        self._origin = None
        self._quantiles.clear()
        self._last_calls = -1
        empty = np.zeros(0)
        for mark in (
            self.throughput,
            self.latency_mean,
            self.latency_p50,
            self.latency_p95,
            self.latency_target,
        ):
            self.messages_sent += _set_xy(mark, empty, empty)

    def set_target(self, target_ms: float | None) -> None:
        """The latency target drawn on the latency chart (the Sizing tab's)."""
        self._target_ms = target_ms

    def set_breakdown(self, estimate: Estimate | None) -> None:
        """Show the modelled per-call breakdown (network, compute, memory, launch, host)."""
        if estimate is None:
            values = np.zeros((len(TERMS), 1))
            what = "Attach an accelerator and choose a model to see where a call's time goes."
        else:
            parts = estimate.breakdown
            values = np.array([[parts[t] * 1e3] for t in TERMS])
            what = (
                f"{estimate.target}, batch {estimate.batch_size}, {estimate.precision}:"
                f" {format_ms(estimate.latency_s)} per call, {estimate.bound}-bound (modelled)."
            )
        if not _same(self.breakdown.y, values):
            self.breakdown.y = values
            self.messages_sent += 1
        legend = " ".join(
            f'<span style="white-space:nowrap"><span style="display:inline-block;width:10px;'
            f'height:10px;background:{TERM_COLOURS[t]};margin-right:3px"></span>{t}'
            + (f" {format_ms(float(v[0]) / 1e3)}" if estimate is not None else "")
            + "</span>"
            for t, v in zip(TERMS, values, strict=True)
        )
        set_if_changed(
            self.breakdown_text,
            value=f'<div style="font-size:12px">{esc(what)}</div>'
            f'<div style="font-size:12px;display:flex;flex-wrap:wrap;gap:8px">{legend}</div>',
        )

    def _render_legend(self, warmup_ms: float | None, target_shown: bool = True) -> int:
        target = self._target_ms
        key = (target, warmup_ms, target_shown)
        if key == self._legend_key:  # drawn each pass: skip the string work when unchanged
            return 0
        self._legend_key = key
        items = [
            _swatch(LINE_COLOURS["p50"], "p50"),
            _swatch(LINE_COLOURS["p95"], "p95"),
            _swatch(LINE_COLOURS["mean"], "mean per second"),
        ]
        if target is not None:
            where = "" if target_shown else " (above this scale)"
            items.append(
                _swatch(LINE_COLOURS["target"], f"target {format_ms(target / 1e3)}{where}", True)
            )
        if warmup_ms is not None:
            items.append(
                f'<span style="white-space:nowrap">warm-up call {format_ms(warmup_ms / 1e3)},'
                " left out of the scale</span>"
            )
        value = (
            '<div style="font-size:12px;display:flex;flex-wrap:wrap;gap:10px">'
            + "".join(items)
            + "</div>"
        )
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
    ) -> int:
        """Draw the latest metrics; returns how many widget updates were sent (0 if none).

        ``paced``: the run keeps wall time (only then can this machine fall behind). ``attached``:
        the accelerator attached now (named in the memory gauge before any call). ``charts``:
        the time charts are on screen (else their data is kept but not sent; the next pass with
        ``charts`` sends it).
        """

        def put(mark: bq.Mark, x: np.ndarray, y: np.ndarray) -> int:
            return _set_xy(mark, x, y) if charts else 0

        sent = 0
        self._warmup_ms = None if math.isnan(snapshot.warmup_ms) else snapshot.warmup_ms
        points = list(series)[-SERIES_SECONDS:]
        top = 0.0
        if points:
            if self._origin is None or points[0].second < self._origin:
                self._origin = points[0].second
            x = np.array([p.second - self._origin for p in points], dtype=float)
            whole = slice(1, -1)  # the first and the last second are partial
            sent += put(
                self.throughput,
                x[whole],
                np.array([p.inferences for p in points[whole]], dtype=float),
            )
            if charts:
                title = THROUGHPUT_TITLE if len(points) > 2 else THROUGHPUT_WAITING
                set_if_changed(self.throughput_figure, title=title)
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

        sent += self._gauges(snapshot, capacity_bytes, attached)

        summary = (
            '<div style="font-size:13px;font-variant-numeric:tabular-nums">'
            f"<b>{significant(snapshot.throughput_per_s)}</b> inferences/s"
            f" &nbsp;·&nbsp; p50 <b>{_ms(snapshot.p50_ms)}</b>"
            f" &nbsp;·&nbsp; p95 <b>{_ms(snapshot.p95_ms)}</b>"
            f" &nbsp;·&nbsp; {snapshot.calls:,} calls, {snapshot.inferences:,} inferences"
            f"{f', {snapshot.errors:,} errors' if snapshot.errors else ''}"
            f" &nbsp;·&nbsp; {significant(snapshot.simulated_seconds)} s simulated</div>"
        )
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
            sent += _set_xy(self.latency_target, np.array([0.0, span]), np.array([target, target]))
        else:
            empty = np.zeros(0)
            sent += _set_xy(self.latency_target, empty, empty)
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
        if capacity_bytes and name:
            used = snapshot.memory_bytes
            memory = gauge_html(
                f"{name} memory",
                used / capacity_bytes,
                f"{format_bytes(used)} / {format_bytes(capacity_bytes)}"
                f" ({format_percent(used / capacity_bytes)})"
                + (f", peak {format_bytes(snapshot.peak_memory_bytes)}" if used else "")
                + (" — over capacity" if used > capacity_bytes else ""),
                "#6c8ebf",
            )
            utilisation = gauge_html(
                "utilisation",
                snapshot.utilisation,
                f"{format_percent(snapshot.utilisation)} of peak FLOP/s",
                "#82b366",
            )
        else:
            memory = gauge_html("accelerator memory", None, "no accelerator attached", "#6c8ebf")
            utilisation = gauge_html("utilisation", None, "—", "#82b366")
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


def _ms(milliseconds: float) -> str:
    return "—" if math.isnan(milliseconds) else format_ms(milliseconds / 1e3)
