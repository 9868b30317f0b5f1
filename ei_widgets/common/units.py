"""How quantities read when shown to a person: one formatter per kind of figure.

Every view (the dashboard, the magics, rich reprs, the CLI) formats through these, so one figure
reads the same everywhere; ``labextension/src/format.ts`` mirrors them for the front end. Money
lives in :mod:`ei_widgets.common.money`. This module imports nothing of ours.
"""

from __future__ import annotations

import math

_BINARY = (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
_DECIMAL = (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3))


def significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant figures, without exponent or trailing zeros.

    Integers at or above ``10**digits`` keep all their digits, grouped: ``1234.6 -> '1,235'``.
    """
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= digits - 1:
        return f"{round(value):,}"
    text = f"{value:.{digits - 1 - magnitude}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_bytes(count: float) -> str:
    """Binary units with three significant figures: ``1536 -> '1.5 KiB'``, ``2**32 -> '4 GiB'``."""
    for unit, size in _BINARY:
        if abs(count) >= size:
            return f"{significant(count / size)} {unit}"
    return f"{round(count)} B"


def format_count(count: float) -> str:
    """Decimal prefixes with three significant figures: ``25_610_153 -> '25.6 M'``."""
    for unit, size in _DECIMAL:
        if abs(count) >= size:
            return f"{significant(count / size)} {unit}"
    return significant(count)


def format_ms(seconds: float) -> str:
    """Seconds shown as milliseconds (as seconds from ten on): ``0.0109 -> '10.9 ms'``."""
    if abs(seconds) >= 10:
        return f"{significant(seconds)} s"
    return f"{significant(seconds * 1e3)} ms"


def format_rate(per_second: float, what: str = "inferences") -> str:
    """A throughput: ``91.743 -> '91.7 inferences/s'``."""
    return f"{significant(per_second)} {what}/s"


def format_percent(fraction: float) -> str:
    """A fraction as a percentage with two significant figures below 10%: ``0.034 -> '3.4%'``."""
    percent = 100 * fraction
    return f"{significant(percent, 2 if abs(percent) < 10 else 3)}%"


def format_elapsed(seconds: float) -> str:
    """A duration as a person reads it: ``42 s``, ``5 min 12 s``, ``2 h 05 min``."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{whole} s"


def format_hours(seconds: float) -> str:
    """A duration under an hour as :func:`format_elapsed`, longer ones in hours: ``3.5 h``."""
    return format_elapsed(seconds) if seconds < 3600 else f"{significant(seconds / 3600)} h"
