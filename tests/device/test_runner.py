"""The load generator: requests, duration, concurrency, stop, failure, inputs, progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from ei_widgets.device.runs import (
    InputSpec,
    Progress,
    Run,
    RunError,
    RunState,
    concrete_shape,
    input_specs,
    make_inputs,
    short_message,
)
from ei_widgets.errors import EIError


def tiny_model() -> onnx.ModelProto:
    """y = relu(x @ W), x: [N, 4] float, W: [4, 3]."""
    weight = helper.make_tensor(
        "W", TensorProto.FLOAT, [4, 3], np.arange(12, dtype=np.float32).tolist()
    )
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@dataclass
class FakeArg:
    name: str
    type: str
    shape: list[Any] | None


class FakeSession:
    """Counts calls and records the feeds; optionally sleeps or fails on a given call."""

    def __init__(
        self, delay_s: float = 0.0, fail_on: int | None = None, inputs: list[FakeArg] | None = None
    ) -> None:
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.calls = 0
        self.threads: set[str] = set()
        self.feeds: list[Mapping[str, Any]] = []
        self._lock = threading.Lock()
        self.inputs = inputs or [FakeArg("x", "tensor(float)", ["batch", 4])]

    def get_inputs(self) -> Sequence[Any]:
        return self.inputs

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> Any:
        with self._lock:
            self.calls += 1
            call = self.calls
            self.threads.add(threading.current_thread().name)
            if len(self.feeds) < 3:
                self.feeds.append(input_feed)
        if self.fail_on is not None and call == self.fail_on:
            raise RuntimeError("simulated accelerator fault\nwith a second line")
        if self.delay_s:
            time.sleep(self.delay_s)
        return [np.zeros((1, 3), dtype=np.float32)]


def test_runs_the_requested_number_of_requests() -> None:
    session = FakeSession()
    run = Run(requests=37, batch_size=2, session_factory=lambda: session)
    progress = run.run()
    assert progress.state is RunState.FINISHED
    assert progress.done == 37
    assert progress.total == 37
    assert progress.inferences == 74
    assert progress.fraction == 1.0
    assert progress.error is None
    assert session.calls == 37
    assert session.feeds[0]["x"].shape == (2, 4)


def test_concurrency_uses_several_workers_and_never_overshoots() -> None:
    session = FakeSession(delay_s=0.002)
    progress = Run(requests=60, concurrency=4, session_factory=lambda: session).run()
    assert progress.state is RunState.FINISHED
    assert session.calls == 60
    assert progress.done == 60
    assert len(session.threads) > 1
    assert all(name.startswith("ei-widgets-run-worker-") for name in session.threads)


def test_duration_run_ends_by_itself() -> None:
    session = FakeSession(delay_s=0.001)
    run = Run(duration_s=0.3, session_factory=lambda: session)
    progress = run.run()
    assert progress.state is RunState.FINISHED
    assert progress.total is None
    assert progress.done == session.calls > 0
    assert progress.elapsed_s >= 0.3


def test_start_returns_at_once_and_stop_reaches_the_stopped_state() -> None:
    session = FakeSession(delay_s=0.01)
    run = Run(requests=10_000, concurrency=2, session_factory=lambda: session).start()
    assert run.state is RunState.RUNNING
    while session.calls < 3:
        time.sleep(0.005)
    assert run.stop(timeout=5)
    progress = run.progress()
    assert progress.state is RunState.STOPPED
    assert 0 < progress.done < 10_000
    calls = session.calls
    time.sleep(0.05)
    assert session.calls == calls  # nothing runs after the stop
    assert not any(t.is_alive() for t in run._threads)


def test_stop_before_start_and_start_twice() -> None:
    run = Run(requests=5, session_factory=FakeSession)
    assert run.stop()
    assert run.state is RunState.STOPPED
    with pytest.raises(RunError, match="already stopped"):
        run.start()


def test_an_exception_fails_the_run_with_a_short_message() -> None:
    session = FakeSession(fail_on=5)
    run = Run(requests=1000, concurrency=3, session_factory=lambda: session)
    progress = run.run()
    assert progress.state is RunState.FAILED
    assert progress.error == "RuntimeError: simulated accelerator fault"
    assert isinstance(run.exception, RuntimeError)
    assert progress.done < 1000
    assert not any(t.is_alive() for t in run._threads)


def test_a_failing_session_factory_fails_the_run() -> None:
    def broken() -> FakeSession:
        raise EIError("No accelerator attached. Attach one first.")

    progress = Run(requests=3, session_factory=broken).run()
    assert progress.state is RunState.FAILED
    assert progress.error == "EIError: No accelerator attached. Attach one first."


def test_progress_callbacks_are_throttled_and_see_the_end() -> None:
    seen: list[Progress] = []
    session = FakeSession()
    run = Run(
        requests=500,
        session_factory=lambda: session,
        on_progress=seen.append,
        progress_interval_s=10,
    )
    run.run()
    # the first push when workers start, then the final one; the 10 s throttle blocks the rest
    assert len(seen) == 2
    assert seen[-1].state is RunState.FINISHED
    assert seen[-1].done == 500


def test_a_broken_callback_does_not_break_the_run() -> None:
    def broken(progress: Progress) -> None:
        raise ValueError("view bug")

    run = Run(requests=20, session_factory=FakeSession)
    unsubscribe = run.subscribe(broken)
    assert run.run().state is RunState.FINISHED
    unsubscribe()
    unsubscribe()  # twice is harmless


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "Batch size"),
        ({"batch_size": 1.5}, "Batch size"),
        ({"concurrency": 0}, "Concurrency"),
        ({"requests": 0}, "Requests"),
        ({"duration_s": -1.0}, "Duration"),
        ({"duration_s": float("nan")}, "Duration"),
        ({"requests": 3, "duration_s": 1.0}, "not both"),
        ({"clock": "wall"}, "Clock"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(RunError, match=match):
        Run(session_factory=FakeSession, **kwargs)


def test_needs_a_model_or_a_factory() -> None:
    with pytest.raises(RunError, match="needs a model"):
        Run()


def test_inputs_follow_shapes_dtypes_and_seed() -> None:
    specs = [
        InputSpec("image", "float32", ("N", 3, 8, 8)),
        InputSpec("ids", "int64", (None, "seq")),
        InputSpec("mask", "bool", (2,)),
        InputSpec("half", "float16", None),
    ]
    feed = make_inputs(specs, batch_size=4, seed=7)
    assert feed["image"].shape == (4, 3, 8, 8)
    assert feed["image"].dtype == np.float32
    assert feed["ids"].shape == (4, 1)
    assert feed["ids"].dtype == np.int64
    assert feed["ids"].min() >= 0
    assert feed["ids"].max() < 10
    assert feed["mask"].shape == (2,)  # fixed dimensions are kept
    assert feed["mask"].dtype == np.bool_
    assert feed["half"].shape == (4,)
    again = make_inputs(specs, batch_size=4, seed=7)
    assert np.array_equal(feed["image"], again["image"])
    other = make_inputs(specs, batch_size=4, seed=8)
    assert not np.array_equal(feed["image"], other["image"])
    bound = make_inputs(specs[:2], batch_size=4, shapes={"ids": (4, 16)})
    assert bound["ids"].shape == (4, 16)


def test_concrete_shape_and_refusals() -> None:
    assert concrete_shape(InputSpec("x", "float32", (1, "C")), 8) == (1, 1)
    with pytest.raises(RunError, match="too large"):
        make_inputs([InputSpec("x", "float32", ("N", 100_000, 100_000))], 1)
    with pytest.raises(RunError, match="runs only at batch 1, not 4"):
        make_inputs([InputSpec("x", "float32", (1, 3))], 4)
    with pytest.raises(RunError, match="cannot generate"):
        make_inputs([InputSpec("x", "complex64", (1,))], 1)
    session = FakeSession(inputs=[FakeArg("s", "tensor(string)", [1])])
    with pytest.raises(RunError, match="numeric and boolean"):
        input_specs(session)
    progress = Run(requests=1, session_factory=lambda: session).run()
    assert progress.state is RunState.FAILED
    assert "RunError" in (progress.error or "")


def test_drives_a_real_onnxruntime_session() -> None:
    def factory() -> ort.InferenceSession:
        return ort.InferenceSession(
            tiny_model().SerializeToString(), providers=["CPUExecutionProvider"]
        )

    run = Run(requests=25, batch_size=3, concurrency=2, session_factory=factory)
    progress = run.run()
    assert progress.state is RunState.FINISHED
    assert progress.done == 25
    assert progress.inferences == 75


def test_short_message() -> None:
    assert short_message(ValueError("a\nb")) == "ValueError: a"
    assert short_message(KeyError()) == "KeyError"
    assert len(short_message(RuntimeError("x" * 1000), limit=50)) == 50
