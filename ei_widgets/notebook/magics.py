"""The ``%ei*`` line magics: a typed-command view of the core, with tab completion.

The magics parse arguments and show results; every decision is made by the core (accelerator,
profile, sizing). Results display as rich HTML in a notebook (:mod:`ei_widgets.rich`) with the
plain text of the command line as their fallback. Errors from the core are user errors: they raise
IPython's ``UsageError``, one red line that says what is valid, and stop a Run All.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable
from typing import Any

from IPython.core.completer import CompletionContext, SimpleCompletion, context_matcher
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ei_widgets import rich
from ei_widgets.common.units import format_bytes
from ei_widgets.device import accelerator
from ei_widgets.device.catalog import default_catalog
from ei_widgets.device.fp16 import check_text, fp16_check
from ei_widgets.errors import EIError, ProfileError
from ei_widgets.models.discovery import find_models
from ei_widgets.models.frameworks import parse_input_shape
from ei_widgets.notebook.views.dashboard import dashboard
from ei_widgets.profiling.profiler import profile
from ei_widgets.reports import plain_text
from ei_widgets.reports.plain_text import SIZING_RPS, SIZING_TARGET_MS
from ei_widgets.rich import per_hour

MAGIC_NAMES = ("ei", "ei_attach", "ei_detach", "ei_status", "ei_inspect", "ei_recommend")


def _user_errors_as_usage_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """An ei_widgets error is the user's: IPython's one-line UsageError, not a traceback."""

    @functools.wraps(method)
    def wrapper(self: Magics, line: str) -> Any:
        try:
            shlex.split(line)  # what the argument parser does: an unclosed quote is a usage error
        except ValueError as error:
            raise UsageError(f"ei_widgets: cannot read the arguments {line!r}: {error}") from None
        try:
            return method(self, line)
        except EIError as error:
            raise UsageError(f"ei_widgets: {error}") from None

    return wrapper


def _show(text: str, html: str) -> None:
    """Rich HTML in a notebook, the command line's text anywhere else."""
    from IPython.display import display

    display({"text/plain": text, "text/html": html}, raw=True)


def _sizes() -> str:
    accelerators = sorted(
        default_catalog().accelerators.values(), key=lambda a: (a.family, a.memory_bytes)
    )
    return ", ".join(
        f"{a.name} ({format_bytes(a.memory_bytes)}, {per_hour(a.price_per_hour)})"
        for a in accelerators
    )


INPUT_SHAPE_HELP = "example input shape for a PyTorch module: 1,3,224,224 (';' between inputs)"


def _loader_options(input_shape: str | None) -> dict[str, Any]:
    """``--input-shape 1,3,224,224`` as the loader option PyTorch modules take."""
    if input_shape is None:
        return {}

    try:
        return {"input_shape": parse_input_shape(input_shape)}
    except ValueError as error:
        raise ProfileError(str(error)) from None


def _lookup(namespace: dict[str, Any], variable: str) -> Any:
    if variable not in namespace:
        found = [entry.variable for entry in find_models(namespace)]
        valid = (
            f"Models in this kernel: {', '.join(found)}."
            if found
            else "No model found in this kernel's variables yet."
        )
        raise UsageError(f"ei_widgets: no variable {variable!r} in this kernel. {valid}")
    return namespace[variable]


