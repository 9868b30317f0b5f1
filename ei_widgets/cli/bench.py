"""``ei-widgets bench MODEL --accelerator A``: real inference on a simulated accelerator, on the
virtual clock."""

from __future__ import annotations

import argparse
import sys

from ei_widgets.cli.base import Command, ProgressBar, add_seq_len, model_path, print_json
from ei_widgets.common.text import mapping_text
from ei_widgets.device import accelerator
from ei_widgets.device.metrics import default_stream
from ei_widgets.device.runs import Run
from ei_widgets.errors import ModelLoadError
from ei_widgets.profiling.profiler import profile


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model")
    parser.add_argument("--accelerator", default="ml.eia2.medium")
    parser.add_argument("--instance", default=None)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16"])
    parser.add_argument("--batch", type=int, default=1)
    add_seq_len(parser)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)


def run(args: argparse.Namespace) -> None:
    """Run the requests and print the simulated throughput and latency percentiles."""
    model = model_path(args.model)
    # The sequence length is bound in the profile, whose input shapes the requests take.
    profiled = profile(model, batch_size=args.batch, seq_len=args.seq_len)
    stream = default_stream()
    stream.reset()
    progress_bar = ProgressBar(enabled=not args.json and sys.stderr.isatty())
    with accelerator.attach(args.accelerator, instance=args.instance, precision=args.precision):
        load = Run(
            model,
            batch_size=args.batch,
            requests=args.requests,
            concurrency=args.concurrency,
            clock="virtual",
            profile=profiled,
            on_progress=progress_bar.update,
        )
        final = load.run()
    progress_bar.close()
    if load.exception is not None:
        if type(load.exception).__module__.startswith("onnxruntime"):  # a model ORT refuses
            reason = str(load.exception).strip().splitlines()[0] if str(load.exception) else ""
            raise ModelLoadError(f"onnxruntime cannot run {model}: {reason}") from load.exception
        raise load.exception
    metrics = stream.snapshot()
    summary = {
        "model": str(model),
        "accelerator": args.accelerator,
        "precision": args.precision,
        "batch_size": args.batch,
        "seq_len": profiled.seq_len,
        "requests": final.done,
        "inferences": final.inferences,
        "errors": metrics.errors,
        "simulated_throughput_per_s": metrics.throughput_per_s,
        "latency_p50_ms": metrics.p50_ms,
        "latency_p95_ms": metrics.p95_ms,
        "latency_p99_ms": metrics.p99_ms,
        "host_bound_share": metrics.host_bound_share,
        "wall_seconds": final.elapsed_s,
    }
    if args.json:
        print_json(summary)
    else:
        print(mapping_text(summary))
        print("Simulated figures (virtual clock); outputs computed for real by onnxruntime.")


COMMAND = Command(
    "bench", "Run real inference on a simulated accelerator (virtual clock).", _arguments, run
)
