"""The pure parts of the endpoint: request bodies, the Accept header, the load test's schedule and
the per-second metrics folded into CloudWatch rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ei_widgets.endpoint.cloudwatch import Recorder, Shape, aggregate, percentile
from ei_widgets.endpoint.codec import (
    InputSpec,
    InvocationError,
    choose_accept,
    decode,
    encode,
    npy_bytes,
)
from ei_widgets.endpoint.load_test import Schedule
from ei_widgets.errors import EndpointError

SPEC = InputSpec("x", (None, 3), np.dtype(np.float32))


def test_npy_round_trip_with_the_header_cache_keeps_values_and_checks_length() -> None:
    for _ in range(2):  # the second time the header comes from the cache
        x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
        np.testing.assert_array_equal(decode(npy_bytes(x), "application/x-npy", [SPEC])["x"], x)
    truncated = npy_bytes(np.zeros((4, 3), np.float32))[:-4]
    with pytest.raises(InvocationError, match="data bytes") as caught:
        decode(truncated, "application/x-npy", [SPEC])
    assert caught.value.status == 400
    fortran = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    import io

    out = io.BytesIO()
    np.save(out, fortran)
    np.testing.assert_array_equal(decode(out.getvalue(), "application/x-npy", [SPEC])["x"], fortran)


def test_integers_in_json_become_the_model_s_floats_but_strings_do_not() -> None:
    assert decode(b"[[1, 2, 3]]", "application/json", [SPEC])["x"].dtype == np.float32
    with pytest.raises(InvocationError, match="float32"):
        decode(b'[["1", "2", "3"]]', "application/json", [SPEC])
    with pytest.raises(InvocationError, match=r"rectangular|shape"):
        decode(b"[[1, 2, 3], [1]]", "application/json", [SPEC])
    assert decode(b'{"instances": [[1, 2, 3]]}', "application/json", [SPEC])["x"].shape == (1, 3)


def test_a_model_with_two_inputs_takes_json_by_name_not_one_npy() -> None:
    specs = [SPEC, InputSpec("mask", (None,), np.dtype(np.int64))]
    feed = decode(b'{"x": [[1, 2, 3]], "mask": [1]}', "application/json", specs)
    assert feed["mask"].dtype == np.int64
    with pytest.raises(InvocationError, match="2 inputs") as caught:
        decode(npy_bytes(np.zeros((1, 3), np.float32)), "application/x-npy", specs)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("accept", "content_type", "chosen"),
    [
        (None, "application/json; charset=utf-8", "application/json"),
        ("*/*", "application/x-npy", "application/x-npy"),
        ("application/json", "application/x-npy", "application/json"),
        ("text/html, application/x-npy", "application/json", "application/x-npy"),
    ],
)
def test_accept_picks_a_type_we_write(accept: str | None, content_type: str, chosen: str) -> None:
    assert choose_accept(accept, content_type) == chosen


def test_an_accept_we_cannot_answer_is_a_406() -> None:
    with pytest.raises(InvocationError) as caught:
        choose_accept("text/csv", "application/json")
    assert caught.value.status == 406


def test_json_answers_carry_every_output() -> None:
    body = encode([np.ones((1, 2)), np.zeros(3)], ["a", "b"], "application/json")
    assert body == b'{"outputs": {"a": [[1.0, 1.0]], "b": [0.0, 0.0, 0.0]}}'


def test_constant_step_and_ramp_schedules_arrive_at_their_rates() -> None:
    constant = Schedule.of("constant", 50, 4)
    assert len(constant.arrivals()) == 200
    step = Schedule.of("step", 40, 4, steps=4)
    counts = [sum(1 for t in step.arrivals() if s <= t < s + 1) for s in range(4)]
    assert counts == [10, 20, 30, 40]
    ramp = Schedule.of("ramp", 100, 10)
    arrivals = ramp.arrivals()
    assert len(arrivals) == pytest.approx(500, abs=2)  # the area under 0 -> 100 over 10 s
    first, last = (sum(1 for t in arrivals if s <= t < s + 1) for s in (0, 9))
    assert first < 10 and last > 90


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("burst", 10, 1), "profile"),
        (("constant", 0, 1), "positive"),
        (("constant", 10, math.inf), "finite"),
        (("constant", "10", 1), "number"),
    ],
)
def test_bad_schedules_are_typed_errors(args: tuple[object, ...], says: str) -> None:
    with pytest.raises(EndpointError, match=says):
        Schedule.of(*args)  # type: ignore[arg-type]


def test_seconds_fold_into_rows_with_percentiles_and_per_instance_counts() -> None:
    rec = Recorder(start=0.0)
    for k in range(10):
        rec.answered(0.5, 200, model_us=1000.0 + k, overhead_us=100.0)
    rec.answered(61.0, 503, None, None)
    rec.answered(61.0, 400, None, None)
    rec.busy(0.5, 0.25)
    shape = Shape(
        instances=2,
        vcpus=2,
        instance_memory_bytes=8 << 30,
        accelerator_memory_bytes=2 << 30,
        model_memory_bytes=1 << 30,
    )
    first, second = aggregate(rec.since(0), 60, shape)
    assert first["Invocations"] == 10 and first["InvocationsPerInstance"] == 5
    assert first["ModelLatency_p50"] == percentile([1000.0 + k for k in range(10)], 50) == 1004.5
    assert first["GPUUtilization"] == pytest.approx(100 * 0.25 / 60)
    assert first["GPUMemoryUtilization"] == 100.0  # half of each of two accelerators
    assert second["t"] == 60 and second["Throttles"] == 1
    assert second["Invocation5XXErrors"] == 1 and second["Invocation4XXErrors"] == 1
    assert math.isnan(second["ModelLatency_p90"])
