"""The live cost meter: per-second billing, the whole-GPU comparison, budgets.

``CostMeter`` follows the kernel's :class:`~ei_widgets.accelerator.AcceleratorState`. It bills the
notebook instance from the moment the meter starts until it stops (or the kernel ends), and the
attached accelerator from attach to detach, at the catalog's prices (user overrides included).
SageMaker bills per second, so cost = rate per hour x seconds / 3600.

Time: the meter reads one clock (:class:`Clock`). Durations come from its monotonic reading only;
its wall reading gives dates (the session's start, month boundaries). Changing the system clock can
therefore neither create nor erase cost. Tests inject a :class:`ManualClock` and call
:meth:`CostMeter.tick` by hand instead of running the ticker thread.

Money: rates are integer micro-dollars per hour and durations integer microseconds, so every sum
is an exact integer; ``Decimal`` dollars are produced for snapshots, rounded to the micro-dollar,
and to cents only by views (:func:`format_money`).

The savings question: the same wall time (the whole metered session) and the same work (the same
inferences) priced on a whole-GPU instance, by default ml.g4dn.xlarge. Savings are negative when
the whole GPU would have been cheaper.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sqlite3
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

from .accelerator import AcceleratorState, Change
from .errors import EIError, LedgerError
from .ledger import (
    US_PER_S,
    IntervalProgress,
    Ledger,
    LedgerWarning,
    dollars,
    micro_per_hour,
    month_start,
    open_ledger,
)

__all__ = [
    "BUDGET_THRESHOLDS",
    "DEFAULT_COMPARISON",
    "DEFAULT_HEARTBEAT_S",
    "HEARTBEAT_ENV_VAR",
    "HOURS_PER_MONTH",
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
HEARTBEAT_ENV_VAR = "EI_WIDGETS_HEARTBEAT"
TICK_S = 1.0
MONTH_REFRESH_S = 30.0  # how often a month budget re-reads other sessions' spending
HOURS_PER_MONTH = 730  # AWS's convention for monthly prices (8760 h / 12)
BUDGET_THRESHOLDS = (50, 80, 100)  # percent of the budget at which an event is sent
Period = Literal["session", "month"]

_NANO = Decimal("0.000000001")
_FRACTION = Decimal("0.0001")


# --- clocks -------------------------------------------------------------------------------------


class Clock(Protocol):
    """Where the meter gets time: a monotonic reading for durations, a wall reading for dates."""

    def monotonic(self) -> float: ...

    def wall(self) -> datetime: ...


class SystemClock:
    """``time.monotonic()`` and the UTC wall clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(timezone.utc)


class ManualClock:
    """A clock that moves only when told: ``advance()`` moves both readings, ``set_wall()`` jumps
    the wall clock alone (what an NTP step or a user changing the date does)."""

    def __init__(self, wall: datetime | None = None, monotonic: float = 1_000.0) -> None:
        self._wall = wall or datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
        self._mono = monotonic
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def wall(self) -> datetime:
        with self._lock:
            return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        with self._lock:
            self._mono += seconds
            self._wall += timedelta(seconds=seconds)

    def set_wall(self, wall: datetime) -> None:
        with self._lock:
            self._wall = wall


# --- what the meter publishes -------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """A spending limit in dollars for this session or for the calendar month (UTC)."""

    amount: Decimal
    period: Period = "session"
    auto_detach: bool = False


@dataclass(frozen=True)
class BudgetEvent:
    """Sent once per threshold (50, 80, 100 % of the budget) to every subscriber."""

    percent: int  # the threshold crossed: 50, 80 or 100
    budget: Budget
    spent: Decimal  # dollars counted against the budget when it was crossed
    at: datetime  # wall clock (UTC)
    detached: str | None = None  # the accelerator detached because of it, if any

    @property
    def message(self) -> str:
        text = (
            f"{self.percent}% of the {self.budget.period} budget of"
            f" {format_money(self.budget.amount)} reached ({format_money(self.spent)} spent)"
        )
        if self.detached:
            text += f"; {self.detached} was detached"
        return text


