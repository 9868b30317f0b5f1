"""``%ei_inspect VARIABLE [--batch N] [--seq-len N] [--input-shape S] [--fp16]``: profile a
model; a transformer's also shows its modelled latency at several sequence lengths."""

from __future__ import annotations

import time
from typing import Any

from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from ei_widgets.common.text import sequence_length
from ei_widgets.common.units import format_percent, significant
from ei_widgets.device import accelerator
from ei_widgets.device.fp16 import check_text, fp16_check
from ei_widgets.device.sequence import length_table, length_table_html
from ei_widgets.models.frameworks.base import ExportProgress, progress_listener
from ei_widgets.models.loading import load_model
from ei_widgets.notebook.magics.base import (
    INPUT_SHAPE_HELP,
    SEQ_LEN_HELP,
    Magic,
    loader_options,
    lookup,
    model_variables,
    show,
)
from ei_widgets.profiling.profiler import profile
from ei_widgets.reports import plain_text

STAGES = {"convert": "converting to fp16", "compare": "running fp32 and fp16 and comparing"}


class ProgressLine:
    """The fp16 check's progress, one line updated in place (a bar where HTML shows): the
    check takes seconds, converting then running both models."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._shown = ""
        self._handle = display(self._bundle(0.0, "fp16 check: starting"), raw=True, display_id=True)

    @staticmethod
    def _bundle(fraction: float, text: str) -> dict[str, str]:
        bar = f'<progress value="{fraction:.2f}" max="1" style="vertical-align:middle"></progress>'
        return {"text/plain": text, "text/html": f"{bar} <span>{text}</span>"}

    def __call__(self, stage: str, fraction: float) -> None:
        # converting is the first half of the bar, comparing the second
        overall = (0.5 if stage == "compare" else 0.0) + 0.5 * min(max(fraction, 0.0), 1.0)
        text = f"fp16 check: {STAGES.get(stage, stage)}… {format_percent(overall)}"
        if text != self._shown and self._handle is not None:
            self._shown = text
            self._handle.update(self._bundle(overall, text), raw=True)

    def done(self) -> None:
        seconds = significant(time.monotonic() - self._started)
        if self._handle is not None:
            self._handle.update(self._bundle(1.0, f"fp16 check: done in {seconds} s"), raw=True)


class ConversionLine:
    """A framework model's conversion, one line updated in place: shown from its first stage
    (a model read from the caches shows nothing)."""

    def __init__(self) -> None:
        self._handle: Any = None

    def __call__(self, event: ExportProgress) -> None:
        text = f"converting {event.model} to ONNX: {event.stage}… {format_percent(event.fraction)}"
        if event.done:
            text = (
                f"converting {event.model}: failed"
                if event.error
                else f"{event.model} converted in {significant(event.elapsed_s)} s"
            )
        bundle = ProgressLine._bundle(event.fraction, text)
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)


@magic_arguments()
@argument("variable", help="name of a model variable in this kernel")
@argument("--batch", type=int, default=1, help="batch size to bind (default 1)")
@argument("--seq-len", type=sequence_length, default=None, help=SEQ_LEN_HELP)
@argument("--input-shape", default=None, help=INPUT_SHAPE_HELP)
@argument("--fp16", action="store_true", help="also measure what fp16 does to the outputs")
def ei_inspect(shell: Any, line: str) -> None:
    """Profile a model: inputs, parameters, FLOPs, memory, heaviest layers."""
    args = parse_argstring(ei_inspect, line)
    model = lookup(shell, args.variable)
    with progress_listener(ConversionLine()):  # once, for every length
        loaded = load_model(model, **loader_options(args.input_shape))
    result = profile(loaded, batch_size=args.batch, seq_len=args.seq_len)
    accelerator.set_model(args.variable, result)  # the model the picker judges fits by
    show(plain_text.profile_text(result), result._repr_html_())
    by_length = length_table(loaded, batch_size=args.batch, seq_len=args.seq_len)
    if by_length is not None:
        show(by_length.text, length_table_html(by_length))
    if args.fp16:  # converted and run for real; cached, so recommend() shows it too
        progress = ProgressLine()
        check = fp16_check(model, on_progress=progress, **loader_options(args.input_shape))
        progress.done()
        show(check_text(check), check._repr_html_())


MAGIC = Magic("ei_inspect", ei_inspect, model_variables)
