"""What every ``ei-widgets`` subcommand shares: the :class:`Command` it is registered as, how a
model is named on the command line, JSON output and progress on a terminal."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, is_dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ei_widgets.common.text import sequence_length
from ei_widgets.device.fp16 import FP16Check, fp16_check
from ei_widgets.errors import ModelLoadError
from ei_widgets.models.demo import DEMO_NAMES, demo_model
from ei_widgets.models.frameworks.base import ExportProgress, progress_listener
from ei_widgets.models.types import DEFAULT_SEQ_LEN

__all__ = [
    "Command",
    "ProgressBar",
    "add_seq_len",
    "export_progress",
    "fp16_with_progress",
    "model_path",
    "print_json",
]


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, one line of help, its arguments and what it does."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]


def model_path(spec: str) -> Path:
    """A path to an .onnx file (or a saved TensorFlow model: a SavedModel folder, a .keras or
    .h5 file), or the short name of a demo model (``squeezenet``)."""
    path = Path(spec)
    if path.exists() or spec.endswith(".onnx") or "/" in spec:
        return path
    if spec.removeprefix("light_") in DEMO_NAMES:
        return demo_model(spec)
    raise ModelLoadError(
        f"{spec!r} is neither a file nor a demo model. Give a path to an .onnx file or one of: "
        + ", ".join(DEMO_NAMES)
    )


def add_seq_len(parser: argparse.ArgumentParser) -> None:
    """``--seq-len N``: the sequence length of a transformer's inputs, beside ``--batch``."""
    parser.add_argument(
        "--seq-len",
        type=sequence_length,
        default=None,
        metavar="N",
        help=f"tokens per sequence of a transformer's inputs (default {DEFAULT_SEQ_LEN} for a "
        "model with a sequence dimension; an error for one without)",
    )


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal | Path):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def print_json(value: Any) -> None:
    """``value`` (dataclasses, money and dates included) as indented JSON on stdout."""
    print(json.dumps(_jsonable(value), indent=2))


def fp16_with_progress(model: Path, args: argparse.Namespace) -> FP16Check:
    """The fp16 check of ``model``, with a progress line on a terminal."""
    show = not args.json and sys.stderr.isatty()

    def progress(stage: str, fraction: float) -> None:
        if show:
            sys.stderr.write(f"\rfp16 check: {stage} {fraction:4.0%}")
            sys.stderr.flush()

    check = fp16_check(model, on_progress=progress)
    if show:
        sys.stderr.write("\n")
    return check


@contextlib.contextmanager
def export_progress(args: argparse.Namespace) -> Iterator[None]:
    """A progress line on a terminal while a framework model (a Keras file, say) is converted."""
    if args.json or not sys.stderr.isatty():
        yield
        return
    # A copy of the terminal: an exporter's own output is captured meanwhile (sys.stderr and
    # file descriptor 2 point elsewhere while it runs), the progress line must still show.
    with open(os.dup(sys.stderr.fileno()), "w", closefd=True) as terminal:
        drawn = False

        def draw(event: ExportProgress) -> None:
            nonlocal drawn
            text = f"converting {event.model}: {event.stage} {event.fraction:4.0%}"
            terminal.write(f"\r{text[:100]:<100}" + ("\n" if event.done else ""))
            terminal.flush()
            drawn = not event.done

        with progress_listener(draw):
            try:
                yield
            finally:
                if drawn:
                    terminal.write("\n")


class ProgressBar:
    """A one-line progress bar on stderr (only on a terminal, so logs stay clean)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def update(self, progress: Any) -> None:
        """Draw ``progress`` (anything with ``fraction``, ``done`` and ``total``)."""
        if not self.enabled:
            return
        width = 30
        filled = int(progress.fraction * width)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {progress.done}/{progress.total or '?'}"
        )
        sys.stderr.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled:
            sys.stderr.write("\n")
