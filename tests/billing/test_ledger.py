"""The usage ledger on its own: schema, usage() and clipping, crash recovery, bad files."""

from __future__ import annotations

import csv
import io
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from ei_widgets.billing import ledger_file
from ei_widgets.billing.ledger import (
    SCHEMA_VERSION,
    IntervalProgress,
    Ledger,
    LedgerWarning,
    UsageRow,
    default_path,
    open_ledger,
)
from ei_widgets.billing.usage import usage, usage_csv, write_csv
from ei_widgets.common.money import dollars, micro_per_hour
from ei_widgets.errors import LedgerError

REPO = Path(__file__).resolve().parents[2]
H = 3_600_000_000  # one hour in microseconds


def ts(year: int, month: int, day: int, hour: int = 0) -> float:
    return datetime(year, month, day, hour, tzinfo=timezone.utc).timestamp()


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def add_session(
    led: Ledger,
    *,
    start: float,
    instance: tuple[str, str, int] = ("ml.t3.medium", "0.05", 2 * H),
    accelerators: tuple[tuple[str, str, int, int, int], ...] = (),
    notebook: str | None = None,
    pid: int | None = None,
    close: bool = True,
) -> int:
    """A session with one instance interval from 0 and accelerator intervals
    (name, price, offset_us, duration_us, inferences)."""
    name, price, duration = instance
    sid = led.open_session(
        instance=name,
        rate_micro=micro_per_hour(price),
        started_at=start,
        heartbeat_period=10.0,
        notebook=notebook,
        pid=pid,
    )
    ids = {
        led.open_interval(
            sid,
            kind="instance",
            name=name,
            rate_micro=micro_per_hour(price),
            offset_us=0,
            started_at=start,
        ): IntervalProgress(duration)
    }
    for acc, acc_price, offset, acc_duration, inferences in accelerators:
        iid = led.open_interval(
            sid,
            kind="accelerator",
            name=acc,
            precision="fp32",
            rate_micro=micro_per_hour(acc_price),
            offset_us=offset,
            started_at=start + offset / 1e6,
        )
        ids[iid] = IntervalProgress(acc_duration, inferences=inferences)
    assert led.heartbeat(sid, elapsed_us=duration, wall=start + duration / 1e6, intervals=ids)
    if close:
        led.close_session(sid, elapsed_us=duration, wall=start + duration / 1e6, intervals=ids)
    return sid


