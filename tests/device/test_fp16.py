"""fp16 measured on the model: a real conversion, both models run on the same inputs, the errors
and a classifier's agreement reported, cached per model, and used by sessions and sizing."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from ei_widgets.device import fp16
from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.fp16 import FP16Check, FP16Error, compare_outputs, fp16_check
from ei_widgets.device.metrics import MetricsStream
from ei_widgets.device.sessions import session
from ei_widgets.device.sizing import recommend
from ei_widgets.models.demo import demo_model
from ei_widgets.profiling.profiler import profile
from tests.builders import integer_only, mlp
from tests.weights import with_weights


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    fp16.clear_cache()


@pytest.fixture(scope="module")
def squeezenet() -> onnx.ModelProto:
    return with_weights("squeezenet")


def ml_normalizer() -> onnx.ModelProto:
    """ai.onnx.ml Normalizer: it has no float16 version (onnxruntime's block list keeps it)."""
    graph = helper.make_graph(
        [helper.make_node("Normalizer", ["x"], ["y"], domain="ai.onnx.ml", norm="L2")],
        "norm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    )


# --- measured on real classifiers ---------------------------------------------------------------


def test_squeezenet_top1_agreement_is_reported_and_deterministic(squeezenet) -> None:
    first = fp16_check(squeezenet)
    fp16.clear_cache()
    again = fp16_check(squeezenet)
    assert first.measured and not first.reason
    out = first.classifier
    assert out is not None and out.shape == (8, 1000, 1, 1) and out.rows == 8
    assert out.top1 is not None and 0.0 <= out.top1 <= 1.0 and out.top5 is not None
    assert out.tied_rows == 0  # real weights: no ties, so the agreement means something
    assert 0 < out.max_abs < 1e-2 and 0 < out.max_rel < 0.05  # fp16 changed the outputs
    assert (out.top1, out.top5, out.max_abs, out.mean_abs) == (
        again.outputs[0].top1, again.outputs[0].top5, again.outputs[0].max_abs,
        again.outputs[0].mean_abs,
    )  # fmt: skip
    assert not first.from_user and first.inputs.startswith("seeded random inputs (seed 0, 8 rows")
    assert first.agreement.startswith("top-1 ")


def test_resnet50_is_checked_in_calls_of_its_fixed_batch() -> None:
    check = fp16_check(with_weights("resnet50"), samples=2)
    out = check.classifier
    assert check.measured and out is not None
    assert out.shape == (2, 1000) and out.rows == 2  # two calls of batch 1, stacked
    assert out.top1 is not None and out.max_abs > 0


def test_constant_weights_say_their_top_class_is_tied() -> None:
    check = fp16_check(demo_model("squeezenet"), samples=2)
    out = check.classifier
    assert out is not None and out.tied_rows == 2
    # every row tied: agreement was not measured, and no percentage says otherwise
    assert out.top1 is None and out.top5 is None
    assert check.agreement == ("top-1 agreement not measured: fp32 top class tied in 2 of 2 rows")
    assert "%" not in check.agreement
    assert "%" not in check.summary


def test_ties_and_nans_are_left_out_of_the_agreement_and_counted() -> None:
    ref = np.array(
        [[1.0, 3.0, 2.0], [2.0, 2.0, 1.0], [np.nan, 1.0, 0.0], [0.0, 5.0, 1.0]], np.float32
    )
    got = np.array(
        [[1.0, 3.0, 2.0], [2.0, 2.0, 1.0], [np.nan, 1.0, 0.0], [np.nan, 5.0, 1.0]], np.float32
    )
    out = compare_outputs("y", ref, got)
    assert (out.tied_rows, out.nan_rows, out.measured_rows) == (1, 1, 2)
    assert out.top1 == 0.5  # row 0 agrees; row 3's fp16 NaN is a disagreement
    assert out.text == (
        "top-1 50% (2 of 4 rows measured), not measured where fp32 top class tied in 1 of 4"
        " rows and fp32 output NaN in 1 of 4 rows, 1 overflowed"
    )
    nan_only = compare_outputs(
        "y", np.full((8, 3), np.nan, np.float32), np.zeros((8, 3), np.float32)
    )
    assert nan_only.top1 is None
    assert nan_only.text.startswith("top-1 agreement not measured: fp32 output NaN in 8 of 8 rows")
    assert "100%" not in nan_only.text


def test_a_pytorch_classifier(tmp_path) -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10)).eval()
    x = np.random.default_rng(1).standard_normal((64, 32)).astype(np.float32)
    check = fp16_check(module, x, input_shape=(64, 32))
    again = fp16_check(module, x, input_shape=(64, 32))
    assert again is check  # cached per model and inputs
    out = check.classifier
    assert check.from_user and check.inputs == "your inputs (64 rows)"
    assert out is not None and out.rows == 64 and out.top5 is not None
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    # the fp32 side is the module's own answer, so the error is measured against it
    assert out.max_abs == pytest.approx(
        float(np.abs(_fp16_outputs(module, x, input_shape=(64, 32))[0] - ref).max()), abs=1e-5
    )


