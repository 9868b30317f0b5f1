"""Hostile input: files that are not files, malformed fields, absurd nesting, weights hidden in
Constant nodes and external data that points outside the model's folder. Each is a typed
EIError in ``profile()``, a one-line exit status 2 in the CLI, and a UsageError in the magics."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ei_widgets import cli
from ei_widgets.errors import EIError, ModelLoadError
from ei_widgets.profiling.graph_order import MAX_SUBGRAPH_DEPTH
from ei_widgets.profiling.profiler import profile
from tests import builders
from tests.memory import PeakMemory

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Run in a child with bounded memory, so that a regression (reading /dev/zero for ever, or
# blocking on a FIFO) fails the test instead of taking the machine down or hanging the suite.
_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
from ei_widgets.profiling.profiler import profile
try:
    profile(sys.argv[1])
except Exception as exc:
    print(type(exc).__name__, exc)
else:
    print("no error")
"""


def _in_child(path: pathlib.Path | str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=120,  # a guard against a hang, not a speed claim
        cwd=ROOT,
        check=False,
    )
    return out.stdout.strip() + out.stderr.strip()[-500:]


def _cli_in_child(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ei_widgets.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


# ----------------------------------------------------------------------------------------------
# files that are not regular files


@pytest.fixture
def fifo(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "pipe.onnx"
    os.mkfifo(path)
    return path


def test_a_fifo_is_refused_without_opening_it(fifo: pathlib.Path) -> None:
    assert _in_child(fifo).startswith("ModelLoadError")
    assert "not a regular file" in _in_child(fifo)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_and_an_onnx_link_to_it_are_refused(tmp_path: pathlib.Path, device: str) -> None:
    link = tmp_path / "weights.onnx"
    link.symlink_to(device)
    for given in (device, link):
        result = _in_child(given)
        assert result.startswith("ModelLoadError"), result
        assert "not a regular file" in result


def test_the_cli_says_one_line_for_a_fifo(fifo: pathlib.Path) -> None:
    done = _cli_in_child("inspect", str(fifo))
    assert done.returncode == cli.EXIT_USER_ERROR
    assert len(done.stderr.strip().splitlines()) == 1
    assert "not a regular file" in done.stderr


# ----------------------------------------------------------------------------------------------
# external data


def _with_external(info: dict[str, str]) -> onnx.ModelProto:
    init = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 2])
    init.data_location = TensorProto.EXTERNAL
    for key, value in info.items():
        entry = init.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        [init],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("key", ["length", "offset"])
