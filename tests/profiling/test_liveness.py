"""Peak activation memory on hand-built orders, where the answer can be worked out by hand."""

from __future__ import annotations

from onnx import helper

from ei_widgets.profiling.graph_order import Node
from ei_widgets.profiling.liveness import peak_activation_bytes

MB = 1_000_000


def _order(*nodes: tuple[str, list[str], list[str]]) -> list[Node]:
    return [Node(helper.make_node(op, inputs, outputs)) for op, inputs, outputs in nodes]


def test_a_chain_holds_two_tensors_at_a_time() -> None:
    # x -> a -> b -> y: while a node runs, its input and its output are live
    order = _order(("Relu", ["x"], ["a"]), ("Relu", ["a"], ["b"]), ("Relu", ["b"], ["y"]))
    sizes = {"x": 1 * MB, "a": 2 * MB, "b": 4 * MB, "y": 1 * MB}
    peak = peak_activation_bytes(
        order, [False] * 3, sizes, constants=set(), inputs=["x"], outputs=["y"]
    )
    assert peak == 6 * MB  # a and b while the second node runs


def test_a_skip_connection_keeps_its_tensor_alive_until_the_last_reader() -> None:
    order = _order(
        ("Relu", ["x"], ["a"]),
        ("Relu", ["a"], ["b"]),
        ("Relu", ["b"], ["c"]),
        ("Add", ["c", "a"], ["y"]),
    )
    sizes = dict.fromkeys(["x", "a", "b", "c", "y"], MB)
    peak = peak_activation_bytes(
        order, [False] * 4, sizes, constants=set(), inputs=["x"], outputs=["y"]
    )
    assert peak == 3 * MB  # a stays for the Add: a, b, c or a, c, y


def test_weights_outputs_nobody_reads_and_folded_nodes() -> None:
    order = _order(
        ("Shape", ["w"], ["s"]),  # folded: reads a constant only
        ("MatMul", ["x", "w"], ["a"]),
        ("Dropout", ["a"], ["y", "mask"]),  # the mask is never read: freed at once
    )
    sizes = {"x": MB, "w": 100 * MB, "s": 16, "a": 2 * MB, "y": 2 * MB, "mask": 8 * MB}
    peak = peak_activation_bytes(
        order,
        [True, False, False],
        sizes,
        constants={"w", "s"},
        inputs=["x"],
        outputs=["y"],
    )
    assert peak == 12 * MB  # a, y and the mask while Dropout runs; never the weight


def test_unread_inputs_free_at_once_and_unknown_sizes_count_as_zero() -> None:
    order = _order(("Relu", ["x"], ["y"]))
    peak = peak_activation_bytes(
        order,
        [False],
        {"x": MB, "unused": 5 * MB, "y": None},
        constants=set(),
        inputs=["x", "unused"],
        outputs=["y"],
    )
    assert peak == 6 * MB  # both inputs exist before anything runs
