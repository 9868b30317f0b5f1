"""PyTorch modules as first-class models: found, exported to ONNX in memory, profiled and run.

FLOPs are checked against ``torch.utils.flop_counter.FlopCounterMode`` on the same module and
input, for the op kinds it counts (matrix products, convolutions, attention): those are the ONNX
nodes with multiply-accumulates, counted at 2 FLOPs each. To let the counter see every product,
the reference runs PyTorch's plain kernels: no oneDNN (its LSTM kernel is opaque to the counter),
no fused multi-head-attention fast path, and the "math" attention backend.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch  # the [torch] extra is part of the test dependencies
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.metrics import MetricsStream
from ei_widgets.device.sessions import session
from ei_widgets.errors import EIError, ModelLoadError, ProfileError
from ei_widgets.models import frameworks
from ei_widgets.models.discovery import find_models
from ei_widgets.models.frameworks import base
from ei_widgets.models.frameworks import torch as torch_models
from ei_widgets.models.loading import load_model
from ei_widgets.profiling.profiler import profile

MAC_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum", "Attention", "LSTM", "GRU", "RNN"}


# ----------------------------------------------------------------------------------------------
# test modules


def seeded(build: Any) -> Any:
    torch.manual_seed(0)
    return build()


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Linear(128, 10))


class SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(32, 4, batch_first=True)

    def forward(self, x: Any) -> Any:
        return self.attention(x, x, x, need_weights=False)[0]


def encoder() -> nn.Module:
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


class Recurrent(nn.Module):
    def __init__(self, cell: str = "LSTM") -> None:
        super().__init__()
        kind = {"LSTM": nn.LSTM, "GRU": nn.GRU}[cell]
        self.rnn = kind(16, 32, num_layers=2, batch_first=True)
        self.head = nn.Linear(32, 4)

    def forward(self, x: Any) -> Any:
        return self.head(self.rnn(x)[0][:, -1])


CASES: dict[str, tuple[Any, tuple[int, ...]]] = {
    "conv": (ConvNet, (2, 3, 32, 32)),
    "linear": (mlp, (4, 64)),
    "attention": (SelfAttention, (2, 10, 32)),
    "transformer": (encoder, (2, 10, 32)),
    "lstm": (lambda: Recurrent("LSTM"), (2, 7, 16)),
    "gru": (lambda: Recurrent("GRU"), (2, 7, 16)),
}


_prepared: dict[str, tuple[Any, Any]] = {}


def prepared(case: str) -> tuple[Any, Any]:
    """One module and input per case, shared by the tests (so each is exported once)."""
    if case not in _prepared:
        build, shape = CASES[case]
        module = seeded(build).eval()
        x = torch.randn(shape)
        torch_models.remember_inputs(module, x)
        _prepared[case] = (module, x)
    return _prepared[case]


@contextlib.contextmanager
def plain_kernels() -> Iterator[None]:
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # oneDNN's note about Intel GPUs when it is toggled
            with torch.backends.mkldnn.flags(enabled=False), sdpa_kernel(SDPBackend.MATH):
                yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)


def reference_flops(module: nn.Module, x: Any) -> tuple[int, dict[str, int]]:
    module.eval()
    with (
        plain_kernels(),
        torch.no_grad(),
        FlopCounterMode(display=False) as counter,
    ):
        module(x)
    counts = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    return counter.get_total_flops(), counts


def matrix_flops(result: Any) -> int:
    return sum(2 * node.macs for node in result.nodes if node.op_type in MAC_OPS)


@pytest.fixture
def st() -> AcceleratorState:
    state = AcceleratorState()
    state.attach("ml.eia2.large")
    return state


def accelerated(model: Any, st: AcceleratorState, **kwargs: Any) -> Any:
    return session(model, clock="virtual", state=st, stream=MetricsStream(), **kwargs)


# ----------------------------------------------------------------------------------------------
# profiles agree with PyTorch's own counts


@pytest.mark.parametrize("case", list(CASES))
def test_flops_agree_with_flop_counter_mode(case: str) -> None:
    module, x = prepared(case)
    expected, counted = reference_flops(module, x)
    result = profile(module, batch_size=x.shape[0])
    ours = matrix_flops(result)
    assert expected > 0, counted
    assert ours == pytest.approx(expected, rel=0.02), (case, ours, expected, counted)
    assert result.flops >= ours  # plus elementwise, normalisation and bias work
    assert result.unknown_ops == ()
    assert result.batch_size == x.shape[0]


@pytest.mark.parametrize("case", list(CASES))
def test_parameters_and_buffers_are_the_frameworks(case: str) -> None:
    module, _ = prepared(case)
    loaded = load_model(module)
    info = loaded.framework
    assert info is not None and info.framework == "torch" and info.kind == "torch-module"
    assert info.params == sum(p.numel() for p in module.parameters())
    assert info.buffers == sum(b.numel() for b in module.buffers())
    assert info.param_bytes == 4 * info.params


def test_profile_reports_framework_counts_apart_from_the_graph() -> None:
    module, _ = prepared("conv")
    result = profile(module)
    assert result.framework is not None
    assert result.framework.params == sum(p.numel() for p in module.parameters())
    # BatchNorm's running mean and variance and its batch counter: buffers, reported apart.
    assert result.framework.buffers == 8 + 8 + 1


def test_batch_axis_is_symbolic_so_one_export_serves_every_batch() -> None:
    module, _ = prepared("conv")
    one = profile(module, batch_size=1)
    exports = torch_models.cached_exports(module)
    eight = profile(module, batch_size=8)
    assert torch_models.cached_exports(module) == exports
    assert eight.bound_inputs == {"x": (8, 3, 32, 32)}
    assert matrix_flops(eight) == 8 * matrix_flops(one)


# ----------------------------------------------------------------------------------------------
# sessions give the framework's outputs


@pytest.mark.parametrize("case", ["conv", "transformer", "lstm", "attention"])
def test_session_outputs_match_the_module(case: str, st: AcceleratorState) -> None:
    module, x = prepared(case)
    shape = tuple(x.shape)
    sess = accelerated(module, st)
    name = sess.get_inputs()[0].name
    (ours,) = sess.run(None, {name: x.numpy()})
    with torch.no_grad():
        expected = module(x).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)
    # another batch size runs on the same export
    x3 = torch.randn((3, *shape[1:]))
    (ours3,) = sess.run(None, {name: x3.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(ours3, module(x3).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_modules_export_with_the_torchscript_exporter(st: AcceleratorState) -> None:
    module = seeded(ConvNet).eval()
    x = torch.randn(2, 3, 32, 32)
    for compiled in (torch.jit.script(module), torch.jit.trace(module, x)):
        torch_models.remember_inputs(compiled, input_shape=(2, 3, 32, 32))
        loaded = load_model(compiled)
        assert loaded.kind == "torchscript-module"
        assert loaded.framework.exporter == torch_models.EXPORTER_TORCHSCRIPT
        assert loaded.framework.params == sum(p.numel() for p in module.parameters())
        sess = accelerated(compiled, st)
        (ours,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(ours, module(x).numpy(), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# example inputs: given, remembered, recorded


def test_example_inputs_and_input_shape_in_profile_and_session(st: AcceleratorState) -> None:
    module = seeded(mlp)
    x = torch.randn(4, 64)
    by_tensor = profile(module, example_inputs=x)
    by_shape = profile(seeded(mlp), input_shape=(4, 64))
    assert by_tensor.flops == by_shape.flops > 0
    # remembered from the call above: the session needs no inputs again
    sess = accelerated(module, st)
    (ours,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(ours, module(x).numpy(), rtol=1e-4, atol=1e-5)
    other = seeded(mlp)
    sess2 = accelerated(other, st, example_inputs=np.zeros((1, 64), np.float32))
    assert sess2.get_inputs()[0].shape[1] == 64


def test_shapes_of_the_next_forward_call_are_remembered() -> None:
    module = seeded(mlp)
    with pytest.raises(ProfileError, match=r"input_shape=\(") as error:
        profile(module)
    assert "model(x)" in str(error.value)
    assert len(module._forward_pre_hooks) == 1  # listening for the next call
    module(torch.randn(3, 64))  # the user runs the model in the notebook
    assert not module._forward_pre_hooks  # the hook removed itself
    assert "recorded" in load_model(module).framework.input_source
    result = profile(module)
    assert result.bound_inputs == {"input": (1, 64)}  # the export's batch axis is symbolic


def test_a_listed_module_saved_whole_does_not_refer_to_ei_widgets(tmp_path: Path) -> None:
    module = seeded(mlp)
    find_models({"net": module})  # listing it adds the recording hook
    assert module._forward_pre_hooks
    path = tmp_path / "net.pt"
    torch.save(module, path)  # while the hook waits
    assert b"ei_widgets" not in path.read_bytes()
    loaded = torch.load(path, weights_only=False)
    x = torch.randn(2, 64)
    torch.testing.assert_close(loaded(x), module(x))  # the saved hook is a harmless no-op
    assert torch_models.known_inputs(loaded) is None
    torch_models.watch(module)
    torch_models.unwatch(module)
    assert not module._forward_pre_hooks


def test_input_shapes_from_a_command_line() -> None:
    assert frameworks.parse_input_shape("1,3,224,224") == (1, 3, 224, 224)
    assert frameworks.parse_input_shape("1x3x32x32") == (1, 3, 32, 32)
    assert frameworks.parse_input_shape("2,8; 2,6") == [(2, 8), (2, 6)]
    for bad in ("", "a,b", "0,3", "1,-2", "1,3;"):
        with pytest.raises(ValueError, match="positive sizes"):
            frameworks.parse_input_shape(bad)


def test_unknown_options_are_refused_not_ignored() -> None:
    with pytest.raises(ProfileError, match="unknown option"):
        profile(seeded(mlp), example_input=torch.randn(1, 64))


def test_unknown_input_shape_says_how_to_give_one() -> None:
    module = seeded(mlp)
    with pytest.raises(ProfileError) as error:
        load_model(module)
    message = str(error.value)
    assert "input_shape=(1, 3, 224, 224)" in message and "example_inputs=" in message


@pytest.mark.parametrize("bad", [(), (0, 3), (1, -2), ("a", 3), 5, (1.5, 2), ((1, 2), (0,))])
def test_bad_input_shapes_are_refused(bad: Any) -> None:
    with pytest.raises(ProfileError, match="input_shape"):
        torch_models.remember_inputs(seeded(mlp), input_shape=bad)


def test_keyword_and_multiple_inputs() -> None:
    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(8, 4)
            self.b = nn.Linear(6, 4)

        def forward(self, left: Any, right: Any) -> Any:
            return self.a(left) + self.b(right)

    module = seeded(TwoInputs)
    torch_models.remember_inputs(module, input_shape=[(2, 8), (2, 6)])
    by_position = load_model(module)
    assert [i.name for i in by_position.model.graph.input] == ["left", "right"]
    torch_models.remember_inputs(module, {"left": torch.randn(2, 8), "right": torch.randn(2, 6)})
    assert [i.name for i in load_model(module).model.graph.input] == ["left", "right"]


# ----------------------------------------------------------------------------------------------
# the export cache


def test_exports_are_cached_until_the_weights_change() -> None:
    module = seeded(mlp)
    torch_models.remember_inputs(module, input_shape=(1, 64))
    first = load_model(module)
    assert load_model(module) is first
    optimiser = torch.optim.SGD(module.parameters(), lr=0.1)
    module(torch.randn(4, 64)).sum().backward()
    optimiser.step()  # updates the parameters in place
    second = load_model(module)
    assert second is not first
    assert torch_models.cached_exports(module) == 2
    weights = {t.name: t for t in second.model.graph.initializer}
    assert any(
        np.allclose(
            np.frombuffer(t.raw_data, np.float32), module[0].weight.detach().numpy().ravel()
        )
        for t in weights.values()
        if tuple(t.dims) == (128, 64)
    )


def test_export_leaves_the_module_and_the_rng_as_they_were() -> None:
    module = seeded(lambda: nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5)))
    module.train()
    torch_models.remember_inputs(module, input_shape=(2, 8))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_model(module)
    assert module.training and module[1].training
    assert torch.equal(torch.rand(3), expected)


# ----------------------------------------------------------------------------------------------
# bad input


class Decomposes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x: Any) -> Any:
        return torch.linalg.svd(self.proj(x))[1]


def test_a_module_that_cannot_be_exported_gives_the_reason_in_one_message(
    capfd: pytest.CaptureFixture[str],
) -> None:
    module = seeded(Decomposes)
    torch_models.remember_inputs(module, input_shape=(1, 4, 4))
    events: list[base.ExportProgress] = []
    with base.progress_listener(events.append), pytest.raises(ModelLoadError) as error:
        load_model(module)
    assert events[-1].done and events[-1].stage == "failed" and "svd" in events[-1].error
    message = str(error.value)
    assert message.startswith("Cannot export Decomposes to ONNX:")
    assert "svd" in message and "\n" not in message and len(message) < 800
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_data_dependent_control_flow_falls_back_to_tracing_with_a_warning() -> None:
    class Branches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(4, 4)

        def forward(self, x: Any) -> Any:
            if x.sum() > 0:
                return self.proj(x)
            return x

    module = seeded(Branches)
    torch_models.remember_inputs(module, input_shape=(2, 4))
    loaded = load_model(module)
    assert loaded.framework.exporter == torch_models.EXPORTER_TORCHSCRIPT
    assert any("could not capture" in w and "x.sum() > 0" in w for w in loaded.warnings)


def test_exports_are_quiet(capfd: pytest.CaptureFixture[str]) -> None:
    module = seeded(mlp)
    torch_models.remember_inputs(module, input_shape=(1, 64))
    with _no_warnings():
        load_model(module)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


@contextlib.contextmanager
def _no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ----------------------------------------------------------------------------------------------
# discovery and the optional extra


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_find_models_lists_modules_but_not_losses_or_activations() -> None:
    net = seeded(ConvNet)
    scripted = torch.jit.script(seeded(mlp))
    namespace = {"net": net, "scripted": scripted, "loss": nn.CrossEntropyLoss(), "act": nn.ReLU()}
    found = {entry.variable: entry for entry in find_models(namespace)}
    assert set(found) == {"net", "scripted"}
    params = sum(p.numel() for p in net.parameters())
    assert found["net"].kind == "torch-module"
    assert found["net"].summary.startswith(f"PyTorch module ConvNet, {params:,} parameters")
    assert "input shape unknown" in found["net"].summary
    assert found["scripted"].kind == "torchscript-module"
    net(torch.randn(1, 3, 32, 32))
    (entry,) = find_models({"net": net})
    assert "input float32[1, 3, 32, 32]" in entry.summary and "unknown" not in entry.summary


def test_without_the_extra_models_are_listed_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if it were not installed
    module = seeded(mlp)
    (entry,) = find_models({"net": module})
    assert "install ei_widgets[torch]" in entry.summary
    torch_models.remember_inputs(module, input_shape=(1, 64))
    with pytest.raises(ModelLoadError, match=r"install ei_widgets\[torch\]"):
        load_model(module)
    with pytest.raises(EIError, match=r"install ei_widgets\[torch\]"):
        profile(module)


def test_recognising_and_registering_import_no_framework() -> None:
    code = (
        "import sys, onnx\n"
        "from ei_widgets.models import frameworks\n"
        "from ei_widgets.models.discovery import find_models\n"
        "from ei_widgets.models.loading import registered_kinds\n"
        "assert find_models({'m': onnx.ModelProto(), 'x': 1})[0].kind == 'onnx-model'\n"
        "assert 'torch-module' in registered_kinds()\n"
        "print(sorted(k for k in ('torch', 'sklearn', 'skl2onnx', 'onnxscript', 'onnxruntime')"
        " if k in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_shape_for_a_module_that_starts_with_an_embedding_means_token_indices(
    st: AcceleratorState,
) -> None:
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(50, 16)
            self.encode = nn.GRU(16, 16, batch_first=True)
            self.tag = nn.Linear(16, 5)

        def forward(self, tokens: Any) -> Any:
            return self.tag(self.encode(self.embed(tokens))[0])

    module = seeded(Tagger).eval()
    result = profile(module, input_shape=(1, 12), batch_size=4)
    assert result.inputs[0].dtype == "int64"
    assert result.bound_inputs == {"tokens": (4, 12)}
    tokens = torch.randint(0, 50, (4, 12))
    sess = accelerated(module, st)
    (ours,) = sess.run(None, {"tokens": tokens.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(ours, module(tokens).numpy(), rtol=1e-4, atol=1e-5)
