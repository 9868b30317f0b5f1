"""``%ei_status``: what is attached, what it costs, and the models this kernel holds."""

from __future__ import annotations

from typing import Any

from ei_widgets.notebook.magics.base import Magic, show
from ei_widgets.reports import status


def ei_status(shell: Any, line: str) -> None:
    """What is attached, what it costs, and the models this kernel holds."""
    now = status.status(shell.user_ns)
    show(status.status_text_of(now), status.status_html(now))


MAGIC = Magic("ei_status", ei_status)
