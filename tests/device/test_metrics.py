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


def test_a_mark_reads_only_the_calls_after_it() -> None:
    """A run's figures are its own: earlier calls (another model, slower, in the same second
    and seconds before) stay out of its snapshot and series, and the stream's totals go on."""
    s = MetricsStream()
    s.record(0.5, 1, at=0.5, warmup=True, memory_bytes=900)
    for i in range(320):  # another model: 9.81 ms a call, from 0.5 s to about 3.64 s
        s.record(0.00981, 1, at=0.5 + 0.00981 * (i + 1), memory_bytes=800)
    mark = s.mark()
    assert s.snapshot(since=mark).calls == 0
    assert s.series(since=mark) == []
    before = s.snapshot()
    start = 0.5 + 0.00981 * 320 + 20.0  # the run begins 20 s later
    s.record(0.2, 1, at=start + 0.2, warmup=True, memory_bytes=100)
    for i in range(100):
        s.record(0.00689, 1, at=start + 0.2 + 0.00689 * (i + 1), memory_bytes=100)
    run = s.snapshot(since=mark)
    assert (run.calls, run.inferences) == (101, 101)
    assert run.p50_ms == pytest.approx(6.89)
    assert run.p95_ms == pytest.approx(6.89)
    assert run.warmup_ms == pytest.approx(200)
    assert run.peak_memory_bytes == 100
    assert run.simulated_seconds == pytest.approx(0.2 + 0.689)
    assert run.throughput_per_s == pytest.approx(101 / 0.889, rel=1e-6)
    points = s.series(since=mark)
    assert points[0].second == int(start)  # the run's first second, not the gap before it
    assert sum(p.calls for p in points) == 101
    assert points[0].span_s == pytest.approx(int(start) + 1 - start)
    # the whole stream still holds everything (the meter counts from it)
    whole = s.snapshot()
    assert whole.calls == before.calls + 101
    assert s.totals()[0] == 422


def test_a_mark_leaves_out_the_earlier_calls_of_its_first_second() -> None:
    s = MetricsStream()
    for i in range(50):
        s.record(0.01, 2, at=10.0 + 0.01 * (i + 1))  # 10.01 .. 10.5
    mark = s.mark()
    for i in range(10):
        s.record(0.004, 1, at=10.5 + 0.004 * (i + 1), host_bound=True)
    s.record_error(RuntimeError("x"), at=10.6)
    (point,) = s.series(since=mark)
    assert (point.calls, point.inferences, point.errors) == (10, 10, 1)
    assert point.mean_latency_ms == pytest.approx(4.0)
    run = s.snapshot(since=mark)
    assert run.errors == 1 and run.errors_by_kind == {"RuntimeError": 1}
    assert run.host_bound_share == 1.0
    assert run.throughput_per_s == pytest.approx(10 / 0.1)
    assert s.snapshot().calls == 60


def test_a_mark_counts_latencies_through_a_wrapped_ring() -> None:
    s = MetricsStream(latency_window=8)
    for i in range(13):
        s.record(0.001, 1, at=0.001 * (i + 1))
    mark = s.mark()
    for i in range(3):
        s.record(0.1 * (i + 1), 1, at=1.0 + i)
    assert s.snapshot(since=mark).p50_ms == pytest.approx(200)
    for i in range(20):
        s.record(0.05, 1, at=5.0 + i * 0.05)
    assert s.snapshot(since=mark).p50_ms == pytest.approx(50)  # the ring's newest 8
