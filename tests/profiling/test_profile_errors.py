"""Bad input: each case is a typed error from one family (a ValueError) or a listed warning."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ei_widgets.errors import EIError, ModelLoadError, ProfileError
from ei_widgets.profiling.profiler import profile
from tests import builders
from tests.memory import PeakMemory


def test_errors_are_value_errors() -> None:
    assert issubclass(ModelLoadError, EIError) and issubclass(ProfileError, EIError)
    assert issubclass(EIError, ValueError)


def test_missing_path(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ModelLoadError, match="No such model file"):
        profile(tmp_path / "nope.onnx")
    with pytest.raises(ModelLoadError, match="No such model file"):
        profile(str(tmp_path / "nope.onnx"))


def test_directory(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ModelLoadError, match="is a directory"):
        profile(tmp_path)


def test_empty_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        profile(path)
    with pytest.raises(ModelLoadError, match="empty"):
        profile(b"")


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(seed: int) -> None:
    data = np.random.default_rng(seed).bytes(4096)
    with pytest.raises(ModelLoadError, match="not a valid ONNX model"):
        profile(data)


def test_truncated_model(tmp_path: pathlib.Path) -> None:
    data = builders.tiny_convnet().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="not a valid ONNX model"):
        profile(path)


def test_file_too_large_for_protobuf_is_not_read(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "huge.onnx"
    with open(path, "wb") as f:
        f.truncate(3 * 2**30)  # sparse 3 GiB: reading it would take seconds and 3 GiB of memory
    with pytest.raises(ModelLoadError, match="more than an ONNX protobuf can hold"):
        profile(path)


def test_text_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("This is not a model.\nJust some notes about one.\n")
    with pytest.raises(ModelLoadError, match="not a valid ONNX model"):
        profile(path)


def test_unsupported_object() -> None:
    with pytest.raises(ModelLoadError, match="Cannot read a model from a dict"):
        profile({"weights": [1, 2, 3]})


def test_cycle() -> None:
    with pytest.raises(ModelLoadError, match="cycle"):
        profile(builders.cyclic())


def test_undefined_tensor() -> None:
    model = builders.mlp((4, 2))
    model.graph.node[0].input[0] = "ghost"
    with pytest.raises(ModelLoadError, match="'ghost'"):
        profile(model)


def test_absurd_constant_is_refused_without_allocating() -> None:
    with PeakMemory() as memory, pytest.raises(ProfileError, match="1e\\+12 elements"):
        profile(builders.huge_constant(10**6))
    assert memory.peak < 50 * 2**20


def test_absurd_input_shape_is_refused() -> None:
    with pytest.raises(ProfileError, match="elements"):
        profile(builders.mlp((8, 4)), input_shapes={"x": (10**12, 8)})
    with pytest.raises(ProfileError, match="elements"):
        profile(builders.mlp((8, 4)), batch_size=10**12)


@pytest.mark.parametrize("batch", [0, -1, 1.5, "2", True])
def test_bad_batch_size(batch: object) -> None:
    with pytest.raises(ProfileError, match="batch_size"):
        profile(builders.mlp((4, 2)), batch_size=batch)  # type: ignore[arg-type]


def test_bad_input_shapes() -> None:
    model = builders.transformer_block()
    with pytest.raises(ProfileError, match="neither an input nor a symbolic"):
        profile(model, input_shapes={"T": 3})
    with pytest.raises(ProfileError, match="rank 3"):
        profile(model, input_shapes={"x": (1, 64)})
    with pytest.raises(ProfileError, match="fixed shape"):
        profile(model, input_shapes={"x": (1, 4, 32)})
    with pytest.raises(ProfileError, match="positive"):
        profile(model, input_shapes={"S": 0})


def _external_model(tmp_path: pathlib.Path, elements: int) -> pathlib.Path:
    """An embedding table stored in an external file, Gather'ed by token ids."""
    rows = elements // 64
    init = TensorProto(name="table", data_type=TensorProto.FLOAT, dims=[rows, 64])
    init.data_location = TensorProto.EXTERNAL
    for key, value in {
        "location": "table.bin",
        "offset": "0",
        "length": str(4 * rows * 64),
    }.items():
        entry = init.external_data.add()
        entry.key, entry.value = key, value
    node = helper.make_node("Gather", ["table", "ids"], ["emb"], name="embed")
    graph = helper.make_graph(
        [node],
        "external",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 16])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["N", 16, 64])],
        [init],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_external_data_over_2gb_is_not_read(tmp_path: pathlib.Path) -> None:
    elements = 640_000_000  # 2.56 GB of float32
    path = _external_model(tmp_path, elements)
    with open(tmp_path / "table.bin", "wb") as f:
        f.truncate(4 * elements)  # sparse: nothing is written, and nothing must be read
    with PeakMemory() as memory:
        p = profile(path, batch_size=2)
    assert memory.peak < 50 * 2**20
    assert p.param_count == elements
    assert p.model_size_bytes == os.path.getsize(path) + 4 * elements
    assert p.model_size_bytes > 2**31
    (node,) = p.nodes
    assert node.output_shapes == ((2, 16, 64),)
    assert node.bytes_written == 4 * 2 * 16 * 64


