"""The ledger under real kernels: a SIGKILL mid-run, and two kernels metering into one file.

The kernels call ``ei_widgets.billing.meters.start_meter`` directly and find the package through
``PYTHONPATH`` (the repository root, computed from this file). Every kernel is shut down by the
``kernel()`` helper, also when an assertion fails; every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from kernel import kernel, run

from ei_widgets.billing.ledger import Ledger
from ei_widgets.common.money import US_PER_S

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
HEARTBEAT_S = 0.5


def kernel_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, **extra}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def query(path: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def last_json(text: str) -> dict[str, Any]:
    return json.loads(text.strip().splitlines()[-1])


START = """
import json, os, time
from ei_widgets.device import accelerator
from ei_widgets.billing.meters import start_meter
t_start = time.monotonic()
m = start_meter()
t0 = time.monotonic()
accelerator.attach({accelerator!r})
t1 = time.monotonic()
print(json.dumps({{"pid": os.getpid(), "t_start": t_start, "t0": t0, "t1": t1,
                  "session": m.session_id, "ledger": str(m.ledger.path), "kernel": m.kernel_id,
                  "recovered": m.ledger.recovered}}))
"""

# A "metered run": inference results recorded into the kernel's metrics stream until stopped.
RUN_FOREVER = """
from ei_widgets.device.metrics import default_stream
stream = default_stream()
while True:
    stream.record(0.002, 8)
    time.sleep(0.005)
"""


def test_sigkill_mid_run_loses_at_most_one_heartbeat_and_counts_nothing_twice() -> None:
    path = Path(os.environ["EI_WIDGETS_LEDGER"])
    env = kernel_env(EI_WIDGETS_HEARTBEAT=str(HEARTBEAT_S))
    with kernel(env) as (manager, client):
        started = run(client, START.format(accelerator="ml.eia2.medium"))
        assert started.error is None, started.error
        info = last_json(started.stdout)
        sid, pid = int(info["session"]), int(info["pid"])
        assert info["ledger"] == str(path)
        client.execute(RUN_FOREVER)  # not waited for: the cell is still running when killed

        def heartbeats() -> int:
            return int(query(path, "SELECT heartbeats FROM sessions WHERE id = ?", sid)[0][0])

        wait_for(lambda: heartbeats() >= 4, "a few heartbeats during the run")
        seen = heartbeats()
        wait_for(lambda: heartbeats() > seen, "a fresh heartbeat")  # then kill at once
        t_kill = time.monotonic()  # CLOCK_MONOTONIC is system-wide: comparable to the kernel's
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not manager.is_alive(), "the kernel to die", timeout=30)

    # What the dead kernel left: an open session, intervals as of its last heartbeat.
    (ended_at,) = query(path, "SELECT ended_at FROM sessions WHERE id = ?", sid)[0]
    assert ended_at is None
    rows = query(
        path,
        "SELECT kind, duration_us, closed, inferences FROM intervals WHERE session_id = ?"
        " ORDER BY id",
        sid,
    )
    (_, inst_us, inst_closed, _), (_, acc_us, acc_closed, acc_inferences) = rows
    assert (inst_closed, acc_closed) == (0, 0)
    # The instance was billed from before t0, the accelerator from between t0 and t1: the ledger
    # holds no more than really elapsed, and loses less than one heartbeat period.
    t_start, t0, t1 = (float(info[k]) for k in ("t_start", "t0", "t1"))
    assert inst_us / US_PER_S <= t_kill - t_start
    assert (t_kill - t0) - inst_us / US_PER_S < HEARTBEAT_S
    assert acc_us / US_PER_S <= t_kill - t0
    assert (t_kill - t1) - acc_us / US_PER_S < HEARTBEAT_S
    assert int(acc_inferences) > 0
    with Ledger(path, recover=False) as reader:
        before = {r.key: r for r in reader.usage(by="notebook")}
    assert len(before) == 1

    # A new kernel: loading the meter closes the crashed session, once.
    with kernel(env) as (_, client):
        again = run(client, START.format(accelerator="ml.eia2.large"))
        assert again.error is None, again.error
        info2 = last_json(again.stdout)
        assert info2["recovered"] == [sid]
        assert "closed 1 session" in again.stderr
        stopped = run(
            client, "from ei_widgets.billing.meters import stop_meter\nprint(stop_meter().total)"
        )
        assert stopped.error is None, stopped.error
        second_total = Decimal(stopped.stdout.strip().splitlines()[-1])

    (end_reason, ended_at, heartbeat_at) = query(
        path, "SELECT end_reason, ended_at, heartbeat_at FROM sessions WHERE id = ?", sid
    )[0]
    assert end_reason == "crash"
    assert ended_at == heartbeat_at  # closed at its last heartbeat
    after_rows = query(
        path, "SELECT duration_us, closed FROM intervals WHERE session_id = ? ORDER BY id", sid
    )
    assert after_rows == [(inst_us, 1), (acc_us, 1)]  # closing added nothing
    with Ledger(path) as reader:
        assert reader.recovered == []  # a third opening finds nothing to close
        after = {r.key: r for r in reader.usage(by="notebook")}
        (crashed_key,) = before
        assert after[crashed_key] == before[crashed_key]
        (new_key,) = set(after) - set(before)
        assert after[new_key].total == second_total
        assert reader.total() - (before[crashed_key].total + second_total) in (
            Decimal("-0.000001"),
            Decimal(0),
            Decimal("0.000001"),
        )  # one rounding of the whole sum instead of two


METERED_WORK = """
import time
from ei_widgets.device import accelerator
from ei_widgets.device.metrics import default_stream
stream = default_stream()
for i in range(40):
    stream.record(0.002, 4)
    if i % 10 == 9:  # detach and attach again: writes from this thread while the ticker writes
        accelerator.detach()
        accelerator.attach({accelerator!r})
    time.sleep(0.05)