@pytest.mark.parametrize("value", ["abc", "-32", "1e3"])
def test_a_malformed_external_length_or_offset_is_a_typed_error(
    tmp_path: pathlib.Path, key: str, value: str
) -> None:
    model = _with_external({"location": "w.bin", key: value})
    (tmp_path / "w.bin").write_bytes(bytes(32))
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    for given in (model, path, model.SerializeToString()):
        with pytest.raises(ModelLoadError, match=f"external data {key}"):
            profile(given)
    done = _cli_in_child("inspect", "--json", str(path))
    assert done.returncode == cli.EXIT_USER_ERROR and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "location", ["/etc/passwd", "../secret.bin", "sub/../../secret.bin", "..\\secret.bin"]
)
def test_external_data_outside_the_model_folder_is_refused_and_never_looked_up(
    tmp_path: pathlib.Path, location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(bytes(64))
    path = folder / "m.onnx"
    onnx.save(_with_external({"location": location, "length": "32"}), path)
    looked_up: list[str] = []
    real_stat = os.stat

    def spy(target: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(os.fspath(target))
        return real_stat(target, *args, **kwargs)

    monkeypatch.setattr(os, "stat", spy)
    with pytest.raises(ModelLoadError, match="inside the model's folder"):
        profile(path)
    assert [p for p in looked_up if "secret" in p] == []


def test_external_data_inside_the_folder_is_still_read(tmp_path: pathlib.Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "w.bin").write_bytes(bytes(32))
    path = tmp_path / "m.onnx"
    onnx.save(_with_external({"location": "sub/w.bin", "length": "32"}), path)
    assert profile(path).param_count == 8


# ----------------------------------------------------------------------------------------------
# names and nesting


def _named(name: bytes) -> bytes:
    """A model whose input (and its readers) is called ``name`` (any bytes of the same length
    as the old name, so that the message stays well formed)."""
    model = builders.mlp((4, 2))
    model.graph.input[0].name = "INPUT"
    model.graph.node[0].input[0] = "INPUT"
    data = model.SerializeToString()
    assert data.count(b"INPUT") == 2 and len(name) == len("INPUT")
    return data.replace(b"INPUT", name)


def test_a_name_that_is_not_utf8_is_a_typed_error(tmp_path: pathlib.Path) -> None:
    data = _named(b"IN\xff\xfeT")
    parsed = onnx.ModelProto()
    parsed.ParseFromString(data)
    path = tmp_path / "latin.onnx"
    path.write_bytes(data)
    for given in (data, parsed, path):
        with pytest.raises(ModelLoadError, match="not valid UTF-8"):
            profile(given)
    done = _cli_in_child("inspect", str(path))
    assert done.returncode == cli.EXIT_USER_ERROR
    assert len(done.stderr.strip().splitlines()) == 1


def nested_ifs(depth: int) -> onnx.ModelProto:
    """If nodes nested ``depth`` deep, built in place: protobuf refuses to copy such a message,
    which is also why no helper builds it."""
    graph = helper.make_graph(
        [],
        "top",
        [
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("y0", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    g = model.graph
    for d in range(depth):
        node = g.node.add(op_type="If", input=["c"], output=[f"y{d}"])
        then = node.attribute.add(name="then_branch", type=onnx.AttributeProto.GRAPH)
        other = node.attribute.add(name="else_branch", type=onnx.AttributeProto.GRAPH)
        other.g.name = f"e{d}"
        other.g.node.add(op_type="Identity", input=["x"], output=[f"e{d}"])
        other.g.output.add(name=f"e{d}").type.tensor_type.elem_type = TensorProto.FLOAT
        g = then.g
        g.name = f"t{d}"
        g.output.add(name=f"y{d + 1}").type.tensor_type.elem_type = TensorProto.FLOAT
    g.node.add(op_type="Identity", input=["x"], output=[f"y{depth}"])
    return model


def test_nesting_up_to_the_limit_is_profiled() -> None:
    p = profile(nested_ifs(MAX_SUBGRAPH_DEPTH))
    assert p.node_count == 1 and p.unknown_ops == ("If",)


@pytest.mark.parametrize("depth", [34, 1000])
def test_deeper_nesting_is_a_typed_error(depth: int) -> None:
    with pytest.raises(ModelLoadError, match="nests subgraphs"):
        profile(nested_ifs(depth))


def test_the_magics_turn_hostile_models_into_one_line() -> None:
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    from ei_widgets.notebook import magics

    ip = InteractiveShell.instance()
    magics.register(ip)
    ip.user_ns["deep"] = nested_ifs(40)
    parsed = onnx.ModelProto()
    parsed.ParseFromString(_named(b"IN\xffPT"))
    ip.user_ns["latin"] = parsed
    try:
        for variable, message in (("deep", "nests subgraphs"), ("latin", "UTF-8")):
            with pytest.raises(UsageError, match=message):
                ip.run_line_magic("ei_inspect", variable)
    finally:
        magics.unregister(ip)
        ip.user_ns.pop("deep", None)
        ip.user_ns.pop("latin", None)


def test_errors_here_are_one_family() -> None:
    assert issubclass(ModelLoadError, EIError)


# ----------------------------------------------------------------------------------------------
# weights in Constant nodes


def constant_weights(layers: int, width: int) -> onnx.ModelProto:
    """A stack of MatMuls whose weights are Constant nodes rather than initializers."""
    rng = np.random.default_rng(0)
    nodes = []
    x = "x"
    for i in range(layers):
        w = rng.standard_normal((width, width)).astype(np.float32)
        nodes.append(
            helper.make_node("Constant", [], [f"w{i}"], value=numpy_helper.from_array(w, f"w{i}"))
        )
        nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"h{i}"]))
        x = f"h{i}"
    graph = helper.make_graph(
        nodes,
        "constant_weights",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", width])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_constant_node_weights_are_not_copied_for_shape_inference() -> None:
    model = constant_weights(layers=4, width=1024)  # 16 MiB of weights
    with PeakMemory() as memory:
        p = profile(model, batch_size=2)
    assert memory.peak < 4 * 2**20  # a copy of the weights alone would be 16 MiB
    assert p.param_count == 4 * 1024 * 1024
    assert p.flops == 4 * 2 * 2 * 1024 * 1024
    assert [n.output_shapes for n in p.nodes if n.op_type == "MatMul"] == [((2, 1024),)] * 4


def test_bench_on_a_model_onnxruntime_refuses_is_one_line(tmp_path: pathlib.Path) -> None:
    """onnx reads it and the profile lists the op as unknown; onnxruntime refuses to load it."""
    node = helper.make_node("Mystery", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph(
        [node],
        "refused",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    path = tmp_path / "refused.onnx"
    onnx.save(helper.make_model(graph, opset_imports=opsets), path)
    done = _cli_in_child("bench", str(path), "--requests", "3")
    assert done.returncode == cli.EXIT_USER_ERROR, done.stderr[-2000:]
    assert len(done.stderr.strip().splitlines()) == 1
    assert "onnxruntime cannot load" in done.stderr and "Mystery" in done.stderr
