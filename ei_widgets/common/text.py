"""Plain-text building blocks: aligned tables and ``key: value`` lines, for the magics, the command
line and every result's text form. Figures go through :mod:`ei_widgets.common.units`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from ei_widgets.common.units import significant

__all__ = ["mapping_text", "sequence_length", "table"]


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[str(c) for c in header]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(row, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return significant(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def mapping_text(values: Mapping[str, Any]) -> str:
    """``key: value`` lines, keys aligned."""
    width = max((len(k) for k in values), default=0)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in values.items())


def sequence_length(text: str) -> int:
    """A ``--seq-len`` value (command line and magics): a whole number of tokens, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of tokens such as 128, not {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1 token, not {value}")
    return value
