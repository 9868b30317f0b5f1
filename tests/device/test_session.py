"""Accelerated sessions: real outputs, simulated and metered time."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import threading
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.catalog import Catalog, packaged_catalog
from ei_widgets.device.estimate import estimate, warmup_seconds
from ei_widgets.device.metrics import MetricsStream
from ei_widgets.device.sessions import AcceleratedSession, session, virtual_clock
from ei_widgets.errors import (
    DoesNotFitError,
    EIError,
    ModelLoadError,
    NoAcceleratorError,
    ProfileError,
)
from ei_widgets.models.demo import demo_model
from ei_widgets.profiling.profiler import profile
from tests.builders import custom_op, tiny
from tests.threads import in_threads


def with_constants(**values: Any) -> Catalog:
    base = packaged_catalog()
    constants = dict(base.constants)
    for name, value in values.items():
        constants[name] = dataclasses.replace(constants[name], value=value)
    return dataclasses.replace(base, constants=MappingProxyType(constants))


@pytest.fixture
def st() -> AcceleratorState:
    state = AcceleratorState()
    state.attach("ml.eia2.medium")
    return state


@pytest.fixture
def stream() -> MetricsStream:
    return MetricsStream()


def make(st: AcceleratorState, stream: MetricsStream, model: Any = None, **kw: Any) -> Any:
    return session(tiny() if model is None else model, clock="virtual", state=st,
                   stream=stream, **kw)  # fmt: skip


def feed(batch: int = 2) -> dict[str, np.ndarray]:
    return {"x": np.arange(batch * 16, dtype=np.float32).reshape(batch, 16) / 100}


def test_outputs_are_real_onnxruntime_outputs(st: AcceleratorState, stream: MetricsStream) -> None:
    sess = make(st, stream)
    bare = ort.InferenceSession(tiny().SerializeToString(), providers=["CPUExecutionProvider"])
    ours = sess.run(None, feed(3))
    np.testing.assert_array_equal(ours[0], bare.run(None, feed(3))[0])
    assert ours[0].shape == (3, 8)
    assert sess.run(["y"], feed(1))[0].shape == (1, 8)


def test_the_inference_session_api(st: AcceleratorState, stream: MetricsStream) -> None:
    sess = make(st, stream)
    assert isinstance(sess, AcceleratedSession)
    assert [i.name for i in sess.get_inputs()] == ["x"]
    assert [o.name for o in sess.get_outputs()] == ["y"]
    assert sess.get_modelmeta() is not None
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert sess.get_overridable_initializers() is not None
    assert sess.get_session_options() is not None
    assert sess.get_provider_options() is not None
    assert callable(sess.end_profiling)  # the rest goes to onnxruntime
    with pytest.raises(AttributeError):
        sess.no_such_method  # noqa: B018
    assert "ml.eia2.medium" in repr(sess)


def test_accepts_what_inference_session_accepts(
    st: AcceleratorState, stream: MetricsStream, tmp_path: Path
) -> None:
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny(), path)
    expected = make(st, stream).run(None, feed())[0]
    for model in (str(path), path, path.read_bytes(),
                  ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])):  # fmt: skip
        out = make(st, stream, model, providers=["CUDAExecutionProvider"]).run(None, feed())[0]
        np.testing.assert_array_equal(out, expected)


def test_every_call_is_metered_with_its_simulated_latency(
    st: AcceleratorState, stream: MetricsStream
) -> None:
    sess = make(st, stream)
    est1 = sess.estimate(1)
    est4 = sess.estimate(4)
    assert est1 == estimate(sess.profile, "ml.eia2.medium", batch_size=1)
    t0 = virtual_clock().now()
    sess.run(None, feed(1))  # warm-up call
    sess.run(None, feed(1))
    sess.run(None, feed(4))
    snap = stream.snapshot()
    assert snap.calls == 3 and snap.inferences == 6 and snap.errors == 0
    warm = est1.latency_s + warmup_seconds(est1.latency_s)
    total = warm + est1.latency_s + est4.latency_s
    assert snap.simulated_seconds == pytest.approx(total)
    assert virtual_clock().now() - t0 == pytest.approx(total)
    assert snap.accelerator == "ml.eia2.medium"
    assert snap.memory_bytes == est4.memory_needed_bytes
    assert snap.utilisation > 0


def test_first_call_and_model_load_are_slower(st: AcceleratorState, stream: MetricsStream) -> None:
    sess = make(st, stream)
    assert sess.load_seconds > sess.host_load_seconds
    sess.run(None, feed(1))
    first = stream.snapshot().simulated_seconds
    sess.run(None, feed(1))
    second = stream.snapshot().simulated_seconds - first
    assert first > 2 * second


def test_virtual_clock_advances_by_the_load(st: AcceleratorState, stream: MetricsStream) -> None:
    t0 = virtual_clock().now()
    sess = make(st, stream)
    assert virtual_clock().now() - t0 == pytest.approx(sess.load_seconds)


def test_paced_call_takes_at_least_its_latency(st: AcceleratorState, stream: MetricsStream) -> None:
    sess = session(tiny(), clock="paced", state=st, stream=stream)
    sess.run(None, feed(1))  # warm-up
    start = time.perf_counter()
    sess.run(None, feed(1))
    elapsed = time.perf_counter() - start
    assert elapsed >= sess.estimate(1).latency_s


def test_host_slower_than_device_is_marked_host_bound(
    st: AcceleratorState, stream: MetricsStream
) -> None:
    fast = with_constants(
        rpc_seconds=0.0, network_efficiency=1e30, kernel_launch_seconds=0.0,
        warmup_fixed_seconds=0.0, warmup_factor=1.0, kernel_fill_seconds=0.0,
        runtime_call_seconds=dict.fromkeys(("mxnet", "pytorch", "tensorflow", "keras",
                                            "tensorrt"), 0.0),
    )  # fmt: skip
    sess = make(st, stream, catalog=fast)
    for _ in range(5):
        sess.run(None, feed(2))
    snap = stream.snapshot()
    assert snap.host_bound_calls == 5 and snap.host_bound_share == 1.0
    # The simulated latency is still what is reported, not the host's time.
    assert snap.simulated_seconds == pytest.approx(5 * sess.estimate(2).latency_s)
    assert snap.simulated_seconds < snap.host_seconds


def test_normal_calls_are_not_host_bound(st: AcceleratorState, stream: MetricsStream) -> None:
    sess = make(st, stream)
    for _ in range(5):
        sess.run(None, feed(2))
    assert stream.snapshot().host_bound_calls == 0  # 1.5 ms RPC >> a tiny MatMul on the host


def test_wrong_shape_or_dtype_is_onnxruntime_error_counted_as_error(
    st: AcceleratorState, stream: MetricsStream
) -> None:
    sess = make(st, stream)
    bare = ort.InferenceSession(tiny().SerializeToString(), providers=["CPUExecutionProvider"])
    for bad in ({"x": np.zeros((2, 5), np.float32)}, {"x": np.zeros((2, 16), np.int64)}):
        with pytest.raises(InvalidArgument) as ours:
            sess.run(None, bad)
        with pytest.raises(InvalidArgument) as theirs:
            bare.run(None, bad)
        assert type(ours.value) is type(theirs.value)
        assert not isinstance(ours.value, EIError)
    snap = stream.snapshot()
    assert snap.errors == 2 and snap.calls == 0 and snap.inferences == 0


def test_batch_of_zero_is_rejected_and_counted(st: AcceleratorState, stream: MetricsStream) -> None:
    sess = make(st, stream)
    with pytest.raises(ProfileError, match="Batch size must be a positive integer, got 0"):
        sess.run(None, {"x": np.zeros((0, 16), np.float32)})
    assert stream.snapshot().errors == 1
    with pytest.raises(ProfileError):
        make(st, stream, batch_size=0)
    with pytest.raises(ProfileError):
        make(st, stream, batch_size=-3)


def test_run_after_detach(st: AcceleratorState, stream: MetricsStream) -> None:
    sess = make(st, stream)
    sess.run(None, feed())
    st.detach()
    with pytest.raises(NoAcceleratorError, match="no accelerator attached"):
        sess.run(None, feed())
    snap = stream.snapshot()
    assert snap.calls == 1 and snap.errors == 1
    with pytest.raises(NoAcceleratorError, match="no accelerator attached"):
        make(st, stream)
    st.attach("ml.eia2.large")
    sess.run(None, feed())  # reattached: works again
    assert stream.snapshot().accelerator == "ml.eia2.large"


def test_changing_accelerator_rebinds_and_warms_up_again(
    st: AcceleratorState, stream: MetricsStream
) -> None:
    sess = make(st, stream)
    sess.run(None, feed(1))
    sess.run(None, feed(1))
    st.attach("ml.eia1.xlarge", precision="fp16")
    before = stream.snapshot().simulated_seconds
    sess.run(None, feed(1))
    est = sess.estimate(1)
    assert est.target == "ml.eia1.xlarge" and est.precision == "fp16"
    assert stream.snapshot().simulated_seconds - before == pytest.approx(
        est.latency_s + warmup_seconds(est.latency_s)
    )


def test_model_that_does_not_fit_at_load(st: AcceleratorState, stream: MetricsStream) -> None:
    heavy = with_constants(runtime_overhead_bytes=3 * 2**30)
    with pytest.raises(DoesNotFitError) as info:
        make(st, stream, catalog=heavy)
    text = str(info.value)
    assert "weights" in text and "activations at batch 1" in text
    assert "ml.eia2.medium has 2 GiB" in text
    assert "smallest accelerator that fits is ml.eia2.large" in text
    st.attach("ml.eia2.large")
    make(st, stream, catalog=heavy)  # fits now


def test_batch_that_no_longer_fits_at_run_time(st: AcceleratorState, stream: MetricsStream) -> None:
    tight = with_constants(
        runtime_overhead_bytes=2 * 2**30 - 4 * 2**20, runtime_overhead_fraction=0.0
    )
    sess = make(st, stream, catalog=tight)
    sess.run(None, feed(1))
    big = 200_000  # 200k x (16 + 8 + 8) floats of activations: more than the 4 MiB left
    with pytest.raises(DoesNotFitError, match=f"at batch {big}.*smallest accelerator that fits"):
        sess.run(None, {"x": np.zeros((big, 16), np.float32)})
    with pytest.raises(DoesNotFitError):  # the cached verdict fails the same way
        sess.run(None, {"x": np.zeros((big, 16), np.float32)})
    snap = stream.snapshot()
    assert snap.calls == 1 and snap.errors == 2


def test_many_threads_every_call_metered_once(st: AcceleratorState, stream: MetricsStream) -> None:
    sess = make(st, stream)
    n_threads, per_thread = 8, 100
    results: list[int] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        batch = 1 + i % 3
        for k in range(per_thread):
            if k % 25 == 0:
                with contextlib.suppress(InvalidArgument):
                    sess.run(None, {"x": np.zeros((batch, 3), np.float32)})
                continue
            out = sess.run(None, feed(batch))
            with lock:
                results.append(out[0].shape[0])

    in_threads(worker, n_threads)
    snap = stream.snapshot()
    assert snap.calls == len(results) == n_threads * (per_thread - 4)
    assert snap.inferences == sum(results)
    assert snap.errors == n_threads * 4


def test_run_with_ort_values_is_metered(st: AcceleratorState, stream: MetricsStream) -> None:
    sess = make(st, stream)
    value = ort.OrtValue.ortvalue_from_numpy(feed(3)["x"])
    out = sess.run_with_ort_values(None, {"x": value})
    assert out[0].numpy().shape == (3, 8)
    snap = stream.snapshot()
    assert snap.calls == 1 and snap.inferences == 3


def test_fp16_is_faster_for_a_conv_net(stream: MetricsStream) -> None:
    st = AcceleratorState()
    prof = profile(demo_model("squeezenet"))
    st.attach("ml.eia2.medium", precision="fp32")
    sess = session(demo_model("squeezenet"), clock="virtual", state=st, stream=stream, profile=prof)
    f32 = sess.estimate(1).latency_s
    st.attach("ml.eia2.medium", precision="fp16")
    assert sess.estimate(1).latency_s < f32


def test_real_demo_model_outputs(stream: MetricsStream) -> None:
    st = AcceleratorState()
    st.attach("ml.eia2.medium")
    path = demo_model("squeezenet")
    sess = session(path, clock="virtual", state=st, stream=stream)
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    bare = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"data_0": x})[0], bare.run(None, {"data_0": x})[0])
    assert stream.snapshot().calls == 1


def test_bad_clock(st: AcceleratorState, stream: MetricsStream) -> None:
    with pytest.raises(EIError, match="clock"):
        session(tiny(), clock="fast", state=st, stream=stream)  # type: ignore[arg-type]


def test_kernel_state_is_the_default(stream: MetricsStream) -> None:
    from ei_widgets.device import accelerator

    accelerator.detach()
    with pytest.raises(NoAcceleratorError):
        session(tiny(), clock="virtual", stream=stream)
    with accelerator.attach("ml.eia1.medium"):
        sess = session(tiny(), clock="virtual", stream=stream)
        sess.run(None, feed())
    with pytest.raises(NoAcceleratorError):
        sess.run(None, feed())


def test_run_time_checks_the_batch_of_the_call_only(stream: MetricsStream) -> None:
    # batch 64 fits on eia2.large but not on eia2.medium; batch 1 fits on both.
    tight = with_constants(runtime_overhead_bytes=2 * 2**30 - 4096, runtime_overhead_fraction=0.0)
    st = AcceleratorState(catalog=tight)
    st.attach("ml.eia2.large")
    sess = session(tiny(), clock="virtual", state=st, stream=stream, batch_size=64)
    sess.run(None, feed(64))
    st.attach("ml.eia2.medium")
    sess.run(None, feed(1))  # the session's own batch no longer fits, but this call's does
    with pytest.raises(DoesNotFitError, match=r"smallest accelerator that fits is ml\.eia2\.large"):
        sess.run(None, feed(64))
    snap = stream.snapshot()
    assert snap.calls == 2 and snap.errors == 1


def test_an_estimate_finished_after_a_reattach_is_not_cached_for_the_new_accelerator(
    st: AcceleratorState, stream: MetricsStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call computes batch 3 on ml.eia2.medium while another thread re-attaches ml.eia2.xlarge
    and rebinds; the old estimate must not stay cached as the new accelerator's figure."""
    session_module = importlib.import_module("ei_widgets.device.sessions")
    sess = make(st, stream)
    sess.run(None, feed(1))
    real = session_module.estimate
    raced = []

    def estimate_then_reattach(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if kwargs.get("batch_size") == 3 and not raced:
            raced.append(True)
            st.attach("ml.eia2.xlarge", precision="fp16")
            sess._bind()  # what the other thread's call does on seeing the new attachment
        return result

    monkeypatch.setattr(session_module, "estimate", estimate_then_reattach)
    sess.run(None, feed(3))  # started on the medium: measured with its figures
    assert raced
    sess.run(None, feed(3))  # warm-up on the new accelerator
    before = stream.snapshot().simulated_seconds
    sess.run(None, feed(3))
    expected = real(sess.profile, st.attachment.accelerator, batch_size=3, precision="fp16",
                    instance=st.instance).latency_s  # fmt: skip
    assert stream.snapshot().simulated_seconds - before == pytest.approx(expected)
    assert stream.snapshot().accelerator == "ml.eia2.xlarge"


def test_a_paced_timeline_leaves_out_the_time_this_machine_fell_behind() -> None:
    """Host 30 ms per call, device 10 ms: the simulated calls end 10 ms apart (the device's
    throughput, as a virtual run reports it), not 30 ms apart (this machine's)."""
    from ei_widgets.device.sessions import _Timeline

    timeline, wall, ends = _Timeline(), 100.0, []
    for _ in range(5):
        end, deadline = timeline.reserve(wall, 0.010, 0.010)
        finished = wall + 0.030  # this machine took 30 ms
        if finished > deadline:
            timeline.fell_behind(finished - deadline)
        ends.append(end)
        wall = finished
    assert np.diff(ends) == pytest.approx([0.010] * 4)


def test_a_paced_call_that_keeps_up_still_waits_its_latency() -> None:
    from ei_widgets.device.sessions import _Timeline

    timeline = _Timeline()
    end, deadline = timeline.reserve(50.0, 0.010, 0.012)
    assert end == pytest.approx(50.012) and deadline == pytest.approx(50.012)
    end, deadline = timeline.reserve(50.001, 0.010, 0.012)  # queued behind the first
    assert end == pytest.approx(50.022) and deadline == pytest.approx(50.022)


def test_a_model_onnxruntime_refuses_is_one_typed_error(st: AcceleratorState) -> None:
    # onnx accepts an op from an unknown domain; onnxruntime has no kernel for it.
    with pytest.raises(ModelLoadError, match=r"onnxruntime cannot load .*: ") as info:
        session(custom_op(), state=st)
    assert info.value.__cause__ is None and "\n" not in str(info.value)
