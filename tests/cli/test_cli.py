"""The ``ei-widgets`` command line, run as users run it (a subprocess) and through ``main``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from ei_widgets.cli import EXIT_USER_ERROR, main
from tests import builders


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


def test_inspect_fp16_measures_the_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "squeezenet", "--fp16"]) == 0
    out = capsys.readouterr().out
    # the demo's constant weights tie the top class in every row: agreement is not measured
    assert (
        "fp16 vs fp32 on light_squeezenet: top-1 agreement not measured:"
        " fp32 top class tied in 8 of 8 rows" in out
    )
    assert "seeded random inputs (seed 0, 8 rows" in out
    assert "softmaxout_1" in out and "top-5" in out
    assert main(["inspect", "squeezenet", "--fp16", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fp16"]["measured"] is True and data["fp16"]["outputs"][0]["top1"] is None
    assert data["fp16"]["outputs"][0]["tied_rows"] == 8
    assert main(["inspect", "squeezenet", "--json"]) == 0
    assert "fp16" not in json.loads(capsys.readouterr().out)


def test_inspect_fp16_of_an_integer_model_says_why_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"])],
        "ints",
        [helper.make_tensor_value_info("x", TensorProto.INT64, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [2, 4])],
    )
    path = tmp_path / "ints.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert main(["inspect", str(path), "--fp16"]) == 0
    out = capsys.readouterr().out
    assert "fp16 not measured for ints: integer-only model" in out


def test_recommend_endpoint_sizes_an_instance_count(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["recommend", "squeezenet", "--endpoint", "--rps", "300", "--latency-ms", "40"]
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    pick = data["pick"]
    assert pick["instance_count"] >= 1 and pick["p90_ms"] <= 40
    assert pick["saturation_rps"] > 300
    assert data["reason"].startswith(pick["option"])
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"* {pick['option']}" in out and "p90 at rate" in out and "modelled" in out
    assert main([*args, "--fp16"]) == EXIT_USER_ERROR


def test_recommend_lists_ei_and_today_as_two_groups(capsys: pytest.CaptureFixture[str]) -> None:
    from ei_widgets.device import fp16

    fp16.clear_cache()  # a check run earlier in this process would add its column
    assert main(["recommend", "squeezenet", "--latency-ms", "50", "--rps", "10"]) == 0
    out = capsys.readouterr().out
    reason = out.splitlines()[0]
    assert "With EI (retired 2023): " in reason and "; today: " in reason
    ei = out.index("EI (retired 2023) (best 10 of")
    today = out.index("Available today (best 10 of")
    assert ei < today
    assert "* ml.eia" in out[ei:today]  # each group marks its own pick
    assert "ml.g6.xlarge" in out or "CPU only" in out[today:]
    assert "fp16 agreement" not in out


def test_recommend_fp16_adds_the_agreement_and_json_both_picks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["recommend", "squeezenet", "--latency-ms", "50", "--rps", "10", "--fp16"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "fp16 agreement" in out and "top-1 agreement not measured" in out
    assert "top-1 100%" not in out
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pick_ei"]["group"] == "EI (retired 2023)"
    assert data["pick_today"]["group"] == "available today"
    fp16_rows = [r for r in data["rows"] if r["precision"] == "fp16"]
    assert fp16_rows and all(r["fp16_agreement"].startswith("top-1") for r in fp16_rows)


@pytest.fixture
def encoder_file(tmp_path: Path) -> Path:
    """A transformer block whose input is (batch, sequence, 64)."""
    path = tmp_path / "encoder.onnx"
    onnx.save(builders.transformer_block(batch="batch", seq="sequence"), path)
    return path


def test_seq_len_binds_the_sequence_and_shows_latency_by_length(
    encoder_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(encoder_file), "--seq-len", "256", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["seq_len"] == 256 and data["bound_inputs"] == {"x": [1, 256, 64]}
    points = data["by_length"]["points"]
    assert [p["seq_len"] for p in points] == [64, 128, 256, 512]
    assert data["by_length"]["accuracy"].startswith("modelled")
    assert main(["inspect", str(encoder_file)]) == 0  # default 128
    out = capsys.readouterr().out
    assert "batch 1, 128 tokens:" in out and "Latency by sequence length" in out
    assert main(["recommend", str(encoder_file), "--seq-len", "64", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert 64 in [p["seq_len"] for p in rec["by_length"]["points"]]
    assert main(["bench", str(encoder_file), "--seq-len", "32", "--requests", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seq_len"] == 32


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "must be at least 1 token, not 0"),
        ("-4", "must be at least 1 token, not -4"),
        ("12.5", "must be a whole number of tokens such as 128, not '12.5'"),
        ("many", "must be a whole number of tokens such as 128, not 'many'"),
    ],
)
@pytest.mark.parametrize("command", ["inspect", "recommend", "bench"])
def test_bad_seq_len_is_refused_clearly(
    command: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "squeezenet", f"--seq-len={value}"])
    assert exit_info.value.code == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert f"argument --seq-len: {message}" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["inspect", "recommend", "bench"])
def test_seq_len_for_a_model_without_a_sequence_says_so(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "squeezenet", "--seq-len", "128"]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("ei-widgets: ") and "no sequence dimension" in err