def _fp16_outputs(model, x, **options):
    sess = fp16.fp16_session(model, **options)
    assert sess is not None
    return sess.run(None, {sess.get_inputs()[0].name: x})


def test_errors_of_an_output_by_hand() -> None:
    ref = np.array([[1.0, 3.0, 2.0], [0.0, 1.0, 5.0]], np.float32)
    got = np.array([[1.5, 2.0, 2.5], [0.0, 1.0, np.inf]], np.float32)
    out = compare_outputs("y", ref, got)
    assert out.classifier and out.rows == 2
    assert out.top1 == 0.5  # row 0: class 1 -> 2; row 1: class 2 stays (inf is its max)
    assert out.top5 is None  # three classes: no top-5
    assert out.overflow == 1
    assert out.max_abs == 1.0 and out.mean_abs == pytest.approx(2.0 / 5)
    assert out.max_rel == pytest.approx(1.0 / 3.0)
    assert not compare_outputs("v", ref[0], got[0]).classifier  # 1-D: not a classifier


# --- not measured, with one line saying why ------------------------------------------------------


def test_an_integer_only_model_is_not_measured() -> None:
    check = fp16_check(integer_only())
    assert not check.measured and check.agreement == "not measured"
    assert check.reason.startswith("integer-only model") and "\n" not in check.reason
    assert "not measured" in repr(check) and check.reason in check._repr_html_()


def test_an_op_without_an_fp16_kernel_is_not_measured() -> None:
    kept = fp16_check(ml_normalizer())  # the default block list keeps it in fp32
    assert kept.measured and kept.kept_fp32 == ("Normalizer",)
    forced = fp16_check(ml_normalizer(), op_block_list=[])
    assert not forced.measured
    assert forced.reason.startswith("onnxruntime cannot run it in fp16")
    assert "\n" not in forced.reason and len(forced.reason) <= 240


def test_inputs_that_do_not_match_the_model_are_refused() -> None:
    with pytest.raises(FP16Error, match="exactly the model's inputs"):
        fp16_check(mlp(), {"z": np.zeros((2, 784), np.float32)})
    with pytest.raises(FP16Error, match="samples"):
        fp16_check(mlp(), samples=0)


def test_progress_is_reported_for_conversion_and_comparison(squeezenet) -> None:
    seen: list[tuple[str, float]] = []
    fp16_check(squeezenet, samples=2, on_progress=lambda stage, f: seen.append((stage, f)))
    assert seen[0] == ("convert", 0.0) and ("convert", 1.0) in seen
    assert seen[-1] == ("compare", 1.0)
    assert [f for s, f in seen if s == "compare"] == sorted(f for s, f in seen if s == "compare")