@magics_class
class EIMagics(Magics):
    """The `%ei*` magics: dashboard, attach, detach, status, inspect, recommend."""

    @property
    def namespace(self) -> dict[str, Any]:
        """The user's variables (a magic only runs inside a shell, so there is one)."""
        assert self.shell is not None
        return self.shell.user_ns

    @line_magic
    @_user_errors_as_usage_errors
    def ei(self, line: str) -> Any:
        """Show the ei_widgets dashboard."""

        return dashboard(namespace=self.namespace)

    @magic_arguments()
    @argument("name", nargs="?", help="accelerator type, for example ml.eia2.medium")
    @argument("--precision", default="fp32", choices=["fp32", "fp16"])
    @argument("--instance", default=None, help="notebook instance type, for example ml.t3.medium")
    @line_magic
    @_user_errors_as_usage_errors
    def ei_attach(self, line: str) -> None:
        """Attach a simulated Elastic Inference accelerator to this kernel."""

        args = parse_argstring(self.ei_attach, line)
        if not args.name:
            raise UsageError(
                "%ei_attach needs an accelerator size, for example %ei_attach ml.eia2.medium "
                f"[--precision fp16]. Sizes: {_sizes()}."
            )
        attachment = accelerator.attach(args.name, instance=args.instance, precision=args.precision)
        print(f"Attached {attachment.accelerator.name} ({attachment.precision}).")

    @line_magic
    @_user_errors_as_usage_errors
    def ei_detach(self, line: str) -> None:
        """Detach the accelerator."""

        previous = accelerator.detach()
        print(f"Detached {previous.accelerator.name}." if previous else "No accelerator attached.")

    @line_magic
    @_user_errors_as_usage_errors
    def ei_status(self, line: str) -> None:
        """What is attached, what it costs, and the models this kernel holds."""

        status = plain_text.status(self.namespace)
        _show(plain_text.status_text_of(status), rich.status_html(status))

    @magic_arguments()
    @argument("variable", help="name of a model variable in this kernel")
    @argument("--batch", type=int, default=1, help="batch size to bind (default 1)")
    @argument("--input-shape", default=None, help=INPUT_SHAPE_HELP)
    @argument("--fp16", action="store_true", help="also measure what fp16 does to the outputs")
    @line_magic
    @_user_errors_as_usage_errors
    def ei_inspect(self, line: str) -> None:
        """Profile a model: inputs, parameters, FLOPs, memory, heaviest layers."""

        args = parse_argstring(self.ei_inspect, line)
        result = profile(
            _lookup(self.namespace, args.variable),
            batch_size=args.batch,
            **_loader_options(args.input_shape),
        )
        accelerator.set_model(args.variable, result)  # the model the picker judges fits by
        _show(plain_text.profile_text(result), rich.profile_html(result))
        if args.fp16:  # converted and run for real; cached, so recommend() shows it too
            check = fp16_check(
                _lookup(self.namespace, args.variable), **_loader_options(args.input_shape)
            )
            _show(check_text(check), check._repr_html_())

    @magic_arguments()
    @argument("variable", help="name of a model variable in this kernel")
    @argument(
        "--latency-ms",
        type=float,
        default=SIZING_TARGET_MS,
        help=f"latency target per request (default {SIZING_TARGET_MS:g}, as in the dashboard)",
    )
    @argument(
        "--rps",
        type=float,
        default=SIZING_RPS,
        help=f"requests per second to serve (default {SIZING_RPS:g}, as in the dashboard; 0: any)",
    )
    @argument("--input-shape", default=None, help=INPUT_SHAPE_HELP)
    @line_magic
    @_user_errors_as_usage_errors
    def ei_recommend(self, line: str) -> None:
        """The cheapest accelerator or instance that meets a latency target."""

        args = parse_argstring(self.ei_recommend, line)
        result = plain_text.recommend_here(
            _lookup(self.namespace, args.variable),
            latency_target_ms=args.latency_ms,
            requests_per_second=args.rps,
            **_loader_options(args.input_shape),
        )
        _show(plain_text.recommendation_text(result), rich.recommendation_html(result))


def _completions(shell: Any, words: list[str], token: str) -> list[str]:
    """Candidates for the word being typed after one of our magics."""
    magic = words[0].lstrip("%")
    previous = words[-2] if len(words) >= 2 else ""
    if previous == "--instance":
        return sorted(i.name for i in default_catalog().notebook_instances())
    if previous == "--precision":
        return ["fp16", "fp32"]
    if magic == "ei_attach":
        return sorted(default_catalog().accelerators)
    if magic in ("ei_inspect", "ei_recommend"):
        return [entry.variable for entry in find_models(shell.user_ns)]
    return []


def _make_matcher(shell: Any) -> Callable[[CompletionContext], Any]:
    @context_matcher()
    def ei_matcher(context: CompletionContext) -> dict[str, Any]:
        line = context.line_with_cursor
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        if line.endswith(" "):
            words.append("")
        if len(words) < 2 or words[0].lstrip("%") not in MAGIC_NAMES:
            return {"completions": [], "suppress": False}
        token = context.token
        names = [n for n in _completions(shell, words, token) if n.startswith(token)]
        return {"completions": [SimpleCompletion(n) for n in names], "suppress": bool(names)}

    return ei_matcher


_matchers: dict[int, Any] = {}


def register(shell: Any) -> None:
    """Register the magics and their completer on an IPython shell."""
    shell.register_magics(EIMagics)
    matcher = _make_matcher(shell)
    shell.Completer.custom_matchers.append(matcher)
    _matchers[id(shell)] = matcher


def unregister(shell: Any) -> None:
    """Remove the magics and the completer again."""
    for name in MAGIC_NAMES:
        shell.magics_manager.magics["line"].pop(name, None)
    shell.magics_manager.registry.pop("EIMagics", None)
    matcher = _matchers.pop(id(shell), None)
    if matcher in shell.Completer.custom_matchers:
        shell.Completer.custom_matchers.remove(matcher)
