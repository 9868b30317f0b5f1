"""``ei-widgets serve``: a real endpoint from a shell, called over HTTP, deleted by Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import pytest

from ei_widgets.endpoint.codec import TOKEN_HEADER, npy_bytes
from tests import builders

ROOT = Path(__file__).resolve().parents[2]


def _serve(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    return subprocess.Popen(
        [sys.executable, "-m", "ei_widgets.cli", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def test_serve_prints_url_and_token_answers_http_and_deletes_on_ctrl_c(tmp_path: Path) -> None:
    model = tmp_path / "mlp.onnx"
    onnx.save(builders.mlp(batch=1), model)
    proc = _serve(str(model), "--accelerator", "ml.eia2.medium", "--name", "from-shell", "--json")
    try:
        assert proc.stdout is not None
        shown = json.loads(proc.stdout.readline())
        assert shown["endpoint_name"] == "from-shell"
        request = urllib.request.Request(
            shown["invocations"],
            data=npy_bytes(np.zeros((1, 784), np.float32)),
            headers={
                TOKEN_HEADER: shown["token"],
                "Content-Type": "application/x-npy",
                "Accept": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert np.asarray(json.loads(answer.read())["outputs"]["y"]).shape == (1, 10)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(shown["url"] + "/ping", timeout=60)
        assert refused.value.code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Deleted from-shell" in err


def test_serve_prints_a_curl_example(tmp_path: Path) -> None:
    model = tmp_path / "mlp.onnx"
    onnx.save(builders.mlp(batch=1), model)
    proc = _serve(str(model), "--accelerator", "ml.eia2.medium")
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(7)]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    text = "".join(lines)
    assert "URL    http://127.0.0.1:" in text and "Token  " in text
    assert "curl -s -X POST http://127.0.0.1:" in text and f"-H '{TOKEN_HEADER}: " in text
    assert "numpy.zeros((1, 784), 'float32')" in text


def test_serve_refuses_an_unknown_accelerator_with_a_one_line_error(tmp_path: Path) -> None:
    proc = _serve("squeezenet", "--accelerator", "ml.eia7.medium")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "ml.eia7.medium" in err and "Traceback" not in err
