"""Each model is told the validated error of the published rows it resembles, or that it has none
(ei_widgets.device.accuracy)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import onnx
import pytest

from ei_widgets.device.accuracy import UNKNOWN, UNKNOWN_TEXT, classify, model_accuracy
from ei_widgets.device.catalog import packaged_catalog
from ei_widgets.device.sizing import recommend
from ei_widgets.profiling.profiler import profile
from ei_widgets.profiling.result import NodeCost, ParamGroup, Profile, TensorInfo

CAT = packaged_catalog()
ROOT = Path(__file__).resolve().parents[2]
LIGHT = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"


def node(op: str, flops: int, name: str = "") -> NodeCost:
    return NodeCost(name or op, op, "", flops, flops // 2, 1000, 1000, 0, ((1, 8),), True)


def synthetic(*nodes: NodeCost) -> Profile:
    return Profile(
        name="synthetic", inputs=(TensorInfo("x", "float32", ("N", 3, 224, 224)),),
        outputs=(TensorInfo("y", "float32", ("N", 1000)),), opsets={"": 17}, producer="t",
        node_count=len(nodes), op_histogram={}, params=(ParamGroup("float32", 10, 40),),
        nodes=tuple(nodes), peak_activation_bytes=1000, model_size_bytes=40, unknown_ops=(),
        batch_size=1, bound_inputs={"x": (1, 3, 224, 224)},
    )  # fmt: skip


def test_the_published_models_fall_in_their_groups() -> None:
    assert classify(profile(str(LIGHT / "light_resnet50.onnx")))[0] == "classifier"
    assert classify(profile(str(LIGHT / "light_densenet121.onnx")))[0] == "classifier"
    frcnn = ROOT / "benchmarks" / "calibration" / "models" / "faster_rcnn_resnet50.onnx"
    group, reason = classify(profile(str(frcnn)))
    assert group == "detector"
    assert "NonMaxSuppression" in reason and "RoiAlign" in reason


def test_a_classifier_is_told_the_classifiers_error() -> None:
    acc = model_accuracy(synthetic(node("Conv", 10**9), node("Relu", 10**6)), catalog=CAT)
    assert acc.group == "classifier" and "convolutions do" in acc.reason
    assert CAT.validation is not None
    assert acc.error == CAT.validation.groups["classifier"]
    assert acc.band is not None and acc.band >= CAT.validation.noise
    assert acc.text.startswith(f"modelled: ±{acc.band:.0%} for dense CNN classifiers")
    # A CPU-only option states the wider of its group's and the CPU rows' error.
    cpu = model_accuracy(synthetic(node("Conv", 10**9)), catalog=CAT, cpu_only=True)
    assert cpu.band == max(acc.band, CAT.validation.groups["cpu"].band)


@pytest.mark.parametrize(
    ("nodes", "why"),
    [
        ((node("MatMul", 10**9), node("Softmax", 10**6), node("LayerNormalization", 10**6)),
         "LayerNormalization"),
        ((node("Conv", 10**9), node("Loop", 0)), "Loop"),
        ((node("Conv", 10**8), node("Scan", 0)), "Scan"),
        ((node("LSTM", 10**9),), "LSTM"),
        ((node("MatMul", 10**9), node("Conv", 10**6)), "MatMul"),  # mostly not convolutions
    ],
)  # fmt: skip
def test_a_model_like_none_of_them_says_so(nodes: tuple[NodeCost, ...], why: str) -> None:
    acc = model_accuracy(synthetic(*nodes), catalog=CAT)
    assert acc.group == UNKNOWN and why in acc.reason
    assert acc.band is None and not acc.known
    assert acc.text == f"modelled: {UNKNOWN_TEXT}"
    assert UNKNOWN_TEXT == (
        "no published EI measurement resembles this model; the latency is an estimate of "
        "unknown error"
    )
    # recommend() says so too, and never calls a target too close with a borrowed error.
    rec = recommend(synthetic(*nodes), latency_target_ms=50, catalog=CAT, batch_sizes=[1])
    assert rec.accuracy == acc.explained and not rec.too_close
    assert acc.reason in rec.accuracy  # the ops that decide it, stated with the error
    assert "unknown error" in rec.reason
    # The catalog's general statement says other models have no validated error.
    assert "other models: unknown error" in CAT.latency_accuracy


def test_without_a_validation_nothing_is_claimed() -> None:
    bare = dataclasses.replace(CAT, validation=None)
    acc = model_accuracy(synthetic(node("Conv", 10**9)), catalog=bare)
    assert acc.band is None and acc.group == "classifier"


def test_too_close_names_only_options_within_the_error() -> None:
    prof = synthetic(*(node("Conv", 3 * 10**8, f"c{i}") for i in range(20)))
    band = model_accuracy(prof, catalog=CAT).band
    assert band is not None
    rec = recommend(prof, latency_target_ms=50, catalog=CAT)
    if rec.too_close:
        for part in rec.reason.split("Too close to call: ")[1].split(" within")[0].split(" and "):
            ms = float(part.rsplit(" at ", 1)[1].removesuffix(" ms").split()[0])
            assert ms * (1 - band) <= 50 <= ms * (1 + band) or ms * (1 + band) > 50
