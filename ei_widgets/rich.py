"""Notebook-native results: HTML, a short repr and tables for profiles, recommendations and bills.

``Profile``, ``Recommendation``, ``CostSnapshot`` and usage rows get their ``_repr_html_``,
``__repr__`` and ``to_pandas`` from here, as one-line methods. This module imports our types only
for annotations, so those classes may import it without a cycle, and it imports no widgets and no
IPython: the HTML is plain, inline-styled and escaped. The answer comes first (the pick and its
reason, the total), figures have sensible significant figures (through
:mod:`ei_widgets.common.units`
and the money formatter), and only what matters is shown: the rest is folded in a ``<details>``.
pandas is optional and imported only when ``to_pandas`` is called.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ei_widgets.billing.money import format_money
from ei_widgets.common.units import (
    format_bytes,
    format_count,
    format_ms,
    format_percent,
    significant,
)

if TYPE_CHECKING:
    import pandas

    from ei_widgets.billing.charges import CostSnapshot
    from ei_widgets.billing.ledger_history import UsageRow
    from ei_widgets.device.sizing import Recommendation, Row
    from ei_widgets.profiling.profiler import Profile
    from ei_widgets.reports.plain_text import Status

__all__ = [
    "cost_html",
    "cost_repr",
    "format_money",
    "money_or_dash",
    "option_cells",
    "per_hour",
    "profile_frame",
    "profile_html",
    "profile_repr",
    "recommendation_frame",
    "recommendation_html",
    "recommendation_repr",
    "searched_text",
    "shown_rows",
    "status_html",
    "usage_frame",
    "usage_html",
]

SHOWN_OP_TYPES = 6
"""Op types listed before the rest are folded."""

SHOWN_OPTIONS = 8
"""At most this many sizing options are listed open; the rest are folded."""

FOLDED_LIMIT = 100
"""Rows drawn inside a fold at most (``to_pandas()`` has them all)."""

_PICK = "#e8f1fb"
NO_MATH = "tex2jax_ignore mathjax_ignore"
"""Classes that keep MathJax off: notebooks typeset HTML output, and two amounts in dollars
would read as the bounds of a formula."""
_GOOD, _BAD, _GREY = "#25632a", "#a4262c", "#666"
_BOX = "font-size:13px;line-height:1.45;max-width:980px"
_TABLE = (
    "border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums;margin:4px 0;"
    "white-space:nowrap"
)
_TR = "border-bottom:1px solid #e4e4e4"
_PAD = "padding:1px 6px"


# --- figures -----------------------------------------------------------------------------------


def per_hour(rate: Decimal) -> str:
    """An hourly price: ``$0.168/h``, as the money formatter shows any amount."""
    return f"{format_money(rate)}/h"


def _esc(value: object) -> str:
    return html.escape(str(value))


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    align: str,
    highlight: Iterable[int] = (),
) -> str:
    """An HTML table; ``align`` holds one ``l``/``r`` per column; cells are escaped.

    Styles stay on the table and the rows (cells carry only padding and alignment), so a long
    folded table stays small.
    """
    opens = [f'<td style="{_PAD}{"" if a == "l" else ";text-align:right"}">' for a in align]
    marked = set(highlight)
    head = "".join(
        f'<th style="{_PAD};text-align:{"left" if a == "l" else "right"}">{_esc(h)}</th>'
        for h, a in zip(headers, align, strict=True)
    )
    plain = f'<tr style="{_TR}">'
    picked = f'<tr style="{_TR};background:{_PICK};font-weight:600">'
    body = "".join(
        (picked if i in marked else plain)
        + "".join(f"{td}{_esc(cell)}</td>" for cell, td in zip(row, opens, strict=True))
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f'<table class="ei-table" style="{_TABLE}"><tr style="{_TR}">{head}</tr>{body}</table>'


def _fold(summary: str, body: str) -> str:
    return (
        f'<details style="margin:2px 0"><summary style="cursor:pointer;color:{_GREY}">'
        f"{_esc(summary)}</summary>{body}</details>"
    )


def _note(text: str, colour: str = _GREY) -> str:
    return f'<div style="font-size:12px;color:{colour}">{_esc(text)}</div>'


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as error:  # optional: only this method needs it
        raise ImportError("to_pandas() needs pandas: pip install pandas") from error
    return pandas


# --- profiles ----------------------------------------------------------------------------------


def _shape(shape: Sequence[object] | None) -> str:
    if shape is None:
        return "?"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _profile_summary(p: Profile) -> str:
    batch = f" at batch {p.batch_size}" if p.batch_size is not None else ""
    return (
        f"{format_count(p.flops)}FLOPs per call{batch} · {format_count(p.param_count)} parameters"
        f" ({format_bytes(p.param_bytes)}) · peak activations"
        f" {format_bytes(p.peak_activation_bytes)} · {p.node_count:,} nodes ·"
        f" {format_bytes(p.model_size_bytes)} on disk"
    )


def profile_repr(p: Profile) -> str:
    """``<Profile squeezenet: 703 MFLOPs per call at batch 1, 1.24 M parameters, 66 nodes>``."""
    batch = f" at batch {p.batch_size}" if p.batch_size is not None else ""
    return (
        f"<Profile {p.name}: {format_count(p.flops)}FLOPs per call{batch},"
        f" {format_count(p.param_count)} parameters, {p.node_count:,} nodes>"
    )


def profile_html(p: Profile, shown: int = SHOWN_OP_TYPES) -> str:
    """The model at a glance: size and cost first, inputs, FLOPs by op type (sorted share)."""
    parts = [
        f'<div class="{NO_MATH}" style="{_BOX}"><div><b>{_esc(p.name)}</b>'
        f' <span style="color:{_GREY}">{_esc(p.producer or "unknown producer")}</span></div>',
        f"<div>{_esc(_profile_summary(p))}</div>",
    ]
    io_rows = [("input", t.name, t.dtype, _shape(t.shape)) for t in p.inputs]
    io_rows += [("output", t.name, t.dtype, _shape(t.shape)) for t in p.outputs]
    parts.append(_table(["", "name", "dtype", "shape"], io_rows, "llll"))
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
    parts.append(_table(headers, [op_row(op) for op in ops[:shown]], "lrrrr"))
    if len(ops) > shown:
        parts.append(
            _fold(
                f"{len(ops) - shown} more op types",
                _table(headers, [op_row(op) for op in ops[shown:FOLDED_LIMIT]], "lrrrr"),
            )
        )
    heavy = p.heaviest(10)
    if heavy:
        parts.append(
            _fold(
                "heaviest nodes",
                _table(
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
            _note(
                f"{fw.framework} {fw.version} {fw.class_name}: {format_count(fw.params)}"
                f" parameters as the framework counts them; exported with {fw.exporter}"
            )
        )
    if p.unknown_ops:
        parts.append(
            _note("ops of unknown cost (counted as 0): " + ", ".join(p.unknown_ops), "#8a6d00")
        )
    parts += [_note(f"warning: {w}", "#8a6d00") for w in p.warnings]
    return "".join(parts) + "</div>"


def profile_frame(p: Profile) -> pandas.DataFrame:
    """One row per node, in execution order (``Profile.node_table()``)."""
    return _pandas().DataFrame(p.node_table())


# --- recommendations ---------------------------------------------------------------------------


def _kind_count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def searched_text(rec: Recommendation) -> str:
    """What the recommender weighed, in one sentence (from its rows)."""
    rows = rec.rows
    accelerators = sorted({r.accelerator for r in rows if r.accelerator})
    hosts = sorted({r.instance for r in rows if r.kind == "accelerator"})
    gpus = sorted({r.instance for r in rows if r.kind == "gpu"})
    cpus = sorted({r.instance for r in rows if r.kind == "cpu"})
    batches = sorted({r.batch_size for r in rows})
    precisions = sorted({r.precision for r in rows}, reverse=True)
    groups = []
    if accelerators:
        where = hosts[0] if len(hosts) == 1 else _kind_count(len(hosts), "instance", "instances")
        groups.append(
            f"{_kind_count(len(accelerators), 'EI accelerator', 'EI accelerators')} on {where}"
        )
    if gpus:
        groups.append(_kind_count(len(gpus), "whole-GPU instance", "whole-GPU instances"))
    if cpus:
        groups.append(_kind_count(len(cpus), "CPU-only instance", "CPU-only instances"))
    listed = ", ".join(groups[:-1]) + (" and " if len(groups) > 1 else "") + groups[-1]
    sizes = (
        f"batch {batches[0]}"
        if len(batches) == 1
        else f"batch sizes {', '.join(str(b) for b in batches)}"
    )
    return (
        f"Searched {listed}, at {sizes} in {'/'.join(precisions)}: {len(rows):,} options."
        if rows
        else "Searched nothing: no option was given."
    )


def shown_rows(rec: Recommendation, limit: int = SHOWN_OPTIONS) -> list[Row]:
    """The options worth showing open, in the table's order: the pick, the cheapest that meet
    the target, the fastest that fits, and the cheapest of each kind (EI, whole GPU, CPU)."""
    rows = list(rec.rows)
    chosen: list[Row] = [rec.pick] if rec.pick is not None else []
    chosen += [r for r in rows if r.meets][:3]
    fitting = [r for r in rows if r.fits]
    if fitting:
        chosen.append(min(fitting, key=lambda r: r.latency_ms))
    for kind in ("accelerator", "gpu", "cpu"):
        of_kind = [r for r in fitting if r.kind == kind]
        if of_kind:
            chosen.append(min(of_kind, key=lambda r: (r.price_per_hour, r.latency_ms)))
    if not chosen:
        chosen = rows[:limit]
    keep = {id(r) for r in chosen}
    return [r for r in rows if id(r) in keep][:limit]


OPTION_COLUMNS = ("option", "batch", "precision", "latency", "inferences/s", "memory")
"""The columns every table of sizing options opens with (these tables and the dashboard's)."""

OPTION_ALIGN = "lrlrrr"
"""Their alignment, one ``l``/``r`` per column."""


def option_cells(r: Row) -> tuple[object, ...]:
    """One option's cells under :data:`OPTION_COLUMNS`."""
    return (
        r.option,
        r.batch_size,
        r.precision,
        format_ms(r.latency_ms / 1e3),
        significant(r.throughput_per_s),
        f"{format_bytes(r.memory_needed_bytes)} of {format_bytes(r.memory_available_bytes)}",
    )


def money_or_dash(amount: Decimal | None) -> str:
    """An amount, or a dash where there is none (no inference yet, no price)."""
    return "—" if amount is None else format_money(amount)


def _option_row(r: Row) -> tuple[object, ...]:
    return (
        *option_cells(r),
        per_hour(r.price_per_hour),
        money_or_dash(r.cost_per_million),
        "yes" if r.meets else ("does not fit" if not r.fits else "no"),
    )


_OPTION_HEADERS = [*OPTION_COLUMNS, "price", "$ per million", "meets"]


def recommendation_repr(rec: Recommendation) -> str:
    """``<Recommendation: ml.eia2.medium on ml.t3.medium, batch 4, fp16: 10.9 ms, ...>``."""
    pick = rec.pick
    if pick is None:
        return f"<Recommendation: nothing meets the target among {len(rec.rows):,} options>"
    return (
        f"<Recommendation: {pick.option}, batch {pick.batch_size}, {pick.precision}:"
        f" {format_ms(pick.latency_ms / 1e3)}, {per_hour(pick.price_per_hour)}"
        f" (of {len(rec.rows):,} options)>"
    )


def recommendation_html(rec: Recommendation) -> str:
    """The pick and its reason first, then the options that matter; the rest folded."""
    pick = rec.pick
    colour = _GOOD if pick is not None else _BAD
    parts = [f'<div class="{NO_MATH}" style="{_BOX}">']
    if pick is not None:
        parts.append(
            f'<div style="font-size:15px"><b>{_esc(pick.option)}</b>, batch {pick.batch_size},'
            f" {_esc(pick.precision)}: {_esc(format_ms(pick.latency_ms / 1e3))} per call,"
            f" {_esc(per_hour(pick.price_per_hour))}</div>"
        )
    parts.append(f'<div style="color:{colour}">{_esc(rec.reason)}</div>')
    if rec.too_close:
        parts.append(
            _note(
                "Too close to call: the options above are within the model's error of each other.",
                "#8a6d00",
            )
        )
    parts.append(_note(f"Latencies are {rec.accuracy}."))
    parts.append(_note(searched_text(rec)))
    grouped, n_shown = grouped_tables(rec)
    parts.append(grouped)
    rows = list(rec.rows)
    if len(rows) > n_shown:
        every = rows[:FOLDED_LIMIT]
        more = (
            f"; the first {FOLDED_LIMIT} here, to_pandas() has them all"
            if len(rows) > len(every)
            else ""
        )
        parts.append(
            _fold(
                f"all {len(rows):,} options, best first{more}",
                _table(
                    _OPTION_HEADERS,
                    [_option_row(r) for r in every],
                    "lrlrrrrrl",
                    [i for i, r in enumerate(every) if r is pick],
                ),
            )
        )
    return "".join(parts) + "</div>"


def grouped_tables(rec: Recommendation) -> tuple[str, int]:
    """The retired EI options and what is available today, each group's options that matter in
    its own table (the overall pick highlighted); an "fp16 agreement" column once fp16 was
    measured. Returns the HTML and how many options it shows."""
    fp16 = rec.fp16 is not None
    headers = _OPTION_HEADERS + (["fp16 agreement"] if fp16 else [])
    align = OPTION_ALIGN + "rrl" + ("l" if fp16 else "")
    ei = rec.ei_rows
    groups = (
        (ei[0].group if ei else "EI", ei, rec.pick_ei),
        ("Available today", rec.today_rows, rec.pick_today),
    )
    parts, count = [], 0
    for title, rows, pick in groups:
        if not rows:
            continue
        # the two tables together show no more than one table did (each group's pick first)
        shown = shown_rows(replace(rec, rows=rows, pick=pick), (SHOWN_OPTIONS - 1) // 2)
        cells = [_option_row(r) + ((r.fp16_agreement or "—",) if fp16 else ()) for r in shown]
        marked = [i for i, r in enumerate(shown) if r is rec.pick]
        parts.append(f'<div style="margin-top:6px"><b>{_esc(title)}</b></div>')
        parts.append(_table(headers, cells, align, marked))
        count += len(shown)
    return "".join(parts), count


def recommendation_frame(rec: Recommendation) -> pandas.DataFrame:
    """Every option weighed, one row each, best first; ``pick`` marks the recommended one."""
    frame = _pandas().DataFrame(rec.to_rows())
    frame["pick"] = [r is rec.pick for r in rec.rows]
    return frame


# --- the bill ----------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{whole} s"


def cost_repr(snap: CostSnapshot) -> str:
    """``<CostSnapshot $0.0127 after 5 min 12 s, $0.218/h now>``."""
    return (
        f"<CostSnapshot {format_money(snap.total)} after {_duration(snap.elapsed_seconds)},"
        f" {per_hour(snap.rate_per_hour)} now>"
    )


def cost_html(snap: CostSnapshot) -> str:
    """The total first, then the rate it accrues at, the work it bought and the comparison."""
    accelerator = (
        f" + {snap.accelerator} {per_hour(snap.accelerator_rate)}" if snap.accelerator else ""
    )
    per_million = (
        f"{format_money(snap.cost_per_million)} per million inferences"
        f" ({format_count(snap.inferences)} so far)"
        if snap.cost_per_million is not None
        else "no inference yet"
    )
    colour = _BAD if snap.whole_gpu_cheaper else _GOOD
    parts = [
        f'<div class="{NO_MATH}" style="{_BOX}"><div><span style="font-size:18px;font-weight:600">'
        f"{_esc(format_money(snap.total))}</span> so far"
        f" ({_esc(_duration(snap.elapsed_seconds))} metered)</div>",
        f"<div><b>{_esc(per_hour(snap.rate_per_hour))}</b> now ="
        f" {_esc(snap.instance)} {_esc(per_hour(snap.instance_rate))}{_esc(accelerator)}"
        f" · {_esc(per_million)}</div>",
        f'<div style="color:{colour}">{_esc(snap.savings_text)}</div>',
    ]
    if snap.budget is not None and snap.budget_fraction is not None:
        spent = money_or_dash(snap.budget_spent)
        parts.append(
            f"<div>{_esc(spent)} of the {_esc(snap.budget.period)} budget of"
            f" {_esc(format_money(snap.budget.amount))}"
            f" ({_esc(format_percent(float(snap.budget_fraction)))})</div>"
        )
    parts.append(
        _fold(
            "details",
            _table(
                ["", "amount"],
                [
                    ("instance", format_money(snap.instance_cost)),
                    ("accelerator", format_money(snap.accelerator_cost)),
                    ("at this rate, per day", format_money(snap.projected_per_day)),
                    ("at this rate, per month", format_money(snap.projected_per_month)),
                    (f"{snap.comparison}, same time", format_money(snap.comparison_cost)),
                ],
                "lr",
            )
            + _note(f"recorded in {snap.ledger}" if snap.ledger else "recorded in memory only"),
        )
    )
    return "".join(parts) + "</div>"


# --- usage -------------------------------------------------------------------------------------


def _hours(seconds: float) -> str:
    return _duration(seconds) if seconds < 3600 else f"{significant(seconds / 3600)} h"


def usage_html(rows: Sequence[UsageRow]) -> str:
    """Usage history: the total first, then one line per day, accelerator or notebook."""
    if not rows:
        return f'<div class="{NO_MATH}" style="{_BOX}">No usage recorded for this period.</div>'
    total = sum((r.total for r in rows), Decimal(0))
    inferences = sum(r.inferences for r in rows)
    table = _table(
        [
            "",
            "sessions",
            "instance time",
            "accelerator time",
            "cost",
            "inferences",
            "$ per million",
        ],
        [
            (
                r.key,
                r.sessions,
                _hours(r.instance_seconds),
                _hours(r.accelerator_seconds),
                format_money(r.total),
                format_count(r.inferences),
                money_or_dash(r.cost_per_million),
            )
            for r in rows
        ],
        "lrrrrrr",
    )
    return (
        f'<div class="{NO_MATH}" style="{_BOX}"><div><span style="font-size:16px;font-weight:600">'
        f"{_esc(format_money(total))}</span> over {len(rows)} rows,"
        f" {_esc(format_count(inferences))} inferences</div>{table}</div>"
    )


def usage_frame(rows: Sequence[UsageRow]) -> pandas.DataFrame:
    """Usage rows as a table, one column per field (money as ``Decimal``)."""
    return _pandas().DataFrame([asdict(r) for r in rows])


# --- the kernel's status -----------------------------------------------------------------------


def status_html(status: Status) -> str:
    """What is attached first, then the bill so far, then the models found."""
    instance, att, cost, models = status
    if att is not None:
        head = (
            f'<div style="font-size:15px"><b>{_esc(att.name)}</b> ({_esc(att.precision)},'
            f" {_esc(per_hour(att.accelerator.price_per_hour))}) attached since"
            f" {att.since:%H:%M:%S} UTC</div>"
        )
    else:
        head = (
            '<div style="font-size:15px"><b>No accelerator attached</b>'
            f' <span style="color:{_GREY}">(%ei_attach NAME attaches one)</span></div>'
        )
    parts = [
        f'<div class="{NO_MATH}" style="{_BOX}">{head}',
        f"<div>on {_esc(instance.name)} ({instance.vcpus} vCPUs,"
        f" {_esc(format_bytes(instance.memory_bytes))},"
        f" {_esc(per_hour(instance.price_per_hour))})</div>",
    ]
    if cost is not None:
        parts.append(
            f"<div>{_esc(format_money(cost.total))} so far at"
            f" {_esc(per_hour(cost.rate_per_hour))} · {_esc(cost.savings_text)}</div>"
        )
    if models:
        parts.append(
            _table(
                ["model", "kind", "summary"],
                [(m.variable, m.kind, m.summary) for m in models],
                "lll",
            )
        )
    else:
        parts.append(_note("No models found in this kernel's variables."))
    return "".join(parts) + "</div>"
