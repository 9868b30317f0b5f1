"""A thread-safe stream of run metrics with bounded memory.

What is kept, whatever the number of calls:

- running totals (calls, inferences, errors, host-bound calls, simulated seconds, FLOPs);
- the last ``latency_window`` latencies in a fixed ring, from which p50/p95/p99 are computed on
  demand (so the quantiles describe recent calls);
- a ring of ``series_seconds`` one-second buckets (inferences, calls, errors, summed latency,
  FLOPs over peak) for throughput, utilisation and the gauges' time series;
- a bounded table of error counts by exception type.

A warm-up call (the first after a load or a change of accelerator) counts as a call and as
inferences, but its latency stays out of the quantiles and the per-second means: it is kept
apart (``warmup_ms``), so one slow first call does not stretch every latency figure.

Times are simulated seconds in the recording session's clock (the paced timeline, or the virtual
clock's seconds when virtual); do not mix both clocks in one stream.

A run reads only its own calls through a :class:`Mark` (``mark()`` at its start, then
``snapshot(since=mark)`` and ``series(since=mark)``): the stream itself is never reset for a run,
since the cost meter counts inferences from it.

Subscribers get a :class:`MetricsSnapshot`, at most once every ``notify_interval_s`` of wall time
(and on :meth:`MetricsStream.notify` and :meth:`MetricsStream.reset`), so views never slow a run.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ei_widgets.common.callbacks import add_callback

log = logging.getLogger(__name__)

_MAX_ERROR_KINDS = 32


@dataclass(frozen=True)
class SeriesPoint:
    """One second of the stream."""

    second: int
    calls: int
    inferences: int
    errors: int
    mean_latency_ms: float  # of the second's calls other than warm-up (0 without any)
    utilisation: float
    span_s: float = 1.0  # of this second the stream covers: less for its first and last second


@dataclass(frozen=True)
class MetricsSnapshot:
    calls: int  # successful calls
    inferences: int  # items over successful calls (a call of batch 8 is 8 inferences)
    errors: int
    throughput_per_s: float  # inferences per second over the recent window
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    memory_bytes: int  # accelerator memory in use at the last call
    peak_memory_bytes: int
    utilisation: float  # achieved FLOP/s over peak, recent window
    host_bound_calls: int
    host_bound_share: float
    simulated_seconds: float  # total simulated time of successful calls
    host_seconds: float  # total measured host time of successful calls
    errors_by_kind: dict[str, int]
    accelerator: str | None
    window_s: float  # span the throughput and utilisation were measured over
    warmup_ms: float = float("nan")  # the last warm-up call's latency; NaN before any


_EMPTY_LATENCY = float("nan")


class Mark:
    """A point in a stream: the calls recorded after it (``MetricsStream.mark()``).

    The counts are taken from the stream's running totals at the mark; what the totals cannot
    say (where the first call after the mark began, the part of that call's second recorded
    before the mark, the peak memory and warm-up since) the stream keeps here as calls arrive.
    """

    __slots__ = (
        "__weakref__",
        "base",
        "counts",
        "errors_by_kind",
        "first_t",
        "peak_memory",
        "warmup_s",
    )

    def __init__(self, counts: tuple[int, int, int, int, float, float, int]) -> None:
        # calls, inferences, errors, host-bound calls, simulated s, host s, latencies recorded
        self.counts = counts
        self.first_t: float | None = None  # when the first call after the mark began
        # (second, calls, inferences, errors, Σ latency, timed calls, Σ utilisation) of the
        # first call's second recorded before the mark, taken out of that second's bucket
        self.base: tuple[int, int, int, int, float, int, float] | None = None
        self.peak_memory = 0
        self.warmup_s = math.nan
        self.errors_by_kind: dict[str, int] = {}


class MetricsStream:
    """Where sessions record each call; views read snapshots."""

    def __init__(
        self,
        *,
        latency_window: int = 2048,
        series_seconds: int = 600,
        rate_window_s: int = 10,
        notify_interval_s: float = 0.25,
    ) -> None:
        if latency_window < 1 or series_seconds < 2 or not 1 <= rate_window_s < series_seconds:
            raise ValueError("metrics windows must be positive and rate_window_s < series_seconds")
        self._lock = threading.Lock()
        self._lat_size = latency_window
        self._series_size = series_seconds
        self._rate_window = rate_window_s
        self.notify_interval_s = notify_interval_s
        self._subscribers: list[Callable[[MetricsSnapshot], None]] = []
        # Totals since the stream was made: reset() leaves them, so a bill never goes backwards.
        self._total_inferences = 0
        self._total_errors = 0
        self._total_sim_s = 0.0
        # Running counts no reset touches, from which a mark's figures are differences.
        self._n_calls = 0
        self._n_host_bound = 0
        self._n_host_s = 0.0
        self._n_latencies = 0
        self._marks: weakref.WeakSet[Mark] = weakref.WeakSet()
        self._reset_locked()

    def _reset_locked(self) -> None:
        self._calls = 0
        self._inferences = 0
        self._errors = 0
        self._host_bound = 0
        self._sim_s = 0.0
        self._host_s = 0.0
        self._memory = 0
        self._peak_memory = 0
        self._accelerator: str | None = None
        self._warmup_s = math.nan
        self._errors_by_kind: dict[str, int] = {}
        # array.array stores raw C values: updating a slot allocates nothing, so memory is fixed
        # from the start, whatever the number of calls.
        self._lat = array("d", bytes(8 * self._lat_size))
        self._lat_i = 0
        self._lat_n = 0
        n = self._series_size
        # Parallel rings indexed by second % n; _sec says which second a slot holds.
        self._sec = array("q", [-1]) * n
        self._b_calls = array("q", bytes(8 * n))
        self._b_inf = array("q", bytes(8 * n))
        self._b_err = array("q", bytes(8 * n))
        self._b_lat = array("d", bytes(8 * n))
        self._b_lat_n = array("q", bytes(8 * n))  # calls in _b_lat (warm-up calls are not)
        self._b_util = array("d", bytes(8 * n))  # Σ flops/peak: seconds of the device at full peak
        self._first_t: float | None = None
        self._last_t = 0.0
        self._last_notify = -math.inf  # the first record notifies at once
        for mark in getattr(self, "_marks", ()):  # their first second's bucket is gone
            mark.base = None
            if mark.first_t is not None:
                mark.first_t = -math.inf

    def _slot(self, t: float, start: float) -> int:
        second = int(t)
        i = second % self._series_size
        if self._sec[i] != second:
            self._sec[i] = second
            self._b_calls[i] = self._b_inf[i] = self._b_err[i] = self._b_lat_n[i] = 0
            self._b_lat[i] = self._b_util[i] = 0.0
        # a WeakSet's iteration costs microseconds even when empty: only when there are marks
        for mark in self._marks if self._marks else ():
            if mark.first_t is None:  # the first call after the mark
                mark.first_t = start
                mark.base = (
                    second,
                    self._b_calls[i],
                    self._b_inf[i],
                    self._b_err[i],
                    self._b_lat[i],
                    self._b_lat_n[i],
                    self._b_util[i],
                )
        if self._first_t is None:
            self._first_t = start  # the stream's time begins when its first call began
        if t > self._last_t:
            self._last_t = t
        return i

    # --- recording (O(1), called on every run) ------------------------------------------------

    def record(
        self,
        latency_s: float,
        batch_size: int,
        *,
        at: float | None = None,
        host_s: float = 0.0,
        flops: float = 0.0,
        peak_flops: float = 0.0,
        memory_bytes: int | None = None,
        host_bound: bool = False,
        accelerator: str | None = None,
        warmup: bool = False,
    ) -> None:
        """One successful call: its simulated latency, batch and what it did (``warmup``: the
        first call after a load, kept out of the latency figures)."""
        t = time.monotonic() if at is None else at
        with self._lock:
            i = self._slot(t, t - latency_s)
            self._calls += 1
            self._inferences += batch_size
            self._sim_s += latency_s
            self._total_inferences += batch_size
            self._total_sim_s += latency_s
            self._host_s += host_s
            self._n_calls += 1
            self._n_host_s += host_s
            if host_bound:
                self._host_bound += 1
                self._n_host_bound += 1
            if memory_bytes is not None:
                self._memory = memory_bytes
                if memory_bytes > self._peak_memory:
                    self._peak_memory = memory_bytes
                for mark in self._marks if self._marks else ():
                    mark.peak_memory = max(mark.peak_memory, memory_bytes)
            if accelerator is not None:
                self._accelerator = accelerator
            if warmup:
                self._warmup_s = latency_s
                for mark in self._marks if self._marks else ():
                    mark.warmup_s = latency_s
            else:
                self._n_latencies += 1
                self._lat[self._lat_i] = latency_s
                self._lat_i = (self._lat_i + 1) % self._lat_size
                if self._lat_n < self._lat_size:
                    self._lat_n += 1
                self._b_lat[i] += latency_s
                self._b_lat_n[i] += 1
            self._b_calls[i] += 1
            self._b_inf[i] += batch_size
            if peak_flops > 0:
                self._b_util[i] += flops / peak_flops
            due = bool(self._subscribers) and self._due()
        if due:
            self.notify()

    def record_error(self, error: BaseException | str, *, at: float | None = None) -> None:
        """One failed call (counted as an error, never as an inference)."""
        kind = error if isinstance(error, str) else type(error).__name__
        t = time.monotonic() if at is None else at
        with self._lock:
            i = self._slot(t, t)
            self._errors += 1
            self._total_errors += 1
            self._b_err[i] += 1
            for kinds in (self._errors_by_kind, *(m.errors_by_kind for m in self._marks)):
                if kind in kinds or len(kinds) < _MAX_ERROR_KINDS:
                    kinds[kind] = kinds.get(kind, 0) + 1
                else:
                    kinds["other"] = kinds.get("other", 0) + 1
            due = bool(self._subscribers) and self._due()
        if due:
            self.notify()

    def set_memory(self, memory_bytes: int, *, accelerator: str | None = None) -> None:
        """Set the memory gauge (a model loaded or released)."""
        with self._lock:
            self._memory = memory_bytes
            self._peak_memory = max(self._peak_memory, memory_bytes)
            if accelerator is not None:
                self._accelerator = accelerator

    def _due(self) -> bool:
        now = time.monotonic()
        if now - self._last_notify >= self.notify_interval_s:
            self._last_notify = now
            return True
        return False

    # --- reading ------------------------------------------------------------------------------

    def mark(self) -> Mark:
        """A mark here: ``snapshot(since=mark)`` and ``series(since=mark)`` then read only the
        calls recorded after it (a run's own figures; the stream's totals go on)."""
        with self._lock:
            mark = Mark(
                (
                    self._n_calls,
                    self._total_inferences,
                    self._total_errors,
                    self._n_host_bound,
                    self._total_sim_s,
                    self._n_host_s,
                    self._n_latencies,
                )
            )
            self._marks.add(mark)
            return mark

    def _start_locked(self, since: Mark | None) -> float | None:
        """When the stream's (or the mark's) first call began; None before any."""
        if self._first_t is None:
            return None
        if since is None:
            return self._first_t
        if since.first_t is None:
            return None
        return max(since.first_t, self._first_t)

    def _bucket_locked(
        self, second: int, since: Mark | None
    ) -> tuple[int, int, int, float, int, float]:
        """(calls, inferences, errors, Σ latency, timed calls, Σ utilisation) of one second,
        without what was recorded before ``since``."""
        i = second % self._series_size
        if self._sec[i] != second:
            return 0, 0, 0, 0.0, 0, 0.0
        row = (
            self._b_calls[i],
            self._b_inf[i],
            self._b_err[i],
            self._b_lat[i],
            self._b_lat_n[i],
            self._b_util[i],
        )
        base = since.base if since is not None else None
        if base is None or base[0] != second:
            return row
        return (
            row[0] - base[1],
            row[1] - base[2],
            row[2] - base[3],
            max(row[3] - base[4], 0.0),
            row[4] - base[5],
            max(row[5] - base[6], 0.0),
        )

    def _window_locked(self, since: Mark | None = None) -> tuple[float, float, float]:
        """(span, inferences, flops/peak) over the last rate_window_s seconds of the stream (of
        the mark's calls, with ``since``)."""
        begun = self._start_locked(since)
        if begun is None:
            return 0.0, 0.0, 0.0
        last = int(self._last_t)
        first = max(last - self._rate_window + 1, int(begun))
        inf = util = 0.0
        for second in range(first, last + 1):
            bucket = self._bucket_locked(second, since)
            inf += bucket[1]
            util += bucket[5]
        # Seconds first..last, the first one only from when the stream (or the mark's calls) began.
        span = max(self._last_t - max(float(first), begun), 1e-9)
        return span, inf, util

    def totals(self) -> tuple[int, int, float]:
        """Inferences, errors and simulated seconds since the stream was made (not reset)."""
        with self._lock:
            return self._total_inferences, self._total_errors, self._total_sim_s

    def snapshot(self, since: Mark | None = None) -> MetricsSnapshot:
        """The stream's figures since its last reset, or only the calls after ``since``."""
        with self._lock:
            kept = self._lat_n
            if since is not None:
                kept = max(0, min(self._n_latencies - since.counts[6], self._lat_n))
            ring = np.frombuffer(self._lat, dtype=np.float64)
            if kept == self._lat_n:
                lat = ring[: self._lat_n].copy()
            else:  # the newest ``kept``: the slots before _lat_i, wrapping once the ring is full
                lat = ring[(self._lat_i - 1 - np.arange(kept)) % self._lat_size]
            span, inf, util = self._window_locked(since)
            if since is None:
                calls, inferences, errors = self._calls, self._inferences, self._errors
                host_bound, sim_s, host_s = self._host_bound, self._sim_s, self._host_s
                errors_by_kind = dict(self._errors_by_kind)
                peak, warmup = self._peak_memory, self._warmup_s
            else:
                c = since.counts
                calls = self._n_calls - c[0]
                inferences = self._total_inferences - c[1]
                errors = self._total_errors - c[2]
                host_bound = self._n_host_bound - c[3]
                sim_s = self._total_sim_s - c[4]
                host_s = self._n_host_s - c[5]
                errors_by_kind = dict(since.errors_by_kind)
                peak, warmup = since.peak_memory, since.warmup_s
            snap = dict(
                calls=calls,
                inferences=inferences,
                errors=errors,
                memory_bytes=self._memory,
                peak_memory_bytes=peak,
                host_bound_calls=host_bound,
                host_bound_share=host_bound / calls if calls else 0.0,
                simulated_seconds=sim_s,
                host_seconds=host_s,
                errors_by_kind=errors_by_kind,
                accelerator=self._accelerator,
                warmup_ms=warmup * 1e3,
            )
        if lat.size:
            p50, p95, p99 = np.percentile(lat, (50, 95, 99)) * 1e3
            mean = float(lat.mean() * 1e3)
        else:
            p50 = p95 = p99 = mean = _EMPTY_LATENCY
        return MetricsSnapshot(
            throughput_per_s=inf / span if inf else 0.0,
            p50_ms=float(p50),
            p95_ms=float(p95),
            p99_ms=float(p99),
            mean_ms=mean,
            utilisation=min(util / span, 1.0) if util else 0.0,
            window_s=span if inf else 0.0,
            **snap,  # type: ignore[arg-type]
        )

    def series(self, seconds: int | None = None, since: Mark | None = None) -> list[SeriesPoint]:
        """The last ``seconds`` one-second points (gaps included as zeros), oldest first; with
        ``since``, only the seconds and the calls after that mark."""
        n = min(seconds or self._series_size, self._series_size)
        with self._lock:
            begun = self._start_locked(since)
            if begun is None:
                return []
            last = int(self._last_t)
            first = max(last - n + 1, int(begun))
            points = []
            for second in range(first, last + 1):
                calls, inferences, errors, lat, timed, util = self._bucket_locked(second, since)
                points.append(
                    SeriesPoint(
                        second=second,
                        calls=calls,
                        inferences=inferences,
                        errors=errors,
                        mean_latency_ms=lat / timed * 1e3 if timed else 0.0,
                        utilisation=min(util, 1.0),
                        span_s=min(self._last_t, second + 1.0) - max(begun, float(second)),
                    )
                )
            return points

    # --- observers ----------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[MetricsSnapshot], None]) -> Callable[[], None]:
        """Call ``callback(snapshot)`` as calls are recorded (throttled); returns unsubscribe."""
        return add_callback(self._subscribers, callback, self._lock)

    def notify(self) -> None:
        """Push a snapshot to every subscriber now."""
        with self._lock:
            subscribers = list(self._subscribers)
        if not subscribers:
            return
        snap = self.snapshot()
        for callback in subscribers:
            try:
                callback(snap)
            except Exception:
                log.exception("a metrics subscriber failed")

    def reset(self) -> None:
        """Forget everything recorded (subscribers stay, and are told)."""
        with self._lock:
            self._reset_locked()
        self.notify()


_DEFAULT = MetricsStream()


def default_stream() -> MetricsStream:
    """The stream sessions write to unless given another."""
    return _DEFAULT