@dataclass(frozen=True)
class CostSnapshot:
    """The bill at one instant. Money in dollars (``Decimal``, micro-dollar precision)."""

    at: datetime  # wall clock (UTC) of the snapshot
    elapsed_seconds: float  # metered wall time (monotonic) since the meter started
    instance: str
    instance_rate: Decimal  # $/h
    accelerator: str | None
    accelerator_rate: Decimal  # $/h, 0 when nothing is attached
    rate_per_hour: Decimal  # instance + accelerator, now
    instance_cost: Decimal
    accelerator_cost: Decimal
    total: Decimal
    inferences: int
    cost_per_inference: Decimal | None  # nano-dollar precision; None before any inference
    cost_per_million: Decimal | None
    projected_per_day: Decimal  # at the current rate
    projected_per_month: Decimal  # at the current rate, 730 hours
    comparison: str  # the whole-GPU instance compared against
    comparison_rate: Decimal
    comparison_cost: Decimal  # the same wall time on the comparison instance
    comparison_cost_per_million: Decimal | None  # the same work on it
    savings: Decimal  # comparison_cost - total; negative when the whole GPU was cheaper
    savings_fraction: Decimal | None  # savings / comparison_cost; None when that is 0
    budget: Budget | None = None
    budget_spent: Decimal | None = None  # counted against the budget (month: ledger + live)
    budget_fraction: Decimal | None = None
    ledger: str | None = None  # where usage is recorded; None when only in memory

    @property
    def whole_gpu_cheaper(self) -> bool:
        return self.savings < 0

    @property
    def savings_text(self) -> str:
        """One sentence for the widgets: saved, or honestly not."""
        if self.savings_fraction is None:
            return "nothing metered yet"
        pct = abs(self.savings_fraction) * 100
        if self.savings >= 0:
            return f"saved {format_money(self.savings)} ({pct:.0f}%) against {self.comparison}"
        return (
            f"{self.comparison} would have been cheaper for this workload, by"
            f" {format_money(-self.savings)} ({pct:.0f}%)"
        )


Event = CostSnapshot | BudgetEvent
Callback = Callable[[Event], None]


def format_money(amount: Decimal) -> str:
    """Dollars for display: cents, or four significant decimals below one cent."""
    if amount != 0 and abs(amount) < Decimal("0.01"):
        return f"${amount.quantize(Decimal('0.0001'), rounding=ROUND_HALF_EVEN)}"
    return f"${amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}"


# --- the meter ----------------------------------------------------------------------------------


@dataclass
class _Segment:
    """An open billing segment: the instance or the attached accelerator."""

    kind: Literal["instance", "accelerator"]
    name: str
    rate: int  # micro-dollars per hour
    start: float  # monotonic
    source: Any  # the Instance or Attachment object it was opened for
    precision: str | None = None
    ledger_id: int | None = None
    ledger_start: float = 0.0  # monotonic start of its ledger interval (later after a re-open)
    work0: tuple[int, int, float] = (0, 0, 0.0)  # work counters when it opened


@dataclass
class _Units:
    instance: int = 0
    accelerator: int = 0


def _us(seconds: float) -> int:
    return max(0, round(seconds * US_PER_S))


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
    raw = os.environ.get(HEARTBEAT_ENV_VAR)
    if not raw:
        return DEFAULT_HEARTBEAT_S
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        warnings.warn(
            f"{HEARTBEAT_ENV_VAR}={raw!r} is not a positive number of seconds; using"
            f" {DEFAULT_HEARTBEAT_S:g}",
            LedgerWarning,
            stacklevel=3,
        )
        return DEFAULT_HEARTBEAT_S
    return value


