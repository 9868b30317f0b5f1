"""Nothing lost, no cap that stops capping: the ledger and the meter under a flaky machine.

Each test here is the regression test of one reliability fault: another process holding the
write lock, somebody else's database at the ledger's path, an auto-detach budget and a wall-clock
jump, time closed after a session's last heartbeat, parts that did not add up, a forked child,
read-only reading, and the heartbeat setting.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import test_billing
from test_billing import Work, make
from test_ledger import add_session, ts

from ei_widgets.billing import ledger_file
from ei_widgets.billing.ledger import IntervalProgress, Ledger, LedgerWarning, open_ledger
from ei_widgets.billing.meters import (
    DEFAULT_HEARTBEAT_S,
    MAX_HEARTBEAT_S,
    MIN_HEARTBEAT_S,
    BudgetEvent,
    CostMeter,
    ManualClock,
    start_meter,
    stop_meter,
)
from ei_widgets.billing.usage import usage
from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.catalog import apply_overrides, packaged_catalog, parse_price_overrides
from ei_widgets.errors import EIError, LedgerError

REPO = Path(__file__).resolve().parents[2]
HOUR = 3600.0
H = 3_600_000_000  # one hour in microseconds
MIN = 60_000_000  # one minute in microseconds

clock = test_billing.clock  # the fixtures of the meter's own tests
state = test_billing.state


HOLD_LOCK = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")  # the write lock, as a backup or a sqlite3 shell takes it
    print("locked", flush=True)
    sys.stdin.readline()
    conn.execute("COMMIT")
    """
)


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Another process holds the ledger's write lock for the duration of the block."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "locked"
        yield
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- 1. a transient ledger error ----------------------------------------------------------------


