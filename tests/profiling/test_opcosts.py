"""opcosts: FLOPs and MACs per op from shapes and attributes."""

from __future__ import annotations

import onnx
import pytest
from onnx import helper

from ei_widgets.profiling import op_costs
from ei_widgets.profiling.op_costs import OpCost, has_rule, node_cost, register_cost


def cost(op: str, ins: list, outs: list, domain: str = "", **attrs: object) -> OpCost:
    node = helper.make_node(op, [f"i{k}" for k in range(len(ins))], ["y"], domain=domain, **attrs)
    return node_cost(node, ins, outs)


def test_conv_counts_macs_twice_plus_bias() -> None:
    # 16 output channels of 8x8, from 3 input channels with a 3x3 kernel
    c = cost("Conv", [(1, 3, 10, 10), (16, 3, 3, 3), (16,)], [(1, 16, 8, 8)])
    macs = 16 * 8 * 8 * 3 * 3 * 3
    assert c == OpCost(2 * macs + 16 * 8 * 8, macs, True)
    no_bias = cost("Conv", [(1, 3, 10, 10), (16, 3, 3, 3)], [(1, 16, 8, 8)])
    assert no_bias.flops == 2 * macs


def test_grouped_and_depthwise_conv() -> None:
    # depthwise: weight (C, 1, k, k), each output reads one channel
    c = cost("Conv", [(2, 32, 16, 16), (32, 1, 3, 3)], [(2, 32, 16, 16)], group=32)
    assert c.macs == 2 * 32 * 16 * 16 * 9


def test_conv_transpose() -> None:
    # every input element scatters into Cout/group * k*k outputs
    c = cost("ConvTranspose", [(1, 8, 4, 4), (8, 4, 2, 2)], [(1, 4, 8, 8)])
    assert c.macs == 8 * 4 * 4 * 4 * 2 * 2
    assert c.flops == 2 * c.macs


def test_gemm_with_transposes_and_bias() -> None:
    c = cost("Gemm", [(5, 7), (3, 7), (3,)], [(5, 3)], transB=1)
    assert (c.macs, c.flops) == (5 * 3 * 7, 2 * 5 * 3 * 7 + 15)
    t = cost("Gemm", [(7, 5), (7, 3)], [(5, 3)], transA=1)
    assert t.macs == 5 * 3 * 7


@pytest.mark.parametrize(
    ("a", "b", "y", "macs"),
    [
        ((4, 6), (6, 5), (4, 5), 4 * 5 * 6),
        ((2, 3, 4, 6), (6, 5), (2, 3, 4, 5), 2 * 3 * 4 * 5 * 6),  # broadcast weight
        ((6,), (6, 5), (5,), 5 * 6),  # vector times matrix
        ((4, 6), (6,), (4,), 4 * 6),  # matrix times vector
    ],
)
def test_matmul(a: tuple, b: tuple, y: tuple, macs: int) -> None:
    assert cost("MatMul", [a, b], [y]) == OpCost(2 * macs, macs, True)


def test_einsum_contraction_and_ellipsis() -> None:
    assert cost("Einsum", [(4, 6), (6, 5)], [(4, 5)], equation="ij,jk->ik").macs == 4 * 6 * 5
    batched = cost("Einsum", [(2, 4, 6), (2, 6, 5)], [(2, 4, 5)], equation="...ij,...jk->...ik")
    assert batched.macs == 2 * 4 * 6 * 5
    assert cost("Einsum", [(3, 3)], [(3,)], equation="ii->i").macs == 3  # one index: the diagonal


def test_attention_opset_23() -> None:
    b, h, s, d = 2, 4, 10, 16
    c = cost("Attention", [(b, h, s, d), (b, h, s, d), (b, h, s, d)], [(b, h, s, d)])
    assert c.macs == b * h * s * s * (d + d)
    assert c.flops == 2 * c.macs + 5 * b * h * s * s
    flat = cost("Attention", [(b, s, h * d)] * 3, [(b, s, h * d)], q_num_heads=h, kv_num_heads=h)
    assert flat == c


