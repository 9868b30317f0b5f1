"""What a sizing answer is, and how it reads: ``Row`` (one option weighed), ``Recommendation``
(the table :func:`ei_widgets.device.sizing.recommend` returns) and their notebook HTML, short repr
and table, with the option columns the dashboard's Sizing tab shares.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ei_widgets.common.html import (
    BAD,
    BOX,
    FOLDED_LIMIT,
    GOOD,
    NO_MATH,
    WARN,
    esc,
    fold,
    note,
    pandas_module,
    table,
)
from ei_widgets.common.money import OPTION_PER_MILLION, money_or_dash, per_hour
from ei_widgets.common.units import format_bytes, format_ms, significant
from ei_widgets.device.catalog import NOT_VALIDATED
from ei_widgets.device.fp16 import FP16Check
from ei_widgets.device.sequence import LengthScaling, length_table_html

if TYPE_CHECKING:
    import pandas

TODAY = "available today"
"""The group of every option that can be bought today (EI rows are "EI (retired 2023)")."""


@dataclass(slots=True)  # not frozen: recommend() builds thousands, and frozen init is 5x slower
class Row:
    option: str  # what is rented: "ml.eia2.medium on ml.t3.medium", "ml.g4dn.xlarge", ...
    kind: str  # "accelerator" | "gpu" | "cpu"
    accelerator: str | None
    instance: str
    batch_size: int
    precision: str
    latency_ms: float
    throughput_per_s: float
    bound: str  # the term that bounds the latency
    memory_needed_bytes: int
    memory_available_bytes: int
    fits: bool
    price_per_hour: Decimal
    cost_per_million: Decimal | None  # None when the option serves nothing
    meets: bool
    basis: str
    runtime: str  # the runtime modelled: an EI client framework, or "tensorrt" on a whole GPU
    group: str = TODAY  # "EI (retired 2023)" for EI rows, else "available today"
    fp16_agreement: str | None = None  # fp16 rows: the measured fp16 check, when there is one

    @property
    def label(self) -> str:
        """Short name: the accelerator for EI rows, the instance otherwise."""
        if self.accelerator is not None:
            return self.accelerator
        return f"{self.instance} (CPU only)" if self.kind == "cpu" else self.instance


@dataclass(frozen=True)
class Recommendation:
    """The table ``recommend`` returns: ``rows`` (sorted), ``pick`` and ``reason``."""

    rows: tuple[Row, ...]
    pick: Row | None
    reason: str
    latency_target_ms: float | None
    requests_per_second: float | None
    accuracy: str = NOT_VALIDATED  # the latency model's validated error, as users are told it
    too_close: bool = False  # the answer is within that error of the latency target
    pick_ei: Row | None = None  # the pick among EI accelerators (retired)
    pick_today: Row | None = None  # the pick among what can be bought today
    fp16: FP16Check | None = None  # the fp16 check the fp16 rows' agreement comes from
    by_length: LengthScaling | None = None  # a transformer's pick at several sequence lengths

    @property
    def ei_rows(self) -> tuple[Row, ...]:
        """The EI accelerator rows (retired 2023), in the table's order."""
        return tuple(r for r in self.rows if r.group != TODAY)

    @property
    def today_rows(self) -> tuple[Row, ...]:
        """The rows of what is available today, in the table's order."""
        return tuple(r for r in self.rows if r.group == TODAY)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def to_rows(self) -> list[dict[str, Any]]:
        """The rows as plain dicts (money as Decimal)."""
        return [asdict(row) for row in self.rows]

    def _repr_html_(self) -> str:
        return recommendation_html(self)

    def __repr__(self) -> str:
        return recommendation_repr(self)

    def to_pandas(self) -> pandas.DataFrame:
        """Every option weighed, best first; ``pick`` marks the recommended one (needs pandas)."""
        return recommendation_frame(self)


# --- how a recommendation reads --------------------------------------------------------------


SHOWN_OPTIONS = 8
"""At most this many sizing options are listed open; the rest are folded."""


def _kind_count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def searched_text(rec: Recommendation) -> str:
    """What the recommender weighed, in one sentence (from its rows)."""
    rows = rec.rows
    accelerators = sorted({r.accelerator for r in rows if r.accelerator})
    hosts = sorted({r.instance for r in rows if r.kind == "accelerator"})
    gpus = sorted({r.instance for r in rows if r.kind == "gpu"})
    cpus = sorted({r.instance for r in rows if r.kind == "cpu"})
    batches = sorted({r.batch_size for r in rows})
    precisions = sorted({r.precision for r in rows}, reverse=True)
    groups = []
    if accelerators:
        where = hosts[0] if len(hosts) == 1 else _kind_count(len(hosts), "instance", "instances")
        groups.append(
            f"{_kind_count(len(accelerators), 'EI accelerator', 'EI accelerators')} on {where}"
        )
    if gpus:
        groups.append(_kind_count(len(gpus), "whole-GPU instance", "whole-GPU instances"))
    if cpus:
        groups.append(_kind_count(len(cpus), "CPU-only instance", "CPU-only instances"))
    listed = ", ".join(groups[:-1]) + (" and " if len(groups) > 1 else "") + groups[-1]
    sizes = (
        f"batch {batches[0]}"
        if len(batches) == 1
        else f"batch sizes {', '.join(str(b) for b in batches)}"
    )
    return (
        f"Searched {listed}, at {sizes} in {'/'.join(precisions)}: {len(rows):,} options."
        if rows
        else "Searched nothing: no option was given."
    )


