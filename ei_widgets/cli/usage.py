"""``ei-widgets usage [--by day|accelerator|notebook|endpoint]``: usage and cost history from the
ledger."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from ei_widgets.billing.usage import usage, write_csv
from ei_widgets.cli.base import Command, print_json
from ei_widgets.common.money import format_money
from ei_widgets.common.text import table


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-28") from None


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--by", choices=["day", "accelerator", "notebook", "endpoint"], default="day"
    )
    parser.add_argument("--since", type=_date, default=None)
    parser.add_argument("--until", type=_date, default=None)
    parser.add_argument("--ledger", default=None, help="ledger file (default: $EI_WIDGETS_LEDGER)")
    parser.add_argument("--csv", action="store_true", help="CSV output")


def run(args: argparse.Namespace) -> None:
    """Print the history as a table, CSV or JSON."""
    rows = usage(since=args.since, until=args.until, by=args.by, path=args.ledger)
    if args.csv:
        write_csv(rows, sys.stdout)
    elif args.json:
        print_json(rows)
    elif not rows:
        print("No usage recorded yet.")
    else:
        print(
            table(
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


COMMAND = Command("usage", "Usage and cost history from the ledger.", _arguments, run)
