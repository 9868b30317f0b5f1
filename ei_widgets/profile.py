"""The profile of a model: what it is, weighs and costs to run, computed from its graph alone.

This module holds the data types every other layer reads. ``profile()`` (which fills them) lives
in this module too; loaders that turn kernel objects into ONNX graphs live in ``loaders``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
