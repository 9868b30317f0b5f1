"""The Run tab: the run's controls over the live gauges, the runs it starts, and what the
dashboard's timer draws there.

A run is built on the chosen model and a session of the kernel's accelerator state, its times
going to the metrics stream the gauges read. The gauges show that run's calls only (from a mark
in the stream at its start); before any run they show every metered call in the kernel, and
say so. A timer pass asks :meth:`RunTab.look` whether
anything shown has moved, and only then :meth:`RunTab.draw` draws: while a run goes on, the time
charts (whole simulated seconds) are sent at most once per ``CHART_PERIOD_S``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import ipywidgets as w

from ei_widgets.device import metrics
from ei_widgets.device.accelerator import AcceleratorState, Change
from ei_widgets.device.catalog import Catalog, default_catalog
from ei_widgets.device.judgement import Judgements
from ei_widgets.device.pacing import Pacing
from ei_widgets.device.runs import Progress, Run, RunError, RunState
from ei_widgets.device.sessions import session
from ei_widgets.errors import EIError
from ei_widgets.notebook.views.gauges import SERIES_SECONDS, GaugesPanel
from ei_widgets.notebook.views.run import RunPanel
from ei_widgets.notebook.views.tab import Board, Chosen, DashboardTab, TabSpec
from ei_widgets.profiling.result import Profile

CHART_PERIOD_S = 1.0
"""While a run goes on, the time charts (whole simulated seconds) are redrawn at most this often
(wall seconds), so drawing costs the run little; the progress still moves 5 times a second."""

ChosenModel = Callable[[], tuple[object, Profile | None]]
"""The chosen model and its profile; raises RunError when no model is chosen."""


class Look(NamedTuple):
    """What one timer pass read: the stream's snapshot and the run's progress."""

    snapshot: metrics.MetricsSnapshot
    progress: Progress | None


class RunTab(w.VBox, DashboardTab):
    """The run panel (``panel``) over the gauges (``gauges``), on the kernel's state and stream.

    ``catalog``: the dashboard's fixed catalog (None: the kernel's default, read when needed).
    """

    def __init__(
        self,
        chosen: ChosenModel,
        on_batch: Callable[[int], None],
        *,
        state: AcceleratorState,
        stream: metrics.MetricsStream,
        catalog: Catalog | None,
    ) -> None:
        self._chosen = chosen
        self._state = state
        self._stream = stream
        self._catalog = catalog
        self._last_key: tuple[Any, ...] | None = None
        self._judgements: Judgements | None = None  # the dashboard's, of the chosen model
        self._mark: metrics.Mark | None = None  # the current run's start in the stream
        self._last_clock: Pacing | None = None
        self._charts_drawn_at = -CHART_PERIOD_S  # monotonic time the time charts were last sent
        self.panel = RunPanel(self._make_run, on_batch)
        self.gauges = GaugesPanel((catalog or default_catalog()).latency_accuracy)
        super().__init__([self.panel, self.gauges])

    def invalidate(self) -> None:
        """Make the next pass draw (what it shows changed outside the stream and the run)."""
        self._last_key = None

    def show_charts(self) -> None:
        """The tab was opened: its charts go on the page, and the next pass sends their data."""
        self.gauges.show_charts()
        self._last_key = None

    def show_model(self, chosen: Chosen) -> None:
        self._judgements = chosen.judgements
        self.show_breakdown()

    def follow(self, change: Change) -> None:
        self.invalidate()  # the gauges name what is attached: redraw them
        self.show_breakdown()

    def opened(self) -> None:
        self.show_charts()

    def hidden(self) -> None:
        self.gauges.hide_charts()

    def figures(self) -> tuple[w.Widget, ...]:
        return (*self.gauges.figures, *self.gauges.chart_boxes)

    def show_breakdown(self) -> None:
        """The modelled call of the chosen model on what is attached, at the run's batch, from
        the dashboard's one judgement of it."""
        judgements = self._judgements
        att = self._state.attachment
        judged = None
        if judgements is not None and att is not None:
            judged = judgements.by_accelerator.get(att.name, {}).get(att.precision)
        accuracy = judgements.accuracy.text if judgements is not None else None
        self.gauges.set_breakdown(judged.estimate if judged else None, accuracy)

    def _make_run(self, **options: Any) -> Run:
        """Build the run the panel asked for, on the chosen model."""
        model, chosen = self._chosen()
        if self._state.attachment is None:
            raise RunError(
                "Attach an accelerator first (Accelerator tab, %ei_attach, or the "
                "status bar picker)."
            )
        clock: Pacing = options["clock"]
        if self._last_clock is not None and clock != self._last_clock:
            self._stream.reset()  # one stream holds one clock's times
        self._last_clock = clock
        # the run's figures are the calls after this mark only (the stream goes on for the meter)
        self._mark = self._stream.mark()
        self.gauges.reset()
        self._last_key = None
        state, stream, catalog = self._state, self._stream, self._catalog

        def open_session() -> Any:
            return session(
                model,
                clock=clock,
                batch_size=options["batch_size"],
                profile=chosen,
                state=state,
                stream=stream,
                catalog=catalog,
            )

        return Run(model, profile=chosen, session_factory=open_session, **options)

    def look(self, *seen: Hashable) -> Look | None:
        """What a pass would draw, or None when nothing shown has moved since the last pass
        (``seen``: what else the pass depends on, such as the tab shown)."""
        run = self.panel.run
        snap = self._stream.snapshot(since=self._mark)
        progress = run.progress() if run is not None else None
        running = progress is not None and progress.state is RunState.RUNNING
        key = (
            snap.calls,
            snap.errors,
            snap.memory_bytes,
            snap.accelerator,
            self._state.attachment,
            *seen,
            progress.state if progress else None,
            progress.done if progress else None,
            round(progress.elapsed_s, 1) if progress and running else None,
        )
        if key == self._last_key:
            return None
        self._last_key = key
        return Look(snap, progress)

    def draw(self, look: Look, *, visible: bool, target_ms: float) -> int:
        """Draw what ``look`` read (the charts only when ``visible``); messages sent."""
        snap, progress = look
        series = self._stream.series(SERIES_SECONDS, since=self._mark)
        att = self._state.attachment
        self.gauges.set_target(target_ms)
        now = time.monotonic()
        running = progress is not None and progress.state is RunState.RUNNING
        # drawn only where seen, and while a run goes on at most once per CHART_PERIOD_S
        charts = visible and (not running or now - self._charts_drawn_at >= CHART_PERIOD_S)
        if charts:
            self._charts_drawn_at = now
        sent = self.gauges.refresh(
            snap,
            series,
            self._capacity(snap.accelerator),
            paced=self._last_clock == "paced",
            attached=att.name if att is not None else None,
            charts=charts,
            scope="run" if self._mark is not None else "kernel",
        )
        return sent + self.panel.refresh()

    def _capacity(self, accelerator: str | None) -> int | None:
        name = accelerator
        if name is None:
            att = self._state.attachment
            name = att.name if att is not None else None
        if name is None:
            return None
        try:
            return (self._catalog or default_catalog()).accelerator(name).memory_bytes
        except EIError:
            return None


def _make(board: Board) -> RunTab:
    return RunTab(
        board.chosen_model,
        board.batch_changed,
        state=board.state,
        stream=board.stream,
        catalog=board.fixed_catalog,
    )


TAB = TabSpec("Run", _make)