"""


def test_two_kernels_metering_into_one_ledger_sum_up() -> None:
    path = Path(os.environ["EI_WIDGETS_LEDGER"])
    env = kernel_env(EI_WIDGETS_HEARTBEAT="0.05")  # many concurrent writes
    with kernel(env) as (_, one), kernel(env) as (_, two):
        infos = []
        for client, acc in ((one, "ml.eia2.medium"), (two, "ml.eia1.large")):
            started = run(client, START.format(accelerator=acc))
            assert started.error is None, started.error
            infos.append(last_json(started.stdout))
        assert infos[0]["session"] != infos[1]["session"]
        # Both kernels work at the same time.
        msg_ids = [
            client.execute(METERED_WORK.format(accelerator=acc))
            for client, acc in ((one, "ml.eia2.medium"), (two, "ml.eia1.large"))
        ]
        for client, msg_id in zip((one, two), msg_ids, strict=True):
            deadline = time.monotonic() + 120
            while True:
                reply = client.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            assert reply["content"]["status"] == "ok", reply["content"]
        totals = {}
        for client, info in zip((one, two), infos, strict=True):
            res = run(
                client,
                "import warnings\nfrom ei_widgets.billing.meters import stop_meter\n"
                "snap = stop_meter()\nprint(snap.total, snap.inferences)",
            )
            assert res.error is None, res.error
            assert "ledger write failed" not in res.stderr  # no write was lost to locking
            total, inferences = res.stdout.split()
            # Outside Jupyter server the connection file has no kernel id: rows use the session.
            key = str(info["kernel"] or f"session {info['session']}")
            totals[key] = (Decimal(total), int(inferences))

    with Ledger(path) as reader:
        rows = {r.key: r for r in reader.usage(by="notebook")}
        assert set(rows) == set(totals)  # one row per kernel
        for key, (kernel_total, kernel_inferences) in totals.items():
            assert rows[key].total == kernel_total
            assert rows[key].inferences == kernel_inferences == 160
        assert sum(r.total for r in rows.values()) == sum(t for t, _ in totals.values())
        by_accelerator = {r.key: r for r in reader.usage(by="accelerator")}
        assert {"ml.eia2.medium", "ml.eia1.large"} <= set(by_accelerator)
        sessions = reader.sessions()
        assert [s["end_reason"] for s in sessions] == ["stop", "stop"]
        assert all(int(s["heartbeats"]) > 0 for s in sessions)


def test_a_kernel_that_ends_normally_closes_its_session() -> None:
    path = Path(os.environ["EI_WIDGETS_LEDGER"])
    with kernel(kernel_env()) as (manager, client):
        started = run(client, START.format(accelerator="ml.eia2.xlarge"))
        assert started.error is None, started.error
        sid = int(last_json(started.stdout)["session"])
        manager.shutdown_kernel(now=False)  # a shutdown request: the kernel exits on its own
        wait_for(lambda: not manager.is_alive(), "the kernel to exit", timeout=30)
    (end_reason,) = query(path, "SELECT end_reason FROM sessions WHERE id = ?", sid)[0]
    assert end_reason == "stop"
    closed = query(path, "SELECT kind, closed, end_reason FROM intervals WHERE session_id = ?", sid)
    assert sorted(closed) == [("accelerator", 1, "stop"), ("instance", 1, "stop")]
