"""The Models tab: the models found in the kernel's namespace with the Refresh button, each
profiled once at batch 1 in the background, and the Inspector of the chosen one.

Finding is cheap (``discovery.find_models`` never profiles), so the dashboard finds again after
every cell; which model is chosen, and what follows from it, stays the dashboard's.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

import ipywidgets as w

from ei_widgets.device.catalog import Catalog
from ei_widgets.device.sequence import length_table
from ei_widgets.models.discovery import ModelEntry, find_models
from ei_widgets.models.frameworks.base import ExportProgress, add_progress_listener
from ei_widgets.models.loading import load_model
from ei_widgets.notebook.views.models import (
    InspectorPanel,
    ModelsPanel,
    ProfileCache,
    ProfileResult,
)
from ei_widgets.notebook.views.tab import Board, Chosen, DashboardTab, TabSpec
from ei_widgets.profiling.profiler import profile


def profile_for_inspector(obj: object, variable: str, seq_len: int | None = None) -> ProfileResult:
    """The profile at batch 1 (and ``seq_len`` tokens), and a transformer's latency by length:
    the model is read once for both (a framework's export is not repeated)."""
    loaded = load_model(obj, variable)
    result = profile(loaded, batch_size=1, seq_len=seq_len)
    return ProfileResult(result, None, length_table(loaded, seq_len=result.seq_len))


class ModelsTab(w.VBox, DashboardTab):
    """The Models list (``models``), its Refresh button and the Inspector (``inspector``)."""

    def __init__(
        self,
        namespace: MutableMapping[str, Any],
        catalog: Callable[[], Catalog],
        *,
        on_choose: Callable[[str | None], None],
        on_profiled: Callable[[str], None],
        on_refresh: Callable[[], None],
        on_seq_len: Callable[[int], None] = lambda _n: None,
    ) -> None:
        self._namespace = namespace
        self.profiles = ProfileCache(profile_for_inspector, on_profiled)
        self.models = ModelsPanel(on_choose)
        self._on_profiled = on_profiled
        # a framework model's conversion (seconds to minutes) shows its stage in its row
        self._stop_progress = add_progress_listener(self._converting)
        self.refresh_button = w.Button(
            description="Refresh",
            icon="refresh",
            tooltip="look for models again",
            layout=w.Layout(width="auto", min_width="100px", flex="0 0 auto"),
        )
        self.refresh_button.on_click(lambda _b: on_refresh())
        self.inspector = InspectorPanel(catalog, on_seq_len)
        super().__init__([w.HBox([self.models, self.refresh_button]), self.inspector])

    def find(self) -> list[ModelEntry]:
        """Rerun ``find_models``, forget the profiles of models gone, and queue the new ones
        (no widget is touched: the caller shows the list under its lock)."""
        entries = find_models(self._namespace)
        live = {e.variable: self._namespace.get(e.variable) for e in entries}
        self.profiles.keep_only(live)
        for entry in entries:
            self.profiles.request(entry.variable, live[entry.variable])
        return entries

    def show(self, entries: list[ModelEntry] | None = None) -> None:
        """List ``entries`` (default: those listed now) with what is known of their profiles."""
        shown = self.models.entries if entries is None else entries
        results = {
            e.variable: self.profiles.get(e.variable, self._namespace.get(e.variable))
            for e in shown
        }
        self.models.show(shown, results)

    def known(self, variable: str) -> ProfileResult | None:
        """The profile of what ``variable`` holds now, if it is made yet."""
        return self.profiles.get(variable, self._namespace[variable])

    def result(self, variable: str) -> ProfileResult:
        """The profile of what ``variable`` holds now, made in this thread if need be."""
        return self.profiles.now(variable, self._namespace[variable])

    def select_kernel_model(self, current: tuple[str, Any] | None) -> None:
        """Choose the kernel state's model (``current``) when it is listed; else the first
        model, when none is chosen."""
        choice = self.models.choice
        options = [v for _, v in choice.options]
        if current is not None and current[0] in options:
            if choice.value != current[0]:
                choice.value = current[0]
        elif choice.value is None and len(options) >= 1 and options[0] is not None:
            choice.value = options[0]

    def show_model(self, chosen: Chosen) -> None:
        """Inspect the chosen model with the core's judgement of it on every size."""
        self.inspector.show(
            chosen.profile, chosen.judgements, error=chosen.error, by_length=chosen.by_length
        )

    def _converting(self, event: ExportProgress) -> None:
        """From the converting thread: note the stage and have the row redrawn."""
        if event.model not in self._namespace:
            return
        if event.done:
            self.models.converting.pop(event.model, None)
        else:
            self.models.converting[event.model] = event
        self._on_profiled(event.model)

    def close_tab(self) -> None:
        self._stop_progress()
        self.profiles.close()


def _make(board: Board) -> ModelsTab:
    return ModelsTab(
        board.namespace,
        board.catalog,
        on_choose=board.choose,
        on_profiled=board.profile_done,
        on_refresh=board.refresh_models,
        on_seq_len=board.seq_len_changed,
    )


TAB = TabSpec("Models", _make)
