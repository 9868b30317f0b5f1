"""The fp16 check on hostile models and inputs, and its cache's memory bound."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnx
import pytest
from builders import mlp, tiny
from onnx import TensorProto, helper, numpy_helper

from ei_widgets.device import fp16, fp16_conversion
from ei_widgets.device.fp16 import FP16Error, fp16_check


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    fp16.clear_cache()
    yield
    fp16_conversion.set_cache_limit(None)
    fp16.clear_cache()


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def embeddings(type_rows: int = 2) -> onnx.ModelProto:
    """A BERT-like embedding: token ids into a 30-row table, token types into a small one."""
    rng = np.random.default_rng(0)
    words = numpy_helper.from_array(rng.standard_normal((30, 8)).astype(np.float32), "words")
    types = numpy_helper.from_array(rng.standard_normal((type_rows, 8)).astype(np.float32), "types")
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", 5])
    tt = helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["N", 5])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["N", 5])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 5, 8])
    nodes = [
        helper.make_node("Gather", ["words", "input_ids"], ["w"]),
        helper.make_node("Cast", ["token_type_ids"], ["tt32"], to=TensorProto.INT32),
        helper.make_node("Gather", ["types", "tt32"], ["t"]),
        helper.make_node("Add", ["w", "t"], ["s"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "axes"], ["m3"]),
        helper.make_node("Mul", ["s", "m3"], ["out"]),
    ]
    axes = numpy_helper.from_array(np.array([2], dtype=np.int64), "axes")
    return _model(helper.make_graph(nodes, "emb", [ids, tt, mask], [out], [words, types, axes]))


# --- 10. integer inputs within the range the model accepts ------------------------------------


def test_integer_ranges_are_read_from_the_tables_they_index() -> None:
    assert fp16.integer_ranges(embeddings(2)) == {
        "input_ids": 10,
        "token_type_ids": 2,
        "attention_mask": 1,
    }


def test_a_two_row_token_type_table_is_not_overrun() -> None:
    check = fp16_check(embeddings(2))
    assert check.measured, check.reason
    assert "range the model accepts" in check.inputs


def test_user_inputs_of_the_wrong_type_or_rank_are_fp16_errors() -> None:
    model = tiny()
    name = model.graph.input[0].name
    shape = [d.dim_value or 2 for d in model.graph.input[0].type.tensor_type.shape.dim]
    with pytest.raises(FP16Error, match="dimensions"):
        fp16_check(model, {name: np.zeros(shape[1:], np.float32)})
    with pytest.raises(FP16Error):
        fp16_check(model, {name: np.array([["a"] * shape[-1]] * 2)})
    with pytest.raises(FP16Error):
        fp16_check(model, {name: [[1.0, 2.0], [3.0]]})
    ints = embeddings(2)
    feed = {i.name: np.zeros((2, 5), np.int64) for i in ints.graph.input}
    feed["input_ids"] = np.full((2, 5), 0.5)
    with pytest.raises(FP16Error, match="input_ids"):
        fp16_check(ints, feed)


def test_user_inputs_out_of_the_models_range_are_an_fp16_error() -> None:
    model = embeddings(2)
    feed = {i.name: np.zeros((2, 5), np.int64) for i in model.graph.input}
    feed["token_type_ids"] = np.full((2, 5), 7, np.int64)  # the table has 2 rows
    with pytest.raises(FP16Error, match="onnxruntime refused"):
        fp16_check(model, feed)


def test_a_fixed_batch_model_with_variable_length_outputs_is_compared() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6])
    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, [2, None])
    zero = numpy_helper.from_array(np.zeros((), np.float32), "zero")
    nodes = [
        helper.make_node("Relu", ["x"], ["y"]),
        helper.make_node("Greater", ["x", "zero"], ["positive"]),
        helper.make_node("NonZero", ["positive"], ["idx"]),
    ]
    model = _model(helper.make_graph(nodes, "varlen", [x], [y, idx], [zero]))
    check = fp16_check(model, samples=8)
    assert check.measured, check.reason
    assert {o.name for o in check.outputs} == {"y", "idx"}


# --- 7. the conversion cache is bounded by bytes ----------------------------------------------


def test_the_conversion_cache_is_bounded_by_the_memory_it_holds() -> None:
    small, other = mlp((64, 32, 10)), mlp((64, 48, 10))
    size = len(small.SerializeToString())
    fp16_conversion.set_cache_limit(fp16_conversion.MEMORY_FACTOR * size * 3 // 2)
    fp16_check(small)
    assert fp16_conversion.cache_info()[0] == 1
    fp16_check(other)  # the two do not fit together: the older is forgotten
    count, held = fp16_conversion.cache_info()
    assert count == 1 and held <= fp16_conversion.cache_limit() * 2


def test_the_newest_conversion_is_kept_whatever_its_size() -> None:
    fp16_conversion.set_cache_limit(0)
    assert fp16_check(mlp((64, 32, 10))).measured
    assert fp16_conversion.cache_info()[0] == 1


def test_the_cache_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fp16_conversion.cache_limit() == fp16_conversion.DEFAULT_CACHE_BYTES
    monkeypatch.setenv("EI_WIDGETS_FP16_CACHE_MB", "256")
    assert fp16_conversion.cache_limit() == 256 * 2**20
    monkeypatch.setenv("EI_WIDGETS_FP16_CACHE_MB", "lots")
    assert fp16_conversion.cache_limit() == fp16_conversion.DEFAULT_CACHE_BYTES
