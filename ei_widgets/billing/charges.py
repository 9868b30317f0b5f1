"""What the meter bills: its inputs (segments, work) and the bill at one instant.

:func:`bill` is pure: it turns exact integer units and rates into a :class:`CostSnapshot`, with
no clock, lock or ledger, so the arithmetic is testable on its own. Each sum is rounded once and
then split (:func:`~ei_widgets.common.money.split`), so the parts shown add up to the total shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from ei_widgets.billing.budgets import Budget
from ei_widgets.common.html import BAD, BOX, GOOD, NO_MATH, esc, fold, note, table
from ei_widgets.common.money import (
    BILL_PER_MILLION,
    US_PER_S,
    dollars,
    format_money,
    money_or_dash,
    per_hour,
    rate_dollars,
    split,
    us,
)
from ei_widgets.common.units import format_count, format_elapsed, format_percent

__all__ = [
    "HOURS_PER_MONTH",
    "CostSnapshot",
    "Segment",
    "Work",
    "bill",
    "cost_html",
    "cost_repr",
    "units_after",
]

HOURS_PER_MONTH = 730  # AWS's convention for monthly prices (8760 h / 12)

_NANO = Decimal("0.000000001")
_FRACTION = Decimal("0.0001")


class Work(NamedTuple):
    """Work done so far, from the kernel's metrics stream."""

    inferences: int = 0
    errors: int = 0
    simulated_s: float = 0.0

    def since(self, start: Work) -> Work:
        """The work done after ``start`` (never negative: a reset stream counts from zero)."""
        return Work(
            max(0, self.inferences - start.inferences),
            max(0, self.errors - start.errors),
            max(0.0, self.simulated_s - start.simulated_s),
        )


@dataclass
class Segment:
    """An open billing segment: the instance or the attached accelerator."""

    kind: Literal["instance", "accelerator"]
    name: str
    rate: int  # micro-dollars per hour
    start: float  # monotonic
    source: Any  # the Instance or Attachment object it was opened for
    precision: str | None = None
    ledger_id: int | None = None
    ledger_start: float = 0.0  # monotonic start of its ledger interval (later after a re-open)
    work0: Work = field(default_factory=Work)  # work counters when its ledger interval opened


@dataclass(frozen=True)
class CostSnapshot:
    """The bill at one instant. Money in dollars (``Decimal``, micro-dollar precision)."""

    at: datetime  # wall clock (UTC) of the snapshot
    elapsed_seconds: float  # metered wall time (monotonic) since the meter started
    instance: str
    instance_rate: Decimal  # $/h
    accelerator: str | None
    accelerator_rate: Decimal  # $/h, 0 when nothing is attached
    rate_per_hour: Decimal  # instance + accelerator, now
    instance_cost: Decimal
    accelerator_cost: Decimal
    total: Decimal  # instance_cost + accelerator_cost, exactly
    inferences: int
    cost_per_inference: Decimal | None  # nano-dollar precision; None before any inference
    cost_per_million: Decimal | None
    projected_per_day: Decimal  # at the current rate
    projected_per_month: Decimal  # at the current rate, 730 hours
    comparison: str  # the whole-GPU instance compared against
    comparison_rate: Decimal
    comparison_cost: Decimal  # the same wall time on the comparison instance
    comparison_cost_per_million: Decimal | None  # the same work on it
    savings: Decimal  # comparison_cost - total; negative when the whole GPU was cheaper
    savings_fraction: Decimal | None  # savings / comparison_cost; None when that is 0
    budget: Budget | None = None
    budget_spent: Decimal | None = None  # counted against the budget (month: ledger + live)
    budget_fraction: Decimal | None = None
    ledger: str | None = None  # where usage is recorded; None when only in memory

    @property
    def whole_gpu_cheaper(self) -> bool:
        return self.savings < 0

    @property
    def savings_text(self) -> str:
        """One sentence for the widgets: saved, or honestly not."""
        if self.savings_fraction is None:
            return "nothing metered yet"
        pct = abs(self.savings_fraction) * 100
        if self.savings >= 0:
            return f"saved {format_money(self.savings)} ({pct:.0f}%) against {self.comparison}"
        return (
            f"{self.comparison} would have been cheaper for this workload, by"
            f" {format_money(-self.savings)} ({pct:.0f}%)"
        )

    def _repr_html_(self) -> str:
        return cost_html(self)

    def __repr__(self) -> str:
        return cost_repr(self)


def units_after(spans: Sequence[tuple[int, float, float]], cut: float) -> int:
    """Units of (rate, start, end) spans on the monotonic timeline after ``cut``."""
    return sum(rate * us(end - max(start, cut)) for rate, start, end in spans if end > cut)


