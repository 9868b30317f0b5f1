"""The live cost meter: per-second billing, the whole-GPU comparison, budgets.

``CostMeter`` follows the kernel's :class:`~ei_widgets.device.accelerator.AcceleratorState`. It
bills the
notebook instance from the moment the meter starts until it stops (or the kernel ends), and the
attached accelerator from attach to detach, at the catalog's prices (user overrides included).
SageMaker bills per second, so cost = rate per hour x seconds / 3600.

The meter keeps the segments and the thread; its rooms do the rest: time comes from one
:class:`~ei_widgets.billing.time_sources.Clock` (durations from its monotonic reading only, so
changing the
system clock can neither create nor erase cost), the arithmetic is the pure
:func:`~ei_widgets.billing.charges.bill`, budgets are a
:class:`~ei_widgets.billing.budgets.BudgetWatcher`, and the
ledger's writes (with their retries) a :class:`~ei_widgets.billing.ledger_writer.LedgerWriter`.
Tests
inject a :class:`ManualClock` and call :meth:`CostMeter.tick` by hand instead of running the
ticker thread.

The savings question: the same wall time (the whole metered session) and the same work (the same
inferences) priced on a whole-GPU instance, by default ml.g4dn.xlarge. Savings are negative when
the whole GPU would have been cheaper.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import sys
import threading
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Literal

from ei_widgets.billing.budgets import (
    BUDGET_THRESHOLDS,
    MONTH_REFRESH_S,
    Budget,
    BudgetEvent,
    BudgetWatcher,
    MonthSpending,
    Period,
    parse_budget,
)
from ei_widgets.billing.charges import (
    HOURS_PER_MONTH,
    CostSnapshot,
    Segment,
    Work,
    bill,
    units_after,
)
from ei_widgets.billing.ledger import Ledger, LedgerWarning, open_ledger
from ei_widgets.billing.ledger_writer import LedgerWriter
from ei_widgets.billing.time_sources import Clock, ManualClock, SystemClock
from ei_widgets.common.callbacks import add_callback
from ei_widgets.common.money import format_money, micro_per_hour, month_start, us
from ei_widgets.device.accelerator import AcceleratorState, Attachment, Change
from ei_widgets.device.accelerator import state as kernel_state
from ei_widgets.device.catalog import Catalog, Instance, default_catalog
from ei_widgets.device.metrics import default_stream
from ei_widgets.errors import EIError

__all__ = [
    "BUDGET_THRESHOLDS",
    "DEFAULT_COMPARISON",
    "DEFAULT_HEARTBEAT_S",
    "HEARTBEAT_ENV_VAR",
    "HOURS_PER_MONTH",
    "MAX_HEARTBEAT_S",
    "MIN_HEARTBEAT_S",
    "MONTH_REFRESH_S",
    "Budget",
    "BudgetEvent",
    "Clock",
    "CostMeter",
    "CostSnapshot",
    "ManualClock",
    "SystemClock",
    "format_money",
    "meter",
    "start_meter",
    "stop_meter",
]

log = logging.getLogger(__name__)

DEFAULT_COMPARISON = "ml.g4dn.xlarge"
DEFAULT_HEARTBEAT_S = 10.0
# A shorter period busy-loops the ticker and the disk; a longer one loses more to a crash.
MIN_HEARTBEAT_S = 0.05
MAX_HEARTBEAT_S = 300.0
HEARTBEAT_ENV_VAR = "EI_WIDGETS_HEARTBEAT"
TICK_S = 1.0

Event = CostSnapshot | BudgetEvent
Callback = Callable[[Event], None]
CatalogSource = Catalog | Callable[[], Catalog]


def _kernel_id() -> str | None:
    """The kernel id from ipykernel's ``-f .../kernel-<id>.json`` argument, when there is one."""
    argv = sys.argv
    for i, arg in enumerate(argv[:-1]):
        if arg == "-f":
            name = Path(argv[i + 1]).name
            if name.startswith("kernel-") and name.endswith(".json"):
                return name[len("kernel-") : -len(".json")]
    return None


