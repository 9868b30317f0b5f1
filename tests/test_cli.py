"""The ``ei-widgets`` command line, run as users run it (a subprocess) and through ``main``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ei_widgets.cli import EXIT_USER_ERROR, main


def test_inspect_prints_a_readable_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "squeezenet"]) == 0
    out = capsys.readouterr().out
    assert "light_squeezenet" in out
    assert "1.24 M parameters" in out
    assert "Conv" in out


def test_inspect_json_is_machine_readable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "squeezenet", "--json", "--batch", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == 1_235_496
    # squeezenet's input has a fixed batch of 1: the profile says so rather than pretending
    assert data["batch_size"] == 1
    assert data["bound_inputs"] == {"data_0": [1, 3, 224, 224]}
    assert any("fixed batch of 1" in w for w in data["warnings"])
    assert {row["op_type"] for row in data["by_op_type"]} >= {"Conv", "Relu"}


def test_recommend_json_names_the_pick(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", "squeezenet", "--latency-ms", "50", "--rps", "10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pick"]["meets"] is True
    assert data["reason"].startswith(data["pick"]["accelerator"] or data["pick"]["instance"])
    assert all(row["latency_ms"] > 0 for row in data["rows"])


def test_bench_runs_real_inference_on_the_virtual_clock(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["bench", "squeezenet", "--accelerator", "ml.eia2.large", "--requests", "20", "--json"]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["requests"] == 20
    assert data["errors"] == 0
    assert data["accelerator"] == "ml.eia2.large"
    assert data["latency_p50_ms"] > 0


def test_usage_of_an_empty_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage", "--ledger", str(tmp_path / "u.sqlite3")]) == 0
    assert "No usage recorded yet." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inspect", "no-such-model"], "neither a file nor a demo model"),
        (["inspect", "/no/such/file.onnx"], "file.onnx"),
        (["bench", "squeezenet", "--accelerator", "ml.eia9.huge"], "Valid accelerators"),
        (["recommend", "squeezenet", "--latency-ms", "-5"], "latency"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("ei-widgets: ")
    assert message in err
    assert "Traceback" not in err


def test_console_script_entry_point_runs() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ei_widgets.cli", "inspect", "squeezenet", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["name"] == "light_squeezenet"
