"""``%ei_detach``: detach the accelerator."""

from __future__ import annotations

from typing import Any

from ei_widgets.device import accelerator
from ei_widgets.notebook.magics.base import Magic


def ei_detach(shell: Any, line: str) -> None:
    """Detach the accelerator."""
    previous = accelerator.detach()
    print(f"Detached {previous.accelerator.name}." if previous else "No accelerator attached.")


MAGIC = Magic("ei_detach", ei_detach)
