"""The live gauges' text, as pure functions of the figures: the summary line, the memory and
utilisation gauges, and the legends of the latency chart and the latency breakdown.

Every figure is formatted by :mod:`ei_widgets.common.units`; the gauges panel only decides when to
send.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ei_widgets.common.units import format_bytes, format_ms, format_percent, significant
from ei_widgets.device.estimate import TERMS, Estimate
from ei_widgets.device.metrics import MetricsSnapshot
from ei_widgets.notebook.views.common import esc

# The theme's colours (JupyterLab's --jp-* variables), with the light look as the fallback.
TERM_COLOURS = {
    "network": "var(--jp-brand-color2, #6c8ebf)",
    "compute": "var(--jp-success-color2, #82b366)",
    "memory": "var(--jp-warn-color2, #d6b656)",
    "launch": "var(--jp-info-color2, #b39ddb)",
    "host": "var(--jp-error-color2, #e57373)",
}
LINE_COLOURS = {
    "p50": "var(--jp-success-color1, #2ca02c)",
    "p95": "var(--jp-error-color1, #d62728)",
    "mean": "var(--jp-layout-color4, #999999)",
    "target": "var(--jp-brand-color1, #1f5fa8)",
}
MEMORY_COLOUR = TERM_COLOURS["network"]
UTILISATION_COLOUR = TERM_COLOURS["compute"]
OVER_COLOUR = "var(--jp-error-color1, #a4262c)"
TRACK_COLOUR = "var(--jp-layout-color2, #e8e8e8)"

HOST_BOUND_TEXT = (
    '<span style="background:var(--jp-error-color1, #c62828);'
    "color:var(--jp-ui-inverse-font-color0, white);font-weight:600;padding:2px 10px;"
    'border-radius:10px" title="Most calls took longer on this machine&#39;s CPU than their '
    'simulated latency, so the paced run could not keep the simulated pace">HOST-BOUND</span>'
    " This machine cannot keep up with the simulated device; the simulated figures are"
    " unaffected."
)

_ROW = '<div style="font-size:12px;display:flex;flex-wrap:wrap;gap:{gap}px">{items}</div>'


def gauge_html(label: str, fraction: float | None, text: str, colour: str) -> str:
    """One horizontal gauge: a label, a bar filled to ``fraction`` (0..1) and the number."""
    width = 0.0 if fraction is None else max(0.0, min(fraction, 1.0)) * 100
    over = fraction is not None and fraction > 1
    fill = OVER_COLOUR if over else colour
    return (
        '<div style="display:flex;flex-wrap:wrap;align-items:center;gap:4px 8px;font-size:12px;'
        'margin:3px 0">'
        f'<span style="width:150px">{esc(label)}</span>'
        '<span style="flex:0 1 160px;min-width:60px;height:10px;'
        f"background:{TRACK_COLOUR};border-radius:5px;"
        f'overflow:hidden"><span style="display:block;height:100%;width:{width:.1f}%;'
        f'background:{fill}"></span></span>'
        f'<span style="font-variant-numeric:tabular-nums">{esc(text)}</span></div>'
    )


def device_gauges_html(
    snapshot: MetricsSnapshot, capacity_bytes: int | None, name: str | None
) -> tuple[str, str]:
    """The memory gauge (used against the capacity of ``name``) and the utilisation gauge."""
    if not (capacity_bytes and name):
        return (
            gauge_html("accelerator memory", None, "no accelerator attached", MEMORY_COLOUR),
            gauge_html("utilisation", None, "—", UTILISATION_COLOUR),
        )
    used = snapshot.memory_bytes
    memory = gauge_html(
        f"{name} memory",
        used / capacity_bytes,
        f"{format_bytes(used)} / {format_bytes(capacity_bytes)}"
        f" ({format_percent(used / capacity_bytes)})"
        + (f", peak {format_bytes(snapshot.peak_memory_bytes)}" if used else "")
        + (" — over capacity" if used > capacity_bytes else ""),
        MEMORY_COLOUR,
    )
    utilisation = gauge_html(
        "utilisation",
        snapshot.utilisation,
        f"{format_percent(snapshot.utilisation)} of peak FLOP/s",
        UTILISATION_COLOUR,
    )
    return memory, utilisation


SCOPES = {
    "run": "This run:",
    "kernel": "No run yet. All metered calls in this kernel:",
}
"""What the summary's figures cover, said before them."""


