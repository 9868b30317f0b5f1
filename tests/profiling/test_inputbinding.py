"""Binding inputs to a batch size and requested shapes, on declared inputs alone."""

from __future__ import annotations

import pytest
from onnx import TensorProto, ValueInfoProto, helper

from ei_widgets.errors import ProfileError
from ei_widgets.profiling.input_binding import bind_inputs

F = TensorProto.FLOAT


def _input(name: str, shape: list[int | str | None] | None) -> ValueInfoProto:
    return helper.make_tensor_value_info(name, F, shape)


def test_the_batch_binds_a_batch_named_dimension_and_names_are_remembered() -> None:
    binding = bind_inputs([_input("x", ["batch", 3, "height", "height"])], 4, {"height": 32})
    assert binding.bound == {"x": (F, (4, 3, 32, 32))}
    assert binding.batch_size == 4
    assert binding.dim_values == {"batch": 4, "height": 32}
    assert binding.all_concrete and not binding.warnings


def test_an_unnamed_first_dimension_takes_the_batch_and_others_stay_open() -> None:
    binding = bind_inputs([_input("ids", [None, "sequence"])], 2, {})
    assert binding.bound == {"ids": (F, (2, "sequence"))}
    assert not binding.all_concrete
    assert "'sequence' of 'ids'" in binding.warnings[0]


def test_a_fixed_batch_is_reported_and_the_request_is_not_applied() -> None:
    binding = bind_inputs([_input("x", [1, 10])], 8, {})
    assert binding.bound == {"x": (F, (1, 10))}
    assert binding.batch_size == 1
    assert "fixed batch of 1" in binding.warnings[0]


def test_a_full_shape_wins_over_the_batch() -> None:
    binding = bind_inputs([_input("x", ["N", 10])], 8, {"x": (3, 10)})
    assert binding.bound == {"x": (F, (3, 10))}


@pytest.mark.parametrize(
    ("batch", "requested", "match"),
    [
        (0, {}, "batch_size must be a positive integer, got 0"),
        (True, {}, "batch_size must be a positive integer"),
        (1, {"x": (0, 10)}, "Each dimension of 'x' must be a positive integer"),
        (1, {"x": (1, 2, 3)}, "has rank 2"),
        (1, {"x": (1, 11)}, "fixed shape"),
        (1, {"width": 5}, "neither an input nor a symbolic dimension"),
        (1, {"N": -2}, "Dimension 'N' must be a positive integer"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    batch: int, requested: dict[str, object], match: str
) -> None:
    with pytest.raises(ProfileError, match=match):
        bind_inputs([_input("x", ["N", 10])], batch, requested)  # type: ignore[arg-type]
