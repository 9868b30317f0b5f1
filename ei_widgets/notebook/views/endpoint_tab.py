"""The Endpoint tab: a live view of a hosted endpoint of this kernel (``ei_widgets.deploy``).

What it shows of the endpoint chosen (the newest by default): throughput and errors per second,
``ModelLatency`` p50/p90/p99 against the p90 target, queue depth, instances, and the endpoint's
cost so far, ticking each second. Everything comes from one call, ``Predictor.live()``, a small
snapshot of the server's per-second CloudWatch series; the tab computes nothing of its own.

How it stays cheap: its poller, a view-side thread like the dashboard's timer, runs only while
the tab is shown (started by ``opened()``, stopped by ``hidden()`` and ``close_tab()``); it polls
once a second and draws under the dashboard's lock, sending a message only for what changed.
Without an endpoint it shows how to deploy one.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence

import bqplot as bq
import ipywidgets as w
import numpy as np

from ei_widgets.common.html import BAD, GREY, WARN
from ei_widgets.common.money import format_money, per_hour
from ei_widgets.common.units import format_elapsed, format_ms, significant
from ei_widgets.device.sizing import DEFAULT_LATENCY_TARGET_MS
from ei_widgets.endpoint.predictor import LiveSnapshot, Predictor, endpoints
from ei_widgets.errors import EIError
from ei_widgets.notebook.views.charts import TICKS, clear_marks, figure, line, set_ticks, set_xy
from ei_widgets.notebook.views.common import (
    bounded,
    error_html,
    esc,
    modelled_badge,
    set_if_changed,
)
from ei_widgets.notebook.views.gauges_html import LINE_COLOURS
from ei_widgets.notebook.views.tab import Board, DashboardTab, TabSpec

POLL_S = 1.0
"""How often the tab reads ``Predictor.live()`` while it is shown (its series are per second)."""

SERIES_SECONDS = 120
"""Seconds of history drawn."""

EMPTY_TEXT = "No endpoint: deploy with ei_widgets.deploy(...) or %ei_deploy."

COLOURS = {
    "throughput": "var(--jp-brand-color1, #1f77b4)",
    "errors": "var(--jp-error-color1, #d62728)",
    "p50": LINE_COLOURS["p50"],
    "p90": "var(--jp-warn-color1, #ff7f0e)",
    "p99": LINE_COLOURS["p95"],
    "target": LINE_COLOURS["target"],
    "queue": "var(--jp-brand-color2, #6baed6)",
}

AXIS = "seconds since the endpoint was created"

Endpoints = Callable[[], Sequence[Predictor]]
"""The live endpoints, oldest first (``ei_widgets.endpoint.predictor.endpoints``)."""


def _axes(x: bq.Scale, y: bq.Scale, label: str) -> list[bq.Axis]:
    return [
        bq.Axis(scale=x, label=AXIS, tick_format=",~r", num_ticks=5),
        bq.Axis(
            scale=y, side="left", label=label, tick_format=TICKS, label_offset="55px", num_ticks=5
        ),
    ]


def _column(series: Sequence[dict[str, float]], *names: str, scale: float = 1.0) -> np.ndarray:
    """The sum of ``names`` per second (NaN where a second has none of them), times ``scale``."""
    out = np.full(len(series), math.nan)
    for i, row in enumerate(series):
        values = [row[n] for n in names if n in row and not math.isnan(row[n])]
        if values:
            out[i] = sum(values) * scale
    return out


def _plot(mark: bq.Lines, x: np.ndarray, y: np.ndarray) -> bool:
    """Draw the seconds that have a value: a second without one (no request succeeded) is left
    out, never sent as NaN (an all-NaN line gives bqplot's scale no domain)."""
    finite = np.isfinite(y)
    return set_xy(mark, x[finite], y[finite])


def _swatch(colour: str, label: str, dashed: bool = False) -> str:
    style = "dashed" if dashed else "solid"
    return (
        f'<span style="white-space:nowrap;margin-right:10px"><span style="display:inline-block;'
        f'width:16px;border-top:3px {style} {colour};vertical-align:middle;margin-right:4px">'
        f"</span>{esc(label)}</span>"
    )


class EndpointTab(w.VBox, DashboardTab):
    """The live view of one endpoint; ``list_endpoints`` and ``lock`` come from the dashboard
    (``list_endpoints``: the kernel's live endpoints; a test may pass its own)."""

    def __init__(self, lock: threading.RLock, list_endpoints: Endpoints = endpoints) -> None:
        self._lock = lock
        self._list = list_endpoints
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._shown_name: str | None = None
        self._visible = False  # the tab is the one shown: its charts may go on the page
        self.polls = 0  # passes that read the endpoints (tests, benchmarks)
        self.snapshot: LiveSnapshot | None = None

        self.empty = w.HTML(
            f'<div class="ei-endpoint-empty" style="padding:12px 4px;color:{GREY}">'
            f"{esc(EMPTY_TEXT)}</div>"
        )
        self.choice = w.Dropdown(options=[], description="Endpoint", layout=w.Layout(width="360px"))
        self.target = bounded(
            w.BoundedFloatText, DEFAULT_LATENCY_TARGET_MS, 0.1, 1e6, "p90 target (ms)", "230px",
            step=1.0, style={"description_width": "110px"},
        )  # fmt: skip
        self.delete_button = w.Button(description="Delete endpoint", icon="trash")
        self.summary = w.HTML()
        self.message = w.HTML()

        tx, ty = bq.LinearScale(min=0), bq.LinearScale(min=0)
        self.throughput = line({"x": tx, "y": ty}, COLOURS["throughput"], "Invocations/s",
                               stroke_width=2)  # fmt: skip
        self.errors = line({"x": tx, "y": ty}, COLOURS["errors"], "errors/s", stroke_width=2)
        self.throughput_figure = figure(
            [self.throughput, self.errors], _axes(tx, ty, "requests/s"), "Throughput and errors"
        )
        lx, ly = bq.LinearScale(min=0), bq.LinearScale(min=0)
        scales = {"x": lx, "y": ly}
        self.p50 = line(scales, COLOURS["p50"], "p50", stroke_width=2)
        self.p90 = line(scales, COLOURS["p90"], "p90", stroke_width=3)
        self.p99 = line(scales, COLOURS["p99"], "p99", stroke_width=2)
        self.target_line = line(scales, COLOURS["target"], "p90 target", line_style="dashed")
        self.latency_figure = figure(
            [self.p50, self.p90, self.p99, self.target_line],
            _axes(lx, ly, "ModelLatency ms"),
            "ModelLatency percentiles",
        )
        qx, qy = bq.LinearScale(min=0), bq.LinearScale(min=0)
        self.queue = line({"x": qx, "y": qy}, COLOURS["queue"], "QueueDepth", stroke_width=2)
        self.queue_figure = figure([self.queue], _axes(qx, qy, "requests waiting"), "Queue depth")
        # the time axes span the seconds shown, from the first: no padding below zero
        self.time_scales = (tx, lx, qx)
        for chart in self.figures():
            chart.padding_x = chart.padding_y = 0.0
        self.legend = w.HTML(
            '<div style="font-size:12px">'
            + _swatch(COLOURS["throughput"], "Invocations/s")
            + _swatch(COLOURS["errors"], "4XX + 5XX errors/s")
            + _swatch(COLOURS["p50"], "p50")
            + _swatch(COLOURS["p90"], "p90")
            + _swatch(COLOURS["p99"], "p99")
            + _swatch(COLOURS["target"], "p90 target", dashed=True)
            + _swatch(COLOURS["queue"], "queue depth")
            + "</div>"
        )
        columns = "repeat(auto-fit, minmax(260px, 1fr))"
        self.grid = w.GridBox(layout=w.Layout(grid_template_columns=columns, width="100%"))
        self.live_box = w.VBox(
            [
                w.HBox([self.choice, self.target, self.delete_button]),
                self.summary,
                self.legend,
                self.grid,
            ],
            layout=w.Layout(display="none"),
        )
        self.choice.observe(lambda _c: self._redraw_soon(), names="value")
        self.target.observe(lambda _c: self._redraw_soon(), names="value")
        self.delete_button.on_click(lambda _b: self.delete_chosen())
        super().__init__([self.empty, self.live_box, self.message])
        self.add_class("ei-endpoint-tab")

    # --- the dashboard's hooks -----------------------------------------------------------------

    def opened(self) -> None:
        self._visible = True
        self.poll()
        if self._poller is None or not self._poller.is_alive():
            self._stop.clear()
            self._poller = threading.Thread(
                target=self._poll_loop, name="ei-widgets-endpoint-poller", daemon=True
            )
            self._poller.start()

    def hidden(self) -> None:
        self._visible = False
        self._halt()
        with self._lock:
            self.grid.children = ()

    def close_tab(self) -> None:
        self._halt()

    def figures(self) -> tuple[w.Widget, ...]:
        return (self.throughput_figure, self.latency_figure, self.queue_figure)

    def _halt(self) -> None:
        self._stop.set()
        poller = self._poller
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=2.0 * POLL_S)
        self._poller = None

    # --- polling ----------------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.wait(POLL_S):
            self.poll()

    def _redraw_soon(self) -> None:
        if self.snapshot is not None:
            with self._lock:
                self._draw(self.snapshot)

    def chosen(self, live: Sequence[Predictor]) -> Predictor | None:
        """The endpoint to show: the one picked in the list if it is still live, else the newest."""
        by_name = {p.endpoint_name: p for p in live}
        picked = self.choice.value
        if picked in by_name:
            return by_name[picked]
        return live[-1] if live else None

    def poll(self) -> None:
        """One pass: read the live endpoints and the chosen one's snapshot, and draw them.
        A failure is shown in the tab; the next pass tries again."""
        try:
            live = list(self._list())
            predictor = self.chosen(live)
            snapshot = predictor.live(SERIES_SECONDS) if predictor is not None else None
        except EIError as error:  # deleted between the listing and the snapshot, or down
            with self._lock:
                set_if_changed(self.message, value=error_html(f"Endpoint: {error}"))
            return
        with self._lock:
            self.polls += 1
            names = [p.endpoint_name for p in live]
            if list(self.choice.options) != names:
                self.choice.options = names
            if predictor is not None and self.choice.value != predictor.endpoint_name:
                self.choice.value = predictor.endpoint_name
            set_if_changed(self.message, value="")
            self.snapshot = snapshot
            if snapshot is None:
                self._show_empty()
            else:
                self._draw(snapshot)

    def delete_chosen(self) -> None:
        """Delete the endpoint shown (its server stops and its bill ends)."""
        live = list(self._list())
        predictor = self.chosen(live)
        if predictor is None:
            return
        try:
            predictor.delete_endpoint()
        except EIError as error:
            with self._lock:
                set_if_changed(self.message, value=error_html(f"Delete: {error}"))
        self.poll()

    # --- drawing ----------------------------------------------------------------------------------

    def _show_empty(self) -> None:
        set_if_changed(self.empty.layout, display="")
        set_if_changed(self.live_box.layout, display="none")
        self.grid.children = ()  # a chart in a hidden box has no size: bqplot draws it negative
        if self._shown_name is not None:
            clear_marks(self.throughput, self.errors, self.p50, self.p90, self.p99,
                        self.target_line, self.queue)  # fmt: skip
            self._shown_name = None

    def _draw(self, snap: LiveSnapshot) -> None:
        set_if_changed(self.empty.layout, display="none")
        set_if_changed(self.live_box.layout, display="")
        # on the page only once their box shows, and only while the tab does (they need a size)
        if self._visible and not self.grid.children:
            self.grid.children = self.figures()
        if snap.endpoint_name != self._shown_name:
            clear_marks(self.throughput, self.errors, self.p50, self.p90, self.p99,
                        self.target_line, self.queue)  # fmt: skip
            self._shown_name = snap.endpoint_name
        target_ms = float(self.target.value)
        set_if_changed(self.summary, value=summary_html(snap, target_ms))
        series = snap.series
        t = np.array([row["t"] for row in series], dtype=float)
        _plot(self.throughput, t, _column(series, "Invocations"))
        _plot(self.errors, t, _column(series, "Invocation4XXErrors", "Invocation5XXErrors"))
        ms = 1e-3  # CloudWatch latencies are in microseconds
        _plot(self.p50, t, _column(series, "ModelLatency_p50", scale=ms))
        _plot(self.p90, t, _column(series, "ModelLatency_p90", scale=ms))
        _plot(self.p99, t, _column(series, "ModelLatency_p99", scale=ms))
        if len(t):
            first, last = float(t[0]), max(float(t[-1]), float(t[0]) + 1.0)
            for scale in self.time_scales:
                set_if_changed(scale, min=first, max=last)
            _plot(self.target_line, np.array([first, last]), np.array([target_ms, target_ms]))
        _plot(self.queue, t, _column(series, "QueueDepth"))
        # round ticks from 0 on the value axes (bqplot's num_ticks labels its padded domain)
        for chart, marks in (
            (self.throughput_figure, (self.throughput, self.errors)),
            (self.latency_figure, (self.p50, self.p90, self.p99, self.target_line)),
            (self.queue_figure, (self.queue,)),
        ):
            set_ticks(chart.axes[1], max((_top(mark.y) for mark in marks), default=0.0))


