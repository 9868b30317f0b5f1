"""The profile of a model: what it is, weighs and costs to run, computed from its graph alone.

This module holds the data types every other layer reads and :func:`profile`, which fills them.
Loaders that turn kernel objects into ONNX graphs live in ``loaders``; FLOPs per op type live in
``opcosts``.

How a profile is made, and why:

- Nodes are put in topological order (Kahn's algorithm; a cycle is an error).
- Constants are followed through the graph: initializers, ``Constant`` and ``ConstantOfShape``
  outputs, and every node whose inputs are all constant (a folded subgraph, which a runtime
  computes once at load time). No constant is ever materialised: sizes come from shapes.
- Shapes come from onnx's own shape inference with data propagation, run on a slim copy of the
  model whose large weights are replaced by typed declarations (so nothing big is serialized and
  external data is never read). Where it gives up, onnxruntime's symbolic shape inference and a
  few pass-through rules fill the gaps.
- *Parameters* are the constant tensors the computing nodes consume as data: a ``Conv`` weight
  made by ``ConstantOfShape`` counts once, its int64 shape vector does not. Shape-like inputs
  (a ``Reshape`` target, ``Slice`` bounds, reduction axes, ...) and int64/bool tensors are never
  parameters.
- Peak activation memory walks the order once, freeing each tensor after its last reader.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import onnx

from ei_widgets import dtypes, opcosts, rich
from ei_widgets.errors import ModelLoadError, ProfileError
from ei_widgets.loaders import load_model
from ei_widgets.modeltypes import FrameworkInfo, LoadedModel

if TYPE_CHECKING:
    import pandas

Dim = int | str | None
"""A tensor dimension: a number, a symbolic name kept as written in the model, or unknown."""


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output."""

    name: str
    dtype: str  # numpy-style name: "float32", "int64", ...
    shape: tuple[Dim, ...] | None  # None when the rank itself is unknown


@dataclass(frozen=True)
class ParamGroup:
    """Parameters of one dtype."""

    dtype: str
    count: int
    bytes: int


@dataclass(frozen=True)
class NodeCost:
    """Cost of one node at the profile's bound shapes."""

    name: str
    op_type: str
    domain: str
    flops: int  # multiply-accumulates count as 2
    macs: int  # multiply-accumulates alone (0 for ops without them)
    bytes_read: int  # every input, weights included
    bytes_written: int  # every output
    param_bytes: int  # the part of bytes_read that is weights/constants (does not scale with batch)
    output_shapes: tuple[tuple[Dim, ...] | None, ...]
    known: bool  # False when the op's cost is unknown (counted as 0 and listed)
    folded: bool = False  # all inputs constant: computed once at load time, costs 0 per call


@dataclass(frozen=True)
class OpTypeTotal:
    """Totals over all nodes of one op type."""

    op_type: str
    count: int
    flops: int
    macs: int
    bytes_read: int
    bytes_written: int


@dataclass(frozen=True)
class Profile:
    """Everything known about a model's size and cost, at one binding of its input shapes."""

    name: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    opsets: dict[str, int]  # domain ("" is ai.onnx) -> version
    producer: str  # "name version"
    node_count: int
    op_histogram: dict[str, int]
    params: tuple[ParamGroup, ...]  # floating point and integer weights, by dtype
    nodes: tuple[NodeCost, ...]  # in the topological order used for liveness
    peak_activation_bytes: int
    model_size_bytes: int  # on disk / serialized, external data included
    unknown_ops: tuple[str, ...]  # op types whose cost is unknown (sorted, unique)
    batch_size: int | None  # the batch the shapes were bound to, None if no batch dimension
    bound_inputs: dict[str, tuple[int, ...]]  # concrete input shapes used for the costs
    warnings: tuple[str, ...] = field(default=())
    kind: str = "onnx-model"  # how the model was given (see ``loaders``)
    complete: bool = True  # False when only inputs and outputs could be recovered
    # What PyTorch or scikit-learn itself counts, for models exported from them (else None)
    framework: FrameworkInfo | None = None

    @property
    def param_count(self) -> int:
        return sum(group.count for group in self.params)

    @property
    def param_bytes(self) -> int:
        return sum(group.bytes for group in self.params)

    @property
    def flops(self) -> int:
        return sum(node.flops for node in self.nodes)

    @property
    def macs(self) -> int:
        return sum(node.macs for node in self.nodes)

    def by_op_type(self) -> list[OpTypeTotal]:
        """Totals per op type, heaviest (by FLOPs, then bytes moved) first."""
        totals: dict[str, list[int]] = {}
        for node in self.nodes:
            row = totals.setdefault(op_label(node.op_type, node.domain), [0, 0, 0, 0, 0])
            row[0] += 1
            row[1] += node.flops
            row[2] += node.macs
            row[3] += node.bytes_read
            row[4] += node.bytes_written
        rows = [OpTypeTotal(op, *values) for op, values in totals.items()]
        rows.sort(key=lambda r: (-r.flops, -(r.bytes_read + r.bytes_written), r.op_type))
        return rows

    def node_table(self) -> list[dict[str, object]]:
        """One plain dict per node, in execution order, ready for a table widget or the CLI."""
        total = self.flops or 1
        return [
            {
                "index": index,
                "name": node.name,
                "op_type": op_label(node.op_type, node.domain),
                "flops": node.flops,
                "macs": node.macs,
                "flops_share": node.flops / total,
                "bytes_read": node.bytes_read,
                "bytes_written": node.bytes_written,
                "param_bytes": node.param_bytes,
                "output_shapes": format_shapes(node.output_shapes),
                "known": node.known,
                "folded": node.folded,
            }
            for index, node in enumerate(self.nodes)
        ]

    def heaviest(self, n: int = 10) -> list[NodeCost]:
        """The ``n`` nodes with the most FLOPs (then bytes moved), folded ones left out."""
        ranked = sorted(
            (node for node in self.nodes if not node.folded),
            key=lambda node: (node.flops, node.bytes_read + node.bytes_written),
            reverse=True,
        )
        return ranked[: max(0, n)]

    def _repr_html_(self) -> str:
        return rich.profile_html(self)

    def __repr__(self) -> str:
        return rich.profile_repr(self)

    def to_pandas(self) -> pandas.DataFrame:
        """One row per node (needs pandas, which is optional)."""
        return rich.profile_frame(self)


