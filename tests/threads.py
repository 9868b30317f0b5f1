"""Concurrency in tests: the same worker on several threads at once, and a call that must return
in time (a FIFO that would block for ever fails the test instead of hanging it)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest


def in_threads(worker: Callable[[int], object], count: int) -> None:
    """Run ``worker(0)`` ... ``worker(count - 1)``, each on its own thread, and wait for all."""
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def within(seconds: float, call: Callable[[], object]) -> object:
    """``call()`` in a thread: what it returns or raises; fails (rather than hangs) when it does
    not return in ``seconds``."""
    result: list[object] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # handed to the test
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"did not return within {seconds} s")
    return result[0]


def unblock(fifo: Path) -> None:
    """Open ``fifo`` for writing once, so a reader blocked on it (a regression) wakes up."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
