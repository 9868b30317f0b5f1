"""TensorFlow and Keras models, first-class: found, converted to ONNX once, profiled and run.

FLOPs are checked against TensorFlow's own count, its profiler's float operations
(``tf.compat.v1.profiler`` with ``float_operation()``) on the frozen concrete function of the same
model at batch 1. The rules differ in one respect that is not an error: TensorFlow registers no
FLOP count for activations (Relu, Relu6, Sigmoid, Tanh count 0), while ours count one or a few
FLOPs per element (an LSTM's three sigmoids and two tanh per hidden unit and step, 22 FLOPs). So
our total less those activation FLOPs is compared with TensorFlow's total, within 2%. (It also
counts inference BatchNorm as the Mul and Add it is traced to, where tf2onnx folds it into the
convolution before it: a few tenths of a percent of a CNN.) The multiply-accumulate ops
(Conv2D, DepthwiseConv2dNative, MatMul against Conv, MatMul, Gemm, LSTM) are compared apart, also
within 2%. TensorFlow's profiler cannot see into a ``While`` loop, so the LSTM's reference is
the same model with ``unroll=True`` and the same weights (every step's MatMuls in the graph).

Conversions are slow (seconds to a minute, in a child process), so the models are built and
converted once per module and shared.
"""

from __future__ import annotations

import collections
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")  # the [tensorflow] extra is part of the test dependencies
keras = pytest.importorskip("keras")

from tensorflow.python.framework.convert_to_constants import (  # noqa: E402
    convert_variables_to_constants_v2,
)

from ei_widgets.device.accelerator import AcceleratorState  # noqa: E402
from ei_widgets.device.estimate import default_runtime  # noqa: E402
from ei_widgets.device.metrics import MetricsStream  # noqa: E402
from ei_widgets.device.sessions import session  # noqa: E402
from ei_widgets.errors import ProfileError, UnsupportedOpError  # noqa: E402
from ei_widgets.models.discovery import find_models  # noqa: E402
from ei_widgets.models.frameworks import base  # noqa: E402
from ei_widgets.models.frameworks import tensorflow as tf_models  # noqa: E402
from ei_widgets.models.loading import load_model  # noqa: E402
from ei_widgets.profiling.op_costs import RECURRENT_CELL_FLOPS  # noqa: E402
from ei_widgets.profiling.profiler import profile  # noqa: E402

pytestmark = pytest.mark.slow
MAC_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum", "LSTM", "GRU", "RNN"}
ACTIVATIONS = {"Relu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Softplus"}
LSTM_ACTIVATION_FLOPS = 3 * 4 + 2 * 5  # per hidden unit and step: 3 sigmoids, 2 tanh
TF_MAC_OPS = {"Conv2D", "DepthwiseConv2dNative", "MatMul", "BatchMatMulV2", "BatchMatMulV3"}


