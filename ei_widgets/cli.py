"""The ``ei-widgets`` command: the core without a notebook.

``inspect``, ``recommend``, ``bench`` (virtual clock) and ``usage``; readable tables by default,
``--json`` for scripts. A user error prints one line on stderr and exits with status 2.

``inspect --fp16`` and ``recommend --fp16`` also convert the model to fp16 and measure what that
does to its outputs (``ei_widgets.device.fp16``); ``recommend`` lists the retired EI options and
what is
available today as two groups, each with its pick.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ei_widgets.billing.money import format_money
from ei_widgets.billing.usage import usage, write_csv
from ei_widgets.device import accelerator
from ei_widgets.device.fp16 import check_text, fp16_check
from ei_widgets.device.metrics import default_stream
from ei_widgets.device.runs import Run
from ei_widgets.device.sizing import recommend
from ei_widgets.errors import EIError, ModelLoadError
from ei_widgets.models.demo import DEMO_NAMES, demo_model
from ei_widgets.profiling.profiler import profile
from ei_widgets.reports import plain_text

EXIT_USER_ERROR = 2
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EFBIG, errno.EBADF}


def _model(spec: str) -> Path:
    """A path to an .onnx file, or the short name of a demo model (``squeezenet``)."""

    path = Path(spec)
    if path.exists() or spec.endswith(".onnx") or "/" in spec:
        return path
    if spec.removeprefix("light_") in DEMO_NAMES:
        return demo_model(spec)
    raise ModelLoadError(
        f"{spec!r} is neither a file nor a demo model. Give a path to an .onnx file or one of: "
        + ", ".join(DEMO_NAMES)
    )


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _print_json(value: Any) -> None:
    print(json.dumps(_jsonable(value), indent=2))


def _fp16(model: Path, args: argparse.Namespace) -> Any:
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


def cmd_inspect(args: argparse.Namespace) -> None:
    model = _model(args.model)
    result = profile(model, batch_size=args.batch)
    check = _fp16(model, args) if args.fp16 else None
    if args.json:
        _print_json(
            {
                "name": result.name,
                "batch_size": result.batch_size,
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
            }
        )
    else:
        print(plain_text.profile_text(result))
        if check is not None:
            print()
            print(check_text(check))


def cmd_recommend(args: argparse.Namespace) -> None:
    model = _model(args.model)
    check = _fp16(model, args) if args.fp16 else None
    result = recommend(
        model,
        latency_target_ms=args.latency_ms,
        requests_per_second=args.rps,
        batch_sizes=args.batch,
        precisions=args.precision,
        fp16=check,
    )
    if args.json:
        _print_json(
            {
                "pick": result.pick,
                "pick_ei": result.pick_ei,
                "pick_today": result.pick_today,
                "reason": result.reason,
                "fp16": result.fp16,
                "rows": result.to_rows(),
            }
        )
    else:
        print(plain_text.recommendation_text(result, limit=args.limit))


def cmd_bench(args: argparse.Namespace) -> None:
    model = _model(args.model)
    stream = default_stream()
    stream.reset()
    progress_bar = _ProgressBar(enabled=not args.json and sys.stderr.isatty())
    with accelerator.attach(args.accelerator, instance=args.instance, precision=args.precision):
        run = Run(
            model,
            batch_size=args.batch,
            requests=args.requests,
            concurrency=args.concurrency,
            clock="virtual",
            on_progress=progress_bar.update,
        )
        final = run.run()
    progress_bar.close()
    if run.exception is not None:
        if type(run.exception).__module__.startswith("onnxruntime"):  # a model ORT refuses
            reason = str(run.exception).strip().splitlines()[0] if str(run.exception) else ""
            raise ModelLoadError(f"onnxruntime cannot run {model}: {reason}") from run.exception
        raise run.exception
    metrics = stream.snapshot()
    summary = {
        "model": str(model),
        "accelerator": args.accelerator,
        "precision": args.precision,
        "batch_size": args.batch,
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
        _print_json(summary)
    else:
        print(plain_text.mapping_text(summary))
        print("Simulated figures (virtual clock); outputs computed for real by onnxruntime.")


def cmd_usage(args: argparse.Namespace) -> None:
    rows = usage(since=args.since, until=args.until, by=args.by, path=args.ledger)
    if args.csv:
        write_csv(rows, sys.stdout)
    elif args.json:
        _print_json(rows)
    elif not rows:
        print("No usage recorded yet.")
    else:
        print(
            plain_text.table(
                [
                    (
                        r.key,
                        r.sessions,
                        r.instance_seconds / 3600,
                        r.accelerator_seconds / 3600,
                        format_money(r.total),
                        r.inferences,
                    )
                    for r in rows
                ],
                [args.by, "sessions", "instance h", "accelerator h", "cost", "inferences"],
            )
        )


class _ProgressBar:
    """A one-line progress bar on stderr (only on a terminal, so logs stay clean)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def update(self, progress: Any) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(progress.fraction * width)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {progress.done}/{progress.total or '?'}"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _date(text: str) -> Any:
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-28") from None


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="ei-widgets",
        description="Size a simulated Elastic Inference accelerator for an ONNX model.",
    )
    commands = main_parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--json", action="store_true", help="machine-readable output")
        return sub

    inspect = add("inspect", "Profile a model: inputs, parameters, FLOPs, memory.")
    inspect.add_argument("model", help="path to an .onnx file, or a demo model name (squeezenet)")
    inspect.add_argument("--batch", type=int, default=1)
    inspect.add_argument(
        "--fp16", action="store_true", help="also measure what fp16 does to the outputs"
    )
    inspect.set_defaults(func=cmd_inspect)

    rec = add("recommend", "The cheapest accelerator or instance that meets a latency target.")
    rec.add_argument("model")
    rec.add_argument("--latency-ms", type=float, required=True)
    rec.add_argument("--rps", type=float, default=1.0, help="requests per second to serve")
    rec.add_argument("--batch", type=int, nargs="+", default=[1], help="batch sizes to consider")
    rec.add_argument("--precision", nargs="+", default=["fp32", "fp16"], choices=["fp32", "fp16"])
    rec.add_argument("--limit", type=int, default=10, help="rows to print per group")
    rec.add_argument(
        "--fp16", action="store_true", help="measure fp16's effect for the fp16 rows first"
    )
    rec.set_defaults(func=cmd_recommend)

    bench = add("bench", "Run real inference on a simulated accelerator (virtual clock).")
    bench.add_argument("model")
    bench.add_argument("--accelerator", default="ml.eia2.medium")
    bench.add_argument("--instance", default=None)
    bench.add_argument("--precision", default="fp32", choices=["fp32", "fp16"])
    bench.add_argument("--batch", type=int, default=1)
    bench.add_argument("--requests", type=int, default=1000)
    bench.add_argument("--concurrency", type=int, default=1)
    bench.set_defaults(func=cmd_bench)

    use = add("usage", "Usage and cost history from the ledger.")
    use.add_argument("--by", choices=["day", "accelerator", "notebook"], default="day")
    use.add_argument("--since", type=_date, default=None)
    use.add_argument("--until", type=_date, default=None)
    use.add_argument("--ledger", default=None, help="ledger file (default: $EI_WIDGETS_LEDGER)")
    use.add_argument("--csv", action="store_true", help="CSV output")
    use.set_defaults(func=cmd_usage)
    return main_parser


def _warning_line(message: Any, category: Any, *_: Any, **__: Any) -> None:
    """A warning (a damaged ledger row skipped, say) as one line, not Python's two."""
    print(f"ei-widgets: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    shown, warnings.showwarning = warnings.showwarning, _warning_line
    try:
        args.func(args)
        sys.stdout.flush()  # a full disk or closed pipe shows here, not at interpreter exit
    except EIError as error:
        print(f"ei-widgets: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as error:  # writing the output failed (/dev/full, a closed pipe)
        if error.errno not in _OUTPUT_ERRNOS:
            raise
        _drop_stdout()
        print(f"ei-widgets: cannot write the output: {error.strerror or error}", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = shown
    return 0


def _drop_stdout() -> None:
    """Send what is left of stdout to /dev/null, so exiting does not fail on it again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
