"""profile(): reference figures on real architectures and exact FLOPs on hand-built models."""

from __future__ import annotations

import itertools
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ei_widgets.models.demo import demo_model, demo_models
from ei_widgets.profiling.graph_order import topological_order
from ei_widgets.profiling.profiler import profile
from ei_widgets.profiling.result import NodeCost, OpTypeTotal, Profile
from tests import builders

# Element counts of the floating-point weights (shape tensors excluded), and Conv+Gemm MACs
# published for the same torchvision architectures.
REFERENCE = {
    "resnet50": (25_610_153, 4.089e9),
    "vgg19": (143_667_240, 19.632e9),
    "squeezenet": (1_235_496, 0.349e9),
    "densenet121": (8_146_152, 2.834e9),
}


def conv_gemm_macs(p: Profile) -> int:
    return sum(n.macs for n in p.nodes if n.op_type in ("Conv", "Gemm"))


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_parameters_and_macs(name: str) -> None:
    params, macs = REFERENCE[name]
    p = profile(demo_model(name))
    assert p.param_count == params
    assert p.param_bytes == 4 * params
    assert [g.dtype for g in p.params] == ["float32"]
    assert conv_gemm_macs(p) == pytest.approx(macs, rel=0.01)
    assert p.unknown_ops == ()
    assert p.warnings == ()


def test_all_demo_models_profile_completely() -> None:
    for name, path in demo_models().items():
        p = profile(path)
        assert p.complete
        assert p.node_count == len(onnx.load(path).graph.node)
        assert p.flops > 2 * conv_gemm_macs(p) > 0, name
        assert all(n.known for n in p.nodes), name
        assert p.model_size_bytes == path.stat().st_size
        assert p.peak_activation_bytes > 0


def test_weights_from_constant_of_shape_are_folded_not_run() -> None:
    p = profile(demo_model("vgg19"))
    cos = [n for n in p.nodes if n.op_type == "ConstantOfShape"]
    assert len(cos) == p.op_histogram["ConstantOfShape"] == 36
    assert all(n.folded and n.flops == 0 and n.bytes_read == 0 for n in cos)
    first_conv = next(n for n in p.nodes if n.op_type == "Conv")
    # conv1_1: 64x3x3x3 weight and 64 bias, read as parameters (float32)
    assert first_conv.param_bytes == 4 * (64 * 3 * 3 * 3 + 64)
    assert first_conv.output_shapes == ((1, 64, 224, 224),)
    assert first_conv.macs == 64 * 224 * 224 * 27


def test_description_of_a_light_model() -> None:
    p = profile(demo_model("resnet50"))
    assert p.opsets == {"": 9}
    assert p.producer.startswith("onnx-caffe2")
    assert [i.name for i in p.inputs] == ["gpu_0/data_0"]  # initializers are not inputs
    assert p.inputs[0].dtype == "float32"
    assert p.inputs[0].shape == (1, 3, 224, 224)
    assert p.batch_size == 1
    assert p.op_histogram["Conv"] == 53
    assert sum(p.op_histogram.values()) == p.node_count == 415


# ----------------------------------------------------------------------------------------------
# hand-derived FLOPs


def test_mlp_flops_exact() -> None:
    b, sizes = 3, (784, 256, 128, 10)
    p = profile(builders.mlp(sizes), batch_size=b)
    layers = list(itertools.pairwise(sizes))
    expected = sum(2 * b * i * o + b * o for i, o in layers)  # MatMul + bias Add
    expected += sum(b * o for _, o in layers[:-1])  # Relu
    expected += 5 * b * sizes[-1]  # Softmax
    assert p.flops == expected
    assert p.macs == sum(b * i * o for i, o in layers)
    assert p.param_count == sum(i * o + o for i, o in layers)
    assert p.bound_inputs == {"x": (b, 784)}
    assert p.batch_size == b


