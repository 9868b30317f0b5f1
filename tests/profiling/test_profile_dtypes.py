"""ONNX element types and their sizes: one table, read from onnx's own helpers."""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from ei_widgets.models import dtypes
from ei_widgets.models.loading import load_model, serialized_size


def test_names_are_numpy_names() -> None:
    assert dtypes.dtype_name(TensorProto.FLOAT) == "float32"
    assert dtypes.dtype_name(TensorProto.BFLOAT16) == "bfloat16"
    assert dtypes.dtype_name(TensorProto.FLOAT8E4M3FN) == "float8_e4m3fn"
    assert dtypes.dtype_name(TensorProto.INT4) == "int4"
    assert dtypes.dtype_name(TensorProto.STRING) == "string"
    assert dtypes.dtype_name(TensorProto.UNDEFINED) == "undefined"
    assert dtypes.dtype_name(999) == "type999"
    for elem, name in dtypes.DTYPE_NAMES.items():
        assert dtypes.element_type(name) == elem


@pytest.mark.parametrize(
    ("elem", "count", "size"),
    [
        (TensorProto.FLOAT, 3, 12),
        (TensorProto.BFLOAT16, 3, 6),
        (TensorProto.COMPLEX128, 2, 32),
        (TensorProto.BOOL, 5, 5),
        (TensorProto.INT4, 3, 2),  # half a byte each, rounded up once per tensor
        (TensorProto.UINT4, 10, 5),
        (TensorProto.STRING, 4, 4),  # no fixed size: a byte each unless told
    ],
)
def test_sizes(elem: int, count: int, size: int) -> None:
    assert dtypes.nbytes(elem, count) == size
    assert dtypes.nbytes_of(dtypes.dtype_name(elem), count) == size


def test_every_type_onnx_knows_has_a_name_and_all_but_strings_a_size() -> None:
    for elem in helper.get_all_tensor_dtypes():
        assert not dtypes.dtype_name(elem).startswith("type")
        assert (dtypes.element_bits(elem) is None) == (elem in (TensorProto.STRING,))


def test_onnxruntime_type_strings() -> None:
    assert dtypes.ort_element_type("tensor(float)") == TensorProto.FLOAT
    assert dtypes.ort_element_type("tensor(float16)") == TensorProto.FLOAT16
    assert dtypes.ort_element_type("tensor(int4)") == TensorProto.INT4
    assert dtypes.ort_element_type("seq(tensor(float))") == TensorProto.UNDEFINED
    assert dtypes.ort_element_type("tensor(nonsense)") == TensorProto.UNDEFINED


def test_external_int4_weights_are_half_a_byte_each() -> None:
    init = TensorProto(name="w", data_type=TensorProto.INT4, dims=[10, 100])
    init.data_location = TensorProto.EXTERNAL
    entry = init.external_data.add()
    entry.key, entry.value = "location", "w.bin"
    graph = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])],
        "int4",
        [],
        [helper.make_tensor_value_info("y", TensorProto.INT4, [10, 100])],
        [init],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    loaded = load_model(model)
    assert loaded.size_bytes - serialized_size(model) == 500


def test_opcosts_knows_the_ml_ops_without_the_sklearn_plugin() -> None:
    from ei_widgets.profiling import op_costs

    for op in ("TreeEnsembleClassifier", "LinearRegressor", "SVMClassifier", "Scaler"):
        assert op_costs.has_rule(op, op_costs.ML_DOMAIN)
    node = helper.make_node(
        "LinearRegressor", ["x"], ["y"], domain="ai.onnx.ml", coefficients=[1.0] * 8
    )
    assert op_costs.node_cost(node, [(4, 8)], [(4, 1)]) == op_costs.OpCost(2 * 32 + 4, 32, True)