def bill(
    *,
    at: datetime,
    elapsed_us: int,
    instance: str,
    instance_rate: int,
    accelerator: str | None,
    accelerator_rate: int,
    instance_units: int,
    accelerator_units: int,
    inferences: int,
    comparison: str,
    comparison_rate: int,
    budget: Budget | None = None,
    budget_units: int | None = None,
    ledger: str | None = None,
) -> CostSnapshot:
    """The bill from exact inputs: rates in micro-dollars per hour, costs in units (rate x us).

    ``budget_units`` is what counts against ``budget`` (the session's units, or the month's).
    """
    instance_cost, accelerator_cost = split([instance_units, accelerator_units])
    total_units = instance_units + accelerator_units
    total = instance_cost + accelerator_cost
    rate = instance_rate + accelerator_rate
    comp_units = comparison_rate * elapsed_us
    comparison_cost = dollars(comp_units)
    per_inf = per_million = comp_per_million = None
    if inferences > 0:
        per_inf = (Decimal(total_units) / 10**12 / 3600 / inferences).quantize(_NANO)
        per_million = dollars(total_units * 1_000_000 // inferences)
        comp_per_million = dollars(comp_units * 1_000_000 // inferences)
    fraction = (
        (Decimal(comp_units - total_units) / Decimal(comp_units)).quantize(_FRACTION)
        if comp_units
        else None
    )
    spent = spent_fraction = None
    if budget is not None and budget_units is not None:
        spent = dollars(budget_units)
        spent_fraction = (spent / budget.amount).quantize(_FRACTION)
    return CostSnapshot(
        at=at,
        elapsed_seconds=elapsed_us / US_PER_S,
        instance=instance,
        instance_rate=rate_dollars(instance_rate),
        accelerator=accelerator,
        accelerator_rate=rate_dollars(accelerator_rate),
        rate_per_hour=rate_dollars(rate),
        instance_cost=instance_cost,
        accelerator_cost=accelerator_cost,
        total=total,
        inferences=inferences,
        cost_per_inference=per_inf,
        cost_per_million=per_million,
        projected_per_day=rate_dollars(rate * 24),
        projected_per_month=rate_dollars(rate * HOURS_PER_MONTH),
        comparison=comparison,
        comparison_rate=rate_dollars(comparison_rate),
        comparison_cost=comparison_cost,
        comparison_cost_per_million=comp_per_million,
        savings=comparison_cost - total,
        savings_fraction=fraction,
        budget=budget,
        budget_spent=spent,
        budget_fraction=spent_fraction,
        ledger=ledger,
    )


# --- how a bill reads ------------------------------------------------------------------------


def cost_repr(snap: CostSnapshot) -> str:
    """``<CostSnapshot $0.0127 after 5 min 12 s, $0.218/h now>``."""
    return (
        f"<CostSnapshot {format_money(snap.total)} after {format_elapsed(snap.elapsed_seconds)},"
        f" {per_hour(snap.rate_per_hour)} now>"
    )


def cost_html(snap: CostSnapshot) -> str:
    """The total first, then the rate it accrues at, the work it bought and the comparison."""
    accelerator = (
        f" + {snap.accelerator} {per_hour(snap.accelerator_rate)}" if snap.accelerator else ""
    )
    per_million = (
        f"{BILL_PER_MILLION}: {format_money(snap.cost_per_million)}"
        f" ({format_count(snap.inferences)} inferences)"
        if snap.cost_per_million is not None
        else f"{BILL_PER_MILLION}: no inference yet"
    )
    colour = BAD if snap.whole_gpu_cheaper else GOOD
    parts = [
        f'<div class="{NO_MATH}" style="{BOX}"><div><span style="font-size:18px;font-weight:600">'
        f"{esc(format_money(snap.total))}</span> so far"
        f" ({esc(format_elapsed(snap.elapsed_seconds))} metered)</div>",
        f"<div><b>{esc(per_hour(snap.rate_per_hour))}</b> now ="
        f" {esc(snap.instance)} {esc(per_hour(snap.instance_rate))}{esc(accelerator)}"
        f" · {esc(per_million)}</div>",
        f'<div style="color:{colour}">{esc(snap.savings_text)}</div>',
    ]
    if snap.budget is not None and snap.budget_fraction is not None:
        spent = money_or_dash(snap.budget_spent)
        parts.append(
            f"<div>{esc(spent)} of the {esc(snap.budget.period)} budget of"
            f" {esc(format_money(snap.budget.amount))}"
            f" ({esc(format_percent(float(snap.budget_fraction)))})</div>"
        )
    parts.append(
        fold(
            "details",
            table(
                ["", "amount"],
                [
                    ("instance", format_money(snap.instance_cost)),
                    ("accelerator", format_money(snap.accelerator_cost)),
                    ("at this rate, per day", format_money(snap.projected_per_day)),
                    ("at this rate, per month", format_money(snap.projected_per_month)),
                    (f"{snap.comparison}, same time", format_money(snap.comparison_cost)),
                ],
                "lr",
            )
            + note(f"recorded in {snap.ledger}" if snap.ledger else "recorded in memory only"),
        )
    )
    return "".join(parts) + "</div>"
