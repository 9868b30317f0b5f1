"""A kernel that deploys an endpoint and then dies (SIGKILL) or exits leaves no server behind and
no open billing interval, in a real parent process with a real ledger file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest

from ei_widgets.billing.ledger import LedgerWarning, open_ledger
from tests import builders

ROOT = Path(__file__).resolve().parents[2]

PARENT = """
import json, sys, time
from ei_widgets.endpoint.predictor import deploy
p = deploy(sys.argv[1], instance_type="ml.m5.large", accelerator_type="ml.eia2.medium",
           endpoint_name=sys.argv[2])
p.predict(__import__("numpy").zeros((1, 784), "float32"))
print(json.dumps({"server": p._process.pid}), flush=True)
if sys.argv[3] == "stay":
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Running (a zombie is not: in a container nobody may reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] not in ("Z", "X")


def _start(tmp_path: Path, name: str, mode: str) -> tuple[subprocess.Popen[str], int]:
    model = tmp_path / "mlp.onnx"
    onnx.save(builders.mlp(batch=1), model)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(model), name, mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert parent.stdout is not None
    line = parent.stdout.readline()
    assert line, "the parent did not deploy"
    return parent, int(json.loads(line)["server"])


def _wait_gone(pid: int, seconds: float) -> float:
    start = time.monotonic()
    while _alive(pid) and time.monotonic() - start < seconds:
        time.sleep(0.1)
    return time.monotonic() - start


def test_a_sigkilled_kernel_leaves_no_server_and_no_open_interval(tmp_path: Path) -> None:
    parent, server = _start(tmp_path, "orphan", "stay")
    assert _alive(server)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    took = _wait_gone(server, 10.0)
    assert not _alive(server), "the server outlived its kernel"
    assert took < 5.0
    # the ledger's recovery (any later open) closes the dead kernel's endpoint session
    with pytest.warns(LedgerWarning, match="closed 1 session"):
        ledger = open_ledger(os.environ["EI_WIDGETS_LEDGER"])
    try:
        (session,) = [s for s in ledger.sessions() if s["endpoint"] == "orphan"]
        assert session["ended_at"] is not None and session["end_reason"] == "crash"
        intervals = ledger.intervals(session["id"])
        assert {i["kind"] for i in intervals} == {"instance", "accelerator"}
        assert all(i["closed"] == 1 for i in intervals)
    finally:
        ledger.close()


def test_a_kernel_that_exits_deletes_its_endpoints(tmp_path: Path) -> None:
    parent, server = _start(tmp_path, "tidy", "exit")
    parent.wait(timeout=60)
    assert _wait_gone(server, 10.0) < 10.0 and not _alive(server)
    ledger = open_ledger(os.environ["EI_WIDGETS_LEDGER"])
    try:
        (session,) = [s for s in ledger.sessions() if s["endpoint"] == "tidy"]
        assert session["end_reason"] == "delete"
    finally:
        ledger.close()