def _top(values: np.ndarray) -> float:
    """The largest number in ``values`` (0 when there is none)."""
    finite = values[np.isfinite(values)] if len(values) else values
    return float(finite.max()) if len(finite) else 0.0


def _last(series: Sequence[dict[str, float]], name: str) -> float:
    """The newest second's ``name`` that is a number (NaN when none)."""
    for row in reversed(series):
        value = row.get(name, math.nan)
        if not math.isnan(value):
            return value
    return math.nan


def summary_html(snap: LiveSnapshot, target_ms: float) -> str:
    """The endpoint's state in two lines: what runs and what it costs; the last second's rate,
    p90 against the target, errors and queue."""
    series = snap.series
    p90_us = _last(series, "ModelLatency_p90")
    rate = series[-1].get("Invocations", 0.0) if series else 0.0
    errors = sum(row.get("Invocation4XXErrors", 0) + row.get("Invocation5XXErrors", 0)
                 for row in series)  # fmt: skip
    throttled = sum(row.get("Throttles", 0) for row in series)
    if math.isnan(p90_us):
        p90 = "p90 —"
    else:
        over = p90_us / 1e3 > target_ms
        colour = BAD if over else "inherit"
        p90 = (
            f'<span style="color:{colour}">p90 {esc(format_ms(p90_us / 1e6))}</span>'
            f" ({'over' if over else 'within'} the {target_ms:g} ms target)"
        )
    status_colour = WARN if snap.status != "InService" else "inherit"
    return (
        '<div class="ei-endpoint-summary" style="font-size:13px;line-height:1.5;'
        'font-variant-numeric:tabular-nums">'
        f'<b>{esc(snap.endpoint_name)}</b> · <span style="color:{status_colour}">'
        f"{esc(snap.status)}</span> · {snap.instances} instance"
        f"{'s' if snap.instances != 1 else ''} · up {esc(format_elapsed(snap.uptime_seconds))}"
        f" · {esc(per_hour(snap.rate_per_hour))} · cost so far"
        f' <b class="ei-endpoint-cost">{esc(format_money(snap.cost_so_far))}</b><br>'
        f"{esc(significant(rate))} req/s last second · {p90} · queue {snap.queue_depth} of"
        f" {snap.queue_size} · {int(errors)} errors ({int(throttled)} throttled) in the last"
        f" {len(series)} s<br>"
        f'<span style="color:{GREY}">one call {esc(format_ms(snap.modelled_latency_ms / 1e3))},'
        f" saturates at {esc(significant(snap.saturation_rps))} req/s, model load"
        f" {snap.model_load_seconds:.1f} s</span> {modelled_badge(snap.accuracy)}"
        "</div>"
    )


def _make(board: Board) -> EndpointTab:
    return EndpointTab(board.lock)


TAB = TabSpec("Endpoint", _make)
