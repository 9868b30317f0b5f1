"""Small ONNX models built in code, for tests across the project.

Every builder returns an ``onnx.ModelProto`` whose parameters and FLOPs can be derived by hand
(see the docstrings). Weights are small random initializers; the batch dimension is symbolic
(``"N"``) unless a number is given.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ei_widgets.profiling.result import NodeCost, ParamGroup, Profile, TensorInfo

OPSET = 17
FLOAT = TensorProto.FLOAT
_rng = np.random.default_rng(0)

Dim = int | str


def _weight(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(_rng.standard_normal(shape).astype(np.float32), name)


def _ints(name: str, values: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _filled(shape: str, output: str, value: float, name: str) -> onnx.NodeProto:
    """``ConstantOfShape``: a float tensor of the shape held in ``shape``, every element
    ``value``."""
    fill = helper.make_tensor("fill", FLOAT, [1], [value])
    return helper.make_node("ConstantOfShape", [shape], [output], name=name, value=fill)


def _model(graph: onnx.GraphProto, opset: int = OPSET) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.producer_name = "tests.models"
    return model


def _graph(
    nodes: list[onnx.NodeProto],
    name: str,
    x: list[Dim],
    y: list[Dim],
    inits: Sequence[onnx.TensorProto] = (),
    *,
    y_name: str = "y",
    elem_type: int = FLOAT,
) -> onnx.GraphProto:
    """A graph with one input ``x`` and one output (``y`` unless named), both ``elem_type``."""
    return helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", elem_type, x)],
        [helper.make_tensor_value_info(y_name, elem_type, y)],
        inits,
    )


def tiny(batch: Dim = "N") -> onnx.ModelProto:
    """``x[N, 16] @ w[16, 8]`` then Relu: the smallest model worth running (per-call overheads).

    Parameters: 128. FLOPs at batch B: 2*B*16*8 (MatMul) + B*8 (Relu). The weights are the same
    on every call, so two copies of it compute the same outputs.
    """
    weights = np.random.default_rng(16).standard_normal((16, 8)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="matmul"),
        helper.make_node("Relu", ["h"], ["y"], name="relu"),
    ]
    graph = _graph(nodes, "tiny", [batch, 16], [batch, 8], [numpy_helper.from_array(weights, "w")])
    return _model(graph)


def mlp(sizes: tuple[int, ...] = (784, 256, 128, 10), batch: Dim = "N") -> onnx.ModelProto:
    """MatMul + Add (+ Relu between layers) per layer, Softmax at the end.

    Parameters: sum(i*o + o). FLOPs at batch B: per layer 2*B*i*o (MatMul) + B*o (Add),
    + B*o (Relu) except the last layer, + 5*B*o_last (Softmax).
    """
    nodes, inits = [], []
    x = "x"
    for k, (i, o) in enumerate(itertools.pairwise(sizes)):
        inits += [_weight(f"w{k}", i, o), _weight(f"b{k}", o)]
        nodes.append(helper.make_node("MatMul", [x, f"w{k}"], [f"mm{k}"], name=f"matmul{k}"))
        nodes.append(helper.make_node("Add", [f"mm{k}", f"b{k}"], [f"add{k}"], name=f"add{k}"))
        x = f"add{k}"
        if k < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [x], [f"relu{k}"], name=f"relu{k}"))
            x = f"relu{k}"
    nodes.append(helper.make_node("Softmax", [x], ["y"], name="softmax", axis=-1))
    graph = _graph(nodes, "mlp", [batch, sizes[0]], [batch, sizes[-1]], inits)
    return _model(graph)


def transformer_block(
    d_model: int = 64, heads: int = 4, d_ff: int = 256, batch: Dim = "N", seq: Dim = "S"
) -> onnx.ModelProto:
    """A pre-norm encoder block: LayerNorm, multi-head self-attention, LayerNorm, MLP.

    Parameters: 4*(d*d + d) (Q, K, V, O) + 2*2*d (two LayerNorms) + d*f + f + f*d + d.
    FLOPs at batch B, sequence S (T = B*S tokens, h heads, e = d/h):
      LayerNorm 7*T*d each (two); Q, K, V, O projections 2*T*d*d + T*d (bias) each;
      scores Q K^T 2*B*h*S*S*e; scale (Div) B*h*S*S; Softmax 5*B*h*S*S; context 2*B*h*S*S*e;
      residual adds T*d each (two); MLP 2*T*d*f + T*f + T*f (Relu) + 2*T*f*d + T*d.
    """
    e = d_model // heads
    d, f = d_model, d_ff
    inits = [
        _weight("ln1_scale", d),
        _weight("ln1_bias", d),
        _weight("ln2_scale", d),
        _weight("ln2_bias", d),
        _weight("w1", d, f),
        _weight("b1", f),
        _weight("w2", f, d),
        _weight("b2", d),
        _ints("heads_shape", [0, 0, heads, e]),
        _ints("merge_shape", [0, 0, d]),
        numpy_helper.from_array(np.array(np.sqrt(e), dtype=np.float32), "scale"),
    ]
    nodes = [
        helper.make_node(
            "LayerNormalization", ["x", "ln1_scale", "ln1_bias"], ["ln1"], name="ln1", axis=-1
        )
    ]
    for p in "qkvo":
        inits += [_weight(f"w{p}", d, d), _weight(f"b{p}", d)]
    for p in "qkv":
        nodes += [
            helper.make_node("MatMul", ["ln1", f"w{p}"], [f"{p}_mm"], name=f"{p}_proj"),
            helper.make_node("Add", [f"{p}_mm", f"b{p}"], [f"{p}_flat"], name=f"{p}_bias"),
            helper.make_node(
                "Reshape", [f"{p}_flat", "heads_shape"], [f"{p}_4d"], name=f"{p}_split"
            ),
        ]
    nodes += [
        helper.make_node("Transpose", ["q_4d"], ["q"], perm=[0, 2, 1, 3], name="q_t"),
        helper.make_node("Transpose", ["k_4d"], ["kT"], perm=[0, 2, 3, 1], name="k_t"),
        helper.make_node("Transpose", ["v_4d"], ["v"], perm=[0, 2, 1, 3], name="v_t"),
        helper.make_node("MatMul", ["q", "kT"], ["scores"], name="scores"),
        helper.make_node("Div", ["scores", "scale"], ["scaled"], name="scale"),
        helper.make_node("Softmax", ["scaled"], ["probs"], axis=-1, name="softmax"),
        helper.make_node("MatMul", ["probs", "v"], ["ctx_h"], name="context"),
        helper.make_node("Transpose", ["ctx_h"], ["ctx_t"], perm=[0, 2, 1, 3], name="ctx_t"),
        helper.make_node("Reshape", ["ctx_t", "merge_shape"], ["ctx"], name="merge"),
        helper.make_node("MatMul", ["ctx", "wo"], ["o_mm"], name="o_proj"),
        helper.make_node("Add", ["o_mm", "bo"], ["attn"], name="o_bias"),
        helper.make_node("Add", ["x", "attn"], ["res1"], name="residual1"),
        helper.make_node(
            "LayerNormalization", ["res1", "ln2_scale", "ln2_bias"], ["ln2"], axis=-1, name="ln2"
        ),
        helper.make_node("MatMul", ["ln2", "w1"], ["ff1_mm"], name="ff1"),
        helper.make_node("Add", ["ff1_mm", "b1"], ["ff1"], name="ff1_bias"),
        helper.make_node("Relu", ["ff1"], ["ff1_act"], name="ff1_relu"),
        helper.make_node("MatMul", ["ff1_act", "w2"], ["ff2_mm"], name="ff2"),
        helper.make_node("Add", ["ff2_mm", "b2"], ["ff2"], name="ff2_bias"),
        helper.make_node("Add", ["res1", "ff2"], ["y"], name="residual2"),
    ]
    graph = _graph(nodes, "transformer_block", [batch, seq, d], [batch, seq, d], inits)
    return _model(graph)


def lstm(
    seq: Dim = 10, batch: Dim = "N", input_size: int = 16, hidden: int = 32, bias: bool = True
) -> onnx.ModelProto:
    """One unidirectional LSTM layer, X (seq, batch, input).

    Parameters: 4H*I + 4H*H (+ 8H bias). FLOPs (steps = seq * batch):
    2 * steps * 4H * (I + H) for the products, + steps * 8H for the two biases,
    + steps * H * 30 for the cell (4 gate sums, 3 sigmoids at 4, 2 tanh at 5, 3 for the cell
    state, 1 for the output).
    """
    h = hidden
    inits = [_weight("W", 1, 4 * h, input_size), _weight("R", 1, 4 * h, h)]
    inputs = ["X", "W", "R"]
    if bias:
        inits.append(_weight("B", 1, 8 * h))
        inputs.append("B")
    node = helper.make_node("LSTM", inputs, ["Y", "Y_h"], hidden_size=h, name="lstm")
    graph = helper.make_graph(
        [node],
        "lstm",
        [helper.make_tensor_value_info("X", FLOAT, [seq, batch, input_size])],
        [
            helper.make_tensor_value_info("Y", FLOAT, [seq, 1, batch, h]),
            helper.make_tensor_value_info("Y_h", FLOAT, [1, batch, h]),
        ],
        inits,
    )
    return _model(graph)


def tiny_convnet(batch: Dim = "N", size: int = 32, classes: int = 10) -> onnx.ModelProto:
    """Conv(3->8, 3x3, pad 1) + Relu + MaxPool 2x2 + Conv(8->16, 3x3) + GlobalAveragePool +
    Flatten + Gemm(16 -> classes).

    MACs at batch B: B*8*s*s*27 + B*16*(s/2-2)^2*72 + B*16*classes.
    """
    s2 = size // 2 - 2
    inits = [
        _weight("c1_w", 8, 3, 3, 3),
        _weight("c1_b", 8),
        _weight("c2_w", 16, 8, 3, 3),
        _weight("c2_b", 16),
        _weight("fc_w", classes, 16),
        _weight("fc_b", classes),
    ]
    nodes = [
        helper.make_node(
            "Conv",
            ["x", "c1_w", "c1_b"],
            ["c1"],
            pads=[1, 1, 1, 1],
            kernel_shape=[3, 3],
            name="conv1",
        ),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node(
            "MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"
        ),
        helper.make_node("Conv", ["p1", "c2_w", "c2_b"], ["c2"], kernel_shape=[3, 3], name="conv2"),
        helper.make_node("GlobalAveragePool", ["c2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], transB=1, name="fc"),
    ]
    graph = _graph(nodes, "tiny_convnet", [batch, 3, size, size], [batch, classes], inits)
    assert s2 > 0
    return _model(graph)


def folded_weights(batch: Dim = "N") -> onnx.ModelProto:
    """Weights made inside the graph: a ``Constant`` shape feeding ``ConstantOfShape`` (a 32x16
    weight), and a ``Constant`` 16x8 weight transposed by a folded ``Transpose``.

    Parameters: 32*16 + 8*16 = 640 floats; the int64 shape vector is not a parameter.
    """
    shape = helper.make_tensor("w1_shape_value", TensorProto.INT64, [2], [32, 16])
    w2 = numpy_helper.from_array(_rng.standard_normal((8, 16)).astype(np.float32), "w2_value")
    nodes = [
        helper.make_node("Constant", [], ["w1_shape"], value=shape, name="w1_shape"),
        _filled("w1_shape", "w1", 0.02, name="w1"),
        helper.make_node("Constant", [], ["w2_t"], value=w2, name="w2_const"),
        helper.make_node("Transpose", ["w2_t"], ["w2"], perm=[1, 0], name="w2_transpose"),
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node("MatMul", ["h", "w2"], ["y"], name="fc2"),
    ]
    graph = _graph(nodes, "folded_weights", [batch, 32], [batch, 8])
    return _model(graph)


def chain(n_nodes: int, width: int = 64, batch: Dim = 1) -> onnx.ModelProto:
    """A long chain of ``n_nodes`` nodes (MatMul, Add, Relu repeating) sharing one weight, for
    scaling tests. FLOPs: each MatMul 2*B*w*w, each Add and Relu B*w."""
    inits = [_weight("w", width, width), _weight("b", width)]
    nodes = []
    x = "x"
    for i in range(n_nodes):
        kind = i % 3
        out = f"t{i}"
        if kind == 0:
            nodes.append(helper.make_node("MatMul", [x, "w"], [out], name=f"n{i}"))
        elif kind == 1:
            nodes.append(helper.make_node("Add", [x, "b"], [out], name=f"n{i}"))
        else:
            nodes.append(helper.make_node("Relu", [x], [out], name=f"n{i}"))
        x = out
    graph = _graph(nodes, "chain", [batch, width], [batch, width], inits, y_name=x)
    return _model(graph)


def custom_op(domain: str = "com.example") -> onnx.ModelProto:
    """Relu, then an op from a domain nobody knows, then Relu."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="before"),
        helper.make_node("Mystery", ["a"], ["b"], domain=domain, name="mystery"),
        helper.make_node("Relu", ["b"], ["y"], name="after"),
    ]
    graph = _graph(nodes, "custom", ["N", 8], ["N", 8])
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(domain, 1)]
    )