def _heartbeat_from_env() -> float:
    """``$EI_WIDGETS_HEARTBEAT``, clamped to [MIN_HEARTBEAT_S, MAX_HEARTBEAT_S] with a warning."""
    raw = os.environ.get(HEARTBEAT_ENV_VAR)
    if not raw:
        return DEFAULT_HEARTBEAT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isnan(value) or value <= 0:
        use, why = DEFAULT_HEARTBEAT_S, "is not a positive number of seconds"
    elif value < MIN_HEARTBEAT_S:
        use, why = MIN_HEARTBEAT_S, f"is below the shortest period, {MIN_HEARTBEAT_S:g} s"
    elif value > MAX_HEARTBEAT_S:
        use, why = MAX_HEARTBEAT_S, f"is above the longest period, {MAX_HEARTBEAT_S:g} s"
    else:
        return value
    warnings.warn(f"{HEARTBEAT_ENV_VAR}={raw!r} {why}; using {use:g}", LedgerWarning, stacklevel=3)
    return use


def _default_work() -> Work:
    """Inferences, errors and simulated seconds so far, from the kernel's metrics stream."""
    return Work(*default_stream().totals())


def _price(
    catalog: CatalogSource | None, kind: str, name: str, fallback: Instance | Attachment | None
) -> int:
    """Micro-dollars per hour for ``name``, from the current catalog, else the object's own."""
    try:
        source = catalog if catalog is not None else default_catalog
        current = source() if callable(source) else source
        item = current.instance(name) if kind == "instance" else current.accelerator(name)
        return micro_per_hour(item.price_per_hour)
    except EIError:
        if fallback is None:
            raise
        own = fallback.accelerator if isinstance(fallback, Attachment) else fallback
        return micro_per_hour(own.price_per_hour)


def _read_work(source: Callable[[], tuple[int, int, float]]) -> Work:
    """The work so far; a broken metrics source must not stop the bill."""
    try:
        return Work(*source())
    except Exception:
        log.exception("ei_widgets: reading the metrics stream failed")
        return Work()


