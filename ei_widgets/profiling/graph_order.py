"""Graph ordering: each node's fields read once from protobuf, and the nodes in an order where
producers precede consumers (Kahn's algorithm, stable; a cycle is an error).

A node with subgraphs (If, Loop, Scan) reads, besides its inputs, every name its subgraphs take
from the enclosing scopes; such captures count as reads for ordering and for liveness. Nesting
deeper than :data:`MAX_SUBGRAPH_DEPTH` is refused.
"""

from __future__ import annotations

import heapq

import onnx

from ei_widgets.errors import ModelLoadError
from ei_widgets.models.onnx_kinds import MAX_SUBGRAPH_DEPTH
from ei_widgets.profiling.op_costs import ONNX_DOMAINS


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    graphs: list[onnx.GraphProto] = []
    if not node.attribute:
        return graphs
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            graphs.append(a.g)
        elif a.type == onnx.AttributeProto.GRAPHS:
            graphs.extend(a.graphs)
    return graphs


def _outer_refs(graph: onnx.GraphProto, depth: int = 1) -> set[str]:
    """Names a subgraph reads from enclosing scopes; a nesting deeper than
    ``MAX_SUBGRAPH_DEPTH`` is refused (so the recursion stays shallow)."""
    if depth > MAX_SUBGRAPH_DEPTH:
        raise ModelLoadError(
            f"The model nests subgraphs (If, Loop, Scan) more than {MAX_SUBGRAPH_DEPTH} deep; "
            "it cannot be profiled or run."
        )
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    used: set[str] = set()
    for node in graph.node:
        defined.update(node.output)
        used.update(x for x in node.input if x)
        for sub in subgraphs(node):
            used |= _outer_refs(sub, depth + 1)
    return used - defined


_CONTROL_FLOW = frozenset({"If", "Loop", "Scan", "SequenceMap"})


class Node:
    """A node's fields read once from protobuf (where each field access is slow) and reused."""

    __slots__ = ("domain", "has_subgraph", "input", "name", "op_type", "output", "proto", "reads")

    def __init__(self, proto: onnx.NodeProto) -> None:
        # Fields go through locals: a profile builds one Node per node, and reading a slot
        # back costs about as much as a local copy.
        self.proto = proto
        self.name: str = proto.name
        self.op_type: str = (op_type := proto.op_type)
        self.domain: str = (domain := proto.domain)
        # Slicing a repeated field is about twice as fast as iterating it
        inputs: list[str] = proto.input[:]
        self.input = inputs
        self.output: list[str] = proto.output[:]
        # every tensor it reads, subgraph captures included (shared with input when the same)
        self.reads: list[str] = [x for x in inputs if x] if "" in inputs else inputs
        self.has_subgraph = False
        # Only control flow (and, possibly, custom ops) carry subgraphs; checking the attributes
        # of every node would cost more than the rest of this constructor.
        if op_type in _CONTROL_FLOW or domain not in ONNX_DOMAINS:
            graphs = subgraphs(proto)
            self.has_subgraph = bool(graphs)
            if graphs:
                self.reads = [x for x in inputs if x]
            for sub in graphs:
                self.reads.extend(sorted(_outer_refs(sub)))


def topological_order(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The graph's nodes in an order where producers precede consumers (stable, Kahn)."""
    return [node.proto for node in ordered(graph)[0]]


def ordered(graph: onnx.GraphProto) -> tuple[list[Node], bool]:
    """Nodes in topological order, and whether that is the order the graph has them in."""
    nodes = [Node(proto) for proto in graph.node]
    producer: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for out in node.output:
            if out:
                producer[out] = i
    get = producer.get
    for i, node in enumerate(nodes):
        for x in node.reads:
            if get(x, -1) >= i:
                deps = [{producer[x] for x in n.reads if x in producer} for n in nodes]
                return [nodes[k] for k in _kahn(nodes, deps)], False
    return nodes, True


def _kahn(nodes: list[Node], deps: list[set[int]]) -> list[int]:
    consumers: list[list[int]] = [[] for _ in nodes]
    indegree = [len(d) for d in deps]
    for i, d in enumerate(deps):
        for j in d:
            consumers[j].append(i)
    ready = [i for i, n in enumerate(indegree) if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for k in consumers[i]:
            indegree[k] -= 1
            if indegree[k] == 0:
                heapq.heappush(ready, k)
    if len(order) < len(nodes):
        stuck = [nodes[i].name or nodes[i].op_type for i, n in enumerate(indegree) if n > 0]
        raise ModelLoadError(
            f"The graph has a cycle: {len(stuck)} node(s) depend on each other "
            f"({', '.join(stuck[:5])}{', ...' if len(stuck) > 5 else ''})."
        )
    return order
