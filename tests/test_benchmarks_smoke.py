"""The benchmarks' quick mode runs in the suite so they never rot. No figure is asserted here:
speed is judged by the full benchmark run, never by timed asserts on a noisy machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=ROOT,
    )


def test_every_benchmark_runs_in_quick_mode() -> None:
    completed = _run("run.py", "--quick")
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    for benchmark in (
        "bench_profile",
        "bench_session",
        "bench_sizing",
        "bench_dashboard",
        "bench_fp16",
        "bench_endpoint",
        "bench_tensorflow",
    ):
        assert f"== {benchmark}" in completed.stdout
    table = completed.stdout.split("| benchmark | figure | target | met | detail |", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    names = "\n".join(rows)
    for figure in (
        "nine light models",
        "squeezenet b1",
        "sweep",
        "trivial cell reply",
        "fp16 check",
        "endpoint OverheadLatency",
        "load generator",
        "saturation chain500",
        "first profile in a notebook, small dense model / tf2onnx",
        "first profile in a script, small dense model / tf2onnx",
        "second profile, new process",
        "trivial cell reply during a conversion",
    ):
        assert figure in names, names


def test_the_profile_floor_benchmark_runs_on_a_small_graph() -> None:
    completed = _run("bench_profile_floor.py", "1000")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.startswith("1,000-node graph")
    for row in ("onnx shape inference", "read node fields", "read inferred types", "left for"):
        assert row in completed.stdout, completed.stdout


def test_the_results_dump_is_the_same_twice() -> None:
    # the dump that shows a restructuring changed nothing must itself be repeatable
    first, second = _run("dump_results.py"), _run("dump_results.py")
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout == second.stdout
    dumped = json.loads(first.stdout)
    assert {"profile:resnet50", "recommend_html:densenet121", "bill"} <= set(dumped)
