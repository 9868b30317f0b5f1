"""Time sources for the meter: a monotonic reading for durations, a wall reading for dates.

Durations come from the monotonic reading only, so changing the system clock can neither create
nor erase cost. Tests inject a :class:`ManualClock`. This module imports nothing of ours.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """Where the meter gets time: a monotonic reading for durations, a wall reading for dates."""

    def monotonic(self) -> float: ...

    def wall(self) -> datetime: ...


class SystemClock:
    """``time.monotonic()`` and the UTC wall clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(timezone.utc)


class ManualClock:
    """A clock that moves only when told: ``advance()`` moves both readings, ``set_wall()`` jumps
    the wall clock alone (what an NTP step or a user changing the date does)."""

    def __init__(self, wall: datetime | None = None, monotonic: float = 1_000.0) -> None:
        self._wall = wall or datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
        self._mono = monotonic
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def wall(self) -> datetime:
        with self._lock:
            return self._wall

    def advance(self, seconds: float) -> None:
        """Move both readings forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        with self._lock:
            self._mono += seconds
            self._wall += timedelta(seconds=seconds)

    def set_wall(self, wall: datetime) -> None:
        """Jump the wall clock alone."""
        with self._lock:
            self._wall = wall
