"""Peak activation memory: the most bytes live at once while nodes run in a given order.

Each tensor a node writes is live from that node until its last reader has run; graph inputs
are live from the start and graph outputs to the end. Constants (weights and what is folded from
them) are stored with the model, not activations, and never counted here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ei_widgets.profiling.graph_order import Node


def peak_activation_bytes(
    order: Sequence[Node],
    folded: Sequence[bool],
    nbytes: Mapping[str, int | None],
    *,
    constants: set[str],
    inputs: Iterable[str],
    outputs: Iterable[str],
) -> int:
    """Peak bytes of live activations when ``order`` runs, skipping ``folded`` nodes (computed
    once at load time). Tensors of unknown size count as 0.

    Step ``i`` allocates node ``i``'s outputs, then frees what it read last and what it wrote
    that nobody reads: the walk itself only adds two numbers a step.
    """
    # A later reader overwrites an earlier one. Folded nodes read only constants, which are
    # dropped next, so they need no special case.
    last_use = {x: i for i, node in enumerate(order) for x in node.reads}
    for name in constants.intersection(last_use):
        del last_use[name]
    for name in outputs:
        last_use[name] = -1  # live to the end
    allocated = [0] * len(order)
    freed = [0] * len(order)
    for i, node in enumerate(order):
        if folded[i]:
            continue
        for o in node.output:
            if o:
                size = nbytes.get(o) or 0
                allocated[i] += size
                if o not in last_use:
                    freed[i] += size  # nobody reads it: freed at once
    for x, i in last_use.items():
        if i >= 0:
            freed[i] += nbytes.get(x) or 0
    inputs = list(inputs)
    live = sum(nbytes.get(name) or 0 for name in inputs)
    peak = live
    live -= sum(nbytes.get(name) or 0 for name in inputs if name not in last_use)
    for up, down in zip(allocated, freed, strict=True):
        live += up
        if live > peak:
            peak = live
        live -= down
    return peak