def _default_work() -> tuple[int, int, float]:
    """Inferences, errors and simulated seconds so far, from the kernel's metrics stream."""
    from ei_widgets.metrics import default_stream

    return default_stream().totals()


class CostMeter:
    """The kernel's running bill. See the module docstring for how time and money are kept."""

    def __init__(
        self,
        state: AcceleratorState,
        *,
        ledger: Ledger | None = None,
        clock: Clock | None = None,
        comparison: str = DEFAULT_COMPARISON,
        catalog: Any | Callable[[], Any] | None = None,
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
        if heartbeat <= 0 or tick <= 0:
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
        self._subscribers: list[Callback] = []
        self._comparison = comparison
        self._comparison_rate = self._price("instance", comparison, None)
        self._closed = _Units()
        self._last_instance = ""
        self._instance: _Segment | None = None
        self._accelerator: _Segment | None = None
        self._start: float | None = None
        self._start_wall: datetime | None = None
        self._stop: float | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._history: list[tuple[str, int, float, float]] = []  # closed (kind, rate, start, end)
        self._session_id: int | None = None  # the ledger session now written to
        self._session_ids: list[int] = []  # every ledger session of this meter
        self._session_start = 0.0
        self._last_heartbeat = 0.0
        self._last_notify: float | None = None
        self._budget: Budget | None = None
        self._fired: set[int] = set()
        self._fired_month: tuple[int, int] | None = None
        self._month_others = 0  # units of the month recorded by other sessions (cached)
        self._month_refreshed: float | None = None
        self._month_of: datetime | None = None  # the month _month_others is about
        self._ledger_warned = False
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    # prices

    def _current_catalog(self) -> Any:
        if self._catalog is None:
            from .catalog import default_catalog

            return default_catalog()
        return self._catalog() if callable(self._catalog) else self._catalog

    def _price(self, kind: str, name: str, fallback: Any) -> int:
        """Micro-dollars per hour for ``name``, from the current catalog, else the object's own."""
        try:
            catalog = self._current_catalog()
            item = catalog.instance(name) if kind == "instance" else catalog.accelerator(name)
            return micro_per_hour(item.price_per_hour)
        except EIError:
            if fallback is None:
                raise
            return micro_per_hour(fallback.price_per_hour)

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
            self._start = now
            self._start_wall = self._clock.wall()
            self._last_heartbeat = now
            instance = self._state.instance
            self._instance = self._open("instance", instance, now)
            attachment = self._state.attachment
            if attachment is not None:
                # Attached before the meter started: billed from now, on the meter's one clock.
                self._accelerator = self._open("accelerator", attachment, now)
            self._ledger_open_session(now)
            self._unsubscribe = self._state.subscribe(self._on_change)
        if thread:
            self._thread = threading.Thread(
                target=self._run, name="ei_widgets-cost-meter", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> CostSnapshot:
        """Stop billing: close the open intervals and the ledger session. Idempotent."""
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        # Unsubscribe before taking our lock: the state calls observers under its own lock, so
        # holding ours while waiting for it could deadlock with an attach in another thread.
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            with contextlib.suppress(Exception):
                unsubscribe()
        with self._lock:
            if self._start is None:
                raise EIError("the meter was never started")
            if self._stop is None:
                now = self._clock.monotonic()
                snap_inputs = self._progress(now)
                work = self._safe_work()
                for seg in (self._accelerator, self._instance):
                    if seg is not None:
                        self._close_segment(seg, now, ledger=False)
                self._accelerator = None
                self._instance = None
                self._stop = now
                if self._session_id is not None:
                    self._ledger_call(
                        lambda led, sid: led.close_session(
                            sid,
                            elapsed_us=_us(now - self._session_start),
                            wall=self._clock.wall().timestamp(),
                            intervals=snap_inputs,
                            inferences=work[0],
                            errors=work[1],
                            simulated_s=work[2],
                        )
                    )
            return self.snapshot()

    def close(self) -> None:
        """Stop if running, and close the ledger if this meter opened it."""
        if self.running:
            self.stop()
        if self.ledger is not None and self.owns_ledger:
            self.ledger.close()

    def _run(self) -> None:
        period = min(self.tick_period, self.heartbeat_period)
        while not self._wake.wait(period):
            try:
                self.tick()
            except Exception:  # the ticker must survive anything a subscriber or the disk does
                log.exception("ei_widgets cost meter tick failed")

    # following the accelerator state

    def _open(self, kind: Literal["instance", "accelerator"], source: Any, now: float) -> _Segment:
        if kind == "instance":
            name = str(source.name)
            seg = _Segment(kind, name, self._price("instance", name, source), now, source)
        else:
            acc = source.accelerator
            name = str(acc.name)
            rate = self._price("accelerator", name, acc)
            seg = _Segment(
                kind, name, rate, now, source, precision=getattr(source, "precision", None)
            )
        seg.work0 = self._safe_work()
        seg.ledger_start = now
        if self._session_id is not None:
            self._ledger_open_interval(seg)
        return seg

    def _close_segment(self, seg: _Segment, now: float, *, ledger: bool, reason: str = "") -> None:
        units = seg.rate * _us(now - seg.start)
        if seg.kind == "instance":
            self._closed.instance += units
        else:
            self._closed.accelerator += units
        self._history.append((seg.kind, seg.rate, seg.start, now))
        if seg.kind == "instance":
            self._last_instance = seg.name  # still named in snapshots after the meter stops
        if ledger and seg.ledger_id is not None:
            progress = self._segment_progress(seg, now, self._safe_work())
            interval_id = seg.ledger_id
            self._ledger_call(
                lambda led, _sid: led.close_interval(interval_id, progress, reason=reason)
            )

    def _on_change(self, change: Change) -> None:
        kind = change.kind
        if kind not in ("attach", "detach", "instance"):
            return
        with self._lock:
            if not self.running:
                return
            now = self._clock.monotonic()
            if kind == "instance":
                new = change.current or self._state.instance
                if self._instance is not None and self._instance.source is new:
                    return
                if self._instance is not None:
                    self._close_segment(self._instance, now, ledger=True, reason="change")
                self._instance = self._open("instance", new, now)
                return
            new_att = change.current if kind == "attach" else None
            if self._accelerator is not None:
                if new_att is not None and self._accelerator.source is new_att:
                    return
                reason = "detach" if new_att is None else "change"
                self._close_segment(self._accelerator, now, ledger=True, reason=reason)
                self._accelerator = None
            if new_att is not None:
                self._accelerator = self._open("accelerator", new_att, now)

    # the ledger side (every failure degrades to memory-only metering, with one warning)

    def _ledger_call(self, fn: Callable[[Ledger, int], Any]) -> Any:
        if self.ledger is None or self._session_id is None:
            return None
        try:
            return fn(self.ledger, self._session_id)
        except (sqlite3.Error, OSError, LedgerError) as exc:
            self._ledger_failed(exc)
            return None

    def _ledger_failed(self, exc: BaseException) -> None:
        if not self._ledger_warned:
            self._ledger_warned = True
            warnings.warn(
                f"ei_widgets ledger write failed ({exc}); metering goes on in memory only.",
                LedgerWarning,
                stacklevel=3,
            )
        self._session_id = None  # stop writing; the live bill is unaffected

    def _ledger_open_session(self, now: float) -> None:
        if self.ledger is None or self._instance is None:
            return
        try:
            sid = self.ledger.open_session(
                instance=self._instance.name,
                rate_micro=self._instance.rate,
                started_at=self._clock.wall().timestamp(),
                heartbeat_period=self.heartbeat_period,
                kernel_id=self.kernel_id,
                notebook=self.notebook,
            )
        except (sqlite3.Error, OSError, LedgerError) as exc:
            self._ledger_failed(exc)
            return
        self._session_id = sid
        self._session_ids.append(sid)
        self._session_start = now
        for seg in (self._instance, self._accelerator):
            if seg is not None:
                seg.ledger_start = now
                seg.work0 = self._safe_work()
                self._ledger_open_interval(seg)

    def _ledger_open_interval(self, seg: _Segment) -> None:
        ledger_start = seg.ledger_start
        seg.ledger_id = self._ledger_call(
            lambda led, sid: led.open_interval(
                sid,
                kind=seg.kind,
                name=seg.name,
                rate_micro=seg.rate,
                offset_us=_us(ledger_start - self._session_start),
                started_at=self._clock.wall().timestamp(),
                precision=seg.precision,
            )
        )

    def _segment_progress(
        self, seg: _Segment, now: float, work: tuple[int, int, float]
    ) -> IntervalProgress:
        return IntervalProgress(
            duration_us=_us(now - seg.ledger_start),
            inferences=max(0, work[0] - seg.work0[0]),
            errors=max(0, work[1] - seg.work0[1]),
            simulated_s=max(0.0, work[2] - seg.work0[2]),
        )

    def _progress(self, now: float) -> dict[int, IntervalProgress]:
        work = self._safe_work()
        return {
            seg.ledger_id: self._segment_progress(seg, now, work)
            for seg in (self._instance, self._accelerator)
            if seg is not None and seg.ledger_id is not None
        }

    def _write_heartbeat(self, now: float) -> None:
        if self._session_id is None:
            return
        work = self._safe_work()
        progress = self._progress(now)
        ok = self._ledger_call(
            lambda led, sid: led.heartbeat(
                sid,
                elapsed_us=_us(now - self._session_start),
                wall=self._clock.wall().timestamp(),
                intervals=progress,
                inferences=work[0],
                errors=work[1],
                simulated_s=work[2],
            )
        )
        if ok is False:
            # Another kernel judged this one dead and closed its session (e.g. after a long
            # suspend): carry on in a new session from now, the closed one keeps what it had.
            self._ledger_open_session(now)
        self._refresh_month_others()

    def _refresh_month_others(self, *, force: bool = False) -> None:
        """Re-read what other sessions spent this month, for a month budget only.

        Reading it costs a scan of the month's intervals, so it is done when the budget is set
        and then at most every ``MONTH_REFRESH_S`` (other kernels' costs are only as fresh as
        their heartbeats anyway).
        """
        budget = self._budget
        if self.ledger is None or budget is None or budget.period != "month":
            return
        now = self._clock.monotonic()
        start = month_start(self._clock.wall())
        last = self._month_refreshed
        fresh = last is not None and now - last < MONTH_REFRESH_S and self._month_of == start
        if fresh and not force:
            return
        self._month_refreshed, self._month_of = now, start
        try:
            self._month_others = self.ledger.total_units(start, exclude=self._session_ids)
        except (sqlite3.Error, OSError, LedgerError) as exc:
            self._ledger_failed(exc)

    def _safe_work(self) -> tuple[int, int, float]:
        try:
            return self._work()
        except Exception:  # a broken metrics source must not stop the bill
            log.exception("ei_widgets: reading the metrics stream failed")
            return (0, 0, 0.0)

    # the ticker's work, callable by hand with a ManualClock

    def tick(self) -> CostSnapshot:
        """One ticker step: heartbeat if due, budget check, notify subscribers. Returns the
        snapshot it sent."""
        events: list[Event] = []
        detach = False
        with self._lock:
            now = self._clock.monotonic()
            if self.running and now - self._last_heartbeat >= self.heartbeat_period:
                self._last_heartbeat = now
                self._write_heartbeat(now)
            snap = self.snapshot()
            budget_events = self._check_budget(snap)
            notify = self._last_notify is None or now - self._last_notify >= self.tick_period
            if notify or budget_events:
                self._last_notify = now
                events.append(snap)
            events.extend(budget_events)
            detach = any(e.percent >= 100 and e.budget.auto_detach for e in budget_events)
        if detach:
            name = self._accelerator.name if self._accelerator is not None else None
            if name is not None:
                self._state.detach()
                events = [
                    BudgetEvent(e.percent, e.budget, e.spent, e.at, detached=name)
                    if isinstance(e, BudgetEvent) and e.percent >= 100
                    else e
                    for e in events
                ]
                events.append(self.snapshot())
        self._notify(events)
        return snap

    def _notify(self, events: list[Event]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for event in events:
            for callback in subscribers:
                try:
                    callback(event)
                except Exception:
                    log.exception("ei_widgets cost meter subscriber failed")

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback`` with a ``CostSnapshot`` every tick and with each ``BudgetEvent``.

        Returns a function that unsubscribes. Callbacks run on the ticker thread.
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    # budgets

    @property
    def budget(self) -> Budget | None:
        return self._budget

    def set_budget(
        self,
        dollars: Decimal | int | float | str | None,
        period: Period = "session",
        auto_detach: bool = False,
    ) -> Budget | None:
        """Set (or with ``None`` clear) the budget. Thresholds already passed fire at the next
        tick, once each."""
        if dollars is None:
            with self._lock:
                self._budget = None
                self._fired = set()
            return None
        try:
            amount = Decimal(str(dollars))
        except ArithmeticError:
            amount = Decimal(-1)
        if not amount.is_finite() or amount <= 0:
            raise EIError(f"a budget must be a positive amount of dollars, not {dollars!r}")
        if period not in ("session", "month"):
            raise EIError(f"a budget period is 'session' or 'month', not {period!r}")
        budget = Budget(amount, period, bool(auto_detach))
        with self._lock:
            self._budget = budget
            self._fired = set()
            self._fired_month = None
            self._refresh_month_others(force=True)
        return budget

    def _budget_spent_units(self, snap_units: int) -> int:
        assert self._budget is not None
        if self._budget.period == "session":
            return snap_units
        self._refresh_month_others()  # re-reads only when stale or a new month began
        return self._month_others + self._live_units_since(month_start(self._clock.wall()))

    def _check_budget(self, snap: CostSnapshot) -> list[BudgetEvent]:
        budget = self._budget
        if budget is None or snap.budget_spent is None:
            return []
        if budget.period == "month":
            wall = self._clock.wall()
            key = (wall.year, wall.month)
            if self._fired_month != key:  # a new month starts with no event sent
                self._fired_month = key
                self._fired = set()
        events = []
        for pct in BUDGET_THRESHOLDS:
            if pct in self._fired:
                continue
            if snap.budget_spent * 100 >= budget.amount * pct:
                self._fired.add(pct)
                events.append(BudgetEvent(pct, budget, snap.budget_spent, snap.at))
        return events

    # reading the bill

    def _live_units(self, now: float) -> _Units:
        units = _Units(self._closed.instance, self._closed.accelerator)
        if self._instance is not None:
            units.instance += self._instance.rate * _us(now - self._instance.start)
        if self._accelerator is not None:
            units.accelerator += self._accelerator.rate * _us(now - self._accelerator.start)
        return units

    def _live_units_since(self, since: datetime) -> int:
        """This meter's units after a wall-clock instant, placed on the session's timeline
        (start wall + monotonic offsets) so a clock change cannot move cost across months."""
        if self._start is None or self._start_wall is None:
            return 0
        now = self._stop if self._stop is not None else self._clock.monotonic()
        cut = self._start + (since - self._start_wall).total_seconds()
        spans = list(self._history)
        for seg in (self._instance, self._accelerator):
            if seg is not None:
                spans.append((seg.kind, seg.rate, seg.start, now))
        return sum(rate * _us(end - max(start, cut)) for _k, rate, start, end in spans if end > cut)

    def snapshot(self) -> CostSnapshot:
        """The bill now (or at stop, once stopped)."""
        with self._lock:
            if self._start is None:
                raise EIError("the meter was never started")
            now = self._stop if self._stop is not None else self._clock.monotonic()
            units = self._live_units(now)
            total_units = units.instance + units.accelerator
            elapsed_us = _us(now - self._start)
            inferences = self._safe_work()[0]
            inst = self._instance
            acc = self._accelerator
            inst_rate = inst.rate if inst is not None else 0
            acc_rate = acc.rate if acc is not None else 0
            rate = inst_rate + acc_rate
            comp_units = self._comparison_rate * elapsed_us
            savings_units = comp_units - total_units
            per_inf = per_million = comp_per_million = None
            if inferences > 0:
                per_inf = (Decimal(total_units) / 10**12 / 3600 / inferences).quantize(_NANO)
                per_million = dollars(total_units * 1_000_000 // inferences)
                comp_per_million = dollars(comp_units * 1_000_000 // inferences)
            fraction = (
                (Decimal(savings_units) / Decimal(comp_units)).quantize(_FRACTION)
                if comp_units
                else None
            )
            budget = self._budget
            spent = spent_fraction = None
            if budget is not None:
                spent = dollars(self._budget_spent_units(total_units))
                spent_fraction = (spent / budget.amount).quantize(_FRACTION)
            return CostSnapshot(
                at=self._clock.wall(),
                elapsed_seconds=elapsed_us / US_PER_S,
                instance=inst.name if inst is not None else self._last_instance,
                instance_rate=_rate(inst_rate),
                accelerator=acc.name if acc is not None else None,
                accelerator_rate=_rate(acc_rate),
                rate_per_hour=_rate(rate),
                instance_cost=dollars(units.instance),
                accelerator_cost=dollars(units.accelerator),
                total=dollars(total_units),
                inferences=inferences,
                cost_per_inference=per_inf,
                cost_per_million=per_million,
                projected_per_day=_rate(rate * 24),
                projected_per_month=_rate(rate * HOURS_PER_MONTH),
                comparison=self._comparison,
                comparison_rate=_rate(self._comparison_rate),
                comparison_cost=dollars(comp_units),
                comparison_cost_per_million=comp_per_million,
                savings=dollars(savings_units),
                savings_fraction=fraction,
                budget=budget,
                budget_spent=spent,
                budget_fraction=spent_fraction,
                ledger=self._ledger_label(),
            )

    def _ledger_label(self) -> str | None:
        if self.ledger is None or self.ledger.path is None or self._session_id is None:
            return None
        return str(self.ledger.path)

    @property
    def comparison(self) -> str:
        return self._comparison

    def set_comparison(self, name: str) -> None:
        """Compare against another whole-GPU (or any) instance from the catalog."""
        rate = self._price("instance", name, None)
        with self._lock:
            self._comparison, self._comparison_rate = name, rate

    @property
    def session_id(self) -> int | None:
        """The ledger session this meter writes to (None in memory-only mode)."""
        return self._session_id


def _rate(micro: int) -> Decimal:
    return (Decimal(micro) / 1_000_000).quantize(Decimal("0.000001"))


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
    defaults to ``$EI_WIDGETS_HEARTBEAT`` or 10.
    """
    global _METER, _ATEXIT
    with _METER_LOCK:
        if _METER is not None and _METER.running:
            return _METER
        if state is None:
            from .accelerator import state as kernel_state

            state = kernel_state()
        owned = not isinstance(ledger, Ledger)
        if not isinstance(ledger, Ledger):
            ledger = open_ledger(ledger)
        period = _heartbeat_from_env() if heartbeat is None else heartbeat
        new = CostMeter(
            state,
            ledger=ledger,
            clock=clock,
            comparison=comparison,
            heartbeat=period,
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
    with contextlib.suppress(Exception):
        stop_meter()