def test_mlp_bytes_per_node() -> None:
    p = profile(builders.mlp((8, 4, 2)), batch_size=5)
    mm = next(n for n in p.nodes if n.name == "matmul0")
    assert mm.bytes_read == 4 * (5 * 8 + 8 * 4)
    assert mm.param_bytes == 4 * 8 * 4
    assert mm.bytes_written == 4 * 5 * 4
    add = next(n for n in p.nodes if n.name == "add0")
    assert (add.bytes_read, add.param_bytes, add.bytes_written) == (4 * (20 + 4), 16, 80)


def test_transformer_block_flops_exact() -> None:
    b, s, d, h, f = 2, 12, 64, 4, 256
    p = profile(builders.transformer_block(d, h, f), batch_size=b, input_shapes={"S": s})
    t, e = b * s, d // h
    expected = (
        2 * 7 * t * d  # two LayerNorms
        + 4 * (2 * t * d * d + t * d)  # Q, K, V, O projections with bias
        + 2 * b * h * s * s * e  # Q K^T
        + b * h * s * s  # scale
        + 5 * b * h * s * s  # softmax
        + 2 * b * h * s * s * e  # probs V
        + 2 * t * d  # two residual adds
        + 2 * t * d * f
        + t * f
        + t * f  # MLP up, bias, Relu
        + 2 * t * f * d
        + t * d  # MLP down, bias
    )
    assert p.flops == expected
    by_op = {row.op_type: row for row in p.by_op_type()}
    assert by_op["Softmax"].flops == 5 * b * h * s * s
    assert by_op["LayerNormalization"].count == 2
    assert by_op["Reshape"].flops == 0 and by_op["Reshape"].bytes_read > 0
    # 4 projections, 2 LayerNorms, the MLP, and the scalar attention scale (a float constant)
    assert p.param_count == 4 * (d * d + d) + 4 * d + d * f + f + f * d + d + 1


def test_lstm_flops_exact() -> None:
    seq, b, i, h = 7, 3, 16, 32
    p = profile(builders.lstm(seq=seq, input_size=i, hidden=h), batch_size=b)
    steps = seq * b
    assert p.macs == steps * 4 * h * (i + h)
    assert p.flops == 2 * p.macs + steps * 8 * h + steps * h * 30
    assert p.param_count == 4 * h * i + 4 * h * h + 8 * h
    (node,) = p.nodes
    assert node.output_shapes == ((seq, 1, b, h), (1, b, h))


def test_lstm_without_bias() -> None:
    p = profile(builders.lstm(seq=4, input_size=8, hidden=8, bias=False), batch_size=1)
    assert p.flops == 2 * 4 * 32 * 16 + 4 * 8 * 30


def test_tiny_convnet_macs_exact() -> None:
    b, s = 2, 32
    p = profile(builders.tiny_convnet(size=s), batch_size=b)
    conv1, conv2, fc = (next(n for n in p.nodes if n.name == k) for k in ("conv1", "conv2", "fc"))
    assert conv1.macs == b * 8 * s * s * 27
    assert conv1.flops == 2 * conv1.macs + b * 8 * s * s  # + bias
    assert conv2.macs == b * 16 * 14 * 14 * 72
    assert fc.macs == b * 16 * 10
    pool = next(n for n in p.nodes if n.op_type == "MaxPool")
    assert pool.flops == b * 8 * 16 * 16 * 4


def test_constant_and_folded_subgraph_weights_are_parameters() -> None:
    p = profile(builders.folded_weights(), batch_size=4)
    assert p.param_count == 32 * 16 + 8 * 16  # the int64 shape vector is not a parameter
    folded = {n.name for n in p.nodes if n.folded}
    assert folded == {"w1_shape", "w1", "w2_const", "w2_transpose"}
    assert p.flops == 2 * 4 * (32 * 16 + 16 * 8)
    fc2 = next(n for n in p.nodes if n.name == "fc2")
    assert fc2.param_bytes == 4 * 16 * 8


# ----------------------------------------------------------------------------------------------
# shapes and binding


