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
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(row, widths, numeric, strict=True)
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
    if result.framework is not None:
        fw = result.framework
        parts += [
            "",
            f"{fw.framework} {fw.version} {fw.class_name}: {human_count(fw.params)} parameters "
            f"({human_bytes(fw.param_bytes)}) and {human_count(fw.buffers)} buffer values "
            f"({human_bytes(fw.buffer_bytes)}) as the framework counts them; exported with "
            f"{fw.exporter}; input shapes {fw.input_source}",
        ]
    if result.unknown_ops:
        parts += ["", "ops of unknown cost (counted as 0): " + ", ".join(result.unknown_ops)]
    parts += [f"warning: {w}" for w in result.warnings]
    return "\n".join(parts)


def mapping_text(values: Mapping[str, Any]) -> str:
    """``key: value`` lines, keys aligned."""
    width = max((len(k) for k in values), default=0)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in values.items())


def status_text(namespace: Mapping[str, Any]) -> str:
    """What ``%ei_status`` prints: the attachment, the bill so far and the models found."""
    from ei_widgets import accelerator, billing
    from ei_widgets.discovery import find_models

    state = accelerator.state()
    attachment = state.attachment
    instance = state.instance
    lines = [
        f"notebook instance: {instance.name} ({instance.vcpus} vCPUs, "
        f"{instance.memory_gib:g} GiB, {billing.format_money(instance.price_per_hour)}/h)",
        (
            f"accelerator: {attachment.name} ({attachment.precision}, "
            f"{billing.format_money(attachment.accelerator.price_per_hour)}/h, "
            f"attached {attachment.since:%H:%M:%S} UTC)"
            if attachment
            else "accelerator: No accelerator attached (%ei_attach NAME attaches one)"
        ),
    ]
    meter = billing.meter()
    if meter is not None:
        cost = meter.snapshot()
        lines.append(
            f"cost so far: {billing.format_money(cost.total)} at "
            f"{billing.format_money(cost.rate_per_hour)}/h ({cost.savings_text})"
        )
    models = find_models(namespace)
    if models:
        lines += ["", "models in this kernel:"]
        lines += [f"  {entry.variable}: {entry.kind}, {entry.summary}" for entry in models]
    else:
        lines += ["", "no models found in this kernel's variables"]
    return "\n".join(lines)


def recommendation_text(result: Any, limit: int = 20) -> str:
    """What ``%ei_recommend`` and ``ei-widgets recommend`` print: the reason, then the table."""
    from ei_widgets.billing import format_money

    rows = [
        (
            ("* " if row is result.pick else "  ") + row.option,
            row.batch_size,
            row.precision,
            row.latency_ms,
            row.throughput_per_s,
            "yes" if row.fits else "no",
            format_money(row.price_per_hour),
            "-" if row.cost_per_million is None else format_money(row.cost_per_million),
            "yes" if row.meets else "no",
        )
        for row in result.rows[:limit]
    ]
    text = [
        result.reason,
        "",
        table(
            rows,
            [
                "option",
                "batch",
                "precision",
                "latency ms",
                "inf/s",
                "fits",
                "$/h",
                "$/M inf",
                "meets",
            ],
        ),
    ]
    if len(result.rows) > limit:
        text.append(f"... and {len(result.rows) - limit} more options")
    text.append("Latencies are modelled, not measured: see README, 'The latency model'.")
    return "\n".join(text)
