"""The Run panel: batch, requests or duration, concurrency, clock; Run/Stop; progress.

The panel builds a :class:`~ei_widgets.device.runs.Run` (the core load generator) and starts it; the
run works in background threads while the kernel keeps taking cells. Progress is drawn by the
dashboard's timer through ``refresh()``, never from the run's threads.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w

from ei_widgets.common.html import BAD, GOOD, GREY, INFO, WARN
from ei_widgets.common.units import significant
from ei_widgets.device.pacing import DEFAULT_PACING, PACINGS
from ei_widgets.device.runs import Progress, Run, RunState
from ei_widgets.errors import EIError
from ei_widgets.notebook.views.common import bounded, error_html, esc, note, set_if_changed

RunFactory = Callable[..., Run]

_LABEL = {"description_width": "90px"}

_STATE_COLOURS = {
    RunState.IDLE: GREY,
    RunState.RUNNING: INFO,
    RunState.STOPPED: WARN,
    RunState.FINISHED: GOOD,
    RunState.FAILED: BAD,
}


class RunPanel(w.VBox):
    """Controls and progress of one load-generating run at a time."""

    def __init__(self, make_run: RunFactory, on_batch: Callable[[int], None]) -> None:
        self._make_run = make_run
        self.run: Run | None = None
        self.batch = bounded(w.BoundedIntText, 1, 1, 4096, "Batch size", "220px", style=_LABEL)
        self.mode = w.ToggleButtons(
            options=[("requests", "requests"), ("duration", "duration")],
            value="requests",
            description="Run for",
            style={"button_width": "80px"},
        )
        self.requests = bounded(
            w.BoundedIntText, 200, 1, 10_000_000, "Requests", "220px", style=_LABEL
        )
        self.duration = bounded(
            w.BoundedFloatText, 10.0, 0.1, 86_400.0, "Seconds", "220px", step=1.0, style=_LABEL
        )
        self.duration.layout.display = "none"
        self.concurrency = bounded(w.BoundedIntText, 1, 1, 64, "Concurrency", "220px", style=_LABEL)
        self.clock = w.ToggleButtons(
            options=[(p, p) for p in PACINGS],
            value=DEFAULT_PACING,
            description="Clock",
            style={"button_width": "80px"},
            tooltips=[
                "each call lasts its simulated latency in wall time",
                "no waiting: simulated time advances by each call's latency",
            ],
        )
        self.run_button = w.Button(description="Run", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True)
        self.progress = w.FloatProgress(
            value=0.0, min=0.0, max=1.0, layout=w.Layout(width="320px", max_width="100%")
        )
        self.progress_text = w.HTML(note("idle"))
        self.message = w.HTML()
        self.mode.observe(self._on_mode, names="value")
        self.batch.observe(lambda change: on_batch(int(change["new"])), names="value")
        self.run_button.on_click(lambda _b: self.start())
        self.stop_button.on_click(lambda _b: self.stop())
        super().__init__(
            [
                w.HTML(
                    "<b>Run</b> "
                    + note(
                        "Real inference on this host's onnxruntime with random (seeded) inputs; "
                        "time is simulated for the attached accelerator. The kernel stays free."
                    )
                ),
                w.HBox([self.batch, self.concurrency]),
                w.HBox([self.mode, self.requests, self.duration]),
                self.clock,
                w.HBox([self.run_button, self.stop_button, self.progress, self.progress_text]),
                self.message,
            ]
        )

    def _on_mode(self, change: dict[str, object]) -> None:
        by_requests = change["new"] == "requests"
        self.requests.layout.display = "" if by_requests else "none"
        self.duration.layout.display = "none" if by_requests else ""

    def start(self) -> Run | None:
        """Build and start a run from the controls; a refusal is shown as a short message."""
        if self.run is not None and self.run.state is RunState.RUNNING:
            self.message.value = error_html("A run is already going; stop it first.")
            return None
        by_requests = self.mode.value == "requests"
        try:
            run = self._make_run(
                batch_size=int(self.batch.value),
                requests=int(self.requests.value) if by_requests else None,
                duration_s=None if by_requests else float(self.duration.value),
                concurrency=int(self.concurrency.value),
                clock=self.clock.value,
            )
        except EIError as error:
            self.message.value = error_html(str(error))
            return None
        self.run = run
        self.message.value = ""
        run.start()
        self.refresh()
        return run

    def stop(self) -> bool:
        """Stop the current run; True once it has ended (within half a second)."""
        if self.run is None:
            return True
        ended = self.run.stop(timeout=0.5)
        self.refresh()
        return ended

    def refresh(self) -> bool:
        """Draw the run's progress (called by the dashboard's timer); True when anything changed."""
        run = self.run
        if run is None:
            return False
        p: Progress = run.progress()
        running = p.state is RunState.RUNNING
        changed = False
        for widget, values in (
            # a disabled button is drawn plain, so it never looks pressable
            (self.run_button, {"disabled": running, "button_style": "" if running else "success"}),
            (
                self.stop_button,
                {"disabled": not running, "button_style": "danger" if running else ""},
            ),
            (
                self.progress,
                {
                    "value": round(p.fraction, 3),
                    "bar_style": "danger"
                    if p.state is RunState.FAILED
                    else "success"
                    if p.state is RunState.FINISHED
                    else "warning"
                    if p.state is RunState.STOPPED
                    else "info",
                },
            ),
        ):
            before = {k: getattr(widget, k) for k in values}
            set_if_changed(widget, **values)
            changed |= before != values
        total = f"/{p.total:,}" if p.total is not None else ""
        budget = f" of {p.duration_s:g} s" if p.duration_s is not None else ""
        colour = _STATE_COLOURS[p.state]
        text = (
            f'<div style="font-size:12px;font-variant-numeric:tabular-nums">'
            f'<b style="color:{colour}">{p.state.value}</b> · {p.done:,}{total} requests'
            f" ({p.inferences:,} inferences) · {significant(p.elapsed_s)} s{budget} wall"
            f" · {significant(p.requests_per_s)} requests/s on this host</div>"
        )
        if self.progress_text.value != text:
            self.progress_text.value = text
            changed = True
        error = error_html(f"The run failed: {p.error}") if p.error else ""
        if p.error and self.message.value != error:
            self.message.value = error
            changed = True
        return changed

    def describe(self) -> str:
        """The run's state in a few words (for the dashboard's header)."""
        if self.run is None:
            return "no run yet"
        p = self.run.progress()
        total = f"/{p.total:,}" if p.total is not None else ""
        return esc(f"run: {p.done:,}{total} requests, {p.state.value}")
