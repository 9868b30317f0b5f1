"""The metrics stream: aggregates, quantiles, rings, subscribers, thread safety."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from ei_widgets.device.metrics import MetricsSnapshot, MetricsStream, default_stream
from tests.threads import in_threads


def test_empty_snapshot() -> None:
    snap = MetricsStream().snapshot()
    assert snap.calls == snap.inferences == snap.errors == 0
    assert snap.throughput_per_s == 0
    assert math.isnan(snap.p50_ms)
    assert snap.host_bound_share == 0


def test_counts_quantiles_and_throughput() -> None:
    s = MetricsStream()
    t = 100.0
    for i in range(100):
        t += 0.01
        s.record((i + 1) / 1000, 4, at=t, flops=1e9, peak_flops=1e12, memory_bytes=1000 + i)
    snap = s.snapshot()
    assert snap.calls == 100 and snap.inferences == 400
    assert snap.p50_ms == pytest.approx(50.5, rel=0.01)
    assert snap.p95_ms == pytest.approx(95.05, rel=0.01)
    assert snap.p99_ms == pytest.approx(99.01, rel=0.01)
    assert snap.mean_ms == pytest.approx(50.5)
    # 400 inferences over one second of stream time (the first call began at 100.009).
    assert snap.throughput_per_s == pytest.approx(400 / (101.0 - 100.009), rel=0.01)
    assert snap.memory_bytes == 1099 and snap.peak_memory_bytes == 1099
    # 100 calls x 1 ms of full-peak work in ~1 s: 10% utilisation.
    assert snap.utilisation == pytest.approx(0.1, rel=0.02)


def test_errors_are_not_inferences() -> None:
    s = MetricsStream()
    s.record(0.01, 1, at=1.0)
    s.record_error(ValueError("bad shape"), at=1.1)
    s.record_error("NoAcceleratorError", at=1.2)
    snap = s.snapshot()
    assert snap.calls == 1 and snap.inferences == 1 and snap.errors == 2
    assert snap.errors_by_kind == {"ValueError": 1, "NoAcceleratorError": 1}
    assert snap.p99_ms == pytest.approx(10.0)


def test_error_kinds_are_bounded() -> None:
    s = MetricsStream()
    for i in range(100):
        s.record_error(f"Kind{i}", at=1.0)
    kinds = s.snapshot().errors_by_kind
    assert len(kinds) <= 33
    assert sum(kinds.values()) == 100


def test_host_bound_share() -> None:
    s = MetricsStream()
    for i in range(10):
        s.record(0.001, 1, at=float(i), host_bound=i < 3, host_s=0.002)
    snap = s.snapshot()
    assert snap.host_bound_calls == 3
    assert snap.host_bound_share == pytest.approx(0.3)
    assert snap.host_seconds == pytest.approx(0.02)


def test_throughput_uses_the_recent_window() -> None:
    s = MetricsStream(rate_window_s=5)
    for second in range(100):
        n = 10 if second < 90 else 100
        for k in range(n):
            s.record(0.001, 1, at=second + (k + 1) / (n + 1))
    # The last 5 seconds ran at 100/s.
    assert s.snapshot().throughput_per_s == pytest.approx(100, rel=0.05)


def test_series_ring_is_bounded_and_fills_gaps() -> None:
    s = MetricsStream(series_seconds=60)
    for second in range(0, 200, 2):
        s.record(0.002, 2, at=second + 0.5, flops=1e9, peak_flops=1e12)
    points = s.series()
    assert len(points) == 60
    assert points[-1].second == 198
    assert [p.inferences for p in points[-4:]] == [0, 2, 0, 2]
    assert points[-1].mean_latency_ms == pytest.approx(2.0)
    assert points[-1].utilisation == pytest.approx(0.001)
    assert len(s.series(10)) == 10


def test_memory_stays_bounded_over_many_records() -> None:
    s = MetricsStream(latency_window=256, series_seconds=30)
    t = 0.0
    for _ in range(20_000):
        t += 0.003
        s.record(0.003, 1, at=t)
    size_after = sum(sys.getsizeof(v) for v in vars(s).values())
    for _ in range(20_000):
        t += 0.003
        s.record(0.003, 1, at=t)
    assert sum(sys.getsizeof(v) for v in vars(s).values()) == size_after
    assert s.snapshot().calls == 40_000
    assert len(s.series()) == 30


def test_subscribers_are_throttled_and_can_unsubscribe() -> None:
    s = MetricsStream(notify_interval_s=3600)
    seen: list[MetricsSnapshot] = []
    unsubscribe = s.subscribe(seen.append)
    for i in range(100):
        s.record(0.001, 1, at=float(i))
    assert len(seen) == 1  # the first record notifies, the rest fall inside the interval
    s.notify()
    assert len(seen) == 2 and seen[-1].calls == 100
    unsubscribe()
    s.notify()
    assert len(seen) == 2


def test_a_failing_subscriber_does_not_break_recording() -> None:
    s = MetricsStream(notify_interval_s=0)

    def broken(snap: MetricsSnapshot) -> None:
        raise RuntimeError("view bug")

    s.subscribe(broken)
    s.record(0.001, 1, at=1.0)
    assert s.snapshot().calls == 1


def test_reset() -> None:
    s = MetricsStream()
    seen: list[MetricsSnapshot] = []
    s.subscribe(seen.append)
    s.record(0.001, 1, at=1.0)
    s.reset()
    assert s.snapshot().calls == 0
    assert seen[-1].calls == 0
    assert s.series() == []


def test_many_threads_every_record_counted_once() -> None:
    s = MetricsStream()
    n_threads, per_thread = 8, 2000

    def worker(i: int) -> None:
        for k in range(per_thread):
            if k % 10 == 0:
                s.record_error("E")
            else:
                s.record(0.001 * (i + 1), 2)

    in_threads(worker, n_threads)
    snap = s.snapshot()
    assert snap.errors == n_threads * per_thread // 10
    assert snap.calls == n_threads * per_thread * 9 // 10
    assert snap.inferences == 2 * snap.calls


def test_latency_ring_keeps_the_most_recent() -> None:
    s = MetricsStream(latency_window=100)
    for i in range(1000):
        s.record(1.0 if i < 900 else 0.001, 1, at=float(i))
    assert s.snapshot().p99_ms == pytest.approx(1.0)
    assert np.isfinite(s.snapshot().p50_ms)


def test_default_stream_is_one_object() -> None:
    assert default_stream() is default_stream()


def test_bad_windows() -> None:
    with pytest.raises(ValueError, match="windows"):
        MetricsStream(latency_window=0)
    with pytest.raises(ValueError, match="windows"):
        MetricsStream(series_seconds=10, rate_window_s=10)


def test_totals_survive_a_reset_so_the_bill_never_goes_backwards() -> None:
    stream = MetricsStream()
    stream.record(0.01, 4, at=1.0)
    stream.record_error("ValueError", at=1.5)
    stream.reset()
    stream.record(0.02, 2, at=2.0)
    assert stream.snapshot().inferences == 2
    inferences, errors, simulated = stream.totals()
    assert (inferences, errors) == (6, 1)
    assert simulated == pytest.approx(0.03)


def test_a_warm_up_call_counts_but_stays_out_of_the_latency_figures() -> None:
    stream = MetricsStream()
    stream.record(0.2, 1, at=0.2, warmup=True)  # the first call: 200 ms of warm-up
    for i in range(100):
        stream.record(0.004, 1, at=0.2 + 0.004 * (i + 1))
    snap = stream.snapshot()
    assert snap.calls == 101 and snap.inferences == 101  # counted as a call and an inference
    assert snap.p95_ms == pytest.approx(4.0) and snap.mean_ms == pytest.approx(4.0)
    assert snap.warmup_ms == pytest.approx(200.0)  # kept apart, for the chart to mark
    assert [p.mean_latency_ms for p in stream.series()] == [pytest.approx(4.0)]
    assert math.isnan(MetricsStream().snapshot().warmup_ms)