def test_batch_size_scales_activations_not_weights() -> None:
    one = profile(builders.mlp(), batch_size=1)
    eight = profile(builders.mlp(), batch_size=8)
    assert eight.param_count == one.param_count
    assert eight.flops == 8 * one.flops
    assert eight.peak_activation_bytes == 8 * one.peak_activation_bytes
    for a, b in zip(one.nodes, eight.nodes, strict=True):
        assert a.param_bytes == b.param_bytes


def test_symbolic_dimensions_are_kept_by_name() -> None:
    p = profile(builders.transformer_block(), batch_size=2, input_shapes={"S": 5})
    assert p.inputs[0].shape == ("N", "S", 64)
    assert p.outputs[0].shape == ("N", "S", 64)
    assert p.bound_inputs == {"x": (2, 5, 64)}


def test_explicit_input_shape_wins() -> None:
    p = profile(builders.transformer_block(), input_shapes={"x": (3, 7, 64)})
    assert p.bound_inputs == {"x": (3, 7, 64)}
    assert p.nodes[-1].output_shapes == ((3, 7, 64),)


def test_unbound_dimension_is_reported_not_guessed() -> None:
    p = profile(builders.transformer_block(), batch_size=2)
    assert any("'S'" in w and "input_shapes" in w for w in p.warnings)
    assert "MatMul" in p.unknown_ops
    assert p.bound_inputs == {}


def test_fixed_batch_is_kept_with_a_warning() -> None:
    p = profile(demo_model("squeezenet"), batch_size=4)
    assert p.batch_size == 1
    assert any("fixed batch of 1" in w for w in p.warnings)


def test_batch_named_dimension_is_bound_everywhere() -> None:
    # (seq, batch, input): the dimension named "batch" is bound, not the first axis
    p = profile(builders.lstm(seq=5, batch="batch"), batch_size=3)
    assert p.bound_inputs == {"X": (5, 3, 16)}


# ----------------------------------------------------------------------------------------------
# order, liveness and tables


def test_unsorted_graph_is_sorted() -> None:
    model = builders.mlp((8, 4, 2))
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    order = [n.name for n in topological_order(model.graph)]
    assert order == [n.name for n in nodes]
    assert (
        profile(model, batch_size=2).flops == profile(builders.mlp((8, 4, 2)), batch_size=2).flops
    )


def test_peak_activation_is_liveness_not_sum() -> None:
    # A chain of 30 same-sized tensors: at most the input of a node and its output are live.
    p = profile(builders.chain(30, width=16), batch_size=1)
    tensor = 4 * 16
    assert p.peak_activation_bytes == 2 * tensor
    assert sum(n.bytes_written for n in p.nodes) == 30 * tensor


def test_peak_activation_keeps_branches_alive() -> None:
    # y = x + relu(relu(x)): x stays live across the branch, so three tensors are live at once
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="a"),
        helper.make_node("Relu", ["a"], ["b"], name="b"),
        helper.make_node("Add", ["x", "b"], ["y"], name="y"),
    ]
    graph = helper.make_graph(
        nodes,
        "residual",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 16])],
    )
    p = profile(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert p.peak_activation_bytes == 3 * 4 * 16


def test_tables() -> None:
    p = profile(builders.tiny_convnet(), batch_size=1)
    rows = p.node_table()
    assert [r["name"] for r in rows] == [n.name for n in p.nodes]
    assert rows[0]["op_type"] == "Conv" and rows[0]["output_shapes"] == "(1, 8, 32, 32)"
    assert sum(float(r["flops_share"]) for r in rows) == pytest.approx(1.0)  # type: ignore[arg-type]
    totals = p.by_op_type()
    assert all(isinstance(t, OpTypeTotal) for t in totals)
    assert totals[0].op_type == "Conv" and totals[0].count == 2
    assert sum(t.flops for t in totals) == p.flops
    top = p.heaviest(2)
    assert [n.name for n in top] == ["conv2", "conv1"]
    assert all(isinstance(n, NodeCost) for n in top)
    assert p.heaviest(0) == []


def test_model_sources_agree(tmp_path: object) -> None:
    model = builders.mlp((8, 4, 2), batch=1)
    from_proto = profile(model)
    from_bytes = profile(model.SerializeToString())
    assert from_bytes.flops == from_proto.flops
    assert from_bytes.model_size_bytes == len(model.SerializeToString())
    assert from_proto.model_size_bytes == pytest.approx(from_bytes.model_size_bytes, rel=0.05)
    assert from_proto.kind == "onnx-model" and from_bytes.kind == "onnx-bytes"


def test_params_by_dtype() -> None:
    model = builders.mlp((8, 4), batch=1)
    w = model.graph.initializer[0]
    half = onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(w).astype("float16"), "w0")
    model.graph.initializer[0].CopyFrom(half)
    cast = onnx.helper.make_node("Cast", ["w0"], ["w0_f"], to=onnx.TensorProto.FLOAT)
    model.graph.node.insert(0, cast)
    model.graph.node[1].input[1] = "w0_f"
    p = profile(model)
    groups = {g.dtype: (g.count, g.bytes) for g in p.params}
    # the Cast of a constant is folded: its float32 output is the weight the MatMul reads
    assert groups == {"float32": (8 * 4 + 4, 4 * (8 * 4 + 4))}
    assert math.isclose(p.param_bytes, 4 * 36)


