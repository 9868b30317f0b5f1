"""A load generator: drive an accelerated session from background threads and report progress.

``Run`` sends batches of random (seeded) inputs, shaped from the model's inputs at the chosen batch
size, through an accelerated session (``ei_widgets.device.sessions.session``) from ``concurrency``
worker
threads, for a number of requests or for a wall-clock duration. The session meters every call into
the metrics stream; the run itself only counts requests and watches its own health:

- ``start()`` returns at once; the kernel (or the CLI) stays free while the workers run.
- ``stop()`` asks the workers to finish their current call and returns once they have (well within
  half a second for any model whose single call takes less than that).
- An exception in a worker ends the whole run in the ``failed`` state with a one-line message;
  a run never leaves a silently dead thread behind.
- Progress is available at any time (``progress()``) and pushed to callbacks at most every
  ``progress_interval_s`` seconds and once more when the run ends, which is what the dashboard
  and the CLI's ``bench`` command show.

This module is core: it imports neither widgets nor IPython.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ei_widgets.common.callbacks import add_callback
from ei_widgets.device.pacing import DEFAULT_PACING, Pacing, check_pacing
from ei_widgets.device.sessions import session
from ei_widgets.errors import EIError, require_positive_int
from ei_widgets.profiling.result import Profile

# ONNX Runtime's type strings (NodeArg.type) as numpy dtype names
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}

DEFAULT_SYMBOLIC_DIM = 1
"""Size given to a symbolic or unknown dimension other than the batch (the leading one)."""

MAX_INPUT_ELEMENTS = 1 << 28
"""Refuse to generate an input larger than this many elements (1 GiB of float32)."""


class RunError(EIError):
    """A run was configured or used wrongly (bad batch size, started twice...)."""


class RunState(str, enum.Enum):
    """Where a run is in its life."""

    IDLE = "idle"
    RUNNING = "running"
    STOPPED = "stopped"  # stop() was called
    FINISHED = "finished"  # every request was sent, or the duration ran out
    FAILED = "failed"  # a call raised; ``Progress.error`` says what

    @property
    def ended(self) -> bool:
        return self in (RunState.STOPPED, RunState.FINISHED, RunState.FAILED)


@dataclass(frozen=True)
class InputSpec:
    """One model input as the generator needs it."""

    name: str
    dtype: str  # numpy dtype name
    shape: tuple[int | str | None, ...] | None


@dataclass(frozen=True)
class Progress:
    """A run's progress at one moment."""

    state: RunState
    done: int  # requests answered
    total: int | None  # requests asked for; None for a run by duration
    elapsed_s: float  # wall-clock seconds since start (frozen once ended)
    duration_s: float | None  # the run's wall-clock budget; None for a run by requests
    batch_size: int
    error: str | None = None  # one line, set when ``state`` is FAILED

    @property
    def inferences(self) -> int:
        """Samples processed: requests times batch size."""
        return self.done * self.batch_size

    @property
    def fraction(self) -> float:
        """0..1: how far along the run is (by requests, or by time for a run by duration)."""
        if self.state is RunState.FINISHED:
            return 1.0
        if self.total:
            return min(1.0, self.done / self.total)
        if self.duration_s:
            return min(1.0, self.elapsed_s / self.duration_s)
        return 0.0

    @property
    def requests_per_s(self) -> float:
        """Host wall-clock request rate (measured on this machine, not simulated)."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0


class SessionLike(Protocol):
    """What the run needs from a session: ONNX Runtime's ``run`` and ``get_inputs``."""

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> Any: ...

    def get_inputs(self) -> Sequence[Any]: ...


ProgressCallback = Callable[[Progress], None]


