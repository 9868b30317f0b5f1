"""The Accelerator tab's fp16 check: what fp16 does to the chosen model's own outputs, measured.

"Measure fp16 effect" runs ``ei_widgets.device.fp16.fp16_check`` on the chosen model in a background
thread (the kernel keeps taking cells, as during a run); its ``on_progress`` drives the progress
bar, then the panel shows the agreement (top-1 and top-5 for a classifier), the largest error, or
the one-line reason the model could not be measured. Any other failure is shown in the panel,
never lost in the thread.

The fp16 tools (onnxruntime's float16 converter) are imported on the first click only, so a
dashboard that never measures fp16 never loads them. Results are kept per model object: a second
click shows the answer at once. Widget updates from the thread take the dashboard's UI lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ei_widgets.common.html import BAD, GOOD
from ei_widgets.common.units import format_ms, format_percent, significant
from ei_widgets.device import fp16
from ei_widgets.device.fp16 import FP16Check
from ei_widgets.device.runs import short_message
from ei_widgets.notebook.views.common import MEASURED, NO_MATH, error_html, esc, note
from ei_widgets.profiling.result import Profile

NOT_MEASURED = (
    "not measured"  # ei_widgets.device.fp16.NOT_MEASURED, without importing the fp16 tools
)
CONVERT_SHARE = 0.5  # of the bar: conversion reports only its start and end, comparison per call

_STAGES = {"convert": "converting to fp16", "compare": "running fp32 and fp16 on the same inputs"}


def result_html(check: FP16Check) -> str:
    """The check in a few lines: the agreement and largest error first, what it ran on after."""
    if not check.measured:
        return (
            f'<div class="{NO_MATH}" style="font-size:13px;color:{BAD}">fp16 {NOT_MEASURED}:'
            f" {esc(check.reason)}</div>"
        )
    out = check.classifier or max(check.outputs, key=lambda o: o.max_rel, default=None)
    head = esc(check.agreement)
    error = ""
    if out is not None:
        error = (
            f" · max |error| {esc(significant(out.max_abs) if out.max_abs else '0')}"
            f" ({esc(format_percent(out.max_rel))} of the largest output)"
        )
    where = (
        f"{check.inputs}; converted in {format_ms(check.convert_seconds)}, compared in "
        f"{format_ms(check.compare_seconds)}"
        + (f"; kept in fp32: {', '.join(check.kept_fp32)}" if check.kept_fp32 else "")
        + "."
    )
    return (
        f'<div class="{NO_MATH}" style="font-size:13px"><b>fp16 vs fp32</b> {MEASURED}'
        f' <span style="color:{GOOD}">{head}</span>{error}</div>' + note(where)
    )


class FP16Panel(w.VBox):
    """The "Measure fp16 effect" button, its progress bar and the answer, for the chosen model.

    ``resolve(variable)`` is the model object the variable holds now (the kernel's namespace);
    ``lock`` serialises widget updates with the rest of the dashboard; ``on_done(variable,
    check)`` is called (in the check's thread, under ``lock``) once a check has completed, so the
    dashboard can redraw what depends on it (the fp16 note, the Sizing table).
    """

    def __init__(
        self,
        resolve: Callable[[str], object],
        *,
        lock: Any = None,
        on_done: Callable[[str, FP16Check], None] | None = None,
    ) -> None:
        self._resolve = resolve
        self._lock = lock if lock is not None else threading.RLock()
        self._on_done = on_done
        self._closed = threading.Event()
        self.variable: str | None = None
        self.profile: Profile | None = None
        # variable -> (the object measured, its check): an object reassigned or deleted is not
        # mistaken for the one measured, and is let go after the next cell (``refresh``)
        self.results: dict[str, tuple[object, FP16Check]] = {}
        self.thread: threading.Thread | None = None
        self._busy = False  # a check is running (cleared by its thread before its last redraw)
        self.shown: FP16Check | None = None  # the check the panel shows now
        self.button = w.Button(
            description="Measure fp16 effect",
            icon="balance-scale",
            tooltip="convert the chosen model to fp16 for real and compare its outputs with fp32",
            disabled=True,
            layout=w.Layout(width="auto", min_width="170px"),
        )
        self.button.on_click(lambda _b: self.start())
        self.progress = w.FloatProgress(
            value=0.0, min=0.0, max=1.0, layout=w.Layout(width="220px", visibility="hidden")
        )
        self.stage = w.HTML()
        self.result = w.HTML()
        super().__init__(
            [
                w.HBox(
                    [self.button, self.progress, self.stage],
                    layout=w.Layout(align_items="center"),
                ),
                self.result,
            ]
        )
        self.set_model(None, None)

    @property
    def running(self) -> bool:
        return self._busy

    def set_model(self, variable: str | None, profile: Profile | None) -> None:
        """The chosen model's variable (None: no model) and profile: show its check if one is
        known, else what the button does."""
        with self._lock:
            self.variable, self.profile = variable, profile
            self.button.disabled = variable is None or self.running
            self.button.tooltip = (
                "choose a model in the Models tab first"
                if variable is None
                else "convert the chosen model to fp16 for real and compare its outputs with fp32"
            )
            if self.running:
                return  # the running check says what it is doing
            check = self.shown = self.known()
            self.progress.layout.visibility = "hidden"
            self.stage.value = ""
            if check is not None:
                self.result.value = result_html(check)
            elif variable is None:
                self.result.value = ""
            else:
                self.result.value = note(
                    f"What fp16 does to {variable}'s own outputs is {NOT_MEASURED} yet: "
                    "Measure fp16 effect converts it and compares (seeded random inputs)."
                )

    def refresh(self) -> bool:
        """After a cell: show a check of the chosen model run meanwhile elsewhere (a magic, the
        API), and tell ``on_done``. True when there was one."""
        with self._lock:
            for variable in list(self.results):
                if self._measured(variable) is None:
                    del self.results[variable]
            if self.running or self.variable is None:
                return False
            check = self.known()
            if check is None or check is self.shown:
                return False
            self.set_model(self.variable, self.profile)
            if self._on_done is not None:
                self._on_done(self.variable, check)
            return True

    def _measured(self, variable: str) -> FP16Check | None:
        """The check this panel made of the object ``variable`` holds now, if any."""
        entry = self.results.get(variable)
        if entry is None:
            return None
        try:
            current = self._resolve(variable)
        except KeyError:
            return None
        return entry[1] if entry[0] is current else None

    def known(self) -> FP16Check | None:
        """The chosen model's check, run here or elsewhere in this process (a magic, the API)."""
        if self.variable is None:
            return None
        hit = self._measured(self.variable)
        if hit is not None or self.profile is None:
            return hit
        return fp16.cached_check(self.profile)

    def start(self) -> threading.Thread | None:
        """Measure the chosen model in a background thread; a known answer is shown at once."""
        with self._lock:
            if self.variable is None or self.running:
                return None
            variable = self.variable
            try:
                model = self._resolve(variable)
            except KeyError:
                self.result.value = error_html(f"{variable} is no longer in the kernel.")
                return None
            hit = self._measured(variable)
            if hit is not None:
                self._show_done(hit)
                return None
            self._busy = True
            self.button.disabled = True
            with self.progress.hold_sync():
                self.progress.value = 0.0
                self.progress.bar_style = "info"
                self.progress.layout.visibility = "visible"
            self.stage.value = note("starting…")
            self.result.value = ""
            self.thread = threading.Thread(
                target=self._work, args=(variable, model), name="ei-widgets-fp16", daemon=True
            )
            self.thread.start()
            return self.thread

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running check ends (tests and scripts); True when none is running."""
        thread = self.thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def close_panel(self) -> None:
        """Stop drawing: a check still running finishes (it cannot be interrupted) unseen."""
        self._closed.set()
        self.results.clear()  # the models measured are the kernel's to keep, not ours

    # --- the check's thread --------------------------------------------------------------------

    def _progress(self, stage: str, fraction: float) -> None:
        """``fp16_check``'s on_progress: conversion fills the first part of the bar."""
        share = (
            CONVERT_SHARE * fraction
            if stage == "convert"
            else CONVERT_SHARE + (1 - CONVERT_SHARE) * fraction
        )
        with self._lock:
            if self._closed.is_set():
                return
            value = round(min(1.0, max(self.progress.value, share)), 3)  # never backwards
            if value != self.progress.value:
                self.progress.value = value
            text = note(f"{_STAGES.get(stage, stage)}… {format_percent(fraction)}")
            if self.stage.value != text:
                self.stage.value = text

    def _work(self, variable: str, model: object) -> None:
        try:
            # the variable's name is the profile's, so recommend() and the fp16 note find it
            check = fp16.fp16_check(model, name=variable, on_progress=self._progress)
        except Exception as error:  # shown in the panel, never lost in the thread
            self._show_failure(variable, error)
            return
        with self._lock:
            self.results[variable] = (model, check)
            self._busy = False
            if self._closed.is_set():
                return
            if self.variable == variable:
                self._show_done(check)
            else:
                self.set_model(self.variable, self.profile)  # another model chosen meanwhile
            if self._on_done is not None:
                try:
                    self._on_done(variable, check)
                except Exception as error:  # the check stands; say what could not follow it
                    self.result.value += error_html(
                        f"Measured, but the views could not be redrawn: {short_message(error)}"
                    )

    def _show_done(self, check: FP16Check) -> None:
        self.shown = check
        with self.progress.hold_sync():
            self.progress.value = self.progress.max
            self.progress.bar_style = "success" if check.measured else "warning"
            self.progress.layout.visibility = "visible"
        self.stage.value = note("done" if check.measured else NOT_MEASURED)
        self.result.value = result_html(check)
        self.button.disabled = self.variable is None

    def _show_failure(self, variable: str, error: BaseException) -> None:
        with self._lock:
            self._busy = False
            if self._closed.is_set():
                return
            self.shown = None
            self.progress.bar_style = "danger"
            self.stage.value = note("failed")
            self.result.value = error_html(
                f"The fp16 check of {variable} failed: {short_message(error)}"
            )
            self.button.disabled = self.variable is None
