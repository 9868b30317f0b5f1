"""Concurrency in tests: the same worker on several threads at once."""

from __future__ import annotations

import threading
from collections.abc import Callable


def in_threads(worker: Callable[[int], object], count: int) -> None:
    """Run ``worker(0)`` ... ``worker(count - 1)``, each on its own thread, and wait for all."""
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
