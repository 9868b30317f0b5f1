"""``%ei_attach NAME [--precision fp16] [--instance TYPE]``: attach a simulated accelerator."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ei_widgets.common.money import per_hour
from ei_widgets.common.units import format_bytes
from ei_widgets.device import accelerator
from ei_widgets.device.catalog import default_catalog
from ei_widgets.notebook.magics.base import Magic


def _sizes() -> str:
    accelerators = sorted(
        default_catalog().accelerators.values(), key=lambda a: (a.family, a.memory_bytes)
    )
    return ", ".join(
        f"{a.name} ({format_bytes(a.memory_bytes)}, {per_hour(a.price_per_hour)})"
        for a in accelerators
    )


@magic_arguments()
@argument("name", nargs="?", help="accelerator type, for example ml.eia2.medium")
@argument("--precision", default="fp32", choices=["fp32", "fp16"])
@argument("--instance", default=None, help="notebook instance type, for example ml.t3.medium")
def ei_attach(shell: Any, line: str) -> None:
    """Attach a simulated Elastic Inference accelerator to this kernel."""
    args = parse_argstring(ei_attach, line)
    if not args.name:
        raise UsageError(
            "%ei_attach needs an accelerator size, for example %ei_attach ml.eia2.medium "
            f"[--precision fp16]. Sizes: {_sizes()}."
        )
    attachment = accelerator.attach(args.name, instance=args.instance, precision=args.precision)
    print(f"Attached {attachment.accelerator.name} ({attachment.precision}).")


def _complete(shell: Any, words: list[str]) -> list[str]:
    previous = words[-2] if len(words) >= 2 else ""
    if previous == "--instance":
        return sorted(i.name for i in default_catalog().notebook_instances())
    if previous == "--precision":
        return ["fp16", "fp32"]
    return sorted(default_catalog().accelerators)


MAGIC = Magic("ei_attach", ei_attach, _complete)
