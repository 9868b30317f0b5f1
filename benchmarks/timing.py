"""Timings several benchmarks share: the median wall time of a call, and a kernel's replies to
trivial cells."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    """Median of ``repeats`` timed calls (a median, so a preempted call does not move it)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cell_reply_times(client: Any, cells: int, pause_s: float = 0.02) -> list[float]:
    """Seconds a real kernel (a jupyter_client ``client``) takes to answer each of ``cells``
    trivial cells, ``pause_s`` apart (a person typing is slower than this); iopub is drained
    between cells so its queue never grows."""
    times = []
    for i in range(cells):
        start = time.perf_counter()
        msg_id = client.execute(f"{i} + 1", silent=False, store_history=False)
        while True:
            reply = client.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        times.append(time.perf_counter() - start)
        assert reply["content"]["status"] == "ok", reply["content"]
        time.sleep(pause_s)
        while client.iopub_channel.msg_ready():
            client.get_iopub_msg(timeout=1)
    return times
