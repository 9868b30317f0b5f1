"""find_models(): a cheap listing of the models in a namespace."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import onnx
import onnxruntime as ort

from ei_widgets.models import loading
from ei_widgets.models.demo import demo_model
from ei_widgets.models.discovery import ModelEntry, find_models
from ei_widgets.models.types import ModelKind
from tests import builders


def test_finds_each_onnx_kind(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "net.onnx"
    onnx.save(builders.tiny_convnet(), path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    namespace = {
        "proto": builders.tiny_convnet(),
        "as_str": str(path),
        "as_path": path,
        "sess": session,
        "number": 3,
        "text": "hello",
        "other_path": tmp_path / "notes.txt",
    }
    found = {e.variable: e for e in find_models(namespace)}
    assert list(found) == ["proto", "as_str", "as_path", "sess"]
    assert found["proto"].kind == "onnx-model"
    assert found["proto"].summary == "ONNX model, 7 nodes, 6 initializers, opset 17"
    assert found["as_str"].kind == found["as_path"].kind == "onnx-file"
    assert found["as_path"].size_bytes == path.stat().st_size
    assert "net.onnx" in found["as_path"].summary
    assert found["sess"].kind == "ort-session"
    assert found["sess"].summary.endswith("1 input, 1 output")


def test_skips_missing_paths_directories_and_private_names(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    namespace = {
        "missing": str(tmp_path / "gone.onnx"),
        "folder": folder,
        "_": builders.mlp(),
        "_hidden": builders.mlp(),
        "Out": {1: builders.mlp()},  # containers are not searched
        "cls": onnx.ModelProto,
    }
    assert find_models(namespace) == []


def test_does_not_read_the_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"not a model at all")
    (entry,) = find_models({"p": path})
    assert entry == ModelEntry("p", "onnx-file", f"ONNX file {path} (18 B)", 18)


def test_does_not_import_frameworks() -> None:
    code = (
        "import sys, onnx\n"
        "from ei_widgets.models.discovery import find_models\n"
        "m = onnx.ModelProto()\n"
        "assert find_models({'m': m, 'x': 1, 'p': 'a.onnx'})[0].kind == 'onnx-model'\n"
        "print(sorted(k for k in ('torch', 'sklearn', 'onnxruntime') if k in sys.modules))\n"
    )
    root = pathlib.Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def _never(obj: object) -> bool:
    return False


def _no_load(obj: object, name: str | None) -> loading.LoadedModel:
    raise AssertionError("discovery never loads")


def test_a_failing_detector_does_not_break_the_listing() -> None:
    def broken(variable: str, obj: object) -> ModelEntry | None:
        raise RuntimeError("boom")

    loading.register_kind(ModelKind("broken", _never, _no_load, broken), first=True)
    try:
        found = find_models({"m": builders.mlp()})
    finally:
        loading.unregister_kind("broken")
    assert [e.variable for e in found] == ["m"]


def test_a_registered_kind_is_listed() -> None:
    class Estimator:
        pass

    def detect(variable: str, obj: object) -> ModelEntry | None:
        if type(obj).__name__ != "Estimator":
            return None
        return ModelEntry(variable, "estimator", "an estimator")

    loading.register_kind(ModelKind("estimator", _never, _no_load, detect))
    try:
        found = find_models({"e": Estimator(), "n": 1})
    finally:
        loading.unregister_kind("estimator")
    assert found == [ModelEntry("e", "estimator", "an estimator")]
    assert "estimator" not in loading.registered_kinds()
    assert find_models({"e": Estimator()}) == []


def test_demo_model_path_is_found() -> None:
    (entry,) = find_models({"vgg": demo_model("vgg19")})
    assert entry.kind == "onnx-file"
    assert entry.size_bytes == demo_model("vgg19").stat().st_size
