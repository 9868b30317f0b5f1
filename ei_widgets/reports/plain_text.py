"""Plain-text views of core results, shared by the magics and the command line.

Figures are formatted through :mod:`ei_widgets.common.units` and the money formatter, as in the
notebook's HTML results, so a figure reads the same everywhere. The building blocks are in
:mod:`ei_widgets.common.text`; ``%ei_status`` has its own room (:mod:`ei_widgets.reports.status`).
"""

from __future__ import annotations

from ei_widgets.common.money import OPTION_PER_MILLION, format_money, per_hour
from ei_widgets.common.text import table
from ei_widgets.common.units import format_bytes, format_count
from ei_widgets.device.endpoint_sizing import COLUMNS as ENDPOINT_COLUMNS
from ei_widgets.device.endpoint_sizing import EndpointRecommendation, option_cells
from ei_widgets.device.recommendation import Recommendation, searched_text
from ei_widgets.profiling.result import Profile, TensorInfo


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
        f"batch {result.batch_size}"
        + (f", {result.seq_len:,} tokens" if result.seq_len is not None else "")
        + f": {format_count(result.flops)}FLOPs, "
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


def recommendation_text(result: Recommendation, limit: int = 10) -> str:
    """What ``%ei_recommend`` and ``ei-widgets recommend`` print: the reason, then the retired EI
    options and what is available today, each its own table (at most ``limit`` rows each, best
    first; ``*`` marks each group's pick)."""
    fp16 = result.fp16 is not None
    header = ["option", "batch", "precision", "latency ms", "inf/s", "fits", "$/h",
              OPTION_PER_MILLION, "meets"] + (["fp16 agreement"] if fp16 else [])  # fmt: skip
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
    if result.by_length is not None:
        text += ["", result.by_length.text]
    text.append(f"Latencies are {result.accuracy}: see README, 'The latency model'.")
    return "\n".join(text)


def endpoint_recommendation_text(result: EndpointRecommendation, limit: int = 10) -> str:
    """What ``ei-widgets recommend --endpoint`` prints: the reason, then the endpoints that meet
    among the retired EI accelerators and what is available today (``*`` marks each pick)."""
    text = [result.reason]
    ei_title = next((o.group for o in result.ei_options), "EI")
    for title, options, pick in (
        (ei_title, result.ei_options, result.pick_ei),
        ("Available today", result.today_options, result.pick_today),
    ):
        if not options:
            continue
        shown = []
        for o in options[:limit]:
            first, *rest = option_cells(o)
            shown.append((("* " if o is pick else "  ") + str(first), *rest))
        more = f" (cheapest {limit} of {len(options):,})" if len(options) > limit else ""
        text += ["", f"{title}{more}:", table(shown, list(ENDPOINT_COLUMNS))]
    text.append(
        f"Latencies, p90s and saturation rates are {result.accuracy}: the p90 under load is"
        " modelled (ei_widgets.device.capacity), the server's own overhead is not in it."
    )
    return "\n".join(text)
