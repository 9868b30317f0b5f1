"""``%ei_recommend VARIABLE [--latency-ms T] [--rps R] [--seq-len N] [--endpoint]``: the cheapest
option that meets a latency target, as the dashboard's Sizing tab answers it; with ``--endpoint``,
the cheapest hosted endpoint (instance type, accelerator, instance count) whose p90 at the rate
does."""

from __future__ import annotations

from typing import Any

from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ei_widgets.common.text import sequence_length
from ei_widgets.device.sizing import (
    DEFAULT_LATENCY_TARGET_MS,
    DEFAULT_REQUESTS_PER_SECOND,
    recommend,
)
from ei_widgets.notebook.magics.base import (
    INPUT_SHAPE_HELP,
    SEQ_LEN_HELP,
    Magic,
    loader_options,
    lookup,
    model_variables,
    show,
)
from ei_widgets.reports import plain_text


@magic_arguments()
@argument("variable", help="name of a model variable in this kernel")
@argument(
    "--latency-ms",
    type=float,
    default=DEFAULT_LATENCY_TARGET_MS,
    help=f"latency target per request (default {DEFAULT_LATENCY_TARGET_MS:g}, as in the dashboard)",
)
@argument(
    "--rps",
    type=float,
    default=DEFAULT_REQUESTS_PER_SECOND,
    help=f"requests per second (default {DEFAULT_REQUESTS_PER_SECOND:g}; 0: any rate)",
)
@argument("--seq-len", type=sequence_length, default=None, help=SEQ_LEN_HELP)
@argument("--input-shape", default=None, help=INPUT_SHAPE_HELP)
@argument("--endpoint", action="store_true", help="size a hosted endpoint: p90 at --rps")
def ei_recommend(shell: Any, line: str) -> None:
    """The cheapest accelerator or instance that meets a latency target."""
    args = parse_argstring(ei_recommend, line)
    if args.endpoint:
        endpoint = recommend(
            lookup(shell, args.variable),
            latency_target_ms=args.latency_ms,
            requests_per_second=args.rps,
            endpoint=True,
            seq_len=args.seq_len,
            **loader_options(args.input_shape),
        )
        show(plain_text.endpoint_recommendation_text(endpoint), endpoint._repr_html_())
        return
    result = recommend(
        lookup(shell, args.variable),
        latency_target_ms=args.latency_ms,
        requests_per_second=args.rps,
        seq_len=args.seq_len,
        **loader_options(args.input_shape),
    )
    show(plain_text.recommendation_text(result), result._repr_html_())


MAGIC = Magic("ei_recommend", ei_recommend, model_variables)
