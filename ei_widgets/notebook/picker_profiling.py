"""The JupyterLab picker's profiling of a chosen model, off the kernel's main thread.

Profiling a framework model means exporting it to ONNX first (a Keras model's conversion takes
seconds to tens of seconds), so ``set-model`` and ``set-seq-len`` only start a job here and are
answered at once; the STATE's ``profiling`` field says what runs (with the export's stage, from
``ExportProgress``) or why the last job failed. When a job ends, its profile becomes the kernel's
model (``AcceleratorState.set_model``, which every view follows).

The latest choice wins: a job that ends after a newer one was started, or after the model was
chosen elsewhere meanwhile (a magic, the dashboard), is dropped rather than set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.errors import EIError
from ei_widgets.models.frameworks.base import ExportProgress, progress_listener
from ei_widgets.notebook.protocol import capped
from ei_widgets.profiling.profiler import profile
from ei_widgets.profiling.result import Profile

log = logging.getLogger(__name__)


@dataclass
class _Job:
    """One profile being made (or failed); changed only under :class:`ModelProfiler`'s lock."""

    variable: str
    seq_len: int | None
    before: tuple[str, Profile] | None  # the kernel's model when the job started
    stage: str | None = None
    progress: float | None = None
    error: str | None = None
    failed_over: tuple[str, Profile] | None = None  # the kernel's model when it failed


class ModelProfiler:
    """Profiles one model at a time in a background thread; the latest request wins.

    ``on_change`` is called (from the profiling thread, with no lock held) whenever what
    :meth:`snapshot` returns changes: a stage reached, a failure, the end.
    """

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._lock = threading.Lock()
        self._job: _Job | None = None
        self._threads: list[threading.Thread] = []

    def start(
        self, st: AcceleratorState, variable: str, model: Any, seq_len: int | None = None
    ) -> None:
        """Profile ``model`` (held by ``variable``) at ``seq_len`` tokens, then set it as the
        kernel's model; a job still running is superseded."""
        job = _Job(variable, seq_len, st.model)
        thread = threading.Thread(
            target=self._run, args=(job, st, model), name="ei_widgets-picker-profile", daemon=True
        )
        with self._lock:
            self._job = job
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def snapshot(self, st: AcceleratorState) -> dict[str, Any] | None:
        """The STATE's ``profiling`` field: the job running or the last one's failure, or None.

        A failure is shown until the next choice, made here or anywhere else."""
        with self._lock:
            job = self._job
            if job is None or (job.error is not None and st.model is not job.failed_over):
                return None
            return {
                "variable": job.variable,
                "seq_len": job.seq_len,
                "stage": job.stage,
                "progress": job.progress,
                "error": job.error,
            }

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every job started so far to end; False when one still runs after
        ``timeout`` seconds."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in threads)

    def _run(self, job: _Job, st: AcceleratorState, model: Any) -> None:
        def stage(event: ExportProgress) -> None:
            # Listeners hear every export in the kernel; this job's is under its variable's name.
            if event.model != job.variable or event.done:
                return
            with self._lock:
                job.stage, job.progress = event.stage, round(event.fraction, 3)
                current = self._job is job
            if current:
                self._on_change()

        result: Profile | None = None
        error: str | None = None
        try:
            with progress_listener(stage):
                result = profile(model, name=job.variable, seq_len=job.seq_len)
        except EIError as exc:
            error = f"Could not profile {job.variable}: {exc}"
        except Exception as exc:
            log.exception("ei_widgets: profiling %s for the picker failed", job.variable)
            error = (
                f"Profiling {job.variable} failed unexpectedly ({type(exc).__name__}: {exc}). "
                f"%ei_inspect {job.variable} in a cell shows the whole error."
            )
        with self._lock:
            if self._job is not job:
                return  # a newer choice was made here meanwhile: it wins
            if st.model is not job.before:
                self._job = None  # chosen elsewhere meanwhile (a magic, the dashboard): it wins
            elif result is not None:
                self._job = None
                # Under the lock: no newer job can be started between the check and the set.
                st.set_model(job.variable, result)
            else:
                job.error, job.stage, job.failed_over = capped(error or ""), "failed", st.model
        self._on_change()