@pytest.fixture
def led(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(tmp_path / "usage.sqlite3")
    yield ledger
    ledger.close()


# --- schema and place ---------------------------------------------------------------------------


def test_fresh_ledger_is_wal_with_a_schema_version(led: Ledger) -> None:
    assert led.path is not None
    assert led.path.exists()
    conn = sqlite3.connect(led.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"sessions", "intervals"} <= tables
    finally:
        conn.close()


def test_default_path_env_var_and_jupyter_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EI_WIDGETS_LEDGER", str(tmp_path / "x" / "mine.db"))
    assert default_path() == tmp_path / "x" / "mine.db"
    monkeypatch.delenv("EI_WIDGETS_LEDGER")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    assert default_path() == tmp_path / "data" / "ei_widgets" / "usage.sqlite3"
    # The argument wins over both.
    ledger = open_ledger(tmp_path / "arg.db")
    try:
        assert ledger.path == tmp_path / "arg.db"
    finally:
        ledger.close()


def test_reopening_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    with Ledger(path) as first:
        add_session(first, start=ts(2026, 11, 2, 10))
    with Ledger(path) as second:
        assert second.total() == Decimal("0.100000")  # 2 h of ml.t3.medium at 0.05


# --- usage() ------------------------------------------------------------------------------------


def test_usage_by_accelerator_attributes_instance_time_to_what_was_attached(led: Ledger) -> None:
    add_session(
        led,
        start=ts(2026, 11, 2, 10),
        accelerators=(("ml.eia2.medium", "0.168", H // 2, H, 1000),),
    )
    rows = {r.key: r for r in led.usage(by="accelerator")}
    assert set(rows) == {"(none)", "ml.eia2.medium"}
    eia = rows["ml.eia2.medium"]
    assert eia.accelerator_seconds == 3600
    assert eia.accelerator_cost == Decimal("0.168000")
    assert eia.instance_cost == Decimal("0.050000")  # the hour it was attached
    assert eia.inferences == 1000
    assert eia.cost_per_million == Decimal("218.000000")  # 0.218 $ / 1000 inferences
    assert rows["(none)"].instance_seconds == 3600
    assert rows["(none)"].total == Decimal("0.050000")
    assert led.total() == Decimal("0.268000")


def test_usage_by_day_splits_at_utc_midnight_and_clips_to_bounds(led: Ledger) -> None:
    # 23:00 on the 2nd to 01:00 on the 3rd, an accelerator for the whole two hours.
    add_session(
        led,
        start=ts(2026, 11, 2, 23),
        accelerators=(("ml.eia2.large", "0.336", 0, 2 * H, 10),),
        notebook="a.ipynb",
    )
    rows = led.usage(by="day")
    assert [r.key for r in rows] == ["2026-11-02", "2026-11-03"]
    assert all(r.instance_seconds == 3600 for r in rows)
    assert rows[0].total == rows[1].total == Decimal("0.386000")
    assert rows[1].inferences == 10
    assert rows[0].inferences == 0

    # Clipped: only the 30 minutes from 00:30.
    clipped = led.usage(since=datetime(2026, 11, 3, 0, 30, tzinfo=timezone.utc), by="day")
    assert [r.key for r in clipped] == ["2026-11-03"]
    assert clipped[0].instance_seconds == 1800
    assert clipped[0].total == Decimal("0.193000")
    # A date bound is midnight UTC; "until" is exclusive.
    first_day = led.usage(until=date(2026, 11, 3), by="notebook")
    assert [(r.key, r.instance_seconds, r.inferences) for r in first_day] == [
        ("a.ipynb", 3600.0, 0)
    ]
    assert led.usage(since=date(2026, 11, 4)) == []
    assert led.usage(since=date(2026, 11, 3), until=date(2026, 11, 3)) == []


def test_usage_by_notebook_and_sessions_count(led: Ledger) -> None:
    add_session(led, start=ts(2026, 11, 2, 8), notebook="a.ipynb")
    add_session(led, start=ts(2026, 11, 2, 9), notebook="a.ipynb")
    add_session(led, start=ts(2026, 11, 2, 9), notebook=None)
    rows = {r.key: r for r in led.usage(by="notebook")}
    assert rows["a.ipynb"].sessions == 2
    assert rows["a.ipynb"].total == Decimal("0.200000")
    assert rows["session 3"].total == Decimal("0.100000")


def test_usage_rejects_an_unknown_grouping(led: Ledger) -> None:
    with pytest.raises(LedgerError, match="day"):
        led.usage(by="week")  # type: ignore[arg-type]


def test_usage_function_csv_and_path_argument(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    with Ledger(path) as led:
        add_session(led, start=ts(2026, 11, 2, 10), notebook="n.ipynb")
    rows = usage(by="notebook", path=path)
    assert rows == [
        UsageRow(
            "n.ipynb",
            1,
            7200.0,
            0.0,
            Decimal("0.100000"),
            Decimal("0.000000"),
            Decimal("0.100000"),
            0,
            0,
            None,
        )
    ]
    text = usage_csv(by="notebook", path=path)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert parsed[0]["key"] == "n.ipynb"
    assert parsed[0]["total"] == "0.100000"
    assert parsed[0]["cost_per_million"] == ""
    buf = io.StringIO()
    write_csv([], buf)
    assert buf.getvalue().startswith("key,sessions,instance_seconds")
    # Reading a ledger that does not exist creates nothing.
    assert usage(path=tmp_path / "missing.sqlite3") == []
    assert not (tmp_path / "missing.sqlite3").exists()


# --- money --------------------------------------------------------------------------------------


def test_money_is_summed_without_float_drift(led: Ledger) -> None:
    # Ten intervals costing exactly $0.10 each ($0.36/h for 1000 s): floats get this wrong.
    assert sum([0.36 / 3600 * 1000] * 10) != 1.0
    sid = led.open_session(
        instance="ml.t3.medium", rate_micro=0, started_at=ts(2026, 11, 2), heartbeat_period=10
    )
    for i in range(10):
        iid = led.open_interval(
            sid,
            kind="accelerator",
            name="x",
            rate_micro=micro_per_hour("0.36"),
            offset_us=i * 1_000 * 1_000_000,
            started_at=ts(2026, 11, 2),
        )
        led.close_interval(iid, IntervalProgress(1_000 * 1_000_000))
    assert led.total() == Decimal("1.000000")
    # 10,000 one-second intervals at $0.0464/h: exactly 0.128888... -> rounded once, at the end.
    sid = led.open_session(
        instance="ml.t2.medium", rate_micro=0, started_at=ts(2026, 11, 5), heartbeat_period=10
    )
    with led._write() as conn:  # bulk insert: the API would take a transaction per row
        conn.executemany(
            "INSERT INTO intervals (session_id, kind, name, rate_micro, offset_us, duration_us,"
            " started_at, closed) VALUES (?, 'instance', 'ml.t2.medium', ?, ?, ?, 0, 1)",
            [(sid, micro_per_hour("0.0464"), i * 1_000_000, 1_000_000) for i in range(10_000)],
        )
    assert led.total(since=date(2026, 11, 5)) == Decimal("0.128889")
    assert micro_per_hour(Decimal("0.05") * (1 - Decimal("0.15"))) == 42_500
    assert dollars(1) == Decimal("0.000000")  # one unit is far below a micro-dollar


# --- crash recovery -----------------------------------------------------------------------------


def test_a_crashed_session_is_closed_at_its_last_heartbeat_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    with Ledger(path) as led:
        sid = add_session(
            led,
            start=ts(2026, 11, 2, 10),
            accelerators=(("ml.eia2.medium", "0.168", 0, H, 5),),
            pid=dead_pid(),
            close=False,
        )
        before = led.usage(by="accelerator")
        live = add_session(led, start=ts(2026, 11, 2, 10), close=False)  # this process: alive
    with pytest.warns(LedgerWarning, match="closed 1 session"):
        again = Ledger(path)
    with again:
        assert again.recovered == [sid]
        s = {row["id"]: row for row in again.sessions()}
        assert s[sid]["end_reason"] == "crash"
        assert s[sid]["ended_at"] == s[sid]["heartbeat_at"]
        assert s[live]["ended_at"] is None
        ivs = again.intervals(sid)
        assert all(iv["closed"] == 1 and iv["end_reason"] == "crash" for iv in ivs)
        assert [iv["duration_us"] for iv in ivs] == [2 * H, H]  # as of the last heartbeat
        after = again.usage(by="accelerator")
        # The live session adds its own two hours; the crashed one is counted once, unchanged.
        assert after[1] == before[1]
        assert after[0].instance_seconds == before[0].instance_seconds + 7200
        assert again.recover() == []  # nothing left to close
        # A heartbeat from the "dead" session (it was only suspended) is refused: no double count.
        assert not again.heartbeat(sid, elapsed_us=9 * H, wall=0, intervals={})
        assert again.intervals(sid)[0]["duration_us"] == 2 * H


def test_two_openers_at_once_close_each_crashed_session_once(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    with Ledger(path) as led:
        crashed = {
            add_session(led, start=ts(2026, 11, 2, h), pid=dead_pid(), close=False)
            for h in range(4)
        }
    barrier = threading.Barrier(4)
    found: list[list[int]] = []
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            barrier.wait()
            ledger = Ledger(path)
            found.append(ledger.recovered)
            ledger.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    with warnings.catch_warnings():  # the filter is process-wide: set it around all threads
        warnings.simplefilter("ignore", LedgerWarning)
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not errors
    closed = [sid for ids in found for sid in ids]
    assert sorted(closed) == sorted(crashed)  # every one closed, none twice
    with Ledger(path) as led:
        assert led.total() == Decimal("0.400000")


OPEN_AT_ONCE = textwrap.dedent(
    """
    import sys, time, warnings
    sys.path.insert(0, {repo!r})
    from ei_widgets.billing.ledger import Ledger
    go = float(sys.argv[1])
    time.sleep(max(0.0, go - time.monotonic()))  # all the processes open the file together
    warnings.simplefilter("error")
    with Ledger({path!r}) as led:
        sid = led.open_session(instance="ml.t3.medium", rate_micro=50000, started_at=0,
                               heartbeat_period=1)
        led.close_session(sid, elapsed_us=1, wall=0)
    print(sid)
    """
)


def test_kernels_creating_a_new_ledger_at_the_same_moment_all_succeed(tmp_path: Path) -> None:
    # A smoke test: the clash it guards against is a rare race (the test below checks the
    # retry itself, deterministically).
    path = tmp_path / "fresh.sqlite3"
    script = tmp_path / "open.py"
    script.write_text(OPEN_AT_ONCE.format(repo=str(REPO), path=str(path)))
    go = time.monotonic() + 2.0  # time for every interpreter to start
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in outs]
    assert sorted(int(out) for out, _ in outs) == [1, 2, 3, 4, 5, 6]


def test_opening_retries_while_another_process_converts_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Switching a fresh file to WAL can fail at once with "database is locked" (no busy wait)
    # when several processes do it together; opening must retry, not fall back to memory.
    real = ledger_file._prepare
    calls = []

    def flaky(conn: sqlite3.Connection, path: Path | None) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        real(conn, path)

    monkeypatch.setattr(ledger_file, "_prepare", flaky)
    led = open_ledger(tmp_path / "usage.sqlite3")
    with led:
        assert not led.in_memory
        assert len(calls) == 3


def test_a_reused_pid_or_a_stale_remote_session_counts_as_dead(led: Ledger) -> None:
    reused = add_session(led, start=ts(2026, 11, 2, 10), pid=os.getpid(), close=False)
    remote_stale = add_session(led, start=ts(2026, 11, 2, 10), close=False)
    remote_fresh = add_session(led, start=ts(2026, 11, 2, 10), close=False)
    with led._write() as conn:
        conn.execute("UPDATE sessions SET pid_start = 'not-this-one' WHERE id = ?", (reused,))
        conn.execute(
            "UPDATE sessions SET host = 'elsewhere', heartbeat_at = ? WHERE id IN (?, ?)",
            (1000.0, remote_stale, remote_fresh),
        )
        conn.execute("UPDATE sessions SET heartbeat_at = ? WHERE id = ?", (1100.0, remote_fresh))
    other = Ledger(led.path, recover=False)  # a second opener: led's own sessions are not "mine"
    try:
        with pytest.warns(LedgerWarning):
            closed = other.recover(now=1150.0)
    finally:
        other.close()
    assert sorted(closed) == sorted([reused, remote_stale])


# --- bad files and places -----------------------------------------------------------------------


def test_reading_a_file_that_is_no_database_raises_and_moves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    junk = b"this is not a database, but it is somebody's data\n" * 200
    path.write_bytes(junk)
    with pytest.raises(LedgerError, match="not a database"):
        usage(path=path)
    assert path.read_bytes() == junk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["usage.sqlite3"]


def test_a_damaged_ledger_is_moved_aside_too(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    with Ledger(path) as led:
        for h in range(200):
            add_session(led, start=ts(2026, 11, 2) + h, notebook="x" * 200)
        conn = led._conn
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    data[3 * page : 5 * page] = b"\xa5" * (2 * page)  # trash two pages of the b-trees
    path.write_bytes(bytes(data))
    with pytest.warns(LedgerWarning, match="moved to"):
        led = open_ledger(path)
    with led:
        assert led.total() == Decimal(0)
    assert len(list(tmp_path.glob("usage.sqlite3.corrupt-*"))) == 1


def test_a_newer_schema_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    Ledger(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.warns(LedgerWarning, match="newer ei_widgets"):
        led = open_ledger(path)
    assert led.in_memory
    led.close()
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_an_unwritable_place_falls_back_to_memory(tmp_path: Path) -> None:
    # As root, permission bits do not stop writes; a path through a regular file fails for
    # everyone (ENOTDIR), exactly like an unusable data directory.
    blocker = tmp_path / "data"
    blocker.write_text("a file where the directory should be")
    with pytest.warns(LedgerWarning, match="in memory"):
        led = open_ledger(blocker / "ei_widgets" / "usage.sqlite3")
    with led:
        assert led.in_memory
        assert led.path is None
        add_session(led, start=ts(2026, 11, 2, 10))
        assert led.total() == Decimal("0.100000")  # the in-memory ledger works


READ_ONLY_SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    sys.path.insert(0, {repo!r})
    from ei_widgets.billing.meters import CostMeter, ManualClock
    from ei_widgets.billing.ledger import LedgerWarning, open_ledger

    class State:
        class instance:
            name = "ml.t3.medium"
            price_per_hour = 0
        attachment = None
        def subscribe(self, cb):
            return lambda: None
        def add_guard(self, guard):
            return lambda: None
        def detach(self):
            return None

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        led = open_ledger({path!r})
    clock = ManualClock()
    meter = CostMeter(State(), ledger=led, clock=clock, work=lambda: (0, 0, 0.0))
    meter.start(thread=False)
    clock.advance(3600)
    meter.tick()
    print("in_memory", led.in_memory)
    print("total", meter.stop().total)
    print("warned", any(issubclass(w.category, LedgerWarning) and "in memory" in str(w.message)
                        for w in caught))
    """
)


def test_a_really_read_only_directory_falls_back_to_memory(tmp_path: Path) -> None:
    """A read-only tmpfs mounted in a private mount namespace: fails even for root."""
    unshare, mount = shutil.which("unshare"), shutil.which("mount")
    assert unshare is not None, "needs unshare(1) (util-linux)"
    assert mount is not None, "needs mount(8) (util-linux)"
    ro = tmp_path / "ro-data"
    ro.mkdir()
    script = tmp_path / "script.py"
    script.write_text(READ_ONLY_SCRIPT.format(repo=str(REPO), path=str(ro / "usage.sqlite3")))
    probe = subprocess.run(
        [unshare, "-m", "sh", "-c", f"mount -t tmpfs -o ro tmpfs {ro} && echo ok"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert probe.returncode == 0, f"cannot mount a read-only tmpfs here: {probe.stderr.strip()}"
    assert "ok" in probe.stdout
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [
            unshare,
            "-m",
            "sh",
            "-c",
            f"mount -t tmpfs -o ro tmpfs {ro} && exec {sys.executable} {script}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert lines == {"in_memory": "True", "total": "0.050000", "warned": "True"}
    assert not any(ro.iterdir())  # nothing reached the real directory under the mount


def test_module_level_usage_reads_the_running_meter_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Running:
        ledger = Ledger(":memory:")

    add_session(Running.ledger, start=ts(2026, 11, 2, 10), notebook="live")
    monkeypatch.setattr("ei_widgets.billing.meters.meter", lambda: Running)
    assert [r.key for r in usage(by="notebook")] == ["live"]
    Running.ledger.close()
