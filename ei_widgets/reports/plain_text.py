"""Plain-text views of core results, shared by the magics and the command line.

Figures are formatted through :mod:`ei_widgets.common.units` and the money formatter, as in the
notebook's rich results (:mod:`ei_widgets.rich`), so a figure reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ei_widgets.billing import meters
from ei_widgets.common.units import format_bytes, format_count, significant
from ei_widgets.device import accelerator
from ei_widgets.device.sizing import recommend
from ei_widgets.models.discovery import find_models
from ei_widgets.rich import format_money, per_hour, searched_text

if TYPE_CHECKING:
    from ei_widgets.billing.meters import CostSnapshot
    from ei_widgets.device.accelerator import Attachment
    from ei_widgets.device.catalog import Instance
    from ei_widgets.device.sizing import Recommendation
    from ei_widgets.models.discovery import ModelEntry
    from ei_widgets.profiling.profiler import Profile, TensorInfo


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
        return significant(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


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
        f"batch {result.batch_size}: {format_count(result.flops)}FLOPs, "
        f"{format_count(result.param_count)} parameters ({format_bytes(result.param_bytes)}), "
        f"peak activations {format_bytes(result.peak_activation_bytes)}, "
        f"{result.node_count} nodes, {format_bytes(result.model_size_bytes)} on disk",
        "",
        table(
            [("input", t.name, t.dtype, _shape(t)) for t in result.inputs]
            + [("output", t.name, t.dtype, _shape(t)) for t in result.outputs],
            ["", "name", "dtype", "shape"],
        ),
        "",
        table(
            [
                (t.op_type, t.count, t.flops / 1e9, format_bytes(t.bytes_read + t.bytes_written))
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
            f"{fw.framework} {fw.version} {fw.class_name}: {format_count(fw.params)} parameters "
            f"({format_bytes(fw.param_bytes)}) and {format_count(fw.buffers)} buffer values "
            f"({format_bytes(fw.buffer_bytes)}) as the framework counts them; exported with "
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


class Status(NamedTuple):
    """What ``%ei_status`` shows: the attachment, the bill so far and the models found."""

    instance: Instance
    attachment: Attachment | None
    cost: CostSnapshot | None
    models: list[ModelEntry]


def status(namespace: Mapping[str, Any]) -> Status:
    """The kernel's status now (read from the core; nothing changes)."""

    state = accelerator.state()
    meter = meters.meter()
    return Status(
        state.instance,
        state.attachment,
        meter.snapshot() if meter is not None else None,
        find_models(namespace),
    )


def status_text(namespace: Mapping[str, Any]) -> str:
    """What ``%ei_status`` prints: the attachment, the bill so far and the models found."""
    return status_text_of(status(namespace))


def status_text_of(now: Status) -> str:
    """:func:`status_text` of a status already read."""
    instance, attachment, cost, models = now
    lines = [
        f"notebook instance: {instance.name} ({instance.vcpus} vCPUs, "
        f"{format_bytes(instance.memory_bytes)}, {per_hour(instance.price_per_hour)})",
        (
            f"accelerator: {attachment.name} ({attachment.precision}, "
            f"{per_hour(attachment.accelerator.price_per_hour)}, "
            f"attached {attachment.since:%H:%M:%S} UTC)"
            if attachment
            else "accelerator: No accelerator attached (%ei_attach NAME attaches one)"
        ),
    ]
    if cost is not None:
        lines.append(
            f"cost so far: {format_money(cost.total)} at "
            f"{per_hour(cost.rate_per_hour)} ({cost.savings_text})"
        )
    if models:
        lines += ["", "models in this kernel:"]
        lines += [f"  {entry.variable}: {entry.kind}, {entry.summary}" for entry in models]
    else:
        lines += ["", "no models found in this kernel's variables"]
    return "\n".join(lines)


def recommendation_text(result: Recommendation, limit: int = 10) -> str:
    """What ``%ei_recommend`` and ``ei-widgets recommend`` print: the reason, then the retired EI
    options and what is available today, each its own table (at most ``limit`` rows each, best
    first; ``*`` marks each group's pick)."""
    fp16 = result.fp16 is not None
    header = ["option", "batch", "precision", "latency ms", "inf/s", "fits", "$/h", "$/M inf",
              "meets"] + (["fp16 agreement"] if fp16 else [])  # fmt: skip
    text = [result.reason, searched_text(result)]
    ei_title = next((r.group for r in result.ei_rows), "EI")
    for title, rows, pick in (
        (ei_title, result.ei_rows, result.pick_ei),
        ("Available today", result.today_rows, result.pick_today),
    ):
        if not rows:
            continue
        shown = [
            (
                ("* " if row is pick else "  ") + row.option,
                row.batch_size,
                row.precision,
                row.latency_ms,
                row.throughput_per_s,
                "yes" if row.fits else "no",
                per_hour(row.price_per_hour).removesuffix("/h"),
                "-" if row.cost_per_million is None else format_money(row.cost_per_million),
                "yes" if row.meets else "no",
            )
            + ((row.fp16_agreement or "",) if fp16 else ())
            for row in rows[:limit]
        ]
        more = f" (best {limit} of {len(rows):,})" if len(rows) > limit else ""
        text += ["", f"{title}{more}:", table(shown, header)]
    if result.fp16 is not None and not result.fp16.measured:
        text.append(f"fp16 not measured: {result.fp16.reason}")
    if result.too_close:
        text.append("Too close to call: options near the target are within the model's error.")
    text.append(f"Latencies are {result.accuracy}: see README, 'The latency model'.")
    return "\n".join(text)


SIZING_TARGET_MS = 50.0
"""The latency target the dashboard's Sizing tab and ``%ei_recommend`` start from."""

SIZING_RPS = 10.0
"""The request rate they start from (0 or None: any rate)."""


def recommend_here(
    subject: Any,
    *,
    latency_target_ms: float = SIZING_TARGET_MS,
    requests_per_second: float | None = SIZING_RPS,
    instance: str | None = None,
    **loader_options: Any,
) -> Any:
    """The one sizing call of the notebook (the Sizing tab and ``%ei_recommend`` make it alike).

    Every EI accelerator on the kernel's notebook instance, the whole-GPU and CPU-only instances,
    at the recommender's default batch sizes and precisions. ``subject`` is a model or a profile;
    ``instance`` defaults to the kernel's notebook instance.
    """

    return recommend(
        subject,
        latency_target_ms=latency_target_ms,
        requests_per_second=requests_per_second or None,
        instance=instance or accelerator.state().instance.name,
        **loader_options,
    )
