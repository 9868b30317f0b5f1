"""What every ``%ei*`` magic shares: the :class:`Magic` it is registered as, how a user error
reads (IPython's one-line ``UsageError``), how a result shows (HTML in a notebook, the command
line's text elsewhere) and how a model variable is looked up.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.display import display

from ei_widgets.device.catalog import default_catalog
from ei_widgets.errors import EIError, ProfileError
from ei_widgets.models.discovery import find_models
from ei_widgets.models.frameworks import parse_input_shape
from ei_widgets.models.types import DEFAULT_SEQ_LEN

__all__ = [
    "INPUT_SHAPE_HELP",
    "SEQ_LEN_HELP",
    "Magic",
    "loader_options",
    "lookup",
    "model_variables",
    "show",
]

Run = Callable[[Any, str], Any]
"""A magic's body: ``run(shell, line)``; what it returns is the cell's result."""

Complete = Callable[[Any, list[str]], list[str]]
"""Candidates for the word being typed, given the shell and the words so far (the last one is
the word being typed, possibly empty)."""


def _no_completions(shell: Any, words: list[str]) -> list[str]:
    return []


@dataclass(frozen=True)
class Magic:
    """One line magic: its name (without ``%``), its body and its completions."""

    name: str
    run: Run
    complete: Complete = _no_completions

    def bound(self, shell: Any) -> Callable[[str], Any]:
        """The function IPython registers: the line in, an ei_widgets error out as a UsageError.
        It keeps the body's docstring and argument parser, so ``%ei_attach?`` shows them."""

        @functools.wraps(self.run)
        def magic(line: str) -> Any:
            try:
                shlex.split(line)  # what the argument parser does: an unclosed quote is the user's
            except ValueError as error:
                raise UsageError(
                    f"ei_widgets: cannot read the arguments {line!r}: {error}"
                ) from None
            try:
                return self.run(shell, line)
            except EIError as error:
                raise UsageError(f"ei_widgets: {error}") from None

        return magic


def show(text: str, html: str) -> None:
    """Rich HTML in a notebook, the command line's text anywhere else."""
    display({"text/plain": text, "text/html": html}, raw=True)


SEQ_LEN_HELP = (
    f"tokens per sequence of a transformer's inputs (default {DEFAULT_SEQ_LEN} for a model with "
    "a sequence dimension; an error for one without)"
)
INPUT_SHAPE_HELP = "example input shape for a PyTorch module: 1,3,224,224 (';' between inputs)"


def loader_options(input_shape: str | None) -> dict[str, Any]:
    """``--input-shape 1,3,224,224`` as the loader option PyTorch modules take."""
    if input_shape is None:
        return {}
    try:
        return {"input_shape": parse_input_shape(input_shape)}
    except ValueError as error:
        raise ProfileError(str(error)) from None


def lookup(shell: Any, variable: str) -> Any:
    """The value of ``variable`` in the user's namespace, or a UsageError naming the models."""
    namespace = shell.user_ns
    if variable not in namespace:
        found = model_variables(shell, [])
        valid = (
            f"Models in this kernel: {', '.join(found)}."
            if found
            else "No model found in this kernel's variables yet."
        )
        raise UsageError(f"ei_widgets: no variable {variable!r} in this kernel. {valid}")
    return namespace[variable]


def model_variables(shell: Any, words: list[str]) -> list[str]:
    """The variables of the user's namespace that hold a model (completions too)."""
    return [entry.variable for entry in find_models(shell.user_ns)]


def accelerator_names(shell: Any, words: list[str]) -> list[str]:
    """Every accelerator type (completions)."""
    return sorted(default_catalog().accelerators)
