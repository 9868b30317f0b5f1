"""The ``ei-widgets`` command: the core without a notebook.

One subcommand per module, each exporting its ``COMMAND`` (a
:class:`~ei_widgets.cli.base.Command`); :data:`COMMANDS` below registers them (a new command is
one module and one line there). Readable tables by default, ``--json`` for scripts. A user error
prints one line on stderr and exits with status 2.

May import the core and ``ei_widgets.reports``; never the notebook (no IPython, no widgets).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ei_widgets.cli import bench, inspect, recommend, usage
from ei_widgets.cli.base import Command
from ei_widgets.errors import EIError

__all__ = ["COMMANDS", "EXIT_USER_ERROR", "main", "parser"]

EXIT_USER_ERROR = 2

COMMANDS: tuple[Command, ...] = (
    inspect.COMMAND,
    recommend.COMMAND,
    bench.COMMAND,
    usage.COMMAND,
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; 0 on success, 2 (one line on stderr) on a user error."""
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except EIError as error:
        print(f"ei-widgets: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0
