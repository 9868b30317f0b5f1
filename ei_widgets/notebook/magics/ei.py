"""``%ei``: the dashboard."""

from __future__ import annotations

from typing import Any

from ei_widgets.notebook.magics.base import Magic
from ei_widgets.notebook.views.dashboard import Dashboard, dashboard


def ei(shell: Any, line: str) -> Dashboard:
    """Show the ei_widgets dashboard."""
    return dashboard(namespace=shell.user_ns)


MAGIC = Magic("ei", ei)
