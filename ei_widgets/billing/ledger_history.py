"""Usage history from ledger rows: sessions cut into pieces, clipped, grouped and summed.

Pure functions over the rows :class:`~ei_widgets.billing.ledger.Ledger` reads; exact integer units
throughout, rounded once per row (and then split, so a row's parts add up to its total).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from ei_widgets.billing.ledger_file import LedgerWarning
from ei_widgets.common.money import US_PER_S, dollars, split
from ei_widgets.errors import LedgerError

__all__ = ["NO_ACCELERATOR", "NO_ENDPOINT", "By", "UsageRow", "epoch_us", "group", "key_function"]

By = Literal["day", "accelerator", "notebook", "endpoint"]
NO_ACCELERATOR = "(none)"
NO_ENDPOINT = "(notebook)"


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
    endpoint: str | None = None  # the hosted endpoint the session bills, if it is one


class Span(NamedTuple):
    """One interval row, on its session's monotonic timeline (microseconds from the start)."""

    kind: str
    name: str
    rate: int
    start: int
    end: int
    inferences: int
    errors: int


def pieces(
    anchor: int, spans: Sequence[Span], notebook: str, endpoint: str | None = None
) -> Iterator[Piece]:
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
            endpoint,
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
            piece.endpoint,
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
    if by == "endpoint":
        return lambda p: p.endpoint or NO_ENDPOINT
    raise LedgerError(
        f"usage(by=...) must be 'day', 'accelerator', 'notebook' or 'endpoint', not {by!r}"
    )


MAX_SPAN_US = 20 * 366 * 86_400 * US_PER_S
"""The longest interval (or session offset) read from the ledger, twenty years: a larger one is a
damaged row, clamped so one bad value cannot make the day split run for ever."""
MIN_EPOCH_S = 0.0
# The last start that keeps a clamped interval's end within 9999-12-31, the last date Python shows
MAX_EPOCH_S = 253_402_300_799.0 - MAX_SPAN_US / US_PER_S
_KINDS = ("instance", "accelerator")


def _whole(value: object) -> int:
    """A stored integer (an int, or a float or text holding a whole number), else ValueError."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 30:
        return int(value)
    raise ValueError(value)


def _span(row: Sequence[Any], damaged: list[str]) -> tuple[int, Span] | None:
    """One interval row as a span, or None (and a note in ``damaged``) when it cannot be read;
    an absurdly long one is clamped to ``MAX_SPAN_US``."""
    sid_, kind, name, rate, offset, duration, inferences, errors = row
    try:
        if kind not in _KINDS:
            raise ValueError(f"kind {kind!r}")
        sid, rate_, offset_ = _whole(sid_), _whole(rate), _whole(offset)
        duration_ = _whole(duration)
        work = (_whole(inferences or 0), _whole(errors or 0))
        if rate_ < 0 or duration_ < 0 or offset_ < 0 or offset_ > MAX_SPAN_US:
            raise ValueError(f"rate {rate!r}, offset {offset!r}, duration {duration!r}")
    except (ValueError, TypeError) as exc:
        damaged.append(f"interval of session {sid_!r} ({exc})")
        return None
    if duration_ > MAX_SPAN_US:
        damaged.append(f"interval of session {sid} (duration {duration_} us, clamped)")
        duration_ = MAX_SPAN_US
    span = Span(str(kind), str(name), rate_, offset_, offset_ + duration_, *work)
    return sid, span


def _anchor(started_at: object) -> int | None:
    """A session's wall-clock start in epoch microseconds, None when it is not a usable date."""
    if isinstance(started_at, bool) or not isinstance(started_at, int | float):
        return None
    if not MIN_EPOCH_S <= started_at <= MAX_EPOCH_S:  # also NaN
        return None
    return round(float(started_at) * US_PER_S)


def group(
    sessions: Sequence[Sequence[Any]],
    rows: Sequence[Sequence[Any]],
    lo: int | None,
    hi: int | None,
    key_of: Callable[[Piece], str],
    split_days: bool,
) -> dict[str, Bucket]:
    """Sum the sessions' intervals into buckets keyed by ``key_of``, clipped to [lo, hi).

    ``sessions`` are (id, kernel_id, notebook, started_at, endpoint) rows, ``rows`` interval rows
    (session id, kind, name, rate, offset, duration, inferences, errors) ordered by session and
    offset.
    Damaged rows (text where a number belongs, an unknown kind, a start outside years 1970-9999)
    are skipped, an absurdly long interval is clamped, and they are reported with one
    ``LedgerWarning``.
    """
    damaged: list[str] = []
    by_session: dict[int, list[Span]] = {}
    for row in rows:
        read = _span(row, damaged)
        if read is not None:
            by_session.setdefault(read[0], []).append(read[1])
    buckets: dict[str, Bucket] = {}
    for sid, kernel_id, notebook, started_at, endpoint in sessions:
        anchor = _anchor(started_at)
        if anchor is None or not isinstance(sid, int):
            damaged.append(f"session {sid!r} (start {started_at!r})")
            continue
        label = str(notebook or kernel_id or f"session {sid}")
        spans = by_session.get(sid, [])
        ep = str(endpoint) if endpoint is not None else None
        for piece in pieces(anchor, spans, label, ep):
            for part in clip(piece, lo, hi, split_days):
                b = buckets.setdefault(key_of(part), Bucket(sessions=set()))
                b.sessions.add(sid)
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
            point = Piece(end, end, None, None, span.name, label, ep)
            b = buckets.setdefault(key_of(point), Bucket(sessions=set()))
            b.sessions.add(sid)
            b.inferences += span.inferences
            b.errors += span.errors
    if damaged:
        warnings.warn(
            f"ei_widgets ledger: {len(damaged)} damaged row(s) skipped or clamped while reading"
            f" usage: {'; '.join(damaged[:3])}.",
            LedgerWarning,
            stacklevel=4,
        )
    return buckets