def short_message(error: BaseException, limit: int = 160) -> str:
    """One readable line for an exception: its type and the first line of its message."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    line = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def input_specs(session: SessionLike) -> list[InputSpec]:
    """The inputs of an ONNX Runtime-like session as ``InputSpec`` (dtype as a numpy name)."""
    specs = []
    for arg in session.get_inputs():
        dtype = _ORT_TYPES.get(str(arg.type))
        if dtype is None:
            raise RunError(
                f"Input {arg.name!r} has type {arg.type}; the load generator can only make "
                f"numeric and boolean tensors."
            )
        shape = tuple(arg.shape) if arg.shape is not None else None
        specs.append(InputSpec(arg.name, dtype, shape))
    return specs


def concrete_shape(
    spec: InputSpec, batch_size: int, hint: Sequence[int] | None = None
) -> tuple[int, ...]:
    """The shape to generate for ``spec`` at ``batch_size``.

    Fixed dimensions are kept; the leading one, when not fixed, is the batch; other symbolic or
    unknown dimensions take their size from ``hint`` (a concrete shape of the same input, for
    example a profile's bound input) or else :data:`DEFAULT_SYMBOLIC_DIM`.
    """
    if spec.shape is None:
        return tuple(int(d) for d in hint) if hint else (batch_size,)
    usable_hint = hint if hint is not None and len(hint) == len(spec.shape) else None
    shape = []
    for index, dim in enumerate(spec.shape):
        if isinstance(dim, int) and dim > 0:
            shape.append(dim)
        elif index == 0:
            shape.append(batch_size)
        elif usable_hint is not None and int(usable_hint[index]) > 0:
            shape.append(int(usable_hint[index]))
        else:
            shape.append(DEFAULT_SYMBOLIC_DIM)
    return tuple(shape)


def make_inputs(
    specs: Sequence[InputSpec],
    batch_size: int,
    seed: int = 0,
    shapes: Mapping[str, Sequence[int]] | None = None,
    int_high: Mapping[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """Random inputs for ``specs`` at ``batch_size``, the same for the same seed.

    ``shapes`` may give concrete shapes by input name (for example a profile's bound inputs,
    at any batch): they size the symbolic dimensions other than the batch (see
    :func:`concrete_shape`). A first input whose leading dimension is fixed to another size than
    ``batch_size`` is refused (the session reads the batch from it). Floats are standard normal,
    integers lie in [0, 10) (safe as indices or token ids), or in [0, ``int_high[name]``) for the
    inputs it names, booleans are fair coin flips.
    """
    rng = np.random.default_rng(seed)
    feed: dict[str, np.ndarray] = {}
    if specs and specs[0].shape:
        lead = specs[0].shape[0]
        if isinstance(lead, int) and lead > 0 and lead != batch_size:
            raise RunError(
                f"Input {specs[0].name!r} has a fixed leading dimension of {lead}: this model "
                f"runs only at batch {lead}, not {batch_size}."
            )
    for spec in specs:
        shape = concrete_shape(spec, batch_size, shapes.get(spec.name) if shapes else None)
        if int(np.prod(shape, dtype=np.int64)) > MAX_INPUT_ELEMENTS:
            raise RunError(f"Input {spec.name!r} of shape {shape} is too large to generate.")
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            feed[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            high = max(1, int_high.get(spec.name, 10)) if int_high is not None else 10
            feed[spec.name] = rng.integers(0, high, size=shape).astype(dtype)
        elif dtype.kind == "b":
            feed[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise RunError(f"Input {spec.name!r} has dtype {spec.dtype}; cannot generate it.")
    return feed


def _default_session_factory(
    model: Any, clock: Pacing, batch_size: int, profile: Profile | None
) -> SessionLike:

    result: SessionLike = session(model, clock=clock, batch_size=batch_size, profile=profile)
    return result


class Run:
    """A load generator over one accelerated session.

    ``model`` is anything ``ei_widgets.device.sessions.session`` accepts; ``profile`` (optional) is
    its
    profile, reused by the session and used to size symbolic input dimensions (its bound
    inputs). Give either ``requests`` (default 100) or ``duration_s`` (wall-clock seconds).
    ``session_factory`` replaces the default ``session(model, clock=clock, batch_size=...,
    profile=...)`` (tests and the CLI use it to pass their own session). ``shapes`` sizes
    symbolic input dimensions by input name (default: the profile's bound inputs).

    With the paced clock a call lasts its simulated latency in wall time, so ``stop()`` ends the
    run within half a second only when one call's simulated latency is below that.
    """

    def __init__(
        self,
        model: Any = None,
        *,
        batch_size: int = 1,
        requests: int | None = None,
        duration_s: float | None = None,
        concurrency: int = 1,
        clock: Pacing = DEFAULT_PACING,
        seed: int = 0,
        profile: Profile | None = None,
        shapes: Mapping[str, Sequence[int]] | None = None,
        session_factory: Callable[[], SessionLike] | None = None,
        on_progress: ProgressCallback | None = None,
        progress_interval_s: float = 0.2,
    ) -> None:
        require_positive_int(batch_size, "Batch size", RunError)
        require_positive_int(concurrency, "Concurrency", RunError)
        check_pacing(clock, RunError)
        if requests is not None and duration_s is not None:
            raise RunError("Give a number of requests or a duration, not both.")
        if requests is None and duration_s is None:
            requests = 100
        if requests is not None:
            require_positive_int(requests, "Requests", RunError)
        if duration_s is not None and not (duration_s > 0 and np.isfinite(duration_s)):
            raise RunError(f"Duration must be a positive number of seconds, not {duration_s!r}.")
        if model is None and session_factory is None:
            raise RunError("A run needs a model (or a session factory).")
        if progress_interval_s <= 0:
            raise RunError("The progress interval must be positive.")

        self.model = model
        self.batch_size = batch_size
        self.requests = requests
        self.duration_s = float(duration_s) if duration_s is not None else None
        self.concurrency = concurrency
        self.clock: Pacing = clock
        self.seed = seed
        self.profile = profile
        if shapes is None and profile is not None:
            shapes = profile.bound_inputs
        self.shapes = dict(shapes) if shapes else None
        self.progress_interval_s = progress_interval_s
        self._factory: Callable[[], SessionLike] = session_factory or (
            lambda: _default_session_factory(model, clock, batch_size, profile)
        )

        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._state = RunState.IDLE
        self._error: str | None = None
        self._exception: BaseException | None = None
        self._claimed = 0  # requests handed to workers
        self._done = 0  # requests answered
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._callbacks: list[ProgressCallback] = [on_progress] if on_progress else []
        self._last_push = 0.0
        self._threads: list[threading.Thread] = []
        self._supervisor: threading.Thread | None = None
        self.session: SessionLike | None = None

    # --- observing ---------------------------------------------------------------------------

    @property
    def state(self) -> RunState:
        return self._state

    @property
    def exception(self) -> BaseException | None:
        """The exception that failed the run, if any (its message is in ``progress().error``)."""
        return self._exception

    def progress(self) -> Progress:
        """The progress now (cheap; safe from any thread)."""
        with self._lock:
            return self._progress_locked()

    def _progress_locked(self) -> Progress:
        if self._started_at is None:
            elapsed = 0.0
        else:
            end = self._ended_at if self._ended_at is not None else time.monotonic()
            elapsed = end - self._started_at
        return Progress(
            state=self._state,
            done=self._done,
            total=self.requests,
            elapsed_s=elapsed,
            duration_s=self.duration_s,
            batch_size=self.batch_size,
            error=self._error,
        )

    def subscribe(self, callback: ProgressCallback) -> Callable[[], None]:
        """Call ``callback(progress)`` as the run goes (throttled) and when it ends.

        Callbacks run on the run's threads; they must be quick and must not raise (an exception
        from a callback is swallowed so that a broken view cannot break the run).
        Returns a function that unsubscribes.
        """
        return add_callback(self._callbacks, callback, self._lock)

    def _push(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last_push < self.progress_interval_s:
                return
            self._last_push = now
            progress = self._progress_locked()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(progress)
            except Exception:  # a view's bug must not end the run
                continue

    # --- controlling -------------------------------------------------------------------------

    def start(self) -> Run:
        """Start the workers in the background and return at once."""
        with self._lock:
            if self._state is not RunState.IDLE:
                raise RunError(f"This run is already {self._state.value}; make a new Run.")
            self._state = RunState.RUNNING
            self._started_at = time.monotonic()
        self._supervisor = threading.Thread(
            target=self._supervise, name="ei-widgets-run", daemon=True
        )
        self._supervisor.start()
        return self

    def stop(self, timeout: float = 0.5) -> bool:
        """Ask the run to stop and wait up to ``timeout`` seconds; True once it has ended."""
        with self._lock:
            if self._state is RunState.IDLE:
                self._state = RunState.STOPPED
                self._started_at = self._ended_at = time.monotonic()
                self._ended.set()
            elif self._state is RunState.RUNNING:
                # Claim the stopped state now so that a run stopped on its last request still
                # reads as stopped; a failure in flight still wins (see _fail).
                self._state = RunState.STOPPED
        self._stop.set()
        return self._ended.wait(timeout)

    def wait(self, timeout: float | None = None) -> Progress:
        """Block until the run ends (or ``timeout`` passes) and return the progress."""
        self._ended.wait(timeout)
        return self.progress()

    def run(self) -> Progress:
        """Start, wait for the end, and return the final progress (for scripts and the CLI)."""
        self.start()
        return self.wait()

    # --- the work ----------------------------------------------------------------------------

    def _supervise(self) -> None:
        try:
            self.session = self._factory()
            feed = make_inputs(input_specs(self.session), self.batch_size, self.seed, self.shapes)
        except BaseException as error:  # reported, never lost
            self._fail(error)
            self._finish()
            return
        self._push(force=True)
        deadline = (
            self._started_at + self.duration_s
            if self._started_at is not None and self.duration_s is not None
            else None
        )
        self._threads = [
            threading.Thread(
                target=self._work,
                args=(feed, deadline),
                name=f"ei-widgets-run-worker-{i}",
                daemon=True,
            )
            for i in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()
        while any(thread.is_alive() for thread in self._threads):
            for thread in self._threads:
                thread.join(timeout=self.progress_interval_s / max(1, len(self._threads)))
            self._push()
        self._finish()

    def _claim(self, deadline: float | None) -> bool:
        if self._stop.is_set():
            return False
        if deadline is not None and time.monotonic() >= deadline:
            return False
        with self._lock:
            if self.requests is not None:
                if self._claimed >= self.requests:
                    return False
                self._claimed += 1
        return True

    def _work(self, feed: dict[str, np.ndarray], deadline: float | None) -> None:
        session = self.session
        assert session is not None
        try:
            while self._claim(deadline):
                session.run(None, feed)
                with self._lock:
                    self._done += 1
        except BaseException as error:  # reported, never lost
            self._fail(error)

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self._exception is None:
                self._exception = error
                self._error = short_message(error)
                self._state = RunState.FAILED
        self._stop.set()

    def _finish(self) -> None:
        with self._lock:
            if self._state is RunState.RUNNING:
                self._state = RunState.FINISHED
            self._ended_at = time.monotonic()
        self._push(force=True)
        self._ended.set()
