"""Lists of callbacks kept under a lock: adding one gives back the function that removes it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

T = TypeVar("T")


def add_callback(
    callbacks: list[T], callback: T, lock: AbstractContextManager[Any]
) -> Callable[[], None]:
    """Append ``callback`` to ``callbacks`` under ``lock``; return the function that removes it
    (calling that again once it is gone does nothing)."""
    with lock:
        callbacks.append(callback)

    def remove() -> None:
        with lock:
            if callback in callbacks:
                callbacks.remove(callback)

    return remove