# --- used by sessions and sizing ------------------------------------------------------------------


def test_an_fp16_session_returns_the_fp16_models_outputs(squeezenet) -> None:
    x = np.random.default_rng(3).standard_normal((1, 3, 224, 224)).astype(np.float32)
    check = fp16_check(squeezenet, x)
    plain = ort.InferenceSession(squeezenet.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = plain.run(None, {"data_0": x})[0]
    state = AcceleratorState()
    state.attach("ml.eia2.medium", precision="fp16")
    sess = session(squeezenet, clock="virtual", state=state, stream=MetricsStream())
    got = sess.run(None, {"data_0": x})[0]
    assert float(np.abs(got - ref).max()) == pytest.approx(check.outputs[0].max_abs, rel=1e-6)
    assert check.outputs[0].max_abs > 0
    state.attach("ml.eia2.medium", precision="fp32")
    np.testing.assert_array_equal(sess.run(None, {"data_0": x})[0], ref)


def test_recommend_shows_the_agreement_on_fp16_rows(squeezenet) -> None:
    prof = profile(squeezenet)
    assert all(r.fp16_agreement is None for r in recommend(prof, batch_sizes=[1]))
    check = fp16_check(squeezenet, samples=2)
    rec = recommend(prof, batch_sizes=[1])  # found in the cache by the profile
    assert rec.fp16 is check
    assert {r.fp16_agreement for r in rec if r.precision == "fp16"} == {check.agreement}
    assert {r.fp16_agreement for r in rec if r.precision == "fp32"} == {None}
    bad = fp16_check(integer_only())
    rec = recommend(prof, batch_sizes=[1], fp16=bad)
    assert {r.fp16_agreement for r in rec if r.precision == "fp16"} == {"not measured"}


def test_result_reprs(squeezenet) -> None:
    check = fp16_check(squeezenet, samples=2)
    assert isinstance(check, FP16Check)
    assert repr(check).startswith("<FP16Check ") and "top-1" in repr(check)
    html = check._repr_html_()
    assert html.index("fp16 vs fp32") < html.index("<table") and "top-5" in html


def test_ei_inspect_fp16_magic_shows_the_check(squeezenet) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from ei_widgets.device import accelerator
    from ei_widgets.notebook import magics

    ip = InteractiveShell.instance()
    magics.register(ip)
    ip.user_ns["net"] = squeezenet
    try:
        with capture_output() as captured:
            ip.run_line_magic("ei_inspect", "net --fp16")
    finally:
        magics.unregister(ip)
        ip.user_ns.pop("net", None)
        accelerator.set_model("", None)
    text = "".join(o.data.get("text/plain", "") for o in captured.outputs)
    html = "".join(o.data.get("text/html", "") for o in captured.outputs)
    assert "fp16 vs fp32 on" in text and "top-1" in text and "max |err|" in text
    assert "<b>fp16 vs fp32</b>" in html
    # cached: the recommendation of the same model now shows the agreement
    rec = recommend(profile(squeezenet), batch_sizes=[1])
    assert rec.fp16 is not None and rec.fp16.measured


def test_the_accelerator_tab_shows_the_check_at_fp16(squeezenet) -> None:
    from ei_widgets.device.catalog import default_catalog
    from ei_widgets.device.judgement import judge_all
    from ei_widgets.notebook.views.accelerator_tab import PickerPanel

    prof = profile(squeezenet)
    picker = PickerPanel(AcceleratorState(), default_catalog)
    picker.show_judgements(judge_all(prof))
    assert picker.fp16_note.value == ""  # fp32: nothing to say
    picker.precision.value = "fp16"
    assert "not measured yet" in picker.fp16_note.value
    check = fp16_check(squeezenet, samples=2)
    picker.show_judgements(judge_all(prof))
    assert check.agreement in picker.fp16_note.value
    picker.precision.value = "fp32"
    assert picker.fp16_note.value == ""
