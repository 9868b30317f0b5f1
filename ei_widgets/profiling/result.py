"""What a profile is, and how it reads: the data types every other layer reads, and their
notebook HTML, short repr and table.

:func:`ei_widgets.profiling.profiler.profile` fills them; nothing here computes a profile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ei_widgets.common.html import (
    BOX,
    FOLDED_LIMIT,
    GREY,
    NO_MATH,
    WARN,
    esc,
    fold,
    note,
    pandas_module,
    table,
)
from ei_widgets.common.units import format_bytes, format_count, format_percent
from ei_widgets.models.types import FrameworkInfo
from ei_widgets.profiling import op_costs
from ei_widgets.profiling.shape_inference import Dim, format_shapes

if TYPE_CHECKING:
    import pandas

__all__ = [
    "NodeCost",
    "OpTypeTotal",
    "ParamGroup",
    "Profile",
    "TensorInfo",
    "op_label",
    "profile_frame",
    "profile_html",
    "profile_repr",
]


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
    seq_len: int | None = None  # the sequence length bound, None if no sequence dimension
    # the longest sequence the model takes (a transformer's position table), when its exporter says
    max_seq_len: int | None = None

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
        return profile_html(self)

    def __repr__(self) -> str:
        return profile_repr(self)

    def to_pandas(self) -> pandas.DataFrame:
        """One row per node (needs pandas, which is optional)."""
        return profile_frame(self)


def op_label(op_type: str, domain: str = "") -> str:
    """``op_type`` for standard ops, ``domain:op_type`` for contrib and custom ones."""
    return op_type if domain in op_costs.ONNX_DOMAINS else f"{domain}:{op_type}"


# --- how a profile reads --------------------------------------------------------------------


SHOWN_OP_TYPES = 6
"""Op types listed before the rest are folded."""


def _shape_text(shape: Sequence[object] | None) -> str:
    if shape is None:
        return "?"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def bound_at(p: Profile) -> str:
    """ " at batch 1, 128 tokens": the batch and sequence length the figures are for."""
    parts = [f"batch {p.batch_size}"] if p.batch_size is not None else []
    if p.seq_len is not None:
        parts.append(f"{p.seq_len:,} tokens")
    return f" at {', '.join(parts)}" if parts else ""


def _profile_summary(p: Profile) -> str:
    batch = bound_at(p)
    return (
        f"{format_count(p.flops)}FLOPs per call{batch} · {format_count(p.param_count)} parameters"
        f" ({format_bytes(p.param_bytes)}) · peak activations"
        f" {format_bytes(p.peak_activation_bytes)} · {p.node_count:,} nodes ·"
        f" {format_bytes(p.model_size_bytes)} on disk"
    )


def profile_repr(p: Profile) -> str:
    """``<Profile squeezenet: 703 MFLOPs per call at batch 1, 1.24 M parameters, 66 nodes>``."""
    batch = bound_at(p)
    return (
        f"<Profile {p.name}: {format_count(p.flops)}FLOPs per call{batch},"
        f" {format_count(p.param_count)} parameters, {p.node_count:,} nodes>"
    )


def profile_html(p: Profile, shown: int = SHOWN_OP_TYPES) -> str:
    """The model at a glance: size and cost first, inputs, FLOPs by op type (sorted share)."""
    parts = [
        f'<div class="{NO_MATH}" style="{BOX}"><div><b>{esc(p.name)}</b>'
        f' <span style="color:{GREY}">{esc(p.producer or "unknown producer")}</span></div>',
        f"<div>{esc(_profile_summary(p))}</div>",
    ]
    io_rows = [("input", t.name, t.dtype, _shape_text(t.shape)) for t in p.inputs]
    io_rows += [("output", t.name, t.dtype, _shape_text(t.shape)) for t in p.outputs]
    parts.append(table(["", "name", "dtype", "shape"], io_rows, "llll"))
    ops = p.by_op_type()
    total = p.flops or 1

    def op_row(op: Any) -> tuple[object, ...]:
        return (
            op.op_type,
            op.count,
            f"{format_count(op.flops)}FLOPs" if op.flops else "0",
            format_percent(op.flops / total) if op.flops else "—",
            format_bytes(op.bytes_read + op.bytes_written),
        )

    headers = ["op type", "nodes", "FLOPs", "share", "memory traffic"]
    parts.append(table(headers, [op_row(op) for op in ops[:shown]], "lrrrr"))
    if len(ops) > shown:
        parts.append(
            fold(
                f"{len(ops) - shown} more op types",
                table(headers, [op_row(op) for op in ops[shown:FOLDED_LIMIT]], "lrrrr"),
            )
        )
    heavy = p.heaviest(10)
    if heavy:
        parts.append(
            fold(
                "heaviest nodes",
                table(
                    ["node", "op type", "FLOPs", "share"],
                    [
                        (
                            n.name,
                            n.op_type,
                            f"{format_count(n.flops)}FLOPs",
                            format_percent(n.flops / total),
                        )
                        for n in heavy
                    ],
                    "llrr",
                ),
            )
        )
    fw = p.framework
    if fw is not None:
        parts.append(
            note(
                f"{fw.framework} {fw.version} {fw.class_name}: {format_count(fw.params)}"
                f" parameters as the framework counts them; exported with {fw.exporter}"
            )
        )
    if p.unknown_ops:
        parts.append(note("ops of unknown cost (counted as 0): " + ", ".join(p.unknown_ops), WARN))
    parts += [note(f"warning: {w}", WARN) for w in p.warnings]
    return "".join(parts) + "</div>"


def profile_frame(p: Profile) -> pandas.DataFrame:
    """One row per node, in execution order (``Profile.node_table()``)."""
    return pandas_module().DataFrame(p.node_table())
