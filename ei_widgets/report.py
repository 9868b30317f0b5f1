"""Plain-text views of core results, shared by the magics and the command line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ei_widgets.profile import Profile, TensorInfo


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[str(c) for c in header]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if right else c.ljust(w) for c, w, right in zip(row, widths, numeric)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def human_bytes(count: int | float) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_count(count: int | float) -> str:
    """25_610_153 -> '25.6 M'."""
    value = float(count)
    for unit in ("", " k", " M", " G", " T"):
        if abs(value) < 1000 or unit == " T":
            return f"{value:.0f}{unit}" if unit == "" else f"{value:.1f}{unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _shape(tensor: TensorInfo) -> str:
    if tensor.shape is None:
        return "?"
    return "[" + ", ".join("?" if d is None else str(d) for d in tensor.shape) + "]"


def profile_text(result: Profile, heaviest: int = 8) -> str:
    """What ``%ei_inspect`` and ``ei-widgets inspect`` print."""
    parts = [
        f"{result.name}  ({result.producer or 'unknown producer'}, opset "
        + ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in result.opsets.items())
        + ")",
        f"batch {result.batch_size}: {human_count(result.flops)}FLOPs, "
        f"{human_count(result.param_count)} parameters ({human_bytes(result.param_bytes)}), "
        f"peak activations {human_bytes(result.peak_activation_bytes)}, "
        f"{result.node_count} nodes, {human_bytes(result.model_size_bytes)} on disk",
        "",
        table(
            [("input", t.name, t.dtype, _shape(t)) for t in result.inputs]
            + [("output", t.name, t.dtype, _shape(t)) for t in result.outputs],
            ["", "name", "dtype", "shape"],
        ),
        "",
        table(
            [
                (t.op_type, t.count, t.flops / 1e9, human_bytes(t.bytes_read + t.bytes_written))
                for t in result.by_op_type()
            ],
            ["op type", "nodes", "GFLOPs", "memory traffic"],
        ),
        "",
        "heaviest nodes:",
        table(
            [(n.name, n.op_type, n.flops / 1e9) for n in result.heaviest(heaviest)],
            ["node", "op type", "GFLOPs"],
        ),
    ]
    if result.unknown_ops:
        parts += ["", "ops of unknown cost (counted as 0): " + ", ".join(result.unknown_ops)]
    parts += [f"warning: {w}" for w in result.warnings]
    return "\n".join(parts)


def mapping_text(values: Mapping[str, Any]) -> str:
    """``key: value`` lines, keys aligned."""
    width = max((len(k) for k in values), default=0)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in values.items())
