"""The dashboard's tabs, in the order they are shown: one module each, registered by one line."""

from __future__ import annotations

from ei_widgets.notebook.views import (
    accelerator_tab,
    cost,
    endpoint_tab,
    models_tab,
    run_tab,
    sizing,
)
from ei_widgets.notebook.views.tab import TabSpec

__all__ = ["TABS"]

TABS: tuple[TabSpec, ...] = (
    models_tab.TAB,
    accelerator_tab.TAB,
    run_tab.TAB,
    cost.TAB,
    sizing.TAB,
    endpoint_tab.TAB,
)
