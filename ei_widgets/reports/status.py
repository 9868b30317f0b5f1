"""What ``%ei_status`` shows: the notebook instance, the accelerator attached, the bill so far and
the models the kernel holds, as one :class:`Status` read from the core, in text and in HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ei_widgets.billing import meters
from ei_widgets.billing.charges import CostSnapshot
from ei_widgets.common.html import BOX, GREY, NO_MATH, esc, note, table
from ei_widgets.common.money import format_money, per_hour
from ei_widgets.common.units import format_bytes
from ei_widgets.device import accelerator
from ei_widgets.device.accelerator import Attachment
from ei_widgets.device.catalog import Instance
from ei_widgets.models.discovery import find_models
from ei_widgets.models.types import ModelEntry

__all__ = ["Status", "status", "status_html", "status_text", "status_text_of"]


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


def status_html(status: Status) -> str:
    """What is attached first, then the bill so far, then the models found."""
    instance, att, cost, models = status
    if att is not None:
        head = (
            f'<div style="font-size:15px"><b>{esc(att.name)}</b> ({esc(att.precision)},'
            f" {esc(per_hour(att.accelerator.price_per_hour))}) attached since"
            f" {att.since:%H:%M:%S} UTC</div>"
        )
    else:
        head = (
            '<div style="font-size:15px"><b>No accelerator attached</b>'
            f' <span style="color:{GREY}">(%ei_attach NAME attaches one)</span></div>'
        )
    parts = [
        f'<div class="{NO_MATH}" style="{BOX}">{head}',
        f"<div>on {esc(instance.name)} ({instance.vcpus} vCPUs,"
        f" {esc(format_bytes(instance.memory_bytes))},"
        f" {esc(per_hour(instance.price_per_hour))})</div>",
    ]
    if cost is not None:
        parts.append(
            f"<div>{esc(format_money(cost.total))} so far at"
            f" {esc(per_hour(cost.rate_per_hour))} · {esc(cost.savings_text)}</div>"
        )
    if models:
        parts.append(
            table(
                ["model", "kind", "summary"],
                [(m.variable, m.kind, m.summary) for m in models],
                "lll",
            )
        )
    else:
        parts.append(note("No models found in this kernel's variables."))
    return "".join(parts) + "</div>"