def op_label(op_type: str, domain: str = "") -> str:
    """``op_type`` for standard ops, ``domain:op_type`` for contrib and custom ones."""
    return op_type if domain in opcosts.ONNX_DOMAINS else f"{domain}:{op_type}"


def format_shape(shape: tuple[Dim, ...] | None) -> str:
    """``(1, 3, 224, 224)`` style, with ``?`` for unknown dimensions and names kept."""
    if shape is None:
        return "?"
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def format_shapes(shapes: Iterable[tuple[Dim, ...] | None]) -> str:
    """Several shapes, comma separated (a node's outputs)."""
    return ", ".join(format_shape(s) for s in shapes)


# ----------------------------------------------------------------------------------------------
# profile()

MAX_TENSOR_ELEMENTS = 10**11
"""Larger tensors are refused: no model runs with them, and naive tools would try to allocate."""

SMALL_CONSTANT_ELEMENTS = 4096
"""Initializers up to this size keep their values for shape inference (shape vectors, axes,
scales); larger ones are passed to it as typed declarations only."""

InputShapes = Mapping[str, "Sequence[int] | int"]

_T = onnx.TensorProto
# Constants of these types are shapes, indices, masks or labels, never weights.
NON_PARAM_DTYPES = frozenset({_T.INT64, _T.BOOL, _T.STRING, _T.UNDEFINED})

# Input slots that carry shapes, axes, bounds or indices rather than data.
SHAPE_SLOTS: dict[str, frozenset[int]] = {
    **dict.fromkeys(
        opcosts.names(
            """Reshape Expand Tile Unsqueeze Squeeze Upsample TopK OneHot Split CumSum Gather
            GatherElements GatherND ScatterND ScatterElements Trilu CenterCropPad Compress
            ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2
            ReduceSumSquare ReduceLogSum ReduceLogSumExp"""
        ),
        frozenset({1}),
    ),
    "ConstantOfShape": frozenset({0}),
    "Slice": frozenset({1, 2, 3, 4}),
    "Pad": frozenset({1, 3}),
    "Resize": frozenset({1, 2, 3}),
    "Range": frozenset({0, 1, 2}),
    "NonMaxSuppression": frozenset({2, 3, 4}),
}
# Nodes never folded even when their inputs are constant (random, or with subgraphs).
NEVER_FOLDED = frozenset(
    opcosts.names(
        """RandomNormal RandomUniform RandomNormalLike RandomUniformLike Multinomial Bernoulli If
        Loop Scan"""
    )
)
# Ops that read only their input's metadata, not its data.
METADATA_OPS = frozenset({"Shape", "Size"})
# Ops whose first output has the broadcast shape of their inputs, used where inference gives up.
_PASS_THROUGH = frozenset(opcosts.ELEMENTWISE_FLOPS) | frozenset(opcosts.NORMALISATION_FLOPS)
_MATMULS = frozenset({"MatMul", "FusedMatMul", "MatMulInteger"})

TypeInfo = tuple[int, "tuple[Dim, ...] | None"]
_NO_TYPE: TypeInfo = (0, None)
_SHAPE_SOURCES = frozenset({"Shape", "Size"})


