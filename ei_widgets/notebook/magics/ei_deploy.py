"""``%ei_deploy [VARIABLE] [--instance TYPE] [--accelerator TYPE] [--count N]``: deploy a model of
this kernel to a simulated SageMaker endpoint (its own server process) and print its URL.

``p = %ei_deploy model --instance ml.m5.large --accelerator ml.eia2.medium`` keeps the
:class:`~ei_widgets.endpoint.predictor.Predictor`; without a variable, the kernel's one model is
deployed.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ei_widgets.common.money import per_hour
from ei_widgets.device.catalog import default_catalog
from ei_widgets.endpoint.predictor import Predictor, deploy
from ei_widgets.notebook.magics.base import Magic, lookup, model_variables


def _model(shell: Any, variable: str | None) -> Any:
    """The variable's model, or the kernel's only model when none is named."""
    if variable:
        return lookup(shell, variable)
    found = model_variables(shell, [])
    if len(found) == 1:
        return shell.user_ns[found[0]]
    listed = f"Models in this kernel: {', '.join(found)}." if found else "No model found yet."
    raise UsageError(
        "ei_widgets: %ei_deploy needs the model's variable, e.g. %ei_deploy model --instance "
        f"ml.m5.large --accelerator ml.eia2.medium. {listed}"
    )


@magic_arguments()
@argument("variable", nargs="?", help="model variable (default: the kernel's only model)")
@argument("--instance", default="ml.m5.large", help="instance type (default ml.m5.large)")
@argument("--accelerator", default=None, help="EI accelerator per instance, e.g. ml.eia2.medium")
@argument("--count", type=int, default=1, help="instance count (default 1)")
@argument("--name", default=None, help="endpoint name (default: made from the model's)")
@argument("--precision", default="fp32", choices=["fp32", "fp16"])
@argument(
    "--clock",
    default="paced",
    choices=["paced", "virtual"],
    help="paced: requests last their modelled latency; virtual: nothing sleeps",
)
def ei_deploy(shell: Any, line: str) -> Predictor:
    """Deploy a model to a simulated SageMaker endpoint and print its URL."""
    args = parse_argstring(ei_deploy, line)
    predictor = deploy(
        _model(shell, args.variable),
        instance_type=args.instance,
        accelerator_type=args.accelerator,
        initial_instance_count=args.count,
        endpoint_name=args.name,
        precision=args.precision,
        clock=args.clock,
    )
    what = predictor.instance_type + (
        f" + {predictor.accelerator_type}" if predictor.accelerator_type else ""
    )
    rate = predictor.live(seconds=1).rate_per_hour
    print(
        f"Deployed {predictor.endpoint_name}: {predictor.instance_count} x {what},"
        f" {per_hour(rate)} while it exists."
        f"\nPOST {predictor.invocations_url} (header {_header(predictor)})"
        "\nDelete it with predictor.delete_endpoint() or %ei_endpoints --delete "
        f"{predictor.endpoint_name}."
    )
    return predictor


def _header(predictor: Predictor) -> str:
    name, value = next(iter(predictor.headers.items()))
    return f"{name}: {value}"


def _complete(shell: Any, words: list[str]) -> list[str]:
    previous = words[-2] if len(words) >= 2 else ""
    catalog = default_catalog()
    if previous == "--instance":
        return sorted(i.name for i in (*catalog.notebook_instances(), *catalog.cpu_instances(),
                                       *catalog.gpu_instances()))  # fmt: skip
    if previous == "--accelerator":
        return sorted(catalog.accelerators)
    if previous in ("--precision",):
        return ["fp16", "fp32"]
    if previous == "--clock":
        return ["paced", "virtual"]
    return model_variables(shell, words)


MAGIC = Magic("ei_deploy", ei_deploy, _complete)