def test_control_flow_reads_outer_weights_and_is_listed() -> None:
    then_branch = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", onnx.TensorProto.FLOAT, None)],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", onnx.TensorProto.FLOAT, None)],
    )
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0, name="sum"),
        helper.make_node("Greater", ["s", "zero"], ["c"], name="test"),
        helper.make_node(
            "If", ["c"], ["y"], then_branch=then_branch, else_branch=else_branch, name="branch"
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "control_flow",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [
            onnx.numpy_helper.from_array(np.ones((4, 4), np.float32), "w"),
            onnx.numpy_helper.from_array(np.array(0, np.float32), "zero"),
        ],
    )
    p = profile(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert p.param_count == 16 + 1  # w is read inside the branch
    assert p.unknown_ops == ("If",)
    assert any("If (1)" in w for w in p.warnings)
    # x stays live until the If, which reads it from inside its branches: at the If, x (16 bytes),
    # the condition (1) and the output (16) are live; the sum (4) was freed after the test
    assert p.peak_activation_bytes == 16 + 1 + 16


def test_shapes_computed_at_run_time_are_followed() -> None:
    # flatten as exporters write it: Reshape(x, Concat(Shape(x)[0:1], [-1])) then a MatMul
    i64 = onnx.TensorProto.INT64
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Slice", ["shape", "zero", "one"], ["batch"], name="batch"),
        helper.make_node("Concat", ["batch", "minus_one"], ["target"], axis=0, name="target"),
        helper.make_node("Reshape", ["x", "target"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "w"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "flatten",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 5])],
        [
            helper.make_tensor("zero", i64, [1], [0]),
            helper.make_tensor("one", i64, [1], [1]),
            helper.make_tensor("minus_one", i64, [1], [-1]),
            onnx.numpy_helper.from_array(np.ones((32, 5), np.float32), "w"),
        ],
    )
    p = profile(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), batch_size=3)
    fc = next(n for n in p.nodes if n.name == "fc")
    assert fc.output_shapes == ((3, 5),)
    assert fc.macs == 3 * 32 * 5
    assert p.param_count == 32 * 5  # the int64 vectors are shape data, not parameters
    assert p.unknown_ops == ()


def test_shape_inference_sees_the_bound_input_shapes() -> None:
    """A Reshape to (-1,) has a concrete size only once the batch is bound: inference must run
    on the bound inputs, not the model's symbolic ones."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "flat"], ["y"], name="flatten")],
        "reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("flat", TensorProto.INT64, [1], [-1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    p = profile(model, batch_size=3)
    (node,) = p.nodes
    assert node.output_shapes == ((12,),)
    assert node.bytes_written == 4 * 12
    assert not p.warnings
