"""``ei-widgets recommend MODEL --latency-ms T [--rps R] [--endpoint]``: the cheapest option that
meets a latency target, the retired EI options and what is available today as two groups; with
``--endpoint``, the cheapest hosted endpoint (instance type, accelerator, instance count) whose
p90 latency at the rate meets it."""

from __future__ import annotations

import argparse
from pathlib import Path

from ei_widgets.cli.base import Command, add_seq_len, fp16_with_progress, model_path, print_json
from ei_widgets.device.sizing import (
    DEFAULT_BATCH_SIZES,
    DEFAULT_LATENCY_TARGET_MS,
    DEFAULT_REQUESTS_PER_SECOND,
    recommend,
)
from ei_widgets.errors import EIError
from ei_widgets.reports import plain_text


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=DEFAULT_LATENCY_TARGET_MS,
        help=f"latency target per request (default {DEFAULT_LATENCY_TARGET_MS:g})",
    )
    parser.add_argument(
        "--rps",
        type=float,
        default=DEFAULT_REQUESTS_PER_SECOND,
        help=f"requests per second to serve (default {DEFAULT_REQUESTS_PER_SECOND:g}; 0: any)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        nargs="+",
        default=None,
        help="batch sizes to consider (default 1 2 4 8 16 32; with --endpoint, each request's"
        " batch: 1)",
    )
    parser.add_argument(
        "--endpoint",
        action="store_true",
        help="size a hosted endpoint: instance count at a p90 target at --rps",
    )
    add_seq_len(parser)
    parser.add_argument(
        "--instance",
        default=None,
        help="notebook instance EI is attached to (default ml.t3.medium)",
    )
    parser.add_argument(
        "--precision", nargs="+", default=["fp32", "fp16"], choices=["fp32", "fp16"]
    )
    parser.add_argument("--limit", type=int, default=10, help="rows to print per group")
    parser.add_argument(
        "--fp16", action="store_true", help="measure fp16's effect for the fp16 rows first"
    )


def run(args: argparse.Namespace) -> None:
    """Weigh every option and print the pick, its reason and the two groups."""
    model = model_path(args.model)
    if args.endpoint:
        _endpoint(model, args)
        return
    check = fp16_with_progress(model, args) if args.fp16 else None
    result = recommend(
        model,
        latency_target_ms=args.latency_ms,
        requests_per_second=args.rps,
        batch_sizes=args.batch or DEFAULT_BATCH_SIZES,
        precisions=args.precision,
        instance=args.instance,
        fp16=check,
        seq_len=args.seq_len,
    )
    if args.json:
        print_json(
            {
                "pick": result.pick,
                "pick_ei": result.pick_ei,
                "pick_today": result.pick_today,
                "reason": result.reason,
                "fp16": result.fp16,
                "by_length": result.by_length,
                "rows": result.to_rows(),
            }
        )
    else:
        print(plain_text.recommendation_text(result, limit=args.limit))


def _endpoint(model: Path, args: argparse.Namespace) -> None:
    if args.fp16:
        raise EIError("--fp16 does not apply to --endpoint sizing; leave one of them out.")
    result = recommend(
        model,
        latency_target_ms=args.latency_ms,
        requests_per_second=args.rps,
        batch_sizes=args.batch,
        precisions=args.precision,
        instance=args.instance,
        endpoint=True,
        seq_len=args.seq_len,
    )
    if args.json:
        print_json(
            {
                "pick": result.pick.to_dict() if result.pick else None,
                "pick_ei": result.pick_ei.to_dict() if result.pick_ei else None,
                "pick_today": result.pick_today.to_dict() if result.pick_today else None,
                "reason": result.reason,
                "accuracy": result.accuracy,
                "options": result.to_rows(),
            }
        )
    else:
        print(plain_text.endpoint_recommendation_text(result, limit=args.limit))


COMMAND = Command(
    "recommend",
    "The cheapest accelerator or instance that meets a latency target.",
    _arguments,
    run,
)