def test_contrib_attention_includes_the_projection() -> None:
    b, s, d, h = 1, 8, 32, 4
    c = cost("Attention", [(b, s, d), (d, 3 * d)], [(b, s, d)], domain="com.microsoft", num_heads=h)
    assert c.macs == b * s * d * 3 * d + b * h * s * s * 2 * (d // h)


def test_gru_and_rnn() -> None:
    seq, batch, i, h = 5, 2, 8, 16
    gru = cost("GRU", [(seq, batch, i), (1, 3 * h, i), (1, 3 * h, h)], [(seq, 1, batch, h)])
    steps = seq * batch
    assert gru.macs == steps * 3 * h * (i + h)
    assert gru.flops == 2 * gru.macs + steps * h * 20
    rnn = cost("RNN", [(seq, batch, i), (2, h, i), (2, h, h), (2, 2 * h)], [(seq, 2, batch, h)])
    assert rnn.macs == 2 * steps * h * (i + h)
    assert rnn.flops == 2 * rnn.macs + 2 * steps * 2 * h + 2 * steps * h * 6


@pytest.mark.parametrize(
    ("op", "per_element"),
    [
        ("Relu", 1),
        ("Add", 1),
        ("Sigmoid", 4),
        ("Tanh", 5),
        ("Softmax", 5),
        ("Erf", 1),
        ("LayerNormalization", 7),
        ("BatchNormalization", 2),
    ],
)
def test_per_element_ops(op: str, per_element: int) -> None:
    assert cost(op, [(2, 3, 4)], [(2, 3, 4)]) == OpCost(per_element * 24, 0, True)


def test_variadic_sum_counts_each_extra_operand() -> None:
    assert cost("Sum", [(10,), (10,), (10,)], [(10,)]).flops == 20
    assert cost("Max", [(10,), (10,)], [(10,)]).flops == 10


def test_pooling_and_reductions() -> None:
    pool = cost("MaxPool", [(1, 8, 8, 8)], [(1, 8, 4, 4)], kernel_shape=[3, 3])
    assert pool.flops == 8 * 4 * 4 * 9
    assert cost("GlobalAveragePool", [(1, 8, 7, 7)], [(1, 8, 1, 1)]).flops == 8 * 49
    assert cost("ReduceMean", [(4, 10)], [(4, 1)]).flops == 40
    assert cost("ReduceSumSquare", [(4, 10)], [(4, 1)]).flops == 80


def test_data_movement_costs_nothing_but_is_known() -> None:
    for op in ("Reshape", "Transpose", "Concat", "Gather", "Identity", "Shape"):
        assert cost(op, [(4, 4)], [(16,)]) == OpCost(0, 0, True)


def test_resize_modes() -> None:
    nearest = cost("Resize", [(1, 3, 4, 4)], [(1, 3, 8, 8)], mode="nearest")
    linear = cost("Resize", [(1, 3, 4, 4)], [(1, 3, 8, 8)], mode="linear")
    assert nearest.flops == 0
    assert linear.flops == 2 * 4 * 3 * 64


def test_unknown_op_and_missing_shapes() -> None:
    assert cost("Mystery", [(4,)], [(4,)], domain="com.example") == OpCost(0, 0, False)
    assert cost("Conv", [(1, 3, 8, 8), None], [(1, 4, 6, 6)]) == OpCost(0, 0, False)
    assert not has_rule("Mystery", "com.example")
    assert has_rule("Conv") and has_rule("Conv", "ai.onnx")


def test_register_cost_for_a_custom_op() -> None:
    def rule(node: onnx.NodeProto, ins: op_costs.Shapes, outs: op_costs.Shapes) -> tuple[int, int]:
        return 7, 3

    register_cost("Magic", rule, domain="com.example")
    try:
        assert cost("Magic", [(1,)], [(1,)], domain="com.example") == OpCost(7, 3, True)
    finally:
        op_costs._RULES.pop(("com.example", "Magic"))