def profile(
    model: object,
    *,
    batch_size: int = 1,
    input_shapes: InputShapes | None = None,
    name: str | None = None,
    **loader_options: object,
) -> Profile:
    """Profile ``model`` (ModelProto, ``.onnx`` path, bytes, onnxruntime session, ...).

    ``batch_size`` binds the batch dimension of every input (a dimension named like a batch, or
    else each input's first dimension when it is symbolic or unknown). ``input_shapes`` maps an
    input name to its full shape, or a symbolic dimension name to a size
    (``{"input_ids": (1, 128)}`` or ``{"sequence": 128}``); it wins over ``batch_size``.

    ``loader_options`` go to the loader of the model's kind (``example_inputs=`` or
    ``input_shape=`` for a PyTorch module, see ``ei_widgets.frameworks``).

    Raises :class:`ModelLoadError` for anything that is not a readable model and
    :class:`ProfileError` for shapes that cannot be profiled. Ops without a cost model are counted
    as 0 and listed in ``unknown_ops`` and ``warnings``.
    """
    loaded = load_model(model, name, **loader_options)
    return _Profiler(loaded, batch_size, input_shapes or {}).run()


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _concrete(shape: tuple[Dim, ...] | None) -> tuple[int, ...] | None:
    if shape is None:
        return None
    for d in shape:
        if d.__class__ is not int or d < 0:  # type: ignore[operator,unused-ignore]
            return None
    return shape  # type: ignore[return-value]


def _type_of(tp: onnx.TypeProto) -> TypeInfo:
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


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    graphs: list[onnx.GraphProto] = []
    if not node.attribute:
        return graphs
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            graphs.append(a.g)
        elif a.type == onnx.AttributeProto.GRAPHS:
            graphs.extend(a.graphs)
    return graphs


MAX_SUBGRAPH_DEPTH = 30
"""Deeper nesting of control flow (If in If in ...) is refused: protobuf cannot copy or parse
such a message (its limit is 100 levels, three per subgraph), and no real model nests so."""


def _outer_refs(graph: onnx.GraphProto, depth: int = 1) -> set[str]:
    """Names a subgraph reads from enclosing scopes; a nesting deeper than
    ``MAX_SUBGRAPH_DEPTH`` is refused (so the recursion stays shallow)."""
    if depth > MAX_SUBGRAPH_DEPTH:
        raise ModelLoadError(
            f"The model nests subgraphs (If, Loop, Scan) more than {MAX_SUBGRAPH_DEPTH} deep; "
            "it cannot be profiled or run."
        )
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    used: set[str] = set()
    for node in graph.node:
        defined.update(node.output)
        used.update(x for x in node.input if x)
        for sub in _subgraphs(node):
            used |= _outer_refs(sub, depth + 1)
    return used - defined


_CONTROL_FLOW = frozenset({"If", "Loop", "Scan", "SequenceMap"})
_ONNX_DOMAINS = opcosts.ONNX_DOMAINS


class _Node:
    """A node's fields read once from protobuf (where each field access is slow) and reused."""

    __slots__ = ("domain", "has_subgraph", "input", "name", "op_type", "output", "proto", "reads")

    def __init__(self, proto: onnx.NodeProto) -> None:
        # Fields go through locals: a profile builds one _Node per node, and reading a slot
        # back costs about as much as a local copy.
        self.proto = proto
        self.name: str = proto.name
        self.op_type: str = (op_type := proto.op_type)
        self.domain: str = (domain := proto.domain)
        # Slicing a repeated field is about twice as fast as iterating it
        inputs: list[str] = proto.input[:]
        self.input = inputs
        self.output: list[str] = proto.output[:]
        # every tensor it reads, subgraph captures included (shared with input when the same)
        self.reads: list[str] = [x for x in inputs if x] if "" in inputs else inputs
        self.has_subgraph = False
        # Only control flow (and, possibly, custom ops) carry subgraphs; checking the attributes
        # of every node would cost more than the rest of this constructor.
        if op_type in _CONTROL_FLOW or domain not in _ONNX_DOMAINS:
            subgraphs = _subgraphs(proto)
            self.has_subgraph = bool(subgraphs)
            if subgraphs:
                self.reads = [x for x in inputs if x]
            for sub in subgraphs:
                self.reads.extend(sorted(_outer_refs(sub)))