class _Subscribers:
    """The meter's subscribers; one that raises is logged and skipped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Callback] = []

    def add(self, callback: Callback) -> Callable[[], None]:
        return add_callback(self._callbacks, callback, self._lock)

    def __contains__(self, callback: object) -> bool:
        with self._lock:
            return callback in self._callbacks

    def notify(self, events: list[Event]) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for event in events:
            for callback in callbacks:
                try:
                    callback(event)
                except Exception:
                    log.exception("ei_widgets cost meter subscriber failed")


class _Ticker:
    """The daemon thread that calls ``tick`` every ``period`` seconds until stopped."""

    def __init__(self, tick: Callable[[], object], period: float) -> None:
        self._tick, self._period = tick, period
        self._wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ei_widgets-cost-meter", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._wake.wait(self._period):
            try:
                self._tick()
            except Exception:  # the ticker must survive anything a subscriber or the disk does
                log.exception("ei_widgets cost meter tick failed")

    def stop(self) -> None:
        self._wake.set()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout=5)


def _mark_detached(events: list[Event], name: str) -> list[Event]:
    """The events with the 100% budget events saying which accelerator was detached."""
    return [
        BudgetEvent(e.percent, e.budget, e.spent, e.at, detached=name)
        if isinstance(e, BudgetEvent) and e.percent >= 100
        else e
        for e in events
    ]


class CostMeter:
    """The kernel's running bill. See the module docstring for how time and money are kept."""

    def __init__(
        self,
        state: AcceleratorState,
        *,
        ledger: Ledger | None = None,
        clock: Clock | None = None,
        comparison: str = DEFAULT_COMPARISON,
        catalog: CatalogSource | None = None,
        work: Callable[[], tuple[int, int, float]] | None = None,
        heartbeat: float = DEFAULT_HEARTBEAT_S,
        tick: float = TICK_S,
        kernel_id: str | None = None,
        notebook: str | None = None,
    ) -> None:
        """Create a meter (not started: call :meth:`start`).

        ``catalog`` is a ``Catalog`` or a function returning the current one (default: the
        packaged catalog with the user's price overrides, read at every attach or change so
        overrides set later apply from the next interval). ``work`` returns (inferences, errors,
        simulated seconds) so far; by default the kernel's metrics stream.
        """
        if not (0 < heartbeat < math.inf and 0 < tick < math.inf):
            raise EIError("the heartbeat and tick periods must be positive numbers of seconds")
        self._state = state
        self.ledger = ledger
        self.owns_ledger = False  # True when start_meter opened it (and so closes it)
        self._clock: Clock = clock or SystemClock()
        self._catalog = catalog
        self._work = work or _default_work
        self.heartbeat_period = float(heartbeat)
        self.tick_period = float(tick)
        self.kernel_id = kernel_id
        self.notebook = notebook
        self._lock = threading.RLock()
        self._subscribers = _Subscribers()
        self._comparison = comparison
        self._comparison_rate = _price(self._catalog, "instance", comparison, None)
        self._closed_units = {"instance": 0, "accelerator": 0}
        self._history: list[tuple[int, float, float]] = []  # closed segments (rate, start, end)
        self._last_instance = ""
        self._instance: Segment | None = None
        self._accelerator: Segment | None = None
        self._start: float | None = None
        self._start_wall: datetime | None = None
        self._stop: float | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._last_heartbeat = 0.0
        self._last_notify: float | None = None
        self._budgets = BudgetWatcher()
        self._month = MonthSpending()
        self._writer = LedgerWriter(
            ledger, heartbeat_period=self.heartbeat_period, kernel_id=kernel_id, notebook=notebook
        )
        self._ticker: _Ticker | None = None
        self.pid = os.getpid()  # the process that meters; a forked child leaves it alone

    # lifecycle

    @property
    def running(self) -> bool:
        return self._start is not None and self._stop is None

    def start(self, *, thread: bool = True) -> CostMeter:
        """Start billing now; with ``thread`` a daemon ticker notifies subscribers every second."""
        with self._lock:
            if self._start is not None:
                return self
            now = self._clock.monotonic()
            self._instance = self._open("instance", self._state.instance, now)
            if self._state.attachment is not None:
                # Attached before the meter started: billed from now, on the meter's one clock.
                self._accelerator = self._open("accelerator", self._state.attachment, now)
            self._start, self._start_wall, self._last_heartbeat = now, self._clock.wall(), now
            self._writer.open_session(
                now, self._start_wall, self._segments(), _read_work(self._work)
            )
            self._unsubscribe = [
                self._state.subscribe(self._on_change),
                self._state.add_guard(self._budgets.guard),
            ]
        if thread:
            self._ticker = _Ticker(self.tick, min(self.tick_period, self.heartbeat_period))
        return self

    def stop(self) -> CostSnapshot:
        """Stop billing: close the open intervals and the ledger session. Idempotent."""
        if self._ticker is not None:
            self._ticker.stop()
        # Unsubscribe before taking our lock: the state calls observers under its own lock, so
        # holding ours while waiting for it could deadlock with an attach in another thread.
        unsubscribe, self._unsubscribe = self._unsubscribe, []
        for undo in unsubscribe:
            with contextlib.suppress(Exception):
                undo()
        with self._lock:
            if self._start is None:
                raise EIError("the meter was never started")
            if self._stop is None:
                now = self._clock.monotonic()
                segments, work = self._segments(), _read_work(self._work)
                for seg in segments:
                    self._close_segment(seg, now)
                self._accelerator = self._instance = None
                self._stop = now
                if os.getpid() == self.pid:
                    self._writer.close_session(now, self._clock.wall(), segments, work)
            return self.snapshot()

    def close(self) -> None:
        """Stop if running, and close the ledger if this meter opened it."""
        if self.running:
            self.stop()
        if self.ledger is not None and self.owns_ledger:
            self.ledger.close()

    # following the accelerator state

    def _segments(self) -> list[Segment]:
        return [s for s in (self._instance, self._accelerator) if s is not None]

    def _open(
        self, kind: Literal["instance", "accelerator"], source: Instance | Attachment, now: float
    ) -> Segment:
        if isinstance(source, Attachment):
            name, precision = source.accelerator.name, source.precision
        else:
            name, precision = source.name, None
        seg = Segment(kind, name, _price(self._catalog, kind, name, source), now, source, precision)
        if self.running:  # at start, the session opens with its intervals
            self._writer.open_interval(seg, now, self._clock.wall(), _read_work(self._work))
        return seg

    def _close_segment(self, seg: Segment, now: float, reason: str | None = None) -> None:
        self._closed_units[seg.kind] += seg.rate * us(now - seg.start)
        self._history.append((seg.rate, seg.start, now))
        if seg.kind == "instance":
            self._last_instance = seg.name  # still named in snapshots after the meter stops
        if reason is not None:
            self._writer.close_interval(seg, now, _read_work(self._work), reason)

    def _on_change(self, change: Change) -> None:
        if change.kind not in ("attach", "detach", "instance"):
            return
        with self._lock:
            if not self.running:
                return
            now = self._clock.monotonic()
            if change.kind == "instance":
                new = change.current or self._state.instance
                if self._instance is not None and self._instance.source is new:
                    return
                if self._instance is not None:
                    self._close_segment(self._instance, now, "change")
                self._instance = self._open("instance", new, now)
                return
            attached = change.current if change.kind == "attach" else None
            if self._accelerator is not None:
                if attached is not None and self._accelerator.source is attached:
                    return
                self._close_segment(self._accelerator, now, "change" if attached else "detach")
                self._accelerator = None
            if attached is not None:
                self._accelerator = self._open("accelerator", attached, now)

    # the ticker's work, callable by hand with a ManualClock

    def tick(self) -> CostSnapshot:
        """One ticker step: heartbeat if due, budget check, notify subscribers. Returns the
        snapshot it sent."""
        events: list[Event] = []
        with self._lock:
            now = self._clock.monotonic()
            if self.running and now - self._last_heartbeat >= self.heartbeat_period:
                self._last_heartbeat = now
                wall = self._clock.wall()
                self._writer.heartbeat(now, wall, self._segments(), _read_work(self._work))
            snap = self.snapshot()
            budget_events: list[BudgetEvent] = []
            if snap.budget_spent is not None:
                month = self._timeline(now)
                budget_events = self._budgets.check(
                    snap.budget_spent, snap.at, (month.year, month.month)
                )
            due = self._last_notify is None or now - self._last_notify >= self.tick_period
            if due or budget_events:
                self._last_notify = now
                events.append(snap)
            events.extend(budget_events)
            # Also whatever got attached while the cap held (the attach guard refuses it first).
            detach = self._budgets.capped or any(
                e.percent >= 100 and e.budget.auto_detach for e in budget_events
            )
            name = self._accelerator.name if self._accelerator is not None else None
        if detach and name is not None:
            self._state.detach()
            events = [*_mark_detached(events, name), self.snapshot()]
        self._subscribers.notify(events)
        return snap

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback`` with a ``CostSnapshot`` every tick and with each ``BudgetEvent``.

        Returns a function that unsubscribes. Callbacks run on the ticker thread.
        """
        return self._subscribers.add(callback)

    # budgets

    @property
    def budget(self) -> Budget | None:
        return self._budgets.budget

    def set_budget(
        self,
        dollars: Decimal | int | float | str | None,
        period: Period = "session",
        auto_detach: bool = False,
    ) -> Budget | None:
        """Set (or with ``None`` clear) the budget. Thresholds already passed fire at the next
        tick, once each. While an ``auto_detach`` budget is spent, attaching is refused."""
        budget = None if dollars is None else parse_budget(dollars, period, auto_detach)
        with self._lock:
            self._budgets.set(budget)
            if budget is not None and budget.period == "month" and self._start is not None:
                now = self._clock.monotonic()
                month = month_start(self._timeline(now))
                self._month.refresh(self.ledger, month, self._writer.session_ids, now, force=True)
        return budget

    def _timeline(self, now: float) -> datetime:
        """Wall time on the session's own timeline: its start plus monotonic time since, so a
        wall-clock jump moves neither cost nor budget months."""
        assert self._start is not None and self._start_wall is not None
        return self._start_wall + timedelta(seconds=now - self._start)

    def _month_units(self, now: float) -> int:
        """Units of the timeline's month: other sessions (cached) plus this meter's."""
        assert self._start is not None
        month = month_start(self._timeline(now))
        others = self._month.refresh(self.ledger, month, self._writer.session_ids, now)
        cut = self._start + (month - self._timeline(self._start)).total_seconds()
        spans = self._history + [(s.rate, s.start, now) for s in self._segments()]
        return others + units_after(spans, cut)

    # reading the bill

    def snapshot(self) -> CostSnapshot:
        """The bill now (or at stop, once stopped)."""
        with self._lock:
            if self._start is None:
                raise EIError("the meter was never started")
            now = self._stop if self._stop is not None else self._clock.monotonic()
            units = dict(self._closed_units)
            for seg in self._segments():
                units[seg.kind] += seg.rate * us(now - seg.start)
            budget = self._budgets.budget
            spent: int | None = None
            if budget is not None:
                total = units["instance"] + units["accelerator"]
                spent = total if budget.period == "session" else self._month_units(now)
            inst, acc = self._instance, self._accelerator
            return bill(
                at=self._clock.wall(),
                elapsed_us=us(now - self._start),
                instance=inst.name if inst is not None else self._last_instance,
                instance_rate=inst.rate if inst is not None else 0,
                accelerator=acc.name if acc is not None else None,
                accelerator_rate=acc.rate if acc is not None else 0,
                instance_units=units["instance"],
                accelerator_units=units["accelerator"],
                inferences=_read_work(self._work).inferences,
                comparison=self._comparison,
                comparison_rate=self._comparison_rate,
                budget=budget,
                budget_units=spent,
                ledger=self._writer.label,
            )

    @property
    def comparison(self) -> str:
        return self._comparison

    def set_comparison(self, name: str) -> None:
        """Compare against another whole-GPU (or any) instance from the catalog."""
        rate = _price(self._catalog, "instance", name, None)
        with self._lock:
            self._comparison, self._comparison_rate = name, rate

    @property
    def session_id(self) -> int | None:
        """The ledger session this meter writes to (None in memory-only mode)."""
        return self._writer.session_id


# --- the kernel's one meter ---------------------------------------------------------------------

_METER: CostMeter | None = None
_METER_LOCK = threading.Lock()
_ATEXIT = False


def meter() -> CostMeter | None:
    """The kernel's running meter (started by ``%load_ext ei_widgets``), or None."""
    return _METER


