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
    binding = bind_inputs([_input("ids", [None, "width"])], 2, {})
    assert binding.bound == {"ids": (F, (2, "width"))}
    assert not binding.all_concrete
    assert "'width' of 'ids'" in binding.warnings[0]
    assert binding.seq_len is None


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


def test_a_dimension_named_like_a_sequence_takes_the_length_default_128() -> None:
    for name in ("sequence", "seq_len", "sequence_length", "past_sequence"):
        binding = bind_inputs([_input("x", ["batch", name, 16])], 2, {})
        assert binding.bound == {"x": (F, (2, 128, 16))}
        assert binding.seq_len == 128 and binding.dim_values[name] == 128
    binding = bind_inputs([_input("x", ["batch", "seq_len", 16])], 2, {}, seq_len=64)
    assert binding.bound == {"x": (F, (2, 64, 16))} and binding.seq_len == 64


def test_token_inputs_have_their_second_axis_as_the_sequence() -> None:
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", None])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "s7"])
    binding = bind_inputs([ids, mask], 3, {}, seq_len=40)
    assert binding.bound["input_ids"][1] == (3, 40)
    assert binding.bound["attention_mask"][1] == (3, 40)
    assert binding.dim_values == {"b": 3, "s7": 40}  # bound wherever else the graph names it
    assert binding.seq_len == 40 and not binding.warnings


def test_input_shapes_win_over_seq_len() -> None:
    binding = bind_inputs([_input("x", ["N", "sequence"])], 1, {"sequence": 7}, seq_len=64)
    assert binding.bound == {"x": (F, (1, 7))} and binding.seq_len == 7


def test_seq_len_for_a_model_without_one_or_with_a_fixed_one_is_refused() -> None:
    with pytest.raises(ProfileError, match="no sequence dimension"):
        bind_inputs([_input("x", ["N", 10])], 1, {}, seq_len=64)
    fixed = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", 16])
    with pytest.raises(ProfileError, match="fixed at 16 tokens"):
        bind_inputs([fixed], 1, {}, seq_len=64)
    assert bind_inputs([fixed], 1, {}).seq_len == 16  # its own length, reported
    for bad in (0, -1, 2.5, "128", True):
        with pytest.raises(ProfileError, match="seq_len must be a positive integer"):
            bind_inputs([fixed], 1, {}, seq_len=bad)  # type: ignore[arg-type]
