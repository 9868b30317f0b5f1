"""Usage history from ledger rows: sessions cut into pieces, clipped, grouped and summed.

Pure functions over the rows :class:`~ei_widgets.billing.ledger.Ledger` reads; exact integer units
throughout, rounded once per row (and then split, so a row's parts add up to its total).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from ei_widgets.common.money import US_PER_S, dollars, split
from ei_widgets.errors import LedgerError

__all__ = ["NO_ACCELERATOR", "By", "UsageRow", "epoch_us", "group", "key_function"]

By = Literal["day", "accelerator", "notebook"]
NO_ACCELERATOR = "(none)"


def epoch_us(value: datetime | date) -> int:
    """A bound given by the user, as microseconds since the epoch (naive datetimes are UTC)."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


def day_start_us(at_us: int) -> int:
    """The UTC midnight at or before ``at_us`` (epoch microseconds)."""
    day_us = 86_400 * US_PER_S
    return at_us - at_us % day_us


@dataclass(frozen=True)
class UsageRow:
    """One line of usage history: a day, an accelerator or a notebook."""

    key: str
    sessions: int
    instance_seconds: float
    accelerator_seconds: float
    instance_cost: Decimal
    accelerator_cost: Decimal
    total: Decimal
    inferences: int
    errors: int
    cost_per_million: Decimal | None  # total per million inferences; None without inferences


@dataclass
class Bucket:
    """Running sums of one row."""

    sessions: set[int]
    instance_us: int = 0
    accelerator_us: int = 0
    instance_units: int = 0
    accelerator_units: int = 0
    inferences: int = 0
    errors: int = 0

    def row(self, key: str) -> UsageRow:
        instance_cost, accelerator_cost = split([self.instance_units, self.accelerator_units])
        units = self.instance_units + self.accelerator_units
        per_million = dollars(units * 1_000_000 // self.inferences) if self.inferences > 0 else None
        return UsageRow(
            key=key,
            sessions=len(self.sessions),
            instance_seconds=self.instance_us / US_PER_S,
            accelerator_seconds=self.accelerator_us / US_PER_S,
            instance_cost=instance_cost,
            accelerator_cost=accelerator_cost,
            total=instance_cost + accelerator_cost,
            inferences=self.inferences,
            errors=self.errors,
            cost_per_million=per_million,
        )


@dataclass(frozen=True)
class Piece:
    """A stretch of one session during which nothing changed (same instance, same accelerator)."""

    start_us: int  # wall-clock epoch microseconds (session start + monotonic offset)
    end_us: int
    instance_rate: int | None
    accelerator_rate: int | None
    accelerator: str | None
    notebook: str


class Span(NamedTuple):
    """One interval row, on its session's monotonic timeline (microseconds from the start)."""

    kind: str
    name: str
    rate: int
    start: int
    end: int
    inferences: int
    errors: int


def pieces(anchor: int, spans: Sequence[Span], notebook: str) -> Iterator[Piece]:
    """Cut a session into stretches with one instance rate and at most one accelerator.

    A sweep over the interval ends: linear in the number of intervals (after sorting), so a
    session with thousands of attach/detach cycles stays cheap to read.
    """
    starts: dict[int, list[Span]] = {}
    ends: dict[int, list[Span]] = {}
    for span in spans:
        if span.end > span.start:
            starts.setdefault(span.start, []).append(span)
            ends.setdefault(span.end, []).append(span)
    cuts = sorted(starts.keys() | ends.keys())
    active: dict[str, list[Span]] = {"instance": [], "accelerator": []}
    for a, b in itertools.pairwise(cuts):
        for span in ends.get(a, ()):
            active[span.kind].remove(span)
        for span in starts.get(a, ()):
            active[span.kind].append(span)
        inst = active["instance"][-1] if active["instance"] else None
        acc = active["accelerator"][-1] if active["accelerator"] else None
        if inst is None and acc is None:
            continue
        yield Piece(
            anchor + a,
            anchor + b,
            inst.rate if inst else None,
            acc.rate if acc else None,
            acc.name if acc else None,
            notebook,
        )


def clip(piece: Piece, lo: int | None, hi: int | None, split_days: bool) -> Iterator[Piece]:
    start = piece.start_us if lo is None else max(piece.start_us, lo)
    end = piece.end_us if hi is None else min(piece.end_us, hi)
    while start < end:
        stop = min(end, day_start_us(start) + 86_400 * US_PER_S) if split_days else end
        yield Piece(
            start,
            stop,
            piece.instance_rate,
            piece.accelerator_rate,
            piece.accelerator,
            piece.notebook,
        )
        start = stop


def key_function(by: str) -> Callable[[Piece], str]:
    """How rows are keyed: by UTC day, by accelerator, or by notebook."""
    if by == "day":
        return lambda p: (
            datetime.fromtimestamp(p.start_us // US_PER_S, timezone.utc).date().isoformat()
        )
    if by == "accelerator":
        return lambda p: p.accelerator or NO_ACCELERATOR
    if by == "notebook":
        return lambda p: p.notebook
    raise LedgerError(f"usage(by=...) must be 'day', 'accelerator' or 'notebook', not {by!r}")


def group(
    sessions: Sequence[Sequence[Any]],
    rows: Sequence[Sequence[Any]],
    lo: int | None,
    hi: int | None,
    key_of: Callable[[Piece], str],
    split_days: bool,
) -> dict[str, Bucket]:
    """Sum the sessions' intervals into buckets keyed by ``key_of``, clipped to [lo, hi).

    ``sessions`` are (id, kernel_id, notebook, started_at) rows, ``rows`` interval rows (session
    id, kind, name, rate, offset, duration, inferences, errors) ordered by session and offset.
    """
    by_session: dict[int, list[Span]] = {}
    for sid_, kind, name, rate, offset, duration, inferences, errors in rows:
        by_session.setdefault(int(sid_), []).append(
            Span(
                str(kind),
                str(name),
                int(rate),
                int(offset),
                int(offset) + int(duration),
                int(inferences),
                int(errors),
            )
        )
    buckets: dict[str, Bucket] = {}
    for sid, kernel_id, notebook, started_at in sessions:
        anchor = round(float(started_at) * US_PER_S)
        label = str(notebook or kernel_id or f"session {sid}")
        spans = by_session.get(int(sid), [])
        for piece in pieces(anchor, spans, label):
            for part in clip(piece, lo, hi, split_days):
                b = buckets.setdefault(key_of(part), Bucket(sessions=set()))
                b.sessions.add(int(sid))
                dur = part.end_us - part.start_us
                if part.instance_rate is not None:
                    b.instance_us += dur
                    b.instance_units += part.instance_rate * dur
                if part.accelerator_rate is not None:
                    b.accelerator_us += dur
                    b.accelerator_units += part.accelerator_rate * dur
        # Work counts where its interval ends (the last heartbeat that reported it).
        for span in spans:
            if span.kind != "accelerator" or not (span.inferences or span.errors):
                continue
            end = anchor + span.end
            if (lo is not None and end < lo) or (hi is not None and end >= hi):
                continue
            point = Piece(end, end, None, None, span.name, label)
            b = buckets.setdefault(key_of(point), Bucket(sessions=set()))
            b.sessions.add(int(sid))
            b.inferences += span.inferences
            b.errors += span.errors
    return buckets
