"""Schema 2 of the ledger: endpoint sessions, ``usage(by="endpoint")``, and a schema 1 file read
as it is and converted in place."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from ei_widgets.billing import ledger_file
from ei_widgets.billing.ledger import IntervalProgress, Ledger
from ei_widgets.billing.ledger_history import NO_ENDPOINT
from ei_widgets.billing.usage import usage


def _schema_1(path: Path) -> None:
    """A ledger as schema 1 wrote it: no endpoint column, one kernel session of an hour."""
    conn = sqlite3.connect(path)
    schema = ledger_file._SCHEMA.replace(
        "simulated_s REAL NOT NULL DEFAULT 0,\n    endpoint TEXT",
        "simulated_s REAL NOT NULL DEFAULT 0",
    ).replace(" -- a hosted endpoint's name, NULL for a kernel's session", "")
    conn.executescript(schema)
    assert "endpoint" not in {r[1] for r in conn.execute("PRAGMA table_info(sessions)")}
    start = time.time() - 7200
    conn.execute(
        "INSERT INTO sessions (host, pid, instance, rate_micro, started_at, heartbeat_period,"
        " heartbeat_at, elapsed_us, ended_at) VALUES ('h', 1, 'ml.t3.medium', 50000, ?, 10, ?,"
        " 3600000000, ?)",
        (start, start + 3600, start + 3600),
    )
    conn.execute(
        "INSERT INTO intervals (session_id, kind, name, rate_micro, offset_us, duration_us,"
        " started_at, closed) VALUES (1, 'instance', 'ml.t3.medium', 50000, 0, 3600000000, ?, 1)",
        (start,),
    )
    conn.execute(f"PRAGMA application_id = {ledger_file.APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_a_schema_1_file_reads_as_it_is_and_gains_the_column_when_written(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _schema_1(path)
    (row,) = usage(by="endpoint", path=path)  # read-only: the file is not changed
    assert row.key == NO_ENDPOINT and str(row.total) == "0.050000"
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1
    with Ledger(path, recover=False) as led:
        sid = led.open_session(
            instance="ml.m5.large",
            rate_micro=115000,
            started_at=time.time() - 10,
            heartbeat_period=10,
            endpoint="ep-1",
        )
        led.close_session(sid, elapsed_us=10_000_000, wall=time.time())
        assert [s["endpoint"] for s in led.sessions()] == [None, "ep-1"]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2
    keys = [r.key for r in usage(by="endpoint", path=path)]
    assert keys == [NO_ENDPOINT]  # the endpoint session had no interval: it billed nothing


def test_usage_by_endpoint_keys_endpoint_sessions_by_name(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    wall = time.time() - 100
    with Ledger(path, recover=False) as led:
        for name, rate in (("ep-a", 1_000_000), ("ep-b", 2_000_000)):
            sid = led.open_session(
                instance="ml.m5.large",
                rate_micro=rate,
                started_at=wall,
                heartbeat_period=10,
                endpoint=name,
            )
            iid = led.open_interval(
                sid,
                kind="instance",
                name="ml.m5.large",
                rate_micro=rate,
                offset_us=0,
                started_at=wall,
            )
            led.close_session(
                sid,
                elapsed_us=36_000_000,
                wall=wall + 36,
                intervals={iid: IntervalProgress(36_000_000)},
            )
    rows = {r.key: r for r in usage(by="endpoint", path=path)}
    assert set(rows) == {"ep-a", "ep-b"}
    assert str(rows["ep-a"].total) == "0.010000" and str(rows["ep-b"].total) == "0.020000"
