"""The dashboard's header line: what is attached, on which instance, the chosen model, the bill so
far and the run, and the notice shown once the kernel behind the dashboard is gone."""

from __future__ import annotations

from ei_widgets.billing.charges import CostSnapshot
from ei_widgets.common.html import GREY
from ei_widgets.common.money import format_money
from ei_widgets.device.accelerator import Attachment
from ei_widgets.notebook.views.common import NO_MATH, esc

DISCONNECTED = (
    "<style>.ei-disconnected{display:none}"
    ".jupyter-widgets-disconnected .ei-disconnected{display:block}"
    # ipywidgets puts a broken-chain icon (::before, inline-block) in every disconnected view:
    # inside a grid or flex box it becomes one more cell and shifts the layout. The notice
    # below says it once instead.
    ".ei-dashboard.jupyter-widgets-disconnected::before,"
    ".ei-dashboard .jupyter-widgets-disconnected::before{content:none;display:none}</style>"
    '<div class="ei-disconnected" style="margin:4px 0;padding:4px 8px;border-radius:4px;'
    'background:#fdecea;color:#a4262c;font-size:13px"><b>Disconnected:</b> the kernel behind '
    "this dashboard has restarted or stopped, so what it shows is no longer live. Run "
    "<code>%load_ext ei_widgets</code> and <code>%ei</code> (or <code>ei_widgets.dashboard()"
    "</code>) for a live one.</div>"
)
"""Shown only when the front end marks the widgets disconnected (ipywidgets' own class): no
kernel is left to say so, so a CSS rule in the header does. The same rule keeps ipywidgets'
per-view disconnected icon out of the dashboard's grids and boxes, so the layout holds."""


def header_html(
    attachment: Attachment | None,
    instance: str,
    variable: str | None,
    cost: CostSnapshot | None,
    run: str,
) -> str:
    """The header's HTML (``run``: the run panel's few words, already HTML)."""
    attached = (
        f"<b>{esc(attachment.name)}</b> ({esc(attachment.precision)})"
        if attachment is not None
        else "no accelerator"
    )
    money = (
        f" · {format_money(cost.total)} so far at {format_money(cost.rate_per_hour)}/h"
        if cost is not None
        else ""
    )
    model = f" · <code>{esc(variable)}</code>" if variable else ""
    return DISCONNECTED + (
        f'<div class="{NO_MATH}" style="display:flex;flex-wrap:wrap;column-gap:8px;'
        'align-items:baseline;font-size:13px">'
        '<span style="font-size:15px;font-weight:600">ei_widgets</span>'
        f'<span style="color:{GREY};white-space:nowrap">simulated Elastic Inference</span>'
        f"<span>· {attached} on {esc(instance)}{model}{money} · {run}</span></div>"
    )
