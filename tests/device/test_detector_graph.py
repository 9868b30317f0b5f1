"""The weightless Faster R-CNN graph the detector rows are modelled with
(benchmarks/calibration/models/build.py) does the published model's work, part by part."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import onnx
import pytest

from ei_widgets.profiling.profiler import profile

MODELS = Path(__file__).resolve().parents[2] / "benchmarks" / "calibration" / "models"
COMMITTED = MODELS / "faster_rcnn_resnet50.onnx"

# Conv + Gemm multiply-accumulates of faster_rcnn_resnet50_coco_2018_01_28 on a 1080x1920 frame
# (the calibration notes on the published model: first stage, RPN, second stage at 100 and 300
# proposals).
FIRST_STAGE = 33_775_681_536
RPN = 10_956_570_624
SECOND_STAGE = {100: 73_309_184_000, 300: 219_927_552_000}
TOTAL = {100: 118_041_436_160, 300: 264_659_804_160}


def _build() -> object:
    spec = importlib.util.spec_from_file_location("calibration_build", MODELS / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["calibration_build"] = module
    spec.loader.exec_module(module)
    return module


build = _build()


def _parts(model: onnx.ModelProto) -> tuple[int, int, int, int]:
    prof = profile(model)
    macs = [n.macs for n in prof.nodes if n.op_type in ("Conv", "Gemm")]
    assert len(macs) == 43 + 3 + 3 * 3 + 1 + 2  # stage one, RPN, block4 (+ projection), heads
    return sum(macs[:43]), sum(macs[43:46]), sum(macs[46:]), prof.macs


@pytest.mark.parametrize("proposals", [100, 300])
def test_the_detector_does_the_published_models_work(proposals: int) -> None:
    first, rpn, second, total = _parts(build.faster_rcnn_resnet50(proposals))
    assert first == FIRST_STAGE
    assert rpn == RPN
    assert second == SECOND_STAGE[proposals]
    assert total == TOTAL[proposals]


def test_the_committed_graph_is_the_scripts_at_100_proposals() -> None:
    committed = onnx.load(str(COMMITTED))
    assert committed.SerializeToString() == build.faster_rcnn_resnet50().SerializeToString()
    prof = profile(committed)
    assert prof.macs == TOTAL[100]
    assert prof.param_count == pytest.approx(29.2e6, rel=0.01)  # "about 29.2 million"
    assert prof.inputs[0].dtype == "uint8"
    assert prof.bound_inputs["image_tensor"] == (1, 1080, 1920, 3)
    ops = {n.op_type for n in prof.nodes}
    assert {"Resize", "NonMaxSuppression", "RoiAlign", "TopK"} <= ops
    assert [n.output_shapes[0] for n in prof.nodes if n.op_type == "RoiAlign"] == [
        (100, 1024, 14, 14)
    ]
