"""``%ei_endpoints [--delete NAME]``: the live endpoints of this kernel with what each has cost so
far, or delete one (its server stops and its bill ends)."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ei_widgets.common import text
from ei_widgets.common.html import BOX, NO_MATH, esc, note, table
from ei_widgets.common.money import format_money, per_hour
from ei_widgets.common.units import format_elapsed
from ei_widgets.endpoint.predictor import Predictor, endpoints
from ei_widgets.errors import EIError
from ei_widgets.notebook.magics.base import Magic, show

HEADERS = ["endpoint", "status", "instances", "accelerator", "url", "up", "price", "cost so far"]
EMPTY = "No live endpoint: deploy one with ei_widgets.deploy(...) or %ei_deploy."


def _row(predictor: Predictor) -> tuple[str, ...]:
    try:
        live = predictor.live(seconds=1)
    except EIError as error:  # it went away between the listing and this call
        return (predictor.endpoint_name, f"unreachable: {error}", "", "", "", "", "", "")
    return (
        live.endpoint_name,
        live.status,
        f"{live.instances} x {predictor.instance_type}",
        predictor.accelerator_type or "none",
        predictor.url,
        format_elapsed(live.uptime_seconds),
        per_hour(live.rate_per_hour),
        format_money(live.cost_so_far),
    )


def _delete(name: str) -> None:
    live = {p.endpoint_name: p for p in endpoints()}
    if name not in live:
        names = ", ".join(live) or "none"
        raise UsageError(f"ei_widgets: no live endpoint {name!r}. Live endpoints: {names}.")
    live[name].delete_endpoint()
    print(f"Deleted {name}: its server stopped and its bill ended.")


@magic_arguments()
@argument("--delete", default=None, metavar="NAME", help="delete the endpoint NAME")
def ei_endpoints(shell: Any, line: str) -> None:
    """The live endpoints with their cost so far, or delete one."""
    args = parse_argstring(ei_endpoints, line)
    if args.delete:
        _delete(args.delete)
        return
    rows = [_row(p) for p in endpoints()]
    if not rows:
        show(EMPTY, f'<div class="{NO_MATH}" style="{BOX}">{esc(EMPTY)}</div>')
        return
    footer = "Cost so far: (instance + accelerator) x instances per second since each was created."
    show(
        text.table(rows, HEADERS) + "\n" + footer,
        f'<div class="{NO_MATH}" style="{BOX}">'
        + table(HEADERS, rows, "llrllrrr")
        + note(footer)
        + "</div>",
    )


def _complete(shell: Any, words: list[str]) -> list[str]:
    previous = words[-2] if len(words) >= 2 else ""
    if previous == "--delete":
        return [p.endpoint_name for p in endpoints()]
    return ["--delete"]


MAGIC = Magic("ei_endpoints", ei_endpoints, _complete)
