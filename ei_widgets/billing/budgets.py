"""Budgets: a spending limit, the events sent as it is reached, and the cap it keeps.

:class:`BudgetWatcher` holds the meter's budget, sends each threshold event once (once per month
for a month budget), and, while an auto-detach budget is spent, refuses attaching an accelerator
(:meth:`BudgetWatcher.guard`), so one click cannot lift the cap. The month a month budget counts
is read on the meter's own timeline, so a wall-clock jump neither re-sends the month's events nor
lifts the cap. :class:`MonthSpending` caches what other sessions spent this month.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from ei_widgets.billing.ledger import Ledger
from ei_widgets.common.money import format_money
from ei_widgets.errors import EIError, LedgerError

__all__ = [
    "BUDGET_THRESHOLDS",
    "MAX_BUDGET",
    "MIN_BUDGET",
    "MONTH_REFRESH_S",
    "Budget",
    "BudgetEvent",
    "BudgetWatcher",
    "MonthSpending",
    "Period",
]

log = logging.getLogger(__name__)

BUDGET_THRESHOLDS = (50, 80, 100)  # percent of the budget at which an event is sent
MONTH_REFRESH_S = 30.0  # how often a month budget re-reads other sessions' spending
Period = Literal["session", "month"]


@dataclass(frozen=True)
class Budget:
    """A spending limit in dollars for this session or for the calendar month (UTC)."""

    amount: Decimal
    period: Period = "session"
    auto_detach: bool = False


@dataclass(frozen=True)
class BudgetEvent:
    """Sent once per threshold (50, 80, 100 % of the budget) to every subscriber."""

    percent: int  # the threshold crossed: 50, 80 or 100
    budget: Budget
    spent: Decimal  # dollars counted against the budget when it was crossed
    at: datetime  # wall clock (UTC)
    detached: str | None = None  # the accelerator detached because of it, if any

    @property
    def message(self) -> str:
        text = (
            f"{self.percent}% of the {self.budget.period} budget of"
            f" {format_money(self.budget.amount)} reached ({format_money(self.spent)} spent)"
        )
        if self.detached:
            text += f"; {self.detached} was detached"
        return text


MIN_BUDGET = Decimal("0.000001")  # one micro-dollar: the ledger's and the bill's resolution
MAX_BUDGET = Decimal("1000000000")  # a billion dollars: beyond it, a typo, not a budget


def parse_budget(dollars: Decimal | int | float | str, period: str, auto_detach: bool) -> Budget:
    """A validated :class:`Budget` (``EIError`` for an amount outside
    [``MIN_BUDGET``, ``MAX_BUDGET``], not finite, not a number, or an unknown period)."""
    if isinstance(dollars, bool) or not isinstance(dollars, Decimal | int | float | str):
        raise EIError(f"a budget must be an amount of dollars, not {type(dollars).__name__}")
    try:
        amount = Decimal(str(dollars).strip()[:100])
    except ArithmeticError:
        amount = Decimal("NaN")
    if not amount.is_finite() or not MIN_BUDGET <= amount <= MAX_BUDGET:
        shown = str(dollars)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise EIError(
            f"a budget must be a positive amount from ${MIN_BUDGET} to ${MAX_BUDGET:,} (one"
            f" micro-dollar to a billion dollars), not {shown}"
        )
    if period not in ("session", "month"):
        raise EIError(f"a budget period is 'session' or 'month', not {period!r}")
    return Budget(amount, period, bool(auto_detach))  # type: ignore[arg-type]


class BudgetWatcher:
    """One meter's budget: threshold events, and the cap while an auto-detach budget is spent."""

    def __init__(self) -> None:
        self.budget: Budget | None = None
        self._fired: set[int] = set()
        self._month: tuple[int, int] | None = None  # the month the fired set is about
        # Read without the meter's lock by the attach guard (which runs under the state's lock).
        self._capped: Decimal | None = None  # dollars spent, while an auto-detach budget is over

    def set(self, budget: Budget | None) -> None:
        """A new budget (or none): every threshold may fire again, the cap is re-checked."""
        self.budget = budget
        self._fired = set()
        self._month = None
        self._capped = None

    def check(self, spent: Decimal, at: datetime, month: tuple[int, int]) -> list[BudgetEvent]:
        """The events due now that ``spent`` counts against the budget.

        ``month`` is (year, month) on the meter's timeline: a new month starts with no event sent.
        """
        budget = self.budget
        if budget is None:
            return []
        if budget.period == "month" and self._month != month:
            self._month = month
            self._fired = set()
        over = spent >= budget.amount
        self._capped = spent if over and budget.auto_detach else None
        events = []
        for pct in BUDGET_THRESHOLDS:
            if pct not in self._fired and spent * 100 >= budget.amount * pct:
                self._fired.add(pct)
                events.append(BudgetEvent(pct, budget, spent, at))
        return events

    @property
    def capped(self) -> bool:
        """Is an auto-detach budget spent (so nothing may stay attached)?"""
        return self._capped is not None

    def guard(self, accelerator: object) -> None:
        """Refuse an attach while an auto-detach budget is spent (``EIError`` saying why)."""
        budget, spent = self.budget, self._capped
        if budget is None or spent is None:
            return
        name = getattr(accelerator, "name", accelerator)
        raise EIError(
            f"{name} was not attached: the {budget.period} budget of"
            f" {format_money(budget.amount)} is spent ({format_money(spent)}), and it detaches"
            " accelerators while it is over. To go on, raise it, e.g."
            f" ei_widgets.meter().set_budget({budget.amount * 2}, period={budget.period!r},"
            " auto_detach=True) or in the dashboard's cost panel, or clear it with"
            " set_budget(None)."
        )


class MonthSpending:
    """What other sessions recorded this month, re-read at most every ``MONTH_REFRESH_S``.

    Reading it costs a scan of the month's intervals; other kernels' costs are only as fresh as
    their heartbeats anyway.
    """

    def __init__(self) -> None:
        self.units = 0
        self._read_at: float | None = None  # monotonic
        self._month: datetime | None = None

    def refresh(
        self,
        ledger: Ledger | None,
        month: datetime,
        exclude: list[int],
        now: float,
        *,
        force: bool = False,
    ) -> int:
        """The units of ``month`` recorded by sessions not in ``exclude`` (cached)."""
        if ledger is None:
            return 0
        fresh = (
            self._read_at is not None
            and now - self._read_at < MONTH_REFRESH_S
            and self._month == month
        )
        if fresh and not force:
            return self.units
        self._read_at, self._month = now, month
        try:
            self.units = ledger.total_units(month, exclude=exclude)
        except (sqlite3.Error, OSError, LedgerError) as exc:  # keep the last figure
            log.warning("ei_widgets: reading this month's spending failed: %s", exc)
        return self.units