def topological_order(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The graph's nodes in an order where producers precede consumers (stable, Kahn)."""
    return [node.proto for node in _ordered(graph)[0]]


def _ordered(graph: onnx.GraphProto) -> tuple[list[_Node], bool]:
    """Nodes in topological order, and whether that is the order the graph has them in."""
    nodes = [_Node(proto) for proto in graph.node]
    producer: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for out in node.output:
            if out:
                producer[out] = i
    get = producer.get
    for i, node in enumerate(nodes):
        for x in node.reads:
            if get(x, -1) >= i:
                deps = [{producer[x] for x in n.reads if x in producer} for n in nodes]
                return [nodes[k] for k in _kahn(nodes, deps)], False
    return nodes, True


def _kahn(nodes: list[_Node], deps: list[set[int]]) -> list[int]:
    consumers: list[list[int]] = [[] for _ in nodes]
    indegree = [len(d) for d in deps]
    for i, d in enumerate(deps):
        for j in d:
            consumers[j].append(i)
    ready = [i for i, n in enumerate(indegree) if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for k in consumers[i]:
            indegree[k] -= 1
            if indegree[k] == 0:
                heapq.heappush(ready, k)
    if len(order) < len(nodes):
        stuck = [nodes[i].name or nodes[i].op_type for i, n in enumerate(indegree) if n > 0]
        raise ModelLoadError(
            f"The graph has a cycle: {len(stuck)} node(s) depend on each other "
            f"({', '.join(stuck[:5])}{', ...' if len(stuck) > 5 else ''})."
        )
    return order


class _Profiler:
    """One profiling run; holds the intermediate maps so each step stays a small method."""

    def __init__(self, loaded: LoadedModel, batch_size: int, requested: InputShapes) -> None:
        if not _is_positive_int(batch_size):
            raise ProfileError(f"batch_size must be a positive integer, not {batch_size!r}.")
        self.loaded = loaded
        self.model = loaded.model
        self.graph = loaded.model.graph
        self.batch_size = batch_size
        self.requested = requested
        self.warnings: list[str] = list(loaded.warnings)
        self.types: dict[str, TypeInfo] = {}
        self.initializers: dict[str, onnx.TensorProto] = {}
        self.small_initializers: set[str] = set()  # values kept for shape inference
        initializers, types, small = self.initializers, self.types, self.small_initializers
        for t in self.graph.initializer:
            name, dims = t.name, tuple(t.dims)
            initializers[name] = t
            types[name] = (t.data_type, dims)
            if math.prod(dims) <= SMALL_CONSTANT_ELEMENTS and t.data_location != _T.EXTERNAL:
                small.add(name)
        # Graph inputs are read once: in IR 3 models they list every initializer too.
        self.input_values: list[onnx.ValueInfoProto] = self.graph.input[:]
        self.input_names: set[str] = {v.name for v in self.input_values}
        self.declared: dict[str, TypeInfo] = {}  # the real inputs' types as the model gives them
        self.shapes: dict[str, tuple[int, ...] | None] = {}
        self.nbytes: dict[str, int | None] = {}
        self.inputs_bound = True
        self.in_order = True  # the graph lists its nodes in a topological order already
        self.computes_shapes = True  # the graph has Shape or Size nodes
        self.dim_values: dict[str, int] = {}  # symbolic dimension name -> the size bound to it
        self.constants: set[str] = set(self.initializers)
        self.read_anywhere: set[str] = set()  # every tensor some node or the graph output reads
        self.large_constants: dict[str, TypeInfo] = {}  # big Constant outputs kept out of inference
        for sparse in self.graph.sparse_initializer:
            self.constants.add(sparse.values.name)
            self.types[sparse.values.name] = (sparse.values.data_type, tuple(sparse.dims))

    # -- driving ----------------------------------------------------------------------------

    def run(self) -> Profile:
        order, self.in_order = _ordered(self.graph)
        self.computes_shapes = any(node.op_type in _SHAPE_SOURCES for node in order)
        # set.union over whole lists runs in C, several times faster than a comprehension
        self.read_anywhere = set().union(*[node.reads for node in order])
        self.read_anywhere.update(o.name for o in self.graph.output)
        self._check_defined(order)
        self._check_names(order)
        self.large_constants = self._large_constants(order)
        constants = self.constants
        real_inputs = [i for i in self.input_values if i.name not in constants]
        bound, batch = self._bind_inputs(real_inputs)
        self.inputs_bound = all(_concrete(shape) is not None for _, shape in bound.values())
        folded = self._fold(order)
        self._infer(order, bound)
        nodes = self._node_costs(order, folded)
        unknown = sorted({op_label(n.op_type, n.domain) for n in nodes if not n.known})
        self._warn_unknown(nodes)
        return Profile(
            name=self.loaded.name,
            inputs=tuple(self._io_info(v, declared=True) for v in real_inputs),
            outputs=tuple(self._io_info(v, declared=True) for v in self.graph.output),
            opsets={imp.domain: imp.version for imp in self.model.opset_import},
            producer=f"{self.model.producer_name} {self.model.producer_version}".strip(),
            node_count=len(order),
            op_histogram=self._histogram(order),
            params=self._params(order, folded),
            nodes=tuple(nodes),
            peak_activation_bytes=self._peak(order, folded, real_inputs),
            model_size_bytes=self.loaded.size_bytes,
            unknown_ops=tuple(unknown),
            batch_size=batch,
            bound_inputs={
                v.name: s for v in real_inputs if (s := self.shapes.get(v.name)) is not None
            },
            warnings=tuple(dict.fromkeys(self.warnings)),
            kind=self.loaded.kind,
            complete=self.loaded.complete,
            framework=self.loaded.framework,
        )

    def _check_names(self, order: list[_Node]) -> None:
        """Names must be text: protobuf hands invalid UTF-8 back as bytes, which nothing
        downstream (onnx's helpers, JSON, the views) can take. Checked by type, in C."""
        names: set[object] = set(self.read_anywhere)
        names.update(*[node.output for node in order])
        names.update([node.name for node in order])
        names.update(self.initializers)
        names.update(self.input_names)
        names.add(self.graph.name)
        names.add(self.loaded.name)
        if bytes in set(map(type, names)):
            bad = min(n for n in names if isinstance(n, bytes))
            raise ModelLoadError(
                f"The model has a name that is not valid UTF-8 ({bad!r}); ONNX names are text."
            )

    def _large_constants(self, order: list[_Node]) -> dict[str, TypeInfo]:
        """Outputs of ``Constant`` nodes too large to keep for shape inference, and their types
        (like large initializers, they go to it as typed declarations: nothing big is copied)."""
        large: dict[str, TypeInfo] = {}
        for node in order:
            if node.op_type != "Constant" or node.domain not in _ONNX_DOMAINS or not node.output:
                continue
            info = _constant_type(node.proto)
            if info is not None and math.prod(info[1]) > SMALL_CONSTANT_ELEMENTS:
                large[node.output[0]] = info
        self.types.update(large)
        return large

    def _check_defined(self, order: list[_Node]) -> None:
        undefined = set().union(*[node.input for node in order])
        undefined.discard("")  # an omitted optional input
        undefined.difference_update(*[node.output for node in order])
        undefined -= self.input_names
        undefined -= self.constants
        if undefined:
            x = min(undefined)
            node = next(n for n in order if x in n.input)
            raise ModelLoadError(
                f"Node {node.name or node.op_type!r} reads {x!r}, which no input, initializer "
                "or node defines."
            )

    # -- input binding ----------------------------------------------------------------------

    def _bind_inputs(
        self, inputs: list[onnx.ValueInfoProto]
    ) -> tuple[dict[str, TypeInfo], int | None]:
        declared = {v.name: _type_of(v.type) for v in inputs}
        self.declared = declared
        full, dims = self._split_requested(declared)
        batch_names = {
            d
            for _, shape in declared.values()
            for d in (shape or ())
            if isinstance(d, str) and _looks_like_batch(d)
        }
        bound: dict[str, TypeInfo] = {}
        batches: set[int] = set()
        unbound: set[str] = set()
        for name, (elem, shape) in declared.items():
            if name in full:
                bound[name] = (elem, self._explicit(name, shape, full[name]))
                continue
            if shape is None:
                bound[name] = (elem, None)
                unbound.add(f"the rank of {name!r}")
                continue
            new = self._bind_dims(shape, dims, batch_names, batches)
            unbound.update(
                f"{d!r} of {name!r}" if d else f"axis {i} of {name!r}"
                for i, d in enumerate(new)
                if not isinstance(d, int)
            )
            bound[name] = (elem, new)
        self._record_dim_values(declared, bound)
        if unbound:
            self.warnings.append(
                "Unbound input dimensions: " + ", ".join(sorted(unbound)) + ". Costs that depend "
                "on them are unknown; pass input_shapes={name: size} to bind them."
            )
        return bound, self._batch_used(bound, batches)

    def _record_dim_values(self, declared: dict[str, TypeInfo], bound: dict[str, TypeInfo]) -> None:
        """Remember what each symbolic input dimension was bound to, to bind it elsewhere too
        (in value_info an exporter wrote, or in what onnxruntime's inference returns)."""
        for name, (_, shape) in declared.items():
            new = bound[name][1]
            if shape is None or new is None or len(shape) != len(new):
                continue
            for old_dim, new_dim in zip(shape, new, strict=True):
                if isinstance(old_dim, str) and isinstance(new_dim, int):
                    self.dim_values[old_dim] = new_dim

    def _split_requested(
        self, declared: dict[str, TypeInfo]
    ) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
        names = {d for _, s in declared.values() for d in (s or ()) if isinstance(d, str)}
        full: dict[str, tuple[int, ...]] = {}
        dims: dict[str, int] = {}
        for key, value in self.requested.items():
            if isinstance(value, int) and not isinstance(value, bool):
                if key not in names:
                    raise ProfileError(
                        f"input_shapes names {key!r}, which is neither an input nor a symbolic "
                        f"dimension. Inputs: {sorted(declared)}; dimensions: {sorted(names)}."
                    )
                if not _is_positive_int(value):
                    raise ProfileError(f"Dimension {key!r} must be a positive integer: {value!r}.")
                dims[key] = value
            elif key in declared and isinstance(value, Sequence) and not isinstance(value, str):
                shape = tuple(value)
                if not all(_is_positive_int(d) for d in shape):
                    raise ProfileError(
                        f"The shape of {key!r} must be positive integers: {value!r}."
                    )
                full[key] = shape
            else:
                raise ProfileError(
                    f"input_shapes[{key!r}] must be a shape for an input or a size for a symbolic "
                    f"dimension. Inputs: {sorted(declared)}; dimensions: {sorted(names)}."
                )
        return full, dims

    @staticmethod
    def _explicit(
        name: str, declared: tuple[Dim, ...] | None, given: tuple[int, ...]
    ) -> tuple[Dim, ...]:
        if declared is not None and len(declared) != len(given):
            raise ProfileError(
                f"Input {name!r} has rank {len(declared)} ({format_shape(declared)}); the shape "
                f"given, {given}, has rank {len(given)}."
            )
        for want, got in zip(declared or (), given, strict=False):
            if isinstance(want, int) and want > 0 and want != got:
                raise ProfileError(
                    f"Input {name!r} has a fixed shape {format_shape(declared)}; {given} does "
                    "not match it."
                )
        return given

    def _bind_dims(
        self,
        shape: tuple[Dim, ...],
        dims: dict[str, int],
        batch_names: set[str],
        batches: set[int],
    ) -> tuple[Dim, ...]:
        new: list[Dim] = []
        for axis, d in enumerate(shape):
            if isinstance(d, int) and d > 0:
                value: Dim = d
            elif isinstance(d, str) and d in dims:
                value = dims[d]
            elif (isinstance(d, str) and d in batch_names) or (axis == 0 and not batch_names):
                value = self.batch_size
                batches.add(value)
            else:
                value = d
            new.append(value)
        return tuple(new)

    def _batch_used(self, bound: dict[str, TypeInfo], batches: set[int]) -> int | None:
        if batches:
            return self.batch_size
        firsts = {s[0] for _, s in bound.values() if s and isinstance(s[0], int)}
        if len(firsts) == 1:
            fixed = next(iter(firsts))
            if fixed != self.batch_size:
                self.warnings.append(
                    f"The model's inputs have a fixed batch of {fixed}; batch_size="
                    f"{self.batch_size} was not applied."
                )
            return fixed
        return None

    # -- constants --------------------------------------------------------------------------

    def _fold(self, order: list[_Node]) -> list[bool]:
        """Mark nodes whose inputs are all constant; their outputs become constants."""
        constants = self.constants
        constants.add("")  # an omitted optional input never stops folding
        folded: list[bool] = []
        for node in order:
            f = (
                node.op_type not in NEVER_FOLDED
                and constants.issuperset(node.input)
                and node.domain in opcosts.ONNX_DOMAINS
                and not node.has_subgraph
            )
            if f:
                constants.update(node.output)
            folded.append(f)
        constants.discard("")
        return folded

    # -- shape inference --------------------------------------------------------------------

    def _infer(self, order: list[_Node], bound: dict[str, TypeInfo]) -> None:
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

    def _usable_as_is(self, order: list[_Node], bound: dict[str, TypeInfo]) -> bool:
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
            concrete = _concrete(shape)
            shapes[name] = concrete
            if concrete is None:
                nbytes[name] = None
                known[info] = (None, None)
                continue
            count = math.prod(concrete)
            if count > MAX_TENSOR_ELEMENTS:
                raise ProfileError(
                    f"Tensor {name!r} would have shape {concrete} ({count:.3g} elements), more "
                    f"than {MAX_TENSOR_ELEMENTS:.0e}: no model can run with it. Check the model "
                    "and the input shapes or batch size."
                )
            nbytes[name] = dtypes.nbytes(elem, count)
            known[info] = (concrete, nbytes[name])
        self.shapes = shapes
        self.nbytes = nbytes

    def _slim_model(self, order: list[_Node], bound: dict[str, TypeInfo]) -> onnx.ModelProto:
        """A copy of the model for shape inference that holds no large tensor."""
        m = self.model
        slim = onnx.ModelProto()
        slim.ir_version = max(m.ir_version, 4)  # lets initializers stay out of the inputs
        slim.opset_import.extend(m.opset_import)
        # A domain used without an opset import stops onnx's inference for the whole graph;
        # declaring it lets the inference skip just those nodes.
        imported = {imp.domain for imp in m.opset_import}
        for domain in sorted({node.domain for node in order} - imported - {"", "ai.onnx"}):
            slim.opset_import.append(onnx.helper.make_opsetid(domain, 1))
        if m.functions:
            slim.functions.extend(m.functions)
        g = slim.graph
        g.name = m.graph.name
        for name, (elem, shape) in bound.items():
            g.input.append(onnx.helper.make_tensor_value_info(name, elem, shape))
        small = self.small_initializers
        for name, t in self.initializers.items():
            if name in small:
                g.initializer.append(t)
            else:
                _declare(g, name, *self.types[name])
        large = self.large_constants
        for name, (elem, shape) in large.items():
            _declare(g, name, elem, shape)
        if large:
            g.node.extend(
                node.proto
                for node in order
                if not (node.output and node.output[0] in large and node.op_type == "Constant")
            )
        else:
            g.node.extend(node.proto for node in order)
        custom_outputs = {
            o for n in order if n.domain not in opcosts.ONNX_DOMAINS for o in n.output
        }
        for v in m.graph.value_info:
            if v.name not in custom_outputs:
                continue
            # What the exporter wrote for ops onnx does not know, with input sizes bound
            info = _type_of(v.type)
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
        bind = bool(self.dim_values)
        # Most tensors share a handful of types; decoding each distinct one once, keyed by its
        # serialized bytes (cheap, in C), is several times faster than decoding them all.
        decoded: dict[bytes, TypeInfo] = {}
        for group in (graph.value_info, graph.output):
            for v in group:
                name = v.name
                if only is not None and name not in only:
                    continue
                old = types.get(name)
                if old is not None and _concrete(old[1]) is not None:
                    continue  # a bound input or an initializer: already exact
                tp = v.type
                key = tp.SerializeToString()
                info = decoded.get(key)
                if info is None:
                    info = decoded[key] = _type_of(tp)
                if bind and info[1]:
                    info = self._bind_names(info)
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

    def _missing(self, order: list[_Node]) -> set[str]:
        """Tensors that are read (or are outputs) but have no concrete shape."""
        shapes = self.shapes
        return {x for x in self.read_anywhere if shapes.get(x) is None}

    def _fill_missing(self, slim: onnx.ModelProto, order: list[_Node], missing: set[str]) -> None:
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

    def _ort_may_help(self, order: list[_Node], missing: set[str]) -> bool:
        """Whether onnx gave up on a node onnxruntime might know: a standard or com.microsoft
        op whose inputs all have shapes (other domains only fail, and an open input dimension
        cannot be bound by any inference)."""
        if not self.inputs_bound:
            return False
        types = self.types
        return any(
            (node.domain in opcosts.ONNX_DOMAINS or node.domain == opcosts.MS_DOMAIN)
            and any(o in missing for o in node.output)
            and all(_concrete(types.get(x, (0, None))[1]) is not None for x in node.input if x)
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

    def _pass_through(self, order: list[_Node], missing: set[str]) -> list[str]:
        """Hand rules for what no inference knew: elementwise and normalisation ops (any
        domain) take the broadcast shape of their inputs, matrix products the product's shape."""
        added: list[str] = []
        for node in order:
            out = node.output[0] if node.output else ""
            if out not in missing:
                continue
            shapes = [_concrete(self.types.get(x, (0, None))[1]) for x in node.input if x]
            if not shapes or any(s is None for s in shapes):
                continue
            concrete = [s for s in shapes if s is not None]
            shape = _rule_shape(node, concrete)
            if shape is None:
                continue
            elem = self.types.get(node.input[0], (_T.FLOAT, None))[0]
            self.types[out] = (elem, shape)
            added.append(out)
        return added

    # -- costs ------------------------------------------------------------------------------

    def _tensor_bytes(self, name: str) -> int | None:
        return self.nbytes.get(name)

    def _node_costs(self, order: list[_Node], folded: list[bool]) -> list[NodeCost]:
        result: list[NodeCost] = []
        sizeless: set[str] = set()
        shapes = self.shapes
        types = self.types
        read_anywhere = self.read_anywhere
        nbytes = self.nbytes
        constants = self.constants
        rules: dict[tuple[str, str], opcosts.CostRule | None] = {}  # looked up once per op type
        for node, is_folded in zip(order, folded, strict=True):
            outputs = node.output
            op_type = node.op_type
            out_shapes = tuple([types.get(o, _NO_TYPE)[1] for o in outputs])
            if is_folded:
                result.append(
                    _node_cost(
                        node.name, op_type, node.domain, 0, 0, 0, 0, 0, out_shapes, True, True
                    )
                )
                continue
            inputs = node.input
            ins = [shapes.get(x) for x in inputs]  # "" (an omitted input) is never in shapes
            outs = [shapes.get(o) for o in outputs]
            key = (op_type, node.domain)
            rule = rules[key] if key in rules else rules.setdefault(key, opcosts.rule_for(*key))
            cost = rule(node.proto, ins, outs) if rule is not None else None
            read = params = written = 0
            if op_type in METADATA_OPS:
                inputs = inputs[1:]  # reads only the shape of its input
            for x in inputs:
                size = nbytes.get(x)
                if size is None:
                    if x:
                        sizeless.add(x)
                    continue
                read += size
                if x in constants:
                    params += size
            for o in outputs:
                size = nbytes.get(o) if o else 0
                if size is not None:
                    written += size
                elif o in read_anywhere:
                    sizeless.add(o)  # an output nobody reads (a Dropout mask) is no loss
            flops, macs = cost if cost is not None else (0, 0)
            result.append(
                _node_cost(
                    node.name,
                    op_type,
                    node.domain,
                    int(flops),
                    int(macs),
                    read,
                    written,
                    params,
                    out_shapes,
                    cost is not None,
                )
            )
        if sizeless:
            shown = ", ".join(sorted(sizeless)[:5])
            self.warnings.append(
                f"{len(sizeless)} tensor(s) have no known shape ({shown}"
                f"{', ...' if len(sizeless) > 5 else ''}); their bytes count as 0."
            )
        return result

    def _warn_unknown(self, nodes: list[NodeCost]) -> None:
        no_rule: dict[str, int] = {}
        no_shape: dict[str, int] = {}
        for n in nodes:
            if n.known:
                continue
            label = op_label(n.op_type, n.domain)
            target = no_shape if opcosts.has_rule(n.op_type, n.domain) else no_rule
            target[label] = target.get(label, 0) + 1
        if no_rule:
            self.warnings.append(
                "No cost model for these ops (counted as 0 FLOPs): "
                + ", ".join(f"{op} ({count})" for op, count in sorted(no_rule.items()))
                + "."
            )
        if no_shape:
            self.warnings.append(
                "Cost unknown because shapes are unknown (counted as 0 FLOPs): "
                + ", ".join(f"{op} ({count})" for op, count in sorted(no_shape.items()))
                + "."
            )

    def _params(self, order: list[_Node], folded: list[bool]) -> tuple[ParamGroup, ...]:
        """Constants read as data by a node that runs (or stored and never read)."""
        as_data: set[str] = set()  # every tensor some running node reads in a data slot
        for node, is_folded in zip(order, folded, strict=True):
            if is_folded:
                continue
            shape_slots = SHAPE_SLOTS.get(node.op_type)
            if shape_slots is None:
                as_data.update(node.reads)  # subgraph captures included
            else:
                as_data.update(x for slot, x in enumerate(node.input) if slot not in shape_slots)
        as_data.update(out.name for out in self.graph.output)
        # An initializer nobody reads is still stored in the model, and counted like a weight.
        as_data.update(self.initializers.keys() - self.read_anywhere)
        groups: dict[int, list[int]] = {}
        unsized = 0
        types, shapes, nbytes = self.types, self.shapes, self.nbytes
        for name in as_data & self.constants:
            elem = types.get(name, _NO_TYPE)[0]
            if elem in NON_PARAM_DTYPES:
                continue
            shape = shapes.get(name)
            if shape is None:
                unsized += 1
                continue
            group = groups.setdefault(elem, [0, 0])
            group[0] += math.prod(shape)
            group[1] += nbytes[name] or 0  # sized along with its concrete shape
        if unsized:
            self.warnings.append(f"{unsized} constant tensor(s) have unknown shapes; not counted.")
        return tuple(
            ParamGroup(dtypes.dtype_name(elem), count, size)
            for elem, (count, size) in sorted(groups.items(), key=lambda kv: -kv[1][1])
        )

    def _peak(
        self,
        order: list[_Node],
        folded: list[bool],
        inputs: list[onnx.ValueInfoProto],
    ) -> int:
        """Peak bytes of live activations, freeing each tensor after its last reader."""
        constants = self.constants
        last_use: dict[str, int] = {}
        for i, (node, is_folded) in enumerate(zip(order, folded, strict=True)):
            if not is_folded:
                for x in node.reads:
                    last_use[x] = i
        for name in constants.intersection(last_use):
            del last_use[name]
        end = len(order)
        for out in self.graph.output:
            last_use[out.name] = end
        nbytes = self.nbytes
        live = sum(nbytes.get(v.name) or 0 for v in inputs)
        peak = live
        live -= sum(nbytes.get(v.name) or 0 for v in inputs if v.name not in last_use)
        for i, (node, is_folded) in enumerate(zip(order, folded, strict=True)):
            if is_folded:
                continue
            for o in node.output:
                if o:
                    live += nbytes.get(o) or 0
            peak = max(peak, live)
            for o in node.output:
                if o and o not in last_use:
                    live -= nbytes.get(o) or 0  # nobody reads it: freed at once
            for x in node.reads:
                if last_use.get(x) == i:
                    live -= nbytes.get(x) or 0
                    last_use[x] = -1  # freed: a second read by this node frees nothing more
        return peak

    # -- description ------------------------------------------------------------------------

    def _io_info(self, value: onnx.ValueInfoProto, *, declared: bool) -> TensorInfo:
        elem, shape = _type_of(value.type)
        if shape is None:
            elem2, shape = self.types.get(value.name, (elem, None))
            elem = elem or elem2
        return TensorInfo(value.name, dtypes.dtype_name(elem), shape)

    @staticmethod
    def _histogram(order: list[_Node]) -> dict[str, int]:
        histogram = Counter((node.op_type, node.domain) for node in order)
        labels = Counter[str]()
        for (op_type, domain), count in histogram.items():
            labels[op_label(op_type, domain)] += count
        return dict(sorted(labels.items(), key=lambda kv: (-kv[1], kv[0])))


_new_object = object.__new__


def _node_cost(
    name: str,
    op_type: str,
    domain: str,
    flops: int,
    macs: int,
    bytes_read: int,
    bytes_written: int,
    param_bytes: int,
    output_shapes: tuple[tuple[Dim, ...] | None, ...],
    known: bool,
    folded: bool = False,
) -> NodeCost:
    """A NodeCost, built three times faster than through its frozen-dataclass ``__init__``
    (which sets each field with ``object.__setattr__``); a profile makes one per node. Storing
    into the instance dict key by key beats ``__dict__.update`` with keywords by a fifth."""
    cost: NodeCost = _new_object(NodeCost)
    fields = cost.__dict__
    fields["name"] = name
    fields["op_type"] = op_type
    fields["domain"] = domain
    fields["flops"] = flops
    fields["macs"] = macs
    fields["bytes_read"] = bytes_read
    fields["bytes_written"] = bytes_written
    fields["param_bytes"] = param_bytes
    fields["output_shapes"] = output_shapes
    fields["known"] = known
    fields["folded"] = folded
    return cost


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


def _rule_shape(node: _Node, shapes: list[tuple[int, ...]]) -> tuple[int, ...] | None:
    try:
        if node.op_type in _PASS_THROUGH:
            return _broadcast(shapes)
        if node.op_type in _MATMULS and len(shapes) >= 2:
            trans_a = opcosts.attr(node.proto, "transA", 0) == 1
            trans_b = opcosts.attr(node.proto, "transB", 0) == 1
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


def _looks_like_batch(dim: str) -> bool:
    low = dim.lower()
    return "batch" in low or low in {"n", "b", "bs"}


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
