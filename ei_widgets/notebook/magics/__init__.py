"""The ``%ei*`` line magics: a typed-command view of the core, with tab completion.

One magic per module, named as the magic is, each exporting its ``MAGIC`` (a
:class:`~ei_widgets.notebook.magics.base.Magic`); the :data:`MAGICS` tuple below registers them
(a new magic is one module and one line there). The
magics parse arguments and show results; every decision is made by the core. Results display as
HTML in a notebook with the command line's plain text as their fallback. Errors from the core are
user errors: IPython's ``UsageError``, one red line that says what is valid, and Run All stops.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from IPython.core.completer import CompletionContext, SimpleCompletion, context_matcher

from ei_widgets.notebook.magics import (
    ei,
    ei_attach,
    ei_deploy,
    ei_detach,
    ei_endpoints,
    ei_inspect,
    ei_recommend,
    ei_status,
)
from ei_widgets.notebook.magics.base import Magic

__all__ = ["MAGICS", "register", "unregister"]

MAGICS: tuple[Magic, ...] = (
    ei.MAGIC,
    ei_attach.MAGIC,
    ei_detach.MAGIC,
    ei_status.MAGIC,
    ei_inspect.MAGIC,
    ei_recommend.MAGIC,
    ei_deploy.MAGIC,
    ei_endpoints.MAGIC,
)
_BY_NAME = {magic.name: magic for magic in MAGICS}


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
        magic = _BY_NAME.get(words[0].lstrip("%")) if len(words) >= 2 else None
        if magic is None:
            return {"completions": [], "suppress": False}
        token = context.token
        names = [n for n in magic.complete(shell, words) if n.startswith(token)]
        return {"completions": [SimpleCompletion(n) for n in names], "suppress": bool(names)}

    return ei_matcher


_matchers: dict[int, Any] = {}


def register(shell: Any) -> None:
    """Register the magics and their completer on an IPython shell."""
    for magic in MAGICS:
        shell.register_magic_function(magic.bound(shell), "line", magic.name)
    matcher = _make_matcher(shell)
    shell.Completer.custom_matchers.append(matcher)
    _matchers[id(shell)] = matcher


def unregister(shell: Any) -> None:
    """Remove the magics and the completer again."""
    for magic in MAGICS:
        shell.magics_manager.magics["line"].pop(magic.name, None)
    matcher = _matchers.pop(id(shell), None)
    if matcher in shell.Completer.custom_matchers:
        shell.Completer.custom_matchers.remove(matcher)
