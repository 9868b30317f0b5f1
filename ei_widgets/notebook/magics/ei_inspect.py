"""``%ei_inspect VARIABLE [--batch N] [--input-shape S] [--fp16]``: profile a model."""

from __future__ import annotations

from typing import Any

from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ei_widgets.device import accelerator
from ei_widgets.device.fp16 import check_text, fp16_check
from ei_widgets.notebook.magics.base import (
    INPUT_SHAPE_HELP,
    Magic,
    loader_options,
    lookup,
    model_variables,
    show,
)
from ei_widgets.profiling.profiler import profile
from ei_widgets.reports import plain_text


@magic_arguments()
@argument("variable", help="name of a model variable in this kernel")
@argument("--batch", type=int, default=1, help="batch size to bind (default 1)")
@argument("--input-shape", default=None, help=INPUT_SHAPE_HELP)
@argument("--fp16", action="store_true", help="also measure what fp16 does to the outputs")
def ei_inspect(shell: Any, line: str) -> None:
    """Profile a model: inputs, parameters, FLOPs, memory, heaviest layers."""
    args = parse_argstring(ei_inspect, line)
    model = lookup(shell, args.variable)
    result = profile(model, batch_size=args.batch, **loader_options(args.input_shape))
    accelerator.set_model(args.variable, result)  # the model the picker judges fits by
    show(plain_text.profile_text(result), result._repr_html_())
    if args.fp16:  # converted and run for real; cached, so recommend() shows it too
        check = fp16_check(model, **loader_options(args.input_shape))
        show(check_text(check), check._repr_html_())


MAGIC = Magic("ei_inspect", ei_inspect, model_variables)