def test_missing_external_data(tmp_path: pathlib.Path) -> None:
    path = _external_model(tmp_path, 64 * 10)
    with pytest.raises(ModelLoadError, match=r"table\.bin"):
        profile(path)


def test_short_external_data(tmp_path: pathlib.Path) -> None:
    path = _external_model(tmp_path, 64 * 10)
    (tmp_path / "table.bin").write_bytes(b"\0" * 16)
    with pytest.raises(ModelLoadError, match="shorter"):
        profile(path)


def test_unknown_custom_op_is_listed() -> None:
    p = profile(builders.custom_op(), batch_size=2)
    assert "com.example:Mystery" in p.unknown_ops
    assert any("No cost model" in w and "com.example:Mystery (1)" in w for w in p.warnings)
    mystery = next(n for n in p.nodes if n.op_type == "Mystery")
    assert not mystery.known and mystery.flops == 0
    before = next(n for n in p.nodes if n.name == "before")
    assert before.known and before.flops == 16


def test_value_info_written_for_a_custom_op_is_used_with_its_dimensions_bound() -> None:
    model = builders.custom_op()
    model.graph.value_info.append(helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 8]))
    p = profile(model, batch_size=4)
    assert p.unknown_ops == ("com.example:Mystery",)  # its cost is still unknown
    mystery, after = p.nodes[1], p.nodes[2]
    assert mystery.output_shapes == ((4, 8),)
    assert after.known and after.flops == 4 * 8


def test_custom_op_without_an_opset_import() -> None:
    model = builders.custom_op()
    del model.opset_import[1]  # the com.example domain is used but never declared
    p = profile(model, batch_size=2)
    assert "com.example:Mystery" in p.unknown_ops
    before = next(n for n in p.nodes if n.name == "before")
    assert before.known and before.output_shapes == ((2, 8),)


def test_contrib_ops_get_shapes_where_onnx_gives_up(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # onnxruntime's helper may write files here; it must not
    nodes = [
        helper.make_node("FusedMatMul", ["x", "w"], ["h"], domain="com.microsoft", name="fmm"),
        helper.make_node("BiasGelu", ["h", "b"], ["g"], domain="com.microsoft", name="gelu"),
        helper.make_node("MatMul", ["g", "w2"], ["y"], name="mm"),
    ]
    graph = helper.make_graph(
        nodes,
        "contrib",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [
            onnx.numpy_helper.from_array(np.ones((8, 16), np.float32), "w"),
            onnx.numpy_helper.from_array(np.ones((16, 4), np.float32), "w2"),
            onnx.numpy_helper.from_array(np.ones(16, np.float32), "b"),
        ],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
    )
    p = profile(model, batch_size=3)
    assert p.unknown_ops == ()
    assert [n.output_shapes for n in p.nodes] == [((3, 16),), ((3, 16),), ((3, 4),)]
    assert p.flops == 2 * 3 * 8 * 16 + 9 * 3 * 16 + 2 * 3 * 16 * 4
    assert list(tmp_path.iterdir()) == []


def test_custom_elementwise_op_passes_its_shape_through() -> None:
    model = builders.custom_op()
    model.graph.node[1].op_type = "Gelu"  # a custom-domain Gelu: shape follows its input
    p = profile(model, batch_size=2)
    assert p.unknown_ops == ("com.example:Gelu",)  # its shape is known, its cost is not
    after = p.nodes[-1]
    assert after.output_shapes == ((2, 8),)
    assert after.known and after.flops == 16
