"""FLOPs and multiply-accumulates (MACs) per ONNX op type, from shapes and attributes alone.

The rules are a table keyed by ``(domain, op_type)``. Each rule receives the node, the concrete
shapes of its inputs and outputs (``None`` where a shape is unknown or an optional input is
absent) and returns ``(flops, macs)``, or ``None`` when the shapes it needs are missing.

Conventions, chosen so small models can be checked by hand:

- A multiply-accumulate counts as 2 FLOPs (Conv, ConvTranspose, Gemm, MatMul, Einsum, attention and
  recurrent ops). A bias add counts 1 FLOP per output element on top.
- Elementwise, activation, normalisation, pooling and reduction ops cost a fixed number of FLOPs per
  element (tables below: per output element for elementwise ops, per input element for reductions,
  per output element and kernel tap for windowed pooling).
- Data movement (Reshape, Transpose, Gather, Concat, ...) costs 0 FLOPs; its bytes still count.
- An op with no rule is *unknown*: the profile counts it as 0 and lists it.

The standard ops, onnxruntime's common contrib ops (``com.microsoft``) and the ``ai.onnx.ml`` ops
that skl2onnx emits have rules here. Extra rules (for other contrib or custom ops) can be added
with :func:`register_cost`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import onnx

Shape = tuple[int, ...]
Shapes = Sequence[Shape | None]
CostRule = Callable[[onnx.NodeProto, Shapes, Shapes], "tuple[int, int] | None"]

ONNX_DOMAINS = frozenset({"", "ai.onnx"})
MS_DOMAIN = "com.microsoft"
ML_DOMAIN = "ai.onnx.ml"


@dataclass(frozen=True)
class OpCost:
    """The compute cost of one node; ``known`` is False without a rule or without shapes."""

    flops: int
    macs: int
    known: bool


def names(text: str) -> list[str]:
    """Op names from a whitespace-separated block (keeps long tables readable)."""
    return text.split()


# FLOPs per output element of elementwise ops (binary arithmetic and comparisons count 1).
ELEMENTWISE_FLOPS: dict[str, int] = {
    **dict.fromkeys(
        names(
            """Add Sub Mul Div Mod Neg Abs Sign Floor Ceil Round Reciprocal Equal Less LessOrEqual
            Greater GreaterOrEqual And Or Xor Not Where BitShift BitwiseAnd BitwiseOr BitwiseXor
            BitwiseNot IsNaN IsInf Relu PRelu LeakyRelu ThresholdedRelu Clip Shrink Sqrt Exp Log
            Pow Erf Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh Acosh Atanh"""
        ),
        1,
    ),
    "HardSigmoid": 3,  # mul, add, clamp
    "HardSwish": 4,  # hard sigmoid, mul
    "Elu": 3,
    "Celu": 3,
    "Selu": 4,
    "Softsign": 3,  # abs, add, div
    "Softplus": 3,  # exp, add, log
    "Sigmoid": 4,  # neg, exp, add, div
    "Tanh": 5,
    "Mish": 8,  # softplus, tanh, mul
    "Gelu": 8,  # erf form: div, erf, add, mul, mul (+ tanh form about the same)
    "FastGelu": 8,
    "BiasGelu": 9,
    "QuickGelu": 5,
    "BiasAdd": 2,
}
# Variadic ops: FLOPs per output element per extra operand.
VARIADIC_FLOPS: dict[str, int] = {"Sum": 1, "Mean": 1, "Max": 1, "Min": 1}

# FLOPs per element of normalisations (inference mode).
NORMALISATION_FLOPS: dict[str, int] = {
    "BatchNormalization": 2,  # y = x * a + b, with a and b folded from scale, mean and variance
    "InstanceNormalization": 7,  # mean, centre, square, sum, rsqrt-scale, scale, shift
    "LayerNormalization": 7,
    "SimplifiedLayerNormalization": 4,  # square, sum, scale, weight (RMS norm)
    "SkipLayerNormalization": 8,  # skip add + layer norm
    "SkipSimplifiedLayerNormalization": 5,
    "GroupNormalization": 7,
    "MeanVarianceNormalization": 6,
    "LpNormalization": 3,
    "LRN": 6,
    "Softmax": 5,  # max, subtract, exp, sum, divide
    "LogSoftmax": 5,
    "Hardmax": 1,
}
# FLOPs per *input* element of reductions.
REDUCTION_FLOPS: dict[str, int] = {
    "ReduceSum": 1,
    "ReduceMean": 1,
    "ReduceMax": 1,
    "ReduceMin": 1,
    "ReduceProd": 1,
    "ReduceL1": 2,
    "ReduceL2": 2,
    "ReduceSumSquare": 2,
    "ReduceLogSum": 1,
    "ReduceLogSumExp": 2,
    "ArgMax": 1,
    "ArgMin": 1,
    "GlobalAveragePool": 1,
    "GlobalMaxPool": 1,
    "GlobalLpPool": 2,
    "CumSum": 1,
}
# FLOPs per output element and kernel tap of windowed pooling.
POOL_FLOPS: dict[str, int] = {"MaxPool": 1, "AveragePool": 1, "LpPool": 2}
# Ops that move or describe data without arithmetic.
ZERO_FLOP_OPS: frozenset[str] = frozenset(
    names(
        """Reshape Transpose Flatten Squeeze Unsqueeze Concat Split Slice Gather GatherElements
        GatherND Scatter ScatterElements ScatterND Identity Dropout Shape Size Expand Tile Pad Cast
        CastLike Constant ConstantOfShape DepthToSpace SpaceToDepth Range OneHot EyeLike Trilu
        NonZero Compress ReverseSequence SplitToSequence ConcatFromSequence SequenceAt
        SequenceConstruct SequenceEmpty SequenceLength SequenceInsert SequenceErase Optional
        OptionalGetElement OptionalHasElement Unique TopK MaxUnpool RandomNormal RandomUniform
        RandomNormalLike RandomUniformLike Multinomial Bernoulli CenterCropPad QuantizeLinear
        DequantizeLinear DynamicQuantizeLinear"""
    )
)

_RULES: dict[tuple[str, str], CostRule] = {}


def _norm_domain(domain: str) -> str:
    return "" if domain in ONNX_DOMAINS else domain


def register_cost(op_type: str, rule: CostRule, *, domain: str = "") -> None:
    """Add or replace the cost rule of ``domain.op_type`` (for contrib or custom ops)."""
    _RULES[(_norm_domain(domain), op_type)] = rule


def has_rule(op_type: str, domain: str = "") -> bool:
    """Whether a cost rule exists for the op (a node of this type can still lack shapes)."""
    return (_norm_domain(domain), op_type) in _RULES


def rule_for(op_type: str, domain: str = "") -> CostRule | None:
    """The cost rule of an op, or None (for callers that look it up once per node)."""
    return _RULES.get(("" if domain in ONNX_DOMAINS else domain, op_type))


def node_cost(node: onnx.NodeProto, in_shapes: Shapes, out_shapes: Shapes) -> OpCost:
    """FLOPs and MACs of ``node`` at the given concrete shapes."""
    domain = node.domain
    rule = _RULES.get(("" if domain in ONNX_DOMAINS else domain, node.op_type))
    if rule is None:
        return OpCost(0, 0, known=False)
    result = rule(node, in_shapes, out_shapes)
    if result is None:
        return OpCost(0, 0, known=False)
    return OpCost(int(result[0]), int(result[1]), known=True)


# ----------------------------------------------------------------------------------------------
# helpers


def numel(shape: Shape) -> int:
    """Element count of a concrete shape (1 for a scalar)."""
    return math.prod(shape)


_A = onnx.AttributeProto


def attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
    """The value of a node attribute (ints, floats, strings, lists), or ``default``."""
    for a in node.attribute:
        if a.name == name:
            return _attribute_value(a)
    return default


def _attribute_value(a: onnx.AttributeProto) -> object:
    """What ``onnx.helper.get_attribute_value`` returns, read directly for the common scalar
    and list types (the helper costs several times more; pooling and Gemm rules read one per
    node)."""
    kind = a.type
    if a.ref_attr_name:  # a function's reference attribute: the helper raises for it
        return onnx.helper.get_attribute_value(a)
    if kind == _A.INT:
        return a.i
    if kind == _A.INTS:
        return list(a.ints)
    if kind == _A.FLOAT:
        return a.f
    if kind == _A.STRING:
        return a.s
    return onnx.helper.get_attribute_value(a)


def _get(shapes: Shapes, i: int) -> Shape | None:
    return shapes[i] if i < len(shapes) else None


def _present(shapes: Shapes, i: int) -> bool:
    return _get(shapes, i) is not None


# ----------------------------------------------------------------------------------------------
# rules for ops with multiply-accumulates


def _conv(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    w = ins[1] if len(ins) > 1 else None
    y = outs[0] if outs else None
    if w is None or y is None:
        return None
    # Each output element accumulates over Cin/group input channels times the kernel window.
    size = math.prod(y)
    macs = size * math.prod(w[1:])
    bias = size if len(ins) > 2 and ins[2] is not None else 0
    return 2 * macs + bias, macs


def _conv_transpose(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    x, w, y = _get(ins, 0), _get(ins, 1), _get(outs, 0)
    if x is None or w is None or y is None:
        return None
    # Every input element is scattered into Cout/group channels times the kernel window.
    macs = numel(x) * numel(w[1:])
    bias = numel(y) if _present(ins, 2) else 0
    return 2 * macs + bias, macs


def _gemm(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    a, y = _get(ins, 0), _get(outs, 0)
    if a is None or y is None or len(a) != 2:
        return None
    k = a[0] if attr(node, "transA", 0) else a[1]
    macs = numel(y) * k
    bias = numel(y) if _present(ins, 2) else 0
    return 2 * macs + bias, macs


def _matmul(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    a, y = _get(ins, 0), _get(outs, 0)
    if a is None or y is None or len(a) == 0:
        return None
    macs = numel(y) * a[-1]  # every output element is a dot product over A's last axis
    return 2 * macs, macs


def _fused_matmul(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    a, y = _get(ins, 0), _get(outs, 0)
    if a is None or y is None or len(a) < 2:
        return None
    k = a[-2] if attr(node, "transA", 0) else a[-1]
    macs = numel(y) * k
    return 2 * macs, macs


def _einsum(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    equation = attr(node, "equation")
    if not isinstance(equation, bytes | str):
        return None
    text = equation.decode() if isinstance(equation, bytes) else equation
    operands = text.replace(" ", "").split("->")[0].split(",")
    if len(operands) != len(ins):
        return None
    sizes: dict[str, int] = {}
    for letters, shape in zip(operands, ins, strict=True):
        if shape is None:
            return None
        labels = _einsum_labels(letters, len(shape))
        if labels is None:
            return None
        for label, size in zip(labels, shape, strict=True):
            sizes[label] = max(size, sizes.get(label, 1))  # ellipsis axes broadcast
    # A naive contraction visits every combination of all indices once per extra operand.
    macs = math.prod(sizes.values()) * max(1, len(ins) - 1)
    return 2 * macs, macs


def _einsum_labels(letters: str, rank: int) -> list[str] | None:
    """Index labels of one operand; ellipsis axes get names aligned from the right."""
    if "..." not in letters:
        return list(letters) if len(letters) == rank else None
    head, tail = letters.split("...", 1)
    n_ellipsis = rank - len(head) - len(tail)
    if n_ellipsis < 0:
        return None
    return [*head, *(f"...{n_ellipsis - i}" for i in range(n_ellipsis)), *tail]


def _attention_core(batch_heads: int, q_len: int, kv_len: int, qk_dim: int, v_dim: int) -> int:
    """MACs of softmax(Q K^T) V for one (batch x heads) block set."""
    return batch_heads * q_len * kv_len * (qk_dim + v_dim)


def _attention(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    """ai.onnx Attention (opset 23): Q, K, V as (B, H, S, D) or (B, S, H*D)."""
    q, k, v = _get(ins, 0), _get(ins, 1), _get(ins, 2)
    if q is None or k is None or v is None:
        return None
    if len(q) == 4:
        batch, heads, q_len, qk_dim = q
        kv_len, v_dim = k[-2], v[-1]
    elif len(q) == 3:
        heads = _int_attr(node, "q_num_heads", 1)
        kv_heads = _int_attr(node, "kv_num_heads", heads)
        batch, q_len, hidden = q
        kv_len, qk_dim, v_dim = k[1], hidden // heads, v[2] // kv_heads
    else:
        return None
    macs = _attention_core(batch * heads, q_len, kv_len, qk_dim, v_dim)
    softmax = batch * heads * q_len * kv_len * NORMALISATION_FLOPS["Softmax"]
    return 2 * macs + softmax, macs


def _int_attr(node: onnx.NodeProto, name: str, default: int) -> int:
    value = attr(node, name, default)
    return value if isinstance(value, int) and value > 0 else default


def _ms_attention(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    """com.microsoft Attention: input (B, S, D_in), packed QKV weights (D_in, 3 * D)."""
    x, w = _get(ins, 0), _get(ins, 1)
    if x is None or w is None or len(x) != 3:
        return None
    b, s, d_in = x
    heads = _int_attr(node, "num_heads", 1)
    hidden = w[1] // 3
    projection = b * s * d_in * w[1]
    macs = projection + _attention_core(b * heads, s, s, hidden // heads, hidden // heads)
    softmax = b * heads * s * s * NORMALISATION_FLOPS["Softmax"]
    bias = b * s * w[1] if _present(ins, 2) else 0
    return 2 * macs + softmax + bias, macs


def _ms_mha(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    """com.microsoft MultiHeadAttention with separate, already projected Q, K, V (B, S, H*D)."""
    q, k, v = _get(ins, 0), _get(ins, 1), _get(ins, 2)
    if q is None or k is None or v is None or len(q) != 3:
        return None
    heads = _int_attr(node, "num_heads", 1)
    b, sq, hidden = q
    skv = k[-2] if len(k) == 4 else k[1]
    v_hidden = v[-1] * (v[1] if len(v) == 4 else 1)
    macs = _attention_core(b * heads, sq, skv, hidden // heads, v_hidden // heads)
    softmax = b * heads * sq * skv * NORMALISATION_FLOPS["Softmax"]
    return 2 * macs + softmax, macs


# Elementwise FLOPs per hidden unit and time step of a recurrent cell, besides the matrix products:
# adding the input and recurrent products of each gate, the gate activations and the state update.
#   LSTM: 4 gate sums + 3 sigmoids (4 each) + 2 tanh (5 each) + c = f*c + i*g (3)
#         + h = o*tanh(c) (1)
#   GRU:  3 gate sums + 2 sigmoids (4 each) + 1 tanh (5) + r*h (1) + h = (1-z)*n + z*h (3)
#   RNN:  1 gate sum + 1 tanh (5)
RECURRENT_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
RECURRENT_CELL_FLOPS = {"LSTM": 4 + 12 + 10 + 3 + 1, "GRU": 3 + 8 + 5 + 1 + 3, "RNN": 1 + 5}


def _recurrent(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    """LSTM, GRU, RNN: X (seq, batch, input), W (dirs, gates*H, input), R (dirs, gates*H, H)."""
    x, w, r = _get(ins, 0), _get(ins, 1), _get(ins, 2)
    if x is None or w is None or r is None:
        return None
    if attr(node, "layout", 0):
        batch, seq = x[0], x[1]
    else:
        seq, batch = x[0], x[1]
    dirs, gates_h, input_size = w
    hidden = r[2]
    steps = dirs * seq * batch
    macs = steps * gates_h * (input_size + hidden)
    bias = steps * 2 * gates_h if _present(ins, 3) else 0  # Wb and Rb, one add each
    cell = steps * hidden * RECURRENT_CELL_FLOPS[node.op_type]
    return 2 * macs + bias + cell, macs


# ----------------------------------------------------------------------------------------------
# per-element rules


def _per_output(flops_per_element: int) -> CostRule:
    # The most frequent rule: kept free of helper calls.
    def rule(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
        y = outs[0] if outs else None
        return None if y is None else (flops_per_element * math.prod(y), 0)

    return rule


def _variadic(flops_per_element: int) -> CostRule:
    def rule(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
        y = _get(outs, 0)
        if y is None:
            return None
        extra = max(1, len(ins) - 1)  # Max/Min with two inputs cost one op per element
        return flops_per_element * extra * numel(y), 0

    return rule


def _per_input(flops_per_element: int) -> CostRule:
    def rule(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
        x = _get(ins, 0)
        return None if x is None else (flops_per_element * numel(x), 0)

    return rule


def _pool(flops_per_tap: int) -> CostRule:
    def rule(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
        y = _get(outs, 0)
        kernel = attr(node, "kernel_shape")
        if y is None or not isinstance(kernel, list):
            return None
        return flops_per_tap * numel(y) * math.prod(kernel), 0

    return rule


def _zero(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    return 0, 0


def _resize(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    y = _get(outs, 0)
    if y is None:
        return None
    mode = attr(node, "mode", b"nearest")
    spatial = max(0, len(y) - 2)
    # Linear interpolation blends 2 taps per spatial axis (multiply and add each), cubic 4.
    taps = {b"nearest": 0, b"linear": 2**spatial, b"cubic": 4**spatial}.get(
        mode if isinstance(mode, bytes) else b"linear", 2**spatial
    )
    return 2 * taps * numel(y), 0


# ----------------------------------------------------------------------------------------------
# ai.onnx.ml operators (what skl2onnx emits for scikit-learn models)
#
# Same conventions: a multiply-accumulate is 2 FLOPs; a tree node visit (compare and branch) is
# 1; per-element transforms are a few FLOPs per element.


def _ml_rows(shape: Shape) -> int:
    return (shape[0] if len(shape) >= 2 else 1) or 1


def _ml_list(node: onnx.NodeProto, name: str) -> list[object]:
    value = attr(node, name)
    return value if isinstance(value, list) else []


def _linear(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    x = _get(ins, 0)
    coefficients = _ml_list(node, "coefficients")
    if x is None or not coefficients:
        return None
    rows = _ml_rows(x)
    macs = rows * len(coefficients)  # features x targets (or classes) per row
    targets = max(1, len(_ml_list(node, "intercepts")))
    return 2 * macs + rows * targets, macs


def _svm(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    x = _get(ins, 0)
    if x is None:
        return None
    rows = _ml_rows(x)
    features = x[-1] if x else 1
    support = len(_ml_list(node, "support_vectors"))
    coefficients = len(_ml_list(node, "coefficients"))
    if support:
        vectors = support // max(1, features)
        macs = rows * vectors * features + rows * coefficients  # kernel, then the dual sum
        return 2 * macs + rows * vectors * 4, macs  # the kernel function per vector
    macs = rows * coefficients
    return 2 * macs, macs


def _trees(node: onnx.NodeProto, ins: Shapes, outs: Shapes) -> tuple[int, int] | None:
    """Each row visits one root-to-leaf path per tree: mean path length from the node lists."""
    x = _get(ins, 0)
    if x is None:
        return None
    rows = _ml_rows(x)
    tree_ids = attr(node, "nodes_treeids")
    if not isinstance(tree_ids, list):  # ai.onnx.ml opset 5 TreeEnsemble
        trees = max(1, len(_ml_list(node, "tree_roots")))
        splits = len(_ml_list(node, "nodes_featureids"))
        depth = max(1.0, _mean_depth(splits / trees))
        return rows * round(trees * depth), 0
    trees = len(set(tree_ids)) or 1
    splits = sum(1 for m in _ml_list(node, "nodes_modes") if m not in (b"LEAF", "LEAF"))
    depth = max(1.0, _mean_depth(splits / trees))
    return rows * round(trees * (depth + 1)), 0  # the splits on the path, then the leaf


def _mean_depth(splits_per_tree: float) -> float:
    """Path length of a balanced tree with this many split nodes (log2 of its leaves)."""
    return math.log2(splits_per_tree + 1) if splits_per_tree > 0 else 0.0


def _ml_rules() -> dict[str, CostRule]:
    return {
        "LinearClassifier": _linear,
        "LinearRegressor": _linear,
        "SVMClassifier": _svm,
        "SVMRegressor": _svm,
        "TreeEnsembleClassifier": _trees,
        "TreeEnsembleRegressor": _trees,
        "TreeEnsemble": _trees,
        "Scaler": _per_input(2),
        "Normalizer": _per_input(3),
        "Binarizer": _per_input(1),
        "Imputer": _per_input(1),
        "OneHotEncoder": _per_output(1),
        "LabelEncoder": _per_input(1),
        "CategoryMapper": _per_input(1),
        "ArrayFeatureExtractor": _zero,
        "FeatureVectorizer": _zero,
        "ZipMap": _zero,
        "DictVectorizer": _zero,
    }


def _install_defaults() -> None:
    mac_rules: dict[str, CostRule] = {
        "Conv": _conv,
        "ConvInteger": _conv,
        "QLinearConv": _conv,
        "ConvTranspose": _conv_transpose,
        "Gemm": _gemm,
        "MatMul": _matmul,
        "MatMulInteger": _matmul,
        "QLinearMatMul": _matmul,
        "Einsum": _einsum,
        "Attention": _attention,
        "LSTM": _recurrent,
        "GRU": _recurrent,
        "RNN": _recurrent,
    }
    for op, rule in mac_rules.items():
        register_cost(op, rule)
    for op, flops in ELEMENTWISE_FLOPS.items():
        register_cost(op, _per_output(flops))
    for op, flops in VARIADIC_FLOPS.items():
        register_cost(op, _variadic(flops))
    for op, flops in NORMALISATION_FLOPS.items():
        register_cost(op, _per_output(flops))
    for op, flops in REDUCTION_FLOPS.items():
        register_cost(op, _per_input(flops))
    for op, flops in POOL_FLOPS.items():
        register_cost(op, _pool(flops))
    for op in ZERO_FLOP_OPS:
        register_cost(op, _zero)
    register_cost("Resize", _resize)
    register_cost("Upsample", _resize)
    # onnxruntime contrib ops that exporters and optimisers emit often.
    ms_rules: dict[str, CostRule] = {
        "Attention": _ms_attention,
        "MultiHeadAttention": _ms_mha,
        "FusedMatMul": _fused_matmul,
        "FusedConv": _conv,
        "Gelu": _per_output(ELEMENTWISE_FLOPS["Gelu"]),
        "FastGelu": _per_output(ELEMENTWISE_FLOPS["FastGelu"]),
        "BiasGelu": _per_output(ELEMENTWISE_FLOPS["BiasGelu"]),
        "QuickGelu": _per_output(ELEMENTWISE_FLOPS["QuickGelu"]),
        "BiasAdd": _per_output(ELEMENTWISE_FLOPS["BiasAdd"]),
        "SkipLayerNormalization": _per_output(NORMALISATION_FLOPS["SkipLayerNormalization"]),
        "SkipSimplifiedLayerNormalization": _per_output(
            NORMALISATION_FLOPS["SkipSimplifiedLayerNormalization"]
        ),
        "SimplifiedLayerNormalization": _per_output(
            NORMALISATION_FLOPS["SimplifiedLayerNormalization"]
        ),
        "LayerNormalization": _per_output(NORMALISATION_FLOPS["LayerNormalization"]),
    }
    for op, rule in ms_rules.items():
        register_cost(op, rule, domain=MS_DOMAIN)
    for op, rule in _ml_rules().items():
        register_cost(op, rule, domain=ML_DOMAIN)


_install_defaults()
