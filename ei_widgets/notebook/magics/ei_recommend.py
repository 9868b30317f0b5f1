"""``%ei_recommend VARIABLE [--latency-ms T] [--rps R]``: the cheapest option that meets a
latency target, as the dashboard's Sizing tab answers it."""

from __future__ import annotations

from typing import Any

from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ei_widgets.notebook.magics.base import (
    INPUT_SHAPE_HELP,
    Magic,
    loader_options,
    lookup,
    model_variables,
    show,
)
from ei_widgets.reports import plain_text
from ei_widgets.reports.plain_text import SIZING_RPS, SIZING_TARGET_MS


@magic_arguments()
@argument("variable", help="name of a model variable in this kernel")
@argument(
    "--latency-ms",
    type=float,
    default=SIZING_TARGET_MS,
    help=f"latency target per request (default {SIZING_TARGET_MS:g}, as in the dashboard)",
)
@argument(
    "--rps",
    type=float,
    default=SIZING_RPS,
    help=f"requests per second to serve (default {SIZING_RPS:g}, as in the dashboard; 0: any)",
)
@argument("--input-shape", default=None, help=INPUT_SHAPE_HELP)
def ei_recommend(shell: Any, line: str) -> None:
    """The cheapest accelerator or instance that meets a latency target."""
    args = parse_argstring(ei_recommend, line)
    result = plain_text.recommend_here(
        lookup(shell, args.variable),
        latency_target_ms=args.latency_ms,
        requests_per_second=args.rps,
        **loader_options(args.input_shape),
    )
    show(plain_text.recommendation_text(result), result._repr_html_())


MAGIC = Magic("ei_recommend", ei_recommend, model_variables)
