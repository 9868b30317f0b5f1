"""The peak of Python's allocations inside a block, for tests that a big thing is not copied."""

from __future__ import annotations

import tracemalloc


class PeakMemory:
    """``with PeakMemory() as memory: ...`` then ``memory.peak``: the most bytes Python held at
    once inside the block (tracemalloc), counted from the block's start."""

    peak = 0

    def __enter__(self) -> PeakMemory:
        tracemalloc.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        _, self.peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
