"""Cost: the bill so far (ticking every second from the meter), rates, savings and the budget.

The panel follows the kernel's cost meter itself: it subscribes to the meter's snapshots and
budget events (they come on the meter's ticker thread, so under the dashboard's lock) and keeps
the latest snapshot for the dashboard's header.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import ipywidgets as w

from ei_widgets.billing import meters
from ei_widgets.billing.meters import BudgetEvent, CostMeter, CostSnapshot
from ei_widgets.common.html import BAD, GOOD, GREY, WARN
from ei_widgets.common.money import BILL_PER_MILLION, money_or_dash, per_hour
from ei_widgets.common.units import format_percent
from ei_widgets.errors import EIError
from ei_widgets.notebook.views.common import (
    NO_MATH,
    SIMULATED,
    bounded,
    error_html,
    esc,
    note,
    set_if_changed,
)
from ei_widgets.notebook.views.tab import Board, DashboardTab, TabSpec

_BIG = "font-size:22px;font-weight:600;font-variant-numeric:tabular-nums"


class CostPanel(w.VBox, DashboardTab):
    """Cost so far, $/h, $ per million inferences, savings against a whole GPU, budget."""

    def __init__(
        self,
        start_meter: Callable[[], CostMeter],
        overrides: bool = False,
        *,
        lock: threading.RLock | None = None,
        on_snapshot: Callable[[], object] | None = None,
    ) -> None:
        """``start_meter``: what the Start button calls; ``on_snapshot``: called (under ``lock``)
        after each snapshot the meter pushes."""
        self._start_meter = start_meter
        self._meter: CostMeter | None = None
        self._lock = lock or threading.RLock()
        self._on_snapshot = on_snapshot
        self._latest: CostSnapshot | None = None
        self._unsubscribe: Callable[[], None] | None = None  # of the meter followed
        self._closed = False
        self.total = w.HTML(f'<div style="{_BIG}">—</div>')
        self.details = w.HTML()
        self.savings = w.HTML()
        self.budget_bar = w.FloatProgress(
            value=0.0,
            min=0.0,
            max=1.0,
            description="Budget",
            bar_style="success",
            layout=w.Layout(width="320px", max_width="100%"),
        )
        self.budget_text = w.HTML()
        self.budget_amount = bounded(
            w.BoundedFloatText, 1.0, 0.01, 1e6, "Budget $", "180px", step=0.5
        )
        self.budget_period = w.Dropdown(
            options=[("this session", "session"), ("this month", "month")],
            value="session",
            layout=w.Layout(width="130px"),
        )
        self.set_budget_button = w.Button(description="Set budget", icon="check")
        self.clear_budget_button = w.Button(description="Clear")
        self.start_button = w.Button(
            description="Start the cost meter",
            button_style="info",
            icon="play",
            layout=w.Layout(display="none"),
        )
        self.message = w.HTML()
        self.set_budget_button.on_click(lambda _b: self._set_budget())
        self.clear_budget_button.on_click(lambda _b: self._clear_budget())
        self.start_button.on_click(lambda _b: self._start())
        super().__init__(
            [
                w.HTML(f"<b>Cost</b> {SIMULATED}"),
                self.total,
                self.details,
                self.savings,
                w.HBox([self.budget_bar, self.budget_text]),
                w.HBox(
                    [
                        self.budget_amount,
                        self.budget_period,
                        self.set_budget_button,
                        self.clear_budget_button,
                    ]
                ),
                self.start_button,
                self.message,
                w.HTML(
                    note(
                        "Per-second billing at the catalog's SageMaker on-demand prices"
                        + (" (your price overrides applied)" if overrides else "")
                        + "; the comparison prices the same wall time on a whole-GPU instance."
                    )
                ),
            ]
        )

    @property
    def meter(self) -> CostMeter | None:
        return self._meter

    def set_meter(self, meter: CostMeter | None) -> None:
        """Follow ``meter`` instead of the one followed so far (None: show how to start one)."""
        self._unfollow()
        self._meter = meter
        self._latest = None
        if meter is None:
            self.start_button.layout.display = ""
            set_if_changed(
                self.details,
                value=note("The cost meter is not running (it starts with %load_ext ei_widgets)."),
            )
            return
        self._unsubscribe = meter.subscribe(self._on_meter)
        self.start_button.layout.display = "none"
        self.show(meter.snapshot())

    def latest(self) -> CostSnapshot | None:
        """The meter's last snapshot (asked of the meter only until it pushes one)."""
        if self._latest is None and self._meter is not None:
            with contextlib.suppress(EIError):
                self._latest = self._meter.snapshot()
        return self._latest

    def close_tab(self) -> None:
        self.close_panel()

    def close_panel(self) -> None:
        """Stop following the meter."""
        self._closed = True
        self._unfollow()

    def _unfollow(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_meter(self, event: CostSnapshot | BudgetEvent) -> None:
        """The meter's subscription (its ticker thread, once a second)."""
        if self._closed:
            return
        with self._lock:
            self.on_event(event)
            if isinstance(event, CostSnapshot):
                self._latest = event
                if self._on_snapshot is not None:
                    self._on_snapshot()

    def _start(self) -> None:
        try:
            meter = self._start_meter()
        except EIError as error:
            self.message.value = error_html(str(error))
            return
        with self._lock:
            if self._meter is None:
                self.set_meter(meter)

    def _set_budget(self) -> None:
        if self._meter is None:
            self.message.value = error_html("Start the cost meter first.")
            return
        try:
            self._meter.set_budget(self.budget_amount.value, period=self.budget_period.value)
        except EIError as error:
            self.message.value = error_html(str(error))
            return
        self.message.value = ""
        self.show(self._meter.snapshot())

    def _clear_budget(self) -> None:
        if self._meter is not None:
            self._meter.set_budget(None)
            self.message.value = ""
            self.show(self._meter.snapshot())

    def on_event(self, event: CostSnapshot | BudgetEvent) -> None:
        """The meter's subscription: a snapshot each second, or a budget event."""
        if isinstance(event, BudgetEvent):
            colour = BAD if event.percent >= 100 else WARN
            set_if_changed(
                self.message,
                value=f'<div class="{NO_MATH}" style="font-size:12px;color:{colour}">'
                f"{esc(event.message)}</div>",
            )
        else:
            self.show(event)

    def show(self, snap: CostSnapshot) -> None:
        """Render one snapshot (only the widgets whose text changed send a message)."""
        set_if_changed(
            self.total,
            value=f'<div class="{NO_MATH}" style="{_BIG}">{money_or_dash(snap.total)}'
            f' <span style="font-size:12px;font-weight:400;color:{GREY}">so far,'
            f" {snap.elapsed_seconds:,.0f} s metered</span></div>",
        )
        accelerator = (
            f"{esc(snap.accelerator)} {per_hour(snap.accelerator_rate)}"
            if snap.accelerator
            else "no accelerator"
        )
        per_million = (
            f"{BILL_PER_MILLION}: {money_or_dash(snap.cost_per_million)}"
            f" ({snap.inferences:,} inferences)"
            if snap.cost_per_million is not None
            else f"{BILL_PER_MILLION}: no inference yet"
        )
        details = (
            f'<div class="{NO_MATH}" style="font-size:13px;line-height:1.6;'
            'font-variant-numeric:tabular-nums">'
            f"<b>{per_hour(snap.rate_per_hour)}</b> now = {esc(snap.instance)}"
            f" {per_hour(snap.instance_rate)} + {accelerator}<br>"
            f"{per_million}<br>"
            f"instance {money_or_dash(snap.instance_cost)},"
            f" accelerator {money_or_dash(snap.accelerator_cost)};"
            f" at this rate {money_or_dash(snap.projected_per_day)}/day,"
            f" {money_or_dash(snap.projected_per_month)}/month</div>"
        )
        set_if_changed(self.details, value=details)
        colour = BAD if snap.whole_gpu_cheaper else GOOD
        comparison = (
            f"; {esc(snap.comparison)} would cost"
            f" {money_or_dash(snap.comparison_cost_per_million)} per million"
            if snap.comparison_cost_per_million is not None
            else ""
        )
        set_if_changed(
            self.savings,
            value=(
                f'<div class="{NO_MATH}" style="font-size:13px;color:{colour}">'
                f"{esc(snap.savings_text)}"
                f" ({esc(snap.comparison)} at {per_hour(snap.comparison_rate)}:"
                f" {money_or_dash(snap.comparison_cost)} for the same time{comparison})</div>"
            ),
        )
        if snap.budget is None or snap.budget_fraction is None:
            set_if_changed(self.budget_bar, value=0.0, bar_style="")
            set_if_changed(self.budget_text, value=note("no budget set"))
        else:
            fraction = float(snap.budget_fraction)
            style = "danger" if fraction >= 1 else "warning" if fraction >= 0.8 else "success"
            set_if_changed(self.budget_bar, value=min(fraction, 1.0), bar_style=style)
            set_if_changed(
                self.budget_text,
                value=note(
                    f"{money_or_dash(snap.budget_spent)} of {money_or_dash(snap.budget.amount)}"
                    f" ({format_percent(fraction)}) this {snap.budget.period}"
                ),
            )


def _make(board: Board) -> CostPanel:
    return CostPanel(
        meters.start_meter,
        overrides=board.catalog().overrides is not None,
        lock=board.lock,
        on_snapshot=board.render_header,
    )


TAB = TabSpec("Cost", _make)
