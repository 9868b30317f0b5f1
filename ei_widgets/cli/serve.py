"""``ei-widgets serve MODEL --instance ... --accelerator ...``: a hosted endpoint from a shell.

Deploys the model (the same server process ``ei_widgets.deploy`` starts), prints its URL, token
and a ``curl`` example, and keeps it running until Ctrl-C (or SIGTERM), which deletes it and stops
its bill. With ``--json``, one JSON line (url, token, endpoint name) instead.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from ei_widgets.cli.base import Command, model_path
from ei_widgets.common.money import format_money, per_hour
from ei_widgets.endpoint.predictor import deploy


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="an .onnx file or a demo model name (squeezenet, ...)")
    parser.add_argument("--instance", default="ml.m5.large", help="instance type (ml.m5.large)")
    parser.add_argument("--accelerator", default=None, help="accelerator type (ml.eia2.medium)")
    parser.add_argument("--count", type=int, default=1, help="instances (1)")
    parser.add_argument("--name", default=None, help="endpoint name (default: from the model)")
    parser.add_argument("--queue", type=int, default=100, help="requests that may wait (100)")


def run(args: argparse.Namespace) -> None:
    """Deploy, print how to call it, serve until interrupted."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # on stderr, so that --json prints nothing but its one line on stdout
    print(f"Creating endpoint for {args.model} (the modelled model load)...", file=sys.stderr)
    with deploy(
        model_path(args.model),
        instance_type=args.instance,
        accelerator_type=args.accelerator,
        initial_instance_count=args.count,
        endpoint_name=args.name,
        queue_size=args.queue,
    ) as predictor:
        if args.json:
            shown = {
                "endpoint_name": predictor.endpoint_name,
                "url": predictor.url,
                "token": predictor.token,
                "invocations": predictor.invocations_url,
            }
            print(json.dumps(shown))  # one line: a script reads it while the endpoint runs
        else:
            acc = f" + {args.accelerator}" if args.accelerator else ""
            print(f"Endpoint {predictor.endpoint_name}: {args.count} x {args.instance}{acc}")
            print(f"URL    {predictor.url}  (POST /invocations, GET /ping)")
            print(f"Token  {predictor.token}")
            print("Try it:")
            print(
                "  python -c \"import numpy; numpy.save('input.npy',"
                f" numpy.zeros({_shape(predictor.inputs)}, '{_dtype(predictor.inputs)}'))\""
            )
            print(f"  {predictor.curl_example()}")
            rate = per_hour(predictor.bill.rate_per_hour)
            print(f"Billing {rate} while it runs; Ctrl-C deletes the endpoint.")
        print("", end="", flush=True)
        while not stop.wait(0.5):
            if predictor.status not in ("InService", "Creating"):
                break
    cost = format_money(predictor.bill.cost_so_far())
    print(f"Deleted {predictor.endpoint_name}: {cost} billed.", file=sys.stderr)


def _shape(inputs: list[dict[str, object]]) -> tuple[int, ...]:
    shape = inputs[0]["shape"] if inputs else [1]
    assert isinstance(shape, list)
    return tuple(1 if d is None else int(d) for d in shape)


def _dtype(inputs: list[dict[str, object]]) -> str:
    return str(inputs[0]["dtype"]) if inputs else "float32"


COMMAND = Command(
    "serve", "run a hosted endpoint (the SageMaker container contract)", _arguments, run
)
