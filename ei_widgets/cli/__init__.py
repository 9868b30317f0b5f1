"""The ``ei-widgets`` command: the core without a notebook.

One subcommand per module, each exporting its ``COMMAND`` (a
:class:`~ei_widgets.cli.base.Command`); :data:`COMMANDS` below registers them (a new command is
one module and one line there). Readable tables by default, ``--json`` for scripts. A user error
prints one line on stderr and exits with status 2.

May import the core and ``ei_widgets.reports``; never the notebook (no IPython, no widgets).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from ei_widgets.cli import bench, inspect, recommend, serve, usage
from ei_widgets.cli.base import Command
from ei_widgets.errors import EIError

__all__ = ["COMMANDS", "EXIT_USER_ERROR", "main", "parser"]

EXIT_USER_ERROR = 2
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EFBIG, errno.EBADF}

COMMANDS: tuple[Command, ...] = (
    inspect.COMMAND,
    recommend.COMMAND,
    bench.COMMAND,
    usage.COMMAND,
    serve.COMMAND,
)


def parser() -> argparse.ArgumentParser:
    """The command line, every registered subcommand with ``--json``."""
    main_parser = argparse.ArgumentParser(
        prog="ei-widgets",
        description="Size a simulated Elastic Inference accelerator for an ONNX model.",
    )
    subcommands = main_parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        sub = subcommands.add_parser(command.name, help=command.help, description=command.help)
        sub.add_argument("--json", action="store_true", help="machine-readable output")
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return main_parser


def _warning_line(message: Any, category: Any, *_: Any, **__: Any) -> None:
    """A warning (a damaged ledger row skipped, say) as one line, not Python's two."""
    print(f"ei-widgets: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; 0 on success, 2 (one line on stderr) on a user error, 1 when the
    output cannot be written."""
    args = parser().parse_args(argv)
    shown, warnings.showwarning = warnings.showwarning, _warning_line
    try:
        args.run(args)
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
