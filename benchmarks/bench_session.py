"""Session metering overhead and memory, measured side by side in one run.

Figures (each printed next to its target, with met / not met):

1. light_squeezenet, batch 1: a virtual-clock ``AcceleratedSession.run`` against a bare
   ``onnxruntime.InferenceSession.run`` of the same model, calls interleaved one by one (order
   alternating) so that both see the same machine state. Target: at most 2% slower.
2. A tiny model (one 16x8 MatMul + Relu), batch 1: the same comparison in µs per call.
   Target: at most 20 µs per call over bare onnxruntime.
3. Metering memory: traced Python memory growth over 10^6 virtual calls against 10^3 calls on
   the tiny model. Target: flat (growth after the first 10^3 calls under 64 KiB).

Usage: ``python benchmarks/bench_session.py [--quick]`` (``--quick``: fewer calls, for CI smoke).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rows import Rows

from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.metrics import MetricsStream
from ei_widgets.device.sessions import session
from ei_widgets.models.demo import demo_model
from tests.builders import tiny


def _pair(model: Any, stream: MetricsStream) -> tuple[Any, Any]:
    state = AcceleratorState()
    state.attach("ml.eia2.medium")
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the same, stable threading for both sides
    bare = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    ours = session(
        model, options, clock="virtual", state=state, stream=stream,
        providers=["CPUExecutionProvider"],
    )  # fmt: skip
    return bare, ours


def interleaved(
    bare: Callable[[], Any], ours: Callable[[], Any], calls: int, block: int
) -> tuple[float, float]:
    """Median seconds per call of each, over blocks of ``block`` calls, alternating order.

    Medians, not means: on a shared machine a few calls are preempted, and a median of
    adjacent, alternating blocks is what keeps both sides under the same conditions.
    """
    for _ in range(3):
        bare(), ours()  # warm both
    t_bare: list[float] = []
    t_ours: list[float] = []
    perf = time.perf_counter
    for i in range(max(calls // block, 1)):
        order = ((bare, t_bare), (ours, t_ours)) if i % 2 == 0 else ((ours, t_ours), (bare, t_bare))
        for fn, out in order:
            start = perf()
            for _ in range(block):
                fn()
            out.append((perf() - start) / block)
    return float(np.median(t_bare)), float(np.median(t_ours))


def bench_overhead(
    model: Any, feed: dict[str, np.ndarray], calls: int, block: int
) -> tuple[float, float]:
    stream = MetricsStream()
    bare, ours = _pair(model, stream)
    result = interleaved(lambda: bare.run(None, feed), lambda: ours.run(None, feed), calls, block)
    assert stream.snapshot().errors == 0
    return result


def wrapper_time(model: Any, feed: dict[str, np.ndarray], calls: int) -> float:
    """Median seconds per call the session spends outside onnxruntime's own ``run``."""
    _, ours = _pair(model, MetricsStream())
    inner = ours._sess
    spans: list[float] = []

    class Spy:
        def run(self, *args: Any) -> Any:
            start = time.perf_counter()
            out = inner.run(*args)
            spans.append(time.perf_counter() - start)
            return out

    ours._sess = Spy()
    outside = []
    for _ in range(calls):
        start = time.perf_counter()
        ours.run(None, feed)
        outside.append(time.perf_counter() - start - spans[-1])
    return float(np.median(outside))


def bench_memory(calls: int) -> tuple[int, int]:
    """(traced bytes after 10^3 calls, after ``calls`` calls), both relative to the start."""
    stream = MetricsStream()
    _, ours = _pair(tiny(), stream)
    feed = {"x": np.ones((1, 16), np.float32)}
    run = ours.run
    for _ in range(1000):  # fill the rings first
        run(None, feed)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(1000):
        run(None, feed)
    gc.collect()
    after_small = tracemalloc.get_traced_memory()[0] - base
    for _ in range(calls - 1000):
        run(None, feed)
    gc.collect()
    after_big = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert stream.snapshot().calls == calls + 1000
    return after_small, after_big


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (CI smoke)")
    args = parser.parse_args(argv)
    q = args.quick
    report = Rows()
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    calls = 300 if q else 1000
    b, o = bench_overhead(demo_model("squeezenet"), {"data_0": x}, calls, 1)
    over = (o / b - 1) * 100
    report("squeezenet b1: virtual vs bare ORT", over, "%", "<= 2%", over <= 2.0,
           f"bare {b * 1e3:.2f} ms, session {o * 1e3:.2f} ms per call")  # fmt: skip
    own = wrapper_time(demo_model("squeezenet"), {"data_0": x}, calls // 2) / b * 100
    report("squeezenet b1: wrapper time outside ORT", own, "%", "<= 2%", own <= 2.0,
           "median time per call spent in the session around onnxruntime's run")  # fmt: skip

    calls = 20_000 if q else 200_000
    b, o = bench_overhead(tiny(), {"x": np.ones((1, 16), np.float32)}, calls, 1000)
    us = (o - b) * 1e6
    report("tiny model: overhead per call", us, "us", "<= 20 us", us <= 20.0,
           f"bare {b * 1e6:.1f} us, session {o * 1e6:.1f} us per call")  # fmt: skip

    big = 100_000 if q else 1_000_000
    small_b, big_b = bench_memory(big)
    growth = (big_b - small_b) / 1024
    report(f"metering memory: {big:.0e} vs 1e3 calls", growth, "KiB", "< 64 KiB growth",
           growth < 64, f"traced +{small_b / 1024:.1f} KiB after 1e3, +{big_b / 1024:.1f} KiB "
           f"after {big:.0e}")  # fmt: skip
    return report


if __name__ == "__main__":
    main()