def test_a_ledger_locked_by_another_process_loses_nothing_and_warns_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    state: AcceleratorState,
    clock: ManualClock,
) -> None:
    monkeypatch.setattr(ledger_file, "BUSY_TIMEOUT_MS", 50)  # give up on the lock quickly
    path = tmp_path / "usage.sqlite3"
    led = Ledger(path)
    attempts: list[int] = []
    real_heartbeat = led.heartbeat

    def counted(*args: object, **kw: object) -> bool:
        attempts.append(1)
        return real_heartbeat(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(led, "heartbeat", counted)
    interval_writes: list[str] = []

    def counting(name: str) -> Callable[..., int | bool]:
        real = getattr(led, name)

        def write(*args: object, **kw: object) -> int | bool:
            interval_writes.append(name)
            return real(*args, **kw)

        return write

    for name in ("open_interval", "close_interval"):
        monkeypatch.setattr(led, name, counting(name))
    m = make(state, clock, Work(), led, heartbeat=1)
    sid = m.session_id
    clock.advance(1)
    m.tick()
    assert led.sessions()[0]["elapsed_us"] == 1_000_000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with write_lock_held(path):
            attempts.clear()
            for _ in range(18):
                clock.advance(1)
                m.tick()
            interval_writes.clear()
            state.attach("ml.eia2.medium")  # an attach during the outage is kept too
            assert interval_writes == []  # and waits on no lock: the heartbeat retries
            for _ in range(5):
                clock.advance(1)
                m.tick()
            state.detach()
            clock.advance(1)
            m.tick()
            during = len(attempts)
        clock.advance(120)  # past any back-off
        m.tick()
    ledger_warnings = [w for w in caught if issubclass(w.category, LedgerWarning)]
    assert len(ledger_warnings) == 1, [str(w.message) for w in ledger_warnings]
    assert "retr" in str(ledger_warnings[0].message)
    assert 1 <= during < 10  # backed off: not one attempt per heartbeat
    assert m.session_id == sid  # the same session goes on
    assert led.total() == m.snapshot().total  # every second written once the lock was free
    final = m.stop()
    assert led.total() == final.total
    (session,) = led.sessions()
    assert session["end_reason"] == "stop"
    kinds = [(iv["kind"], iv["closed"], iv["end_reason"]) for iv in led.intervals(sid)]
    assert kinds == [("instance", 1, "stop"), ("accelerator", 1, "detach")]
    led.close()


# --- 2. somebody else's database ----------------------------------------------------------------


def test_another_applications_database_is_refused_and_left_in_place(tmp_path: Path) -> None:
    path = tmp_path / "recipes.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.execute("INSERT INTO recipes VALUES ('bread')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.warns(LedgerWarning, match="not an ei_widgets ledger") as caught:
        led = open_ledger(path)
    assert "in memory" in str(caught[0].message)
    with led:
        assert led.in_memory
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipes.sqlite3"]


def test_a_file_that_is_not_sqlite_is_refused_and_left_in_place(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    text = b"my notes, not a database\n" * 300
    path.write_bytes(text)
    with pytest.warns(LedgerWarning, match="in memory"):
        led = open_ledger(path)
    with led:
        assert led.in_memory
    assert path.read_bytes() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# --- 3. a budget that keeps capping -------------------------------------------------------------


def test_an_auto_detach_budget_refuses_attaching_while_it_is_over(
    state: AcceleratorState, clock: ManualClock
) -> None:
    m = make(state, clock, Work())
    got: list[BudgetEvent] = []
    m.subscribe(lambda e: got.append(e) if isinstance(e, BudgetEvent) else None)
    state.attach("ml.eia2.medium")  # 0.218 $/h with the instance
    m.set_budget("0.218", auto_detach=True)
    clock.advance(HOUR)
    m.tick()
    assert [e.percent for e in got] == [50, 80, 100]
    assert state.attachment is None
    with pytest.raises(EIError, match=r"set_budget") as refused:
        state.attach("ml.eia2.medium")  # one click in the picker
    assert "budget" in str(refused.value)
    assert state.attachment is None
    clock.advance(24 * HOUR)
    m.tick()
    assert state.attachment is None
    assert m.snapshot().accelerator_cost == Decimal("0.168000")  # one hour, never more
    m.set_budget("5", auto_detach=True)  # raised: attaching works again
    state.attach("ml.eia2.medium")
    assert state.attachment is not None


def test_a_wall_clock_jump_neither_refires_month_events_nor_lifts_the_cap(
    state: AcceleratorState, clock: ManualClock, tmp_path: Path
) -> None:
    m = make(state, clock, Work(), Ledger(tmp_path / "usage.sqlite3"))
    got: list[BudgetEvent] = []
    m.subscribe(lambda e: got.append(e) if isinstance(e, BudgetEvent) else None)
    state.attach("ml.eia2.medium")
    m.set_budget("0.2", period="month", auto_detach=True)
    clock.advance(HOUR)
    m.tick()
    assert [e.percent for e in got] == [50, 80, 100]
    assert state.attachment is None
    wall = clock.wall()
    for jump in (timedelta(days=40), timedelta(days=-40), timedelta(days=-400), timedelta(0)):
        clock.set_wall(wall + jump)
        clock.advance(1)
        m.tick()
    assert [e.percent for e in got] == [50, 80, 100]  # nothing fired again
    # The same month, still counted: the hour, then the instance alone for four seconds.
    assert m.snapshot().budget_spent == Decimal("0.218056")
    for jump in (timedelta(days=40), timedelta(days=-400)):
        clock.set_wall(wall + jump)
        clock.advance(1)
        m.tick()
        with pytest.raises(EIError, match="budget"):
            state.attach("ml.eia2.medium")
    m.stop()


# --- 4. time closed after the last heartbeat ----------------------------------------------------


def test_time_closed_after_the_last_heartbeat_counts_in_since_and_until(tmp_path: Path) -> None:
    start = datetime(2026, 11, 2, 10, tzinfo=timezone.utc)
    with Ledger(tmp_path / "usage.sqlite3") as led:
        sid = add_session(  # a heartbeat at 10 minutes, both intervals open
            led,
            start=start.timestamp(),
            instance=("ml.t3.medium", "0.05", 10 * MIN),
            accelerators=(("ml.eia2.medium", "0.168", 0, 10 * MIN, 0),),
            close=False,
        )
        acc = led.intervals(sid)[1]["id"]
        led.close_interval(acc, IntervalProgress(20 * MIN))  # a detach 10 minutes later
        cut = start + timedelta(minutes=15)
        whole = led.total_units()
        assert led.total_units(since=cut) + led.total_units(until=cut) == whole
        assert led.total_units(since=cut) > 0  # the accelerator's last five minutes
        rows_after = led.usage(since=cut, by="accelerator")
        assert [(r.key, r.accelerator_seconds) for r in rows_after] == [("ml.eia2.medium", 300.0)]


# --- 5. parts that add up -----------------------------------------------------------------------


def test_snapshot_parts_add_up_to_the_total_exactly(
    state: AcceleratorState, clock: ManualClock
) -> None:
    m = make(state, clock, Work())
    state.attach("ml.eia2.medium")
    for _ in range(300):
        clock.advance(1.37)
        s = m.snapshot()
        assert s.instance_cost + s.accelerator_cost == s.total, s
        assert s.comparison_cost - s.total == s.savings, s


def test_usage_row_parts_add_up_to_the_total_exactly(tmp_path: Path) -> None:
    start = datetime(2026, 11, 2, 10, tzinfo=timezone.utc).timestamp()
    with Ledger(tmp_path / "usage.sqlite3") as led:
        for n in range(1, 120):
            duration = n * 1_370_000
            add_session(
                led,
                start=start + n * 86_400,
                instance=("ml.t3.medium", "0.05", duration),
                accelerators=(("ml.eia2.medium", "0.168", 0, duration, 0),),
                notebook=f"nb{n:03d}",
            )
        rows = led.usage(by="notebook")
    assert len(rows) == 119
    for row in rows:
        assert row.instance_cost + row.accelerator_cost == row.total, row


# --- 6. a forked child --------------------------------------------------------------------------

FORK_SCRIPT = textwrap.dedent(
    """
    import os, sqlite3, sys
    sys.path.insert(0, {repo!r})
    from ei_widgets.device.accelerator import AcceleratorState
    from ei_widgets.billing.meters import start_meter, stop_meter
    from ei_widgets.device.catalog import packaged_catalog

    path = sys.argv[1]
    state = AcceleratorState(instance="ml.t3.medium", catalog=packaged_catalog())
    meter = start_meter(state, path, thread=False)
    state.attach("ml.eia2.medium")
    child = os.fork()
    if child == 0:
        sys.exit(0)  # the child ends normally: the exit hooks it inherited run
    _, status = os.waitpid(child, 0)
    conn = sqlite3.connect(path)
    ended = conn.execute("SELECT ended_at FROM sessions").fetchall()
    closed = conn.execute("SELECT closed FROM intervals ORDER BY id").fetchall()
    conn.close()
    print("child", os.waitstatus_to_exitcode(status))
    print("ended", ended)
    print("closed", closed)
    meter.tick()
    final = stop_meter()
    conn = sqlite3.connect(path)
    print("end_reason", conn.execute("SELECT end_reason FROM sessions").fetchall())
    conn.close()
    """
)


def test_a_forked_child_exiting_normally_leaves_the_parents_session_open(tmp_path: Path) -> None:
    script = tmp_path / "fork.py"
    script.write_text(FORK_SCRIPT.format(repo=str(REPO)))
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "usage.sqlite3")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert lines == {
        "child": "0",
        "ended": "[(None,)]",
        "closed": "[(0,), (0,)]",
        "end_reason": "[('stop',)]",
    }, out.stderr


# --- 7. reading changes nothing -----------------------------------------------------------------


def _write_ledger(path: Path) -> None:
    with Ledger(path) as led:
        add_session(led, start=ts(2026, 11, 2, 10), notebook="a.ipynb")  # 2 h at $0.05/h


def test_reading_an_empty_file_writes_no_schema(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite3"
    path.touch()
    assert usage(path=path) == []
    assert path.stat().st_size == 0
    with Ledger(path, read_only=True) as led:
        assert led.sessions() == []
        with pytest.raises(LedgerError, match="read"):
            led.open_session(
                instance="ml.t3.medium", rate_micro=1, started_at=0, heartbeat_period=10
            )
    assert path.stat().st_size == 0


def test_reading_leaves_the_ledger_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    _write_ledger(path)
    before = path.read_bytes()
    rows = usage(by="notebook", path=path)
    assert [(r.key, r.total) for r in rows] == [("a.ipynb", Decimal("0.100000"))]
    assert path.read_bytes() == before


def test_the_usage_command_reads_a_ledger_on_a_read_only_mount(tmp_path: Path) -> None:
    unshare, mount = shutil.which("unshare"), shutil.which("mount")
    assert unshare is not None and mount is not None, "needs unshare(1) and mount(8)"
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "usage.sqlite3"
    _write_ledger(path)
    before = sorted(p.name for p in folder.iterdir())
    command = (
        f"mount -o bind,ro {folder} {folder} && exec {sys.executable} -m ei_widgets.cli"
        f" usage --ledger {path} --by notebook --csv"
    )
    out = subprocess.run(
        [unshare, "-m", "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1].startswith("a.ipynb,1,7200.0,")
    assert sorted(p.name for p in folder.iterdir()) == before


# --- 8. the heartbeat setting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1e-9", MIN_HEARTBEAT_S),
        ("inf", MAX_HEARTBEAT_S),
        ("1e300", MAX_HEARTBEAT_S),
        ("nan", DEFAULT_HEARTBEAT_S),
    ],
)
def test_an_out_of_range_heartbeat_is_clamped_with_one_warning(
    raw: str,
    expected: float,
    state: AcceleratorState,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EI_WIDGETS_HEARTBEAT", raw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = start_meter(state, tmp_path / "usage.sqlite3", thread=False)
    try:
        assert m.heartbeat_period == expected
    finally:
        stop_meter()
    relevant = [w for w in caught if "EI_WIDGETS_HEARTBEAT" in str(w.message)]
    assert len(relevant) == 1
    assert issubclass(relevant[0].category, LedgerWarning)


def test_a_heartbeat_in_range_is_kept_silently(
    state: AcceleratorState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EI_WIDGETS_HEARTBEAT", "2.5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = start_meter(state, tmp_path / "usage.sqlite3", thread=False)
    try:
        assert m.heartbeat_period == 2.5
    finally:
        stop_meter()


def test_price_overrides_do_not_break_the_split(
    state: AcceleratorState, clock: ManualClock
) -> None:
    # Prices with odd micro-dollar rates: the parts still add up at every second.
    catalog = apply_overrides(
        packaged_catalog(),
        parse_price_overrides('[prices]\n"ml.t3.medium" = "0.0583"\n"ml.eia2.medium" = "0.1771"\n'),
    )
    m = CostMeter(state, clock=clock, work=Work(), catalog=catalog).start(thread=False)
    state.attach("ml.eia2.medium")
    for _ in range(200):
        clock.advance(1)
        s = m.snapshot()
        assert s.instance_cost + s.accelerator_cost == s.total