def summary_html(snapshot: MetricsSnapshot, scope: str = "run") -> str:
    """What the figures cover (``scope``, a key of :data:`SCOPES`), then throughput, p50, p95,
    calls, inferences, errors and simulated seconds on one line."""
    return (
        '<div style="font-size:13px;font-variant-numeric:tabular-nums">'
        f"{SCOPES[scope]} <b>{significant(snapshot.throughput_per_s)}</b> inferences/s"
        f" &nbsp;·&nbsp; p50 <b>{_ms(snapshot.p50_ms)}</b>"
        f" &nbsp;·&nbsp; p95 <b>{_ms(snapshot.p95_ms)}</b>"
        f" &nbsp;·&nbsp; {snapshot.calls:,} calls, {snapshot.inferences:,} inferences"
        f"{f', {snapshot.errors:,} errors' if snapshot.errors else ''}"
        f" &nbsp;·&nbsp; {significant(snapshot.simulated_seconds)} s simulated</div>"
    )


def latency_legend_html(
    target_ms: float | None, warmup_ms: float | None, target_shown: bool = True
) -> str:
    """The latency chart's legend: its lines, the target (said when above the scale) and the
    warm-up call left out of the scale."""
    items = [
        _swatch(LINE_COLOURS["p50"], "p50"),
        _swatch(LINE_COLOURS["p95"], "p95"),
        _swatch(LINE_COLOURS["mean"], "mean per second"),
    ]
    if target_ms is not None:
        where = "" if target_shown else " (above this scale)"
        items.append(
            _swatch(LINE_COLOURS["target"], f"target {format_ms(target_ms / 1e3)}{where}", True)
        )
    if warmup_ms is not None:
        items.append(
            f'<span style="white-space:nowrap">warm-up call {format_ms(warmup_ms / 1e3)},'
            " left out of the scale</span>"
        )
    return _ROW.format(gap=10, items="".join(items))


def breakdown_html(estimate: Estimate | None, ms: Sequence[float], accuracy: str) -> str:
    """What the breakdown shows and its legend, each term with its ``ms`` when estimated
    (``accuracy``: the latency model's validated error, as users are told it)."""
    if estimate is None:
        what = "Attach an accelerator and choose a model to see where a call's time goes."
    else:
        what = (
            f"{estimate.target}, batch {estimate.batch_size}, {estimate.precision}:"
            f" {format_ms(estimate.latency_s)} per call, {estimate.bound}-bound ({accuracy})."
        )
    legend = " ".join(
        f'<span style="white-space:nowrap"><span style="display:inline-block;width:10px;'
        f'height:10px;background:{TERM_COLOURS[t]};margin-right:3px"></span>{t}'
        + (f" {format_ms(v / 1e3)}" if estimate is not None else "")
        + "</span>"
        for t, v in zip(TERMS, ms, strict=True)
    )
    return f'<div style="font-size:12px">{esc(what)}</div>' + _ROW.format(gap=8, items=legend)


def _swatch(colour: str, text: str, dashed: bool = False) -> str:
    line = "dashed" if dashed else "solid"
    return (
        f'<span style="white-space:nowrap"><span style="display:inline-block;width:14px;'
        f'border-top:2px {line} {colour};margin:0 4px 3px 0"></span>{text}</span>'
    )


def _ms(milliseconds: float) -> str:
    return "—" if math.isnan(milliseconds) else format_ms(milliseconds / 1e3)
