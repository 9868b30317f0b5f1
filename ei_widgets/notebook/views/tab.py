"""What a dashboard tab is: a widget with a few hooks the dashboard calls, made from what the
dashboard offers it (:class:`Board`).

A new tab is one module exporting ``TAB = TabSpec(title, make)`` and one line in
:data:`ei_widgets.notebook.views.tabs.TABS`; the dashboard calls every tab's hooks, so it needs
no edit. The hooks do nothing unless a tab overrides them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

import ipywidgets as w

from ei_widgets.device.accelerator import AcceleratorState, Change
from ei_widgets.device.catalog import Catalog
from ei_widgets.device.fp16 import FP16Check
from ei_widgets.device.judgement import Judgements
from ei_widgets.device.metrics import MetricsStream
from ei_widgets.device.recommendation import Recommendation
from ei_widgets.device.sequence import LengthScaling
from ei_widgets.profiling.result import Profile

__all__ = ["Board", "Chosen", "DashboardTab", "TabSpec"]


@dataclass(frozen=True)
class Chosen:
    """The model chosen in the dashboard, and the core's one judgement of it on every size (at
    the run's batch, on the kernel's notebook instance); every tab is shown the same."""

    variable: str | None = None
    profile: Profile | None = None
    error: str | None = None  # why it could not be profiled
    judgements: Judgements | None = None
    by_length: LengthScaling | None = None  # a transformer's latency by sequence length


class Board(Protocol):
    """What the dashboard offers the tabs it makes."""

    namespace: MutableMapping[str, Any]
    state: AcceleratorState
    stream: MetricsStream
    lock: threading.RLock
    fixed_catalog: Catalog | None  # a catalog given to the dashboard (None: the kernel's)

    def catalog(self) -> Catalog: ...

    def choose(self, variable: str | None) -> None: ...

    def profile_done(self, variable: str) -> None: ...

    def refresh_models(self) -> None: ...

    def seq_len_changed(self, seq_len: int) -> None: ...

    def chosen_model(self) -> tuple[object, Profile | None]: ...

    def batch_changed(self, batch: int) -> None: ...

    def model_of(self, variable: str) -> object: ...

    def fp16_done(self, variable: str, check: FP16Check) -> None: ...

    def recommend(self, **options: Any) -> Recommendation: ...

    def render_header(self) -> bool: ...


class DashboardTab:
    """The hooks the dashboard calls on every tab (mixed into the tab's widget class)."""

    def show_model(self, chosen: Chosen) -> None:
        """The chosen model, its batch or the kernel's instance changed."""

    def follow(self, change: Change) -> None:
        """The kernel's accelerator state changed (from any view)."""

    def opened(self) -> None:
        """The tab was opened: what needs a width (charts) can go on the page now."""

    def hidden(self) -> None:
        """Another tab was opened: charts leave the page, so that a new view of the dashboard
        (File > New View, a split view) never draws one where it has no width."""

    def close_tab(self) -> None:
        """The dashboard is closing: stop threads and subscriptions."""

    def figures(self) -> tuple[w.Widget, ...]:
        """Widgets to close with the dashboard that may not be on the page yet (charts)."""
        return ()


@dataclass(frozen=True)
class TabSpec:
    """One tab: its title and how to make it from the dashboard."""

    title: str
    make: Callable[[Board], DashboardTab]
