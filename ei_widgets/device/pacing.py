"""Pacing: how a session's or a run's simulated time relates to wall time. One name, one default.

- ``"paced"`` (the default): a call lasts at least its simulated latency in wall time, as it
  would on the device; the host's speed can make it slower (host-bound), never faster.
- ``"virtual"``: nothing sleeps; a shared virtual clock advances by each call's latency.

(Not to be confused with ``billing``'s clocks, which are time sources for the meter.)
"""

from __future__ import annotations

from typing import Literal

from ei_widgets.errors import EIError

Pacing = Literal["paced", "virtual"]

PACINGS: tuple[Pacing, ...] = ("paced", "virtual")

DEFAULT_PACING: Pacing = "paced"


def check_pacing(value: object, error: type[EIError] = EIError) -> Pacing:
    """``value`` when it is a pacing; else ``error`` saying which values are valid."""
    if value == "paced" or value == "virtual":
        return value
    raise error(f"Clock must be 'paced' or 'virtual' (the clock= argument), not {value!r}.")
