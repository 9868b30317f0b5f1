"""Hostile models in memory: nesting deep enough to crash protobuf, external data hidden in
Constant nodes; and the calibration's model paths and CSV."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import onnx
import pytest
from builders import tiny
from onnx import TensorProto, helper

from ei_widgets.errors import ModelLoadError
from ei_widgets.models.loading import load_model
from ei_widgets.profiling.profiler import profile

REPO = Path(__file__).resolve().parents[2]

# --- 4. a segfault from nesting, before the depth check ----------------------------------------

DEEP = textwrap.dedent(
    """
    import onnx
    from onnx import TensorProto, helper
    from ei_widgets import attach, session
    from ei_widgets.device.fp16 import fp16_check
    from ei_widgets.errors import ModelLoadError
    from ei_widgets.profiling.profiler import profile

    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    model = helper.make_model(
        helper.make_graph([], "deep", [], [out]), opset_imports=[helper.make_opsetid("", 17)]
    )
    graph = model.graph
    for i in range(20_000):  # built in place: nothing here recurses
        node = graph.node.add(op_type="If", input=["c"], output=["y"])
        attr = node.attribute.add(name="then_branch", type=onnx.AttributeProto.GRAPH)
        graph = attr.g
        graph.name = f"g{i}"
        graph.output.add().name = "y"
    attach("ml.eia2.medium")
    for call in (profile, session, fp16_check):
        try:
            call(model)
        except ModelLoadError as exc:
            print("refused:", exc)
    """
)


def test_a_model_nested_twenty_thousand_deep_is_refused_not_a_segfault() -> None:
    out = subprocess.run(
        [sys.executable, "-c", DEEP],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-500:]}"
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and all("more than 30 deep" in line for line in lines), out.stdout


def test_nesting_with_the_attribute_type_unset_is_counted_too() -> None:
    model = tiny()
    graph = model.graph
    for i in range(40):
        node = graph.node.add(op_type="If", input=["x"], output=[f"o{i}"])
        graph = node.attribute.add(name="then_branch").g  # type left UNDEFINED
        graph.name = f"g{i}"
    with pytest.raises(ModelLoadError, match="deep"):
        load_model(model)


# --- 14. external data inside Constant nodes ---------------------------------------------------


def _constant_with_external(location: str) -> onnx.ModelProto:
    model = tiny()
    value = helper.make_tensor("w", TensorProto.FLOAT, [4], [0.0, 0.0, 0.0, 0.0])
    value.ClearField("float_data")
    value.data_location = TensorProto.EXTERNAL
    entry = value.external_data.add()
    entry.key, entry.value = "location", location
    node = helper.make_node("Constant", [], ["w_out"], value=value)
    model.graph.node.insert(0, node)
    return model


@pytest.mark.parametrize("location", ["/etc/passwd", "../secret.bin", "a/../../b", "C:\\w.bin"])
def test_external_data_in_a_constant_node_must_stay_in_the_models_folder(
    location: str, tmp_path: Path
) -> None:
    model = _constant_with_external(location)
    with pytest.raises(ModelLoadError, match="relative path inside"):
        profile(model)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelLoadError, match="relative path inside"):
        profile(path)


def test_external_data_in_a_constant_node_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(_constant_with_external("weights.bin").SerializeToString())
    with pytest.raises(ModelLoadError, match="missing or short"):
        profile(path)
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    assert profile(path).model_size_bytes > 16


# --- 14. the calibration's model paths and its CSV ---------------------------------------------


def _calibrate() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "calibrate_hostile", REPO / "benchmarks" / "calibrate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["calibrate_hostile"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("spec", ["onnx:/etc/passwd", "calibration:/etc/hosts", "onnx:../../x"])
def test_calibration_model_paths_stay_in_their_folders(spec: str) -> None:
    calibrate = _calibrate()
    assert not calibrate._model_path(spec).is_file()


def test_a_measurements_csv_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    calibrate = _calibrate()
    text = calibrate.MEASUREMENTS.read_text(encoding="utf-8")
    path = tmp_path / "measurements.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert len(calibrate.load_measurements(path)) == len(calibrate.load_measurements())