def shown_rows(rec: Recommendation, limit: int = SHOWN_OPTIONS) -> list[Row]:
    """The options worth showing open, in the table's order: the pick, the cheapest that meet
    the target, the fastest that fits, and the cheapest of each kind (EI, whole GPU, CPU)."""
    rows = list(rec.rows)
    chosen: list[Row] = [rec.pick] if rec.pick is not None else []
    chosen += [r for r in rows if r.meets][:3]
    fitting = [r for r in rows if r.fits]
    if fitting:
        chosen.append(min(fitting, key=lambda r: r.latency_ms))
    for kind in ("accelerator", "gpu", "cpu"):
        of_kind = [r for r in fitting if r.kind == kind]
        if of_kind:
            chosen.append(min(of_kind, key=lambda r: (r.price_per_hour, r.latency_ms)))
    if not chosen:
        chosen = rows[:limit]
    keep = {id(r) for r in chosen}
    return [r for r in rows if id(r) in keep][:limit]


OPTION_COLUMNS = ("option", "batch", "precision", "latency", "inferences/s", "memory")
"""The columns every table of sizing options opens with (these tables and the dashboard's)."""


OPTION_ALIGN = "lrlrrr"
"""Their alignment, one ``l``/``r`` per column."""


def option_cells(r: Row) -> tuple[object, ...]:
    """One option's cells under :data:`OPTION_COLUMNS`."""
    return (
        r.option,
        r.batch_size,
        r.precision,
        format_ms(r.latency_ms / 1e3),
        significant(r.throughput_per_s),
        f"{format_bytes(r.memory_needed_bytes)} of {format_bytes(r.memory_available_bytes)}",
    )


def _option_row(r: Row) -> tuple[object, ...]:
    return (
        *option_cells(r),
        per_hour(r.price_per_hour),
        money_or_dash(r.cost_per_million),
        "yes" if r.meets else ("does not fit" if not r.fits else "no"),
    )


_OPTION_HEADERS = [*OPTION_COLUMNS, "price", OPTION_PER_MILLION, "meets"]


def recommendation_repr(rec: Recommendation) -> str:
    """``<Recommendation: ml.eia2.medium on ml.t3.medium, batch 4, fp16: 10.9 ms, ...>``."""
    pick = rec.pick
    if pick is None:
        return f"<Recommendation: nothing meets the target among {len(rec.rows):,} options>"
    return (
        f"<Recommendation: {pick.option}, batch {pick.batch_size}, {pick.precision}:"
        f" {format_ms(pick.latency_ms / 1e3)}, {per_hour(pick.price_per_hour)}"
        f" (of {len(rec.rows):,} options)>"
    )


def recommendation_html(rec: Recommendation) -> str:
    """The pick and its reason first, then the options that matter; the rest folded."""
    pick = rec.pick
    colour = GOOD if pick is not None else BAD
    parts = [f'<div class="{NO_MATH}" style="{BOX}">']
    if pick is not None:
        parts.append(
            f'<div style="font-size:15px"><b>{esc(pick.option)}</b>, batch {pick.batch_size},'
            f" {esc(pick.precision)}: {esc(format_ms(pick.latency_ms / 1e3))} per call,"
            f" {esc(per_hour(pick.price_per_hour))}</div>"
        )
    parts.append(f'<div style="color:{colour}">{esc(rec.reason)}</div>')
    if rec.too_close:
        parts.append(
            note(
                "Too close to call: the options above are within the model's error of each other.",
                WARN,
            )
        )
    parts.append(note(f"Latencies are {rec.accuracy}."))
    parts.append(note(searched_text(rec)))
    grouped, n_shown = grouped_tables(rec)
    parts.append(grouped)
    if rec.by_length is not None:
        parts.append(length_table_html(rec.by_length))
    rows = list(rec.rows)
    if len(rows) > n_shown:
        every = rows[:FOLDED_LIMIT]
        more = (
            f"; the first {FOLDED_LIMIT} here, to_pandas() has them all"
            if len(rows) > len(every)
            else ""
        )
        parts.append(
            fold(
                f"all {len(rows):,} options, best first{more}",
                table(
                    _OPTION_HEADERS,
                    [_option_row(r) for r in every],
                    "lrlrrrrrl",
                    [i for i, r in enumerate(every) if r is pick],
                ),
            )
        )
    return "".join(parts) + "</div>"


def grouped_tables(rec: Recommendation) -> tuple[str, int]:
    """The retired EI options and what is available today, each group's options that matter in
    its own table (the overall pick highlighted); an "fp16 agreement" column once fp16 was
    measured. Returns the HTML and how many options it shows."""
    fp16 = rec.fp16 is not None
    headers = _OPTION_HEADERS + (["fp16 agreement"] if fp16 else [])
    align = OPTION_ALIGN + "rrl" + ("l" if fp16 else "")
    ei = rec.ei_rows
    groups = (
        (ei[0].group if ei else "EI", ei, rec.pick_ei),
        ("Available today", rec.today_rows, rec.pick_today),
    )
    parts, count = [], 0
    for title, rows, pick in groups:
        if not rows:
            continue
        # the two tables together show no more than one table did (each group's pick first)
        shown = shown_rows(replace(rec, rows=rows, pick=pick), (SHOWN_OPTIONS - 1) // 2)
        cells = [_option_row(r) + ((r.fp16_agreement or "—",) if fp16 else ()) for r in shown]
        marked = [i for i, r in enumerate(shown) if r is rec.pick]
        parts.append(f'<div style="margin-top:6px"><b>{esc(title)}</b></div>')
        parts.append(table(headers, cells, align, marked))
        count += len(shown)
    return "".join(parts), count


def recommendation_frame(rec: Recommendation) -> pandas.DataFrame:
    """Every option weighed, one row each, best first; ``pick`` marks the recommended one."""
    frame = pandas_module().DataFrame(rec.to_rows())
    frame["pick"] = [r is rec.pick for r in rec.rows]
    return frame
