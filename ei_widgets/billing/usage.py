"""Usage history for people: ``usage()`` rows and their CSV.

Without a path it reads the ledger of this kernel's running meter (so it sees the live session's
last heartbeat), else the file, opened read-only: reading never changes a ledger.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from datetime import date, datetime
from decimal import Decimal
from typing import IO, TYPE_CHECKING

from ei_widgets.billing import meters
from ei_widgets.billing.ledger import Ledger, checked_path, default_path
from ei_widgets.billing.ledger_file import check_regular
from ei_widgets.billing.ledger_history import By, UsageRow
from ei_widgets.common.html import BOX, NO_MATH, esc, pandas_module, table
from ei_widgets.common.money import USAGE_PER_MILLION, format_money, money_or_dash
from ei_widgets.common.units import format_count, format_hours
from ei_widgets.errors import LedgerError

if TYPE_CHECKING:
    import pandas

__all__ = ["Usage", "usage", "usage_csv", "usage_frame", "usage_html", "write_csv"]


class Usage(list[UsageRow]):
    """The rows ``usage()`` returns: a list, shown in a notebook as a table, total first."""

    def _repr_html_(self) -> str:
        return usage_html(self)

    def to_pandas(self) -> pandas.DataFrame:
        """One row per line of history (needs pandas, which is optional)."""
        return usage_frame(self)


def _ledger_for(path: str | os.PathLike[str] | None) -> tuple[Ledger, bool]:
    """The ledger to read, and whether the caller must close it: the running meter's when no
    path is given, else the file at ``path`` (or the default), read-only. ``LedgerError`` for a
    path that cannot be a ledger (empty, not a path, too long, a FIFO or device...)."""
    if path is None:
        running = meters.meter()  # looked up on the module, so tests can stand one in
        if running is not None and running.ledger is not None:
            return running.ledger, False
    target = checked_path(path) if path is not None else default_path()
    check_regular(target)  # a FIFO would block the open for ever
    try:
        exists = target.exists()
    except (OSError, ValueError) as exc:
        raise LedgerError(f"cannot read the ledger {str(target)[:200]!r}: {exc}") from None
    if not exists:  # nothing recorded yet: and nothing is created by looking
        return Ledger(":memory:", recover=False), True
    return Ledger(target, recover=False, read_only=True), True


def _bound(value: object, what: str) -> datetime | date | None:
    """``since``/``until``: a date, a datetime, an ISO text (``"2026-12-01"``) or None."""
    if value is None or isinstance(value, date):  # a datetime is a date too
        return value
    if isinstance(value, str):
        try:
            return (
                datetime.fromisoformat(value.strip())
                if "T" in value
                else date.fromisoformat(value.strip())
            )
        except ValueError:
            pass
    raise LedgerError(
        f"usage({what}=...) must be a date, a datetime or an ISO date like '2026-12-01', not"
        f" {str(value)[:60]!r}"
    )


def usage(
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    by: By = "day",
    path: str | os.PathLike[str] | None = None,
) -> Usage:
    """Usage history as rows (see :meth:`~ei_widgets.billing.ledger.Ledger.usage`).

    Without ``path`` it reads the ledger of this kernel's running meter, else the default file.
    """
    since, until = _bound(since, "since"), _bound(until, "until")
    ledger, owned = _ledger_for(path)
    try:
        return Usage(ledger.usage(since, until, by))
    finally:
        if owned:
            ledger.close()


def write_csv(rows: Iterable[UsageRow], file: IO[str]) -> None:
    """Write usage rows as CSV with a header line; money as exact decimal strings."""
    names = [f.name for f in fields(UsageRow)]
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow(["" if getattr(row, n) is None else str(getattr(row, n)) for n in names])


def usage_csv(
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    by: By = "day",
    path: str | os.PathLike[str] | None = None,
) -> str:
    """:func:`usage` as CSV text."""
    buf = io.StringIO()
    write_csv(usage(since, until, by, path), buf)
    return buf.getvalue()


# --- how usage reads -------------------------------------------------------------------------


def usage_html(rows: Sequence[UsageRow]) -> str:
    """Usage history: the total first, then one line per day, accelerator or notebook."""
    if not rows:
        return f'<div class="{NO_MATH}" style="{BOX}">No usage recorded for this period.</div>'
    total = sum((r.total for r in rows), Decimal(0))
    inferences = sum(r.inferences for r in rows)
    lines = table(
        [
            "",
            "sessions",
            "instance time",
            "accelerator time",
            "cost",
            "inferences",
            USAGE_PER_MILLION,
        ],
        [
            (
                r.key,
                r.sessions,
                format_hours(r.instance_seconds),
                format_hours(r.accelerator_seconds),
                format_money(r.total),
                format_count(r.inferences),
                money_or_dash(r.cost_per_million),
            )
            for r in rows
        ],
        "lrrrrrr",
    )
    return (
        f'<div class="{NO_MATH}" style="{BOX}"><div><span style="font-size:16px;font-weight:600">'
        f"{esc(format_money(total))}</span> over {len(rows)} rows,"
        f" {esc(format_count(inferences))} inferences</div>{lines}</div>"
    )


def usage_frame(rows: Sequence[UsageRow]) -> pandas.DataFrame:
    """Usage rows as a table, one column per field (money as ``Decimal``)."""
    return pandas_module().DataFrame([asdict(r) for r in rows])