@pytest.fixture(scope="module", autouse=True)
def shared_disk_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One disk cache for the module (each test's own would convert every model again)."""
    folder = tmp_path_factory.mktemp("ei-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv(base.CACHE_DIR_ENV, str(folder))
    yield folder
    patch.undo()


@pytest.fixture(autouse=True)
def keep_cache_dir(shared_disk_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(base.CACHE_DIR_ENV, str(shared_disk_cache))


def lstm(unroll: bool = False) -> Any:
    return keras.Sequential(
        [
            keras.Input((20, 16)),
            keras.layers.LSTM(32, return_sequences=True, unroll=unroll),
            keras.layers.LSTM(32, unroll=unroll),
            keras.layers.Dense(4),
        ]
    )


BUILDERS = {
    "resnet50": lambda: keras.applications.ResNet50(weights=None),
    "mobilenetv2": lambda: keras.applications.MobileNetV2(weights=None),
    "lstm": lstm,
}
SHAPES = {"resnet50": (1, 224, 224, 3), "mobilenetv2": (1, 224, 224, 3), "lstm": (1, 20, 16)}
_built: dict[str, Any] = {}


def built(case: str) -> Any:
    """One model per case for the module (converted once, then read from the caches)."""
    if case not in _built:
        keras.utils.set_random_seed(0)
        _built[case] = BUILDERS[case]()
    return _built[case]


def tensorflow_flops(model: Any, shape: tuple[int, ...]) -> tuple[int, dict[str, int]]:
    """TensorFlow's profiler's float operations for the model's frozen graph at ``shape``."""
    from tensorflow.python.profiler import tfprof_logger

    function = tf.function(lambda x: model(x, training=False))
    graph = convert_variables_to_constants_v2(
        function.get_concrete_function(tf.TensorSpec(shape, tf.float32))
    ).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    total = tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops
    # the same numbers per op type (the profiler's own op view groups them oddly)
    logged, _ = tfprof_logger._get_logged_ops(graph, add_trace=False)
    by_type: collections.Counter[str] = collections.Counter()
    for name, entry in logged.items():
        by_type[graph.get_operation_by_name(name).type] += entry.float_ops
    assert sum(by_type.values()) == total
    return total, dict(by_type)


def activation_flops(result: Any) -> int:
    """The FLOPs our rules give the activations TensorFlow's profiler counts as 0."""
    flops = 0
    for node in result.nodes:
        if node.op_type in ACTIVATIONS:
            flops += node.flops
        elif node.op_type == "LSTM":  # the cell's elementwise work, of which the activations
            cell = node.flops - 2 * node.macs
            flops += cell * LSTM_ACTIVATION_FLOPS // RECURRENT_CELL_FLOPS["LSTM"]
    return flops


@pytest.fixture
def st() -> AcceleratorState:
    state = AcceleratorState()
    state.attach("ml.eia2.large")
    return state


def accelerated(model: Any, st: AcceleratorState, **kwargs: Any) -> Any:
    return session(model, clock="virtual", state=st, stream=MetricsStream(), **kwargs)


# ----------------------------------------------------------------------------------------------
# profiles agree with TensorFlow's own counts


@pytest.mark.parametrize("case", ["lstm", "mobilenetv2", "resnet50"])
def test_flops_and_parameters_agree_with_tensorflow(case: str) -> None:
    model = built(case)
    result = profile(model)
    reference = model
    if case == "lstm":  # TF's profiler cannot look into the While loop: unroll it
        reference = lstm(unroll=True)
        reference.set_weights(model.get_weights())
    total, by_type = tensorflow_flops(reference, SHAPES[case])
    ours = result.flops - activation_flops(result)
    assert ours == pytest.approx(total, rel=0.02), (case, result.flops, ours, total, by_type)
    ours_mac = sum(2 * n.macs for n in result.nodes if n.op_type in MAC_OPS)
    theirs_mac = sum(v for k, v in by_type.items() if k in TF_MAC_OPS)
    assert ours_mac == pytest.approx(theirs_mac, rel=0.02), (case, ours_mac, theirs_mac)
    assert result.unknown_ops == ()
    assert result.framework is not None
    assert result.framework.params == model.count_params()  # exactly, moving statistics included
    assert result.framework.framework == "tensorflow" and result.framework.kind == "keras-model"
    assert default_runtime(result) == "tensorflow"


def test_session_outputs_match_the_model(st: AcceleratorState) -> None:
    model = built("lstm")
    sess = accelerated(model, st)
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).random((3, 20, 16), dtype=np.float32)
    (ours,) = sess.run(None, {name: x})
    np.testing.assert_allclose(ours, model(x).numpy(), rtol=1e-4, atol=1e-5)
    # another batch size runs on the same conversion
    x5 = np.random.default_rng(1).random((5, 20, 16), dtype=np.float32)
    (ours5,) = sess.run(None, {name: x5})
    np.testing.assert_allclose(ours5, model(x5).numpy(), rtol=1e-4, atol=1e-5)


def test_resnet50_session_outputs_match_the_model(st: AcceleratorState) -> None:
    model = built("resnet50")
    sess = accelerated(model, st)
    x = np.random.default_rng(0).random((2, 224, 224, 3), dtype=np.float32)
    (ours,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.testing.assert_allclose(ours, model(x).numpy(), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# the other kinds: subclassed, tf.function, tf.Module, saved files


class Subclassed(keras.Model):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="relu")
        self.out = keras.layers.Dense(3)

    def call(self, x: Any) -> Any:
        return self.out(self.hidden(x))


def test_a_subclassed_model_is_found_once_called_and_matches(st: AcceleratorState) -> None:
    keras.utils.set_random_seed(0)
    model = Subclassed()
    assert find_models({"net": model}) == []  # not built: no weights yet
    x = np.random.default_rng(0).random((4, 6), dtype=np.float32)
    model(x)
    (entry,) = find_models({"net": model})
    assert entry.kind == "keras-model" and "float32[batch, 6]" in entry.summary
    sess = accelerated(model, st)
    (ours,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.testing.assert_allclose(ours, model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_tf_functions_and_saved_models_and_keras_files(
    tmp_path: Path, st: AcceleratorState
) -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="tanh")])
    x = np.random.default_rng(0).random((2, 6), dtype=np.float32)
    expected = model(x).numpy()

    function = tf.function(
        lambda v: model(v, training=False), input_signature=[tf.TensorSpec((None, 6))]
    )
    model.export(tmp_path / "saved", format="tf_saved_model", verbose=False)
    loaded_module = tf.saved_model.load(str(tmp_path / "saved"))
    model.save(tmp_path / "model.keras")
    found = {e.variable: e.kind for e in find_models({"f": function, "m": loaded_module})}
    assert found == {"f": "tf-function", "m": "tf-module"}
    for obj in (function, loaded_module, tmp_path / "saved", str(tmp_path / "model.keras")):
        loaded = load_model(obj)
        assert loaded.framework is not None and loaded.framework.params == 6 * 5 + 5, obj
        sess = accelerated(obj, st)
        (ours,) = sess.run(None, {sess.get_inputs()[0].name: x})
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# inputs, caching, progress, errors


def test_unknown_input_shapes_say_how_to_give_them() -> None:
    inputs = keras.Input((None, 8))  # a sequence of any length
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    (entry,) = find_models({"model": model})
    assert "input shape unknown" in entry.summary
    with pytest.raises(ProfileError) as error:
        profile(model)
    assert "input_shape=(" in str(error.value) and "example_inputs=" in str(error.value)
    result = profile(model, input_shape=(1, 5, 8))
    assert list(result.bound_inputs.values()) == [(1, 5, 8)]


def test_conversions_are_cached_until_the_weights_change(
    shared_disk_cache: Path,
) -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    events: list[base.ExportProgress] = []
    with base.progress_listener(events.append):
        first = load_model(model)
    assert events and events[-1].done and not events[-1].error
    assert [e.fraction for e in events] == sorted(e.fraction for e in events)
    assert load_model(model) is first  # memory
    tf_models.clear_cache()  # as in a new process: the disk cache answers, nothing converts
    events.clear()
    with base.progress_listener(events.append):
        again = load_model(model)
    assert events == [] and again is not first
    assert again.model.SerializeToString() == first.model.SerializeToString()
    model.layers[0].kernel.assign(np.ones((4, 2), np.float32))
    with base.progress_listener(events.append):
        changed = load_model(model)
    assert events, "a changed model converts again"
    weights = [np.frombuffer(t.raw_data, np.float32) for t in changed.model.graph.initializer]
    assert any(w.size == 8 and np.all(w == 1) for w in weights)


def test_an_op_tf2onnx_cannot_convert_is_named() -> None:
    function = tf.function(
        lambda m: tf.linalg.qr(m)[1] + 1.0, input_signature=[tf.TensorSpec((None, 3, 3))]
    )
    with pytest.raises(UnsupportedOpError) as error:
        load_model(function)
    assert error.value.ops
    message = str(error.value)
    assert "cannot convert" in message and error.value.ops[0] in message
    assert "support_status" in message  # what to do


def test_importing_ei_widgets_imports_no_tensorflow() -> None:
    code = (
        "import sys, ei_widgets\n"
        "from ei_widgets.models.discovery import find_models\n"
        "find_models({'x': 1, 'p': 'model.keras'})\n"
        "print(sorted(k for k in ('tensorflow', 'tf2onnx', 'keras') if k in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------------------------
# freezing, and the converting process started ahead


def test_a_keras_graph_is_frozen_directly_and_other_uses_by_tensorflow(
    st: AcceleratorState,
) -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5)])
    traced = tf_models.take_apart(tf_models._concrete(model, tf_models._declared_specs(model)))
    frozen = tf_models.freeze_graph(traced.graph, traced.captures)
    assert frozen is not None
    ops = collections.Counter(node.op for node in frozen.node)
    assert ops["ReadVariableOp"] == 0 and ops["Placeholder"] == 1  # the input alone
    constants = {
        node.name: tf.make_ndarray(node.attr["value"].tensor)
        for node in frozen.node
        if node.op == "Const"
    }
    for weight in model.weights:  # every weight is in the graph as it is in the model
        assert any(
            c.shape == weight.shape and np.array_equal(c, weight.numpy())
            for c in constants.values()
        )

    # a variable used other than by a plain read (a gather from it): TensorFlow's own freezing
    table = tf.Variable(np.arange(12, dtype=np.float32).reshape(6, 2))
    lookup = tf.function(
        lambda ids: tf.gather(table, ids) * 2.0, input_signature=[tf.TensorSpec((None,), tf.int32)]
    )
    traced = tf_models.take_apart(lookup.get_concrete_function())
    assert tf_models.freeze_graph(traced.graph, traced.captures) is None
    sess = accelerated(lookup, st)
    ids = np.array([5, 0, 3], np.int32)
    (ours,) = sess.run(None, {sess.get_inputs()[0].name: ids})
    np.testing.assert_array_equal(ours, lookup(ids).numpy())


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_kernel_that_imports_tensorflow_starts_its_converter_ahead(
    shared_disk_cache: Path,
) -> None:
    import time

    from tests.kernel import kernel, run

    code_pid = (
        "from ei_widgets.models.frameworks import tensorflow as t\n"
        "print(t._spare.pid if t._spare else None)"
    )
    env = {base.CACHE_DIR_ENV: str(shared_disk_cache)}
    with kernel(env) as (_manager, client):
        assert run(client, "%load_ext ei_widgets").error is None
        assert run(client, code_pid).stdout.strip() == "None"  # no TensorFlow: nothing started
        assert run(client, "import tensorflow as tf, keras", timeout=120).error is None
        spare = int(run(client, code_pid).stdout)
        assert _alive(spare)
        build = (
            "keras.utils.set_random_seed(1)\n"
            "model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])\n"
            "import ei_widgets, numpy as np\n"
            "print(ei_widgets.profile(model).flops > 0)"
        )
        assert run(client, build, timeout=300).stdout.strip() == "True"
        assert not _alive(spare)  # the waiting process did the conversion, and exited
        after = int(run(client, code_pid).stdout)  # the next cell started the next one
        assert after != spare and _alive(after)
        assert run(client, "%unload_ext ei_widgets").error is None
        assert not _alive(after)
        assert run(client, "%load_ext ei_widgets").error is None
        last = int(run(client, "pass\n" + code_pid).stdout)
    deadline = time.monotonic() + 60  # killed with the kernel: it reads the end of its input
    while _alive(last) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(last)
    assert not list(
        shared_disk_cache.glob("exports/tensorflow/.new-*")
    )  # its scratch folder is gone
