"""loaders: every kind of model object becomes a LoadedModel, and more kinds can be registered."""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from ei_widgets.errors import ModelLoadError
from ei_widgets.models.loading import (
    LoadedModel,
    load_model,
    register_kind,
    registered_kinds,
    serialized_size,
    unregister_kind,
)
from ei_widgets.models.types import ModelKind
from ei_widgets.profiling.profiler import profile
from tests import builders


@pytest.fixture
def model_path(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "mlp.onnx"
    onnx.save(builders.mlp((8, 4, 2)), path)
    return path


def test_builtin_kinds() -> None:
    assert registered_kinds()[:4] == ["onnx-model", "onnx-file", "onnx-bytes", "ort-session"]


def test_path_and_str(model_path: pathlib.Path) -> None:
    for given in (model_path, str(model_path)):
        loaded = load_model(given)
        assert loaded.kind == "onnx-file"
        assert loaded.path == model_path
        assert loaded.name == "mlp"
        assert loaded.size_bytes == model_path.stat().st_size
        assert loaded.ort_source() == str(model_path)


def test_bytes_are_kept_for_onnxruntime(model_path: pathlib.Path) -> None:
    data = model_path.read_bytes()
    loaded = load_model(data, name="from-bytes")
    assert loaded.kind == "onnx-bytes" and loaded.name == "from-bytes"
    assert loaded.ort_source() is data
    assert loaded.size_bytes == len(data)


def test_proto_serializes_only_when_asked() -> None:
    model = builders.mlp((8, 4, 2))
    loaded = load_model(model)
    assert loaded.model is model  # never copied
    assert loaded.name == "mlp"
    source = loaded.ort_source()
    assert isinstance(source, bytes)
    assert ort.InferenceSession(source).get_inputs()[0].name == "x"


def test_serialized_size_is_close_without_serializing() -> None:
    model = builders.tiny_convnet()
    assert serialized_size(model) == pytest.approx(model.ByteSize(), rel=0.05)
    big = builders.mlp((512, 512), batch=1)  # a 1 MB weight: sized from its dims
    assert serialized_size(big) == pytest.approx(big.ByteSize(), rel=0.01)


def test_session_from_path(model_path: pathlib.Path) -> None:
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    loaded = load_model(session)
    assert loaded.kind == "ort-session" and loaded.complete
    assert loaded.path == model_path
    p = profile(session, batch_size=2)
    assert p.complete and p.kind == "ort-session"
    assert p.flops == profile(model_path, batch_size=2).flops


def test_session_from_bytes(model_path: pathlib.Path) -> None:
    data = model_path.read_bytes()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    loaded = load_model(session)
    assert loaded.complete and loaded.path is None
    assert loaded.ort_source() == data
    assert profile(session).param_count == 8 * 4 + 4 + 4 * 2 + 2


def test_session_without_its_model_gives_inputs_and_outputs(model_path: pathlib.Path) -> None:
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    session._model_path = None  # what a session keeps after its source is gone
    session._model_bytes = None
    p = profile(session, batch_size=3)
    assert not p.complete
    assert [(i.name, i.dtype, i.shape) for i in p.inputs] == [("x", "float32", ("N", 8))]
    assert [(o.name, o.shape) for o in p.outputs] == [("y", ("N", 2))]
    assert p.bound_inputs == {"x": (3, 8)}
    assert p.nodes == () and p.param_count == 0 and p.flops == 0
    assert any("only its inputs and outputs" in w for w in p.warnings)
    with pytest.raises(ModelLoadError, match="not available"):
        load_model(session).ort_source()


def test_proto_with_external_data_has_no_ort_source(tmp_path: pathlib.Path) -> None:
    model = builders.mlp((64, 64), batch=1)
    onnx.save(model, tmp_path / "ext.onnx", save_as_external_data=True, size_threshold=0)
    proto = onnx.load(tmp_path / "ext.onnx", load_external_data=False)
    loaded = load_model(proto)
    assert any("external data" in w for w in loaded.warnings)
    with pytest.raises(ModelLoadError, match="external files"):
        loaded.ort_source()
    from_path = load_model(tmp_path / "ext.onnx")
    assert from_path.size_bytes > (tmp_path / "ext.onnx").stat().st_size
    assert profile(tmp_path / "ext.onnx").param_count == 64 * 64 + 64


def test_bytes_with_external_data_warn_like_a_proto(tmp_path: pathlib.Path) -> None:
    model = builders.mlp((64, 64), batch=1)
    onnx.save(model, tmp_path / "ext.onnx", save_as_external_data=True, size_threshold=0)
    data = (tmp_path / "ext.onnx").read_bytes()
    loaded = load_model(data)
    assert loaded.kind == "onnx-bytes"
    assert any("external data files" in w for w in loaded.warnings)
    assert loaded.size_bytes > len(data)  # the external weights, sized from their shapes
    # onnx.save moved the weights of `model` out; a fresh copy keeps them inside
    assert not load_model(builders.mlp((64, 64), batch=1).SerializeToString()).warnings


class _Toy:
    """A stand-in for a framework model a later loader would export."""

    def __init__(self, width: int) -> None:
        self.width = width


def test_register_kind_adds_a_kind() -> None:
    def load(obj: object, name: str | None) -> LoadedModel:
        assert isinstance(obj, _Toy)
        model = builders.mlp((obj.width, 2), batch=1)
        return LoadedModel(model=model, name=name or "toy", kind="toy", source=obj)

    register_kind(ModelKind("toy", lambda o: isinstance(o, _Toy), load))
    try:
        assert "toy" in registered_kinds()
        p = profile(_Toy(4))
        assert p.kind == "toy" and p.name == "toy"
        assert p.param_count == 4 * 2 + 2
    finally:
        unregister_kind("toy")
    assert "toy" not in registered_kinds()


def test_loader_options_reach_the_loader_of_the_kind() -> None:
    seen: dict[str, object] = {}

    def load(obj: object, name: str | None, *, width: int = 3) -> LoadedModel:
        seen["width"] = width
        return LoadedModel(model=builders.mlp((width, 2), batch=1), name="toy", kind="toy")

    register_kind(ModelKind("toy", lambda o: isinstance(o, _Toy), load))
    try:
        assert profile(_Toy(0), width=5).param_count == 5 * 2 + 2
    finally:
        unregister_kind("toy")
    assert seen == {"width": 5}


def test_onnx_kinds_take_no_loader_options(model_path: pathlib.Path) -> None:
    for given in (builders.mlp((4, 2)), model_path, model_path.read_bytes()):
        with pytest.raises(ModelLoadError, match="example_inputs cannot be used"):
            profile(given, example_inputs=np.zeros((1, 4), np.float32))


def test_loaded_model_passes_through() -> None:
    loaded = load_model(builders.mlp((4, 2)))
    assert load_model(loaded) is loaded


def test_random_bytes_that_parse_are_rejected() -> None:
    # field 1 (ir_version) as a varint and nothing else: a valid protobuf, not a model
    with pytest.raises(ModelLoadError, match="no graph"):
        load_model(bytes([0x08, 0x07]))
    with pytest.raises(ModelLoadError):
        load_model(np.zeros(64, np.uint8).tobytes())