def cyclic() -> onnx.ModelProto:
    """Two nodes reading each other's output: not a DAG."""
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
    ]
    graph = _graph(nodes, "cyclic", [1, 4], [1, 4], y_name="b")
    return _model(graph)


def huge_constant(elements_per_axis: int = 10**6) -> onnx.ModelProto:
    """A ``ConstantOfShape`` declaring elements_per_axis**2 floats (10^12 by default)."""
    nodes = [
        _filled("shape", "w", 0.0, name="huge"),
        helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
    ]
    graph = _graph(
        nodes,
        "huge",
        [1, elements_per_axis],
        [1, elements_per_axis],
        [_ints("shape", [elements_per_axis, elements_per_axis])],
    )
    return _model(graph)


def big_profile(param_bytes: int) -> Profile:
    """A one-Conv profile with ``param_bytes`` of weights, made directly (no graph): for fit
    checks that need a model of a chosen size without building one."""
    conv = NodeCost(
        "c", "Conv", "", 10**9, 5 * 10**8, param_bytes, 1000, param_bytes, ((1, 8),), True
    )
    return Profile(
        name="big",
        inputs=(TensorInfo("x", "float32", (1, 8)),),
        outputs=(TensorInfo("y", "float32", (1, 8)),),
        opsets={"": 17},
        producer="t",
        node_count=1,
        op_histogram={"Conv": 1},
        params=(ParamGroup("float32", param_bytes // 4, param_bytes),),
        nodes=(conv,),
        peak_activation_bytes=1000,
        model_size_bytes=param_bytes,
        unknown_ops=(),
        batch_size=1,
        bound_inputs={"x": (1, 8)},
    )


def integer_only() -> onnx.ModelProto:
    """No float tensor at all: fp16 has nothing to convert."""
    graph = _graph(
        [helper.make_node("Add", ["x", "x"], ["y"])],
        "ints",
        ["N", 4],
        ["N", 4],
        elem_type=TensorProto.INT64,
    )
    return _model(graph)
