"""Pausing Python's cyclic garbage collector while a profile is made.

Why: a profile allocates several container objects per node (protobuf's wrappers of the nodes
as the model is read, the ordered nodes, their input and output lists, one ``NodeCost`` each),
and most of them stay alive until the profile is built. The collector counts those allocations
and so runs generation after generation over objects that are all still alive; its full
collections, each walking every tracked object of the process, start once the profile's
survivors outnumber a quarter of what was there before. On a 100,000-node graph that made 7 full
collections and a sixth of the profile's time (none on 1,000 or 10,000 nodes): the profiler's
time per node grew with the graph (see ``benchmarks/bench_profile.py``). The profiler's own
objects hold no reference cycle, so there is nothing for the collector to find: refcounting
frees the temporaries as it goes. The one pass that leaves cycles, onnxruntime's symbolic shape
inference where onnx's gives up (about 150 objects on a three-node graph), leaves them to the
first collection after the pause.

The collector is process-wide, and profiles are made in background threads (the dashboard's)
as well as the caller's. Pauses are therefore counted under a lock: the first pause records
whether the collector was running and disables it, the last one to end restores that state. A
collector someone else disabled before the first pause stays disabled.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0  # profiles running now, in every thread
_was_enabled = False  # the collector's state before the first of them


@contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block, nesting and across threads; the state it had
    before the outermost pause is restored when the last pause ends, even on an exception."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
