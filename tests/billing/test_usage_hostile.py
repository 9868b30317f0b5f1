"""Reading usage from hostile ledgers and arguments: FIFOs, damaged values, odd paths and bounds.

Every failure is one typed ``LedgerError`` (one line in the CLI), never a raw Python error, a
hang or unbounded work.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import warnings
from datetime import date
from pathlib import Path

import pytest

from ei_widgets.billing.ledger import IntervalProgress, Ledger, LedgerWarning, open_ledger
from ei_widgets.billing.usage import usage
from ei_widgets.common.money import micro_per_hour
from ei_widgets.errors import LedgerError
from tests.threads import unblock, within

REPO = Path(__file__).resolve().parents[2]
H = 3_600_000_000
START = 1_795_000_000.0  # 2026-11-18


def _open(led: Ledger, notebook: str) -> tuple[int, int]:
    """A session on ml.t3.medium with its instance interval: (session id, interval id)."""
    sid = led.open_session(
        instance="ml.t3.medium",
        rate_micro=micro_per_hour("0.05"),
        started_at=START,
        heartbeat_period=10.0,
        notebook=notebook,
    )
    iid = led.open_interval(
        sid,
        kind="instance",
        name="ml.t3.medium",
        rate_micro=micro_per_hour("0.05"),
        offset_us=0,
        started_at=START,
    )
    return sid, iid


def _ledger(path: Path, *, duration_us: int = 2 * H) -> int:
    """A closed session with one instance interval; returns the interval's id."""
    with Ledger(path) as led:
        sid, iid = _open(led, "a.ipynb")
        led.close_session(
            sid,
            elapsed_us=duration_us,
            wall=START + 7200,
            intervals={iid: IntervalProgress(duration_us)},
        )
    return iid


# --- 5. FIFOs --------------------------------------------------------------------------------


def test_usage_of_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "ledger.fifo"
    os.mkfifo(fifo)
    try:
        outcome = within(10, lambda: usage(path=fifo))
    finally:
        unblock(fifo)
    assert isinstance(outcome, LedgerError), outcome
    assert "not a regular file" in str(outcome)


def test_a_ledger_variable_pointing_at_a_fifo_meters_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "ledger.fifo"
    os.mkfifo(fifo)
    monkeypatch.setenv("EI_WIDGETS_LEDGER", str(fifo))

    def opened() -> Ledger:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            led = open_ledger()
        assert any("not a regular file" in str(w.message) for w in caught)
        return led

    try:
        led = within(10, opened)
    finally:
        unblock(fifo)
    assert isinstance(led, Ledger) and led.in_memory
    led.close()


def test_the_usage_command_on_a_fifo_says_so_in_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "ledger.fifo"
    os.mkfifo(fifo)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "ei_widgets.cli", "usage", "--ledger", str(fifo)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    finally:
        unblock(fifo)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "not a regular file" in out.stderr


# --- 6. unbounded work from one damaged value ------------------------------------------------


def test_an_absurd_interval_is_clamped_and_reported_not_split_for_ever(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    _ledger(path, duration_us=2**62)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = within(60, lambda: usage(by="day", path=path))
    assert isinstance(rows, list), rows
    assert 0 < len(rows) <= 20 * 366 + 2
    assert any(
        issubclass(w.category, LedgerWarning) and "clamped" in str(w.message) for w in caught
    )


# --- 8. reading is read-only ------------------------------------------------------------------


def test_reading_leaves_no_wal_or_shm_files_beside_the_ledger(tmp_path: Path) -> None:
    folder = tmp_path / "ledgers"
    folder.mkdir()
    path = folder / "usage.sqlite3"
    _ledger(path)
    before = sorted(p.name for p in folder.iterdir())
    assert before == ["usage.sqlite3"]
    rows = usage(by="notebook", path=path)
    assert [r.key for r in rows] == ["a.ipynb"]
    assert sorted(p.name for p in folder.iterdir()) == before


def test_reading_while_a_kernel_writes_sees_its_latest_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    with Ledger(path) as led:  # a live writer: its WAL holds the heartbeat
        sid, iid = _open(led, "live.ipynb")
        led.heartbeat(sid, elapsed_us=H, wall=START + 3600, intervals={iid: IntervalProgress(H)})
        rows = usage(by="notebook", path=path)
        assert [(r.key, r.instance_seconds) for r in rows] == [("live.ipynb", 3600.0)]


# --- 9. damaged values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE intervals SET duration_us = 'ten minutes'",
        "UPDATE sessions SET started_at = 1e300",
        "UPDATE sessions SET started_at = 'monday'",
        "UPDATE intervals SET rate_micro = 'cheap'",
    ],
)
def test_damaged_values_are_skipped_and_reported(damage: str, tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    _ledger(path)
    conn = sqlite3.connect(path)
    conn.execute(damage)
    conn.commit()
    conn.close()
    for by in ("day", "accelerator", "notebook"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert usage(by=by, path=path) == []  # type: ignore[arg-type]
        assert any(issubclass(w.category, LedgerWarning) for w in caught)


def test_an_unknown_interval_kind_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    _ledger(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA ignore_check_constraints = 1")
    conn.execute("UPDATE intervals SET kind = 'gpu'")
    conn.commit()
    conn.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert usage(path=path) == []
    assert any("kind 'gpu'" in str(w.message) for w in caught)


def test_a_dropped_table_is_one_ledger_error(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    _ledger(path)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE intervals")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="no such table"):
        usage(path=path)


def test_the_usage_command_on_damaged_values_prints_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    _ledger(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE sessions SET started_at = 1e300")
    conn.commit()
    conn.close()
    out = subprocess.run(
        [sys.executable, "-m", "ei_widgets.cli", "usage", "--ledger", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("ei-widgets: warning: ") and out.stderr.count("\n") == 1


# --- 12. arguments ---------------------------------------------------------------------------


def test_since_and_until_take_iso_text_and_refuse_anything_else(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    _ledger(path)
    assert usage(since="2026-11-01", until="2026-12-01", path=path) == usage(
        since=date(2026, 11, 1), until=date(2026, 12, 1), path=path
    )
    assert usage(since="2026-11-18T00:00:00", path=path)
    for bad in (20261201, "yesterday", 1.5, ["2026-12-01"]):
        with pytest.raises(LedgerError, match="since"):
            usage(since=bad, path=path)  # type: ignore[arg-type]
        with pytest.raises(LedgerError, match="until"):
            usage(until=bad, path=path)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["", "   ", 3, b"usage.sqlite3", "x" * 5000, "a\0b"])
def test_a_path_that_cannot_be_a_ledger_is_one_ledger_error(path: object) -> None:
    with pytest.raises(LedgerError):
        usage(path=path)  # type: ignore[arg-type]


def test_a_ledger_variable_with_an_unknown_user_is_one_ledger_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EI_WIDGETS_LEDGER", "~nosuchuser-ei/usage.sqlite3")
    with pytest.raises(LedgerError, match="nosuchuser"):
        usage()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        led = open_ledger()  # the meter falls back to memory
    assert led.in_memory
    led.close()


def test_the_usage_command_with_an_empty_ledger_path_says_so(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ei_widgets.cli", "usage", "--ledger", ""],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 2
    assert out.stderr.startswith("ei-widgets: ") and "Traceback" not in out.stderr
