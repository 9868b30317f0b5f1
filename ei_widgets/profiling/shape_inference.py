"""Shape inference for the profiler: every tensor's element type and shape, then its size.

onnx's own shape inference (with data propagation where the graph computes shapes) runs on a slim
copy of the model: large initializers and large ``Constant`` node values become typed graph
inputs, so nothing big is serialized and external data is never read. Where it gives up,
onnxruntime's symbolic shape inference and a few pass-through rules (elementwise ops, matrix
products) fill the gaps. Symbolic input dimensions bound by the caller are bound wherever they
appear. Tensors larger than :data:`MAX_TENSOR_ELEMENTS` are refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass, field
from operator import attrgetter

import onnx

from ei_widgets.errors import ModelLoadError, ProfileError
from ei_widgets.models import dtypes
from ei_widgets.models.types import LoadedModel
from ei_widgets.profiling import op_costs
from ei_widgets.profiling.graph_order import Node
from ei_widgets.profiling.op_costs import ONNX_DOMAINS

Dim = int | str | None
"""A tensor dimension: a number, a symbolic name kept as written in the model, or unknown."""
TypeInfo = tuple[int, "tuple[Dim, ...] | None"]
"""An element type and a shape (None when the rank itself is unknown)."""
NO_TYPE: TypeInfo = (0, None)

MAX_TENSOR_ELEMENTS = 10**11
"""Larger tensors are refused: no model runs with them, and naive tools would try to allocate."""

SMALL_CONSTANT_ELEMENTS = 4096
"""Initializers and Constant values up to this size keep their values for shape inference (shape
vectors, axes, scales); larger ones are passed to it as typed declarations only."""

_T = onnx.TensorProto
_DOMAIN = attrgetter("domain")
# Ops whose first output has the broadcast shape of their inputs, used where inference gives up.
_PASS_THROUGH = frozenset(op_costs.ELEMENTWISE_FLOPS) | frozenset(op_costs.NORMALISATION_FLOPS)
_MATMULS = frozenset({"MatMul", "FusedMatMul", "MatMulInteger"})


def concrete(shape: tuple[Dim, ...] | None) -> tuple[int, ...] | None:
    if shape is None:
        return None
    for d in shape:
        if d.__class__ is not int or d < 0:  # type: ignore[operator,unused-ignore]
            return None
    return shape  # type: ignore[return-value]


def format_shape(shape: tuple[Dim, ...] | None) -> str:
    """``(1, 3, 224, 224)`` style, with ``?`` for unknown dimensions and names kept."""
    if shape is None:
        return "?"
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def format_shapes(shapes: Iterable[tuple[Dim, ...] | None]) -> str:
    """Several shapes, comma separated (a node's outputs)."""
    return ", ".join(format_shape(s) for s in shapes)


def type_of(tp: onnx.TypeProto) -> TypeInfo:
    if not tp.HasField("tensor_type"):
        return _T.UNDEFINED, None
    tt = tp.tensor_type
    if not tt.HasField("shape"):
        return tt.elem_type, None
    dims: list[Dim] = []
    for d in tt.shape.dim:
        value = d.dim_value
        if value > 0:
            dims.append(value)
        elif d.dim_param:
            name = d.dim_param
            if name.__class__ is bytes:  # protobuf hands invalid UTF-8 back as bytes
                raise ModelLoadError(f"Dimension name {name!r} is not valid UTF-8.")
            dims.append(name)
        else:
            dims.append(0 if d.HasField("dim_value") else None)
    return tt.elem_type, tuple(dims)


def large_constants(order: list[Node]) -> dict[str, TypeInfo]:
    """Outputs of ``Constant`` nodes too large to keep for shape inference, and their types
    (like large initializers, they go to it as typed declarations: nothing big is copied)."""
    large: dict[str, TypeInfo] = {}
    for node in order:
        if node.op_type != "Constant" or node.domain not in ONNX_DOMAINS or not node.output:
            continue
        info = _constant_type(node.proto)
        if info is not None and math.prod(info[1]) > SMALL_CONSTANT_ELEMENTS:
            large[node.output[0]] = info
    return large


@dataclass
class ShapeInference:
    """One inference run over an ordered graph. ``types`` (initializers and large constants
    typed already) is completed in place; :meth:`run` then fills ``shapes`` and ``nbytes``
    (None where a shape stays unknown) and appends to ``warnings``."""

    loaded: LoadedModel
    order: list[Node]
    types: dict[str, TypeInfo]
    _: KW_ONLY
    bound: dict[str, TypeInfo]  # the real inputs, bound to concrete shapes where asked
    declared: dict[str, TypeInfo]  # the same inputs as the model declares them
    initializers: dict[str, onnx.TensorProto]
    small_initializers: set[str]  # initializers whose values inference may read
    large_constants: dict[str, TypeInfo]  # Constant outputs passed as typed declarations
    dim_values: dict[str, int]  # symbolic dimension name -> the size bound to it
    read_anywhere: set[str]
    in_order: bool  # the graph's own node order is topological
    inputs_bound: bool  # every input has a concrete shape
    computes_shapes: bool  # Shape or Size nodes: data propagation may help
    warnings: list[str]
    shapes: dict[str, tuple[int, ...] | None] = field(default_factory=dict, init=False)
    nbytes: dict[str, int | None] = field(default_factory=dict, init=False)

    @property
    def model(self) -> onnx.ModelProto:
        return self.loaded.model

    def run(self) -> None:
        self._infer(self.order, self.bound)

    # -- shape inference --------------------------------------------------------------------

    def _infer(self, order: list[Node], bound: dict[str, TypeInfo]) -> None:
        self.types.update(bound)
        if order:
            as_is = self._usable_as_is(order, bound)
            self._run_onnx_inference(self.model if as_is else self._slim_model(order, bound))
            self._sizes()
            missing = self._missing(order)
            if missing:
                self._fill_missing(self._slim_model(order, bound), order, missing)
                self._sizes()
        else:
            self._sizes()

    def _usable_as_is(self, order: list[Node], bound: dict[str, TypeInfo]) -> bool:
        """Whether onnx's inference can read the model itself rather than a slim copy: nodes
        already in order, inputs left as declared, no weights worth keeping out, every domain
        imported. Serializing the model in C then costs less than copying it in Python."""
        if not self.in_order:
            return False
        if self.declared != bound:
            return False
        if len(self.small_initializers) < len(self.initializers) or self.large_constants:
            return False
        imported = {imp.domain for imp in self.model.opset_import} | {"", "ai.onnx"}
        return all(node.domain in imported for node in order)

    def _sizes(self) -> None:
        """Concrete shapes and byte sizes of every typed tensor; absurd sizes are refused."""
        shapes: dict[str, tuple[int, ...] | None] = {}
        nbytes: dict[str, int | None] = {}
        known: dict[TypeInfo, tuple[tuple[int, ...] | None, int | None]] = {}  # repeated types
        for name, info in self.types.items():
            hit = known.get(info)
            if hit is not None:
                shapes[name], nbytes[name] = hit
                continue
            elem, shape = info
            fixed = concrete(shape)
            shapes[name] = fixed
            if fixed is None:
                nbytes[name] = None
                known[info] = (None, None)
                continue
            count = math.prod(fixed)
            if count > MAX_TENSOR_ELEMENTS:
                raise ProfileError(
                    f"Tensor {name!r} would have shape {fixed} ({count:.3g} elements), more "
                    f"than {MAX_TENSOR_ELEMENTS:.0e}: no model can run with it. Check the model "
                    "and the input shapes or batch size."
                )
            nbytes[name] = dtypes.nbytes(elem, count)
            known[info] = (fixed, nbytes[name])
        self.shapes = shapes
        self.nbytes = nbytes

    def _slim_model(self, order: list[Node], bound: dict[str, TypeInfo]) -> onnx.ModelProto:
        """A copy of the model for shape inference that holds no large tensor."""
        m = self.model
        large = self.large_constants
        small = self.small_initializers
        slim = onnx.ModelProto()
        domains = set(map(_DOMAIN, order))
        if self.in_order and not large and len(small) == len(self.initializers):
            # Nothing big to leave out: a parsed copy (in C) costs far less than copying the
            # nodes one by one; only inputs, outputs and value_info are rewritten below.
            slim.ParseFromString(self.loaded.serialized or m.SerializeToString())
            g = slim.graph  # only now: parsing replaces the graph message
            del g.input[:]
            del g.output[:]
            del g.value_info[:]
            _bound_inputs(g, bound)
        else:
            g = slim.graph
            _bound_inputs(g, bound)
            slim.opset_import.extend(m.opset_import)
            if m.functions:
                slim.functions.extend(m.functions)
            g.name = m.graph.name
            for name, t in self.initializers.items():
                if name in small:
                    g.initializer.append(t)
                else:
                    _declare(g, name, *self.types[name])
            for name, (elem, shape) in large.items():
                _declare(g, name, elem, shape)
            g.node.extend(
                node.proto
                for node in order
                if not (node.op_type == "Constant" and node.output and node.output[0] in large)
            )
        slim.ir_version = max(m.ir_version, 4)  # lets initializers stay out of the inputs
        # A domain used without an opset import stops onnx's inference for the whole graph;
        # declaring it lets the inference skip just those nodes.
        imported = {imp.domain for imp in m.opset_import}
        for domain in sorted(domains - imported - {"", "ai.onnx"}):
            slim.opset_import.append(onnx.helper.make_opsetid(domain, 1))
        custom_outputs = (
            {o for n in order if n.domain not in ONNX_DOMAINS for o in n.output}
            if not domains <= ONNX_DOMAINS
            else set()
        )
        for v in m.graph.value_info if custom_outputs else ():
            if v.name not in custom_outputs:
                continue
            # What the exporter wrote for ops onnx does not know, with input sizes bound
            info = type_of(v.type)
            elem, shape = self._bind_names(info)
            if shape is info[1]:
                g.value_info.append(v)
            else:
                g.value_info.append(onnx.helper.make_tensor_value_info(v.name, elem, shape))
        for out in m.graph.output:
            # Declared output shapes may hold the export's batch; let inference bind them afresh.
            elem = out.type.tensor_type.elem_type if out.type.HasField("tensor_type") else 0
            g.output.append(onnx.helper.make_tensor_value_info(out.name, elem, None))
        return slim

    def _run_onnx_inference(self, slim: onnx.ModelProto) -> None:
        inferred = None
        # The bytes the model was read from, when at hand, spare serializing it once more.
        given: onnx.ModelProto | bytes = slim
        if slim is self.model and self.loaded.serialized is not None:
            given = self.loaded.serialized
        # Data propagation follows shapes computed at run time (Shape -> Gather -> Concat ->
        # Reshape); constants are read without it, so it is only paid for where it can help.
        attempts = (True, False) if self.computes_shapes else (False,)
        for data_prop in attempts:
            try:
                inferred = onnx.shape_inference.infer_shapes(
                    given, check_type=False, strict_mode=False, data_prop=data_prop
                )
                break
            except Exception as exc:  # onnx raises several types; any failure falls back
                error = exc
        if inferred is None:
            self.warnings.append(f"onnx shape inference failed ({error}); shapes are partial.")
            return
        self._merge(inferred.graph)

    def _merge(self, graph: onnx.GraphProto, only: set[str] | None = None) -> None:
        types = self.types
        # Most tensors share a handful of types; decoding (and binding) each distinct one once,
        # keyed by its serialized bytes (cheap, in C), is several times faster than doing so
        # for every tensor.
        decoded: dict[bytes, TypeInfo] = {}
        for group in (graph.value_info, graph.output):
            for v in group:
                name = v.name
                if only is not None and name not in only:
                    continue
                old = types.get(name)
                if old is not None and concrete(old[1]) is not None:
                    continue  # a bound input or an initializer: already exact
                tp = v.type
                key = tp.SerializeToString()
                info = decoded.get(key)
                if info is None:
                    info = decoded[key] = self._bind_names(type_of(tp))
                if old is None or info[1] is not None:
                    types[name] = info

    def _bind_names(self, info: TypeInfo) -> TypeInfo:
        """Replace symbolic dimensions bound at the inputs by their sizes."""
        elem, shape = info
        if shape is None or not self.dim_values:
            return info
        if not any(d.__class__ is str for d in shape):
            return info
        values = self.dim_values
        return elem, tuple(values.get(d, d) if isinstance(d, str) else d for d in shape)

    def _missing(self, order: list[Node]) -> set[str]:
        """Tensors that are read (or are outputs) but have no concrete shape."""
        shapes = self.shapes
        unknown = {name for name, shape in shapes.items() if shape is None}
        return (self.read_anywhere - shapes.keys()) | (self.read_anywhere & unknown)

    def _fill_missing(self, slim: onnx.ModelProto, order: list[Node], missing: set[str]) -> None:
        """Where onnx's inference gave up: try onnxruntime's, then pass-through rules."""
        if self._ort_may_help(order, missing):
            self._ort_symbolic(slim, missing)
        for _ in range(3):
            self._sizes()
            missing = self._missing(order)
            added = self._pass_through(order, missing)
            if not added:
                break
            del slim.graph.value_info[:]
            for name in added:
                elem, shape = self.types[name]
                slim.graph.value_info.append(onnx.helper.make_tensor_value_info(name, elem, shape))
            self._run_onnx_inference(slim)

    def _ort_may_help(self, order: list[Node], missing: set[str]) -> bool:
        """Whether onnx gave up on a node onnxruntime might know: a standard or com.microsoft
        op whose inputs all have shapes (other domains only fail, and an open input dimension
        cannot be bound by any inference)."""
        if not self.inputs_bound:
            return False
        types = self.types
        return any(
            (node.domain in op_costs.ONNX_DOMAINS or node.domain == op_costs.MS_DOMAIN)
            and any(o in missing for o in node.output)
            and all(concrete(types.get(x, (0, None))[1]) is not None for x in node.input if x)
            for node in order
        )

    def _ort_symbolic(self, slim: onnx.ModelProto, missing: set[str]) -> None:
        try:
            from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
        except ImportError:
            return
        # The loop of SymbolicShapeInference.infer_shapes, without its last step: on a partial
        # result that one writes the model to a file in the working directory and raises.
        try:
            engine = SymbolicShapeInference(2**31 - 1, True, False, 0)
            engine._preprocess(slim)
            while engine.run_:
                engine._infer_impl()
            engine._update_output_from_vi()
            inferred = engine.out_mp_
        except Exception:  # it raises on ops it does not know; onnx's result stands
            return
        self._merge(inferred.graph, only=missing)

    def _pass_through(self, order: list[Node], missing: set[str]) -> list[str]:
        """Hand rules for what no inference knew: elementwise and normalisation ops (any
        domain) take the broadcast shape of their inputs, matrix products the product's shape."""
        added: list[str] = []
        for node in order:
            out = node.output[0] if node.output else ""
            if out not in missing:
                continue
            shapes = [concrete(self.types.get(x, (0, None))[1]) for x in node.input if x]
            if not shapes or any(s is None for s in shapes):
                continue
            fixed = [s for s in shapes if s is not None]
            shape = _rule_shape(node, fixed)
            if shape is None:
                continue
            elem = self.types.get(node.input[0], (_T.FLOAT, None))[0]
            self.types[out] = (elem, shape)
            added.append(out)
        return added


_CONSTANT_LISTS = {
    "value_floats": (_T.FLOAT, "floats"),
    "value_ints": (_T.INT64, "ints"),
    "value_strings": (_T.STRING, "strings"),
}


def _constant_type(node: onnx.NodeProto) -> tuple[int, tuple[int, ...]] | None:
    """The type of a ``Constant`` node's output, read from its attribute without copying it."""
    for a in node.attribute:
        if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
            return a.t.data_type, tuple(a.t.dims)
        if a.name == "sparse_value" and a.type == onnx.AttributeProto.SPARSE_TENSOR:
            return a.sparse_tensor.values.data_type, tuple(a.sparse_tensor.dims)
        if a.name in _CONSTANT_LISTS:
            elem, field_name = _CONSTANT_LISTS[a.name]
            return elem, (len(getattr(a, field_name)),)
    return None


def _bound_inputs(g: onnx.GraphProto, bound: dict[str, TypeInfo]) -> None:
    for name, (elem, shape) in bound.items():
        g.input.append(onnx.helper.make_tensor_value_info(name, elem, shape))


def _declare(g: onnx.GraphProto, name: str, elem: int, shape: tuple[Dim, ...] | None) -> None:
    """A typed graph input standing for a tensor whose values shape inference never needs
    (built field by field: ``helper.make_tensor_value_info`` costs several times more)."""
    tensor_type = g.input.add(name=name).type.tensor_type
    tensor_type.elem_type = elem
    if shape is None:
        return
    dims = tensor_type.shape.dim
    for d in shape:
        if isinstance(d, int):
            dims.add(dim_value=d)
        elif d:
            dims.add(dim_param=d)
        else:
            dims.add()


def _rule_shape(node: Node, shapes: list[tuple[int, ...]]) -> tuple[int, ...] | None:
    try:
        if node.op_type in _PASS_THROUGH:
            return _broadcast(shapes)
        if node.op_type in _MATMULS and len(shapes) >= 2:
            trans_a = op_costs.attr(node.proto, "transA", 0) == 1
            trans_b = op_costs.attr(node.proto, "transB", 0) == 1
            return _matmul_shape(shapes[0], shapes[1], trans_a, trans_b)
    except ValueError:
        return None
    return None


def _matmul_shape(
    a: tuple[int, ...], b: tuple[int, ...], trans_a: bool, trans_b: bool
) -> tuple[int, ...]:
    """numpy.matmul's result shape, with the last two axes of either side optionally swapped."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("matrix products of vectors are left to onnx")
    m = a[-1] if trans_a else a[-2]
    n = b[-2] if trans_b else b[-1]
    return (*_broadcast([a[:-2], b[:-2]]), m, n)


def _broadcast(shapes: Iterable[tuple[int, ...]]) -> tuple[int, ...]:
    """Numpy broadcasting of concrete shapes (ValueError when they do not broadcast)."""
    result: list[int] = []
    for shape in shapes:
        if len(shape) > len(result):
            result = [1] * (len(shape) - len(result)) + result
        for i, d in enumerate(shape, start=len(result) - len(shape)):
            if result[i] == 1:
                result[i] = d
            elif d not in (1, result[i]):
                raise ValueError(f"shapes do not broadcast: {result} and {shape}")
    return tuple(result)
