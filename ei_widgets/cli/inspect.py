"""``ei-widgets inspect MODEL [--batch N] [--seq-len N] [--fp16]``: profile a model; a
transformer's also shows its modelled latency at several sequence lengths."""

from __future__ import annotations

import argparse

from ei_widgets.cli.base import (
    Command,
    add_seq_len,
    export_progress,
    fp16_with_progress,
    model_path,
    print_json,
)
from ei_widgets.device.fp16 import check_text
from ei_widgets.device.sequence import length_table
from ei_widgets.models.loading import load_model
from ei_widgets.profiling.profiler import profile
from ei_widgets.reports import plain_text


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        help="path to an .onnx file (or a SavedModel folder, a .keras or .h5 file), or a demo "
        "model name (squeezenet)",
    )
    parser.add_argument("--batch", type=int, default=1)
    add_seq_len(parser)
    parser.add_argument(
        "--fp16", action="store_true", help="also measure what fp16 does to the outputs"
    )


def run(args: argparse.Namespace) -> None:
    """Profile the model and print it (and its fp16 check with ``--fp16``)."""
    path = model_path(args.model)
    with export_progress(args):
        model = load_model(path)  # converted once (with progress), for the profile and lengths
    result = profile(model, batch_size=args.batch, seq_len=args.seq_len)
    by_length = length_table(model, batch_size=args.batch, seq_len=args.seq_len)
    check = fp16_with_progress(path, args) if args.fp16 else None
    if args.json:
        print_json(
            {
                "name": result.name,
                "batch_size": result.batch_size,
                "seq_len": result.seq_len,
                "bound_inputs": result.bound_inputs,
                "inputs": result.inputs,
                "outputs": result.outputs,
                "params": result.param_count,
                "param_bytes": result.param_bytes,
                "flops": result.flops,
                "macs": result.macs,
                "peak_activation_bytes": result.peak_activation_bytes,
                "model_size_bytes": result.model_size_bytes,
                "unknown_ops": result.unknown_ops,
                "by_op_type": result.by_op_type(),
                "warnings": result.warnings,
                **({"fp16": check} if check is not None else {}),
                **({"by_length": by_length} if by_length is not None else {}),
            }
        )
    else:
        print(plain_text.profile_text(result))
        if by_length is not None:
            print()
            print(by_length.text)
        if check is not None:
            print()
            print(check_text(check))


COMMAND = Command("inspect", "Profile a model: inputs, parameters, FLOPs, memory.", _arguments, run)