def start_meter(
    state: AcceleratorState | None = None,
    ledger: Ledger | str | os.PathLike[str] | None = None,
    *,
    heartbeat: float | None = None,
    comparison: str = DEFAULT_COMPARISON,
    clock: Clock | None = None,
    thread: bool = True,
) -> CostMeter:
    """Start the kernel's meter, or return the one already running.

    ``state`` defaults to the kernel's ``AcceleratorState``; ``ledger`` is a :class:`Ledger` or a
    path (default: ``$EI_WIDGETS_LEDGER`` or the Jupyter data directory). Opening the ledger
    closes sessions left open by crashed kernels. ``heartbeat`` (seconds between ledger writes)
    defaults to ``$EI_WIDGETS_HEARTBEAT`` (kept within 0.05 to 300 s) or 10.
    """
    global _METER, _ATEXIT
    with _METER_LOCK:
        if _METER is not None and _METER.running:
            return _METER
        owned = not isinstance(ledger, Ledger)
        if not isinstance(ledger, Ledger):
            ledger = open_ledger(ledger)
        new = CostMeter(
            state if state is not None else kernel_state(),
            ledger=ledger,
            clock=clock,
            comparison=comparison,
            heartbeat=_heartbeat_from_env() if heartbeat is None else heartbeat,
            kernel_id=_kernel_id(),
            notebook=os.environ.get("JPY_SESSION_NAME") or None,
        )
        new.owns_ledger = owned
        new.start(thread=thread)
        _METER = new
        if not _ATEXIT:
            atexit.register(_stop_at_exit)  # the kernel's end closes the session cleanly
            _ATEXIT = True
        return new


def stop_meter() -> CostSnapshot | None:
    """Stop the kernel's meter (closing its ledger session); returns its final bill."""
    global _METER
    with _METER_LOCK:
        current, _METER = _METER, None
    if current is None:
        return None
    snap = current.stop() if current.running else current.snapshot()
    if current.ledger is not None and current.owns_ledger:
        current.ledger.close()
    return snap


def _stop_at_exit() -> None:
    current = _METER
    if current is not None and current.pid != os.getpid():
        return  # a forked child ending: the session is its parent's
    with contextlib.suppress(Exception):
        stop_meter()
