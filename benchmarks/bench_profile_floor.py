"""What any Python profiler of an ONNX graph pays per node before it computes anything.

Side by side on one generated graph (``bench_profile.generated_graph``), best CPU time of several
rounds each, garbage collector paused:

- onnx's shape inference of the model: the floor ``bench_profile`` measures own work against;
- reading each node's name, op type, domain, inputs and outputs from protobuf;
- reading each inferred tensor's name and type (serialized, the cheapest key there is) back;
- building one ``NodeCost`` per node, as the profiler does.

What the three reads leave of the own-work budget (``BUDGET`` times the inference, the target of
``bench_profile``) is what remains for ordering, folding, costs, liveness and parameters. Run
``python benchmarks/bench_profile_floor.py [nodes]`` (default 100,000; about half a minute).
"""

from __future__ import annotations

import sys
from operator import attrgetter
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_profile import (  # noqa: E402
    best_time,
    generated_graph,
    shape_inference_floor,
)
from ei_widgets.profiling.profiler import _node_cost  # noqa: E402

_FIELDS = attrgetter("name", "op_type", "domain", "input", "output")
BUDGET = 3.5  # own work on the 100,000-node graph, in units of onnx's shape inference


def read_nodes(graph: onnx.GraphProto) -> list[tuple[str, str, str, list[str], list[str]]]:
    """Each node's fields, kept as the profiler keeps them."""
    rows = []
    for node in graph.node:
        name, op_type, domain, inputs, outputs = _FIELDS(node)
        rows.append((name, op_type, domain, inputs[:], outputs[:]))
    return rows


def read_inferred_types(graph: onnx.GraphProto) -> list[tuple[str, bytes]]:
    return [(value.name, value.type.SerializeToString()) for value in graph.value_info]


def build_results(n: int) -> list[object]:
    shapes = ((1, 32),)
    return [_node_cost("n", "MatMul", "", 1, 1, 1, 1, 0, shapes, True) for _ in range(n)]


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 100_000
    model = generated_graph(n)
    inferred = onnx.shape_inference.infer_shapes(model).graph
    rounds = 5
    floor = best_time(lambda: shape_inference_floor(model), 3)
    rows = [
        ("onnx shape inference (the floor)", floor),
        ("read node fields", best_time(lambda: read_nodes(model.graph), rounds)),
        ("read inferred types", best_time(lambda: read_inferred_types(inferred), rounds)),
        ("build one NodeCost a node", best_time(lambda: build_results(n), rounds)),
    ]
    print(
        f"{n:,}-node graph; per node, and as a share of {BUDGET:g} times the floor "
        "(the own-work budget)"
    )
    spent = sum(seconds for _, seconds in rows[1:])
    rows.append(("left for the profiler itself", BUDGET * floor - spent))
    for label, seconds in rows:
        share = seconds / (BUDGET * floor)
        print(f"  {label:<34} {seconds * 1e6 / n:6.2f} us/node  {share:6.1%}")


if __name__ == "__main__":
    main(sys.argv[1:])
