"""The dashboard's cost to a run, the kernel's responsiveness during a run, and memory over an hour.

Figures (each printed next to its target, with met / not met):

1. Throughput cost of the dashboard: one long virtual-clock run of a tiny model (host-bound: the
   run loop's own overhead dominates, so any cost shows), in blocks that alternate between the
   dashboard drawing (widgets on a comm that serialises every message to JSON as a kernel would,
   a gauge/progress pass every 0.2 s, the cost panel each second) and nothing drawing, as with
   no widget. Medians of the blocks' requests per second compared; ABBA order so drift cancels.
   Target: at most 5% fewer requests per second.
2. Kernel responsiveness: in a real kernel, ``%ei`` and a virtual-clock run in the background;
   the time from sending a trivial cell to its ``execute_reply``, p50 and p95. Target: p95 at
   most 100 ms. (The same cells with no run are measured for reference.)
3. Memory over an hour: the metrics stream fed an hour of virtual time (100 calls per simulated
   second) while the dashboard draws 5 times per simulated second; traced Python memory gained
   from minute 20 (every bounded ring has cycled by then) to minute 60. Target: flat, under
   256 KiB of growth. The process's max RSS is printed too. (``--quick``: 20 minutes at 5 calls
   and 1 draw per simulated second, growth from minute 12.)

Usage: ``python benchmarks/bench_dashboard.py [--quick]`` (``--quick``: seconds, for CI smoke).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import comm
from rows import Rows
from timing import cell_reply_times

from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.metrics import MetricsStream
from ei_widgets.device.runs import Run
from ei_widgets.device.sessions import session
from tests.builders import tiny


class SerialisingComm:
    """A comm that does what a kernel's does to each message before it leaves: JSON-encode it.

    It keeps only counts, so memory figures are not inflated by a message log.
    """

    kernel = "benchmark"
    messages = 0
    bytes_sent = 0

    def __init__(self, **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or "bench"

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, callback: Any) -> None:
        pass

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        SerialisingComm.messages += 1
        SerialisingComm.bytes_sent += len(json.dumps(data, default=str))
        for buffer in buffers or ():
            SerialisingComm.bytes_sent += memoryview(buffer).nbytes

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


def use_serialising_comm() -> None:
    comm.create_comm = lambda **kwargs: SerialisingComm(**kwargs)  # type: ignore[assignment]
    comm.get_comm_manager = lambda **kwargs: {}  # type: ignore[assignment]


# --- 1. throughput with and without the dashboard ------------------------------------------------


def bench_throughput(blocks: int, block_s: float) -> tuple[float, float, float, float, float]:
    """One long virtual-clock run; blocks alternate between drawing and not drawing.

    In a drawing block the dashboard does what its timer does (a pass about every 0.2 s: gauges,
    progress, header) and the cost meter ticks once a second into the Cost panel; in the other
    blocks nothing draws, as with no widget. Blocks go in ABBA order so that drift cancels.
    Returns (median requests/s without drawing, with drawing, cost %, messages per second, CPU
    time spent drawing as a % of the drawing blocks' wall time).
    """
    from ei_widgets.billing.meters import CostMeter
    from ei_widgets.notebook.views.dashboard import RUN_TAB, Dashboard

    model = tiny()
    state = AcceleratorState()
    state.attach("ml.eia2.medium")
    stream = MetricsStream()
    sess = session(model, clock="virtual", state=state, stream=stream, batch_size=1)
    meter = CostMeter(state, work=lambda: (stream.snapshot().inferences, 0, 0.0)).start(
        thread=False
    )
    board = Dashboard({"model": model}, state=state, stream=stream, meter=meter, timer=False)
    run = Run(model, duration_s=3600.0, clock="virtual", session_factory=lambda: sess)
    board.run_panel.run = run  # the panel draws this run, as if its Run button started it
    board.tabs.selected_index = RUN_TAB  # its charts on screen: all of it drawn
    run.start()
    time.sleep(0.5)  # workers up and warm
    plain: list[float] = []
    drawn: list[float] = []
    sent: list[float] = []
    period = 1.0 / 5
    draw_cpu = 0.0  # CPU seconds the drawing itself took
    try:
        for i in range(blocks):
            drawing = i % 4 in (1, 2)
            gc.collect()
            messages = SerialisingComm.messages
            done0, t0 = run.progress().done, time.perf_counter()
            end = t0 + block_s
            passes = 0
            while (now := time.perf_counter()) < end:
                if drawing:
                    cpu = time.thread_time()
                    board.tick()
                    passes += 1
                    if passes % 5 == 0:
                        meter.tick()
                    draw_cpu += time.thread_time() - cpu
                time.sleep(min(period, max(end - now, 0.0)))
            rps = (run.progress().done - done0) / (time.perf_counter() - t0)
            (drawn if drawing else plain).append(rps)
            if drawing:
                sent.append((SerialisingComm.messages - messages) / block_s)
    finally:
        run.stop()
        board.close()
        meter.stop()
    p, d = statistics.median(plain), statistics.median(drawn)
    share = draw_cpu / (len(drawn) * block_s) * 100
    return p, d, (1 - d / p) * 100, statistics.median(sent), share


# --- 2. kernel responsiveness during a run -------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]

# The kernel runs the same tiny model as figure 1.
KERNEL_SETUP = f"""
%load_ext ei_widgets
import sys
sys.path.insert(0, {str(ROOT)!r})
from tests.builders import tiny
model = tiny()
"""

KERNEL_START = """
board.picker.select("ml.eia2.medium")
board.picker.attach()
board.run_panel.clock.value = "virtual"
board.run_panel.mode.value = "duration"
board.run_panel.duration.value = 600.0
board.run_panel.start()
import time
time.sleep(0.5)
print(board.run_panel.run.state.value, board.run_panel.run.progress().done)
"""


def bench_kernel(cells: int) -> tuple[list[float], list[float], str]:
    """(reply times with no run, reply times during a run, run state line)."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        for code in (KERNEL_SETUP, "%ei", "board = _"):
            reply = client.execute_interactive(code, timeout=120, output_hook=lambda m: None)
            assert reply["content"]["status"] == "ok", reply["content"]
        idle = cell_reply_times(client, cells)
        lines: list[str] = []

        def keep(message: dict[str, Any]) -> None:
            if message["msg_type"] == "stream":
                lines.append(message["content"]["text"])

        reply = client.execute_interactive(KERNEL_START, timeout=120, output_hook=keep)
        assert reply["content"]["status"] == "ok", reply["content"]
        busy = cell_reply_times(client, cells)
        check: list[str] = []
        client.execute_interactive(
            "p = board.run_panel.run.progress(); print(p.state.value, p.done)\n"
            "board.run_panel.stop()",
            timeout=60,
            output_hook=lambda m: (
                check.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None
            ),
        )
        state = "".join(check).strip()
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return idle, busy, state


# --- 3. memory over an hour of virtual time ------------------------------------------------------


def bench_memory(seconds: int, per_second: int, draws_per_second: int) -> tuple[int, int, int]:
    """Feed ``seconds`` of virtual time to the stream while the dashboard draws.

    Everything is traced from the start (objects made before tracing would look like growth as
    the bounded rings replace them). Returns (traced bytes gained from a third of the way, when
    every ring has cycled, to the end; max RSS KiB at that point; max RSS KiB at the end).
    """
    from ei_widgets.notebook.views.dashboard import RUN_TAB, Dashboard

    gc.collect()
    tracemalloc.start()
    state = AcceleratorState()
    state.attach("ml.eia2.medium")
    stream = MetricsStream()
    board = Dashboard({"model": tiny()}, state=state, stream=stream, timer=False)
    board.tabs.selected_index = RUN_TAB  # the charts drawn too
    rng = np.random.default_rng(0)
    latencies = (rng.gamma(4.0, 0.0005, size=per_second) + 0.002).tolist()
    step = 1.0 / per_second
    every = max(per_second // draws_per_second, 1)

    def simulate(start: int, end: int) -> None:
        record = stream.record
        for second in range(start, end):
            for i, latency in enumerate(latencies):
                record(latency, 1, at=second + i * step, flops=1e6, peak_flops=1e12,
                       memory_bytes=50_000_000, accelerator="ml.eia2.medium")  # fmt: skip
                if i % every == 0:
                    board.tick()

    settled = max(seconds // 3, 720)  # the series ring (600 s) and the quantile ring have cycled
    simulate(0, settled)
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    simulate(settled, seconds)
    gc.collect()
    growth = tracemalloc.get_traced_memory()[0] - base
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.stop()
    assert stream.snapshot().calls == seconds * per_second
    assert len(board.gauges.throughput.x) <= 120
    board.close()
    return growth, rss0, rss1


# --- main ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds, for CI smoke")
    parser.add_argument("--skip-kernel", action="store_true", help="leave out the kernel figure")
    args = parser.parse_args(argv)
    q = args.quick
    use_serialising_comm()
    report = Rows()
    blocks, block_s = (8, 0.5) if q else (80, 0.5)
    plain, drawn, cost, per_s, share = bench_throughput(blocks, block_s)
    report("dashboard cost to run throughput", cost, "%", "<= 5%", cost <= 5.0,
           f"no widget {plain:,.0f} req/s, dashboard drawing {drawn:,.0f} req/s (medians of "
           f"{blocks // 2} x {block_s:g} s blocks each); {per_s:.0f} widget msg/s; drawing "
           f"took {share:.1f}% of one core")  # fmt: skip

    if not args.skip_kernel:
        cells = 30 if q else 200
        idle, busy, state = bench_kernel(cells)
        p50 = float(np.percentile(busy, 50)) * 1e3
        p95 = float(np.percentile(busy, 95)) * 1e3
        idle95 = float(np.percentile(idle, 95)) * 1e3
        report("trivial cell reply during a run, p95", p95, "ms", "<= 100 ms", p95 <= 100.0,
               f"p50 {p50:.1f} ms over {cells} cells; with no run p95 {idle95:.1f} ms; "
               f"run then: {state}")  # fmt: skip

    seconds, per_second, draws = (1200, 5, 1) if q else (3600, 100, 5)
    growth, rss0, rss1 = bench_memory(seconds, per_second, draws)
    settled = max(seconds // 3, 720) // 60
    minutes = seconds // 60
    report(f"memory growth, minute {settled} to {minutes}", growth / 1024, "KiB", "< 256 KiB",
           growth < 256 * 1024, f"traced Python memory; max RSS {rss0 / 1024:.0f} -> "
           f"{rss1 / 1024:.0f} MiB; {seconds * per_second:,} calls over {minutes} simulated "
           f"minutes, {seconds * draws:,} gauge draws")  # fmt: skip
    return report


if __name__ == "__main__":
    main()
