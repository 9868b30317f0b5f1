"""The cost meter with a manual clock: billing, savings, budgets, clock changes, the ledger side."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from ei_widgets.billing import meters
from ei_widgets.billing.ledger import Ledger, LedgerWarning
from ei_widgets.billing.meters import (
    BudgetEvent,
    CostMeter,
    CostSnapshot,
    ManualClock,
    format_money,
    start_meter,
    stop_meter,
)
from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.catalog import apply_overrides, packaged_catalog, parse_price_overrides
from ei_widgets.errors import EIError

HOUR = 3600.0


class Work:
    """A settable (inferences, errors, simulated seconds) source."""

    def __init__(self) -> None:
        self.inferences = 0
        self.errors = 0

    def __call__(self) -> tuple[int, int, float]:
        return (self.inferences, self.errors, self.inferences * 0.001)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc))


@pytest.fixture
def state() -> AcceleratorState:
    return AcceleratorState(instance="ml.t3.medium", catalog=packaged_catalog())


@pytest.fixture
def work() -> Work:
    return Work()


@pytest.fixture
def led(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(tmp_path / "usage.sqlite3")
    yield ledger
    ledger.close()


def make(
    state: AcceleratorState,
    clock: ManualClock,
    work: Work,
    ledger: Ledger | None = None,
    **kw: object,
) -> CostMeter:
    return CostMeter(
        state,
        ledger=ledger,
        clock=clock,
        work=work,
        catalog=packaged_catalog(),
        **kw,  # type: ignore[arg-type]
    ).start(thread=False)


# --- billing ------------------------------------------------------------------------------------


def test_instance_from_start_accelerator_from_attach_to_detach(
    state: AcceleratorState, clock: ManualClock, work: Work
) -> None:
    m = make(state, clock, work)
    clock.advance(HOUR)  # instance alone: 0.05
    state.attach("ml.eia2.medium")
    clock.advance(HOUR / 2)  # both: 0.025 + 0.084
    s = m.snapshot()
    assert s.rate_per_hour == Decimal("0.218")
    assert s.accelerator == "ml.eia2.medium"
    state.detach()
    clock.advance(HOUR / 2)  # instance alone again: 0.025
    s = m.snapshot()
    assert s.instance_cost == Decimal("0.100000")
    assert s.accelerator_cost == Decimal("0.084000")
    assert s.total == Decimal("0.184000")
    assert s.accelerator is None
    assert s.rate_per_hour == Decimal("0.05")
    assert s.elapsed_seconds == 2 * HOUR
    final = m.stop()
    clock.advance(HOUR)  # nothing accrues after stop
    assert m.snapshot().total == final.total == Decimal("0.184000")
    assert (final.instance, final.rate_per_hour, final.elapsed_seconds) == (
        "ml.t3.medium",
        Decimal(0),
        2 * HOUR,
    )
    assert m.stop().total == final.total  # idempotent


def test_per_second_billing_and_instance_changes(
    state: AcceleratorState, clock: ManualClock, work: Work
) -> None:
    m = make(state, clock, work)
    clock.advance(1)
    assert m.snapshot().total == Decimal("0.000014")  # 0.05 $/h for one second, to the micro-$
    state.set_instance("ml.m5.xlarge")
    clock.advance(HOUR)
    s = m.snapshot()
    assert s.instance == "ml.m5.xlarge"
    assert s.instance_rate == Decimal("0.23")
    assert s.instance_cost == Decimal("0.230014")


def test_price_overrides_apply(state: AcceleratorState, clock: ManualClock, work: Work) -> None:
    overrides = parse_price_overrides(
        '[prices]\n"ml.eia2.medium" = "0.20"\n"ml.t3.medium" = "0.0582"\n'
    )
    catalog = apply_overrides(packaged_catalog(), overrides)
    m = CostMeter(state, clock=clock, work=work, catalog=lambda: catalog).start(thread=False)
    state.attach("ml.eia2.medium")
    clock.advance(HOUR)
    s = m.snapshot()
    assert s.instance_cost == Decimal("0.058200")
    assert s.accelerator_cost == Decimal("0.200000")


def test_cost_per_inference_projections_and_savings(
    state: AcceleratorState, clock: ManualClock, work: Work
) -> None:
    m = make(state, clock, work)
    assert m.snapshot().cost_per_million is None
    state.attach("ml.eia2.medium")
    clock.advance(HOUR)
    work.inferences = 400_000
    s = m.snapshot()
    assert s.total == Decimal("0.218000")
    assert s.inferences == 400_000
    assert s.cost_per_million == Decimal("0.545000")
    assert s.cost_per_inference == Decimal("0.000000545")
    assert s.projected_per_day == Decimal("5.232")
    assert s.projected_per_month == Decimal("159.14")  # 730 h
    assert s.comparison == "ml.g4dn.xlarge"
    assert s.comparison_cost == Decimal("0.736000")  # the same hour on the whole GPU
    assert s.comparison_cost_per_million == Decimal("1.840000")  # the same work on it
    assert s.savings == Decimal("0.518000")
    assert s.savings_fraction == Decimal("0.7038")
    assert not s.whole_gpu_cheaper
    assert s.savings_text == "saved $0.518 (70%) against ml.g4dn.xlarge"


def test_savings_are_honestly_negative_when_the_whole_gpu_is_cheaper(
    state: AcceleratorState, clock: ManualClock, work: Work
) -> None:
    state.set_instance("ml.m5.xlarge")
    m = make(state, clock, work)
    state.attach("ml.eia1.xlarge")  # 0.23 + 0.728 = 0.958 $/h > 0.736
    clock.advance(HOUR)
    s = m.snapshot()
    assert s.savings == Decimal("-0.222000")
    assert s.savings_fraction == Decimal("-0.3016")
    assert s.whole_gpu_cheaper
    assert s.savings_text.startswith("ml.g4dn.xlarge would have been cheaper")
    m.set_comparison("ml.p3.2xlarge")
    assert m.snapshot().savings > 0
    with pytest.raises(EIError, match=r"ml\.nope"):
        m.set_comparison("ml.nope")


def test_money_has_no_float_drift(state: AcceleratorState, clock: ManualClock, work: Work) -> None:
    # 0.36 $/h for 1000 s is exactly $0.10; ten of them are exactly $1 (floats say 0.999...).
    catalog = apply_overrides(
        packaged_catalog(),
        parse_price_overrides('[prices]\n"ml.t3.medium" = "0"\n"ml.eia2.medium" = "0.36"\n'),
    )
    m = CostMeter(state, clock=clock, work=work, catalog=catalog).start(thread=False)
    for _ in range(10):
        state.attach("ml.eia2.medium")
        clock.advance(1000)
        state.detach()
        clock.advance(7)
    assert m.snapshot().accelerator_cost == Decimal("1.000000")
    assert sum([0.36 / 3600 * 1000] * 10) != 1.0
    assert format_money(Decimal("1.0005")) == "$1.00"  # half-even, at display only
    assert format_money(Decimal("0.000545")) == "$0.000545"
    assert format_money(Decimal("1234.5")) == "$1,234.50"


def test_a_wall_clock_change_neither_creates_nor_erases_cost(
    state: AcceleratorState, clock: ManualClock, work: Work, led: Ledger
) -> None:
    m = make(state, clock, work, led, heartbeat=10)
    state.attach("ml.eia2.medium")
    clock.advance(HOUR)
    before = m.snapshot().total
    clock.set_wall(clock.wall() - timedelta(days=3))  # the clock is set back three days...
    m.tick()
    assert m.snapshot().total == before
    clock.set_wall(clock.wall() + timedelta(days=400))  # ...then a year forward
    m.tick()
    assert m.snapshot().total == before
    clock.advance(HOUR)
    assert m.snapshot().total == before * 2
    m.stop()
    # The ledger places the intervals on the session's own timeline: 2 h, on the start date.
    rows = led.usage(by="day")
    assert [(r.key, r.instance_seconds, r.total) for r in rows] == [
        ("2026-11-28", 2 * HOUR, Decimal("0.436000"))
    ]


# --- the ledger side ----------------------------------------------------------------------------


def test_heartbeats_write_progress_and_stop_closes_the_session(
    state: AcceleratorState, clock: ManualClock, work: Work, led: Ledger
) -> None:
    m = make(state, clock, work, led, heartbeat=10, kernel_id="k1", notebook="nb.ipynb")
    sid = m.session_id
    assert sid is not None
    clock.advance(5)
    state.attach("ml.eia2.large", precision="fp16")
    for _ in range(30):
        clock.advance(1)
        work.inferences += 10
        m.tick()
    session = led.sessions()[0]
    assert session["heartbeats"] == 3  # at 10, 20 and 30 s
    assert session["elapsed_us"] == 30_000_000
    assert session["notebook"] == "nb.ipynb"
    inst, acc = led.intervals(sid)
    assert (inst["kind"], inst["duration_us"], inst["closed"]) == ("instance", 30_000_000, 0)
    assert (acc["name"], acc["precision"], acc["offset_us"]) == ("ml.eia2.large", "fp16", 5_000_000)
    assert acc["duration_us"] == 25_000_000
    assert acc["inferences"] == 250
    clock.advance(5)
    state.detach()
    clock.advance(1)
    final = m.stop()
    inst, acc = led.intervals(sid)
    assert (acc["closed"], acc["end_reason"], acc["duration_us"]) == (1, "detach", 35_000_000)
    assert (inst["closed"], inst["end_reason"], inst["duration_us"]) == (1, "stop", 41_000_000)
    session = led.sessions()[0]
    assert session["end_reason"] == "stop"
    assert session["inferences"] == 300
    assert led.total() == final.total


def test_the_meter_goes_on_when_the_ledger_fails(
    state: AcceleratorState, clock: ManualClock, work: Work, led: Ledger
) -> None:
    m = make(state, clock, work, led, heartbeat=1)
    clock.advance(HOUR)
    led._conn.close()  # the disk went away, say
    with pytest.warns(LedgerWarning, match="in memory only"):
        m.tick()
    assert m.session_id is None
    state.attach("ml.eia2.medium")
    clock.advance(HOUR)
    assert m.snapshot().total == Decimal("0.268000")
    assert m.stop().total == Decimal("0.268000")


def test_a_session_closed_by_another_kernel_is_continued_in_a_new_one(
    state: AcceleratorState, clock: ManualClock, work: Work, led: Ledger
) -> None:
    m = make(state, clock, work, led, heartbeat=10)
    first = m.session_id
    clock.advance(10)
    m.tick()
    with led._write() as conn:  # another kernel judged this one dead (a long suspend)
        conn.execute("UPDATE sessions SET ended_at = heartbeat_at, end_reason = 'crash'")
        conn.execute("UPDATE intervals SET closed = 1, end_reason = 'crash'")
    clock.advance(10)
    m.tick()  # refused: a new session starts now
    assert m.session_id not in (None, first)
    clock.advance(10)
    m.stop()
    # Nothing counted twice: 10 s in the first session, 10 s in the second, 10 s lost.
    assert [s["elapsed_us"] for s in led.sessions()] == [10_000_000, 10_000_000]


# --- budgets ------------------------------------------------------------------------------------


def test_budget_events_fire_once_each_and_auto_detach(
    state: AcceleratorState, clock: ManualClock, work: Work
) -> None:
    m = make(state, clock, work)
    got: list[BudgetEvent] = []
    m.subscribe(lambda e: got.append(e) if isinstance(e, BudgetEvent) else None)
    state.attach("ml.eia2.medium")  # 0.218 $/h
    m.set_budget("0.218", auto_detach=True)
    clock.advance(HOUR * 0.49)
    m.tick()
    assert got == []
    clock.advance(HOUR * 0.02)
    m.tick()
    m.tick()
    assert [e.percent for e in got] == [50]
    clock.advance(HOUR * 0.5)  # straight past 80 and 100 in one step
    m.tick()
    assert [e.percent for e in got] == [50, 80, 100]
    assert got[-1].detached == "ml.eia2.medium"
    assert "was detached" in got[-1].message
    assert state.attachment is None
    clock.advance(HOUR)
    m.tick()
    assert len(got) == 3  # never again
    s = m.snapshot()
    assert s.budget_fraction is not None
    assert s.budget_fraction > 1


def test_budget_without_auto_detach_keeps_the_accelerator(
    state: AcceleratorState, clock: ManualClock, work: Work
) -> None:
    m = make(state, clock, work)
    got: list[object] = []
    m.subscribe(got.append)
    state.attach("ml.eia2.medium")
    m.set_budget(0.1)
    clock.advance(HOUR)
    m.tick()
    events = [e for e in got if isinstance(e, BudgetEvent)]
    assert [e.percent for e in events] == [50, 80, 100]
    assert all(e.detached is None for e in events)
    assert state.attachment is not None
    assert any(isinstance(e, CostSnapshot) for e in got)
    for bad in (0, -1, "abc", float("nan")):
        with pytest.raises(EIError, match="positive"):
            m.set_budget(bad)
    with pytest.raises(EIError, match="month"):
        m.set_budget(1, period="week")  # type: ignore[arg-type]
    assert m.set_budget(None) is None
    assert m.snapshot().budget is None


def test_month_budget_counts_the_ledger_month_to_date_plus_the_live_session(
    state: AcceleratorState, clock: ManualClock, work: Work, led: Ledger
) -> None:
    from test_ledger import H, add_session, ts

    add_session(led, start=ts(2026, 11, 10, 9))  # this month: 0.10
    add_session(led, start=ts(2026, 10, 31, 23))  # 23:00-01:00: half in this month: 0.05
    add_session(led, start=ts(2026, 10, 5, 9), instance=("ml.t3.medium", "0.05", 20 * H))
    m = make(state, clock, work, led)
    got: list[BudgetEvent] = []
    m.subscribe(lambda e: got.append(e) if isinstance(e, BudgetEvent) else None)
    m.set_budget("0.5", period="month")
    assert m.snapshot().budget_spent == Decimal("0.150000")
    clock.advance(2 * HOUR)  # live: 0.10 -> 0.25 = 50%
    m.tick()
    assert m.snapshot().budget_spent == Decimal("0.250000")
    assert [e.percent for e in got] == [50]
    # Another kernel's spending shows up within MONTH_REFRESH_S.
    add_session(led, start=ts(2026, 11, 28, 9))  # +0.10
    clock.advance(1)
    m.tick()
    assert m.snapshot().budget_spent == Decimal("0.250014")  # not re-read yet: live 2 h 1 s
    clock.advance(meters.MONTH_REFRESH_S)
    m.tick()
    assert m.snapshot().budget_spent == Decimal("0.350431")  # 0.15 + 0.10 + live 2 h 31 s
    # The session budget would count only the live 0.10.
    m.set_budget("0.5")
    assert m.snapshot().budget_spent == Decimal("0.100431")


def test_month_budget_resets_in_a_new_month(
    state: AcceleratorState, work: Work, led: Ledger
) -> None:
    clock = ManualClock(datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc))
    m = make(state, clock, work, led)
    got: list[BudgetEvent] = []
    m.subscribe(lambda e: got.append(e) if isinstance(e, BudgetEvent) else None)
    m.set_budget("0.04", period="month")
    clock.advance(HOUR * 0.5)
    m.tick()
    assert [e.percent for e in got] == [50]
    clock.advance(HOUR)  # 00:30 on Dec 1st: only 30 minutes (0.025) count in December
    m.tick()
    assert m.snapshot().budget_spent == Decimal("0.025000")
    assert [e.percent for e in got] == [50, 50]


# --- subscribers, the ticker thread, the kernel's one meter ------------------------------------


def test_subscribers_get_snapshots_and_a_failing_one_is_skipped(
    state: AcceleratorState, clock: ManualClock, work: Work
) -> None:
    m = make(state, clock, work)
    seen: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("a broken view")

    m.subscribe(broken)
    unsubscribe = m.subscribe(seen.append)
    clock.advance(1)
    m.tick()
    assert len(seen) == 1
    assert isinstance(seen[0], CostSnapshot)
    unsubscribe()
    clock.advance(1)
    m.tick()
    assert len(seen) == 1


def test_the_ticker_thread_notifies_and_stops(state: AcceleratorState, work: Work) -> None:
    m = CostMeter(state, work=work, catalog=packaged_catalog(), tick=0.05, heartbeat=0.05)
    got = threading.Event()
    m.subscribe(lambda e: got.set())
    m.start()
    try:
        assert got.wait(timeout=10)
    finally:
        m.stop()
    assert m._ticker is not None
    assert not m._ticker.thread.is_alive()
    assert not m.running


def test_start_meter_is_idempotent_and_stop_meter_closes_the_session(
    tmp_path: Path, state: AcceleratorState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EI_WIDGETS_HEARTBEAT", "0.5")
    path = tmp_path / "kernel.sqlite3"
    assert meters.meter() is None
    first = start_meter(state, path, thread=False)
    try:
        assert start_meter(state, path, thread=False) is first
        assert meters.meter() is first
        assert first.heartbeat_period == 0.5
    finally:
        final = stop_meter()
    assert final is not None
    assert meters.meter() is None
    assert stop_meter() is None
    with Ledger(path) as led:
        (session,) = led.sessions()
        assert session["end_reason"] == "stop"
        assert session["heartbeat_period"] == 0.5


def test_a_bad_heartbeat_setting_warns_and_uses_the_default(
    state: AcceleratorState, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EI_WIDGETS_HEARTBEAT", "soon")
    with pytest.warns(LedgerWarning, match="EI_WIDGETS_HEARTBEAT"):
        m = start_meter(state, tmp_path / "x.sqlite3", thread=False)
    try:
        assert m.heartbeat_period == meters.DEFAULT_HEARTBEAT_S
    finally:
        stop_meter()


def test_kernel_id_comes_from_the_connection_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["launcher", "-f", "/run/jupyter/kernel-1a2b-3c.json"])
    assert meters._kernel_id() == "1a2b-3c"
    monkeypatch.setattr("sys.argv", ["launcher", "-f", "/tmp/tmpabc.json"])
    assert meters._kernel_id() is None
    monkeypatch.setattr("sys.argv", ["python"])
    assert meters._kernel_id() is None


def test_no_warning_leaks(state: AcceleratorState, clock: ManualClock, work: Work) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = make(state, clock, work, Ledger(":memory:"))
        clock.advance(100)
        m.tick()
        m.stop()


def test_an_accelerator_attached_past_the_guard_is_detached_at_the_next_tick(
    state: AcceleratorState, clock: ManualClock, work: Work
) -> None:
    m = make(state, clock, work)
    state.attach("ml.eia2.medium")
    m.set_budget("0.1", auto_detach=True)
    clock.advance(HOUR)
    m.tick()
    assert state.attachment is None
    state._guards.clear()  # an attach that got past the guard (as if it raced the tick)
    state.attach("ml.eia2.medium")
    m.tick()
    assert state.attachment is None
    m.stop()
